//! Categoriser benchmark: training time on the built-in CSV and on a
//! 300–500-row subset, categorisation latency by rule and by model, and the
//! chosen classifier's held-out accuracy.
//!
//! `cargo bench -p smarttracker-console --bench categoriser [-- --runs N]`
//!
//! Figures are printed, never asserted.

use std::error::Error;
use std::time::{Duration, Instant};

use console_engine::categories::{
    cross_validate, evaluate_held_out, evaluate_held_out_with, parse_training_csv, Categoriser,
    ClassifierKind, Rule, BUILTIN_TRAINING_CSV,
};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const DEFAULT_RUNS: usize = 5;
const SEED: u64 = 7;
/// Names categorised per latency measurement.
const LOOKUPS: usize = 2_000;

fn parse_runs() -> BenchResult<usize> {
    let mut args = std::env::args().skip(1);
    let mut runs = DEFAULT_RUNS;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                runs = args.next().ok_or("--runs needs a number")?.parse()?;
            }
            // `cargo bench` passes `--bench`; nothing else is expected.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(runs.max(1))
}

/// Median wall time of `runs` calls of `train`.
fn median_training_time(
    runs: usize,
    mut train: impl FnMut() -> BenchResult<Categoriser>,
) -> BenchResult<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        train()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Mean time of one `categorise` over `names`, cycled to [`LOOKUPS`] calls.
fn mean_categorise_time(categoriser: &Categoriser, names: &[&str]) -> Duration {
    let started = Instant::now();
    for name in names.iter().cycle().take(LOOKUPS) {
        std::hint::black_box(categoriser.categorise(name));
    }
    started.elapsed() / LOOKUPS as u32
}

fn main() -> BenchResult<()> {
    // `cargo nextest --all-targets` lists every target with `--list`: a
    // bench binary holds no tests, so it lists none.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let runs = parse_runs()?;
    let rows = parse_training_csv(BUILTIN_TRAINING_CSV, "assets/app_categories.csv")?;
    if std::env::args().any(|arg| arg == "--compare") {
        compare_classifiers(&rows);
    }
    let subset: Vec<(String, String)> = rows.iter().step_by(2).cloned().collect();
    let full = median_training_time(runs, || Ok(Categoriser::train(&rows, Vec::new())?))?;
    let half = median_training_time(runs, || Ok(Categoriser::train(&subset, Vec::new())?))?;
    println!(
        "categoriser: median training time over {runs} runs: {} rows {:.0} ms, {} rows {:.0} ms",
        rows.len(),
        full.as_secs_f64() * 1e3,
        subset.len(),
        half.as_secs_f64() * 1e3,
    );

    let categoriser = Categoriser::builtin()?;
    let unseen = [
        "Acme Timesheets",
        "Firefox Beta",
        "PyCharm Professional",
        "日本語",
        "",
    ];
    let known: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    let by_model = mean_categorise_time(&categoriser, &known);
    let by_model_unseen = mean_categorise_time(&categoriser, &unseen);
    let with_rules = categoriser.with_rules(vec![
        Rule::exact(1, "Slack", "Work"),
        Rule::regex(2, r"^libreoffice\b", "Work"),
    ])?;
    let by_rule = mean_categorise_time(&with_rules, &["Slack", "LibreOffice Calc"]);
    println!(
        "categorise: {:.1} µs by model (known names), {:.1} µs by model (unseen names), \
         {:.2} µs by rule",
        by_model.as_secs_f64() * 1e6,
        by_model_unseen.as_secs_f64() * 1e6,
        by_rule.as_secs_f64() * 1e6,
    );

    let report = evaluate_held_out(&rows, SEED);
    println!(
        "{}: held-out accuracy {:.3} ({} train / {} test rows, seed {SEED})",
        report.classifier, report.accuracy, report.train_rows, report.test_rows
    );
    Ok(())
}

/// Every classifier's held-out and 5-fold accuracy on the built-in data
/// (`-- --compare`; the random forest takes seconds).
fn compare_classifiers(rows: &[(String, String)]) {
    const SEED: u64 = 7;
    for kind in ClassifierKind::ALL {
        let started = Instant::now();
        let held_out = evaluate_held_out_with(rows, SEED, kind);
        let elapsed = started.elapsed();
        let folds = cross_validate(rows, 5, SEED, kind);
        let fold_accuracies: Vec<f64> = folds.iter().map(|fold| fold.accuracy).collect();
        let mean = fold_accuracies.iter().sum::<f64>() / fold_accuracies.len().max(1) as f64;
        println!(
            "{kind}: held-out accuracy {:.3} ({} train / {} test rows, fit+eval {elapsed:?}); 5-fold mean {mean:.3}",
            held_out.accuracy, held_out.train_rows, held_out.test_rows
        );
        println!("  per category: {:.2?}", held_out.per_category);
    }
}
