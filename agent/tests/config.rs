//! The settings file `agent.toml`: every bad value is one line naming the
//! file, the line and the fix; the shipped example is exactly the
//! defaults; layers resolve command line over file over defaults; and no
//! input, however broken, panics the parser.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use agent::admission::ServerLimits;
use agent::config::{
    self, parse, xdg_data_dir, Bounds, Config, ConfigError, LimitSettings, Problem, Sensors,
    Settings, DEMO_HISTORY_DAYS, DEMO_SEED, LIVE_LEASE_SECS, MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CONSOLE, MAX_HANDSHAKES_PER_IP, REQUEST_IDLE_TIMEOUT_MS, TIMEOUT_MS,
};
use proptest::prelude::*;

const FILE: &str = "/etc/smarttracker/agent.toml";

/// Every numeric key: its table, its name and its bounds.
const NUMERIC_KEYS: &[(Option<&str>, &str, Bounds)] = &[
    (None, "live_lease_secs", LIVE_LEASE_SECS),
    (Some("demo"), "seed", DEMO_SEED),
    (Some("demo"), "history_days", DEMO_HISTORY_DAYS),
    (Some("limits"), "max_connections", MAX_CONNECTIONS),
    (
        Some("limits"),
        "max_connections_per_console",
        MAX_CONNECTIONS_PER_CONSOLE,
    ),
    (
        Some("limits"),
        "max_handshakes_per_ip",
        MAX_HANDSHAKES_PER_IP,
    ),
    (Some("limits"), "handshake_timeout_ms", TIMEOUT_MS),
    (Some("limits"), "first_request_timeout_ms", TIMEOUT_MS),
    (Some("limits"), "request_timeout_ms", TIMEOUT_MS),
    (Some("limits"), "response_timeout_ms", TIMEOUT_MS),
    (
        Some("limits"),
        "request_idle_timeout_ms",
        REQUEST_IDLE_TIMEOUT_MS,
    ),
];

fn parse_str(text: &str) -> Result<Settings, ConfigError> {
    parse(Path::new(FILE), text.as_bytes())
}

/// The one-line message `text` is refused with.
fn refusal(text: &str) -> String {
    match parse_str(text) {
        Ok(settings) => panic!("{text:?} was accepted: {settings:?}"),
        Err(error) => error.to_string(),
    }
}

/// A document with `line` on line 3 of `table` (a comment and the table
/// header, or two comments, before it).
fn third_line(table: Option<&str>, line: &str) -> String {
    match table {
        Some(table) => format!("# the agent's settings\n[{table}]\n{line}\n"),
        None => format!("# the agent's settings\n\n{line}\n"),
    }
}

#[test]
fn every_numeric_key_out_of_range_names_file_line_and_bounds() {
    for (table, key, bounds) in NUMERIC_KEYS {
        let mut outside = vec![bounds.min - 1];
        if let Some(above) = bounds.max.checked_add(1) {
            outside.push(above);
        }
        for value in outside {
            let text = third_line(*table, &format!("{key} = {value}"));
            assert_eq!(
                refusal(&text),
                format!(
                    "{FILE}:3: {key} = {value} is out of range: use {} to {}",
                    bounds.min, bounds.max
                ),
            );
        }
        // Past what TOML integers hold.
        let text = third_line(*table, &format!("{key} = 99999999999999999999"));
        assert_eq!(
            refusal(&text),
            format!(
                "{FILE}:3: {key} = 99999999999999999999 is out of range: use {} to {}",
                bounds.min, bounds.max
            ),
        );
        // The bounds themselves are accepted.
        for value in [bounds.min, bounds.max] {
            let text = third_line(*table, &format!("{key} = {value}"));
            assert!(parse_str(&text).is_ok(), "{text:?} refused");
        }
    }
}

#[test]
fn every_numeric_key_of_another_type_says_to_write_a_number() {
    for (table, key, _) in NUMERIC_KEYS {
        for (value, found) in [
            ("\"15\"", "a string"),
            ("15.5", "a float"),
            ("true", "a boolean"),
            ("[15]", "an array"),
            ("{ secs = 15 }", "a table"),
            ("1979-05-27", "a datetime"),
        ] {
            let text = third_line(*table, &format!("{key} = {value}"));
            assert_eq!(
                refusal(&text),
                format!("{FILE}:3: {key} = {value} is {found}: use a whole number without quotes"),
            );
        }
    }
}

