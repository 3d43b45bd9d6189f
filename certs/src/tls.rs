//! rustls configurations for both ends of a SmartTracker QUIC connection,
//! built by hand, and the peer identities read from a finished handshake.
//!
//! Both sides: ring provider, TLS 1.3 only, ALPN `smarttracker/1`, no
//! early data, no session resumption (a console removed from the deny-list
//! check is re-checked on every handshake).
//!
//! - Agent (server): requires a client certificate chaining to the site CA
//!   with EKU clientAuth and a console URI SAN, and refuses certificates
//!   whose SHA-256 fingerprint is on the deny-list.
//! - Console (client): checks the agent's chain to the site CA (validity,
//!   serverAuth, server name), then that the leaf's key hash equals the pin
//!   from the inventory and that its DNS SAN names the pinned agent id.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use uuid::Uuid;

use crate::cert::{self, fingerprint_der, spki_sha256, CertParseError};
use crate::deny::DenySet;
use crate::identity::{AgentIdentity, ConsoleIdentity};
use crate::role::Role;

pub use crate::cert::agent_server_name;
pub use protocol::ALPN;

/// What a console knows about an agent before connecting: its id and the
/// SHA-256 of its certificate's SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentPin {
    pub agent_id: Uuid,
    pub spki_sha256: [u8; 32],
}

impl AgentPin {
    /// The pin of an agent certificate.
    pub fn of_certificate(cert_der: &[u8]) -> Result<AgentPin, PeerError> {
        let parsed = cert::parse(cert_der)?;
        let agent_id = cert::agent_id_of(&parsed).map_err(PeerError::NotAgent)?;
        Ok(AgentPin {
            agent_id,
            spki_sha256: spki_sha256(cert_der)?,
        })
    }
}

/// The authenticated console on the other end of an agent's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsolePeer {
    pub console_id: Uuid,
    pub role: Role,
    /// Hex SHA-256 of the console's certificate (what the deny-list holds).
    pub fingerprint: String,
    /// The team its certificate limits it to: it is served only by
    /// workstations of that team.
    pub team: Option<String>,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("the site CA certificate is not a usable trust anchor: {0}; re-issue the identity")]
    TrustAnchor(rustls::Error),
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
    #[error("the crypto provider does not offer TLS 1.3: {0}")]
    Versions(rustls::Error),
    #[error("the certificate and key are not usable for TLS: {0}; re-issue the identity")]
    Identity(rustls::Error),
}

/// Why a peer's certificate does not name a SmartTracker peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("peer certificate: {0}")]
    Parse(#[from] CertParseError),
    #[error("peer certificate is not a SmartTracker console certificate: {0}")]
    NotConsole(String),
    #[error("peer certificate is not a SmartTracker agent certificate: {0}")]
    NotAgent(String),
}

/// The console identity in the leaf of a verified client chain.
pub fn console_peer(peer_certs: &[CertificateDer<'_>]) -> Result<ConsolePeer, PeerError> {
    let leaf = peer_certs.first().ok_or(PeerError::NoCertificate)?;
    let parsed = cert::parse(leaf)?;
    let (role, console_id) = cert::console_identity_of(&parsed).map_err(PeerError::NotConsole)?;
    Ok(ConsolePeer {
        console_id,
        role,
        fingerprint: fingerprint_der(leaf),
        team: cert::team_of(&parsed).map_err(PeerError::NotConsole)?,
    })
}

/// The team an agent certificate puts its workstation in, if any.
pub fn agent_team(cert_der: &[u8]) -> Result<Option<String>, PeerError> {
    let parsed = cert::parse(cert_der)?;
    cert::team_of(&parsed).map_err(PeerError::NotAgent)
}

/// The agent id in the leaf of a verified server chain.
pub fn agent_peer(peer_certs: &[CertificateDer<'_>]) -> Result<Uuid, PeerError> {
    let leaf = peer_certs.first().ok_or(PeerError::NoCertificate)?;
    let parsed = cert::parse(leaf)?;
    cert::agent_id_of(&parsed).map_err(PeerError::NotAgent)
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn site_roots(
    ca_cert_der: &CertificateDer<'static>,
) -> Result<Arc<RootCertStore>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca_cert_der.clone())
        .map_err(TlsConfigError::TrustAnchor)?;
    Ok(Arc::new(roots))
}

/// The agent's server configuration. Consoles `denied` names (revoked) are
/// refused at every handshake, with the set as it is at that moment.
pub fn agent_server_config(
    agent: &AgentIdentity,
    denied: DenySet,
) -> Result<ServerConfig, TlsConfigError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(
        site_roots(&agent.ca_cert_der)?,
        provider.clone(),
    )
    .build()?;
    let verifier = Arc::new(ConsoleCertVerifier { inner, denied });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::Versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![agent.cert_der.clone()],
            PrivateKeyDer::Pkcs8(agent.key_der.clone_key()),
        )
        .map_err(TlsConfigError::Identity)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(config)
}

