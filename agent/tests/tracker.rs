//! Table-driven tests of the pure tracker core with injected time: merging,
//! idle, locks, midnight, suspend gaps and clock steps.

use agent::tracker::{AppSample, Now, Tracker, TrackerConfig};
use protocol::{Presence, Record, SessionEventKind};

/// 2026-03-02 23:50:00 UTC, ten minutes before midnight.
const T0_MS: i64 = 1_772_495_400_000;

#[derive(Debug, Clone)]
enum Step {
    Window(Option<&'static str>),
    Idle { idle_ms: u64, locked: bool },
    Tick,
    SignedIn(bool),
    Shutdown,
}

/// One step at steady time `at_ms` after start, with the wall clock at
/// `T0_MS + at_ms + wall_offset_ms`.
#[derive(Debug, Clone)]
struct At {
    at_ms: u64,
    wall_offset_ms: i64,
    step: Step,
}

fn at(at_ms: u64, step: Step) -> At {
    At {
        at_ms,
        wall_offset_ms: 0,
        step,
    }
}

fn app(name: &str) -> AppSample {
    AppSample {
        app: name.to_owned(),
        raw_app: name.to_lowercase(),
        title: None,
    }
}

fn run(config: TrackerConfig, steps: &[At]) -> Vec<Record> {
    let now = |at_ms: u64, wall_offset_ms: i64| Now {
        wall_ms: T0_MS + i64::try_from(at_ms).expect("small") + wall_offset_ms,
        steady_ms: 1_000_000 + at_ms,
    };
    let mut tracker = Tracker::new(config, "ana", now(0, 0));
    let mut records = Vec::new();
    for step in steps {
        let now = now(step.at_ms, step.wall_offset_ms);
        match &step.step {
            Step::Window(name) => tracker.handle_window(now, name.map(app)),
            Step::Idle { idle_ms, locked } => tracker.handle_idle(now, *idle_ms, *locked),
            Step::Tick => tracker.handle_tick(now),
            Step::SignedIn(signed_in) => tracker.handle_signed_in(now, *signed_in),
            Step::Shutdown => tracker.shutdown(now),
        }
        while let Some(record) = tracker.poll_record() {
            records.push(record);
        }
    }
    records
}

/// Compact view of a record: what a reader of the test checks.
fn describe(record: &Record) -> String {
    let rel = |ms: i64| (ms - T0_MS) / 1000;
    match record {
        Record::Usage(span) => format!(
            "usage {} {}..{}",
            span.app,
            rel(span.start_ms),
            rel(span.end_ms)
        ),
        Record::Activity(span) => format!(
            "{:?} {}..{}",
            span.presence,
            rel(span.start_ms),
            rel(span.end_ms)
        ),
        Record::Session(event) => match event.kind {
            SessionEventKind::Suspended { gap_ms } => {
                format!("suspended {} gap {}", rel(event.at_ms), gap_ms / 1000)
            }
            SessionEventKind::ClockJump { delta_ms } => {
                format!("clock-jump {} by {}", rel(event.at_ms), delta_ms / 1000)
            }
            ref kind => format!("{kind:?} {}", rel(event.at_ms)),
        },
        other => format!("{other:?}"),
    }
}

fn config() -> TrackerConfig {
    TrackerConfig {
        idle_threshold_ms: 60_000,
        pulse_ms: 5_000,
        clock_tolerance_ms: 2_000,
        max_span_ms: 3_600_000,
    }
}

/// Window samples every second from `from_s` to `to_s` inclusive.
fn polls(from_s: u64, to_s: u64, name: Option<&'static str>) -> Vec<At> {
    (from_s..=to_s)
        .map(|s| at(s * 1000, Step::Window(name)))
        .collect()
}

fn with_shutdown(mut steps: Vec<At>, at_ms: u64) -> Vec<At> {
    steps.sort_by_key(|step| step.at_ms);
    steps.push(at(at_ms, Step::Shutdown));
    steps
}

struct Case {
    name: &'static str,
    config: TrackerConfig,
    steps: Vec<At>,
    expected: Vec<&'static str>,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // Identical consecutive samples merge into one span; a switch closes it.
    let mut steps = polls(0, 10, Some("Firefox"));
    steps.extend(polls(11, 20, Some("Terminal")));
    cases.push(Case {
        name: "heartbeat merge and switch",
        config: config(),
        steps: with_shutdown(steps, 20_000),
        expected: vec![
            "AgentStart 0",
            "usage Firefox 0..11",
            "usage Terminal 11..20",
            "Active 0..20",
            "AgentStop 20",
        ],
    });

