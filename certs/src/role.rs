//! Console roles: what a console certificate allows its holder to ask of an agent.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The role a console certificate carries in its URI SAN.
///
/// Viewers read usage, sessions and health; admins may also take
/// screenshots, watch live frames, change policy and run actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    /// The lowercase name used in certificates, files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `admin` nor `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {given:?}: use \"admin\" or \"viewer\"")]
pub struct ParseRoleError {
    pub given: String,
}

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(ParseRoleError {
                given: other.to_owned(),
            }),
        }
    }
}
