//! The command line's `report` as whole processes: the category model the
//! first one trained is stored, and the second loads it without training.

use std::path::Path;
use std::process::Command;

use console_engine::categories::Rule;
use console_engine::model::{AgentId, DayClock};
use console_engine::settings::{ConsoleSettings, CATEGORY_RULES_KEY};
use console_engine::store::ConsoleStore;
use protocol::{Record, RecordBatch, SeqRecord, StreamKind, UsageSpan};

fn open_store(dir: &Path) -> ConsoleStore {
    ConsoleStore::open(dir, DayClock::utc()).unwrap()
}

/// Runs `smarttracker-console --data DATA report --range 7d --lang LANG`
/// with the categories' log on; returns its standard output and error.
fn run_report_in(data: &Path, lang: &str) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_smarttracker-console"))
        .arg("--data")
        .arg(data)
        .args(["report", "--range", "7d", "--lang", lang])
        .env("SMARTTRACKER_LOG", "warn,console_engine::categories=info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// [`run_report_in`] English.
fn run_report(data: &Path) -> (String, String) {
    run_report_in(data, "en")
}

/// The report's "Top applications" lines (app, time, category).
fn top_applications(report: &str) -> Vec<&str> {
    report
        .lines()
        .skip_while(|line| *line != "Top applications:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect()
}

#[test]
fn a_second_report_process_loads_the_model_the_first_one_stored() {
    let data = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let store = open_store(&data.path().join(console_engine::STORE_DIR));
    let apps = ["Firefox", "Slack", "LibreOffice Writer", "Acme Timesheets"];
    let records = apps
        .iter()
        .enumerate()
        .map(|(index, app)| {
            let start_ms = now_ms - 3_600_000 + index as i64 * 300_000;
            SeqRecord {
                seq: index as u64 + 1,
                record: Record::Usage(UsageSpan {
                    start_ms,
                    end_ms: start_ms + 240_000 - index as i64 * 1_000,
                    app: (*app).to_owned(),
                    raw_app: app.to_lowercase(),
                    title: None,
                }),
            }
        })
        .collect();
    let batch = RecordBatch {
        stream: StreamKind::Usage,
        epoch: 1,
        records,
        more: false,
    };
    store.ingest(AgentId::from_u128(1), &batch, now_ms).unwrap();
    // The manager's rule reaches the CLI's categoriser too.
    let mut settings = ConsoleSettings::load(&store).unwrap();
    let before = settings.clone();
    settings.category_rules = vec![Rule::exact(3, "Acme Timesheets", "Timesheets")];
    assert_eq!(
        settings.save_changes(&before, &store).unwrap(),
        [CATEGORY_RULES_KEY]
    );
    drop(store);

    let (first, first_log) = run_report(data.path());
    assert!(first_log.contains("category model trained"), "{first_log}");
    assert!(!first_log.contains("category model loaded"), "{first_log}");
    let (second, second_log) = run_report(data.path());
    assert!(second_log.contains("category model loaded"), "{second_log}");
    assert!(
        !second_log.contains("category model trained"),
        "{second_log}"
    );

    let top = top_applications(&first);
    assert_eq!(top.len(), apps.len(), "{first}");
    assert_eq!(top_applications(&second), top);
    let acme = top
        .iter()
        .find(|line| line.contains("Acme Timesheets"))
        .expect("Acme Timesheets listed");
    assert!(acme.trim_end().ends_with("  Timesheets"), "{acme}");

    // The same report in French and Russian: headings, built-in category
    // names and durations translated, the manager's own category kept.
    let (french, _) = run_report_in(data.path(), "fr");
    assert!(
        french.starts_with("Rapport SmartTracker, 7 derniers jours"),
        "{french}"
    );
    assert!(
        french.contains("\nApplications les plus utilisées :\n"),
        "{french}"
    );
    assert!(french.contains("Navigation web"), "{french}");
    assert!(french.contains("  Timesheets\n"), "{french}");
    let (russian, _) = run_report_in(data.path(), "ru");
    assert!(russian.contains("\nОсновные приложения:\n"), "{russian}");
    assert!(russian.contains(" мин"), "{russian}");
    assert!(!russian.contains("Top applications"), "{russian}");
}
