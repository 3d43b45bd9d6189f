//! Mutual TLS over real QUIC sockets with real site certificates: who gets
//! in, who is refused, and that a refused peer is served zero bytes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use certs::tls::{
    agent_server_config, agent_server_name, console_client_config, console_peer, AgentPin,
    ConsolePeer,
};
use certs::transport::{
    client_config, client_endpoint, connect, read_message, reject_stream, request, server_config,
    server_endpoint, write_message, Limits, TransportError,
};
use certs::{spki_sha256, AgentIdentity, ConsoleIdentity, Role, SiteCa, Validity};
use protocol::{Hello, HelloReply, Request, Response};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

struct Site {
    _dir: tempfile::TempDir,
    ca: SiteCa,
}

fn new_site(name: &str) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = SiteCa::init(
        &dir.path().join("site"),
        name,
        None,
        Validity::days_from(OffsetDateTime::now_utc(), 365),
    )
    .expect("site CA");
    Site { _dir: dir, ca }
}

fn valid() -> Validity {
    Validity::days_from(OffsetDateTime::now_utc(), 30)
}

/// A minimal agent: authenticates, records who connected, answers hello,
/// and counts every request it served.
struct TestAgent {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<ConsolePeer>>>,
    identity: AgentIdentity,
    _endpoint: quinn::Endpoint,
}

impl TestAgent {
    fn pin(&self) -> AgentPin {
        AgentPin {
            agent_id: self.identity.agent_id,
            spki_sha256: spki_sha256(&self.identity.cert_der).expect("agent cert parses"),
        }
    }
}

async fn start_agent(identity: AgentIdentity) -> TestAgent {
    let tls = agent_server_config(&identity, certs::deny::DenySet::default()).expect("server tls");
    let endpoint = server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        server_config(tls, &Limits::default()).expect("quinn server config"),
    )
    .expect("bind");
    let addr = endpoint.local_addr().expect("local addr");
    let served = Arc::new(AtomicUsize::new(0));
    let peers = Arc::new(Mutex::new(Vec::new()));
    let agent_id = identity.agent_id;
    let accept_endpoint = endpoint.clone();
    let (served_task, peers_task) = (served.clone(), peers.clone());
    tokio::spawn(async move {
        while let Some(incoming) = accept_endpoint.accept().await {
            let (served, peers) = (served_task.clone(), peers_task.clone());
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let chain = conn
                    .peer_identity()
                    .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
                    .expect("an authenticated connection has a client chain");
                let peer = console_peer(&chain).expect("console identity");
                peers.lock().expect("lock").push(peer);
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let Ok(Request::Hello(hello)) = read_message::<Request>(&mut recv).await else {
                        reject_stream(&mut send, &mut recv);
                        continue;
                    };
                    served.fetch_add(1, Ordering::SeqCst);
                    let reply = Response::Hello(HelloReply {
                        version: hello.max_version,
                        agent_id,
                        hostname: "test-agent".into(),
                        demo: false,
                        heads: Vec::new(),
                        time_zone: "UTC".into(),
                    });
                    let _ = write_message(&mut send, &reply).await;
                }
            });
        }
    });
    TestAgent {
        addr,
        served,
        peers,
        identity,
        _endpoint: endpoint,
    }
}

fn hello() -> Request {
    Request::Hello(Hello {
        min_version: 1,
        max_version: 1,
        console_name: "test console".into(),
    })
}

/// Connects with a prepared rustls config and makes one hello request.
async fn hello_with(
    agent: &TestAgent,
    tls: rustls::ClientConfig,
) -> Result<Response, TransportError> {
    let endpoint = client_endpoint(agent.addr)?;
    let config = client_config(tls, &Limits::default())?;
    let conn = connect(
        &endpoint,
        config,
        agent.addr,
        &agent_server_name(agent.identity.agent_id),
    )
    .await?;
    let response = request(&conn, &hello()).await;
    conn.close(0u32.into(), b"done");
    response
}

async fn hello_as(
    agent: &TestAgent,
    console: &ConsoleIdentity,
) -> Result<Response, TransportError> {
    let tls = console_client_config(console, agent.pin()).expect("client tls");
    hello_with(agent, tls).await
}

/// A console identity that presents `cert`/`key` but trusts `site`'s CA, so
/// only the agent's side can refuse it.
fn presenting(
    cert: &CertificateDer<'static>,
    key: &rustls_pki_types::PrivatePkcs8KeyDer<'static>,
    site: &Site,
) -> ConsoleIdentity {
    ConsoleIdentity {
        console_id: uuid::Uuid::new_v4(),
        role: Role::Admin,
        name: "impostor".into(),
        cert_der: cert.clone(),
        key_der: key.clone_key(),
        ca_cert_der: site.ca.cert_der(),
    }
}

/// The connection failed for `reason` (a TLS alert text) and the agent
/// neither authenticated nor served the peer.
fn assert_refused(
    result: Result<Response, TransportError>,
    agent: &TestAgent,
    what: &str,
    reason: &str,
) {
    let error = match result {
        Ok(response) => panic!("{what}: expected refusal, got {response:?}"),
        Err(error) => format!("{error:?}"),
    };
    assert!(
        error.contains(reason),
        "{what}: refused for another reason: {error}"
    );
    assert_eq!(
        agent.served.load(Ordering::SeqCst),
        0,
        "{what}: served bytes"
    );
    assert!(
        agent.peers.lock().expect("lock").is_empty(),
        "{what}: authenticated"
    );
}

