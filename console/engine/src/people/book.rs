//! The people book (pure): persons, the OS accounts and workstations that
//! are theirs, which person a record of (workstation, OS user) is about,
//! and the persons the console proposes from the accounts agents reported.
//!
//! A person's [`Account`] names an OS user on one workstation, an OS user
//! on any workstation, or every user of one workstation. A record resolves
//! to the person whose account matches it most precisely (user on that
//! workstation, then the user anywhere, then the workstation), so a shared
//! PC splits by OS user and one person on two PCs is one person. Two
//! persons never hold the same account.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::AgentId;
use crate::store::AccountSeen;

/// Longest person name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest e-mail address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest team name, in characters.
pub const MAX_TEAM_CHARS: usize = 64;
/// Most persons in one book.
pub const MAX_PEOPLE: usize = 10_000;
/// Most accounts of one person.
pub const MAX_ACCOUNTS: usize = 64;
/// An OS user seen on more workstations than this is proposed once per
/// workstation (a shared generic account such as `accueil`), not as one
/// person.
pub const SHARED_ACCOUNT_WORKSTATIONS: usize = 3;

/// A person's number, given once and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PersonId(pub u32);

impl std::fmt::Display for PersonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What of a workstation's records is a person's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    /// An OS user name; `None`: every user of `agent`.
    pub user: Option<String>,
    /// A workstation; `None`: `user` on every workstation.
    pub agent: Option<AgentId>,
}

impl Account {
    /// How precisely it names records: 2 user on a workstation, 1 a user
    /// anywhere, 0 a whole workstation.
    fn precision(&self) -> u8 {
        match (&self.user, &self.agent) {
            (Some(_), Some(_)) => 2,
            (Some(_), None) => 1,
            _ => 0,
        }
    }

    fn matches(&self, agent: AgentId, user: &str) -> bool {
        self.user.as_deref().is_none_or(|own| own == user)
            && self.agent.is_none_or(|own| own == agent)
    }
}

/// Who a record is about: a person, or an account no person holds yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Who {
    Person(PersonId),
    Account { agent: AgentId, user: String },
}

/// A person of the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub email: Option<String>,
    pub team: Option<String>,
    /// False once deactivated: the history stays, screens stop showing it.
    pub active: bool,
    /// Sorted, no duplicates.
    pub accounts: Vec<Account>,
}

/// Why a change to the book is refused; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeopleError {
    #[error("a person's name cannot be empty")]
    EmptyName,
    #[error("a person's name is at most {MAX_NAME_CHARS} characters, without control characters")]
    BadName,
    #[error("{0:?} is not an e-mail address (name@domain, at most {MAX_EMAIL_BYTES} bytes)")]
    BadEmail(String),
    #[error("a team name is 1 to {MAX_TEAM_CHARS} characters, without control characters")]
    BadTeam,
    #[error(
        "an OS user name is 1 to {} bytes, without control characters",
        protocol::MAX_USER_BYTES
    )]
    BadUser,
    #[error("an account names an OS user, a workstation, or both")]
    EmptyAccount,
    #[error("{account} already belongs to {holder} ({id}): unmap it there first")]
    Taken {
        account: String,
        holder: String,
        id: PersonId,
    },
    #[error("{name} ({id}) does not hold {account}")]
    NotHeld {
        account: String,
        name: String,
        id: PersonId,
    },
    #[error("a person holds at most {MAX_ACCOUNTS} accounts")]
    TooManyAccounts,
    #[error("the book holds at most {MAX_PEOPLE} persons")]
    TooManyPeople,
    #[error("no person is {0:?}: `people list --all` shows their numbers and names")]
    Unknown(String),
    #[error("{0:?} names several persons: give the number (`people list --all`)")]
    Ambiguous(String),
}

/// A person the console suggests from the accounts it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub name: String,
    pub accounts: Vec<Account>,
    /// The workstations the accounts were seen on, by name.
    pub seen_on: Vec<String>,
}

