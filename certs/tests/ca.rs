//! Site CA and identity tests: every issued certificate is parsed back with
//! x509-parser and checked against the design (EKU, SANs, CA flag, validity,
//! key type), and the site and identity files are checked for round trips,
//! modes, refusals and error messages.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use certs::tls::{agent_peer, console_peer, PeerError};
use certs::{
    agent_server_name, console_uri, fingerprint_der, spki_sha256, AgentIdentity, ConsoleIdentity,
    IdentityFileError, InitError, IssueError, OpenError, Role, SiteCa, Validity, ValidityError,
    AGENT_VALIDITY_DAYS, CA_VALIDITY_DAYS, CONSOLE_VALIDITY_DAYS,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::FromDer;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn new_site(dir: &Path) -> SiteCa {
    SiteCa::init(
        dir,
        "Test Site",
        None,
        Validity::days_from(now(), CA_VALIDITY_DAYS),
    )
    .expect("init site")
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).expect("certificate parses");
    assert!(rest.is_empty(), "no trailing bytes");
    cert
}

fn read_pem_cert(path: &Path) -> Vec<u8> {
    let text = fs::read(path).expect("read PEM");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text).expect("PEM parses");
    pem.contents
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn assert_p256(cert: &X509Certificate<'_>) {
    let algorithm = &cert.public_key().algorithm;
    assert_eq!(algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY);
    let curve = algorithm
        .parameters
        .as_ref()
        .expect("curve parameter")
        .as_oid()
        .expect("curve is an OID");
    assert_eq!(curve, OID_EC_P256);
}

fn assert_validity(cert: &X509Certificate<'_>, validity: Validity) {
    assert_eq!(
        cert.validity().not_before.to_datetime(),
        validity.not_before
    );
    assert_eq!(cert.validity().not_after.to_datetime(), validity.not_after);
}

fn assert_leaf_basics(cert: &X509Certificate<'_>) {
    let constraints = cert
        .basic_constraints()
        .expect("basicConstraints well-formed")
        .expect("basicConstraints present");
    assert!(!constraints.value.ca, "a leaf is not a CA");
    assert!(!cert.is_ca());
    let key_usage = cert
        .key_usage()
        .expect("keyUsage")
        .expect("keyUsage present");
    assert!(key_usage.value.digital_signature());
    assert!(!key_usage.value.key_cert_sign());
    assert!(!key_usage.value.crl_sign());
    assert_p256(cert);
}

fn sans<'a>(cert: &'a X509Certificate<'a>) -> &'a [GeneralName<'a>] {
    &cert
        .subject_alternative_name()
        .expect("SAN well-formed")
        .expect("SAN present")
        .value
        .general_names
}

#[test]
fn site_ca_is_a_p256_ca_with_path_length_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    let validity = Validity::days_from(now(), CA_VALIDITY_DAYS);
    let ca = SiteCa::init(&site, "Acme", None, validity).expect("init");

    let on_disk = read_pem_cert(&site.join("ca.cert.pem"));
    assert_eq!(on_disk, ca.cert_der().as_ref());
    assert_eq!(ca.fingerprint(), fingerprint_der(&on_disk));
    let cert = parse(&on_disk);
    let constraints = cert
        .basic_constraints()
        .expect("basicConstraints")
        .expect("present");
    assert!(constraints.critical);
    assert!(constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, Some(0));
    let key_usage = cert.key_usage().expect("keyUsage").expect("present");
    assert!(key_usage.value.key_cert_sign());
    assert!(key_usage.value.crl_sign());
    assert!(!key_usage.value.digital_signature());
    assert_p256(&cert);
    assert_validity(&cert, validity);
    assert!(
        (validity.not_after - validity.not_before - Duration::days(3650)).abs()
            <= Duration::minutes(5)
    );

    let site_json: serde_json::Value =
        serde_json::from_slice(&fs::read(site.join("site.json")).expect("site.json"))
            .expect("site.json is JSON");
    assert_eq!(site_json["name"], "Acme");
    assert_eq!(
        site_json["ca_fingerprint_sha256"],
        ca.fingerprint().as_str()
    );
    assert!(site_json["created"].is_string());
}

