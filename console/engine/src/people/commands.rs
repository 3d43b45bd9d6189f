//! `people list|add|map|unmap|edit|deactivate|erase`: the people commands
//! of the command line and of the People screen (which sends the same
//! requests), run by the engine. Every change is audited; an erasure keeps
//! only the fact and the counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_account, describe_account, Account, BookError, PeopleBook, PersonId};
use crate::commands::{find_agent, say, CliOutput, CommandContext, CommandError, Output};
use crate::model::AgentId;
use crate::store::{AccountSeen, AgentRecord};

/// What a people command asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeopleAsk {
    /// The persons (deactivated ones too with `all`), the accounts no one
    /// holds and the persons proposed for them.
    List { all: bool, json: bool },
    /// A new person with these accounts (see [`AccountText`]).
    Add {
        name: String,
        email: String,
        team: String,
        accounts: Vec<AccountText>,
    },
    /// Gives accounts to a person (or, with `remove`, takes them back).
    Map {
        person: String,
        accounts: Vec<AccountText>,
        remove: bool,
    },
    /// Changes what is given; `None` keeps it.
    Edit {
        person: String,
        name: Option<String>,
        email: Option<String>,
        team: Option<String>,
    },
    /// Deactivates a person (history kept, no longer shown), or with
    /// `undo` shows them again.
    Deactivate { person: String, undo: bool },
    /// The GDPR erasure: every record of the person in this store, their
    /// workstations asked to drop theirs, the person removed; the audit
    /// log keeps the fact and the counts.
    Erase { person: String },
}

/// An account as a person types it: `alice` (that OS user on any
/// workstation), `alice@PC-03` (on that workstation), `@PC-03` (every
/// user of that workstation); a workstation by id or inventory name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountText(pub String);

/// The people book and what was seen, as `people list --json` prints it.
#[derive(Debug, Serialize)]
struct Listing<'a> {
    people: Vec<ListedPerson<'a>>,
    unheld: Vec<&'a AccountSeen>,
    proposals: Vec<super::Proposal>,
}

#[derive(Debug, Serialize)]
struct ListedPerson<'a> {
    #[serde(flatten)]
    person: &'a super::Person,
    /// The accounts seen that are theirs, as `user@workstation`.
    seen: Vec<String>,
}