/// Every person of the site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleBook {
    /// In id order.
    people: Vec<Person>,
    /// The next id to give.
    next_id: u32,
}

/// A valid trimmed name.
pub fn check_name(name: &str) -> Result<String, PeopleError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(PeopleError::EmptyName);
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PeopleError::BadName);
    }
    Ok(name.to_owned())
}

/// A valid e-mail address, or `None` for an empty text.
pub fn check_email(email: &str) -> Result<Option<String>, PeopleError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let bad = || PeopleError::BadEmail(email.chars().take(MAX_EMAIL_BYTES).collect());
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if email.len() > MAX_EMAIL_BYTES
        || local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || email
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ','))
    {
        return Err(bad());
    }
    Ok(Some(email.to_owned()))
}

/// A valid team, or `None` for an empty text.
pub fn check_team(team: &str) -> Result<Option<String>, PeopleError> {
    let team = team.trim();
    if team.is_empty() {
        return Ok(None);
    }
    if team.chars().count() > MAX_TEAM_CHARS || team.chars().any(char::is_control) {
        return Err(PeopleError::BadTeam);
    }
    Ok(Some(team.to_owned()))
}

/// A valid account: a user name within the wire's cap, a workstation, or
/// both.
pub fn check_account(user: Option<&str>, agent: Option<AgentId>) -> Result<Account, PeopleError> {
    let user = match user.map(str::trim) {
        None | Some("") => None,
        Some(user) => {
            if user.len() > protocol::MAX_USER_BYTES || user.chars().any(char::is_control) {
                return Err(PeopleError::BadUser);
            }
            Some(user.to_owned())
        }
    };
    if user.is_none() && agent.is_none() {
        return Err(PeopleError::EmptyAccount);
    }
    Ok(Account { user, agent })
}

/// `alice on PC-03`, `alice on any workstation`, `every user of PC-03`.
pub fn describe_account(account: &Account, name_of: &dyn Fn(AgentId) -> String) -> String {
    match (&account.user, account.agent) {
        (Some(user), Some(agent)) => format!("{user} on {}", name_of(agent)),
        (Some(user), None) => format!("{user} on any workstation"),
        (None, Some(agent)) => format!("every user of {}", name_of(agent)),
        (None, None) => "nothing".to_owned(),
    }
}