#[test]
fn bad_values_of_the_other_keys_name_file_line_and_fix() {
    let cases: &[(&str, &str)] = &[
        (
            "mdns = \"yes\"",
            "mdns = \"yes\" is a string: use true or false",
        ),
        ("mdns = 1", "mdns = 1 is an integer: use true or false"),
        (
            "listen = 47100",
            "listen = 47100 is an integer: use a quoted string",
        ),
        (
            "listen = \"0.0.0.0\"",
            "listen = \"0.0.0.0\" is not an address: use IP:PORT, e.g. \"0.0.0.0:47100\"",
        ),
        (
            "listen = \"pc-07:47100\"",
            "listen = \"pc-07:47100\" is not an address: use IP:PORT, e.g. \"0.0.0.0:47100\"",
        ),
        (
            "sensors = \"X11 \"",
            "sensors = \"X11 \" is not a sensor source: use \"x11\" or \"demo\"",
        ),
        (
            "sensors = [\"demo\"]",
            "sensors = [\"demo\"] is an array: use a quoted string",
        ),
        (
            "data_dir = \"var/lib/smarttracker-agent\"",
            "data_dir = \"var/lib/smarttracker-agent\" is a relative path: use an absolute path, e.g. \"/var/lib/smarttracker-agent\"",
        ),
        (
            "data_dir = \"\"",
            "data_dir = \"\" is a relative path: use an absolute path, e.g. \"/var/lib/smarttracker-agent\"",
        ),
        (
            "data_dir = 7",
            "data_dir = 7 is an integer: use a quoted string",
        ),
        ("demo = 1", "demo = 1 is an integer: use a [demo] table"),
        (
            "limits = \"none\"",
            "limits = \"none\" is a string: use a [limits] table",
        ),
    ];
    for (line, message) in cases {
        assert_eq!(
            refusal(&third_line(None, line)),
            format!("{FILE}:3: {message}")
        );
    }
}

#[test]
fn unknown_keys_are_refused_with_a_suggestion_when_one_is_close() {
    let cases: &[(Option<&str>, &str, &str)] = &[
        (
            None,
            "live_lease_sec = 15",
            "unknown key `live_lease_sec`: did you mean `live_lease_secs`?",
        ),
        (
            None,
            "mdsn = true",
            "unknown key `mdsn`: did you mean `mdns`?",
        ),
        (
            Some("limits"),
            "max_conections = 3",
            "unknown key `max_conections` in [limits]: did you mean `max_connections`?",
        ),
        (
            None,
            "max_connections = 3",
            "unknown key `max_connections`: did you mean `max_connections` in [limits]?",
        ),
        (
            None,
            "history_days = 3",
            "unknown key `history_days`: did you mean `history_days` in [demo]?",
        ),
        (
            Some("demo"),
            "live_lease_secs = 15",
            "unknown key `live_lease_secs` in [demo]: did you mean `live_lease_secs`?",
        ),
        (
            None,
            "color = \"blue\"",
            "unknown key `color`: remove it (`smarttracker-agent config --print-default` lists every key)",
        ),
        (
            Some("limits"),
            "timeout = 5",
            "unknown key `timeout` in [limits]: remove it (`smarttracker-agent config --print-default` lists every key)",
        ),
    ];
    for (table, line, message) in cases {
        assert_eq!(
            refusal(&third_line(*table, line)),
            format!("{FILE}:3: {message}")
        );
    }
    // An unknown table is an unknown key of the top level.
    assert_eq!(
        refusal("listen = \"127.0.0.1:1\"\n\n[limit]\nmax_connections = 3\n"),
        format!("{FILE}:3: unknown key `limit`: did you mean `limits`?")
    );
}

#[test]
fn syntax_errors_and_other_text_name_their_line() {
    let cases: &[(&[u8], usize, &str)] = &[
        (
            b"mdns = true\nlisten = \n",
            2,
            "not valid TOML (string values must be quoted, expected literal string): fix the syntax on this line",
        ),
        (
            b"# ok\n\nlisten = \"0.0.0.0:47100\n",
            3,
            "not valid TOML (invalid basic string, expected `\"`): fix the syntax on this line",
        ),
        (
            b"[limits\nmax_connections = 3\n",
            1,
            "not valid TOML (unclosed table, expected `]`): fix the syntax on this line",
        ),
        (
            b"mdns = true\nmdns = false\n",
            2,
            "not valid TOML (duplicate key): fix the syntax on this line",
        ),
        (
            b"mdns = true\n# caf\xe9\n",
            2,
            "not UTF-8 text: save the file as UTF-8",
        ),
    ];
    for (bytes, line, message) in cases {
        let error = parse(Path::new(FILE), bytes).expect_err("refused");
        assert_eq!(error.to_string(), format!("{FILE}:{line}: {message}"));
        assert!(
            matches!(error, ConfigError::Invalid { line: at, .. } if at == *line),
            "{error:?}"
        );
    }
}

