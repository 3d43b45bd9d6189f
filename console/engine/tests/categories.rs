//! Categoriser tests: the built-in training CSV, held-out accuracy, rules
//! over the model, overrides, odd input, determinism and retraining.

use std::collections::{BTreeSet, HashSet};

use console_engine::categories::{
    evaluate_held_out, parse_training_csv, CategoriesError, Categoriser, ClassifierKind, DecidedBy,
    Rule, BUILTIN_TRAINING_CSV,
};

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

/// A categoriser trained on a handful of rows, for tests about rules (the
/// built-in model takes seconds to train in a debug build).
fn small() -> Categoriser {
    let rows: Vec<(String, String)> = [
        ("Slack", "Communication"),
        ("Thunderbird", "Communication"),
        ("Firefox", "Browsing"),
        ("Chromium", "Browsing"),
        ("LibreOffice Writer", "Work"),
        ("WPS Writer", "Work"),
    ]
    .iter()
    .map(|&(app, category)| (app.to_owned(), category.to_owned()))
    .collect();
    Categoriser::train(&rows, Vec::new()).unwrap()
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
