//! People: the persons of the site and which workstation accounts are
//! theirs ([`book`], pure), kept in the store's settings tree as JSON
//! under [`PEOPLE_KEY`]. Attendance, usage and reports are per person;
//! the fleet stays per machine.

pub mod book;
pub mod commands;
pub mod erasure;

use std::sync::{Mutex, PoisonError};

pub use book::{
    check_account, check_email, check_name, check_team, describe_account, Account, PeopleBook,
    PeopleError, Person, PersonId, Proposal, Who, MAX_ACCOUNTS, MAX_EMAIL_BYTES, MAX_NAME_CHARS,
    MAX_PEOPLE, MAX_TEAM_CHARS, SHARED_ACCOUNT_WORKSTATIONS,
};

use crate::store::{ConsoleStore, StoreError};

/// Settings key of the people book.
pub const PEOPLE_KEY: &str = "people";

/// Serialises changes to the book: every change goes through this
/// process's engine (the store is locked to one process).
static BOOK_WRITER: Mutex<()> = Mutex::new(());

/// Why the book could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refused(#[from] PeopleError),
    #[error("the people book in the store does not read ({0}); it is left as it is")]
    Damaged(String),
}

/// The book as stored (empty when there is none yet).
pub fn load(store: &ConsoleStore) -> Result<PeopleBook, BookError> {
    match store.get_setting(PEOPLE_KEY)? {
        None => Ok(PeopleBook::default()),
        Some(value) => {
            serde_json::from_value(value).map_err(|error| BookError::Damaged(error.to_string()))
        }
    }
}

/// Applies `change` to the stored book and stores the result; nothing is
/// stored when `change` refuses.
pub fn update<T>(
    store: &ConsoleStore,
    change: impl FnOnce(&mut PeopleBook) -> Result<T, PeopleError>,
) -> Result<T, BookError> {
    let _writer = BOOK_WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let mut book = load(store)?;
    let outcome = change(&mut book)?;
    let value =
        serde_json::to_value(&book).map_err(|error| BookError::Damaged(error.to_string()))?;
    store.put_setting(PEOPLE_KEY, &value)?;
    Ok(outcome)
}