/// Finds the pinned key (SHA-256 of the SubjectPublicKeyInfo) of an agent
/// in the console's inventory; `None` for an agent it does not know.
pub type PinLookup = Arc<dyn Fn(Uuid) -> Option<[u8; 32]> + Send + Sync>;

/// The console's client configuration for connecting to the agent `pin`
/// names; connect with server name [`agent_server_name`]`(pin.agent_id)`.
pub fn console_client_config(
    console: &ConsoleIdentity,
    pin: AgentPin,
) -> Result<ClientConfig, TlsConfigError> {
    let pins: PinLookup =
        Arc::new(move |agent_id| (agent_id == pin.agent_id).then_some(pin.spki_sha256));
    client_config_with(console, pins, Some(pin.agent_id), RefusalSlot::default())
}

/// The console's client configuration for an address whose agent is not
/// known in advance (a static peer, an mDNS advert): whichever agent
/// answers must chain to the site CA *and* be in the inventory with the key
/// pinned there, or the handshake fails. The server name passed to connect
/// is not used for identity. Each refusal of the verifier is also left in
/// `refusals`, typed: give each connection attempt a slot of its own.
pub fn console_inventory_config(
    console: &ConsoleIdentity,
    pins: PinLookup,
    refusals: RefusalSlot,
) -> Result<ClientConfig, TlsConfigError> {
    client_config_with(console, pins, None, refusals)
}

fn client_config_with(
    console: &ConsoleIdentity,
    pins: PinLookup,
    expected: Option<Uuid>,
    refusals: RefusalSlot,
) -> Result<ClientConfig, TlsConfigError> {
    let provider = provider();
    let inner = WebPkiServerVerifier::builder_with_provider(
        site_roots(&console.ca_cert_der)?,
        provider.clone(),
    )
    .build()?;
    let verifier = Arc::new(PinnedAgentVerifier {
        inner,
        pins,
        expected,
        refusals,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::Versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            vec![console.cert_der.clone()],
            PrivateKeyDer::Pkcs8(console.key_der.clone_key()),
        )
        .map_err(TlsConfigError::Identity)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// Reasons our verifiers add to the WebPKI checks. The handshake fails
/// with one inside `rustls::Error::InvalidCertificate(Other(..))`; QUIC
/// carries only the alert code and text of that error, so a console's
/// verifier also leaves its refusal in the connection attempt's
/// [`RefusalSlot`], typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("agent {agent_id} presented a key that does not match its pin")]
    KeyNotPinned { agent_id: Uuid },
    #[error("agent {agent_id} is not in this console's inventory")]
    UnknownAgent { agent_id: Uuid },
    #[error("expected agent {expected}, the certificate is for agent {presented}")]
    WrongAgent { expected: Uuid, presented: Uuid },
    #[error("{0}")]
    NotConsole(PeerError),
    #[error("{0}")]
    NotAgent(PeerError),
}

impl Refusal {
    /// An agent of this site that is not in the inventory, or not with
    /// the key pinned there.
    pub fn is_unknown_agent(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownAgent { .. } | Refusal::KeyNotPinned { .. }
        )
    }
}

fn refuse(refusal: Refusal) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(refusal))))
}

