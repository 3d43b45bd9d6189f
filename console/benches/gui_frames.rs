//! Frame CPU time of the console's heaviest screens, headless: one frame is
//! `egui::Context::run_ui` plus `tessellate`, timed with the thread's CPU
//! clock, p50 and p95 over many frames at 1600×1000 points.
//!
//! - Fleet, 1,000 agents: the screen's virtualised table against a naive
//!   per-row layout of every row (a grid in a scroll area), in the same run.
//! - Health chart, 30 days of one agent: the series decimated as the engine
//!   sends them (at most `views::MAX_PLOT_POINTS` per series) against the
//!   raw 1 Hz samples given to the plot as they are.
//!
//! `cargo bench -p smarttracker-console --bench gui_frames [-- --frames N]`
//! Targets: fleet p95 ≤ 3 ms, chart p95 ≤ 6 ms (release build).

use std::time::Duration;

use console::app::{Action, FleetQuery};
use console::ui::charts::health_chart;
use console::ui::fleet::{fleet_table, FleetTable};
use console_engine::analytics::SeriesPoint;
use console_engine::i18n::Lang;
use console_engine::model::{AgentId, DayClock, HealthLevel, DAY_MS};
use console_engine::views::{decimated_plot, FleetRow, HealthCharts, Status};

const AGENTS: usize = 1_000;
const DEFAULT_FRAMES: usize = 300;
/// The raw chart costs seconds a frame: fewer frames suffice.
const RAW_CHART_FRAMES: usize = 5;
const WARMUP_FRAMES: usize = 5;
const NOW_MS: i64 = 1_772_460_300_000;

fn thread_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

fn input(frame: usize) -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1600.0, 1000.0),
        )),
        time: Some(frame as f64 / 60.0),
        ..Default::default()
    }
}

/// p50 and p95 of the CPU time of `frames` frames drawing `draw`.
fn measure(frames: usize, mut draw: impl FnMut(&mut egui::Ui)) -> (Duration, Duration) {
    let ctx = egui::Context::default();
    console::ui::install_fonts(&ctx);
    let mut times = Vec::with_capacity(frames);
    for frame in 0..WARMUP_FRAMES + frames {
        let started = thread_cpu();
        let output = ctx.run_ui(input(frame), |ui| {
            egui::CentralPanel::default().show(ui, |ui| draw(ui));
        });
        let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
        std::hint::black_box(primitives);
        if frame >= WARMUP_FRAMES {
            times.push(thread_cpu().saturating_sub(started));
        }
    }
    times.sort_unstable();
    let at = |quantile: f64| {
        let index = ((times.len() as f64 * quantile).ceil() as usize).clamp(1, times.len()) - 1;
        times[index]
    };
    (at(0.50), at(0.95))
}

fn fleet_rows() -> Vec<FleetRow> {
    (0..AGENTS)
        .map(|index| FleetRow {
            agent: AgentId::from_u128(index as u128 + 1),
            name: format!("pc-{index:04}"),
            status: match index % 3 {
                0 => Status::Online,
                1 => Status::Offline,
                _ => Status::Unknown,
            },
            last_seen_ms: (index % 3 != 2).then_some(NOW_MS - (index as i64 * 7_919) % DAY_MS),
            address: Some(format!("10.0.{}.{}:47100", index / 250, index % 250 + 1)),
            user: Some(format!("user{index}")),
            current_app: (index % 3 == 0).then(|| "Firefox".to_owned()),
            health: Some(match index % 10 {
                0 => HealthLevel::Critical,
                1 | 2 => HealthLevel::Warn,
                _ => HealthLevel::Ok,
            }),
            health_score: Some((index % 100) as u8),
            group: Some(format!("team-{}", index % 12)),
            demo: false,
            other_zone: None,
            last_error: None,
            fault: None,
        })
        .collect()
}

/// Every row laid out every frame: the baseline the virtualised table beats.
fn naive_fleet(ui: &mut egui::Ui, rows: &[FleetRow]) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        egui::Grid::new("naive_fleet").striped(true).show(ui, |ui| {
            for row in rows {
                ui.label(console::ui::status_text(Lang::Fr, row.status));
                let _ = ui.link(&row.name);
                ui.label(console::ui::ago_text(Lang::Fr, NOW_MS, row.last_seen_ms));
                ui.label(row.address.as_deref().unwrap_or("—"));
                ui.label(row.user.as_deref().unwrap_or("—"));
                ui.label(row.current_app.as_deref().unwrap_or("—"));
                ui.label(console::ui::level_text(Lang::Fr, row.health));
                ui.label(row.group.as_deref().unwrap_or(""));
                ui.end_row();
            }
        });
    });
}