/// Runs a people command (blocking: the store).
pub fn run(context: &CommandContext, ask: PeopleAsk, output: &Output) -> Result<(), CommandError> {
    let store = &context.store;
    let agents = store.agents()?;
    let names: BTreeMap<AgentId, String> = agents
        .iter()
        .map(|record| (record.agent, record.name.clone()))
        .collect();
    let name_of = |agent: AgentId| {
        names
            .get(&agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    };
    match ask {
        PeopleAsk::List { all, json } => {
            let book = super::load(store).map_err(book_error)?;
            let seen = store.accounts(None)?;
            list(&book, &seen, &name_of, (all, json), output)
        }
        PeopleAsk::Add {
            name,
            email,
            team,
            accounts,
        } => {
            let accounts = parse_accounts(context, &agents, &accounts)?;
            let held = accounts.len();
            let id = super::update(store, |book| {
                book.add(&name, &email, &team, accounts, &name_of)
            })
            .map_err(book_error)?;
            audit(context, "person-add", id, format!("{held} account(s)"))?;
            say(output, format!("added {} ({id})", name.trim()));
            Ok(())
        }
        PeopleAsk::Map {
            person,
            accounts,
            remove,
        } => {
            let accounts = parse_accounts(context, &agents, &accounts)?;
            let described: Vec<String> = accounts
                .iter()
                .map(|account| describe_account(account, &name_of))
                .collect();
            let (id, name) = super::update(store, |book| {
                let found = book.find(&person)?;
                let (id, name) = (found.id, found.name.clone());
                for account in accounts {
                    if remove {
                        book.unmap(id, &account, &name_of)?;
                    } else {
                        book.map(id, account, &name_of)?;
                    }
                }
                Ok((id, name))
            })
            .map_err(book_error)?;
            let (action, verb) = if remove {
                ("person-unmap", "no longer holds")
            } else {
                ("person-map", "holds")
            };
            audit(context, action, id, described.join(", "))?;
            say(
                output,
                format!("{name} ({id}) {verb} {}", described.join(", ")),
            );
            Ok(())
        }
        PeopleAsk::Edit {
            person,
            name,
            email,
            team,
        } => {
            let (id, shown) = super::update(store, |book| {
                let found = book.find(&person)?;
                let id = found.id;
                let name = name.unwrap_or_else(|| found.name.clone());
                let email = email.unwrap_or_else(|| found.email.clone().unwrap_or_default());
                let team = team.unwrap_or_else(|| found.team.clone().unwrap_or_default());
                book.edit(id, &name, &email, &team)?;
                Ok((id, name.trim().to_owned()))
            })
            .map_err(book_error)?;
            audit(
                context,
                "person-edit",
                id,
                "name, e-mail or team".to_owned(),
            )?;
            say(output, format!("{shown} ({id}) changed"));
            Ok(())
        }
        PeopleAsk::Erase { person } => {
            let book = super::load(store).map_err(book_error)?;
            let found = book
                .find(&person)
                .map_err(|refused| CommandError::Refused(refused.to_string()))?;
            let (id, name) = (found.id, found.name.clone());
            let report =
                super::erasure::erase_person(store, id, &context.actor).map_err(book_error)?;
            let left = match report.mentions_left {
                0 => "no live entry here names their accounts any more".to_owned(),
                left => format!(
                    "{left} live entr(ies) here still contain an account name (window titles or application names): export and check them"
                ),
            };
            // Only an admin console's sync hands the erasure to the
            // workstations (they refuse it from a viewer).
            let admin = context
                .syncer
                .as_ref()
                .is_ok_and(|syncer| syncer.role() == certs::Role::Admin);
            let workstations = if admin {
                format!(
                    "{} workstation(s) will drop theirs at the next sync (`sync --once` or a running console does it)",
                    report.workstations
                )
            } else {
                format!(
                    "this console cannot ask its {} workstation(s) to drop theirs (only an admin console can): erase the person from an admin console too",
                    report.workstations
                )
            };
            say(
                output,
                format!(
                    "{name} ({id}) erased: {} record(s) and {} screenshot(s) deleted here, {left}; {workstations}",
                    report.records, report.screenshots
                ),
            );
            Ok(())
        }
        PeopleAsk::Deactivate { person, undo } => {
            let (id, name) = super::update(store, |book| {
                let found = book.find(&person)?;
                let (id, name) = (found.id, found.name.clone());
                book.set_active(id, undo)?;
                Ok((id, name))
            })
            .map_err(book_error)?;
            let (action, state) = if undo {
                ("person-reactivate", "shown again")
            } else {
                (
                    "person-deactivate",
                    "deactivated: history kept, no longer shown",
                )
            };
            audit(context, action, id, String::new())?;
            say(output, format!("{name} ({id}) {state}"));
            Ok(())
        }
    }
}

fn book_error(error: BookError) -> CommandError {
    match error {
        BookError::Store(error) => CommandError::Store(error),
        BookError::Refused(refused) => CommandError::Refused(refused.to_string()),
        BookError::Damaged(_) => CommandError::Failed(error.to_string()),
    }
}

fn audit(
    context: &CommandContext,
    action: &str,
    id: PersonId,
    detail: String,
) -> Result<(), CommandError> {
    context.audit(action, format!("person {id}"), detail)
}

/// Accounts from their typed form (see [`AccountText`]).
fn parse_accounts(
    context: &CommandContext,
    agents: &[AgentRecord],
    texts: &[AccountText],
) -> Result<Vec<Account>, CommandError> {
    texts
        .iter()
        .map(|AccountText(text)| {
            let (user, workstation) = match text.rsplit_once('@') {
                Some((user, workstation)) => (user, Some(workstation)),
                None => (text.as_str(), None),
            };
            let agent = workstation
                .map(|workstation| find_agent(agents, &context.data_dir, workstation.trim()))
                .transpose()?
                .map(|record| record.agent);
            check_account(Some(user), agent).map_err(|refused| {
                let shown: String = text.chars().take(64).collect();
                CommandError::Refused(format!("{shown:?}: {refused}"))
            })
        })
        .collect()
}

fn list(
    book: &PeopleBook,
    seen: &[AccountSeen],
    name_of: &dyn Fn(AgentId) -> String,
    (all, json): (bool, bool),
    output: &Output,
) -> Result<(), CommandError> {
    let shown: Vec<&super::Person> = book
        .people()
        .iter()
        .filter(|person| all || person.active)
        .collect();
    let seen_as = book.seen_as(seen, name_of);
    let seen_of = |id: PersonId| -> Vec<String> { seen_as.get(&id).cloned().unwrap_or_default() };
    let unheld: Vec<&AccountSeen> = seen
        .iter()
        .filter(|account| book.resolve(account.agent, &account.user).is_none())
        .collect();
    let proposals = book.proposals(seen, name_of);
    if json {
        let listing = Listing {
            people: shown
                .iter()
                .map(|person| ListedPerson {
                    person,
                    seen: seen_of(person.id),
                })
                .collect(),
            unheld,
            proposals,
        };
        let mut text = serde_json::to_string_pretty(&listing)
            .map_err(|error| CommandError::Failed(format!("cannot write JSON: {error}")))?;
        text.push('\n');
        output(CliOutput::Data(text.into_bytes()));
        return Ok(());
    }
    let mut text = String::new();
    if shown.is_empty() {
        text.push_str(
            "no persons yet: add the proposed ones below with `people add NAME --user USER`\n",
        );
    }
    for person in shown {
        let accounts: Vec<String> = person
            .accounts
            .iter()
            .map(|account| describe_account(account, name_of))
            .collect();
        text.push_str(&format!(
            "{:<5} {:<30} {:<30} {:<16} {}{}\n",
            person.id.to_string(),
            person.name,
            person.email.as_deref().unwrap_or("-"),
            person.team.as_deref().unwrap_or("-"),
            if accounts.is_empty() {
                "no account".to_owned()
            } else {
                accounts.join(", ")
            },
            if person.active { "" } else { " (deactivated)" }
        ));
        let seen = seen_of(person.id);
        if !seen.is_empty() {
            text.push_str(&format!("      seen as {}\n", seen.join(", ")));
        }
    }
    if !proposals.is_empty() {
        text.push_str("\nproposed (accounts no person holds yet):\n");
        for proposal in &proposals {
            let accounts: Vec<String> = proposal
                .accounts
                .iter()
                .map(|account| match (&account.user, account.agent) {
                    (Some(user), Some(agent)) => format!("--user {user}@{}", name_of(agent)),
                    (Some(user), None) => format!("--user {user}"),
                    (None, Some(agent)) => format!("--user @{}", name_of(agent)),
                    (None, None) => String::new(),
                })
                .collect();
            text.push_str(&format!(
                "  people add {:?} {}    (seen on {})\n",
                proposal.name,
                accounts.join(" "),
                proposal.seen_on.join(", ")
            ));
        }
    }
    output(CliOutput::Data(text.into_bytes()));
    Ok(())
}
