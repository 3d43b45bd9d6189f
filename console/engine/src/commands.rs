//! The command line's headless commands (agents, add-agent, export,
//! report, sync now, screenshot, revoke agent, people), run by the engine: in the
//! CLI's own process, or in `serve` when one runs. One definition of each; what a
//! command prints goes to an [`Output`] (the terminal, or the socket back
//! to the CLI), never straight to a file descriptor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protocol::{CaptureSpec, ErrorCode, Request, Response, UnixMillis};
use serde::{Deserialize, Serialize};

use crate::analytics::{format_duration_ms, Range};
use crate::categories::Categoriser;
use crate::discovery::{self, Candidate};
use crate::export::{ExportError, Format, Table};
use crate::i18n::{tr, trf, Lang};
use crate::model::{AgentId, DayNumber};
use crate::reach::Addresses;
use crate::settings::ConsoleSettings;
use crate::store::{AgentRecord, AuditEntry, ConsoleStore, ErasedCounts, ShotSource, StoreError};
use crate::sync::{
    inventory_record, unsynced_agents, Outcome, StreamReport, SyncConfig, SyncError, Syncer,
};

/// Days an export covers when `from` is not given.
pub const EXPORT_DEFAULT_DAYS: i32 = 30;
/// Bytes of a command's output sent in one piece.
pub const OUTPUT_CHUNK_BYTES: usize = 64 * 1024;
/// The largest agent certificate `add-agent` takes (DER).
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// Characters of an agent id or name a refusal repeats.
const SHOWN_AGENT_CHARS: usize = 64;

/// What the command line asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CliRequest {
    /// Lists the inventory (and each agent's recent faults).
    Agents { json: bool },
    /// Adds an agent from the certificate the CLI read (from a bundle or
    /// a PEM file: the bundle's private key never leaves the CLI).
    AddAgent {
        /// Shown in messages.
        file_name: String,
        cert_der: Vec<u8>,
        name: String,
        /// The agent group it joins (enrolment `--group`).
        group: Option<String>,
    },
    /// Writes a table to the output (the CLI puts it in a file or on
    /// standard output).
    Export {
        table: Table,
        format: Format,
        /// `YYYY-MM-DD`, site days; `from` defaults to
        /// [`EXPORT_DEFAULT_DAYS`] before `to`, `to` to today.
        from: Option<String>,
        to: Option<String>,
        /// The file the CLI writes it to (for the audit log); `None`:
        /// standard output.
        destination: Option<String>,
    },
    /// The organisation's report for the last `days` (1: the last 24 h),
    /// in `lang` (`None`: the console's `language` setting).
    Report { days: u16, lang: Option<Lang> },
    /// One sync pass now.
    SyncOnce {
        reach: Reach,
        agent_deadline_secs: u64,
        budget_records: u64,
    },
    /// Captures an agent's screen: the JPEG is the output.
    Screenshot {
        /// An agent id, or a unique name in the inventory.
        agent: String,
        spec: CaptureSpec,
        reach: Reach,
        /// Where the CLI writes it, for the audit log and the message.
        destination: String,
    },
    /// Renews the certificates of inventoried agents with less than a
    /// third of their validity left (every one with `force`): a new key
    /// made on each agent, its CSR signed by the site CA in `site`.
    Renew {
        site: PathBuf,
        passphrase: Option<Passphrase>,
        reach: Reach,
        force: bool,
    },
    /// The site's deny-list this console holds: the signed list as JSON
    /// data, nothing when it holds none.
    DenyList,
    /// Keeps a newer deny-list signed by the site CA (made by `revoke
    /// console`, which holds the CA key); agents get it at their next sync.
    KeepDenyList {
        signed: protocol::SignedDenyList,
        /// The consoles it revokes, for the audit log.
        revoked: String,
    },
    /// Removes an agent from the inventory (sync then refuses it); with
    /// `erase`, also deletes everything the store holds about it.
    RevokeAgent {
        /// An agent id, or a unique name in the inventory; with `erase`,
        /// also the id of an agent already removed whose data is left.
        agent: String,
        erase: bool,
    },
    /// The people book: list, add, map, edit, deactivate.
    People(crate::people::commands::PeopleAsk),
    /// The alert book: list, acknowledge, mute.
    Alerts(crate::alerts::commands::AlertsAsk),
}

impl CliRequest {
    /// Whether running it may change what screens show.
    pub fn changes_data(&self) -> bool {
        match self {
            CliRequest::Agents { .. }
            | CliRequest::Export { .. }
            | CliRequest::Report { .. }
            | CliRequest::DenyList
            | CliRequest::People(crate::people::commands::PeopleAsk::List { .. })
            | CliRequest::Alerts(crate::alerts::commands::AlertsAsk::List { .. }) => false,
            CliRequest::AddAgent { .. }
            | CliRequest::SyncOnce { .. }
            | CliRequest::Screenshot { .. }
            | CliRequest::Renew { .. }
            | CliRequest::KeepDenyList { .. }
            | CliRequest::RevokeAgent { .. }
            | CliRequest::People(_)
            | CliRequest::Alerts(_) => true,
        }
    }
}

