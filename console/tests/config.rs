//! `DATA/console.toml`: the shipped commented file is exactly the defaults,
//! the window's save path keeps hand-written comments, every bad value is
//! refused with the file, its line and the fix (by the CLI and the GUI
//! engine too, and never overwritten), no text panics the parser, and a
//! store that kept these settings migrates them into the file once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use console_engine::config::{
    self, ConfigError, ConsoleConfig, SmtpSecurity, CONFIG_FILE, TEMPLATE,
};
use console_engine::i18n::Lang;
use console_engine::model::DayClock;
use console_engine::service::{Command, Engine, EngineConfig, EngineError, Event};
use console_engine::settings::{ConsoleSettings, SettingsError, CONFIG_WRITTEN_KEY};
use console_engine::store::ConsoleStore;
use console_engine::STORE_DIR;
use proptest::prelude::*;
use protocol::Retention;

/// A console data directory with its store.
struct Data {
    dir: tempfile::TempDir,
    store: Arc<ConsoleStore>,
}

impl Data {
    fn new() -> Data {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            ConsoleStore::open(&dir.path().join(STORE_DIR), DayClock::utc()).expect("store"),
        );
        Data { dir, store }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join(CONFIG_FILE)
    }

    fn file(&self) -> String {
        std::fs::read_to_string(self.config_path()).expect("console.toml")
    }

    fn write_file(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write console.toml");
    }
}

fn engine(data: &Data) -> Result<Engine, EngineError> {
    Engine::start(EngineConfig {
        store: data.store.clone(),
        background: true,
        identity: None,
        mdns: false,
        sync_interval: None,
        data_dir: data.dir.path().to_path_buf(),
    })
}