/// Where a console's verifier leaves its refusal of the agent one
/// connection attempt met: give each attempt a config with its own slot
/// (see [`console_inventory_config`]) and [`take`](RefusalSlot::take) it
/// after a failed connect.
#[derive(Debug, Clone, Default)]
pub struct RefusalSlot(Arc<Mutex<Option<Refusal>>>);

impl RefusalSlot {
    /// The refusal left since the last take, if any.
    pub fn take(&self) -> Option<Refusal> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Keeps `refusal` and returns the handshake error carrying it.
    fn refuse(&self, refusal: Refusal) -> rustls::Error {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal.clone());
        refuse(refusal)
    }
}

/// Site-CA client verification plus the deny-list and the console-identity check.
struct ConsoleCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    denied: DenySet,
}

impl fmt::Debug for ConsoleCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleCertVerifier")
            .field("inner", &self.inner)
            .field("denied", &self.denied.serial())
            .finish()
    }
}

impl ClientCertVerifier for ConsoleCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let peer = console_peer(std::slice::from_ref(end_entity))
            .map_err(|err| refuse(Refusal::NotConsole(err)))?;
        if self.denied.denies(peer.console_id, &peer.fingerprint) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Site-CA server verification plus the key pin and the agent-id check.
struct PinnedAgentVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: PinLookup,
    /// The agent the caller meant to reach, when it knew.
    expected: Option<Uuid>,
    /// Where each refusal is also left, typed.
    refusals: RefusalSlot,
}