/// The site CA's passphrase, on its way from the command line to the
/// engine over the console's own socket (mode 0600); never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passphrase(pub String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

/// Where to look for agents besides remembered addresses and static peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// Tried first.
    pub peers: Vec<SocketAddr>,
    /// mDNS browse time; `None`: no mDNS.
    pub mdns_browse_secs: Option<u64>,
}

/// One piece of a command's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CliOutput {
    /// The command's product (a report, a table, a JPEG).
    Data(Vec<u8>),
    /// A line for the person (standard error).
    Message(String),
}

/// Where a running command's output goes.
pub type Output = Arc<dyn Fn(CliOutput) + Send + Sync>;

/// Why a command failed; the text is what the person reads.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

/// What a command runs against.
#[derive(Clone)]
pub struct CommandContext {
    pub store: Arc<ConsoleStore>,
    /// `Err`: why this console cannot reach agents (no identity).
    pub syncer: Result<Arc<Syncer>, String>,
    pub settings: ConsoleSettings,
    /// Shown in hints (`--data DIR`).
    pub data_dir: PathBuf,
    /// Who the audit log names for this command.
    pub actor: String,
}

impl CommandContext {
    /// Notes in the audit log that this command's actor did `action` to
    /// `target`, now.
    pub(crate) fn audit(
        &self,
        action: &str,
        target: String,
        detail: String,
    ) -> Result<(), CommandError> {
        self.store.audit(AuditEntry {
            at_ms: crate::clock::wall_now_ms(),
            actor: self.actor.clone(),
            action: action.to_owned(),
            target,
            detail,
        })?;
        Ok(())
    }
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext")
            .field("data_dir", &self.data_dir)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// Runs `request`; blocking work (the store) runs on blocking threads.
pub async fn execute(
    context: CommandContext,
    categoriser: impl std::future::Future<Output = Result<Arc<Categoriser>, String>>,
    request: CliRequest,
    output: Output,
) -> Result<(), CommandError> {
    match request {
        CliRequest::Agents { json } => on_store(move || list_agents(&context, json, &output)).await,
        CliRequest::AddAgent {
            file_name,
            cert_der,
            name,
            group,
        } => {
            on_store(move || {
                add_agent(
                    &context,
                    &file_name,
                    &cert_der,
                    (&name, group.as_deref()),
                    &output,
                )
            })
            .await
        }
        CliRequest::Export {
            table,
            format,
            from,
            to,
            destination,
        } => {
            let categoriser = categoriser.await.map_err(CommandError::Failed)?;
            on_store(move || {
                export(
                    &context,
                    &categoriser,
                    ExportAsk {
                        table,
                        format,
                        from,
                        to,
                        destination,
                    },
                    &output,
                )
            })
            .await
        }
        CliRequest::Report { days, lang } => {
            let categoriser = categoriser.await.map_err(CommandError::Failed)?;
            on_store(move || report(&context, &categoriser, days, lang, &output)).await
        }
        CliRequest::SyncOnce {
            reach,
            agent_deadline_secs,
            budget_records,
        } => {
            let config = SyncConfig {
                agent_deadline: Duration::from_secs(agent_deadline_secs),
                budget_records,
                ..SyncConfig::default()
            };
            sync_once(&context, &reach, config, &output).await
        }
        CliRequest::Screenshot {
            agent,
            spec,
            reach,
            destination,
        } => screenshot(&context, &agent, spec, &reach, &destination, &output).await,
        CliRequest::Renew {
            site,
            passphrase,
            reach,
            force,
        } => renew(&context, site, passphrase, &reach, force, &output).await,
        CliRequest::DenyList => {
            on_store(move || {
                if let Some(held) = crate::revocation::held(&context.store)? {
                    let json = serde_json::to_vec(&held)
                        .map_err(|error| CommandError::Failed(error.to_string()))?;
                    output(CliOutput::Data(json));
                }
                Ok(())
            })
            .await
        }
        CliRequest::KeepDenyList { signed, revoked } => {
            let syncer = context.syncer.clone().map_err(CommandError::Refused)?;
            on_store(move || {
                keep_deny_list(&context, syncer.site_ca_der(), &signed, &revoked, &output)
            })
            .await
        }
        CliRequest::RevokeAgent { agent, erase } => {
            on_store(move || revoke_agent(&context, &agent, erase, &output)).await
        }
        CliRequest::People(ask) => {
            on_store(move || crate::people::commands::run(&context, ask, &output)).await
        }
        CliRequest::Alerts(ask) => {
            on_store(move || crate::alerts::commands::run(&context, ask, &output)).await
        }
    }
}

async fn renew(
    context: &CommandContext,
    site: PathBuf,
    passphrase: Option<Passphrase>,
    reach: &Reach,
    force: bool,
    output: &Output,
) -> Result<(), CommandError> {
    let syncer = syncer(context)?;
    if syncer.role() != certs::Role::Admin {
        return Err(CommandError::Refused(
            "renewing agents' certificates needs an admin console".to_owned(),
        ));
    }
    let ca = on_store(move || {
        certs::SiteCa::open(&site, passphrase.as_ref().map(|p| p.0.as_str()))
            .map_err(|error| CommandError::Refused(format!("cannot open the site CA: {error}")))
    })
    .await?;
    if ca.cert_der().as_ref() != syncer.site_ca_der() {
        return Err(CommandError::Refused(
            "that site CA is not the one this console belongs to: give its own site directory"
                .to_owned(),
        ));
    }
    let store = context.store.clone();
    let agents = on_store_value(move || store.agents()).await?;
    let addresses = addresses(context, reach);
    let (mut renewed, mut failed) = (0usize, 0usize);
    for record in agents {
        match renew_one(context, &syncer, &ca, &record, &addresses, force).await {
            Ok(Some(line)) => {
                renewed += 1;
                say(output, line);
            }
            Ok(None) => {}
            Err(reason) => {
                failed += 1;
                say(output, format!("{}: not renewed: {reason}", record.name));
            }
        }
    }
    say(
        output,
        format!("{renewed} certificate(s) renewed, {failed} agent(s) not renewed"),
    );
    if failed > 0 && renewed == 0 {
        return Err(CommandError::Failed(
            "no certificate could be renewed; see the reasons above".to_owned(),
        ));
    }
    Ok(())
}

/// Renews one agent's certificate if it is due (or `force`): the line to
/// say, `None` when it was not due.
async fn renew_one(
    context: &CommandContext,
    syncer: &Arc<Syncer>,
    ca: &certs::SiteCa,
    record: &AgentRecord,
    addresses: &Addresses,
    force: bool,
) -> Result<Option<String>, String> {
    let (session, _addr) = crate::reach::open_session(syncer, record, addresses)
        .await
        .map_err(|unreached| unreached.reasons().join("; "))?;
    let outcome = renew_session(context, &session, ca, record, force).await;
    session.close(b"renewal done");
    outcome
}

async fn renew_session(
    context: &CommandContext,
    session: &crate::sync::AgentSession,
    ca: &certs::SiteCa,
    record: &AgentRecord,
    force: bool,
) -> Result<Option<String>, String> {
    let current = session
        .peer_certificate()
        .ok_or("the agent presented no certificate")?;
    let summary = certs::inspect::summarize(&current).map_err(|error| error.to_string())?;
    // The renewed certificate keeps the workstation's team.
    let team = certs::tls::agent_team(&current).map_err(|error| error.to_string())?;
    let now = time::OffsetDateTime::from_unix_timestamp(crate::clock::wall_now_ms() / 1000)
        .map_err(|error| error.to_string())?;
    if !force && !certs::enrol::renewal_due(summary.not_before, summary.not_after, now) {
        return Ok(None);
    }
    let csr_der = match session.ask(&Request::NewKey).await {
        Ok(Response::KeyRequest(csr_der)) => csr_der,
        Ok(_) => return Err("the agent did not answer with a key request".to_owned()),
        Err(error) => return Err(error.to_string()),
    };
    let validity = ca.leaf_validity(now, certs::AGENT_VALIDITY_DAYS);
    let cert_der = ca
        .renew_agent_request(
            &csr_der,
            record.agent,
            (Some(&record.name), team.as_deref()),
            validity,
        )
        .map_err(|error| format!("its key request was not signed: {error}"))?;
    let pin = certs::tls::AgentPin::of_certificate(&cert_der).map_err(|error| error.to_string())?;
    match session
        .ask(&Request::InstallCertificate(cert_der.to_vec()))
        .await
    {
        Ok(Response::CertificateInstalled) => {}
        Ok(_) => return Err("the agent did not confirm the new certificate".to_owned()),
        Err(error) => return Err(error.to_string()),
    }
    let store = context.store.clone();
    let mut updated = record.clone();
    updated.spki_sha256 = pin.spki_sha256;
    let actor = context.actor.clone();
    let until = validity.not_after.date();
    let name = record.name.clone();
    on_store(move || {
        store.upsert_agent(&updated)?;
        store.audit(AuditEntry {
            at_ms: crate::clock::wall_now_ms(),
            actor,
            action: "renew-agent".to_owned(),
            target: updated.agent.to_string(),
            detail: format!("{name}: new key, certificate until {until}"),
        })?;
        Ok(())
    })
    .await
    .map_err(|error| error.to_string())?;
    Ok(Some(format!(
        "{}: renewed (new key, certificate until {until})",
        record.name
    )))
}

fn keep_deny_list(
    context: &CommandContext,
    site_ca_der: &[u8],
    signed: &protocol::SignedDenyList,
    revoked: &str,
    output: &Output,
) -> Result<(), CommandError> {
    let list =
        crate::revocation::keep(&context.store, site_ca_der, signed).map_err(
            |error| match error {
                crate::revocation::RevocationError::Store(error) => CommandError::Store(error),
                other => CommandError::Refused(other.to_string()),
            },
        )?;
    context.store.audit(AuditEntry {
        at_ms: crate::clock::wall_now_ms(),
        actor: context.actor.clone(),
        action: "revoke-console".to_owned(),
        target: revoked.to_owned(),
        detail: format!(
            "deny-list serial {}, {} console(s) revoked in all",
            list.serial,
            list.consoles.len()
        ),
    })?;
    say(
        output,
        format!(
            "revoked {revoked}: agents refuse it from their next sync by any console of this site (deny-list serial {})",
            list.serial
        ),
    );
    Ok(())
}

/// Where a command reaches one given agent: the `--peer`s, the static
/// peers of the settings, and mDNS when asked (see [`crate::reach`]).
fn addresses(context: &CommandContext, reach: &Reach) -> Addresses {
    Addresses {
        given: reach.peers.clone(),
        static_peers: context.settings.peer_addrs(),
        mdns_browse: reach.mdns_browse_secs.map(Duration::from_secs),
    }
}

/// Runs blocking `work` (the store, mDNS) through [`crate::blocking`].
async fn on_store<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    crate::blocking::blocking(work, |join_error| {
        CommandError::Failed(format!("command failed: {join_error}"))
    })
    .await
}