    // Idle: usage stops at the last input, idle is its own span, input resumes.
    let mut steps = polls(0, 110, Some("Firefox"));
    steps.push(at(
        70_000,
        Step::Idle {
            idle_ms: 65_000,
            locked: false,
        },
    ));
    steps.push(at(
        100_000,
        Step::Idle {
            idle_ms: 0,
            locked: false,
        },
    ));
    cases.push(Case {
        name: "idle after threshold",
        config: config(),
        steps: with_shutdown(steps, 110_000),
        expected: vec![
            "AgentStart 0",
            "usage Firefox 0..5",
            "Active 0..5",
            "Idle 5..100",
            "usage Firefox 100..110",
            "Active 100..110",
            "AgentStop 110",
        ],
    });

    // Lock counts as away: lock/unlock events and a Locked span.
    let mut steps = polls(0, 30, Some("Slack"));
    steps.push(at(
        10_000,
        Step::Idle {
            idle_ms: 0,
            locked: true,
        },
    ));
    steps.push(at(
        20_000,
        Step::Idle {
            idle_ms: 0,
            locked: false,
        },
    ));
    cases.push(Case {
        name: "lock and unlock",
        config: config(),
        steps: with_shutdown(steps, 30_000),
        expected: vec![
            "AgentStart 0",
            "Lock 10",
            "usage Slack 0..10",
            "Active 0..10",
            "Unlock 20",
            "Locked 10..20",
            "usage Slack 20..30",
            "Active 20..30",
            "AgentStop 30",
        ],
    });

    // Midnight is at T0 + 600 s. Spans are cut at max_span, so a day
    // boundary always falls inside a bounded span the console splits.
    cases.push(Case {
        name: "midnight crossing, split at max span",
        config: TrackerConfig {
            max_span_ms: 300_000,
            ..config()
        },
        steps: with_shutdown(polls(0, 900, Some("Visual Studio Code")), 900_000),
        expected: vec![
            "AgentStart 0",
            "usage Visual Studio Code 0..300",
            "Active 0..300",
            "usage Visual Studio Code 300..600",
            "Active 300..600",
            "usage Visual Studio Code 600..900",
            "Active 600..900",
            "AgentStop 900",
        ],
    });

    // Suspend: the steady clock jumps 1 h between samples; the gap is no
    // presence at all and spans resume after.
    let mut steps = polls(0, 10, Some("Firefox"));
    steps.extend(polls(3610, 3620, Some("Firefox")));
    cases.push(Case {
        name: "suspend gap",
        config: config(),
        steps: with_shutdown(steps, 3_620_000),
        expected: vec![
            "AgentStart 0",
            "usage Firefox 0..10",
            "Active 0..10",
            "suspended 10 gap 3600",
            "usage Firefox 3610..3620",
            "Active 3610..3620",
            "AgentStop 3620",
        ],
    });

    // Clock stepped back one hour (NTP, manual change): spans close on the
    // old clock, a jump is recorded, spans reopen on the new clock.
    let mut steps = polls(0, 10, Some("Firefox"));
    steps.extend((11..=20).map(|s| At {
        at_ms: s * 1000,
        wall_offset_ms: -3_600_000,
        step: Step::Window(Some("Firefox")),
    }));
    steps.push(At {
        at_ms: 20_000,
        wall_offset_ms: -3_600_000,
        step: Step::Shutdown,
    });
    cases.push(Case {
        name: "clock step back",
        config: config(),
        steps,
        expected: vec![
            "AgentStart 0",
            "usage Firefox 0..11",
            "Active 0..11",
            "clock-jump -3589 by -3600",
            "usage Firefox -3589..-3580",
            "Active -3589..-3580",
            "AgentStop -3580",
        ],
    });

