//! Enrolment by code, the console's side: a pure [`Session`] (what a code
//! still allows) under a QUIC listener that checks each agent's proof,
//! signs its public key with the site CA and hands the certificate to the
//! inventory (see `certs::enrol` for the code, the channel and the proof).
//!
//! Bounds against hostile peers: at most [`MAX_CONNECTIONS`] enrolment
//! connections at once (more are refused before their handshake), one
//! request per connection read within [`REQUEST_DEADLINE`] and capped by
//! the wire codec, and the session closes after [`MAX_WRONG_PROOFS`] wrong
//! proofs (a code's 72-bit secret cannot be guessed online anyway).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certs::enrol::{
    enrolment_server_config, EnrolmentCode, ENROL_SERVICE_TYPE, ENROL_TXT_CA, EXPORTER_LABEL,
    PROOF_BYTES,
};
use certs::transport::{read_message, server_config, server_endpoint, write_message, Limits};
use certs::{SiteCa, Validity};
use mdns_sd::{ServiceDaemon, ServiceInfo};
use protocol::enrol::{EnrolRefusal, EnrolReply, EnrolRequest};
use quinn::{Connection, Endpoint, VarInt};
use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

/// Enrolment connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// How long an agent has to send its request once connected.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// Wrong proofs after which the session closes.
pub const MAX_WRONG_PROOFS: u32 = 100;
/// The most uses one code may allow.
pub const MAX_USES: u32 = 10_000;
/// The port enrolments are served on unless told otherwise.
pub const DEFAULT_ENROL_PORT: u16 = 47_200;
/// The longest a code may stay open.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 86_400);

/// `90s`, `30m`, `24h`, `7d` (at most [`MAX_EXPIRY`]), as the command line
/// and the window read a code's validity.
pub fn parse_expiry(text: &str) -> Result<Duration, String> {
    let expiry = crate::analytics::parse_duration(text)
        .ok_or_else(|| format!("{:?}: write a number and s, m, h or d (24h)", text.trim()))?;
    if expiry.is_zero() || expiry > MAX_EXPIRY {
        return Err(format!(
            "{:?}: a code stays open from 1s to 30d",
            text.trim()
        ));
    }
    Ok(expiry)
}
/// Days an enrolled agent's certificate is valid.
pub const AGENT_CERT_DAYS: u32 = certs::AGENT_VALIDITY_DAYS;

/// What one code still allows (pure: time is passed in).
#[derive(Debug)]
pub struct Session {
    code: EnrolmentCode,
    uses_left: u32,
    in_flight: u32,
    expires_at_ms: i64,
    wrong_proofs: u32,
    enrolled: u32,
}

/// A use of the code, taken until the enrolment ends.
#[derive(Debug)]
#[must_use = "a ticket is given back with Session::finish"]
pub struct Ticket(());

impl Session {
    pub fn new(code: EnrolmentCode, uses: u32, expires_at_ms: i64) -> Session {
        Session {
            code,
            uses_left: uses.min(MAX_USES),
            in_flight: 0,
            expires_at_ms,
            wrong_proofs: 0,
            enrolled: 0,
        }
    }

    pub fn code(&self) -> &EnrolmentCode {
        &self.code
    }

    /// Whether an agent whose proof is `proof_ok` may enrol now; a use is
    /// taken until [`Session::finish`].
    pub fn admit(&mut self, now_ms: i64, proof_ok: bool) -> Result<Ticket, EnrolRefusal> {
        if !proof_ok {
            self.wrong_proofs = self.wrong_proofs.saturating_add(1);
            return Err(EnrolRefusal::WrongCode);
        }
        if now_ms >= self.expires_at_ms {
            return Err(EnrolRefusal::Expired);
        }
        if self.uses_left == 0 {
            return Err(EnrolRefusal::UsedUp);
        }
        self.uses_left -= 1;
        self.in_flight += 1;
        Ok(Ticket(()))
    }

