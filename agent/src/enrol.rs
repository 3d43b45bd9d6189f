//! Enrolment by code, the workstation's side: make a key here, pin the site
//! CA from the code, prove the code on this TLS channel, get the public key
//! certified. The private key never leaves this machine; nothing is
//! written unless a certificate for it came back (see `certs::enrol`).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use certs::enrol::{
    enrolment_client_config, AgentKeyRequest, EnrolmentCode, PinnedCa, ENROLMENT_SERVER_NAME,
    ENROL_SERVICE_TYPE, ENROL_TXT_CA, EXPORTER_LABEL, PROOF_BYTES,
};
use certs::transport::{client_config, client_endpoint, read_message, write_message, Limits};
use certs::AgentIdentity;
use mdns_sd::{ServiceDaemon, ServiceEvent};
use protocol::enrol::{EnrolRefusal, EnrolReply, EnrolRequest};

/// How long connecting to one console may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most console addresses an mDNS browse keeps (adverts are
/// unauthenticated: a flood of them must not make a long list to try).
pub const MAX_BROWSED_ADDRESSES: usize = 8;
/// How long the console may take to answer (a manager may have to approve
/// the workstation first).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Why enrolment did not happen; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("no console with an open enrolment answered ({tried}): the enrolment may be closed (every use of its code taken, or expired); check that `smarttracker-console enrolment open` runs and give its address with --console HOST:PORT")]
    NoConsole { tried: String },
    #[error("the console at {addr} belongs to another site than the code (its CA does not match): check the code and the address")]
    OtherSite { addr: SocketAddr },
    #[error("the console at {addr} refused: {refusal}")]
    Refused {
        addr: SocketAddr,
        refusal: EnrolRefusal,
    },
    #[error("the console at {addr} answered with a certificate that is not for this workstation's key: {reason}")]
    BadCertificate { addr: SocketAddr, reason: String },
    #[error("cannot make this workstation's key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] certs::tls::TlsConfigError),
    #[error("mDNS is unavailable ({0}); give the console's address with --console HOST:PORT")]
    Mdns(#[from] mdns_sd::Error),
}

/// The addresses of consoles advertising an open enrolment for the CA
/// `code` pins, found within `duration` (returns as soon as one is).
/// Blocking.
pub fn browse(code: &EnrolmentCode, duration: Duration) -> Result<Vec<SocketAddr>, EnrolError> {
    let daemon = ServiceDaemon::new()?;
    let events = daemon.browse(ENROL_SERVICE_TYPE)?;
    let wanted = hex::encode(code.ca_prefix());
    let deadline = Instant::now() + duration;
    let mut found = BTreeSet::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(service)) => {
                if service.get_property_val_str(ENROL_TXT_CA) != Some(wanted.as_str()) {
                    continue;
                }
                for ip in service.get_addresses() {
                    let ip = ip.to_ip_addr();
                    let link_local = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
                    if !link_local && found.len() < MAX_BROWSED_ADDRESSES {
                        found.insert(SocketAddr::new(ip, service.get_port()));
                    }
                }
                if !found.is_empty() {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = daemon.stop_browse(ENROL_SERVICE_TYPE);
    let _ = daemon.shutdown();
    Ok(found.into_iter().collect())
}

/// Enrols with the first of `consoles` that answers: a new key, a CSR,
/// the proof of `code` bound to the channel. `hostname` is what the
/// console is told (it names the workstation in its inventory).
pub async fn enrol(
    code: &EnrolmentCode,
    consoles: &[SocketAddr],
    hostname: &str,
) -> Result<AgentIdentity, EnrolError> {
    let request = AgentKeyRequest::generate()?;
    let mut problems = Vec::new();
    for &addr in consoles {
        match enrol_at(code, addr, &request, hostname).await {
            Ok(identity) => return Ok(identity),
            Err(Attempt::Unreachable(problem)) => problems.push(format!("{addr}: {problem}")),
            Err(Attempt::Final(error)) => return Err(error),
        }
    }
    Err(EnrolError::NoConsole {
        tried: if problems.is_empty() {
            "no address to try".to_owned()
        } else {
            problems.join("; ")
        },
    })
}

enum Attempt {
    /// Try the next address.
    Unreachable(String),
    /// Stop: this console answered and said no, or is of another site.
    Final(EnrolError),
}

async fn enrol_at(
    code: &EnrolmentCode,
    addr: SocketAddr,
    request: &AgentKeyRequest,
    hostname: &str,
) -> Result<AgentIdentity, Attempt> {
    let unreachable = |error: &dyn std::fmt::Display| Attempt::Unreachable(error.to_string());
    let pinned = PinnedCa::default();
    let tls = enrolment_client_config(code, pinned.clone())
        .map_err(|error| Attempt::Final(error.into()))?;
    let limits = Limits::default();
    let config = client_config(tls, &limits).map_err(|error| unreachable(&error))?;
    let endpoint = client_endpoint(addr).map_err(|error| unreachable(&error))?;
    let connecting = endpoint
        .connect_with(config, addr, ENROLMENT_SERVER_NAME)
        .map_err(|error| unreachable(&error))?;
    let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => return Err(Attempt::Unreachable("no answer".to_owned())),
        Ok(Err(error)) => {
            return Err(match pinned.take() {
                Some(Err(_)) => Attempt::Final(EnrolError::OtherSite { addr }),
                _ => unreachable(&error),
            })
        }
        Ok(Ok(connection)) => connection,
    };
    let ca_cert_der = match pinned.take() {
        Some(Ok(ca)) => ca,
        _ => return Err(Attempt::Final(EnrolError::OtherSite { addr })),
    };
    let mut exporter = [0u8; PROOF_BYTES];
    connection
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .map_err(|_| Attempt::Unreachable("the TLS exporter is unavailable".to_owned()))?;
    let message = EnrolRequest {
        proof: code.proof(&exporter, &request.csr_der).to_vec(),
        csr_der: request.csr_der.clone(),
        hostname: protocol::cap_text(hostname, protocol::MAX_HOSTNAME_BYTES).into_owned(),
    };
    let exchange = async {
        let (mut send, mut recv) = connection.open_bi().await?;
        write_message(&mut send, &message).await?;
        read_message::<EnrolReply>(&mut recv).await
    };
    let reply = match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
        Err(_) => return Err(Attempt::Unreachable("no answer in time".to_owned())),
        Ok(Err(error)) => return Err(unreachable(&error)),
        Ok(Ok(reply)) => reply,
    };
    connection.close(
        quinn::VarInt::from_u32(certs::transport::CLOSE_NORMAL),
        b"enrolled",
    );
    endpoint.wait_idle().await;
    match reply {
        EnrolReply::Refused(refusal) => Err(Attempt::Final(EnrolError::Refused { addr, refusal })),
        EnrolReply::Enrolled {
            agent_id,
            cert_der,
            name,
        } => {
            let bad = |reason: &str| {
                Attempt::Final(EnrolError::BadCertificate {
                    addr,
                    reason: reason.to_owned(),
                })
            };
            match request.accepts(&cert_der) {
                Some(id) if id == agent_id => {}
                Some(_) => return Err(bad("it names another agent id")),
                None => return Err(bad("another key, or not an agent certificate")),
            }
            if !certs::is_issued_by(&cert_der, &ca_cert_der) {
                return Err(bad("it is not signed by the site CA"));
            }
            Ok(AgentIdentity {
                agent_id,
                name: Some(name),
                cert_der: cert_der.into(),
                key_der: request.key_der.clone_key(),
                ca_cert_der,
            })
        }
    }
}