/// The next event `wanted` picks, within 30 s.
fn next_event<T>(engine: &Engine, mut wanted: impl FnMut(Event) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the engine did not answer");
        match engine.try_recv() {
            Some(event) => {
                if let Some(found) = wanted(event) {
                    return found;
                }
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn the_shipped_commented_file_parses_to_exactly_the_defaults() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("console.toml");
    let text = std::fs::read(&shipped).expect("console/console.toml");
    assert_eq!(
        text,
        TEMPLATE.as_bytes(),
        "the template is the shipped file"
    );
    assert_eq!(
        config::parse(&shipped, &text).expect("the shipped file parses"),
        ConsoleConfig::default()
    );
    assert!(
        TEMPLATE
            .lines()
            .filter(|line| line.starts_with('#'))
            .count()
            > 20
    );
    // Every key is written out in it: changing them all adds no line.
    let everything = ConsoleConfig {
        language: Lang::En,
        static_peers: vec!["192.168.1.20:47100".to_owned()],
        sync_interval_secs: 60,
        show_current_app: true,
        retention: Retention {
            usage_days: 90,
            sessions_days: 91,
            health_days: 92,
            frames_days: 3,
        },
        time_zone: "Europe/Paris".to_owned(),
        smtp: config::SmtpSettings {
            host: "smtp.example.com".to_owned(),
            port: 465,
            from: "alerts@example.com".to_owned(),
            to: "manager@example.com".to_owned(),
            security: SmtpSecurity::Tls,
            user: "alerts".to_owned(),
            password_file: Some(PathBuf::from("/etc/smarttracker/smtp-password")),
        },
        webhook: config::WebhookSettings {
            url: "https://alerts.example.com/hook".to_owned(),
            min_interval_secs: 600,
        },
    };
    assert_eq!(
        config::changed(&ConsoleConfig::default(), &everything).len(),
        18
    );
    let rendered = config::render(&shipped, &everything).expect("render");
    assert_eq!(
        rendered.lines().count(),
        TEMPLATE.lines().count(),
        "{rendered}"
    );
    assert_eq!(config::parse(&shipped, rendered.as_bytes()), Ok(everything));
}

#[test]
fn a_fresh_console_writes_the_commented_template() {
    let data = Data::new();
    let settings = ConsoleSettings::load(&data.store).expect("load");
    assert_eq!(settings, ConsoleSettings::default());
    assert_eq!(data.file(), TEMPLATE);
    assert_eq!(
        ConsoleSettings::config_path(&data.store),
        data.config_path()
    );
}

#[test]
fn saving_from_the_window_keeps_hand_written_comments_and_values() {
    let data = Data::new();
    ConsoleSettings::load(&data.store).expect("first load writes the file");
    let hand_edited = data
        .file()
        .replace(
            "sync_interval_secs = 30\n",
            "# Our VPN is slow: ask Paul before lowering this.\nsync_interval_secs = 120 # seconds\n",
        )
        .replace(
            "usage_days = 30\n",
            "usage_days = 30 # what the works council agreed\n",
        );
    data.write_file(&hand_edited);

    let engine = engine(&data).expect("engine");
    let before = next_event(&engine, |event| match event {
        Event::Settings(settings) => Some(*settings),
        _ => None,
    });
    assert_eq!(before.sync_interval_secs, 120);
    let after = ConsoleSettings {
        language: Lang::En,
        static_peers: vec!["10.0.0.7:47100".to_owned()],
        show_current_app: true,
        retention: Retention {
            usage_days: 365,
            ..before.retention
        },
        smtp: config::SmtpSettings {
            host: "smtp.example.com".to_owned(),
            security: SmtpSecurity::Plain,
            ..before.smtp.clone()
        },
        ..before.clone()
    };
    engine.send(Command::SaveSettings(Box::new(after.clone())));
    let saved = next_event(&engine, |event| match event {
        Event::Settings(settings) => Some(*settings),
        Event::Error(error) => panic!("save failed: {error}"),
        _ => None,
    });
    assert_eq!(saved, after);
    drop(engine);

    let file = data.file();
    for kept in [
        "# Our VPN is slow: ask Paul before lowering this.\nsync_interval_secs = 120 # seconds\n",
        "usage_days = 365 # what the works council agreed\n",
        "# Never a password in this file",
        "language = \"en\"\n",
        "static_peers = [\"10.0.0.7:47100\"]\n",
        "show_current_app = true\n",
        "host = \"smtp.example.com\"\n",
        "security = \"plain\"\n",
    ] {
        assert!(file.contains(kept), "{kept:?} missing from:\n{file}");
    }
    // Only the changed lines differ.
    let changed_lines = hand_edited
        .lines()
        .zip(file.lines())
        .filter(|(old, new)| old != new)
        .count();
    assert_eq!(changed_lines, 6, "{file}");
    assert_eq!(hand_edited.lines().count(), file.lines().count());
    assert_eq!(ConsoleSettings::load(&data.store).expect("reload"), after);
}

/// Each bad value: the text, the line named and the message after it.
const BAD_FILES: &[(&str, usize, &str)] = &[
    (
        "language = \"fr\"\n\n# comment\n\n\n\nsync_interval_secs = 2\n",
        7,
        "sync_interval_secs = 2 is out of range: use 10 to 3600",
    ),
    (
        "sync_interval_secs = \"30\"\n",
        1,
        "sync_interval_secs = \"30\" is not a whole number: use 10 to 3600",
    ),
    (
        "sync_interval_secs = 30.5\n",
        1,
        "sync_interval_secs = 30.5 is not a whole number: use 10 to 3600",
    ),
    (
        "language = \"de\"\n",
        1,
        "language = \"de\" is not a language of the console: use \"fr\", \"en\", \"es\" or \"ru\"",
    ),
    (
        "language = 1\n",
        1,
        "language = 1 is not a text in quotes: use \"fr\", \"en\", \"es\" or \"ru\"",
    ),
    (
        "static_peers = [\n  \"10.0.0.7:47100\",\n  \"pc-08\",\n]\n",
        3,
        "static_peers entry \"pc-08\" is not an IP address and port: write each as \"IP:port\", such as \"192.168.1.20:47100\"",
    ),
    (
        "static_peers = \"10.0.0.7:47100\"\n",
        1,
        "static_peers = \"10.0.0.7:47100\" is not a list such as [\"a\", \"b\"]: write each as \"IP:port\", such as \"192.168.1.20:47100\"",
    ),
    (
        "show_current_app = \"yes\"\n",
        1,
        "show_current_app = \"yes\" is not true or false: write true or false, without quotes",
    ),
    (
        "[retention]\nusage_days = 30\nframes_days = 0\n",
        3,
        "retention.frames_days = 0 is out of range: use 1 to 3650",
    ),
    (
        "[retention]\nhealth_days = 100000\n",
        2,
        "retention.health_days = 100000 is out of range: use 1 to 3650",
    ),
    (
        "retention = 30\n",
        1,
        "retention is not a table here: write its values under one [retention] line",
    ),
    (
        "[site]\ntime_zone = \"Paris\"\n",
        2,
        "site.time_zone = \"Paris\" is not a time zone name: use an IANA name such as \"Europe/Paris\", or \"\" for this machine's zone",
    ),
    (
        "[smtp]\nhost = \"smtp.example.com:587\"\n",
        2,
        "smtp.host = \"smtp.example.com:587\" is not a host name: write the server's name or address alone, such as \"smtp.example.com\" (the port goes in port), or \"\" for no e-mail",
    ),
    (
        "[smtp]\nport = 0\n",
        2,
        "smtp.port = 0 is out of range: use 1 to 65535",
    ),
    (
        "[smtp]\nto = \"manager\"\n",
        2,
        "smtp.to = \"manager\" is not an e-mail address: write one address such as \"alerts@example.com\", or \"\"",
    ),
    (
        "[smtp]\nsecurity = \"ssl\"\n",
        2,
        "smtp.security = \"ssl\" is not a security mode: use \"starttls\", \"tls\" or \"plain\"",
    ),
    (
        "[smtp]\npassword_file = \"smtp-password\"\n",
        2,
        "smtp.password_file = \"smtp-password\" is not a full path: write the full path of a file holding only the password, such as \"/etc/smarttracker/smtp-password\", or \"\"",
    ),
    (
        "[smtp]\nuser = \"alerts\"\npassword = \"hunter2\"\n",
        3,
        "smtp.password: a password never goes in this file: put it alone in a file only the console's user can read and set smtp.password_file to that file's full path",
    ),
    (
        "[webhook]\nurl = \"alerts.example.com/hook\"\n",
        2,
        "webhook.url = \"alerts.example.com/hook\" is not an http:// or https:// address: write a full address such as \"https://alerts.example.com/hook\", or \"\" for no posts",
    ),
    (
        "[webhook]\nmin_interval_secs = 1\n",
        2,
        "webhook.min_interval_secs = 1 is out of range: use 10 to 86400",
    ),
    (
        "sync_interval = 30\n",
        1,
        "unknown key sync_interval: remove it, or use one of language, static_peers, sync_interval_secs, show_current_app, [retention], [site], [smtp], [webhook]",
    ),
    (
        "[smtp]\nhost = \"\"\nsender = \"a@b.c\"\n",
        3,
        "unknown key smtp.sender: remove it, or use one of host, port, from, to, security, user, password_file",
    ),
    (
        "[alerts]\n",
        1,
        "unknown key alerts: remove it, or use one of language, static_peers, sync_interval_secs, show_current_app, [retention], [site], [smtp], [webhook]",
    ),
    (
        "language = \"en\"\nlanguage = \"fr\"\n",
        2,
        "duplicate key: give each key once (and each [table] once): remove or merge this one",
    ),
    (
        "language = en\n",
        1,
        "string values must be quoted, expected literal string: fix this line's TOML syntax (texts in \"double quotes\", one key = value a line)",
    ),
    (
        "language = \"fr\"\n[retention\nusage_days = 30\n",
        2,
        "unclosed table, expected `]`: fix this line's TOML syntax (texts in \"double quotes\", one key = value a line)",
    ),
];

#[test]
fn every_bad_value_names_the_file_the_line_and_the_fix() {
    let path = Path::new("/home/x/.local/share/smarttracker/console.toml");
    for (text, line, message) in BAD_FILES {
        let error = config::parse(path, text.as_bytes()).expect_err(text);
        assert_eq!(
            error,
            ConfigError::Bad {
                path: path.to_path_buf(),
                line: *line,
                message: (*message).to_owned(),
            },
            "{text}"
        );
        assert_eq!(
            error.to_string(),
            format!("{}:{line}: {message}", path.display())
        );
    }
    let error = config::parse(path, b"language = \"en\"\n# caf\xe9\n").expect_err("latin-1");
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2: this line is not UTF-8 text: save the file as UTF-8",
            path.display()
        )
    );
}