pub(crate) fn say(output: &Output, text: String) {
    output(CliOutput::Message(text));
}

/// Sends what is written as [`CliOutput::Data`] pieces.
struct DataWriter<'a> {
    output: &'a Output,
    buffer: Vec<u8>,
}

impl<'a> DataWriter<'a> {
    fn new(output: &'a Output) -> Self {
        DataWriter {
            output,
            buffer: Vec::new(),
        }
    }
}

impl std::io::Write for DataWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= OUTPUT_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            (self.output)(CliOutput::Data(std::mem::take(&mut self.buffer)));
        }
        Ok(())
    }
}

impl Drop for DataWriter<'_> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

fn list_agents(context: &CommandContext, json: bool, output: &Output) -> Result<(), CommandError> {
    let store = &context.store;
    let agents = store.agents()?;
    let now_ms = crate::clock::wall_now_ms();
    let faults = store.faults(None)?;
    let faults_of = |agent: AgentId| faults.iter().filter(move |fault| fault.agent == agent);
    let mut text = String::new();
    if json {
        let mut listed = Vec::new();
        for agent in &agents {
            let mut value = serde_json::to_value(agent).map_err(json_error)?;
            value["faults"] = serde_json::to_value(faults_of(agent.agent).collect::<Vec<_>>())
                .map_err(json_error)?;
            listed.push(value);
        }
        text = serde_json::to_string_pretty(&listed).map_err(json_error)?;
        text.push('\n');
        output(CliOutput::Data(text.into_bytes()));
        return Ok(());
    }
    if agents.is_empty() {
        text.push_str(&format!(
            "no agents yet: enrol workstations with `smarttracker-console --data {} enrolment open --site SITE` (or add-agent BUNDLE)\n",
            context.data_dir.display()
        ));
    }
    for agent in agents {
        let state = match agent.last_seen_ms {
            Some(seen_ms) if now_ms - seen_ms < 120_000 => "online".to_owned(),
            Some(seen_ms) => format!(
                "offline, last seen {} ago",
                format_duration_ms(now_ms - seen_ms)
            ),
            None => "never seen".to_owned(),
        };
        text.push_str(&format!(
            "{} {:<20} {:<30} {}{}{}\n",
            agent.agent,
            agent.name,
            state,
            agent.addresses.first().map(String::as_str).unwrap_or("-"),
            if agent.demo { " DEMO" } else { "" },
            agent
                .last_error
                .as_deref()
                .map(|error| format!(" (last error: {error})"))
                .unwrap_or_default()
        ));
        for fault in faults_of(agent.agent).filter(|fault| fault.is_recent(now_ms)) {
            text.push_str(&format!(
                "    FAULT: {} ({} time(s), last {} ago): {}\n",
                fault.kind.describe(),
                fault.count,
                format_duration_ms(now_ms.saturating_sub(fault.last_ms)),
                fault.detail
            ));
        }
    }
    output(CliOutput::Data(text.into_bytes()));
    Ok(())
}