    // Logged out from 10 s to 30 s: the machine stays on, samples keep
    // coming, but nothing is present (not even idle) until the next login.
    let mut steps = polls(0, 40, Some("Firefox"));
    steps.push(at(10_000, Step::SignedIn(false)));
    steps.push(at(
        20_000,
        Step::Idle {
            idle_ms: 600_000,
            locked: false,
        },
    ));
    steps.push(at(30_000, Step::SignedIn(true)));
    cases.push(Case {
        name: "signed out overnight",
        config: config(),
        steps: with_shutdown(steps, 40_000),
        expected: vec![
            "AgentStart 0",
            "usage Firefox 0..10",
            "Active 0..10",
            "usage Firefox 30..40",
            "Active 30..40",
            "AgentStop 40",
        ],
    });

    // No window at all: presence only, no usage.
    cases.push(Case {
        name: "no activity",
        config: config(),
        steps: with_shutdown(polls(0, 5, None), 5_000),
        expected: vec!["AgentStart 0", "Active 0..5", "AgentStop 5"],
    });

    // Idle the whole time: the first reading finds the user already idle.
    cases.push(Case {
        name: "idle only",
        config: config(),
        steps: with_shutdown(
            vec![
                at(0, Step::Window(Some("Firefox"))),
                at(
                    5_000,
                    Step::Idle {
                        idle_ms: 600_000,
                        locked: false,
                    },
                ),
                at(10_000, Step::Tick),
            ],
            10_000,
        ),
        expected: vec!["AgentStart 0", "Idle 0..10", "AgentStop 10"],
    });
    cases
}

#[test]
fn tracker_cases() {
    let mut failures = Vec::new();
    for case in cases() {
        // Records are compared as a set: usage spans are held back until
        // idle can no longer trim them, so their order among other records
        // is not part of the contract.
        let mut got: Vec<String> = run(case.config, &case.steps).iter().map(describe).collect();
        got.sort_unstable();
        let mut expected: Vec<String> = case.expected.iter().map(|s| s.to_string()).collect();
        expected.sort_unstable();
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {:?}\n  got      {:?}",
                case.name, case.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn usage_never_overlaps_and_never_exceeds_active_time() {
    // 300 s blocks alternate between typing and no input at all; the idle
    // sensor is read every 5 s and reports the real time since last input.
    let mut steps = Vec::new();
    for s in 0..2000u64 {
        let name = ["Firefox", "Terminal", "Slack"][usize::try_from((s / 37) % 3).expect("small")];
        steps.push(at(s * 1000, Step::Window(Some(name))));
        if s % 5 == 0 {
            let idle_ms = if (s / 300) % 2 == 1 {
                (s % 300) * 1000
            } else {
                0
            };
            steps.push(at(
                s * 1000,
                Step::Idle {
                    idle_ms,
                    locked: false,
                },
            ));
        }
    }
    let records = run(
        TrackerConfig {
            max_span_ms: 120_000,
            ..config()
        },
        &with_shutdown(steps, 2_000_000),
    );
    let mut usage: Vec<(i64, i64)> = records
        .iter()
        .filter_map(|record| match record {
            Record::Usage(span) => Some((span.start_ms, span.end_ms)),
            _ => None,
        })
        .collect();
    usage.sort_unstable();
    for pair in usage.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap {pair:?}");
    }
    let usage_ms: i64 = usage.iter().map(|(start, end)| end - start).sum();
    let active_ms: i64 = records
        .iter()
        .filter_map(|record| match record {
            Record::Activity(span) if span.presence == Presence::Active => {
                Some(span.end_ms - span.start_ms)
            }
            _ => None,
        })
        .sum();
    // A window is in front the whole time, so usage is exactly the active
    // time: idle (backdated to the last input) never counts as usage.
    assert_eq!(usage_ms, active_ms);
    // Idle is noticed 60 s into each quiet block and backdated to its
    // start, so active time is exactly the typing blocks.
    assert_eq!(active_ms, (300 + 300 + 300 + 200) * 1000);
}
