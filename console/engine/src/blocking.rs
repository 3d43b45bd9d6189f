//! The one boundary between async code and blocking work (the sled
//! store, mDNS browsing, image decoding): everything blocking that async
//! code needs runs through [`blocking`], on tokio's blocking pool, never
//! on an async worker. Each caller says what a task that did not return
//! (it panicked, or the runtime is shutting down) means in its own error
//! type.

use tokio::task::JoinError;

/// Runs `work` on the blocking pool and returns its result; `failed`
/// turns a task that did not return into the caller's error.
pub async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    failed: impl FnOnce(JoinError) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join_error| Err(failed(join_error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_work_result_or_the_callers_error() {
        let done: Result<u8, String> = blocking(|| Ok(7), |error| error.to_string()).await;
        assert_eq!(done, Ok(7));
        let refused: Result<u8, String> =
            blocking(|| Err("no".to_owned()), |error| error.to_string()).await;
        assert_eq!(refused, Err("no".to_owned()));
        let panicked: Result<u8, String> = blocking(
            || panic!("boom"),
            |error| format!("task failed: {}", error.is_panic()),
        )
        .await;
        assert_eq!(panicked, Err("task failed: true".to_owned()));
    }
}
