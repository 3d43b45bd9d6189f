//! Demo source: a clearly labelled simulated workstation. Seeded and pure, it
//! plans a plausible working day (arrival, apps, meetings, breaks, idle gaps,
//! lunch, departure, health) and answers the sensor traits from that plan.
//!
//! Agents running on it say so everywhere: the hello reply, `status`, and
//! the store, which refuses to mix demo and real data.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use protocol::{DiskUsage, ProcessUsage, UnixMillis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::health::{HealthSensor, Reading};
use crate::sensors::session::{SessionSensor, UserSession};
use crate::sensors::{IdleReading, IdleSensor, SensorError, WindowSample, WindowSensor};

/// The simulated employee's login name.
pub const DEMO_USER: &str = "demo";

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Raw process names and how often a demo employee uses them (weights).
/// Raw names go through the same normalisation as real ones.
const APPS: &[(&str, u32)] = &[
    ("firefox-esr", 22),
    ("code", 18),
    ("soffice.bin", 10),
    ("thunderbird", 9),
    ("slack", 8),
    ("gnome-terminal-server", 7),
    ("teams-for-linux", 6),
    ("evince", 4),
    ("nautilus", 4),
    ("gimp-2.10", 3),
    ("spotify", 3),
    ("keepassxc", 2),
    ("discord", 2),
    ("vlc", 1),
    ("dbeaver", 1),
];

/// What the simulated person does during one stretch of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Using an application (raw process name).
    Using(&'static str),
    /// At the desk but not touching anything (reading, phone call).
    Idle,
    /// Screen locked (lunch, meeting room).
    Locked,
}

/// One planned stretch, `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stretch {
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    pub activity: Activity,
}

/// The plan of one simulated day; empty on weekends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    pub stretches: Vec<Stretch>,
}

impl DayPlan {
    /// Plans the UTC day starting at `day_start_ms` for the workstation
    /// with `seed`. Same inputs, same plan.
    pub fn new(seed: u64, day_start_ms: UnixMillis) -> Self {
        DayPlan::in_zone(seed, &TimeZone::UTC, day_start_ms)
    }

    /// Plans the day of `zone` that `at_ms` falls on: arrival about 8:00,
    /// lunch about 12:00, departure about 17:00 on that zone's wall clock,
    /// whatever its offset that day. Same inputs, same plan.
    pub fn in_zone(seed: u64, zone: &TimeZone, at_ms: UnixMillis) -> Self {
        let date = timestamp(at_ms).to_zoned(zone.clone()).date();
        if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
            return DayPlan {
                stretches: Vec::new(),
            };
        }
        // Days since 1970-01-01 of the civil date: the same seed wherever
        // the workstation is.
        let day_index = date
            .since(jiff::civil::date(1970, 1, 1))
            .map_or(0, |span| i64::from(span.get_days()));
        // The instant the wall clock reads `minutes` after midnight.
        let local = |minutes: i64| {
            date.at(0, 0, 0, 0)
                .checked_add(jiff::Span::new().minutes(minutes))
                .ok()
                .and_then(|datetime| zone.to_ambiguous_timestamp(datetime).compatible().ok())
                .map_or(at_ms, |at| at.as_millisecond())
        };
        let mut rng = StdRng::seed_from_u64(seed ^ (day_index as u64).wrapping_mul(0x9e37_79b9));
        let arrive_ms = local(8 * 60 + rng.gen_range(-40..40));
        let lunch_ms = local(12 * 60 + rng.gen_range(-20..30));
        let lunch_end_ms = lunch_ms + rng.gen_range(35..70) * MINUTE_MS;
        let leave_ms = local(17 * 60 + rng.gen_range(-30..90));

        let mut stretches = Vec::new();
        let mut at_ms = arrive_ms;
        while at_ms < leave_ms {
            if at_ms >= lunch_ms && at_ms < lunch_end_ms {
                stretches.push(Stretch {
                    start_ms: at_ms,
                    end_ms: lunch_end_ms,
                    activity: Activity::Locked,
                });
                at_ms = lunch_end_ms;
                continue;
            }
            let roll = rng.gen_range(0..100);
            let (activity, length_ms) = if roll < 8 {
                (Activity::Idle, rng.gen_range(4..20) * MINUTE_MS)
            } else if roll < 10 {
                (Activity::Locked, rng.gen_range(10..45) * MINUTE_MS)
            } else {
                (
                    Activity::Using(pick_app(&mut rng)),
                    rng.gen_range(1..25) * MINUTE_MS + rng.gen_range(0..60) * 1000,
                )
            };
            let end_ms = (at_ms + length_ms).min(leave_ms);
            let end_ms = if at_ms < lunch_ms {
                end_ms.min(lunch_ms)
            } else {
                end_ms
            };
            stretches.push(Stretch {
                start_ms: at_ms,
                end_ms,
                activity,
            });
            at_ms = end_ms;
        }
        DayPlan { stretches }
    }

    /// What the person does at `at_ms`; `None` when away from the desk.
    pub fn activity_at(&self, at_ms: UnixMillis) -> Option<&Stretch> {
        let index = self
            .stretches
            .partition_point(|stretch| stretch.end_ms <= at_ms);
        self.stretches
            .get(index)
            .filter(|stretch| stretch.start_ms <= at_ms)
    }
}

