//! Held-out measurement of the classifiers: seeded, stratified 80/20 split
//! and k-fold cross-validation over the training rows.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::model::{ClassifierKind, Model};
use super::training_rows;

/// Folds of the held-out split: fold 0 of five is the 20 % test set.
const HELD_OUT_FOLDS: usize = 5;

/// How one classifier did on rows it was not trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutReport {
    /// Classifier name; when training failed, the reason follows it.
    pub classifier: String,
    /// Share of test rows whose category was predicted right (0 when there
    /// were no test rows or training failed).
    pub accuracy: f64,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Per category with test rows, sorted: share of its test rows
    /// predicted right (recall).
    pub per_category: Vec<(String, f64)>,
}

/// The chosen classifier ([`ClassifierKind::CHOSEN`]) on a stratified,
/// seeded 80/20 split of `rows`.
pub fn evaluate_held_out(rows: &[(String, String)], seed: u64) -> HeldOutReport {
    evaluate_held_out_with(rows, seed, ClassifierKind::CHOSEN)
}

/// One classifier on a stratified, seeded 80/20 split of `rows` (names
/// de-duplicated as [`super::Categoriser::train`] does; the vectoriser only
/// sees the training part).
pub fn evaluate_held_out_with(
    rows: &[(String, String)],
    seed: u64,
    kind: ClassifierKind,
) -> HeldOutReport {
    match training_rows(rows) {
        Ok(rows) => {
            let folds = stratified_folds(&rows, HELD_OUT_FOLDS, seed);
            evaluate_fold(&rows, &folds, 0, kind)
        }
        Err(err) => failed_report(kind, &err, rows.len(), 0),
    }
}

/// Stratified, seeded `folds`-fold cross-validation of one classifier: one
/// report per fold, each trained on the other folds (`folds` below 2 is
/// taken as 2).
pub fn cross_validate(
    rows: &[(String, String)],
    folds: usize,
    seed: u64,
    kind: ClassifierKind,
) -> Vec<HeldOutReport> {
    let folds_count = folds.max(2);
    match training_rows(rows) {
        Ok(rows) => {
            let folds = stratified_folds(&rows, folds_count, seed);
            (0..folds_count)
                .map(|test_fold| evaluate_fold(&rows, &folds, test_fold, kind))
                .collect()
        }
        Err(err) => vec![failed_report(kind, &err, rows.len(), 0)],
    }
}

/// Fold of each row: each category's rows are shuffled, then dealt round
/// the folds starting at fold 1, so a category's first row always trains.
fn stratified_folds(rows: &[(String, String)], folds: usize, seed: u64) -> Vec<usize> {
    let mut by_category: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, (_, category)) in rows.iter().enumerate() {
        by_category.entry(category).or_default().push(index);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0; rows.len()];
    for indices in by_category.values_mut() {
        indices.shuffle(&mut rng);
        for (position, &index) in indices.iter().enumerate() {
            fold_of[index] = (position + 1) % folds;
        }
    }
    fold_of
}

fn evaluate_fold(
    rows: &[(String, String)],
    fold_of: &[usize],
    test_fold: usize,
    kind: ClassifierKind,
) -> HeldOutReport {
    let (test, train): (Vec<_>, Vec<_>) = rows
        .iter()
        .zip(fold_of)
        .partition(|&(_, &fold)| fold == test_fold);
    let train: Vec<(String, String)> = train.into_iter().map(|(row, _)| row.clone()).collect();
    let test: Vec<&(String, String)> = test.into_iter().map(|(row, _)| row).collect();
    let model = match Model::fit(&train, kind) {
        Ok(model) => model,
        Err(err) => return failed_report(kind, &err, train.len(), test.len()),
    };
    let names: Vec<&str> = test.iter().map(|(name, _)| name.as_str()).collect();
    let predictions = model.predict(&names);
    // Category → (right, total) over the test rows.
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((_, category), (class, _)) in test.iter().zip(&predictions) {
        let entry = tally.entry(category).or_default();
        entry.1 += 1;
        if model.categories()[*class] == *category {
            entry.0 += 1;
        }
    }
    let right: usize = tally.values().map(|&(right, _)| right).sum();
    HeldOutReport {
        classifier: kind.name().to_owned(),
        accuracy: share(right, test.len()),
        train_rows: train.len(),
        test_rows: test.len(),
        per_category: tally
            .into_iter()
            .map(|(category, (right, total))| (category.to_owned(), share(right, total)))
            .collect(),
    }
}

fn failed_report(
    kind: ClassifierKind,
    err: &super::CategoriesError,
    train_rows: usize,
    test_rows: usize,
) -> HeldOutReport {
    HeldOutReport {
        classifier: format!("{} (training failed: {err})", kind.name()),
        accuracy: 0.0,
        train_rows,
        test_rows,
        per_category: Vec::new(),
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