impl fmt::Debug for PinnedAgentVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedAgentVerifier")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PinnedAgentVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = agent_peer(std::slice::from_ref(end_entity))
            .map_err(|err| self.refusals.refuse(Refusal::NotAgent(err)))?;
        if let Some(expected) = self.expected {
            if presented != expected {
                return Err(self.refusals.refuse(Refusal::WrongAgent {
                    expected,
                    presented,
                }));
            }
        }
        // Chain, validity and serverAuth, against the name the certificate
        // must carry for the agent it claims to be.
        let name = ServerName::try_from(agent_server_name(presented))
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)?;
        let pinned = (self.pins)(presented).ok_or_else(|| {
            self.refusals.refuse(Refusal::UnknownAgent {
                agent_id: presented,
            })
        })?;
        let spki = spki_sha256(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if spki != pinned {
            return Err(self.refusals.refuse(Refusal::KeyNotPinned {
                agent_id: presented,
            }));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    //! In-memory TLS handshakes (no QUIC) through the hand-built configs.

    use rustls::{ClientConnection, ServerConnection};
    use time::OffsetDateTime;

    use super::*;
    use crate::ca::{SiteCa, Validity};

    struct Site {
        _dir: tempfile::TempDir,
        ca: SiteCa,
    }

    fn site() -> Site {
        named_site("TLS test")
    }

    fn named_site(name: &str) -> Site {
        let (dir, ca) = crate::ca::test_site(name);
        Site { _dir: dir, ca }
    }

    fn refusal(err: &rustls::Error) -> Option<&Refusal> {
        match err {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
                inner.downcast_ref::<Refusal>()
            }
            _ => None,
        }
    }

    fn valid() -> Validity {
        Validity::days_from(OffsetDateTime::now_utc(), 1)
    }

    fn pin(agent: &AgentIdentity) -> AgentPin {
        AgentPin::of_certificate(&agent.cert_der).expect("pin")
    }

    /// Runs a handshake to completion; the error is from whichever side
    /// refused first.
    fn handshake(
        server_config: ServerConfig,
        client_config: ClientConfig,
        server_name: &str,
    ) -> Result<ServerConnection, rustls::Error> {
        let name = ServerName::try_from(server_name.to_owned()).expect("server name");
        let mut client = ClientConnection::new(Arc::new(client_config), name)?;
        let mut server = ServerConnection::new(Arc::new(server_config))?;
        for _ in 0..16 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).expect("client write");
            }
            if !to_server.is_empty() {
                server
                    .read_tls(&mut to_server.as_slice())
                    .expect("server read");
                server.process_new_packets()?;
            }
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).expect("server write");
            }
            if !to_client.is_empty() {
                client
                    .read_tls(&mut to_client.as_slice())
                    .expect("client read");
                client.process_new_packets()?;
            }
            if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
                return Ok(server);
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn console_and_agent_of_one_site_connect() {
        let site = site();
        let agent = site.ca.issue_agent(Some("host"), valid()).expect("agent");
        let console = site
            .ca
            .issue_console(Role::Admin, "admin", valid())
            .expect("console");
        let server = handshake(
            agent_server_config(&agent, DenySet::default()).expect("server config"),
            console_client_config(&console, pin(&agent)).expect("client config"),
            &agent_server_name(agent.agent_id),
        )
        .expect("handshake");
        assert_eq!(server.alpn_protocol(), Some(ALPN));
        assert_eq!(
            server.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let peer = console_peer(server.peer_certificates().expect("client certificate"))
            .expect("console peer");
        assert_eq!(peer.console_id, console.console_id);
        assert_eq!(peer.role, Role::Admin);
    }

    #[test]
    fn inventory_config_admits_only_inventoried_agents_with_their_pinned_key() {
        let site = site();
        let known = site.ca.issue_agent(Some("known"), valid()).expect("agent");
        let stranger = site
            .ca
            .issue_agent(Some("stranger"), valid())
            .expect("agent");
        let console = site
            .ca
            .issue_console(Role::Viewer, "viewer", valid())
            .expect("console");
        let known_pin = pin(&known);
        let inventory: PinLookup = Arc::new(move |agent_id| {
            (agent_id == known_pin.agent_id).then_some(known_pin.spki_sha256)
        });
        // Whatever name the caller guessed, identity comes from the chain.
        let any_name = "address-only.agent.smarttracker";
        handshake(
            agent_server_config(&known, DenySet::default()).expect("server config"),
            console_inventory_config(&console, inventory.clone(), RefusalSlot::default())
                .expect("client config"),
            any_name,
        )
        .expect("the inventoried agent is admitted");
        let refusals = RefusalSlot::default();
        let err = handshake(
            agent_server_config(&stranger, DenySet::default()).expect("server config"),
            console_inventory_config(&console, inventory, refusals.clone()).expect("client config"),
            any_name,
        )
        .expect_err("a stranger of the same site is refused");
        assert!(
            matches!(refusal(&err), Some(Refusal::UnknownAgent { agent_id }) if *agent_id == stranger.agent_id),
            "{err:?}"
        );
        // The same refusal, typed, for a caller that only sees QUIC's
        // alert code and text.
        let left = refusals.take().expect("the verifier left its refusal");
        assert!(left.is_unknown_agent(), "{left:?}");
        assert_eq!(
            left,
            Refusal::UnknownAgent {
                agent_id: stranger.agent_id
            }
        );
        assert_eq!(refusals.take(), None, "taken once");
    }

    #[test]
    fn configs_refuse_resumption_and_early_data() {
        let site = site();
        let agent = site.ca.issue_agent(None, valid()).expect("agent");
        let console = site
            .ca
            .issue_console(Role::Viewer, "v", valid())
            .expect("console");
        let server = agent_server_config(&agent, DenySet::default()).expect("server config");
        assert_eq!(server.max_early_data_size, 0);
        assert_eq!(server.send_tls13_tickets, 0);
        assert!(!server.session_storage.can_cache());
        assert_eq!(server.alpn_protocols, vec![b"smarttracker/1".to_vec()]);
        let client = console_client_config(&console, pin(&agent)).expect("client config");
        assert!(!client.enable_early_data);
        assert_eq!(client.alpn_protocols, vec![b"smarttracker/1".to_vec()]);
        // quinn accepts both (TLS 1.3 with its initial cipher suite).
        quinn::crypto::rustls::QuicServerConfig::try_from(server).expect("quinn server");
        quinn::crypto::rustls::QuicClientConfig::try_from(client).expect("quinn client");
    }

    #[test]
    fn denied_console_is_refused() {
        let site = site();
        let agent = site.ca.issue_agent(None, valid()).expect("agent");
        let console = site
            .ca
            .issue_console(Role::Admin, "revoked", valid())
            .expect("console");
        // Colon-separated uppercase spelling of the same fingerprint.
        let fingerprint = fingerprint_der(&console.cert_der)
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        let err = handshake(
            agent_server_config(&agent, DenySet::of_fingerprints([fingerprint]))
                .expect("server config"),
            console_client_config(&console, pin(&agent)).expect("client config"),
            &agent_server_name(agent.agent_id),
        )
        .expect_err("denied console refused");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::Revoked)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn console_of_another_site_is_refused() {
        let site = site();
        // Same site name (same CA subject): only the signature tells them apart.
        for other in [named_site("TLS test"), named_site("Elsewhere")] {
            let agent = site.ca.issue_agent(None, valid()).expect("agent");
            let mut stranger = other
                .ca
                .issue_console(Role::Admin, "stranger", valid())
                .expect("console");
            // The stranger even trusts our CA for the server side.
            stranger.ca_cert_der = site.ca.cert_der();
            let err = handshake(
                agent_server_config(&agent, DenySet::default()).expect("server config"),
                console_client_config(&stranger, pin(&agent)).expect("client config"),
                &agent_server_name(agent.agent_id),
            )
            .expect_err("foreign console refused");
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(
                        CertificateError::UnknownIssuer | CertificateError::BadSignature
                    )
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn agent_with_another_key_is_refused_even_from_our_ca() {
        let site = site();
        let agent = site.ca.issue_agent(None, valid()).expect("agent");
        let impostor = site.ca.issue_agent(None, valid()).expect("impostor");
        let console = site
            .ca
            .issue_console(Role::Admin, "admin", valid())
            .expect("console");

        // Right name, wrong key.
        let mut wrong_key = pin(&agent);
        wrong_key.spki_sha256 = pin(&impostor).spki_sha256;
        let err = handshake(
            agent_server_config(&agent, DenySet::default()).expect("server config"),
            console_client_config(&console, wrong_key).expect("client config"),
            &agent_server_name(agent.agent_id),
        )
        .expect_err("unpinned key refused");
        assert!(
            matches!(refusal(&err), Some(Refusal::KeyNotPinned { agent_id }) if *agent_id == agent.agent_id),
            "{err:?}"
        );

        // The impostor answers for the pinned agent's name.
        let err = handshake(
            agent_server_config(&impostor, DenySet::default()).expect("server config"),
            console_client_config(&console, pin(&agent)).expect("client config"),
            &agent_server_name(agent.agent_id),
        )
        .expect_err("impostor refused");
        assert!(
            matches!(refusal(&err), Some(Refusal::WrongAgent { expected, presented })
                if *expected == agent.agent_id && *presented == impostor.agent_id),
            "{err:?}"
        );

        // The impostor's own name, but the pin is for another agent id.
        let mut wrong_id = pin(&impostor);
        wrong_id.agent_id = agent.agent_id;
        let err = handshake(
            agent_server_config(&impostor, DenySet::default()).expect("server config"),
            console_client_config(&console, wrong_id).expect("client config"),
            &agent_server_name(impostor.agent_id),
        )
        .expect_err("agent id mismatch refused");
        assert!(
            matches!(
                refusal(&err),
                Some(Refusal::WrongAgent { expected, presented })
                    if *expected == agent.agent_id && *presented == impostor.agent_id
            ),
            "{err:?}"
        );
    }

    #[test]
    fn expired_agent_is_refused() {
        let site = site();
        let now = OffsetDateTime::now_utc();
        let expired = Validity {
            not_before: now - time::Duration::days(10),
            not_after: now - time::Duration::days(1),
        };
        let agent = site.ca.issue_agent(None, expired).expect("agent");
        let console = site
            .ca
            .issue_console(Role::Admin, "admin", valid())
            .expect("console");
        let err = handshake(
            agent_server_config(&agent, DenySet::default()).expect("server config"),
            console_client_config(&console, pin(&agent)).expect("client config"),
            &agent_server_name(agent.agent_id),
        )
        .expect_err("expired agent refused");
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                )
            ),
            "{err:?}"
        );
    }
}