fn json_error(error: serde_json::Error) -> CommandError {
    CommandError::Failed(format!("cannot write JSON: {error}"))
}

pub(crate) fn add_agent(
    context: &CommandContext,
    file_name: &str,
    cert_der: &[u8],
    (name, group): (&str, Option<&str>),
    output: &Output,
) -> Result<(), CommandError> {
    if cert_der.len() > MAX_CERTIFICATE_BYTES {
        return Err(CommandError::Refused(format!(
            "{file_name} holds a certificate larger than {MAX_CERTIFICATE_BYTES} bytes: give the bundle or certificate smarttracker-certs agent wrote"
        )));
    }
    let now_ms = crate::clock::wall_now_ms();
    let record = inventory_record(name, cert_der, now_ms).map_err(|error| {
        CommandError::Refused(format!(
            "{file_name} does not hold an agent certificate: {error}"
        ))
    })?;
    context.store.upsert_agent(&record)?;
    if let Some(group) = group {
        let before = ConsoleSettings::load(&context.store)
            .map_err(|error| CommandError::Failed(error.to_string()))?;
        let mut after = before.clone();
        after.groups.insert(record.agent, group.to_owned());
        after
            .save_changes(&before, &context.store)
            .map_err(|error| CommandError::Failed(error.to_string()))?;
    }
    context.store.audit(AuditEntry {
        at_ms: now_ms,
        actor: context.actor.clone(),
        action: "add-agent".to_owned(),
        target: record.agent.to_string(),
        detail: match group {
            Some(group) => format!("{name} ({file_name}), group {group}"),
            None => format!("{name} ({file_name})"),
        },
    })?;
    output(CliOutput::Data(
        format!("added agent {} ({name})\n", record.agent).into_bytes(),
    ));
    Ok(())
}