#[test]
fn agent_certificate_is_server_auth_only_with_one_uuid_dns_san() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let validity = Validity::days_from(now(), AGENT_VALIDITY_DAYS);
    let agent = ca
        .issue_agent(Some("host-17.example"), validity)
        .expect("issue agent");

    let cert = parse(&agent.cert_der);
    let eku = cert
        .extended_key_usage()
        .expect("EKU well-formed")
        .expect("EKU present")
        .value;
    assert!(eku.server_auth);
    assert!(!eku.client_auth);
    assert!(!eku.any);
    assert!(!eku.code_signing && !eku.email_protection && !eku.time_stamping && !eku.ocsp_signing);
    assert!(eku.other.is_empty());

    let expected = agent_server_name(agent.agent_id);
    assert_eq!(expected, format!("{}.agent.smarttracker", agent.agent_id));
    match sans(&cert) {
        [GeneralName::DNSName(dns)] => assert_eq!(*dns, expected),
        other => panic!("expected one DNS SAN, got {other:?}"),
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    assert_eq!(cn, Some("host-17.example"));
    assert_eq!(agent.name.as_deref(), Some("host-17.example"));

    assert_leaf_basics(&cert);
    assert_validity(&cert, validity);
    assert_eq!(agent.ca_cert_der, ca.cert_der());
    let issuer = parse(&agent.ca_cert_der);
    assert!(cert.verify_signature(Some(issuer.public_key())).is_ok());
}

#[test]
fn console_certificate_is_client_auth_only_with_one_uri_san() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    for role in [Role::Admin, Role::Viewer] {
        let validity = Validity::days_from(now(), CONSOLE_VALIDITY_DAYS);
        let console = ca
            .issue_console(role, "Front desk", validity)
            .expect("issue console");
        assert_eq!(console.role, role);
        let cert = parse(&console.cert_der);
        let eku = cert
            .extended_key_usage()
            .expect("EKU well-formed")
            .expect("EKU present")
            .value;
        assert!(eku.client_auth);
        assert!(!eku.server_auth);
        assert!(!eku.any);
        assert!(eku.other.is_empty());

        let expected = format!("urn:smarttracker:console:{role}:{}", console.console_id);
        assert_eq!(console_uri(role, console.console_id), expected);
        match sans(&cert) {
            [GeneralName::URI(uri)] => assert_eq!(*uri, expected),
            other => panic!("expected one URI SAN, got {other:?}"),
        }
        assert_leaf_basics(&cert);
        assert_validity(&cert, validity);
    }
}

#[test]
fn validity_is_written_as_asked_even_when_already_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let expired = Validity {
        not_before: now() - Duration::days(30),
        not_after: now() - Duration::days(1),
    };
    // X.509 holds whole seconds.
    let expired = Validity {
        not_before: expired.not_before.replace_nanosecond(0).expect("ns"),
        not_after: expired.not_after.replace_nanosecond(0).expect("ns"),
    };
    let agent = ca.issue_agent(None, expired).expect("issue expired agent");
    let console = ca
        .issue_console(Role::Viewer, "old", expired)
        .expect("issue expired console");
    assert_validity(&parse(&agent.cert_der), expired);
    assert_validity(&parse(&console.cert_der), expired);
    assert!(!parse(&agent.cert_der).validity().is_valid());
}

#[test]
fn validity_days_from_allows_clock_skew() {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time")
        + Duration::nanoseconds(123);
    let validity = Validity::days_from(at, 2);
    assert_eq!(
        validity.not_before,
        OffsetDateTime::from_unix_timestamp(1_700_000_000 - 300).expect("time")
    );
    assert_eq!(
        validity.not_after,
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + 2 * 86_400).expect("time")
    );
}