#[test]
fn the_first_problem_in_the_file_is_the_one_reported() {
    // Keys are read in another order than the file's.
    let text = "sensors = \"x12\"\n[limits]\nmax_connections = 0\n[demo]\nseed = -1\n";
    assert_eq!(
        refusal(text),
        format!("{FILE}:1: sensors = \"x12\" is not a sensor source: use \"x11\" or \"demo\"")
    );
    let text = "[limits]\nrequest_timeout_ms = 1\nmax_connections = 0\n";
    assert_eq!(
        refusal(text),
        format!("{FILE}:2: request_timeout_ms = 1 is out of range: use 100 to 600000")
    );
}

#[test]
fn values_in_messages_stay_on_one_short_line() {
    let text = format!(
        "listen = \"\"\"\n{}\nnot an address\"\"\"\n",
        "x".repeat(500)
    );
    let message = refusal(&text);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.len() < 200, "{message}");
    assert!(message.starts_with(&format!("{FILE}:1: listen = \"\"\" ")));
    assert!(message.ends_with("is not an address: use IP:PORT, e.g. \"0.0.0.0:47100\""));
}

#[test]
fn the_shipped_example_is_exactly_the_defaults() {
    let parsed = parse_str(config::EXAMPLE).expect("the example parses");
    assert_eq!(parsed, Settings::defaults());
    // Every setting but the data directory is written out in it.
    let defaults = Settings::defaults();
    assert!(defaults.data_dir.is_none());
    let limits = defaults.limits;
    for given in [
        defaults.listen.is_some(),
        defaults.sensors.is_some(),
        defaults.mdns.is_some(),
        defaults.live_lease_secs.is_some(),
        defaults.demo_seed.is_some(),
        defaults.demo_history_days.is_some(),
        defaults.demo_users.is_some(),
        limits.max_connections.is_some(),
        limits.max_connections_per_console.is_some(),
        limits.max_handshakes_per_ip.is_some(),
        limits.handshake_timeout_ms.is_some(),
        limits.first_request_timeout_ms.is_some(),
        limits.request_timeout_ms.is_some(),
        limits.response_timeout_ms.is_some(),
        limits.request_idle_timeout_ms.is_some(),
    ] {
        assert!(given);
    }
    // Its commented data_dir line is valid too.
    let uncommented = config::EXAMPLE.replace(
        "# data_dir = \"/var/lib/smarttracker-agent\"",
        "data_dir = \"/var/lib/smarttracker-agent\"",
    );
    assert_eq!(
        parse_str(&uncommented).expect("uncommented").data_dir,
        Some(PathBuf::from("/var/lib/smarttracker-agent"))
    );
    // And resolving it gives the agent's built-in values.
    let resolved = parsed
        .resolve(Some(PathBuf::from("/data")))
        .expect("resolves");
    assert_eq!(
        resolved,
        Config {
            data_dir: PathBuf::from("/data"),
            listen: config::DEFAULT_LISTEN,
            sensors: Sensors::X11,
            mdns: true,
            live_lease_secs: agent::live::DEFAULT_LEASE_SECS,
            demo_seed: config::DEFAULT_DEMO_SEED,
            demo_history_days: 0,
            demo_users: config::DemoUsers::default(),
            limits: ServerLimits::DEFAULT,
        }
    );
}

#[test]
fn demo_users_are_checked_and_name_file_line_and_fix() {
    let parsed = parse_str("[demo]\nusers = \"lucas, emma\"\n").expect("parses");
    assert_eq!(
        parsed.demo_users.as_ref().map(config::DemoUsers::names),
        Some(&["lucas".to_owned(), "emma".to_owned()][..])
    );
    for bad in [
        "\"\"",
        "\"Lucas\"",
        "\"a,b,c,d,e\"",
        "\"lucas,\"",
        "\"rm -rf\"",
        "\"élodie\"",
    ] {
        let message = refusal(&format!("[demo]\nusers = {bad}\n"));
        assert!(
            message.starts_with(&format!(
                "{FILE}:2: users = {bad} is not a list of OS user names: use 1 to 4 names"
            )),
            "{message}"
        );
    }
    assert!(refusal("[demo]\nusers = 3\n").contains("use a quoted string"));
}

