//! Categoriser tests: the built-in training CSV, held-out accuracy, rules
//! over the model, overrides, odd input, determinism and retraining; the
//! model kept in the console's store (loaded by the next open, retrained
//! when its inputs change or its blob is damaged); two real `report`
//! processes are in `console/tests/report_model.rs`.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use console_engine::categories::{
    evaluate_held_out, load_or_train, load_or_train_from, parse_training_csv, CategoriesError,
    Categoriser, ClassifierKind, DecidedBy, ModelInputs, Provenance, Retrain, Rule,
    BUILTIN_TRAINING_CSV, MODEL_BLOB_LENGTH_OFFSET,
};
use console_engine::model::DayClock;
use console_engine::store::{AuditEntry, ConsoleStore, StoreError, MAX_MODEL_BLOB_BYTES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SOURCE: &str = "assets/app_categories.csv";
const SEED: u64 = 7;

fn builtin_rows() -> Vec<(String, String)> {
    parse_training_csv(BUILTIN_TRAINING_CSV, SOURCE).unwrap()
}

/// Every `name` the agents' normaliser can produce.
const AGENT_APP_NAMES_CSV: &str = include_str!("../../../assets/app_names.csv");

fn builtin() -> Categoriser {
    Categoriser::builtin().unwrap()
}

/// A handful of training rows, for tests about rules and persistence (the
/// built-in model takes seconds to train in a debug build).
fn small_rows() -> Vec<(String, String)> {
    [
        ("Slack", "Communication"),
        ("Thunderbird", "Communication"),
        ("Firefox", "Browsing"),
        ("Chromium", "Browsing"),
        ("LibreOffice Writer", "Work"),
        ("WPS Writer", "Work"),
    ]
    .iter()
    .map(|&(app, category)| (app.to_owned(), category.to_owned()))
    .collect()
}

/// A categoriser trained on [`small_rows`].
fn small() -> Categoriser {
    Categoriser::train(&small_rows(), Vec::new()).unwrap()
}

#[test]
fn builtin_csv_parses_with_enough_rows_categories_and_no_duplicates() {
    let rows = builtin_rows();
    assert!(rows.len() >= 300, "{} rows", rows.len());
    let categories: BTreeSet<&str> = rows.iter().map(|(_, category)| category.as_str()).collect();
    assert!(categories.len() >= 8, "{categories:?}");
    let mut names = HashSet::new();
    for (app, _) in &rows {
        assert!(names.insert(app.to_lowercase()), "{app} listed twice");
    }
    let agent_names: BTreeSet<&str> = AGENT_APP_NAMES_CSV
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("raw,"))
        .filter_map(|line| line.split_once(',').map(|(_, name)| name.trim()))
        .collect();
    let missing: Vec<&&str> = agent_names
        .iter()
        .filter(|name| !names.contains(&name.to_lowercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "agent names without a category: {missing:?}"
    );
}

// Measured (seed 7): 0.457 held out (5-fold mean 0.438); the largest
// category alone scores 0.217. The floor leaves room for rows to come and go.
const HELD_OUT_ACCURACY_FLOOR: f64 = 0.38;

#[test]
fn held_out_accuracy_is_above_the_measured_floor() {
    let rows = builtin_rows();
    let report = evaluate_held_out(&rows, SEED);
    println!(
        "{}: held-out accuracy {:.3} ({} train / {} test rows)\nper category: {:.2?}",
        report.classifier,
        report.accuracy,
        report.train_rows,
        report.test_rows,
        report.per_category
    );
    assert_eq!(report.classifier, ClassifierKind::CHOSEN.name());
    assert_eq!(report.train_rows + report.test_rows, rows.len());
    assert!(
        report.test_rows * 5 >= rows.len() * 9 / 10,
        "about a fifth is held out"
    );
    assert!(report.per_category.len() >= 8);
    assert!(
        report.accuracy >= HELD_OUT_ACCURACY_FLOOR,
        "accuracy {:.3} below {HELD_OUT_ACCURACY_FLOOR}",
        report.accuracy
    );
}

#[test]
fn known_apps_are_categorised_sensibly() {
    let categoriser = builtin();
    let expected = [
        ("Visual Studio Code", "Development"),
        ("Slack", "Communication"),
        ("Firefox", "Browsing"),
        ("Spotify", "Entertainment"),
        ("GIMP", "Design"),
        ("LibreOffice Writer", "Work"),
        ("Thunderbird", "Communication"),
        ("Steam", "Games"),
        ("Discord", "Social"),
        ("Files", "Utilities"),
        ("Anki", "Education"),
        ("Konsole", "Development"),
        ("VLC", "Entertainment"),
        ("Inkscape", "Design"),
        ("Zoom", "Communication"),
        ("KeePassXC", "Utilities"),
        ("Obsidian", "Work"),
    ];
    for (app, category) in expected {
        let categorisation = categoriser.categorise(app);
        assert_eq!(
            categorisation.category, category,
            "{app}: {categorisation:?}"
        );
        assert_eq!(categorisation.decided_by, DecidedBy::Model);
    }
}

#[test]
fn unseen_variants_of_known_apps_follow_their_family() {
    let categoriser = builtin();
    let expected = [
        ("LibreOffice Writer Portable", "Work"),
        ("JetBrains Gateway", "Development"),
        ("Microsoft Word 2019", "Work"),
        ("Google Chrome Dev", "Browsing"),
    ];
    for (app, category) in expected {
        let categorisation = categoriser.categorise(app);
        assert_eq!(
            categorisation.category, category,
            "{app}: {categorisation:?}"
        );
    }
}

#[test]
fn rules_beat_the_model() {
    let categoriser = small()
        .with_rules(vec![Rule::exact(1, "slack", "Work")])
        .unwrap();
    let categorisation = categoriser.categorise("  Slack ");
    assert_eq!(categorisation.category, "Work");
    assert_eq!(categorisation.decided_by, DecidedBy::Rule { rule_id: 1 });
    assert_eq!(categorisation.confidence, 1.0);
    let other = categoriser.categorise("Firefox");
    assert_eq!(other.decided_by, DecidedBy::Model);
    assert!(
        other.confidence > 0.0 && other.confidence <= 1.0,
        "{other:?}"
    );
}

#[test]
fn regex_rules_match_case_insensitively_in_list_order() {
    let categoriser = small()
        .with_rules(vec![
            Rule::regex(10, r"^libreoffice\b", "Office suite"),
            Rule::regex(11, "writer", "Writing"),
        ])
        .unwrap();
    let writer = categoriser.categorise("LibreOffice Writer");
    assert_eq!(writer.category, "Office suite");
    assert_eq!(writer.decided_by, DecidedBy::Rule { rule_id: 10 });
    let wps = categoriser.categorise("WPS Writer");
    assert_eq!(wps.decided_by, DecidedBy::Rule { rule_id: 11 });
    assert_eq!(
        categoriser.categorise("Firefox").decided_by,
        DecidedBy::Model
    );
    let categories = categoriser.categories();
    assert!(
        categories.contains(&"Office suite".to_owned()),
        "{categories:?}"
    );
    assert!(
        categories.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted, no repeats"
    );
}

#[test]
fn an_override_beats_other_rules() {
    let categoriser = small()
        .with_rules(vec![
            Rule::regex(1, "slack", "Social"),
            Rule::exact(2, "SLACK", "Communication"),
        ])
        .unwrap();
    let slack = categoriser.categorise("Slack");
    assert_eq!(slack.decided_by, DecidedBy::Rule { rule_id: 2 });
    assert_eq!(slack.category, "Communication");
    let beta = categoriser.categorise("Slack Beta");
    assert_eq!(beta.decided_by, DecidedBy::Rule { rule_id: 1 });
    assert_eq!(beta.category, "Social");
}

#[test]
fn bad_rules_are_refused_with_clear_errors() {
    let err = small()
        .with_rules(vec![Rule::regex(9, "(unclosed", "Work")])
        .unwrap_err();
    assert!(
        matches!(err, CategoriesError::InvalidRegex { rule_id: 9, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("rule 9") && message.contains("(unclosed"),
        "{message}"
    );

    let err = small()
        .with_rules(vec![
            Rule::exact(1, "Slack", "Work"),
            Rule::exact(2, " slack", "Social"),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            CategoriesError::DuplicateExactRule {
                first_id: 1,
                second_id: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = small()
        .with_rules(vec![
            Rule::exact(1, "Slack", "Work"),
            Rule::regex(1, "x", "Work"),
        ])
        .unwrap_err();
    assert!(
        matches!(err, CategoriesError::DuplicateRuleId { rule_id: 1 }),
        "{err:?}"
    );
    let err = small()
        .with_rules(vec![Rule::exact(3, "  ", "Work")])
        .unwrap_err();
    assert!(
        matches!(err, CategoriesError::BlankRulePattern { rule_id: 3 }),
        "{err:?}"
    );
    let err = small()
        .with_rules(vec![Rule::exact(4, "Slack", "")])
        .unwrap_err();
    assert!(
        matches!(err, CategoriesError::BlankRuleCategory { rule_id: 4 }),
        "{err:?}"
    );
}

#[test]
fn rules_round_trip_through_serde() {
    let rules = vec![
        Rule::exact(1, "Slack", "Work"),
        Rule::regex(2, "^steam", "Games"),
    ];
    let json = serde_json::to_string(&rules).unwrap();
    let back: Vec<Rule> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rules);
    let categoriser = small().with_rules(back).unwrap();
    assert_eq!(categoriser.rules(), rules.as_slice());
}

#[test]
fn categorise_never_panics_on_odd_names() {
    let categoriser = builtin();
    let categories = categoriser.categories();
    let long = "Visual Studio Code ".repeat(10_000);
    let odd = [
        "",
        "   ",
        "\0\t\n",
        long.as_str(),
        "日本語のアプリケーション",
        "🦀🦀🦀",
        "e\u{301}\u{301}\u{301}",
        "\u{202e}edoC oidutS lausiV",
        "Firefox\u{0}",
    ];
    for app in odd {
        let categorisation = categoriser.categorise(app);
        assert!(
            categories.contains(&categorisation.category),
            "{categorisation:?}"
        );
        assert_eq!(categorisation.decided_by, DecidedBy::Model);
        assert!(
            (0.0..=1.0).contains(&categorisation.confidence),
            "{categorisation:?}"
        );
    }
}

#[test]
fn categorisation_is_deterministic() {
    let apps = [
        "Slack",
        "Some Unknown Tool",
        "",
        "Zed",
        "Minecraft Launcher",
        "xyz",
    ];
    let first = builtin();
    let second = builtin();
    for app in apps {
        let once = first.categorise(app);
        assert_eq!(once, first.categorise(app), "{app}");
        assert_eq!(once, second.categorise(app), "{app}");
    }
}

#[test]
fn retrain_with_follows_the_manager_labels() {
    let categoriser = builtin();
    let steam_before = categoriser.categorise("Steam");
    assert_eq!(steam_before.category, "Games");
    let unknown = "Acme Timesheets";
    let unknown_before = categoriser.categorise(unknown).category;
    let label = if unknown_before == "Work" {
        "Utilities"
    } else {
        "Work"
    };
    let retrained = categoriser
        .retrain_with(&[
            ("Steam".to_owned(), "Work".to_owned()),
            (unknown.to_owned(), label.to_owned()),
        ])
        .unwrap();
    assert_eq!(retrained.categorise("Steam").category, "Work");
    assert_eq!(retrained.categorise(unknown).category, label);
    assert_eq!(retrained.categorise(unknown).decided_by, DecidedBy::Model);
    assert_eq!(retrained.categorise("Slack").category, "Communication");
}

#[test]
fn with_rules_keeps_the_model() {
    let categoriser = small();
    let before = categoriser.categorise("Some Unknown Tool");
    let with_rules = categoriser
        .with_rules(vec![Rule::exact(5, "Slack", "Work")])
        .unwrap();
    assert_eq!(with_rules.categorise("Some Unknown Tool"), before);
    assert_eq!(with_rules.rules().len(), 1);
    let cleared = with_rules.with_rules(Vec::new()).unwrap();
    assert!(cleared.rules().is_empty());
    assert_eq!(cleared.categorise("Slack").decided_by, DecidedBy::Model);
}

#[test]
fn training_csv_errors_name_the_file_and_line() {
    let err = parse_training_csv("name,category\nSlack,Work\n", "mine.csv").unwrap_err();
    assert!(err.to_string().starts_with("mine.csv:1:"), "{err}");
    let err = parse_training_csv("app_name,category\nSlack,Work\nZed\n", "mine.csv").unwrap_err();
    assert!(err.to_string().starts_with("mine.csv:3:"), "{err}");
    let err = parse_training_csv("app_name,category\nSlack,Work\nslack,Social\n", "mine.csv")
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("mine.csv:3:") && message.contains("line 2"),
        "{message}"
    );
    let err = parse_training_csv("app_name,category\nSlack, \n", "mine.csv").unwrap_err();
    assert!(err.to_string().starts_with("mine.csv:2:"), "{err}");
    let err = parse_training_csv("", "mine.csv").unwrap_err();
    assert!(err.to_string().starts_with("mine.csv:"), "{err}");
    let rows = parse_training_csv(
        "app_name,category\n\"Acme, Inc. Editor\",Work\n\n Zed , Development\n",
        "mine.csv",
    )
    .unwrap();
    assert_eq!(
        rows,
        [
            ("Acme, Inc. Editor".to_owned(), "Work".to_owned()),
            ("Zed".to_owned(), "Development".to_owned()),
        ]
    );
}

#[test]
fn training_needs_two_categories_and_no_blank_rows() {
    let one = [
        ("Slack".to_owned(), "Work".to_owned()),
        ("Zed".to_owned(), "Work".to_owned()),
    ];
    let err = Categoriser::train(&one, Vec::new()).unwrap_err();
    assert!(
        matches!(err, CategoriesError::TooFewCategories { found: 1 }),
        "{err:?}"
    );
    let blank = [
        ("Slack".to_owned(), "Work".to_owned()),
        (" ".to_owned(), "Games".to_owned()),
    ];
    let err = Categoriser::train(&blank, Vec::new()).unwrap_err();
    assert!(
        matches!(err, CategoriesError::BlankTrainingRow { index: 1 }),
        "{err:?}"
    );
}

#[test]
fn categoriser_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Categoriser>();
}

// ----- the model kept in the store -----

/// App names the persisted-model tests compare categorisations on.
const PROBE_APPS: [&str; 8] = [
    "Slack",
    "Firefox",
    "LibreOffice Calc",
    "Some Unknown Tool",
    "",
    "日本語",
    "Thunderbird Beta",
    "Writer",
];

fn open_store(dir: &Path) -> ConsoleStore {
    ConsoleStore::open(dir, DayClock::utc()).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(app, category)| (app.to_owned(), category.to_owned()))
        .collect()
}

/// `load_or_train_from` on [`small_rows`] plus `labels`, for `build`.
fn small_load(
    store: &ConsoleStore,
    labels: &[(String, String)],
    build: &str,
    rules: Vec<Rule>,
) -> (Categoriser, Provenance) {
    let base_rows = small_rows();
    let inputs = ModelInputs {
        base_rows: &base_rows,
        labels,
        build,
    };
    load_or_train_from(store, inputs, rules).unwrap()
}

fn categorisations(
    categoriser: &Categoriser,
    apps: &[&str],
) -> Vec<console_engine::categories::Categorisation> {
    apps.iter().map(|app| categoriser.categorise(app)).collect()
}

#[test]
fn the_builtin_model_is_stored_then_loaded_by_the_next_open_with_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    let rules = vec![Rule::exact(1, "Acme Timesheets", "Work")];
    let mut apps: Vec<&str> = AGENT_APP_NAMES_CSV
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("raw,"))
        .filter_map(|line| line.split_once(',').map(|(_, name)| name.trim()))
        .collect();
    apps.extend(PROBE_APPS);
    apps.push("acme timesheets");
    let label = labels(&[("Acme Timesheets", "Work")]);

    let store = open_store(dir.path());
    let (trained, provenance) = load_or_train(&store, rules.clone(), &label).unwrap();
    assert_eq!(provenance, Provenance::Trained(Retrain::NoneStored));
    drop(store);

    let store = open_store(dir.path());
    let (loaded, provenance) = load_or_train(&store, rules, &label).unwrap();
    assert_eq!(provenance, Provenance::Loaded);
    assert_eq!(
        categorisations(&loaded, &apps),
        categorisations(&trained, &apps)
    );
    assert_eq!(loaded.categories(), trained.categories());
    assert_eq!(loaded.classifier(), ClassifierKind::CHOSEN);
    assert_eq!(
        loaded.categorise("acme timesheets").decided_by,
        DecidedBy::Rule { rule_id: 1 }
    );
}