/// Parses `YYYY-MM-DD` as a day number of the site's calendar.
pub fn parse_day(text: &str) -> Result<DayNumber, CommandError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| {
        CommandError::Refused(format!("{text:?} is not a date; write it as YYYY-MM-DD"))
    })?;
    Ok(date.to_julian_day() - 2_440_588)
}

struct ExportAsk {
    table: Table,
    format: Format,
    from: Option<String>,
    to: Option<String>,
    destination: Option<String>,
}

fn export(
    context: &CommandContext,
    categoriser: &Categoriser,
    ask: ExportAsk,
    output: &Output,
) -> Result<(), CommandError> {
    let store = &context.store;
    let clock = &store.day_clock();
    let now_ms = crate::clock::wall_now_ms();
    let last_day = match &ask.to {
        Some(day) => parse_day(day)?,
        None => clock.day_of(now_ms),
    };
    let first_day = match &ask.from {
        Some(day) => parse_day(day)?,
        None => last_day.saturating_sub(EXPORT_DEFAULT_DAYS - 1),
    };
    if first_day > last_day {
        return Err(CommandError::Refused(
            "--from is after --to: nothing to export".to_owned(),
        ));
    }
    // Days outside what records can hold are not walked through.
    let range = Range::custom(
        clock.day_start_ms(first_day),
        clock.day_start_ms(last_day.saturating_add(1)),
    )
    .within_records(now_ms);
    let rows = crate::export::export(
        store,
        categoriser,
        &context.settings,
        ask.table,
        ask.format,
        range,
        DataWriter::new(output),
    )?;
    store.audit(AuditEntry {
        at_ms: now_ms,
        actor: context.actor.clone(),
        action: "export".to_owned(),
        target: format!("{:?}", ask.table).to_lowercase(),
        detail: format!(
            "{rows} rows to {}",
            ask.destination.as_deref().unwrap_or("standard output")
        ),
    })?;
    if let Some(destination) = &ask.destination {
        say(output, format!("wrote {rows} rows to {destination}"));
    }
    Ok(())
}

fn report(
    context: &CommandContext,
    categoriser: &Categoriser,
    days: u16,
    lang: Option<Lang>,
    output: &Output,
) -> Result<(), CommandError> {
    let store = &context.store;
    let lang = match lang {
        Some(lang) => lang,
        None => {
            ConsoleSettings::load(store)
                .map_err(|error| CommandError::Failed(error.to_string()))?
                .language
        }
    };
    let now_ms = crate::clock::wall_now_ms();
    let (range, label) = match days {
        0 | 1 => (
            Range::last_24h(now_ms),
            tr(lang, "report.period.day").to_owned(),
        ),
        days => (
            Range::last_days(now_ms, &store.day_clock(), days),
            trf(lang, "report.period.days", &[("days", &days.to_string())]),
        ),
    };
    let text = crate::report::render(
        store,
        categoriser,
        &context.settings,
        range,
        &label,
        lang,
        now_ms,
    )?;
    output(CliOutput::Data(text.into_bytes()));
    Ok(())
}

fn syncer(context: &CommandContext) -> Result<Arc<Syncer>, CommandError> {
    context.syncer.clone().map_err(CommandError::Refused)
}