#[test]
fn validity_days_from_clamps_to_year_9999() {
    let validity = Validity::days_from(now(), u32::MAX);
    assert_eq!(validity.not_after.year(), 9999);
    assert_eq!(validity.not_after.nanosecond(), 0);
    assert!(validity.not_before < now());
}

#[test]
fn unusable_validity_and_names_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let backwards = Validity {
        not_before: now(),
        not_after: now() - Duration::days(1),
    };
    assert!(matches!(
        ca.issue_agent(None, backwards),
        Err(IssueError::Validity(ValidityError::Empty { .. }))
    ));
    let too_long = Validity::days_from(now(), CA_VALIDITY_DAYS + 10);
    assert!(matches!(
        ca.issue_console(Role::Admin, "x", too_long),
        Err(IssueError::Validity(ValidityError::OutlivesCa { .. }))
    ));
    let ok = Validity::days_from(now(), 1);
    for bad in ["", "   ", "line\nbreak", &"x".repeat(65)] {
        assert!(
            matches!(
                ca.issue_console(Role::Admin, bad, ok),
                Err(IssueError::Name(_))
            ),
            "name {bad:?} refused"
        );
    }
    assert!(matches!(
        ca.issue_agent(Some("tab\there"), ok),
        Err(IssueError::Name(_))
    ));
    assert!(matches!(
        SiteCa::init(&dir.path().join("other"), "", None, ok),
        Err(InitError::Name(_))
    ));
    assert!(!dir.path().join("other").exists());
}

#[test]
fn serial_numbers_are_random_and_positive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let validity = Validity::days_from(now(), 1);
    let a = ca.issue_agent(None, validity).expect("a");
    let b = ca.issue_agent(None, validity).expect("b");
    let (a, b) = (parse(&a.cert_der), parse(&b.cert_der));
    assert_ne!(a.raw_serial(), b.raw_serial());
    for cert in [a, b] {
        assert_eq!(cert.raw_serial().len(), 16);
        assert_eq!(cert.raw_serial()[0] & 0x80, 0, "positive");
    }
}

#[test]
fn each_agent_gets_a_fresh_id_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let validity = Validity::days_from(now(), 1);
    let a = ca.issue_agent(Some("same-host"), validity).expect("a");
    let b = ca.issue_agent(Some("same-host"), validity).expect("b");
    assert_ne!(a.agent_id, b.agent_id);
    assert_ne!(
        spki_sha256(&a.cert_der).expect("pin a"),
        spki_sha256(&b.cert_der).expect("pin b")
    );
}

#[test]
fn passphrase_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    let ca = SiteCa::init(
        &site,
        "Encrypted",
        Some("correct horse"),
        Validity::days_from(now(), 30),
    )
    .expect("init");
    let key_text = fs::read_to_string(site.join("ca.key.pem")).expect("key");
    assert!(key_text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(!key_text.contains("BEGIN PRIVATE KEY"));

    let opened = SiteCa::open(&site, Some("correct horse")).expect("open");
    assert_eq!(opened.fingerprint(), ca.fingerprint());
    assert_eq!(opened.name(), "Encrypted");
    // The reopened CA still issues certificates that chain to it.
    let agent = opened
        .issue_agent(None, Validity::days_from(now(), 1))
        .expect("issue");
    let issuer = parse(&agent.ca_cert_der);
    assert!(parse(&agent.cert_der)
        .verify_signature(Some(issuer.public_key()))
        .is_ok());

    match SiteCa::open(&site, None) {
        Err(err @ OpenError::PassphraseRequired { .. }) => {
            assert!(err.to_string().contains("SMARTTRACKER_CA_PASSPHRASE"))
        }
        other => panic!("expected PassphraseRequired, got {other:?}"),
    }
}

#[test]
fn wrong_passphrase_is_reported_with_the_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    SiteCa::init(&site, "Enc", Some("right"), Validity::days_from(now(), 30)).expect("init");
    let err = SiteCa::open(&site, Some("wrong")).expect_err("wrong passphrase refused");
    assert!(matches!(err, OpenError::WrongPassphrase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&site.join("ca.key.pem").display().to_string()));
    assert!(message.contains("wrong passphrase"));
    assert!(message.contains("SMARTTRACKER_CA_PASSPHRASE"));
}