    /// Ends a use: counted when the agent was enrolled, given back if not.
    pub fn finish(&mut self, ticket: Ticket, enrolled: bool) {
        let Ticket(()) = ticket;
        self.in_flight = self.in_flight.saturating_sub(1);
        if enrolled {
            self.enrolled = self.enrolled.saturating_add(1);
        } else {
            self.uses_left = self.uses_left.saturating_add(1);
        }
    }

    /// Whether the session is over: every use taken and finished, the code
    /// expired, or too many wrong proofs.
    pub fn is_over(&self, now_ms: i64) -> bool {
        (self.uses_left == 0 && self.in_flight == 0)
            || now_ms >= self.expires_at_ms
            || self.wrong_proofs >= MAX_WRONG_PROOFS
    }

    /// Why it is over, in words (for the operator).
    pub fn end_reason(&self, now_ms: i64) -> EndReason {
        if self.wrong_proofs >= MAX_WRONG_PROOFS {
            EndReason::WrongCodes
        } else if self.uses_left == 0 && self.in_flight == 0 {
            EndReason::UsedUp
        } else if now_ms >= self.expires_at_ms {
            EndReason::Expired
        } else {
            EndReason::Closed
        }
    }

    /// Agents enrolled so far.
    pub fn enrolled(&self) -> u32 {
        self.enrolled
    }
}

/// Why an enrolment session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EndReason {
    /// [`MAX_WRONG_PROOFS`] wrong codes were presented.
    WrongCodes,
    /// Every use of the code was taken.
    UsedUp,
    /// The code expired.
    Expired,
    /// The manager closed it (or the process stopped).
    Closed,
}

impl EndReason {
    /// What the command line says.
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::WrongCodes => "closed after too many wrong codes",
            EndReason::UsedUp => "every use of the code was taken",
            EndReason::Expired => "the code expired",
            EndReason::Closed => "closed",
        }
    }
}

/// An agent asking to enrol, before it is signed.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The name it will have in the inventory.
    pub name: String,
    pub from: SocketAddr,
}

/// An enrolled agent, for the inventory.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub agent_id: Uuid,
    pub name: String,
    pub cert_der: Vec<u8>,
    pub from: SocketAddr,
}

/// What the listener asks of the console around it. Both run on a blocking
/// thread.
pub trait Host: Send + Sync + 'static {
    /// Whether the manager approves `pending` (always, unless the session
    /// asks to approve each).
    fn approve(&self, pending: &Pending) -> bool;
    /// Adds the agent to the inventory; the certificate is sent to the
    /// agent only if this succeeded.
    fn add(&self, enrolled: &Enrolled) -> Result<(), String>;
}

/// Why an enrolment listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot make the enrolment certificate: {0}")]
    Issue(#[from] certs::IssueError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] certs::tls::TlsConfigError),
    #[error("cannot listen for enrolments: {0}")]
    Transport(#[from] certs::transport::TransportError),
}

/// Binds the enrolment endpoint on `listen`, with a certificate signed by
/// `ca` for `validity` (the session's length). Must run in a tokio runtime.
pub fn bind(ca: &SiteCa, listen: SocketAddr, validity: Validity) -> Result<Endpoint, ListenError> {
    let (cert_der, key_der) = ca.issue_enrolment_server(validity)?;
    let tls = enrolment_server_config(cert_der, key_der, ca.cert_der())?;
    let limits = Limits {
        max_incoming_connections: MAX_CONNECTIONS,
        ..Limits::default()
    };
    Ok(server_endpoint(listen, server_config(tls, &limits)?)?)
}

/// Serves enrolments on `endpoint` until the session is over or `stop`
/// turns true. `now_ms` is the console's clock.
pub async fn serve(
    endpoint: Endpoint,
    ca: Arc<SiteCa>,
    team: Option<Arc<str>>,
    session: Arc<Mutex<Session>>,
    host: Arc<dyn Host>,
    now_ms: fn() -> i64,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let over = lock(&session).is_over(now_ms());
        if over || *stop.borrow() {
            break;
        }
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    incoming.refuse();
                    continue;
                };
                let (ca, session, host) = (ca.clone(), session.clone(), host.clone());
                let team = team.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(connection)) = tokio::time::timeout(REQUEST_DEADLINE, async {
                        incoming.accept()?.await
                    })
                    .await
                    {
                        serve_one(connection, (&ca, team.as_deref()), &session, host, now_ms).await;
                    }
                    drop(slot);
                });
            }
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
    }
    // Let answers in flight reach their agents.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while slots.available_permits() < MAX_CONNECTIONS {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    endpoint.close(
        VarInt::from_u32(certs::transport::CLOSE_NORMAL),
        b"enrolment closed",
    );
    endpoint.wait_idle().await;
}