/// The comment block just above `key = ` in the example.
fn comment_above(key: &str) -> String {
    let lines: Vec<&str> = config::EXAMPLE.lines().collect();
    let at = lines
        .iter()
        .position(|line| line.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("`{key} = ` in the example"));
    let mut comment: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .take_while(|line| line.starts_with('#'))
        .copied()
        .collect();
    comment.reverse();
    comment.join("\n")
}

#[test]
fn the_example_comments_state_each_bound_and_flag() {
    for (_, key, bounds) in NUMERIC_KEYS {
        let comment = comment_above(key);
        assert!(
            comment.contains(&format!("{} to {}", bounds.min, bounds.max)),
            "the comment above {key} states its bounds: {comment}"
        );
        assert!(
            comment.contains("Flag: --") && comment.contains("Default: "),
            "the comment above {key} names its flag and default: {comment}"
        );
    }
    for key in ["listen", "sensors", "mdns"] {
        let comment = comment_above(key);
        assert!(comment.contains("Flag: --") && comment.contains("Default: "));
    }
}

#[test]
fn the_command_line_wins_over_the_file_which_wins_over_defaults() {
    let file = parse_str(
        "live_lease_secs = 7\nsensors = \"demo\"\n[limits]\nmax_connections_per_console = 1\nrequest_idle_timeout_ms = 2000\n",
    )
    .expect("parses");
    let command_line = Settings {
        live_lease_secs: Some(9),
        limits: LimitSettings {
            request_idle_timeout_ms: Some(500),
            ..LimitSettings::default()
        },
        ..Settings::default()
    };
    let config = command_line
        .over(file)
        .resolve(Some(PathBuf::from(
            "/home/ana/.local/share/smarttracker-agent",
        )))
        .expect("resolves");
    assert_eq!(config.live_lease_secs, 9);
    assert_eq!(config.limits.request_idle_timeout_ms, 500);
    assert_eq!(config.sensors, Sensors::Demo);
    assert_eq!(config.limits.max_connections_per_console, 1);
    assert_eq!(
        config.limits.max_connections,
        ServerLimits::DEFAULT.max_connections
    );
    assert_eq!(config.listen, config::DEFAULT_LISTEN);
    assert!(config.mdns);
    assert_eq!(
        config.data_dir,
        PathBuf::from("/home/ana/.local/share/smarttracker-agent")
    );
}

#[test]
fn the_data_directory_comes_from_the_flag_the_file_or_xdg() {
    let file = parse_str("data_dir = \"/srv/agent\"\n").expect("parses");
    let xdg = Some(PathBuf::from("/home/ana/.local/share/smarttracker-agent"));
    let from_flag = Settings {
        data_dir: Some(PathBuf::from("/tmp/agent")),
        ..Settings::default()
    };
    assert_eq!(
        from_flag
            .over(file.clone())
            .resolve(xdg.clone())
            .expect("flag")
            .data_dir,
        PathBuf::from("/tmp/agent")
    );
    assert_eq!(
        Settings::default()
            .over(file)
            .resolve(xdg.clone())
            .expect("file")
            .data_dir,
        PathBuf::from("/srv/agent")
    );
    assert_eq!(
        Settings::default().resolve(xdg).expect("xdg").data_dir,
        PathBuf::from("/home/ana/.local/share/smarttracker-agent")
    );
    let error = Settings::default().resolve(None).expect_err("nowhere");
    assert!(matches!(error, ConfigError::NoDataDir));
    assert_eq!(
        error.to_string(),
        "no data directory: pass --data DIR, set data_dir in the config file, or set HOME"
    );
}

#[test]
fn xdg_data_home_is_used_when_absolute_else_home() {
    let os = |text: &'static str| Some(OsStr::new(text));
    assert_eq!(
        xdg_data_dir(os("/data/ana"), os("/home/ana")),
        Some(PathBuf::from("/data/ana/smarttracker-agent"))
    );
    for ignored in [None, os(""), os("relative/share")] {
        assert_eq!(
            xdg_data_dir(ignored, os("/home/ana")),
            Some(PathBuf::from("/home/ana/.local/share/smarttracker-agent"))
        );
    }
    assert_eq!(xdg_data_dir(None, None), None);
    assert_eq!(xdg_data_dir(os(""), os("")), None);
}