#[test]
fn unencrypted_key_is_plain_pkcs8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    let ca = new_site(&site);
    let key_text = fs::read_to_string(site.join("ca.key.pem")).expect("key");
    assert!(key_text.starts_with("-----BEGIN PRIVATE KEY-----"));
    // An empty passphrase means none.
    let opened = SiteCa::open(&site, Some("")).expect("open");
    assert_eq!(opened.fingerprint(), ca.fingerprint());
}

#[test]
fn corrupt_pem_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    new_site(&site);
    let cert_path = site.join("ca.cert.pem");
    let key_path = site.join("ca.key.pem");
    let good_cert = fs::read(&cert_path).expect("cert");
    let good_key = fs::read(&key_path).expect("key");

    fs::write(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("corrupt cert");
    let message = SiteCa::open(&site, None)
        .expect_err("corrupt cert")
        .to_string();
    assert!(
        message.contains(&cert_path.display().to_string()),
        "{message}"
    );
    assert!(!message.contains('\n'));

    fs::write(&cert_path, &good_cert).expect("restore cert");
    fs::write(&key_path, "-----BEGIN PRIVATE KEY-----\nAAAA\n").expect("corrupt key");
    let message = SiteCa::open(&site, None)
        .expect_err("corrupt key")
        .to_string();
    assert!(
        message.contains(&key_path.display().to_string()),
        "{message}"
    );

    fs::write(&key_path, &good_key).expect("restore key");
    fs::write(site.join("site.json"), "{").expect("corrupt site.json");
    let message = SiteCa::open(&site, None)
        .expect_err("corrupt site.json")
        .to_string();
    assert!(
        message.contains(&site.join("site.json").display().to_string()),
        "{message}"
    );
}

#[test]
fn open_refuses_a_missing_site_and_mixed_sites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = SiteCa::open(&missing, None).expect_err("missing");
    assert!(matches!(err, OpenError::NoSite { .. }));
    assert!(err.to_string().contains(&missing.display().to_string()));

    let a = dir.path().join("a");
    let b = dir.path().join("b");
    new_site(&a);
    new_site(&b);
    fs::copy(b.join("ca.cert.pem"), a.join("ca.cert.pem")).expect("mix cert");
    assert!(matches!(
        SiteCa::open(&a, None),
        Err(OpenError::FingerprintMismatch { .. })
    ));
    fs::copy(b.join("site.json"), a.join("site.json")).expect("mix site.json");
    assert!(matches!(
        SiteCa::open(&a, None),
        Err(OpenError::KeyMismatch { .. })
    ));
}

#[test]
fn init_refuses_an_existing_site_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    new_site(&site);
    let names = ["ca.cert.pem", "ca.key.pem", "site.json"];
    let before: Vec<Vec<u8>> = names
        .iter()
        .map(|name| fs::read(site.join(name)).expect("read"))
        .collect();

    let err = SiteCa::init(&site, "Again", None, Validity::days_from(now(), 30))
        .expect_err("existing site refused");
    assert!(matches!(err, InitError::SiteExists { .. }));
    assert!(err.to_string().contains(&site.display().to_string()));

    let after: Vec<Vec<u8>> = names
        .iter()
        .map(|name| fs::read(site.join(name)).expect("read"))
        .collect();
    assert_eq!(before, after);

    // Any one site file is enough to refuse, and nothing is added.
    let partial = dir.path().join("partial");
    fs::create_dir(&partial).expect("mkdir");
    fs::write(partial.join("site.json"), "{}").expect("write");
    assert!(matches!(
        SiteCa::init(&partial, "X", None, Validity::days_from(now(), 30)),
        Err(InitError::SiteExists { .. })
    ));
    assert!(!partial.join("ca.key.pem").exists());
    assert!(!partial.join("ca.cert.pem").exists());
}