/// Static peers of `reach` and of the settings, each agent's remembered
/// addresses, then (when asked) what mDNS finds; merged.
async fn candidates(
    context: &CommandContext,
    reach: &Reach,
    output: &Output,
) -> Result<Vec<Candidate>, CommandError> {
    let mut peers = reach.peers.clone();
    peers.extend(context.settings.peer_addrs());
    let store = context.store.clone();
    let agents = on_store_value(move || store.agents()).await?;
    let mut candidates = discovery::known_candidates(&peers, &agents);
    if let Some(browse_secs) = reach.mdns_browse_secs {
        let browse = Duration::from_secs(browse_secs);
        match discovery::browse_off_thread(browse).await {
            Ok(found) => candidates.extend(found),
            Err(problem) => say(output, format!("warning: {problem}")),
        }
    }
    Ok(discovery::merge(candidates))
}

/// [`on_store`] for work that fails with a [`StoreError`].
async fn on_store_value<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, CommandError> {
    on_store(move || Ok(work()?)).await
}

async fn sync_once(
    context: &CommandContext,
    reach: &Reach,
    config: SyncConfig,
    output: &Output,
) -> Result<(), CommandError> {
    let syncer = Arc::new(syncer(context)?.with_config(config));
    if let Some(problem) = syncer.certificate_problem(crate::clock::wall_now_ms()) {
        return Err(CommandError::Refused(problem));
    }
    if let Some(warning) = syncer.certificate_warning(crate::clock::wall_now_ms()) {
        say(output, format!("warning: {warning}"));
    }
    let store = context.store.clone();
    if on_store_value(move || store.agents()).await?.is_empty() {
        return Err(CommandError::Refused(format!(
            "the inventory is empty: enrol workstations with `smarttracker-console --data {} enrolment open --site SITE` (or add-agent BUNDLE)",
            context.data_dir.display()
        )));
    }
    let candidates = candidates(context, reach, output).await?;
    let outcomes = syncer.sync_all(candidates).await;
    let mut text = String::new();
    for outcome in &outcomes {
        text.push_str(&outcome_line(outcome));
        text.push('\n');
    }
    let store = context.store.clone();
    let inventory = on_store_value(move || store.agents()).await?;
    let missing = unsynced_agents(&inventory, &outcomes);
    for (record, why) in &missing {
        text.push_str(&format!(
            "no sync for {} ({}): {why}\n",
            record.name, record.agent
        ));
    }
    output(CliOutput::Data(text.into_bytes()));
    // The alert rules over what this pass brought, as after a background one.
    let (store, actor) = (context.store.clone(), context.actor.clone());
    let evaluated = on_store(move || {
        crate::alerts::run(
            &store,
            &crate::alerts::AlertRules::default(),
            crate::clock::wall_now_ms(),
            &actor,
        )
        .map_err(|error| CommandError::Failed(format!("alert rules not evaluated: {error}")))
    })
    .await?;
    for transition in &evaluated.transitions {
        let (state, alert) = match transition {
            crate::alerts::Transition::Opened(alert) => ("opened", alert),
            crate::alerts::Transition::Cleared(alert) => ("cleared", alert),
        };
        say(
            output,
            format!(
                "alert #{} {state}: {}: {}",
                alert.id,
                evaluated.name_of(alert.agent),
                crate::alerts::commands::describe(alert.rule, alert.value)
            ),
        );
    }
    if !inventory.is_empty() && missing.len() == inventory.len() {
        return Err(CommandError::Failed(format!(
            "no agent of the inventory could be synced ({} expected); see the reasons above",
            inventory.len()
        )));
    }
    Ok(())
}

/// One line about what a sync pass did with one address.
pub fn outcome_line(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Synced {
            addr,
            agent,
            hostname,
            demo,
            streams,
            incomplete: _,
        } => {
            let detail: Vec<String> = streams.iter().map(StreamReport::summary).collect();
            format!(
                "synced {agent} ({hostname}{}) at {addr}: {}",
                if *demo { ", DEMO data" } else { "" },
                detail.join(", ")
            )
        }
        Outcome::Unknown {
            addr,
            claimed_agent,
            reason,
        } => format!(
            "unknown agent at {addr}{}: not in the inventory or key mismatch; nothing ingested ({reason})",
            claimed_agent.map(|id| format!(" (claims {id})")).unwrap_or_default()
        ),
        Outcome::Refused { addr, reason, .. } => format!("refused {addr}: {reason}"),
        Outcome::Faulty {
            addr,
            agent,
            fault,
            reason,
            streams,
        } => {
            let detail: Vec<String> = streams.iter().map(StreamReport::summary).collect();
            format!(
                "FAULT {agent} at {addr}: {}: {reason} (stored before: {})",
                fault.describe(),
                if detail.is_empty() {
                    "nothing".to_owned()
                } else {
                    detail.join(", ")
                }
            )
        }
        Outcome::Unreachable { addr, reason, .. } => format!("unreachable {addr}: {reason}"),
    }
}

