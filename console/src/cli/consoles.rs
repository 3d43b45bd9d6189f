//! `consoles` (the console identities the site issued, and which are
//! revoked) and `revoke console` (a new deny-list signed by the site CA,
//! kept by this console and handed to every agent at its next sync).
//! The CA key stays in this process; only the signed list reaches the
//! engine.

use std::path::Path;

use anyhow::{bail, Context, Result};
use certs::deny::DenyList;
use certs::registry::{issued_consoles, IssuedConsole};
use certs::{SiteCa, PASSPHRASE_ENV};
use console_engine::commands::CliRequest;
use console_engine::settings::site_clock_of;
use protocol::SignedDenyList;
use uuid::Uuid;

use super::engine::{self, StoreCommand};

/// The deny-list this console holds, if it verifies with `ca_cert_der`.
fn held_list(data: &Path, ca_cert_der: &[u8]) -> Result<Option<DenyList>> {
    let json = engine::run_kept(data, CliRequest::DenyList)?;
    if json.is_empty() {
        return Ok(None);
    }
    let signed: SignedDenyList = serde_json::from_slice(&json)
        .context("the deny-list this console holds does not decode")?;
    Ok(DenyList::verify(&signed, ca_cert_der).ok())
}

/// Lists the consoles the site in `site` issued, with their state.
pub fn list(data: &Path, site: &Path, json: bool) -> Result<()> {
    let issued = issued_consoles(site)?;
    let ca_cert = certs::ca::read_ca_certificate(site)?;
    let denied = held_list(data, &ca_cert)?;
    let now = time::OffsetDateTime::now_utc();
    let (clock, _) = site_clock_of(data)?;
    let state = |console: &IssuedConsole| {
        let revoked = denied.as_ref().is_some_and(|list| {
            list.consoles.contains(&console.console_id)
                || list.fingerprints.contains(&console.fingerprint)
        });
        if revoked {
            "revoked"
        } else if console.not_after < now {
            "expired"
        } else {
            "valid"
        }
    };
    if json {
        let rows: Vec<serde_json::Value> = issued
            .iter()
            .map(|console| {
                serde_json::json!({
                    "console_id": console.console_id,
                    "role": console.role,
                    "name": console.name,
                    "team": console.team,
                    "fingerprint": console.fingerprint,
                    "not_after": console.not_after.unix_timestamp() * 1000,
                    "state": state(console),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if issued.is_empty() {
        println!(
            "{} records no console yet (consoles issued before this version are not listed)",
            site.display()
        );
        return Ok(());
    }
    for console in &issued {
        println!(
            "{} {:<6} {:<24} {:<16} expires {}  {}",
            console.console_id,
            console.role,
            console.name,
            console
                .team
                .as_deref()
                .map_or_else(|| "(every team)".to_owned(), |team| format!("team {team}")),
            clock.iso_local(console.not_after.unix_timestamp() * 1000),
            state(console)
        );
    }
    Ok(())
}

/// Revokes the console `which` (an id, or a unique name in the site's
/// registry): a new deny-list signed by the site CA, kept by this console.
pub fn revoke(data: &Path, site: &Path, which: &str) -> Result<()> {
    let passphrase = std::env::var(PASSPHRASE_ENV).ok();
    let ca = SiteCa::open(site, passphrase.as_deref())
        .with_context(|| format!("cannot open the site CA in {}", site.display()))?;
    let issued = issued_consoles(site)?;
    let (console_id, fingerprint, label) = match Uuid::parse_str(which.trim()) {
        Ok(id) => {
            let known = issued.iter().find(|console| console.console_id == id);
            (
                id,
                known.map(|console| console.fingerprint.clone()),
                known.map_or_else(
                    || format!("console {id}"),
                    |c| format!("console {id} ({})", c.name),
                ),
            )
        }
        Err(_) => {
            let named: Vec<&IssuedConsole> = issued
                .iter()
                .filter(|console| console.name == which)
                .collect();
            match named.as_slice() {
                [one] => (
                    one.console_id,
                    Some(one.fingerprint.clone()),
                    format!("console {} ({})", one.console_id, one.name),
                ),
                [] => bail!(
                    "no console named {which:?} in {}: give its id (see `smarttracker-console consoles --site {}`)",
                    site.display(),
                    site.display()
                ),
                many => bail!(
                    "{} consoles are named {which:?}: give the id of the one to revoke ({})",
                    many.len(),
                    many.iter()
                        .map(|console| console.console_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    if let Some(own) = engine::identity(data)? {
        if own.console_id == console_id {
            bail!("{label} is this console's own identity: revoke it from another admin console");
        }
    }
    let mut list = held_list(data, &ca.cert_der())?.unwrap_or_else(|| DenyList::empty(&ca));
    list.consoles.insert(console_id);
    list.fingerprints.extend(fingerprint);
    let signed = list.sign(&ca, console_engine::clock::wall_now_ms())?;
    engine::run(
        data,
        StoreCommand::new(CliRequest::KeepDenyList {
            signed,
            revoked: label,
        })
        .needs_identity(),
    )
}
