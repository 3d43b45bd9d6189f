//! A fake agent for hostile-peer tests: a real QUIC server holding a real
//! enrolled agent's certificate (so a console's verifier admits it) that
//! answers each request with whatever the test decides, including
//! garbage frames and silence.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use certs::transport::{read_message, server_config, server_endpoint, write_message, Limits};
use certs::AgentIdentity;
use protocol::{Request, Response};
use uuid::Uuid;

/// What the fake agent does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A well-formed response frame.
    Reply(Response),
    /// A frame whose body is not a response.
    Garbage,
    /// Nothing, for an hour.
    Silence,
}

/// Decides the answer to each request of one connection (it may keep
/// state across the connection's requests).
pub type Responder = Box<dyn FnMut(Request) -> Answer + Send>;

/// A running fake agent; stops serving when dropped.
#[derive(Debug)]
pub struct FakeAgent {
    pub addr: SocketAddr,
    /// The agent id in its certificate.
    pub id: Uuid,
    requests: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeAgent {
    /// Serves `identity` on 127.0.0.1; `responder` makes one responder
    /// per connection.
    pub fn start(
        identity: AgentIdentity,
        responder: impl Fn() -> Responder + Send + Sync + 'static,
    ) -> FakeAgent {
        FakeAgent::start_denying(identity, Vec::new(), responder)
    }

    /// [`FakeAgent::start`], refusing the consoles whose certificate
    /// fingerprints are in `denied` (as a revoked console is refused).
    pub fn start_denying(
        identity: AgentIdentity,
        denied: Vec<String>,
        responder: impl Fn() -> Responder + Send + Sync + 'static,
    ) -> FakeAgent {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let requests = Arc::new(AtomicU64::new(0));
        let id = identity.agent_id;
        let tls = certs::tls::agent_server_config(
            &identity,
            certs::deny::DenySet::of_fingerprints(denied),
        )
        .expect("tls");
        let config = server_config(tls, &Limits::default()).expect("quinn config");
        let endpoint = runtime.block_on(async {
            server_endpoint("127.0.0.1:0".parse().expect("addr"), config).expect("bind")
        });
        let addr = endpoint.local_addr().expect("local addr");
        let served = requests.clone();
        let responder = Arc::new(responder);
        runtime.spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let served = served.clone();
                let respond = Arc::new(std::sync::Mutex::new(responder()));
                tokio::spawn(async move {
                    let Ok(connection) = incoming.await else {
                        return;
                    };
                    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                        let served = served.clone();
                        let respond = respond.clone();
                        tokio::spawn(async move {
                            let Ok(request) = read_message::<Request>(&mut recv).await else {
                                return;
                            };
                            served.fetch_add(1, Ordering::SeqCst);
                            let answer = (respond.lock().expect("responder"))(request);
                            match answer {
                                Answer::Reply(response) => {
                                    let _ = write_message(&mut send, &response).await;
                                }
                                Answer::Garbage => {
                                    let _ = send.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
                                    let _ = send.finish();
                                }
                                Answer::Silence => {
                                    tokio::time::sleep(Duration::from_secs(3_600)).await;
                                }
                            }
                        });
                    }
                });
            }
        });
        FakeAgent {
            addr,
            id,
            requests,
            _runtime: runtime,
        }
    }

    /// Requests answered so far, of any kind, over every connection.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}