#[test]
fn key_files_are_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    let ca = new_site(&site);
    assert_eq!(mode(&site), 0o700);
    assert_eq!(mode(&site.join("ca.key.pem")), 0o600);

    let console_dir = dir.path().join("console");
    ca.issue_console(Role::Admin, "c", Validity::days_from(now(), 1))
        .expect("issue")
        .write(&console_dir)
        .expect("write");
    assert_eq!(mode(&console_dir), 0o700);
    assert_eq!(mode(&console_dir.join("console.key.pem")), 0o600);

    let bundle = dir.path().join("agent.pem");
    ca.issue_agent(None, Validity::days_from(now(), 1))
        .expect("issue")
        .write_bundle(&bundle)
        .expect("write");
    assert_eq!(mode(&bundle), 0o600);
}

#[test]
fn readable_key_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    let ca = new_site(&site);
    let bundle = dir.path().join("agent.pem");
    ca.issue_agent(None, Validity::days_from(now(), 1))
        .expect("issue")
        .write_bundle(&bundle)
        .expect("write");
    fs::set_permissions(&bundle, fs::Permissions::from_mode(0o644)).expect("chmod");
    let message = AgentIdentity::read_bundle(&bundle)
        .expect_err("world-readable bundle")
        .to_string();
    assert!(message.contains("chmod 600"), "{message}");

    fs::set_permissions(site.join("ca.key.pem"), fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(SiteCa::open(&site, None).is_err());
}

#[test]
fn peers_are_read_from_issued_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let validity = Validity::days_from(now(), 1);
    let console = ca
        .issue_console(Role::Viewer, "v", validity)
        .expect("console");
    let agent = ca.issue_agent(None, validity).expect("agent");

    let peer = console_peer(std::slice::from_ref(&console.cert_der)).expect("console peer");
    assert_eq!(peer.console_id, console.console_id);
    assert_eq!(peer.role, Role::Viewer);
    assert_eq!(peer.fingerprint, fingerprint_der(&console.cert_der));

    // The leaf is the first certificate; a chain after it is ignored.
    let chain = [agent.cert_der.clone(), agent.ca_cert_der.clone()];
    assert_eq!(agent_peer(&chain).expect("agent peer"), agent.agent_id);

    assert!(matches!(
        console_peer(std::slice::from_ref(&agent.cert_der)),
        Err(PeerError::NotConsole(_))
    ));
    assert!(matches!(
        agent_peer(std::slice::from_ref(&console.cert_der)),
        Err(PeerError::NotAgent(_))
    ));
    assert!(matches!(
        console_peer(std::slice::from_ref(&ca.cert_der())),
        Err(PeerError::NotConsole(_))
    ));
    assert!(matches!(console_peer(&[]), Err(PeerError::NoCertificate)));
    assert!(matches!(
        agent_peer(&[CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])]),
        Err(PeerError::Parse(_))
    ));
}

#[test]
fn console_identity_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let console = ca
        .issue_console(
            Role::Admin,
            "Manager laptop",
            Validity::days_from(now(), 30),
        )
        .expect("issue");
    let out = dir.path().join("identities").join("manager");
    console.write(&out).expect("write");
    let read = ConsoleIdentity::read(&out).expect("read");
    assert_eq!(read.console_id, console.console_id);
    assert_eq!(read.role, console.role);
    assert_eq!(read.name, "Manager laptop");
    assert_eq!(read.cert_der, console.cert_der);
    assert_eq!(read.ca_cert_der, console.ca_cert_der);
    assert_eq!(
        read.key_der.secret_pkcs8_der(),
        console.key_der.secret_pkcs8_der()
    );
}