#[test]
fn a_bad_file_stops_the_engine_and_the_cli_and_is_never_overwritten() {
    let data = Data::new();
    let bad = "# hand-written\nlanguage = \"en\"\nsync_interval_secs = 2\n";
    data.write_file(bad);
    let expected = format!(
        "{}:3: sync_interval_secs = 2 is out of range: use 10 to 3600",
        data.config_path().display()
    );

    let error = engine(&data).expect_err("the engine refuses to start");
    assert_eq!(error.to_string(), expected);
    assert!(matches!(
        error,
        EngineError::Settings(SettingsError::Config(ConfigError::Bad { line: 3, .. }))
    ));
    assert_eq!(data.file(), bad);

    // The CLI, on a data directory of its own (this one's store is open).
    let cli_data = tempfile::tempdir().expect("tempdir");
    let cli_file = cli_data.path().join(CONFIG_FILE);
    std::fs::write(&cli_file, bad).expect("write console.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smarttracker-console"))
        .arg("--data")
        .arg(cli_data.path())
        .args(["sync", "--once", "--no-mdns"])
        .output()
        .expect("run the console");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "error: {}:3: sync_interval_secs = 2 is out of range: use 10 to 3600",
        cli_file.display()
    );
    assert!(stderr.lines().any(|line| line == expected), "{stderr}");
    assert_eq!(std::fs::read_to_string(&cli_file).expect("file"), bad);
}