#[test]
fn labels_rows_or_build_retrain_rules_do_not_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // Other data of the store, which writing the model must not touch.
    store
        .put_setting("language", &serde_json::json!("en"))
        .unwrap();
    store
        .audit(AuditEntry {
            at_ms: 1_772_438_400_000,
            actor: "test".to_owned(),
            action: "settings".to_owned(),
            target: "language".to_owned(),
            detail: "changed".to_owned(),
        })
        .unwrap();
    let none = Vec::new();
    let build = "1.0.0-test";

    let (first, provenance) = small_load(&store, &none, build, Vec::new());
    assert_eq!(provenance, Provenance::Trained(Retrain::NoneStored));
    let (again, provenance) = small_load(&store, &none, build, Vec::new());
    assert_eq!(provenance, Provenance::Loaded);
    assert_eq!(
        categorisations(&again, &PROBE_APPS),
        categorisations(&first, &PROBE_APPS)
    );
    // The loaded categoriser keeps its training rows: retraining from it
    // learns as from the trained one.
    let extra = labels(&[("Steam", "Browsing")]);
    assert_eq!(
        categorisations(&again.retrain_with(&extra).unwrap(), &PROBE_APPS),
        categorisations(&first.retrain_with(&extra).unwrap(), &PROBE_APPS)
    );

    // A rule is applied over the stored model: no training.
    let rule = Rule::regex(7, "^some", "Games");
    let (ruled, provenance) = small_load(&store, &none, build, vec![rule]);
    assert_eq!(provenance, Provenance::Loaded);
    assert_eq!(
        ruled.categorise("Some Unknown Tool").decided_by,
        DecidedBy::Rule { rule_id: 7 }
    );
    assert_eq!(ruled.categorise("Slack"), first.categorise("Slack"));

    // A new label retrains, and the model learns it.
    let labelled = labels(&[("Some Unknown Tool", "Work")]);
    let (retrained, provenance) = small_load(&store, &labelled, build, Vec::new());
    assert_eq!(provenance, Provenance::Trained(Retrain::Outdated));
    assert_eq!(
        retrained.categorise("Some Unknown Tool").category,
        Categoriser::train(&[small_rows(), labelled.clone()].concat(), Vec::new())
            .unwrap()
            .categorise("Some Unknown Tool")
            .category
    );
    assert_eq!(
        small_load(&store, &labelled, build, Vec::new()).1,
        Provenance::Loaded
    );
    // A changed label (same app, other category) retrains too.
    let relabelled = labels(&[("Some Unknown Tool", "Browsing")]);
    assert_eq!(
        small_load(&store, &relabelled, build, Vec::new()).1,
        Provenance::Trained(Retrain::Outdated)
    );
    // So do other base rows, and another build.
    let mut other_rows = small_rows();
    other_rows.push(("Opera".to_owned(), "Browsing".to_owned()));
    let inputs = ModelInputs {
        base_rows: &other_rows,
        labels: &relabelled,
        build,
    };
    assert_eq!(
        load_or_train_from(&store, inputs, Vec::new()).unwrap().1,
        Provenance::Trained(Retrain::Outdated)
    );
    assert_eq!(
        small_load(&store, &relabelled, "1.0.1-test", Vec::new()).1,
        Provenance::Trained(Retrain::Outdated)
    );
    assert_eq!(
        small_load(&store, &relabelled, "1.0.1-test", Vec::new()).1,
        Provenance::Loaded
    );

    assert_eq!(
        store.get_setting("language").unwrap(),
        Some(serde_json::json!("en"))
    );
    assert_eq!(store.verify_audit().unwrap(), 1);
}