#[test]
fn agent_bundle_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    for name in [Some("host \"quoted\" name"), None] {
        let agent = ca
            .issue_agent(name, Validity::days_from(now(), 30))
            .expect("issue");
        let file = dir
            .path()
            .join("bundles")
            .join(format!("{}.pem", agent.agent_id));
        agent.write_bundle(&file).expect("write");
        let text = fs::read_to_string(&file).expect("bundle text");
        assert!(text.contains(&agent.agent_id.to_string()));
        assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(text.matches("BEGIN PRIVATE KEY").count(), 1);

        let read = AgentIdentity::read_bundle(&file).expect("read");
        assert_eq!(read.agent_id, agent.agent_id);
        assert_eq!(read.name, agent.name);
        assert_eq!(read.cert_der, agent.cert_der);
        assert_eq!(read.ca_cert_der, agent.ca_cert_der);
        assert_eq!(
            read.key_der.secret_pkcs8_der(),
            agent.key_der.secret_pkcs8_der()
        );
    }
}

#[test]
fn identity_writes_never_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let validity = Validity::days_from(now(), 1);

    let bundle = dir.path().join("agent.pem");
    fs::write(&bundle, "precious").expect("write");
    let agent = ca.issue_agent(None, validity).expect("issue");
    let err = agent.write_bundle(&bundle).expect_err("refused");
    assert!(matches!(err, IdentityFileError::File(_)));
    assert!(err.to_string().contains(&bundle.display().to_string()));
    assert_eq!(fs::read_to_string(&bundle).expect("read"), "precious");

    let console_dir = dir.path().join("console");
    fs::create_dir(&console_dir).expect("mkdir");
    fs::write(console_dir.join("ca.cert.pem"), "precious").expect("write");
    let console = ca.issue_console(Role::Admin, "c", validity).expect("issue");
    let err = console.write(&console_dir).expect_err("refused");
    assert!(err.to_string().contains("ca.cert.pem"));
    assert_eq!(
        fs::read_to_string(console_dir.join("ca.cert.pem")).expect("read"),
        "precious"
    );
    assert!(!console_dir.join("console.key.pem").exists());
    assert!(!console_dir.join("console.cert.pem").exists());
}

#[test]
fn tampered_or_mixed_identities_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_site(&dir.path().join("site"));
    let other = new_site(&dir.path().join("other-site"));
    let validity = Validity::days_from(now(), 1);

    // Header naming another agent.
    let agent = ca.issue_agent(None, validity).expect("issue");
    let file = dir.path().join("agent.pem");
    agent.write_bundle(&file).expect("write");
    let text = fs::read_to_string(&file).expect("read").replace(
        &agent.agent_id.to_string(),
        &uuid::Uuid::new_v4().to_string(),
    );
    fs::write(&file, text).expect("tamper");
    let message = AgentIdentity::read_bundle(&file)
        .expect_err("tampered header")
        .to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");

    // Console certificate from one site, CA certificate from another.
    let console = ca.issue_console(Role::Admin, "c", validity).expect("issue");
    let console_dir = dir.path().join("console");
    console.write(&console_dir).expect("write");
    fs::remove_file(console_dir.join("ca.cert.pem")).expect("rm");
    fs::copy(
        dir.path().join("other-site").join("ca.cert.pem"),
        console_dir.join("ca.cert.pem"),
    )
    .expect("swap CA");
    let message = ConsoleIdentity::read(&console_dir)
        .expect_err("mixed sites")
        .to_string();
    assert!(message.contains("not issued by the site CA"), "{message}");

    // Key of another console.
    let stranger = other
        .issue_console(Role::Admin, "s", validity)
        .expect("issue");
    let stranger_dir = dir.path().join("stranger");
    stranger.write(&stranger_dir).expect("write");
    let console_dir = dir.path().join("console2");
    console.write(&console_dir).expect("write");
    fs::remove_file(console_dir.join("console.key.pem")).expect("rm");
    fs::copy(
        stranger_dir.join("console.key.pem"),
        console_dir.join("console.key.pem"),
    )
    .expect("swap key");
    let message = ConsoleIdentity::read(&console_dir)
        .expect_err("foreign key")
        .to_string();
    assert!(message.contains("console.key.pem"), "{message}");
}