/// 30 days at 1 Hz of a wavy CPU/memory/disk load.
fn raw_series(days: i64) -> [Vec<SeriesPoint>; 3] {
    let samples = days * DAY_MS / 1_000;
    let series = |phase: f32, base: f32| {
        (0..samples)
            .map(|second| {
                let value = base + 30.0 * ((second as f32 / 3_600.0) + phase).sin().abs();
                SeriesPoint {
                    at_ms: NOW_MS - (samples - second) * 1_000,
                    value: value.min(100.0),
                }
            })
            .collect::<Vec<_>>()
    };
    [series(0.0, 10.0), series(1.0, 40.0), series(2.0, 60.0)]
}

fn raw_plot(points: &[SeriesPoint]) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|point| {
            [
                (point.at_ms - NOW_MS) as f64 / 3_600_000.0,
                f64::from(point.value),
            ]
        })
        .collect()
}

fn charts(series: [Vec<[f64; 2]>; 3], raw_samples: usize) -> HealthCharts {
    let [cpu_pct, mem_pct, disk_pct] = series;
    HealthCharts {
        origin_ms: NOW_MS,
        cpu_pct,
        mem_pct,
        disk_pct,
        score: Vec::new(),
        raw_samples,
        current: None,
        worst_level_24h: None,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    numerator.as_secs_f64() / denominator.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn frames_arg() -> Result<usize, String> {
    let mut args = std::env::args().skip(1);
    let mut frames = DEFAULT_FRAMES;
    while let Some(arg) = args.next() {
        if arg == "--frames" {
            frames = args
                .next()
                .ok_or("--frames needs a number")?
                .parse()
                .map_err(|error| format!("--frames: {error}"))?;
        }
        // `cargo bench` passes `--bench`; other flags do not apply.
    }
    Ok(frames.max(1))
}

fn main() -> Result<(), String> {
    // `cargo nextest --all-targets` lists every target with `--list`: a
    // bench binary holds no tests, so it lists none.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let frames = frames_arg()?;
    let rows = fleet_rows();
    let visible: Vec<usize> = (0..rows.len()).collect();
    let query = FleetQuery::default();
    let mut actions: Vec<Action> = Vec::new();
    let virtualised = measure(frames, |ui| {
        fleet_table(
            ui,
            &FleetTable {
                lang: Lang::Fr,
                now_ms: NOW_MS,
                query: &query,
                rows: &rows,
                visible: &visible,
                show_current_app: true,
                site_zone: "Europe/Paris",
            },
            &mut actions,
        );
    });
    let naive = measure(frames.min(100), |ui| naive_fleet(ui, &rows));

    let raw = raw_series(30);
    let raw_samples = raw[0].len();
    let decimated = charts(
        [
            decimated_plot(&raw[0], NOW_MS),
            decimated_plot(&raw[1], NOW_MS),
            decimated_plot(&raw[2], NOW_MS),
        ],
        raw_samples,
    );
    let full = charts(
        [raw_plot(&raw[0]), raw_plot(&raw[1]), raw_plot(&raw[2])],
        raw_samples,
    );
    let decimated_times = measure(frames, |ui| {
        health_chart(ui, "bench_chart", Lang::Fr, &DayClock::utc(), &decimated);
    });
    let raw_times = measure(RAW_CHART_FRAMES, |ui| {
        health_chart(ui, "bench_chart", Lang::Fr, &DayClock::utc(), &full);
    });

    println!(
        "GUI frame CPU (run_ui + tessellate, 1600x1000, thread CPU clock, {frames} frames; \
         baselines fewer)"
    );
    println!("{:<44} {:>9} {:>9}", "case", "p50 ms", "p95 ms");
    let cases = [
        (
            format!("fleet {AGENTS} agents, virtualised table"),
            virtualised,
        ),
        (
            format!("fleet {AGENTS} agents, naive per-row layout"),
            naive,
        ),
        (
            format!(
                "health 30 d, decimated ({} pts/series)",
                decimated.cpu_pct.len()
            ),
            decimated_times,
        ),
        (
            format!("health 30 d, raw 1 Hz ({raw_samples} pts/series)"),
            raw_times,
        ),
    ];
    for (name, (p50, p95)) in &cases {
        println!("{name:<44} {:>9.3} {:>9.3}", ms(*p50), ms(*p95));
    }
    println!(
        "fleet: virtualised p95 is {:.1}x faster than the naive layout (target p95 <= 3 ms: {})",
        ratio(naive.1, virtualised.1),
        if ms(virtualised.1) <= 3.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "chart: decimated p95 is {:.1}x faster than raw points (target p95 <= 6 ms: {})",
        ratio(raw_times.1, decimated_times.1),
        if ms(decimated_times.1) <= 6.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
