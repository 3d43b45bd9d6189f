//! The `smarttracker-certs` binary, run for real: init, console, agent and
//! inspect, and the bad-input cases (non-zero exit, one-line error naming
//! the file, nothing overwritten).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

const PASSPHRASE_ENV: &str = "SMARTTRACKER_CA_PASSPHRASE";

fn run(args: &[&str], passphrase: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smarttracker-certs"));
    command.args(args).env_remove(PASSPHRASE_ENV);
    if let Some(passphrase) = passphrase {
        command.env(PASSPHRASE_ENV, passphrase);
    }
    command.output().expect("run smarttracker-certs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails with exactly one `error: …` line on stderr that names `file`.
fn assert_one_line_error(output: &Output, file: &Path) -> String {
    assert!(!output.status.success(), "expected failure");
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    assert!(
        stderr.contains(path(file)),
        "names {}: {stderr:?}",
        file.display()
    );
    stderr
}

fn init(site: &Path, passphrase: Option<&str>) -> Output {
    let output = run(
        &["init", "--site", path(site), "--name", "Acme"],
        passphrase,
    );
    assert_ok(&output);
    output
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

fn inspect_json(target: &Path) -> serde_json::Value {
    let output = run(&["inspect", path(target), "--json"], None);
    assert_ok(&output);
    serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON")
}

fn parse_time(value: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("string"), &Rfc3339).expect("RFC 3339")
}

#[test]
fn init_says_whether_the_key_is_encrypted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain");
    let out = stdout(&init(&plain, None));
    assert!(out.contains("NOT encrypted"), "{out}");
    assert!(fs::read_to_string(plain.join("ca.key.pem"))
        .expect("key")
        .starts_with("-----BEGIN PRIVATE KEY-----"));

    let empty = dir.path().join("empty");
    let out = stdout(&init(&empty, Some("")));
    assert!(out.contains("NOT encrypted"), "{out}");

    let encrypted = dir.path().join("encrypted");
    let out = stdout(&init(&encrypted, Some("s3cret")));
    assert!(!out.contains("NOT encrypted"), "{out}");
    assert!(out.contains("encrypted"), "{out}");
    assert!(fs::read_to_string(encrypted.join("ca.key.pem"))
        .expect("key")
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}

#[test]
fn init_refuses_an_existing_site() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, None);
    let before = snapshot(&site);
    let output = run(&["init", "--site", path(&site), "--name", "Other"], None);
    assert_eq!(output.status.code(), Some(1));
    assert_one_line_error(&output, &site);
    assert_eq!(snapshot(&site), before);
}

#[test]
fn console_issue_and_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, None);
    let out_dir = dir.path().join("console");
    let output = run(
        &[
            "console",
            "--site",
            path(&site),
            "--role",
            "viewer",
            "--name",
            "Reception",
            "--out",
            path(&out_dir),
            "--days",
            "30",
        ],
        None,
    );
    assert_ok(&output);
    for file in ["console.cert.pem", "console.key.pem", "ca.cert.pem"] {
        assert!(out_dir.join(file).is_file(), "{file} written");
    }

    let json = inspect_json(&out_dir);
    assert_eq!(json["kind"], "console-identity");
    let certificates = json["certificates"].as_array().expect("certificates");
    assert_eq!(certificates.len(), 2);
    let console = &certificates[0];
    assert_eq!(console["kind"], "console");
    assert_eq!(console["role"], "viewer");
    assert_eq!(console["is_ca"], false);
    assert_eq!(
        console["extended_key_usage"],
        serde_json::json!(["clientAuth"])
    );
    let console_id = console["console_id"].as_str().expect("console id");
    assert_eq!(
        console["subject_alt_names"],
        serde_json::json!([format!("URI:urn:smarttracker:console:viewer:{console_id}")])
    );
    assert_eq!(console["key_algorithm"], "ECDSA P-256");
    let lifetime = parse_time(&console["not_after"]) - OffsetDateTime::now_utc();
    assert!((lifetime - Duration::days(30)).abs() < Duration::minutes(5));
    assert!(stdout(&output).contains(console_id));
    assert_eq!(certificates[1]["kind"], "site-ca");
    assert_eq!(certificates[1]["is_ca"], true);

    let text = run(&["inspect", path(&out_dir)], None);
    assert_ok(&text);
    let text = stdout(&text);
    assert!(text.contains("role:        viewer"), "{text}");
    assert!(text.contains(console_id), "{text}");
}

