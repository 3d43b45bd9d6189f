//! `smarttracker-console people …`: the persons of the site and the OS
//! accounts and workstations that are theirs (run by the engine, like the
//! People screen).

use clap::Subcommand;
use console_engine::commands::CliRequest;
use console_engine::people::commands::{AccountText, PeopleAsk};

/// What `people` does.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Lists the persons, then the accounts no person holds with the
    /// persons proposed for them.
    List {
        /// Deactivated persons too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Adds a person.
    Add {
        /// Their name, as reports show it.
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        team: String,
        /// An account of theirs: USER (that OS user on any workstation),
        /// USER@WORKSTATION (on that one), @WORKSTATION (every user of
        /// it); a workstation by id or inventory name. Repeatable.
        #[arg(long = "user", value_name = "ACCOUNT")]
        accounts: Vec<String>,
    },
    /// Gives accounts to a person (see `add --user`).
    Map {
        /// The person: their number (`3`, `#3`) or their name.
        person: String,
        #[arg(long = "user", value_name = "ACCOUNT", required = true)]
        accounts: Vec<String>,
    },
    /// Takes accounts back from a person.
    Unmap {
        person: String,
        #[arg(long = "user", value_name = "ACCOUNT", required = true)]
        accounts: Vec<String>,
    },
    /// Changes a person's name, e-mail or team (an empty text clears the
    /// e-mail or team).
    Edit {
        person: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        team: Option<String>,
    },
    /// The GDPR erasure: deletes every record of the person in this
    /// console's store (presence, applications, screenshots of their
    /// signed-in time), has each of their workstations drop its copies at
    /// the next sync, and removes the person; the audit log keeps only the
    /// fact and the counts. Cannot be undone.
    Erase { person: String },
    /// Stops showing a person; their history is kept (`--undo` shows them
    /// again).
    Deactivate {
        person: String,
        #[arg(long)]
        undo: bool,
    },
}

fn texts(accounts: Vec<String>) -> Vec<AccountText> {
    accounts.into_iter().map(AccountText).collect()
}

/// The engine request of `command`.
pub fn request(command: PeopleCommand) -> CliRequest {
    CliRequest::People(match command {
        PeopleCommand::List { all, json } => PeopleAsk::List { all, json },
        PeopleCommand::Add {
            name,
            email,
            team,
            accounts,
        } => PeopleAsk::Add {
            name,
            email,
            team,
            accounts: texts(accounts),
        },
        PeopleCommand::Map { person, accounts } => PeopleAsk::Map {
            person,
            accounts: texts(accounts),
            remove: false,
        },
        PeopleCommand::Unmap { person, accounts } => PeopleAsk::Map {
            person,
            accounts: texts(accounts),
            remove: true,
        },
        PeopleCommand::Edit {
            person,
            name,
            email,
            team,
        } => PeopleAsk::Edit {
            person,
            name,
            email,
            team,
        },
        PeopleCommand::Deactivate { person, undo } => PeopleAsk::Deactivate { person, undo },
        PeopleCommand::Erase { person } => PeopleAsk::Erase { person },
    })
}