/// The inventory record named by `text`: an agent id, or a unique name.
/// A refusal says what to type instead.
pub fn find_agent(
    agents: &[AgentRecord],
    data_dir: &std::path::Path,
    text: &str,
) -> Result<AgentRecord, CommandError> {
    let list_hint = format!(
        "list them with `smarttracker-console --data {} agents`",
        data_dir.display()
    );
    if text.trim().is_empty() {
        return Err(CommandError::Refused(format!(
            "no agent given: give an agent's id or its name; {list_hint}"
        )));
    }
    let by_id = text
        .parse::<AgentId>()
        .ok()
        .and_then(|id| agents.iter().find(|record| record.agent == id));
    if let Some(record) = by_id {
        return Ok(record.clone());
    }
    let named: Vec<&AgentRecord> = agents.iter().filter(|record| record.name == text).collect();
    match named.as_slice() {
        [record] => Ok((*record).clone()),
        [] => Err(CommandError::Refused(format!(
            "no agent {} in the inventory: {list_hint}",
            shown(text)
        ))),
        several => {
            let ids: Vec<String> = several
                .iter()
                .map(|record| record.agent.to_string())
                .collect();
            Err(CommandError::Refused(format!(
                "several agents are named {}: give one of their ids instead: {}",
                shown(text),
                ids.join(", ")
            )))
        }
    }
}

