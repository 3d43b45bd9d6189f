//! Enrolment by code hosted by the engine, so `serve` or the window holds
//! it open while the manager works: the same listener as `enrolment open`
//! (`crate::enrolment`), the site CA opened in this process, each enrolled
//! workstation added to the inventory here. With "approve each", an agent
//! asking to enrol waits (up to [`APPROVAL_WAIT`]) on the pending list
//! until the manager approves or declines it; the windows see the code,
//! what is pending and what was enrolled through [`EnrolmentStatus`]
//! events. One enrolment at a time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use certs::enrol::EnrolmentCode;
use certs::{SiteCa, Validity};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Event, Shared};
use crate::commands::{CliOutput, CommandContext, Output, Passphrase};
use crate::enrolment::{self as listener, EndReason, Enrolled, Host, Pending, Session, MAX_USES};
use crate::model::AgentId;

/// The longest an agent waits on the pending list (its own wait for an
/// answer is 15 minutes).
pub const APPROVAL_WAIT: Duration = Duration::from_secs(14 * 60);
/// Enrolled workstations the status lists (newest last).
const DONE_SHOWN: usize = 200;
/// Pending requests at once (each holds one of the listener's 32
/// connections anyway).
const MAX_PENDING: usize = 32;

/// What the manager asks for when opening an enrolment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentOpen {
    /// The site directory (its CA signs the workstations' keys).
    pub site: PathBuf,
    pub passphrase: Option<Passphrase>,
    pub uses: u32,
    pub expires_secs: u64,
    pub group: Option<String>,
    pub team: Option<String>,
    pub listen: SocketAddr,
    pub approve_each: bool,
    pub mdns: bool,
}

impl std::fmt::Debug for EnrolmentOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentOpen")
            .field("site", &self.site)
            .field("uses", &self.uses)
            .field("expires_secs", &self.expires_secs)
            .field("listen", &self.listen)
            .field("approve_each", &self.approve_each)
            .finish_non_exhaustive()
    }
}

/// What the windows send about the enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrolmentCommand {
    Open(Box<EnrolmentOpen>),
    /// Approves or declines a pending request.
    Decide {
        id: u64,
        approve: bool,
    },
    Close,
    /// Sends the current status (a window that just opened).
    Status,
}

/// An agent waiting for the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub id: u64,
    pub name: String,
    pub from: String,
    pub since_ms: i64,
}

/// A workstation enrolled by this enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneEnrolment {
    pub agent: AgentId,
    pub name: String,
    pub from: String,
    pub at_ms: i64,
}

/// An open enrolment as the windows show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEnrolment {
    /// In groups of four, as agents type it.
    pub code: String,
    pub site_name: String,
    pub listening: String,
    pub expires_at_ms: i64,
    pub uses: u32,
    pub approve_each: bool,
    pub group: Option<String>,
    pub pending: Vec<PendingRequest>,
    pub done: Vec<DoneEnrolment>,
}

/// How the last enrolment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrolmentEnd {
    Ended {
        reason: EndReason,
        enrolled: u32,
    },
    /// It could not open: why, and what to do.
    NotOpened(String),
}

/// The enrolment state the windows show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentStatus {
    pub open: Option<OpenEnrolment>,
    pub last_end: Option<EnrolmentEnd>,
    /// The workstations the last one enrolled.
    pub last_done: Vec<DoneEnrolment>,
}

/// The engine's enrolment slot.
#[derive(Default)]
pub(super) struct Enrolments {
    running: Mutex<Option<Running>>,
    last: Mutex<(Option<EnrolmentEnd>, Vec<DoneEnrolment>)>,
}

impl Enrolments {
    /// Ends the enrolment at once (the engine stops): agents waiting on
    /// the pending list are declined.
    pub(super) fn close(&self) {
        if let Some(running) = lock(&self.running).as_ref() {
            lock(&running.host.decisions).closed = true;
            running.host.changed.notify_all();
            let _ = running.stop.send(true);
        }
    }
}

impl std::fmt::Debug for Enrolments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolments")
    }
}

struct Running {
    stop: watch::Sender<bool>,
    host: Arc<EngineHost>,
    code: String,
    site_name: String,
    listening: String,
    expires_at_ms: i64,
    uses: u32,
}

/// Decisions the manager made, by request id.
#[derive(Default)]
struct Decisions {
    pending: Vec<PendingRequest>,
    decided: Vec<(u64, bool)>,
    closed: bool,
}

