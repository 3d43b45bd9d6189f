//! Application categories: manager rules first, then a linfa model trained on
//! app names, and which of the two decided with what confidence.
//!
//! A [`Categoriser`] holds the manager's [`Rule`]s and a model. An app name
//! goes to the category of its exact rule (a manager's override for that
//! app, compared case-insensitively), else of the first regex rule that
//! matches it, with confidence 1; else the model answers with its most
//! probable category and that probability.
//!
//! The model is TF-IDF over the lower-cased name's character 1–4-grams,
//! padded at word boundaries and kept when found in at least two training
//! names (a vectoriser of our own: linfa-preprocessing's counts words only),
//! fed to a linfa classifier. It is trained on `assets/app_categories.csv`
//! (compiled in: 837 real apps in 10 categories), optionally plus rows a
//! manager labelled ([`Categoriser::retrain_with`]).
//!
//! # Choice of classifier
//!
//! Measured on the built-in CSV, stratified split seeded with 7 (675 rows
//! to train, 162 held out) and stratified 5-fold cross-validation, release
//! build on the 2-core dev machine:
//!
//! | classifier ([`ClassifierKind`])        | held out | 5-fold mean | fit + predict, 675 rows |
//! |----------------------------------------|---------:|------------:|------------------------:|
//! | multinomial logistic regression        |    0.457 |       0.438 |                  0.33 s |
//! | Bernoulli naive Bayes                  |    0.414 |       0.384 |                  0.02 s |
//! | random forest (30 trees; seed product) |    0.370 |       0.312 |                   8.0 s |
//!
//! (Always answering the largest category, Utilities, scores 0.217.) The
//! logistic regression is used: best on both measures, and it trains on
//! the 837 built-in rows in about 0.6 s and on 419 of them in about 0.16 s
//! (`cargo bench -p smarttracker-console --bench categoriser`). Its
//! parameters were picked the same way: L2 penalty 0.03 (0.01 scored the
//! same but gave over-confident probabilities, 0.1 scored 0.432), 50 L-BFGS
//! iterations (100 were no better and twice as slow), f32. Keeping n-grams
//! seen only once scored 0.455 but trained three times slower. The model
//! still fits every built-in row. App names carry little signal in their
//! letters (Steam, Slack and Spotify look alike), so rules and
//! [`Categoriser::retrain_with`] are how a manager fixes what it gets wrong.
//!
//! `cargo nextest run -p smarttracker-console --test categories --release
//! --run-ignored all compare_classifiers --no-capture` prints these figures.
//!
//! # Persistence
//!
//! The console builds its categoriser through [`load_or_train`] only: the
//! trained model is kept in the console's store, keyed by the training
//! rows, the classifier's configuration and the build, and loaded in
//! milliseconds by later processes (`persist.rs`).

mod evaluation;
mod features;
mod model;
mod persist;
mod rules;

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use evaluation::{cross_validate, evaluate_held_out, evaluate_held_out_with, HeldOutReport};
pub use model::ClassifierKind;
pub use persist::{
    load_or_train, load_or_train_from, ModelInputs, Provenance, Retrain, MODEL_BLOB_LENGTH_OFFSET,
};
pub use rules::{Rule, RulePattern};

use model::Model;
use rules::{normalise, RuleSet};

/// The built-in training set: `app_name,category` rows.
pub const BUILTIN_TRAINING_CSV: &str = include_str!("../../../../assets/app_categories.csv");
/// Name under which errors in [`BUILTIN_TRAINING_CSV`] are reported.
const BUILTIN_TRAINING_SOURCE: &str = "assets/app_categories.csv";
/// Header the training CSV must start with.
const TRAINING_CSV_HEADER: [&str; 2] = ["app_name", "category"];

/// Why rules or training data were refused.
#[derive(Debug, Error)]
pub enum CategoriesError {
    #[error("{source_name}:{line}: {message}")]
    TrainingCsv {
        source_name: String,
        line: u64,
        message: String,
    },
    #[error("training row {index}: blank app name or category")]
    BlankTrainingRow { index: usize },
    #[error("training needs at least two categories, found {found}")]
    TooFewCategories { found: usize },
    #[error("training the {classifier} failed: {message}")]
    Training {
        classifier: &'static str,
        message: String,
    },
    #[error("rule {rule_id}: invalid regex {pattern:?}: {source}")]
    InvalidRegex {
        rule_id: u64,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("rule {rule_id}: blank pattern")]
    BlankRulePattern { rule_id: u64 },
    #[error("rule {rule_id}: blank category")]
    BlankRuleCategory { rule_id: u64 },
    #[error("two rules have id {rule_id}")]
    DuplicateRuleId { rule_id: u64 },
    #[error("rules {first_id} and {second_id} are both exact rules for {app:?}")]
    DuplicateExactRule {
        app: String,
        first_id: u64,
        second_id: u64,
    },
}

/// Which part of the categoriser chose the category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecidedBy {
    /// The manager's rule with this id.
    Rule { rule_id: u64 },
    /// The trained model.
    Model,
}

/// The category of one app name and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categorisation {
    pub category: String,
    pub decided_by: DecidedBy,
    /// 1 for rules; the model's probability of `category` otherwise.
    pub confidence: f32,
}

/// Manager rules over a trained model; cheap to share, immutable once built.
#[derive(Debug)]
pub struct Categoriser {
    /// The de-duplicated rows the model was trained on.
    training_rows: Vec<(String, String)>,
    model: Model,
    rules: RuleSet,
}