#[test]
fn a_file_broken_while_the_window_runs_is_reported_not_overwritten() {
    let data = Data::new();
    let engine = engine(&data).expect("engine");
    let before = next_event(&engine, |event| match event {
        Event::Settings(settings) => Some(*settings),
        _ => None,
    });
    let broken = data
        .file()
        .replace("usage_days = 30", "usage_days = thirty");
    data.write_file(&broken);
    engine.send(Command::SaveSettings(Box::new(ConsoleSettings {
        language: Lang::En,
        ..before.clone()
    })));
    let error = next_event(&engine, |event| match event {
        Event::Error(error) => Some(error),
        Event::Settings(_) => panic!("saved over a broken file"),
        _ => None,
    });
    // The window is told what is still saved.
    let shown = next_event(&engine, |event| match event {
        Event::Settings(settings) => Some(*settings),
        _ => None,
    });
    assert_eq!(shown, before);
    let line = broken
        .lines()
        .position(|line| line.starts_with("usage_days"))
        .expect("the line")
        + 1;
    assert!(
        error.starts_with(&format!("{}:{line}: ", data.config_path().display())),
        "{error}"
    );
    assert_eq!(data.file(), broken);

    // A value the file would refuse is not written either.
    data.write_file(TEMPLATE);
    let refused = ConsoleSettings {
        smtp: config::SmtpSettings {
            from: "bob".to_owned(),
            ..before.smtp.clone()
        },
        ..before.clone()
    }
    .save_changes(&before, &data.store)
    .expect_err("refused");
    assert_eq!(
        refused.to_string(),
        format!(
            "smtp.from = \"bob\" is not an e-mail address: write one address such as \"alerts@example.com\", or \"\" (not written to {})",
            data.config_path().display()
        )
    );
    assert_eq!(data.file(), TEMPLATE);
}