fn pick_app(rng: &mut StdRng) -> &'static str {
    let total: u32 = APPS.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.gen_range(0..total);
    for (name, weight) in APPS {
        if roll < *weight {
            return name;
        }
        roll -= weight;
    }
    APPS[0].0
}

/// `at_ms` as a jiff timestamp (clamped to the years jiff supports).
fn timestamp(at_ms: UnixMillis) -> Timestamp {
    let clamped_ms = at_ms.clamp(
        Timestamp::MIN.as_millisecond(),
        Timestamp::MAX.as_millisecond(),
    );
    Timestamp::from_millisecond(clamped_ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `[start, end)` of `zone`'s day that `at_ms` falls on (23 or 25 hours
/// when the clocks change).
fn local_day_ms(zone: &TimeZone, at_ms: UnixMillis) -> (UnixMillis, UnixMillis) {
    let day = timestamp(at_ms).to_zoned(zone.clone());
    let start = day
        .start_of_day()
        .map(|start| start.timestamp().as_millisecond());
    let end = day
        .tomorrow()
        .and_then(|next| next.start_of_day())
        .map(|end| end.timestamp().as_millisecond());
    match (start, end) {
        (Ok(start_ms), Ok(end_ms)) if start_ms <= at_ms && at_ms < end_ms => (start_ms, end_ms),
        _ => (
            at_ms - at_ms.rem_euclid(DAY_MS),
            at_ms - at_ms.rem_euclid(DAY_MS) + DAY_MS,
        ),
    }
}

/// A simulated workstation answering the sensor traits from its day plans.
#[derive(Debug)]
pub struct DemoWorkstation {
    seed: u64,
    /// The zone whose wall clock the simulated employee keeps.
    zone: TimeZone,
    /// The local day the plan is for, as `[start, end)` milliseconds.
    plan_day_ms: (UnixMillis, UnixMillis),
    plan: DayPlan,
    /// Simulated time the sensors answer for; the caller sets it.
    now_ms: UnixMillis,
    /// The OS users who take the seat in turn each day (at least one).
    users: Vec<String>,
}

impl DemoWorkstation {
    /// A workstation whose employee keeps UTC hours.
    pub fn new(seed: u64) -> Self {
        DemoWorkstation::in_zone(seed, TimeZone::UTC)
    }

    /// A workstation whose employee keeps `zone`'s hours (the agent's own
    /// zone when it runs).
    pub fn in_zone(seed: u64, zone: TimeZone) -> Self {
        DemoWorkstation {
            seed,
            zone,
            plan_day_ms: (UnixMillis::MAX, UnixMillis::MIN),
            plan: DayPlan {
                stretches: Vec::new(),
            },
            now_ms: 0,
            users: vec![DEMO_USER.to_owned()],
        }
    }

    /// The same workstation shared by `users` (a shared PC): each day the
    /// first signs in at arrival, and each next one takes the seat at an
    /// equal share of the day's stretches, the one before signing out. An
    /// empty list keeps the single demo user.
    pub fn with_users(mut self, users: &[String]) -> Self {
        if !users.is_empty() {
            self.users = users.to_vec();
        }
        self
    }

    /// Sets the simulated time the next sensor reads answer for.
    pub fn set_time(&mut self, now_ms: UnixMillis) {
        self.now_ms = now_ms;
        let (start_ms, end_ms) = self.plan_day_ms;
        if now_ms < start_ms || now_ms >= end_ms {
            self.plan = DayPlan::in_zone(self.seed, &self.zone, now_ms);
            self.plan_day_ms = local_day_ms(&self.zone, now_ms);
        }
    }

    /// Whether someone is at the (simulated) desk now.
    pub fn present(&self) -> bool {
        self.plan.activity_at(self.now_ms).is_some()
    }

    fn last_input_ms(&self) -> Option<UnixMillis> {
        let stretch = self.plan.activity_at(self.now_ms)?;
        match stretch.activity {
            // Typing and clicking within the last few seconds.
            Activity::Using(_) => Some(self.now_ms - (self.now_ms.rem_euclid(7_000))),
            Activity::Idle | Activity::Locked => Some(stretch.start_ms),
        }
    }
}

impl WindowSensor for DemoWorkstation {
    fn active_window(&mut self) -> Result<Option<WindowSample>, SensorError> {
        // While idle or locked the last app stays in front, as on a real desk.
        let index = self
            .plan
            .stretches
            .partition_point(|stretch| stretch.start_ms <= self.now_ms);
        let front = self.plan.stretches[..index]
            .iter()
            .rev()
            .find_map(|stretch| match stretch.activity {
                Activity::Using(name) => Some(name),
                _ => None,
            });
        Ok(front.map(|name| WindowSample {
            process_name: Some(name.to_owned()),
            wm_class: None,
            title: None,
        }))
    }
}

impl IdleSensor for DemoWorkstation {
    fn idle(&mut self) -> Result<IdleReading, SensorError> {
        let locked = matches!(
            self.plan
                .activity_at(self.now_ms)
                .map(|stretch| &stretch.activity),
            Some(Activity::Locked)
        );
        // Away from the desk (before arrival, after leaving): no input since
        // the day's last stretch, or a long time.
        let idle_ms = match self.last_input_ms() {
            Some(last_ms) => self.now_ms - last_ms,
            None => self
                .plan
                .stretches
                .iter()
                .rev()
                .find(|stretch| stretch.end_ms <= self.now_ms)
                .map_or(12 * HOUR_MS, |stretch| self.now_ms - stretch.end_ms),
        };
        Ok(IdleReading {
            idle_ms: u64::try_from(idle_ms).unwrap_or(0),
            locked,
        })
    }
}

impl SessionSensor for DemoWorkstation {
    /// One desktop session from arrival to departure, or with several
    /// users, one per share of the day's stretches.
    fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError> {
        let stretches = &self.plan.stretches;
        let (Some(first), Some(last)) = (stretches.first(), stretches.last()) else {
            return Ok(Vec::new());
        };
        if self.now_ms < first.start_ms || self.now_ms >= last.end_ms {
            return Ok(Vec::new());
        }
        let shares = self.users.len().clamp(1, stretches.len());
        let now_index = stretches.partition_point(|stretch| stretch.end_ms <= self.now_ms);
        let share = (now_index * shares / stretches.len()).min(shares - 1);
        let first_of_share = (0..stretches.len())
            .find(|index| index * shares / stretches.len() == share)
            .unwrap_or(0);
        Ok(vec![UserSession {
            user: self.users[share].clone(),
            line: ":0".to_owned(),
            host: None,
            login_ms: stretches[first_of_share].start_ms,
        }])
    }
}

impl HealthSensor for DemoWorkstation {
    fn read(&mut self, at_ms: UnixMillis) -> Reading {
        const GIB: u64 = 1 << 30;
        // Deterministic per minute so history and live views agree.
        let minute = at_ms.div_euclid(MINUTE_MS) as u64;
        let mut rng = StdRng::seed_from_u64(self.seed ^ minute.wrapping_mul(0x2545_f491));
        let busy = self.present();
        let cpu_pct: f32 = if busy {
            rng.gen_range(8.0..55.0) + if rng.gen_ratio(1, 40) { 40.0 } else { 0.0 }
        } else {
            rng.gen_range(1.0..6.0)
        };
        // A slowly filling disk, different per workstation.
        let disk_total_bytes = 256 * GIB;
        let disk_fill = 0.45 + (self.seed % 40) as f64 / 100.0;
        let disk_used_bytes =
            (disk_total_bytes as f64 * disk_fill) as u64 + ((minute % 1000) << 20);
        let mem_total_bytes = 16 * GIB;
        // Mostly comfortable, now and then (1 minute in 120) short of memory.
        let mem_used_bytes = if busy && rng.gen_ratio(1, 120) {
            rng.gen_range(14 * GIB..15 * GIB)
        } else if busy {
            rng.gen_range(5 * GIB..(11 * GIB + (self.seed % 2) * GIB))
        } else {
            rng.gen_range(2 * GIB..4 * GIB)
        };
        Reading {
            at_ms,
            cpu_pct: cpu_pct.min(100.0),
            mem_used_bytes,
            mem_total_bytes,
            swap_used_bytes: if mem_used_bytes > 13 * GIB { GIB } else { 0 },
            swap_total_bytes: 4 * GIB,
            disks: vec![DiskUsage {
                mount: "/".to_owned(),
                used_bytes: disk_used_bytes.min(disk_total_bytes),
                total_bytes: disk_total_bytes,
            }],
            uptime_secs: u64::try_from(at_ms.rem_euclid(DAY_MS) / 1000).unwrap_or(0) + 3600,
            load_avg: [cpu_pct / 25.0, cpu_pct / 30.0, cpu_pct / 35.0],
            top_processes: vec![ProcessUsage {
                name: "firefox-esr".to_owned(),
                cpu_pct: cpu_pct / 2.0,
                mem_bytes: mem_used_bytes / 4,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-03-02 00:00 UTC.
    const MONDAY_MS: i64 = 1_772_409_600_000;

    #[test]
    fn a_day_in_paris_keeps_paris_hours_across_the_spring_change() {
        let paris = TimeZone::get("Europe/Paris").expect("zone");
        // Friday 2026-03-27 (UTC+1) and Monday 2026-03-30 (UTC+2), noon UTC.
        for (noon_utc_ms, offset_ms) in [
            (1_774_612_800_000, HOUR_MS),
            (1_774_872_000_000, 2 * HOUR_MS),
        ] {
            for seed in 0..20 {
                let plan = DayPlan::in_zone(seed, &paris, noon_utc_ms);
                let first = plan.stretches.first().expect("a weekday");
                let local_midnight_ms = noon_utc_ms - 12 * HOUR_MS - offset_ms;
                let arrive_h = (first.start_ms - local_midnight_ms) as f64 / HOUR_MS as f64;
                assert!((7.3..8.7).contains(&arrive_h), "seed {seed}: {arrive_h}");
            }
        }
        // Saturday 2026-03-28 00:30 in Paris is Friday 23:30 UTC: a weekend
        // day for a Paris employee.
        assert!(DayPlan::in_zone(1, &paris, 1_774_654_200_000)
            .stretches
            .is_empty());
        let mut desk = DemoWorkstation::in_zone(1, paris);
        desk.set_time(1_774_654_200_000);
        assert!(!desk.present());
    }

    #[test]
    fn a_weekday_is_a_plausible_working_day() {
        for seed in 0..50 {
            let plan = DayPlan::new(seed, MONDAY_MS);
            let first = plan.stretches.first().expect("someone works on Monday");
            let last = plan.stretches.last().expect("non-empty");
            let arrive_h = (first.start_ms - MONDAY_MS) as f64 / HOUR_MS as f64;
            let leave_h = (last.end_ms - MONDAY_MS) as f64 / HOUR_MS as f64;
            assert!(
                (7.0..9.0).contains(&arrive_h),
                "seed {seed} arrives {arrive_h}"
            );
            assert!(
                (16.0..19.0).contains(&leave_h),
                "seed {seed} leaves {leave_h}"
            );
            for pair in plan.stretches.windows(2) {
                assert_eq!(pair[0].end_ms, pair[1].start_ms, "contiguous");
            }
            assert!(plan.stretches.iter().all(|s| s.end_ms > s.start_ms));
            let lunch = plan
                .stretches
                .iter()
                .any(|s| s.activity == Activity::Locked && s.end_ms - s.start_ms >= 35 * MINUTE_MS);
            assert!(lunch, "seed {seed} has a lunch break");
        }
    }

    #[test]
    fn weekends_are_empty_and_plans_are_deterministic() {
        let saturday_ms = MONDAY_MS + 5 * DAY_MS;
        assert!(DayPlan::new(1, saturday_ms).stretches.is_empty());
        assert!(DayPlan::new(1, saturday_ms + DAY_MS).stretches.is_empty());
        assert_eq!(DayPlan::new(7, MONDAY_MS), DayPlan::new(7, MONDAY_MS));
        assert_ne!(DayPlan::new(7, MONDAY_MS), DayPlan::new(8, MONDAY_MS));
    }

    #[test]
    fn sensors_follow_the_plan() {
        let mut desk = DemoWorkstation::new(3);
        desk.set_time(MONDAY_MS + 3 * HOUR_MS);
        assert!(!desk.present());
        assert!(desk.idle().expect("demo").idle_ms >= HOUR_MS as u64);
        let plan = DayPlan::new(3, MONDAY_MS);
        let using = plan
            .stretches
            .iter()
            .find(|s| matches!(s.activity, Activity::Using(_)))
            .expect("uses an app");
        desk.set_time(using.start_ms + 1000);
        let window = desk.active_window().expect("demo").expect("a window");
        let Activity::Using(name) = using.activity else {
            unreachable!("found above")
        };
        assert_eq!(window.process_name.as_deref(), Some(name));
        assert!(desk.idle().expect("demo").idle_ms < 7_000);
    }
}