/// `alice` → `Alice`, `jean.dupont` → `Jean Dupont`.
fn name_from_user(user: &str) -> String {
    user.split(['.', '_', '-', ' '])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl PeopleBook {
    /// Every person, active or not, in id order.
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    pub fn get(&self, id: PersonId) -> Option<&Person> {
        self.people.iter().find(|person| person.id == id)
    }

    fn get_mut(&mut self, id: PersonId) -> Result<&mut Person, PeopleError> {
        self.people
            .iter_mut()
            .find(|person| person.id == id)
            .ok_or_else(|| PeopleError::Unknown(id.to_string()))
    }

    /// The person `text` names: a number (`3` or `#3`), or a name that
    /// only one person has (case-insensitive).
    pub fn find(&self, text: &str) -> Result<&Person, PeopleError> {
        let text = text.trim();
        if let Ok(number) = text.trim_start_matches('#').parse::<u32>() {
            if let Some(person) = self.get(PersonId(number)) {
                return Ok(person);
            }
        }
        let wanted = text.to_lowercase();
        let mut named = self
            .people
            .iter()
            .filter(|person| person.name.to_lowercase() == wanted);
        match (named.next(), named.next()) {
            (Some(person), None) => Ok(person),
            (Some(_), Some(_)) => Err(PeopleError::Ambiguous(text.to_owned())),
            (None, _) => Err(PeopleError::Unknown(text.chars().take(100).collect())),
        }
    }

    /// The person a record of `user` on `agent` is about, if any.
    pub fn resolve(&self, agent: AgentId, user: &str) -> Option<&Person> {
        self.people
            .iter()
            .flat_map(|person| {
                person
                    .accounts
                    .iter()
                    .filter(|account| account.matches(agent, user))
                    .map(move |account| (account.precision(), person))
            })
            .max_by_key(|(precision, person)| (*precision, std::cmp::Reverse(person.id)))
            .map(|(_, person)| person)
    }

    /// [`Self::resolve`] as a [`Who`].
    pub fn who(&self, agent: AgentId, user: &str) -> Who {
        match self.resolve(agent, user) {
            Some(person) => Who::Person(person.id),
            None => Who::Account {
                agent,
                user: user.to_owned(),
            },
        }
    }

    /// The accounts seen, by the person each resolves to (each resolved
    /// once), sorted; accounts no person holds are left out.
    pub fn holdings(&self, seen: &[AccountSeen]) -> BTreeMap<PersonId, Vec<(AgentId, String)>> {
        let mut holdings: BTreeMap<PersonId, Vec<(AgentId, String)>> = BTreeMap::new();
        for account in seen {
            if let Some(person) = self.resolve(account.agent, &account.user) {
                holdings
                    .entry(person.id)
                    .or_default()
                    .push((account.agent, account.user.clone()));
            }
        }
        for accounts in holdings.values_mut() {
            accounts.sort();
            accounts.dedup();
        }
        holdings
    }

    /// The accounts seen that resolve to `id`, sorted.
    pub fn seen_accounts(&self, id: PersonId, seen: &[AccountSeen]) -> Vec<(AgentId, String)> {
        self.holdings(seen).remove(&id).unwrap_or_default()
    }

    /// What each person was seen as, `user@workstation`, sorted: the
    /// people screen's and `people list`'s line.
    pub fn seen_as(
        &self,
        seen: &[AccountSeen],
        name_of: &dyn Fn(AgentId) -> String,
    ) -> BTreeMap<PersonId, Vec<String>> {
        self.holdings(seen)
            .into_iter()
            .map(|(id, accounts)| {
                let mut labels: Vec<String> = accounts
                    .into_iter()
                    .map(|(agent, user)| format!("{user}@{}", name_of(agent)))
                    .collect();
                labels.sort();
                (id, labels)
            })
            .collect()
    }

    /// Adds a person; returns its number.
    pub fn add(
        &mut self,
        name: &str,
        email: &str,
        team: &str,
        accounts: Vec<Account>,
        name_of: &dyn Fn(AgentId) -> String,
    ) -> Result<PersonId, PeopleError> {
        if self.people.len() >= MAX_PEOPLE {
            return Err(PeopleError::TooManyPeople);
        }
        let person = Person {
            id: PersonId(self.next_id.max(1)),
            name: check_name(name)?,
            email: check_email(email)?,
            team: check_team(team)?,
            active: true,
            accounts: Vec::new(),
        };
        let id = person.id;
        let mut book = self.clone();
        book.people.push(person);
        book.next_id = id.0 + 1;
        for account in accounts {
            book.map(id, account, name_of)?;
        }
        *self = book;
        Ok(id)
    }

    /// Changes a person's name, e-mail and team.
    pub fn edit(
        &mut self,
        id: PersonId,
        name: &str,
        email: &str,
        team: &str,
    ) -> Result<(), PeopleError> {
        let (name, email, team) = (check_name(name)?, check_email(email)?, check_team(team)?);
        let person = self.get_mut(id)?;
        (person.name, person.email, person.team) = (name, email, team);
        Ok(())
    }

    /// Gives `account` to `id`; refused if another person holds it.
    pub fn map(
        &mut self,
        id: PersonId,
        account: Account,
        name_of: &dyn Fn(AgentId) -> String,
    ) -> Result<(), PeopleError> {
        if let Some(holder) = self
            .people
            .iter()
            .find(|person| person.accounts.contains(&account))
        {
            if holder.id == id {
                return Ok(());
            }
            return Err(PeopleError::Taken {
                account: describe_account(&account, name_of),
                holder: holder.name.clone(),
                id: holder.id,
            });
        }
        let person = self.get_mut(id)?;
        if person.accounts.len() >= MAX_ACCOUNTS {
            return Err(PeopleError::TooManyAccounts);
        }
        person.accounts.push(account);
        person.accounts.sort();
        Ok(())
    }

    /// Takes `account` from `id`.
    pub fn unmap(
        &mut self,
        id: PersonId,
        account: &Account,
        name_of: &dyn Fn(AgentId) -> String,
    ) -> Result<(), PeopleError> {
        let person = self.get_mut(id)?;
        let before = person.accounts.len();
        person.accounts.retain(|held| held != account);
        if person.accounts.len() == before {
            return Err(PeopleError::NotHeld {
                account: describe_account(account, name_of),
                name: person.name.clone(),
                id,
            });
        }
        Ok(())
    }

    /// Deactivates (`false`) or reactivates a person.
    pub fn set_active(&mut self, id: PersonId, active: bool) -> Result<(), PeopleError> {
        self.get_mut(id)?.active = active;
        Ok(())
    }

    /// Removes a person from the book (after an erasure); its number is
    /// never given again.
    pub fn remove(&mut self, id: PersonId) -> Option<Person> {
        let index = self.people.iter().position(|person| person.id == id)?;
        Some(self.people.remove(index))
    }

    /// Persons to suggest for the accounts seen that no person holds: one
    /// per OS user, named after it, holding that user on any workstation;
    /// a user seen on more than [`SHARED_ACCOUNT_WORKSTATIONS`]
    /// workstations (a generic account) gives one per workstation, holding
    /// that user there. Sorted by name.
    pub fn proposals(
        &self,
        seen: &[AccountSeen],
        name_of: &dyn Fn(AgentId) -> String,
    ) -> Vec<Proposal> {
        let mut by_user: BTreeMap<&str, BTreeSet<AgentId>> = BTreeMap::new();
        for account in seen {
            if self.resolve(account.agent, &account.user).is_none() {
                by_user
                    .entry(account.user.as_str())
                    .or_default()
                    .insert(account.agent);
            }
        }
        let mut proposals = Vec::new();
        for (user, agents) in by_user {
            if agents.len() > SHARED_ACCOUNT_WORKSTATIONS {
                for agent in agents {
                    proposals.push(Proposal {
                        name: format!("{} ({})", name_from_user(user), name_of(agent)),
                        accounts: vec![Account {
                            user: Some(user.to_owned()),
                            agent: Some(agent),
                        }],
                        seen_on: vec![name_of(agent)],
                    });
                }
            } else {
                let mut seen_on: Vec<String> = agents.iter().map(|agent| name_of(*agent)).collect();
                seen_on.sort();
                proposals.push(Proposal {
                    name: name_from_user(user),
                    accounts: vec![Account {
                        user: Some(user.to_owned()),
                        agent: None,
                    }],
                    seen_on,
                });
            }
        }
        proposals.sort_by(|a, b| a.name.cmp(&b.name));
        proposals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: u8) -> AgentId {
        AgentId::from_bytes([n; 16])
    }

    fn name_of(agent: AgentId) -> String {
        format!("pc-{}", agent.as_bytes()[0])
    }

    fn user(name: &str) -> Account {
        Account {
            user: Some(name.to_owned()),
            agent: None,
        }
    }

    fn seen(n: u8, user: &str) -> AccountSeen {
        AccountSeen {
            agent: agent(n),
            user: user.to_owned(),
            first_seen_ms: 0,
            last_seen_ms: 1,
        }
    }

    #[test]
    fn the_most_precise_account_wins() {
        let mut book = PeopleBook::default();
        let reception = book
            .add(
                "Accueil",
                "",
                "",
                vec![Account {
                    user: None,
                    agent: Some(agent(3)),
                }],
                &name_of,
            )
            .unwrap();
        let alice = book
            .add(
                "Alice Martin",
                "alice@example.fr",
                "Compta",
                vec![user("alice")],
                &name_of,
            )
            .unwrap();
        let bob = book
            .add(
                "Bob",
                "",
                "",
                vec![Account {
                    user: Some("bob".to_owned()),
                    agent: Some(agent(3)),
                }],
                &name_of,
            )
            .unwrap();
        assert_eq!(book.who(agent(1), "alice"), Who::Person(alice));
        assert_eq!(book.who(agent(3), "alice"), Who::Person(alice));
        assert_eq!(book.who(agent(3), "bob"), Who::Person(bob));
        assert_eq!(book.who(agent(3), "carol"), Who::Person(reception));
        assert_eq!(
            book.who(agent(1), "bob"),
            Who::Account {
                agent: agent(1),
                user: "bob".to_owned()
            }
        );
        assert_eq!(book.find("#2").unwrap().id, alice);
        assert_eq!(book.find("alice martin").unwrap().id, alice);
        assert!(matches!(book.find("nobody"), Err(PeopleError::Unknown(_))));
    }

    #[test]
    fn an_account_has_one_holder_and_bad_values_are_refused() {
        let mut book = PeopleBook::default();
        let alice = book
            .add("Alice", "", "", vec![user("alice")], &name_of)
            .unwrap();
        let error = book
            .add("Alice bis", "", "", vec![user("alice")], &name_of)
            .unwrap_err();
        assert!(
            error.to_string().contains("already belongs to Alice (#1)"),
            "{error}"
        );
        // Refused whole: nothing added.
        assert_eq!(book.people().len(), 1);
        assert_eq!(check_name("  "), Err(PeopleError::EmptyName));
        assert_eq!(check_name("a\u{7}b"), Err(PeopleError::BadName));
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
        for email in ["x", "a@b", "@b.fr", "a b@c.fr", "a@b@c.fr", "<a@b.fr>"] {
            assert!(check_email(email).is_err(), "{email}");
        }
        assert_eq!(check_email(" a@b.fr ").unwrap().as_deref(), Some("a@b.fr"));
        assert_eq!(check_account(None, None), Err(PeopleError::EmptyAccount));
        assert_eq!(
            check_account(Some(&"u".repeat(protocol::MAX_USER_BYTES + 1)), None),
            Err(PeopleError::BadUser)
        );
        book.set_active(alice, false).unwrap();
        assert!(!book.get(alice).unwrap().active);
        book.unmap(alice, &user("alice"), &name_of).unwrap();
        assert!(book.unmap(alice, &user("alice"), &name_of).is_err());
        let removed = book.remove(alice).unwrap();
        assert_eq!(removed.name, "Alice");
        let next = book.add("Next", "", "", Vec::new(), &name_of).unwrap();
        assert_eq!(next, PersonId(2), "numbers are never reused");
    }

    #[test]
    fn proposals_cover_unheld_accounts_and_split_generic_ones() {
        let mut book = PeopleBook::default();
        book.add("Alice", "", "", vec![user("alice")], &name_of)
            .unwrap();
        let seen = [
            seen(1, "alice"),
            seen(1, "jean.dupont"),
            seen(2, "jean.dupont"),
            seen(3, "bob"),
            seen(4, "accueil"),
            seen(5, "accueil"),
            seen(6, "accueil"),
            seen(7, "accueil"),
        ];
        let proposals = book.proposals(&seen, &name_of);
        let names: Vec<&str> = proposals.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Accueil (pc-4)",
                "Accueil (pc-5)",
                "Accueil (pc-6)",
                "Accueil (pc-7)",
                "Bob",
                "Jean Dupont"
            ]
        );
        let jean = &proposals[5];
        assert_eq!(jean.accounts, vec![user("jean.dupont")]);
        assert_eq!(jean.seen_on, vec!["pc-1", "pc-2"]);
    }
}
