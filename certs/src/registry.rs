//! The site's record of the console identities it issued:
//! `consoles.jsonl` in the site directory, one JSON object per line,
//! appended (and synced) each time a console certificate is issued. It is
//! what `smarttracker-console consoles` lists and how `revoke console`
//! finds a console's certificate by id or name.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::files::{self, FileError, PUBLIC_FILE_MODE};
use crate::role::Role;

/// File name of the registry inside a site directory.
pub const CONSOLES_FILE: &str = "consoles.jsonl";

/// One issued console certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedConsole {
    pub console_id: Uuid,
    pub role: Role,
    pub name: String,
    /// The team it is limited to.
    #[serde(default)]
    pub team: Option<String>,
    /// Hex SHA-256 of the certificate.
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
}

const WHAT: &str = "console registry";

/// Appends `console` to the registry of the site in `dir`, durably.
pub(crate) fn record(dir: &Path, console: &IssuedConsole) -> Result<(), FileError> {
    let path = dir.join(CONSOLES_FILE);
    let mut line = serde_json::to_string(console)
        .map_err(|err| FileError::invalid(WHAT, &path, err.to_string(), "report this as a bug"))?;
    line.push('\n');
    let hint = "check that the site directory is writable by this user";
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PUBLIC_FILE_MODE)
        .open(&path)
        .map_err(|err| FileError::io(WHAT, &path, err, hint))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| FileError::io(WHAT, &path, err, hint))
}

/// Every console the site in `dir` issued, oldest first (none when the
/// registry does not exist: a site made before it, or no console yet). A
/// line that does not parse is an error naming it.
pub fn issued_consoles(dir: &Path) -> Result<Vec<IssuedConsole>, FileError> {
    let path = dir.join(CONSOLES_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = files::read(&path, WHAT)?;
    let text = files::read_text(bytes, &path, WHAT)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|err| {
                FileError::invalid(
                    WHAT,
                    &path,
                    format!("line {}: {err}", index + 1),
                    "restore the file from a backup of the site directory, or remove that line",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{SiteCa, Validity};

    #[test]
    fn every_issued_console_is_recorded_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = dir.path().join("site");
        let ca = SiteCa::init(
            &site,
            "Registry",
            None,
            Validity::days_from(OffsetDateTime::now_utc(), 30),
        )
        .expect("site");
        assert!(issued_consoles(&site).expect("none").is_empty());
        let validity = Validity::days_from(OffsetDateTime::now_utc(), 10);
        let admin = ca
            .issue_console(Role::Admin, "Direction", validity)
            .expect("admin");
        let viewer = ca
            .issue_console(Role::Viewer, "Salle 2", validity)
            .expect("viewer");
        let issued = issued_consoles(&site).expect("issued");
        assert_eq!(
            issued.iter().map(|c| c.console_id).collect::<Vec<_>>(),
            vec![admin.console_id, viewer.console_id]
        );
        assert_eq!(issued[1].role, Role::Viewer);
        assert_eq!(
            issued[1].fingerprint,
            crate::fingerprint_der(&viewer.cert_der)
        );
        let mut file = OpenOptions::new()
            .append(true)
            .open(site.join(CONSOLES_FILE))
            .expect("open");
        file.write_all(b"{not json\n").expect("write");
        let error = issued_consoles(&site).expect_err("bad line").to_string();
        assert!(error.contains("line 3"), "{error}");
    }
}