async fn serve_one(
    connection: Connection,
    ca: (&SiteCa, Option<&str>),
    session: &Mutex<Session>,
    host: Arc<dyn Host>,
    now_ms: fn() -> i64,
) {
    let from = connection.remote_address();
    let Ok(Ok((mut send, mut recv))) =
        tokio::time::timeout(REQUEST_DEADLINE, connection.accept_bi()).await
    else {
        return;
    };
    let request =
        match tokio::time::timeout(REQUEST_DEADLINE, read_message::<EnrolRequest>(&mut recv)).await
        {
            Ok(Ok(request)) => request,
            _ => {
                let _ =
                    write_message(&mut send, &EnrolReply::Refused(EnrolRefusal::BadRequest)).await;
                return;
            }
        };
    let mut exporter = [0u8; PROOF_BYTES];
    if connection
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .is_err()
    {
        return;
    }
    let reply = enrol_one(ca, session, host, now_ms, &exporter, request, from).await;
    if let EnrolReply::Refused(refusal) = &reply {
        tracing::warn!(%from, %refusal, "enrolment refused");
    }
    if write_message(&mut send, &reply).await.is_ok() {
        // The agent closes once it has read the answer.
        let _ = tokio::time::timeout(REQUEST_DEADLINE, connection.closed()).await;
    }
}

async fn enrol_one(
    (ca, team): (&SiteCa, Option<&str>),
    session: &Mutex<Session>,
    host: Arc<dyn Host>,
    now_ms: fn() -> i64,
    exporter: &[u8; PROOF_BYTES],
    request: EnrolRequest,
    from: SocketAddr,
) -> EnrolReply {
    let ticket = {
        let mut session = lock(session);
        let proof_ok = session
            .code()
            .verify(exporter, &request.csr_der, &request.proof);
        match session.admit(now_ms(), proof_ok) {
            Ok(ticket) => ticket,
            Err(refusal) => return EnrolReply::Refused(refusal),
        }
    };
    let name = inventory_name(&request.hostname);
    let pending = Pending {
        name: name.clone(),
        from,
    };
    let approver = host.clone();
    let approved =
        crate::blocking::blocking(move || Ok::<bool, ()>(approver.approve(&pending)), |_| ())
            .await
            .unwrap_or(false);
    if !approved {
        lock(session).finish(ticket, false);
        return EnrolReply::Refused(EnrolRefusal::Declined);
    }
    let validity = ca.leaf_validity(time::OffsetDateTime::now_utc(), AGENT_CERT_DAYS);
    let signed = ca.sign_agent_request(&request.csr_der, Some(&name), team, validity);
    let (agent_id, cert_der) = match signed {
        Ok(signed) => signed,
        Err(error) => {
            tracing::warn!(%from, %error, "enrolment request not signed");
            lock(session).finish(ticket, false);
            return EnrolReply::Refused(EnrolRefusal::BadRequest);
        }
    };
    let enrolled = Enrolled {
        agent_id,
        name: name.clone(),
        cert_der: cert_der.to_vec(),
        from,
    };
    let adder = host.clone();
    let added = crate::blocking::blocking(
        move || adder.add(&enrolled),
        |_| "the inventory task failed".to_owned(),
    )
    .await;
    match added {
        Ok(()) => {
            lock(session).finish(ticket, true);
            EnrolReply::Enrolled {
                agent_id,
                cert_der: cert_der.to_vec(),
                name,
            }
        }
        Err(error) => {
            tracing::error!(%from, %error, "enrolled agent not added to the inventory");
            lock(session).finish(ticket, false);
            EnrolReply::Refused(EnrolRefusal::Internal)
        }
    }
}