#[test]
fn settings_kept_in_the_store_move_into_the_file_once() {
    let data = Data::new();
    let put = |key: &str, value: serde_json::Value| {
        data.store.put_setting(key, &value).expect("put setting");
    };
    put("language", serde_json::json!("en"));
    put(
        "static_peers",
        serde_json::json!(["10.0.0.7:47100", "10.0.0.8:47100"]),
    );
    put("fleet_show_current_app", serde_json::json!(true));
    put(
        "retention",
        serde_json::json!({"usage_days": 60, "sessions_days": 45, "health_days": 20, "frames_days": 9000}),
    );
    put(
        "smtp",
        serde_json::json!({"host": "smtp.example.com", "port": 465, "from": "alerts@example.com", "to": "boss@example.com", "starttls": false}),
    );
    put("agent_groups", serde_json::json!({}));

    let settings = ConsoleSettings::load(&data.store).expect("load migrates");
    let expected = ConsoleConfig {
        language: Lang::En,
        static_peers: vec!["10.0.0.7:47100".to_owned(), "10.0.0.8:47100".to_owned()],
        show_current_app: true,
        retention: Retention {
            usage_days: 60,
            sessions_days: 45,
            health_days: 20,
            // 9,000 days is more than the file takes: the default instead.
            frames_days: ConsoleConfig::default().retention.frames_days,
        },
        smtp: config::SmtpSettings {
            host: "smtp.example.com".to_owned(),
            port: 465,
            from: "alerts@example.com".to_owned(),
            to: "boss@example.com".to_owned(),
            security: SmtpSecurity::Tls,
            ..config::SmtpSettings::default()
        },
        ..ConsoleConfig::default()
    };
    assert_eq!(settings.config(), expected);
    let file = data.file();
    assert!(
        file.starts_with("# SmartTracker console: site configuration"),
        "{file}"
    );
    assert_eq!(
        config::parse(&data.config_path(), file.as_bytes()),
        Ok(expected.clone())
    );
    assert_eq!(
        data.store.get_setting(CONFIG_WRITTEN_KEY).expect("marker"),
        Some(serde_json::json!(true))
    );

    // From now on the file is the truth.
    put("language", serde_json::json!("ru"));
    assert_eq!(
        ConsoleSettings::load(&data.store).expect("load").language,
        Lang::En
    );
    // A file removed later comes back as the template, not as the old store.
    std::fs::remove_file(data.config_path()).expect("remove");
    assert_eq!(
        ConsoleSettings::load(&data.store).expect("load").config(),
        ConsoleConfig::default()
    );
    assert_eq!(data.file(), TEMPLATE);
}

/// Text that looks like a console.toml, with mistakes.
fn toml_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("language = \"en\"".to_owned()),
        Just("[retention]".to_owned()),
        Just("[smtp]".to_owned()),
        Just("[[smtp]]".to_owned()),
        Just("static_peers = [".to_owned()),
        "[a-z_.]{1,20} = [-0-9a-z\"'.\\[\\]{}:, ]{0,30}",
        "[ -~]{0,40}",
        any::<String>(),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