impl Categoriser {
    /// Trained on the compiled-in `assets/app_categories.csv`, no rules.
    pub fn builtin() -> Result<Categoriser, CategoriesError> {
        let rows = parse_training_csv(BUILTIN_TRAINING_CSV, BUILTIN_TRAINING_SOURCE)?;
        Categoriser::train(&rows, Vec::new())
    }

    /// Trains on `(app name, category)` rows and takes `rules`. Names and
    /// categories are trimmed; when a name appears twice (case-insensitively)
    /// the later row wins.
    pub fn train(
        rows: &[(String, String)],
        rules: Vec<Rule>,
    ) -> Result<Categoriser, CategoriesError> {
        let rules = RuleSet::new(rules)?;
        let training_rows = training_rows(rows)?;
        let model = Model::fit(&training_rows, ClassifierKind::CHOSEN)?;
        Ok(Categoriser {
            training_rows,
            model,
            rules,
        })
    }

    /// The category of `app`: by rule if one matches, else by the model
    /// (whose best guess also covers blank or odd names).
    pub fn categorise(&self, app: &str) -> Categorisation {
        if let Some(rule) = self.rules.find(app) {
            return Categorisation {
                category: rule.category.trim().to_owned(),
                decided_by: DecidedBy::Rule { rule_id: rule.id },
                confidence: 1.0,
            };
        }
        let (class, probability) = self
            .model
            .predict(&[app.trim()])
            .first()
            .copied()
            .unwrap_or((0, 0.0));
        Categorisation {
            category: self.model.categories()[class].clone(),
            decided_by: DecidedBy::Model,
            confidence: if probability.is_finite() {
                probability.clamp(0.0, 1.0)
            } else {
                0.0
            },
        }
    }

    /// Every category the model or a rule can give, sorted.
    pub fn categories(&self) -> Vec<String> {
        self.model
            .categories()
            .iter()
            .cloned()
            .chain(
                self.rules
                    .rules()
                    .iter()
                    .map(|rule| rule.category.trim().to_owned()),
            )
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The manager's rules, as given.
    pub fn rules(&self) -> &[Rule] {
        self.rules.rules()
    }

    /// The classifier behind the model.
    pub fn classifier(&self) -> ClassifierKind {
        self.model.kind()
    }

    /// Same model, `rules` instead of the current ones.
    pub fn with_rules(self, rules: Vec<Rule>) -> Result<Categoriser, CategoriesError> {
        Ok(Categoriser {
            rules: RuleSet::new(rules)?,
            ..self
        })
    }

    /// A new categoriser trained on this one's rows plus `extra_rows` (e.g.
    /// apps a manager labelled or overrode), which win over rows naming the
    /// same app; rules are kept.
    pub fn retrain_with(
        &self,
        extra_rows: &[(String, String)],
    ) -> Result<Categoriser, CategoriesError> {
        let mut rows = self.training_rows.clone();
        rows.extend_from_slice(extra_rows);
        Categoriser::train(&rows, self.rules.rules().to_vec())
    }
}

/// Parses `app_name,category` CSV text (header required, RFC 4180 quoting,
/// blank lines skipped). Errors name `source_name` and the line: a wrong
/// header, a row without exactly two fields, a blank field, or an app named
/// twice (case-insensitively).
pub fn parse_training_csv(
    text: &str,
    source_name: &str,
) -> Result<Vec<(String, String)>, CategoriesError> {
    let error = |line: u64, message: String| CategoriesError::TrainingCsv {
        source_name: source_name.to_owned(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // Normalised app name → line it was first seen on.
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut header_seen = false;
    for record in reader.records() {
        let record = record.map_err(|err| {
            let line = err.position().map_or(0, csv::Position::line);
            error(line, err.to_string())
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        if !header_seen {
            if record.iter().ne(TRAINING_CSV_HEADER) {
                return Err(error(
                    line,
                    format!("header must be `{}`", TRAINING_CSV_HEADER.join(",")),
                ));
            }
            header_seen = true;
            continue;
        }
        let [app, category] = [0, 1].map(|field| record.get(field).unwrap_or_default());
        if record.len() != 2 {
            return Err(error(
                line,
                format!("expected 2 fields, found {}", record.len()),
            ));
        }
        if app.is_empty() || category.is_empty() {
            return Err(error(line, "blank app name or category".to_owned()));
        }
        if let Some(first_line) = seen.insert(normalise(app), line) {
            return Err(error(
                line,
                format!("app {app:?} already listed on line {first_line}"),
            ));
        }
        rows.push((app.to_owned(), category.to_owned()));
    }
    if !header_seen {
        return Err(error(1, "empty file: header missing".to_owned()));
    }
    Ok(rows)
}

/// Trimmed rows, one per app name (case-insensitively; a later row wins,
/// in the place of the first), refusing blank names or categories.
fn training_rows(rows: &[(String, String)]) -> Result<Vec<(String, String)>, CategoriesError> {
    let mut deduplicated: Vec<(String, String)> = Vec::with_capacity(rows.len());
    let mut position: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for (index, (app, category)) in rows.iter().enumerate() {
        let (app, category) = (app.trim(), category.trim());
        if app.is_empty() || category.is_empty() {
            return Err(CategoriesError::BlankTrainingRow { index });
        }
        let row = (app.to_owned(), category.to_owned());
        match position.get(&normalise(app)) {
            Some(&existing) => deduplicated[existing] = row,
            None => {
                position.insert(normalise(app), deduplicated.len());
                deduplicated.push(row);
            }
        }
    }
    Ok(deduplicated)
}
