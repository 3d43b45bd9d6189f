//! The agent's recorder on a real X server: real windows focused for known
//! times give usage spans of the right app and the right length (within a
//! second), and no input past the idle threshold gives an idle span that
//! starts at the last input.

#[path = "support/xvfb.rs"]
mod xvfb;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use agent::clock;
use agent::health::SysinfoHealth;
use agent::recorder::{DesktopSource, Recorder};
use agent::sensors::session::UtmpSessions;
use agent::sensors::x11::X11Sensors;
use agent::store::{Quotas, Store};
use protocol::{Cursor, Policy, Presence, Record, StreamKind, UnixMillis};
use xvfb::{spawn_named, WindowSpec, Xvfb};

/// Steps the recorder with the real clock every 100 ms for `secs`.
fn record_for(recorder: &mut Recorder, source: &mut DesktopSource, secs: f64) {
    let steps = (secs * 10.0).round() as u32;
    for _ in 0..steps {
        recorder.step(clock::now(), source);
        thread::sleep(Duration::from_millis(100));
    }
}

fn all_records(store: &Store, stream: StreamKind) -> Vec<Record> {
    store.flush().expect("flush");
    let batch = store
        .pull(
            stream,
            Cursor {
                epoch: store.epoch(),
                seq: 0,
            },
            4096,
        )
        .expect("pull");
    batch
        .records
        .into_iter()
        .map(|record| record.record)
        .collect()
}

fn source(xvfb: &Xvfb) -> DesktopSource {
    DesktopSource {
        x11: X11Sensors::connect(Some(xvfb.display())).expect("connect"),
        health: SysinfoHealth::default(),
        sessions: UtmpSessions::system(),
    }
}

#[test]
fn focused_windows_become_usage_spans_of_the_right_length() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let _openbox = xvfb.start_openbox(dir.path());
    let firefox = spawn_named(dir.path(), "firefox-esr", &[]);
    let code = spawn_named(dir.path(), "code", &[]);
    let x = xvfb.connect();
    let spec = |instance, class, pid| WindowSpec {
        instance,
        class,
        pid: Some(pid),
        net_title: Some("Secret document"),
        legacy_title: None,
    };
    let firefox_window = x.create_window(&spec("Navigator", "firefox-esr", firefox.pid()), 0, 0);
    let code_window = x.create_window(&spec("code", "Code", code.pid()), 300, 0);
    x.wait_viewable(firefox_window);
    x.wait_viewable(code_window);
    let activate = |window: u32| {
        xvfb.activate(&x, window);
        clock::wall_now_ms()
    };

    let store = Arc::new(Store::open(&dir.path().join("store"), Quotas::default()).expect("store"));
    let mut source = source(&xvfb);
    let mut recorder = Recorder::new(store.clone(), Policy::default(), "tester", clock::now());
    let mut switches: Vec<(&str, UnixMillis)> = Vec::new();
    for (app, window, secs) in [
        ("Firefox", firefox_window, 3.0),
        ("Visual Studio Code", code_window, 2.0),
        ("Firefox", firefox_window, 2.5),
    ] {
        switches.push((app, activate(window)));
        record_for(&mut recorder, &mut source, secs);
    }
    let end_ms = clock::wall_now_ms();
    recorder.finish(clock::now());

    let spans: Vec<_> = all_records(&store, StreamKind::Usage)
        .into_iter()
        .filter_map(|record| match record {
            Record::Usage(span) => Some(span),
            _ => None,
        })
        .collect();
    let got: Vec<&str> = spans.iter().map(|span| span.app.as_str()).collect();
    assert_eq!(
        got,
        ["Firefox", "Visual Studio Code", "Firefox"],
        "{spans:#?}"
    );
    for (index, span) in spans.iter().enumerate() {
        let expected_start_ms = switches[index].1;
        let expected_end_ms = switches.get(index + 1).map_or(end_ms, |next| next.1);
        let expected_ms = expected_end_ms - expected_start_ms;
        let got_ms = span.end_ms - span.start_ms;
        assert!(
            (got_ms - expected_ms).abs() <= 1000,
            "{}: recorded {got_ms} ms, focused {expected_ms} ms",
            span.app
        );
        // Titles are off by default: never read, never stored.
        assert_eq!(span.title, None);
    }
    assert_eq!(spans[0].raw_app, "firefox-esr");
    assert_eq!(spans[1].raw_app, "code");
}

#[test]
fn no_input_past_the_threshold_is_idle_from_the_last_input() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("store"), Quotas::default()).expect("store"));
    let mut source = source(&xvfb);
    // Consoles may not set less than 30 s; the tracker itself takes any.
    let policy = Policy {
        idle_threshold_secs: 2,
        ..Policy::default()
    };
    xvfb.xdotool(&["mousemove", "10", "10"]);
    let last_input_ms = clock::wall_now_ms();
    let mut recorder = Recorder::new(store.clone(), policy, "tester", clock::now());
    // The idle sensor is read every 5 s while active: the read at 5 s finds
    // 5 s without input; once idle it is read every second.
    record_for(&mut recorder, &mut source, 6.0);
    // Input comes back and goes on: a move every 200 ms for 3 s.
    let input_again_ms = clock::wall_now_ms();
    for step in 0..15u32 {
        let position = (20 + step * 10).to_string();
        xvfb.xdotool(&["mousemove", &position, &position]);
        record_for(&mut recorder, &mut source, 0.2);
    }
    recorder.finish(clock::now());

    let idle: Vec<_> = all_records(&store, StreamKind::Sessions)
        .into_iter()
        .filter_map(|record| match record {
            Record::Activity(span) if span.presence == Presence::Idle => Some(span),
            _ => None,
        })
        .collect();
    assert_eq!(idle.len(), 1, "{idle:#?}");
    assert!(
        (idle[0].start_ms - last_input_ms).abs() <= 1000,
        "idle starts at the last input: {} vs {last_input_ms}",
        idle[0].start_ms
    );
    assert!(
        (idle[0].end_ms - input_again_ms).abs() <= 1000,
        "idle ends when input returns: {} vs {input_again_ms}",
        idle[0].end_ms
    );
}