#[test]
fn a_damaged_stored_model_is_discarded_and_retrained_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let none = Vec::new();
    let build = "1.0.0-test";
    let (original, _) = small_load(&store, &none, build, Vec::new());
    let good = store.category_model_blob().unwrap().expect("stored");
    assert!(good.len() > MODEL_BLOB_LENGTH_OFFSET + 4 + 32);

    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
    for length in [0, 1, 4, 40, 100, good.len()] {
        let bytes: Vec<u8> = (0..length).map(|_| rng.gen()).collect();
        damaged.push((format!("{length} random bytes"), bytes));
    }
    let mut random_after_key = good.clone();
    rng.fill(&mut random_after_key[MODEL_BLOB_LENGTH_OFFSET..]);
    damaged.push(("random bytes after the key".to_owned(), random_after_key));
    for keep in [
        5,
        MODEL_BLOB_LENGTH_OFFSET + 2,
        good.len() / 2,
        good.len() - 1,
    ] {
        damaged.push((format!("truncated to {keep} bytes"), good[..keep].to_vec()));
    }
    for announced in [u32::MAX, (MAX_MODEL_BLOB_BYTES + 1) as u32, 0] {
        let mut blob = good.clone();
        blob[MODEL_BLOB_LENGTH_OFFSET..MODEL_BLOB_LENGTH_OFFSET + 4]
            .copy_from_slice(&announced.to_be_bytes());
        damaged.push((format!("length prefix {announced}"), blob));
    }
    let mut longer = good.clone();
    longer.extend_from_slice(b"trailing");
    damaged.push(("bytes after the body".to_owned(), longer));
    for position in [0, MODEL_BLOB_LENGTH_OFFSET + 4, good.len() - 1] {
        let mut flipped = good.clone();
        flipped[position] ^= 0x40;
        damaged.push((format!("byte {position} flipped"), flipped));
    }

    for (what, blob) in damaged {
        store.put_category_model_blob(&blob).unwrap();
        let (retrained, provenance) = small_load(&store, &none, build, Vec::new());
        assert_eq!(
            provenance,
            Provenance::Trained(Retrain::Unreadable),
            "{what}"
        );
        assert_eq!(
            categorisations(&retrained, &PROBE_APPS),
            categorisations(&original, &PROBE_APPS),
            "{what}"
        );
        // The fresh model replaced the damaged one.
        assert_eq!(
            store.category_model_blob().unwrap().as_ref(),
            Some(&good),
            "{what}"
        );
        assert_eq!(
            small_load(&store, &none, build, Vec::new()).1,
            Provenance::Loaded
        );
    }

    // A blob in another format (another build's) is retrained from too.
    let mut other_format = good.clone();
    other_format[4] = 2;
    store.put_category_model_blob(&other_format).unwrap();
    assert_eq!(
        small_load(&store, &none, build, Vec::new()).1,
        Provenance::Trained(Retrain::Outdated)
    );
    assert_eq!(store.category_model_blob().unwrap().as_ref(), Some(&good));

    // A blob past the cap is refused before it reaches the store.
    let huge = vec![0_u8; MAX_MODEL_BLOB_BYTES + 1];
    assert!(matches!(
        store.put_category_model_blob(&huge),
        Err(StoreError::ModelTooLarge { .. })
    ));
    assert_eq!(store.category_model_blob().unwrap().as_ref(), Some(&good));
}