#[test]
fn agent_issue_and_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, Some("pw"));
    let bundle = dir.path().join("agents").join("pc-12.pem");
    let output = run(
        &[
            "agent",
            "--site",
            path(&site),
            "--out",
            path(&bundle),
            "--name",
            "pc-12",
        ],
        Some("pw"),
    );
    assert_ok(&output);

    let json = inspect_json(&bundle);
    assert_eq!(json["kind"], "agent-bundle");
    let certificates = json["certificates"].as_array().expect("certificates");
    assert_eq!(certificates.len(), 2);
    let agent = &certificates[0];
    assert_eq!(agent["kind"], "agent");
    assert_eq!(agent["is_ca"], false);
    assert_eq!(
        agent["extended_key_usage"],
        serde_json::json!(["serverAuth"])
    );
    assert_eq!(agent["subject"], "CN=pc-12, O=Acme");
    let agent_id = agent["agent_id"].as_str().expect("agent id");
    assert_eq!(
        agent["subject_alt_names"],
        serde_json::json!([format!("DNS:{agent_id}.agent.smarttracker")])
    );
    let lifetime = parse_time(&agent["not_after"]) - OffsetDateTime::now_utc();
    assert!((lifetime - Duration::days(730)).abs() < Duration::minutes(5));
    let out = stdout(&output);
    assert!(out.contains(agent_id), "{out}");
    assert!(
        out.contains(agent["spki_sha256"].as_str().expect("pin")),
        "{out}"
    );

    let ca = inspect_json(&site.join("ca.cert.pem"));
    assert_eq!(ca["kind"], "certificate-file");
    assert_eq!(ca["certificates"][0]["kind"], "site-ca");
    assert_eq!(ca["certificates"][0]["is_ca"], true);
    assert_eq!(ca["certificates"][0]["path_len_constraint"], 0);
    assert_eq!(
        ca["certificates"][0]["fingerprint_sha256"],
        certificates[1]["fingerprint_sha256"]
    );
}

#[test]
fn missing_site_is_a_one_line_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("no-such-site");
    let out = dir.path().join("agent.pem");
    let output = run(&["agent", "--site", path(&site), "--out", path(&out)], None);
    assert_one_line_error(&output, &site);
    assert!(!out.exists());
}

#[test]
fn wrong_or_missing_passphrase_is_a_one_line_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, Some("right"));
    let key = site.join("ca.key.pem");
    let out = dir.path().join("console");
    let args = [
        "console",
        "--site",
        path(&site),
        "--role",
        "admin",
        "--name",
        "Boss",
        "--out",
        path(&out),
    ];
    let stderr = assert_one_line_error(&run(&args, Some("wrong")), &key);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert!(stderr.contains(PASSPHRASE_ENV), "{stderr}");
    let stderr = assert_one_line_error(&run(&args, None), &key);
    assert!(stderr.contains(PASSPHRASE_ENV), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn corrupt_pem_is_a_one_line_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, None);
    let cert = site.join("ca.cert.pem");
    fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n").expect("corrupt");
    let out = dir.path().join("agent.pem");
    let output = run(&["agent", "--site", path(&site), "--out", path(&out)], None);
    assert_one_line_error(&output, &cert);
    assert!(!out.exists());

    let garbage = dir.path().join("garbage.pem");
    fs::write(&garbage, "hello\n").expect("write");
    assert_one_line_error(&run(&["inspect", path(&garbage)], None), &garbage);
    let missing = dir.path().join("missing.pem");
    assert_one_line_error(&run(&["inspect", path(&missing)], None), &missing);
}

#[test]
fn existing_outputs_are_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, None);

    let bundle = dir.path().join("agent.pem");
    fs::write(&bundle, "keep me").expect("write");
    let output = run(
        &["agent", "--site", path(&site), "--out", path(&bundle)],
        None,
    );
    assert_one_line_error(&output, &bundle);
    assert_eq!(fs::read_to_string(&bundle).expect("read"), "keep me");

    let console_dir = dir.path().join("console");
    let args = [
        "console",
        "--site",
        path(&site),
        "--role",
        "admin",
        "--name",
        "Boss",
        "--out",
        path(&console_dir),
    ];
    assert_ok(&run(&args, None));
    let before = snapshot(&console_dir);
    let output = run(&args, None);
    assert_one_line_error(&output, &console_dir);
    assert_eq!(snapshot(&console_dir), before);
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    init(&site, None);
    let out = dir.path().join("console");
    let output = run(
        &[
            "console",
            "--site",
            path(&site),
            "--role",
            "root",
            "--name",
            "x",
            "--out",
            path(&out),
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(!out.exists());
    let output = run(
        &[
            "agent",
            "--site",
            path(&site),
            "--out",
            path(&out),
            "--days",
            "0",
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(!out.exists());
}