/// Any configuration the file accepts.
fn valid_config() -> impl Strategy<Value = ConsoleConfig> {
    let retention = (1u16..=3650, 1u16..=3650, 1u16..=3650, 1u16..=3650).prop_map(
        |(usage_days, sessions_days, health_days, frames_days)| Retention {
            usage_days,
            sessions_days,
            health_days,
            frames_days,
        },
    );
    let smtp = (
        prop_oneof![Just(String::new()), "[a-z]{1,10}(\\.[a-z]{2,5}){0,2}"],
        1u16..,
        prop_oneof![Just(String::new()), "[a-z.]{1,8}@[a-z]{1,8}\\.fr"],
        proptest::sample::select(SmtpSecurity::ALL.to_vec()),
        "[^\\p{Cc}]{0,12}",
        proptest::option::of("/[a-z/ ]{1,20}"),
    )
        .prop_map(
            |(host, port, to, security, user, password_file)| config::SmtpSettings {
                host,
                port,
                from: to.clone(),
                to,
                security,
                user,
                password_file: password_file.map(PathBuf::from),
            },
        );
    (
        proptest::sample::select(Lang::ALL.to_vec()),
        proptest::collection::vec(
            any::<std::net::SocketAddr>().prop_map(|addr| addr.to_string()),
            0..4,
        ),
        10u64..=3600,
        any::<bool>(),
        retention,
        proptest::sample::select(vec![
            "",
            "UTC",
            "Europe/Paris",
            "America/St_Johns",
            "America/Montreal",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "Africa/Casablanca",
        ])
        .prop_map(str::to_owned),
        smtp,
        (
            prop_oneof![
                Just(String::new()),
                "https?://[a-z]{1,10}\\.[a-z]{2,4}(/[a-z]{0,6})?"
            ],
            10u64..=86_400,
        ),
    )
        .prop_map(
            |(
                language,
                static_peers,
                sync_interval_secs,
                show_current_app,
                retention,
                time_zone,
                smtp,
                (url, min_interval_secs),
            )| ConsoleConfig {
                language,
                static_peers,
                sync_interval_secs,
                show_current_app,
                retention,
                time_zone,
                smtp,
                webhook: config::WebhookSettings {
                    url,
                    min_interval_secs,
                },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_accepted_configuration_round_trips_through_the_file(
        first in valid_config(),
        second in valid_config(),
    ) {
        let path = Path::new("/data/console.toml");
        let written = config::render(path, &first).expect("render");
        prop_assert_eq!(config::parse(path, written.as_bytes()), Ok(first.clone()));
        let hand_edited = format!("# kept\n{written}# kept too\n");
        let updated = config::update(path, hand_edited.as_bytes(), &first, &second).expect("update");
        prop_assert_eq!(config::parse(path, updated.as_bytes()), Ok(second));
        prop_assert!(updated.starts_with("# kept\n"));
        prop_assert!(updated.ends_with("# kept too\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_text_panics_the_parser_and_every_error_is_one_line(
        text in prop_oneof![toml_like(), any::<String>()],
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let path = Path::new("/data/console.toml");
        for input in [text.as_bytes(), bytes.as_slice()] {
            match config::parse(path, input) {
                Ok(parsed) => {
                    prop_assert_eq!(config::check(path, &parsed), Ok(()));
                    let updated = config::update(path, input, &ConsoleConfig::default(), &parsed)
                        .expect("a file that parses can be updated");
                    prop_assert_eq!(config::parse(path, updated.as_bytes()), Ok(parsed));
                }
                Err(error) => {
                    let ConfigError::Bad { line, message, .. } = &error else {
                        return Err(TestCaseError::fail(format!("not a file error: {error}")));
                    };
                    let lines = input.iter().filter(|byte| **byte == b'\n').count() + 1;
                    prop_assert!((1..=lines).contains(line), "line {} of {}", line, lines);
                    prop_assert!(!error.to_string().contains('\n'), "{}", error);
                    prop_assert!(message.contains(": "), "{}", message);
                    prop_assert!(
                        config::update(path, input, &ConsoleConfig::default(), &ConsoleConfig::default())
                            .is_err()
                    );
                }
            }
        }
    }
}

/// The first line `serve` prints on `data`, then it is stopped.
fn serve_banner(data: &Path, flags: &[&str]) -> String {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smarttracker-console"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--no-mdns"])
        .args(flags)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let banner = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.starts_with("serving "))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    banner
}

#[test]
fn a_command_line_flag_wins_over_the_file() {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        data.path().join(CONFIG_FILE),
        "# hand-written\nsync_interval_secs = 45\n",
    )
    .expect("write console.toml");
    let from_file = serve_banner(data.path(), &[]);
    assert!(from_file.contains("sync every 45 s"), "{from_file}");
    let from_flag = serve_banner(data.path(), &["--sync-interval-secs", "7"]);
    assert!(from_flag.contains("sync every 7 s"), "{from_flag}");
    assert_eq!(
        std::fs::read_to_string(data.path().join(CONFIG_FILE)).expect("file"),
        "# hand-written\nsync_interval_secs = 45\n",
        "a flag is not written back"
    );
}