/// `text` quoted for a message: control characters escaped, cut after
/// [`SHOWN_AGENT_CHARS`] characters.
fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(SHOWN_AGENT_CHARS).collect();
    let more = text.chars().nth(SHOWN_AGENT_CHARS).is_some();
    if more {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

fn revoke_agent(
    context: &CommandContext,
    text: &str,
    erase: bool,
    output: &Output,
) -> Result<(), CommandError> {
    let store = &context.store;
    let found = find_agent(&store.agents()?, &context.data_dir, text);
    if !erase {
        let record = found?;
        remove_from_inventory(context, &record)?;
        let agent = record.agent;
        let line = format!(
            "revoked agent {agent} ({}): removed from the inventory, sync ignores it; its data is kept (erase it with `revoke agent {agent} --erase`)",
            shown(&record.name)
        );
        output(CliOutput::Data(format!("{line}\n").into_bytes()));
        return Ok(());
    }
    let (agent, record) = match found {
        Ok(record) => (record.agent, Some(record)),
        // An agent revoked earlier may still have data to erase.
        Err(refusal) => (text.parse::<AgentId>().map_err(|_| refusal)?, None),
    };
    if let Some(record) = &record {
        remove_from_inventory(context, record)?;
    }
    let counts = store.erase_agent(agent)?;
    let settings_named = ConsoleSettings::forget_agent(store, agent)?;
    if record.is_none() && counts == ErasedCounts::default() && !settings_named {
        return Err(CommandError::Refused(format!(
            "no agent {agent} in the inventory and nothing of it in the store: nothing to erase; list the agents with `smarttracker-console --data {} agents`",
            context.data_dir.display()
        )));
    }
    store.audit(AuditEntry {
        at_ms: crate::clock::wall_now_ms(),
        actor: context.actor.clone(),
        action: "erase-agent".to_owned(),
        target: agent.to_string(),
        detail: format!(
            "erased {} records, {} screenshots ({} keys){}",
            counts.records,
            counts.screenshots,
            counts.keys,
            if settings_named {
                "; removed from the settings"
            } else {
                ""
            }
        ),
    })?;
    let who = record.as_ref().map_or_else(
        || format!("what was left of agent {agent}"),
        |record| format!("agent {agent} ({})", shown(&record.name)),
    );
    let line = format!(
        "revoked and erased {who}: {} records and {} screenshots erased",
        counts.records, counts.screenshots
    );
    output(CliOutput::Data(format!("{line}\n").into_bytes()));
    Ok(())
}

/// Removes `record` from the inventory, audited with its id and name.
fn remove_from_inventory(
    context: &CommandContext,
    record: &AgentRecord,
) -> Result<(), CommandError> {
    context.store.remove_agent(record.agent)?;
    context.store.audit(AuditEntry {
        at_ms: crate::clock::wall_now_ms(),
        actor: context.actor.clone(),
        action: "revoke-agent".to_owned(),
        target: record.agent.to_string(),
        detail: format!("{} removed from the inventory", shown(&record.name)),
    })?;
    Ok(())
}

async fn screenshot(
    context: &CommandContext,
    agent: &str,
    spec: CaptureSpec,
    reach: &Reach,
    destination: &str,
    output: &Output,
) -> Result<(), CommandError> {
    let syncer = syncer(context)?;
    // Checked before anything else: a viewer never asks.
    if syncer.role() != certs::Role::Admin {
        return Err(CommandError::Refused(format!(
            "this console's certificate has the {} role; screenshots need an admin console (issue one with `smarttracker-certs console --role admin`)",
            syncer.role()
        )));
    }
    let store = context.store.clone();
    let agents = on_store_value(move || store.agents()).await?;
    let record = find_agent(&agents, &context.data_dir, agent)?;
    let addresses = addresses(context, reach);
    let (session, addr) = match crate::reach::open_session(&syncer, &record, &addresses).await {
        Ok(opened) => opened,
        Err(unreached) if unreached.nothing_tried() && unreached.mdns_problem.is_none() => {
            return Err(CommandError::Failed(format!(
                "no address of {} is known: sync once, or give --peer HOST:PORT",
                record.name
            )));
        }
        Err(unreached) => {
            return Err(CommandError::Failed(format!(
                "{} did not answer: {}",
                record.name,
                unreached.reasons().join("; ")
            )));
        }
    };
    let answer = session.ask(&Request::Screenshot(spec)).await;
    session.close(b"screenshot done");
    let name = &record.name;
    let image = match answer {
        Ok(Response::Image(image)) => image,
        Ok(_) => {
            return Err(CommandError::Failed(format!(
                "{name} did not answer: {addr}: {}",
                SyncError::Unexpected("screenshot")
            )))
        }
        Err(SyncError::Agent(ErrorCode::Forbidden, message)) => {
            return Err(CommandError::Refused(format!(
                "{name} refused: {message}; screenshots need an admin console"
            )))
        }
        Err(SyncError::Agent(ErrorCode::CaptureUnavailable, message)) => {
            return Err(CommandError::Failed(format!(
                "{name} cannot capture its screen: {message}"
            )))
        }
        Err(SyncError::Agent(code, message)) => {
            return Err(CommandError::Failed(format!(
                "{name} refused the screenshot ({code:?}): {message}"
            )))
        }
        Err(error) => {
            return Err(CommandError::Failed(format!(
                "{name} did not answer: {addr}: {error}"
            )))
        }
    };
    crate::store::check_image(&image.meta, &image.bytes).map_err(|error| {
        CommandError::Failed(format!(
            "{} sent a bad image; nothing was written: {error}",
            record.name
        ))
    })?;
    let store = context.store.clone();
    let actor = syncer.actor();
    let destination = destination.to_owned();
    let name = record.name.clone();
    let bytes = image.bytes.clone();
    let stored = on_store_value(move || {
        let stored = store.put_screenshot(record.agent, ShotSource::OnDemand, &image)?;
        store.audit(AuditEntry {
            at_ms: crate::clock::wall_now_ms(),
            actor,
            action: "screenshot-export".to_owned(),
            target: record.agent.to_string(),
            detail: format!(
                "on demand, {}x{} JPEG captured at {} ms, written to {destination}",
                stored.width, stored.height, stored.key.at_ms,
            ),
        })?;
        Ok(stored)
    })
    .await?;
    output(CliOutput::Data(bytes));
    say(
        output,
        format!(
            "{}x{} JPEG, {} KB, captured {} on {name}",
            stored.width,
            stored.height,
            (u64::from(stored.size_bytes) + 512) / 1024,
            utc_text(stored.key.at_ms),
        ),
    );
    Ok(())
}

/// `2026-11-21 09:12:03 UTC`.
fn utc_text(at_ms: UnixMillis) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| format!("at {at_ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u128, name: &str) -> AgentRecord {
        AgentRecord {
            agent: AgentId::from_u128(id),
            name: name.to_owned(),
            spki_sha256: [0; 32],
            added_ms: 0,
            addresses: Vec::new(),
            last_seen_ms: None,
            last_error: None,
            hostname: None,
            demo: false,
            time_zone: None,
        }
    }

    fn refusal(agents: &[AgentRecord], text: &str) -> String {
        match find_agent(agents, std::path::Path::new("/srv/console"), text) {
            Err(CommandError::Refused(line)) => line,
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn agents_are_found_by_id_or_unique_name_and_refusals_say_what_to_type() {
        let agents = [record(1, "pc-1"), record(2, "twin"), record(3, "twin")];
        let by_name = find_agent(&agents, std::path::Path::new("/d"), "pc-1").expect("name");
        assert_eq!(by_name.agent, AgentId::from_u128(1));
        let id = AgentId::from_u128(3).to_string();
        let by_id = find_agent(&agents, std::path::Path::new("/d"), &id).expect("id");
        assert_eq!(by_id.name, "twin");

        let twins = refusal(&agents, "twin");
        assert!(
            twins.contains(&AgentId::from_u128(2).to_string()),
            "{twins}"
        );
        assert!(twins.contains(&id), "{twins}");
        assert!(refusal(&agents, "").contains("no agent given"));
        assert!(refusal(&agents, " \t").contains("no agent given"));
        let unknown = refusal(&agents, "pc-9");
        assert!(unknown.contains("--data /srv/console agents"), "{unknown}");

        let control = refusal(&agents, "pc\u{1b}[2J\n-1");
        assert!(!control.chars().any(char::is_control), "{control:?}");
        assert!(control.contains(r"\u{1b}"), "{control}");
        let long = refusal(&agents, &"x".repeat(10 * 1024));
        assert!(long.len() < 400, "{} bytes", long.len());
        assert!(long.contains("..."), "{long}");
    }
}