/// The inventory name of a workstation that said `hostname`: printable,
/// at most the certificate name's 64 characters, else `workstation`.
pub fn inventory_name(hostname: &str) -> String {
    let cleaned: String = hostname
        .chars()
        .filter(|c| !c.is_control())
        .take(certs::ca::MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "workstation".to_owned()
    } else {
        cleaned.to_owned()
    }
}

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The mDNS advert of an open enrolment; withdrawn on drop.
pub struct Advert {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Advert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advert")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

impl Advert {
    /// Advertises the enrolment of `code` on `port` (TXT: the CA prefix).
    pub fn start(code: &EnrolmentCode, port: u16) -> Result<Advert, mdns_sd::Error> {
        let daemon = ServiceDaemon::new()?;
        let prefix = hex::encode(code.ca_prefix());
        let instance = format!("enrolment-{}", &prefix[..8]);
        let host = format!("{instance}.local.");
        let properties = [(ENROL_TXT_CA, prefix.as_str())];
        let info = ServiceInfo::new(
            ENROL_SERVICE_TYPE,
            &instance,
            &host,
            "",
            port,
            &properties[..],
        )?
        .enable_addr_auto();
        let fullname = info.get_fullname().to_owned();
        daemon.register(info)?;
        Ok(Advert { daemon, fullname })
    }
}

impl Drop for Advert {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_read_as_people_write_them() {
        assert_eq!(parse_expiry("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_expiry("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_expiry("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in [
            "",
            "h",
            "0m",
            "31d",
            "1y",
            "-1h",
            "99999999999999999999d",
            "é",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }

    fn code() -> EnrolmentCode {
        EnrolmentCode::generate(b"ca").expect("code")
    }

    #[test]
    fn a_two_use_code_enrols_two_and_refuses_the_third() {
        let mut session = Session::new(code(), 2, 1_000);
        let first = session.admit(10, true).expect("first");
        let second = session.admit(10, true).expect("second");
        assert_eq!(session.admit(10, true).unwrap_err(), EnrolRefusal::UsedUp);
        assert!(!session.is_over(10), "two enrolments are still in flight");
        session.finish(first, true);
        session.finish(second, true);
        assert!(session.is_over(10));
        assert_eq!(session.enrolled(), 2);
        assert_eq!(session.end_reason(10), EndReason::UsedUp);
    }

    #[test]
    fn a_failed_enrolment_gives_its_use_back() {
        let mut session = Session::new(code(), 1, 1_000);
        let ticket = session.admit(10, true).expect("admitted");
        session.finish(ticket, false);
        assert!(!session.is_over(10));
        let ticket = session.admit(20, true).expect("admitted again");
        session.finish(ticket, true);
        assert!(session.is_over(20));
    }

    #[test]
    fn wrong_proofs_and_expiry_are_refused_and_end_the_session() {
        let mut session = Session::new(code(), 5, 1_000);
        assert_eq!(
            session.admit(10, false).unwrap_err(),
            EnrolRefusal::WrongCode
        );
        assert_eq!(
            session.admit(1_000, true).unwrap_err(),
            EnrolRefusal::Expired
        );
        assert!(session.is_over(1_000));
        let mut session = Session::new(code(), 5, 1_000);
        for _ in 0..MAX_WRONG_PROOFS {
            assert!(session.admit(10, false).is_err());
        }
        assert!(session.is_over(10));
        assert_eq!(session.end_reason(10), EndReason::WrongCodes);
    }

    #[test]
    fn hostile_host_names_become_printable_bounded_names() {
        assert_eq!(inventory_name("pc-07"), "pc-07");
        assert_eq!(inventory_name("\u{0}\u{1b}[31m"), "[31m");
        assert_eq!(inventory_name("  \n "), "workstation");
        assert_eq!(inventory_name(&"é".repeat(1000)).chars().count(), 64);
    }
}