#[test]
fn a_missing_default_file_is_no_settings_but_a_missing_given_one_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("agent.toml");
    assert!(config::load(&missing, false).expect("fine").is_none());
    let error = config::load(&missing, true).expect_err("missing");
    assert!(matches!(error, ConfigError::Missing { .. }));
    assert_eq!(
        error.to_string(),
        format!(
            "{}: no such file: check the --config path (`smarttracker-agent config --print-default` prints an example)",
            missing.display()
        )
    );
    // A directory where the file should be cannot be read, asked for or not.
    let error = config::load(dir.path(), false).expect_err("a directory");
    assert!(matches!(error, ConfigError::Unreadable { .. }));
    assert!(error
        .to_string()
        .ends_with("): make it readable by the agent's user"));
    std::fs::write(&missing, "mdns = false\n").expect("write");
    assert_eq!(
        config::load(&missing, true).expect("read"),
        Some(Settings {
            mdns: Some(false),
            ..Settings::default()
        })
    );
}

/// Lines that look like settings: known and unknown keys, tables, and
/// values of every type, some out of range.
fn settings_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "data_dir",
            "listen",
            "sensors",
            "mdns",
            "live_lease_secs",
            "demo",
            "limits",
            "seed",
            "history_days",
            "max_connections",
            "request_idle_timeout_ms",
            "limits.max_connections",
            "demo.seed",
        ])
        .prop_map(str::to_owned),
        "[a-z_.]{1,12}",
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..700_000).prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\"[ -~]{0,16}\"",
        Just("\"127.0.0.1:0\"".to_owned()),
        Just("\"/var/lib/x\"".to_owned()),
        Just("\"demo\"".to_owned()),
        Just("1.5".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        "[ -~]{0,8}",
    ];
    let line = prop_oneof![
        (key, value).prop_map(|(key, value)| format!("{key} = {value}")),
        prop::sample::select(vec![
            "[demo]", "[limits]", "[other]", "# note", "", "[[demo]]"
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

/// Whatever the input, `parse` answers; a refusal is one line that names
/// the file and a line of it, and accepted settings are within bounds.
fn check_answer(bytes: &[u8]) {
    match parse(Path::new(FILE), bytes) {
        Ok(settings) => {
            if let Some(secs) = settings.live_lease_secs {
                assert!(LIVE_LEASE_SECS.range().contains(&i64::from(secs)));
            }
            if let Some(max) = settings.limits.max_connections {
                assert!(MAX_CONNECTIONS
                    .range()
                    .contains(&i64::try_from(max).expect("small")));
            }
            if let Some(path) = &settings.data_dir {
                assert!(path.is_absolute());
            }
            assert!(settings.resolve(Some(PathBuf::from("/d"))).is_ok());
        }
        Err(error) => {
            let message = error.to_string();
            assert_eq!(message.lines().count(), 1, "{message:?}");
            let ConfigError::Invalid { line, problem, .. } = &error else {
                panic!("parse only reports what is in the file: {error:?}");
            };
            let lines = bytes.iter().filter(|byte| **byte == b'\n').count() + 1;
            assert!((1..=lines).contains(line), "line {line} of {lines}");
            assert!(message.starts_with(&format!("{FILE}:{line}: ")));
            if let Problem::Syntax { message } = problem {
                assert!(!message.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_answer(&bytes);
    }

    #[test]
    fn bytes_of_toml_syntax_never_panic(
        bytes in prop::collection::vec(
            prop::sample::select(b" =\"'[]{}.,#\n\r\t\\0123456789abcdeflmnstux_-+:".to_vec()),
            0..256,
        )
    ) {
        check_answer(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_answer(text.as_bytes());
    }

    #[test]
    fn settings_like_text_never_panics(text in settings_like()) {
        check_answer(text.as_bytes());
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let text = format!("demo = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    check_answer(text.as_bytes());
    let text = format!(
        "demo = {}1{}\n",
        "{ a = ".repeat(50_000),
        " }".repeat(50_000)
    );
    check_answer(text.as_bytes());
}