#[tokio::test]
async fn admin_console_completes_a_request() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(Some("pc-01"), valid()).expect("agent")).await;
    let admin = site
        .ca
        .issue_console(Role::Admin, "boss", valid())
        .expect("console");
    let response = hello_as(&agent, &admin).await.expect("request completes");
    let Response::Hello(reply) = response else {
        panic!("unexpected {response:?}")
    };
    assert_eq!(reply.agent_id, agent.identity.agent_id);
    assert_eq!(agent.served.load(Ordering::SeqCst), 1);
    let peers = agent.peers.lock().expect("lock");
    assert_eq!(peers[0].role, Role::Admin);
    assert_eq!(peers[0].console_id, admin.console_id);
}

#[tokio::test]
async fn viewer_is_identified_as_viewer() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let viewer = site
        .ca
        .issue_console(Role::Viewer, "assistant", valid())
        .expect("console");
    hello_as(&agent, &viewer).await.expect("request completes");
    let peers = agent.peers.lock().expect("lock");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].role, Role::Viewer);
    assert_eq!(peers[0].console_id, viewer.console_id);
}

#[tokio::test]
async fn no_client_certificate_is_refused() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(site.ca.cert_der()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    assert_refused(
        hello_with(&agent, tls).await,
        &agent,
        "no client cert",
        "peer sent no certificates",
    );
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let site = new_site("Acme");
    let other = new_site("Evil Corp");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let foreign = other
        .ca
        .issue_console(Role::Admin, "intruder", valid())
        .expect("console");
    let impostor = presenting(&foreign.cert_der, &foreign.key_der, &site);
    assert_refused(
        hello_as(&agent, &impostor).await,
        &agent,
        "other CA",
        "UnknownIssuer",
    );
}

#[tokio::test]
async fn agent_certificate_used_as_client_is_refused() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let other_agent = site.ca.issue_agent(None, valid()).expect("agent");
    let impostor = presenting(&other_agent.cert_der, &other_agent.key_der, &site);
    assert_refused(
        hello_as(&agent, &impostor).await,
        &agent,
        "serverAuth-only cert",
        "extended key usage for client authentication",
    );
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let now = OffsetDateTime::now_utc();
    let expired = site
        .ca
        .issue_console(
            Role::Admin,
            "old",
            Validity {
                not_before: now - Duration::days(60),
                not_after: now - Duration::days(1),
            },
        )
        .expect("console");
    assert_refused(
        hello_as(&agent, &expired).await,
        &agent,
        "expired",
        "certificate expired",
    );
}

#[tokio::test]
async fn wrong_alpn_is_refused() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let admin = site
        .ca
        .issue_console(Role::Admin, "boss", valid())
        .expect("console");
    let mut tls = console_client_config(&admin, agent.pin()).expect("client tls");
    tls.alpn_protocols = vec![b"smarttracker/0".to_vec()];
    assert_refused(
        hello_with(&agent, tls).await,
        &agent,
        "wrong ALPN",
        "doesn't support any known protocol",
    );
}

#[tokio::test]
async fn console_refuses_an_agent_whose_key_is_not_pinned() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let admin = site
        .ca
        .issue_console(Role::Admin, "boss", valid())
        .expect("console");
    // Same site, same agent id, but the inventory pinned another key.
    let other = site.ca.issue_agent(None, valid()).expect("agent");
    let wrong_pin = AgentPin {
        agent_id: agent.identity.agent_id,
        spki_sha256: spki_sha256(&other.cert_der).expect("parses"),
    };
    let tls = console_client_config(&admin, wrong_pin).expect("client tls");
    assert_refused(
        hello_with(&agent, tls).await,
        &agent,
        "pin mismatch",
        "KeyNotPinned",
    );
}

#[tokio::test]
async fn oversized_request_frame_resets_the_stream_without_serving() {
    let site = new_site("Acme");
    let agent = start_agent(site.ca.issue_agent(None, valid()).expect("agent")).await;
    let admin = site
        .ca
        .issue_console(Role::Admin, "boss", valid())
        .expect("console");
    let endpoint = client_endpoint(agent.addr).expect("endpoint");
    let config = client_config(
        console_client_config(&admin, agent.pin()).expect("tls"),
        &Limits::default(),
    )
    .expect("config");
    let conn = connect(
        &endpoint,
        config,
        agent.addr,
        &agent_server_name(agent.identity.agent_id),
    )
    .await
    .expect("connects");
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    // A 4 GiB length prefix: refused after 4 bytes, nothing allocated.
    send.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
        .await
        .expect("write");
    send.finish().expect("finish");
    assert!(read_message::<Response>(&mut recv).await.is_err());
    assert_eq!(agent.served.load(Ordering::SeqCst), 0);
    // The connection is still usable for a good request.
    let response = request(&conn, &hello()).await.expect("next request works");
    assert!(matches!(response, Response::Hello(_)));
}