struct EngineHost {
    shared: Arc<Shared>,
    group: Option<String>,
    approve_each: bool,
    next_id: AtomicU64,
    decisions: Mutex<Decisions>,
    changed: Condvar,
    done: Mutex<Vec<DoneEnrolment>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Host for EngineHost {
    fn approve(&self, pending: &Pending) -> bool {
        if !self.approve_each {
            return true;
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        {
            let mut decisions = lock(&self.decisions);
            if decisions.closed || decisions.pending.len() >= MAX_PENDING {
                return false;
            }
            decisions.pending.push(PendingRequest {
                id,
                name: pending.name.clone(),
                from: pending.from.to_string(),
                since_ms: crate::clock::wall_now_ms(),
            });
        }
        emit_status(&self.shared);
        let deadline = Instant::now() + APPROVAL_WAIT;
        let mut decisions = lock(&self.decisions);
        let approved = loop {
            if let Some(index) = decisions.decided.iter().position(|(asked, _)| *asked == id) {
                break decisions.decided.remove(index).1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if decisions.closed || left.is_zero() {
                break false;
            }
            decisions = self
                .changed
                .wait_timeout(decisions, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        decisions.pending.retain(|request| request.id != id);
        drop(decisions);
        emit_status(&self.shared);
        approved
    }

    fn add(&self, enrolled: &Enrolled) -> Result<(), String> {
        let context = CommandContext {
            store: self.shared.store.clone(),
            syncer: self
                .shared
                .syncer
                .clone()
                .ok_or_else(|| super::missing_identity(&self.shared.data_dir)),
            settings: self.shared.settings(),
            data_dir: self.shared.data_dir.clone(),
            actor: self.shared.actor.clone(),
        };
        let quiet: Output = Arc::new(|_: CliOutput| {});
        crate::commands::add_agent(
            &context,
            &format!("enrolment from {}", enrolled.from),
            &enrolled.cert_der,
            (&enrolled.name, self.group.as_deref()),
            &quiet,
        )
        .map_err(|error| error.to_string())?;
        {
            let mut done = lock(&self.done);
            done.push(DoneEnrolment {
                agent: enrolled.agent_id,
                name: enrolled.name.clone(),
                from: enrolled.from.to_string(),
                at_ms: crate::clock::wall_now_ms(),
            });
            let excess = done.len().saturating_sub(DONE_SHOWN);
            done.drain(..excess);
        }
        self.shared.data_changed();
        emit_status(&self.shared);
        Ok(())
    }
}

/// The status now.
fn status(shared: &Shared) -> EnrolmentStatus {
    let running = lock(&shared.enrolments.running);
    let last = lock(&shared.enrolments.last);
    EnrolmentStatus {
        open: running.as_ref().map(|running| OpenEnrolment {
            code: running.code.clone(),
            site_name: running.site_name.clone(),
            listening: running.listening.clone(),
            expires_at_ms: running.expires_at_ms,
            uses: running.uses,
            approve_each: running.host.approve_each,
            group: running.host.group.clone(),
            pending: lock(&running.host.decisions).pending.clone(),
            done: lock(&running.host.done).clone(),
        }),
        last_end: last.0.clone(),
        last_done: last.1.clone(),
    }
}

fn emit_status(shared: &Shared) {
    shared.emit(Event::Enrolment(Box::new(status(shared))));
}

fn ended(shared: &Shared, end: EnrolmentEnd) {
    let done = lock(&shared.enrolments.running)
        .take()
        .map(|running| lock(&running.host.done).clone())
        .unwrap_or_default();
    *lock(&shared.enrolments.last) = (Some(end), done);
    emit_status(shared);
}

/// Runs one enrolment command (in the engine's runtime).
pub(super) async fn handle(shared: Arc<Shared>, command: EnrolmentCommand) {
    match command {
        EnrolmentCommand::Status => emit_status(&shared),
        EnrolmentCommand::Decide { id, approve } => {
            if let Some(running) = lock(&shared.enrolments.running).as_ref() {
                let mut decisions = lock(&running.host.decisions);
                if decisions.pending.iter().any(|request| request.id == id) {
                    decisions.decided.push((id, approve));
                    running.host.changed.notify_all();
                }
            }
        }
        EnrolmentCommand::Close => shared.enrolments.close(),
        EnrolmentCommand::Open(open) => {
            if let Err(reason) = open_enrolment(&shared, *open).await {
                *lock(&shared.enrolments.last) =
                    (Some(EnrolmentEnd::NotOpened(reason)), Vec::new());
                emit_status(&shared);
            }
        }
    }
}

/// Opens an enrolment and serves it in a task of its own; `Err` says why
/// it could not open.
async fn open_enrolment(shared: &Arc<Shared>, open: EnrolmentOpen) -> Result<(), String> {
    if lock(&shared.enrolments.running).is_some() {
        return Err("an enrolment is already open: close it first".to_owned());
    }
    let Some(syncer) = shared.syncer.clone() else {
        return Err(super::missing_identity(&shared.data_dir));
    };
    if syncer.role() != certs::Role::Admin {
        return Err("enrolling workstations needs an admin console".to_owned());
    }
    if open.uses == 0 || open.uses > MAX_USES {
        return Err(format!("a code enrols 1 to {MAX_USES} workstations"));
    }
    if open.expires_secs == 0 || open.expires_secs > listener::MAX_EXPIRY.as_secs() {
        return Err("a code stays open from 1 second to 30 days".to_owned());
    }
    if let Some(team) = &open.team {
        certs::check_team(team).map_err(|reason| format!("team {team:?}: {reason}"))?;
    }
    let site = open.site.clone();
    let passphrase = open.passphrase.clone();
    let ca = crate::blocking::blocking(
        move || {
            SiteCa::open(&site, passphrase.as_ref().map(|p| p.0.as_str()))
                .map_err(|error| format!("cannot open the site CA in {}: {error}", site.display()))
        },
        |join_error| format!("cannot open the site CA: {join_error}"),
    )
    .await?;
    if ca.cert_der().as_ref() != syncer.site_ca_der() {
        return Err(format!(
            "{} is the CA of another site than this console's: give this console's site directory",
            open.site.display()
        ));
    }
    let code = EnrolmentCode::generate(&ca.cert_der())
        .map_err(|error| format!("cannot make a random code: {error}"))?;
    let now_ms = crate::clock::wall_now_ms();
    let expires_at_ms = now_ms
        .saturating_add(i64::try_from(open.expires_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
    let not_after = time::OffsetDateTime::from_unix_timestamp(expires_at_ms / 1000)
        .map_err(|error| format!("expiry out of range: {error}"))?
        .min(ca.not_after());
    let validity = Validity {
        not_after,
        ..Validity::days_from(time::OffsetDateTime::now_utc(), 1)
    };
    let endpoint = listener::bind(&ca, open.listen, validity).map_err(|error| error.to_string())?;
    let bound = endpoint
        .local_addr()
        .map_err(|error| format!("cannot read the bound address: {error}"))?;
    let advert = if open.mdns {
        match listener::Advert::start(&code, bound.port()) {
            Ok(advert) => Some(advert),
            Err(error) => {
                tracing::warn!(%error, "enrolment advert unavailable");
                None
            }
        }
    } else {
        None
    };
    let host = Arc::new(EngineHost {
        shared: shared.clone(),
        group: open.group.clone(),
        approve_each: open.approve_each,
        next_id: AtomicU64::new(1),
        decisions: Mutex::new(Decisions::default()),
        changed: Condvar::new(),
        done: Mutex::new(Vec::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let session = Arc::new(Mutex::new(Session::new(
        code.clone(),
        open.uses,
        expires_at_ms,
    )));
    *lock(&shared.enrolments.running) = Some(Running {
        stop: stop_tx,
        host: host.clone(),
        code: code.to_string(),
        site_name: ca.name().to_owned(),
        listening: bound.to_string(),
        expires_at_ms,
        uses: open.uses,
    });
    *lock(&shared.enrolments.last) = (None, Vec::new());
    shared.audit(
        "enrolment-open",
        &bound.to_string(),
        format!(
            "{} use(s) until {}{}",
            open.uses,
            shared.store.day_clock().iso_local(expires_at_ms),
            if open.approve_each {
                ", approve each"
            } else {
                ""
            }
        ),
    );
    emit_status(shared);
    let shared = shared.clone();
    let team = open.team.map(Arc::from);
    tokio::spawn(async move {
        listener::serve(
            endpoint,
            Arc::new(ca),
            team,
            session.clone(),
            host.clone(),
            crate::clock::wall_now_ms,
            stop_rx,
        )
        .await;
        drop(advert);
        {
            let mut decisions = lock(&host.decisions);
            decisions.closed = true;
            host.changed.notify_all();
        }
        let (reason, enrolled) = {
            let session = lock(&session);
            (
                session.end_reason(crate::clock::wall_now_ms()),
                session.enrolled(),
            )
        };
        shared.audit(
            "enrolment-close",
            "",
            format!("{}: {enrolled} workstation(s) enrolled", reason.describe()),
        );
        ended(&shared, EnrolmentEnd::Ended { reason, enrolled });
    });
    Ok(())
}
