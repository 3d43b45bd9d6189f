//! The site's time zone end to end: a real demo agent living in Paris
//! hours, a console started with `TZ=Europe/Paris`, and the exported
//! attendance, whose arrivals read about 8:00 with `+01:00` in winter and
//! `+02:00` in summer, on both sides of the last change of offset.

use std::process::Command;

use harness::{run_ok, Agent, Site};
use jiff::tz::TimeZone;
use jiff::Timestamp;

const ZONE: &str = "Europe/Paris";

/// Days of history reaching three days before Paris last changed its
/// offset (at most ~160: changes are five to seven months apart).
fn history_days_across_the_last_change(now: Timestamp) -> i64 {
    let paris = TimeZone::get(ZONE).expect("zone");
    let change = paris
        .preceding(now)
        .next()
        .expect("Paris has changed its offset before")
        .timestamp();
    (now.as_second() - change.as_second()) / 86_400 + 4
}

#[test]
fn attendance_exported_by_a_paris_console_reads_local_arrivals_with_offsets() {
    let site = Site::create();
    let now = Timestamp::now();
    let days = history_days_across_the_last_change(now);
    let data = site.add_agent("pc-paris");
    let mut launcher = Command::new(harness::bin("smarttracker-agent"));
    launcher.env("TZ", ZONE);
    let mut agent = Agent::start_with(
        launcher,
        &data,
        "127.0.0.1:0",
        &[
            "--no-mdns",
            "--demo-history-days",
            &days.to_string(),
            "--demo-seed",
            "4",
        ],
    );
    agent.wait_live();
    let addr = agent.addr();
    // Kept as long as the history goes back (the default is 30 days).
    std::fs::create_dir_all(site.console_data()).expect("console data");
    std::fs::write(
        site.console_data().join("console.toml"),
        "[retention]\nusage_days = 365\nsessions_days = 365\n",
    )
    .expect("console.toml");
    let console = |args: &[&str]| {
        let mut command = site.console(args);
        command.env("TZ", ZONE);
        command
    };
    let mut sync = console(&["sync", "--once", "--no-mdns", "--peer", &addr.to_string()]);
    let synced = String::from_utf8_lossy(&run_ok(&mut sync).stdout).into_owned();
    assert!(synced.contains("synced "), "{synced}");

    let from = now
        .to_zoned(TimeZone::get(ZONE).expect("zone"))
        .date()
        .checked_sub(jiff::Span::new().days(days))
        .expect("a date")
        .to_string();
    let exported = run_ok(&mut console(&["export", "attendance", "--from", &from]));
    let csv = String::from_utf8_lossy(&exported.stdout).into_owned();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|column| *column == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (arrival, arrival_ms, day) = (column("arrival"), column("arrival_ms"), column("day"));
    let mut offsets = std::collections::BTreeSet::new();
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells[day] == from {
            // The history starts at this time of that day.
            continue;
        }
        let local = cells[arrival];
        // 2026-10-23T08:12:05+02:00
        assert_eq!(local.len(), 25, "{line}");
        assert_eq!(
            &local[..10],
            cells[day],
            "the arrival is on its local day: {line}"
        );
        let minutes: u32 = local[11..13].parse::<u32>().expect("hour") * 60
            + local[14..16].parse::<u32>().expect("minute");
        assert!(
            (7 * 60 + 20..=8 * 60 + 40).contains(&minutes),
            "arrival at Paris 8:00 give or take 40 min: {line}"
        );
        let offset = &local[19..];
        let exact: i64 = cells[arrival_ms].parse().expect("arrival_ms");
        let parsed: Timestamp = local.parse().expect("ISO 8601 with offset");
        assert_eq!(parsed.as_millisecond() / 1000, exact / 1000, "{line}");
        let offset_secs = TimeZone::get(ZONE)
            .expect("zone")
            .to_offset(parsed)
            .seconds();
        let expected = format!("+{:02}:00", offset_secs / 3600);
        assert_eq!(offset, expected, "{line}");
        offsets.insert(offset.to_owned());
        rows += 1;
    }
    assert!(rows >= 5, "{rows} attendance rows in {days} days:\n{csv}");
    assert_eq!(
        offsets.into_iter().collect::<Vec<_>>(),
        ["+01:00", "+02:00"],
        "arrivals on both sides of the change"
    );
    agent.stop();
}
