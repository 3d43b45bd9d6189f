//! Alerts: rules evaluated after every sync pass over what the store knows
//! of each workstation (pure: facts and time in, verdicts out), and the
//! alert book, which keeps one open alert per (rule, workstation) until it
//! clears, with hysteresis so a flapping value does not open and close it
//! again and again; alerts are acknowledged, and a (rule, workstation) is
//! muted for a while. The book is JSON in the store's settings tree under
//! [`ALERTS_KEY`]; openings and clearings are audited by the engine.

pub mod commands;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::analytics::{RecommendationRules, HOUR_MS, MINUTE_MS};
use crate::model::{AgentId, DayClock, HealthLevel, HealthPoint};
use crate::store::{ConsoleStore, StoreError};

/// Settings key of the alert book.
pub const ALERTS_KEY: &str = "alerts";

/// Serialises changes to the stored book (evaluations, acknowledgements,
/// mutes): the store is this process's alone.
static BOOK_WRITER: Mutex<()> = Mutex::new(());
/// Alerts kept in the book (the oldest cleared ones go first).
pub const MAX_ALERTS: usize = 2_000;
/// A cleared condition must stay clear this long before the alert closes.
pub const CLEAR_AFTER_MS: i64 = 5 * MINUTE_MS;
/// A disk alert clears only below its threshold minus this (percent).
pub const DISK_HYSTERESIS_PCT: f32 = 5.0;
/// An invalid-data fault keeps its alert open this long.
pub const INVALID_DATA_WINDOW_MS: i64 = HOUR_MS;
/// The longest mute.
pub const MAX_MUTE_MS: i64 = 30 * 24 * HOUR_MS;

/// The thresholds of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertRules {
    /// Health critical for at least this long opens an alert.
    pub health_critical_ms: i64,
    /// The fullest disk at least this full (percent).
    pub disk_full_pct: f32,
    /// Not seen for this long during working hours.
    pub not_seen_ms: i64,
    /// Working hours, after local midnight, on weekdays.
    pub work_hours_start_ms: i64,
    pub work_hours_end_ms: i64,
}

impl Default for AlertRules {
    fn default() -> Self {
        let recommended = RecommendationRules::default();
        AlertRules {
            health_critical_ms: 10 * MINUTE_MS,
            disk_full_pct: recommended.disk_full_pct,
            not_seen_ms: 4 * HOUR_MS,
            work_hours_start_ms: recommended.work_hours_start_ms,
            work_hours_end_ms: recommended.work_hours_end_ms,
        }
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Rule {
    HealthCritical,
    DiskFull,
    NotSeen,
    InvalidData,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::HealthCritical,
        Rule::DiskFull,
        Rule::NotSeen,
        Rule::InvalidData,
    ];

    /// Stable name for the CLI, the audit log and exports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::HealthCritical => "health-critical",
            Rule::DiskFull => "disk-full",
            Rule::NotSeen => "not-seen",
            Rule::InvalidData => "invalid-data",
        }
    }
}

/// What the store knows of one workstation, as the rules read it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFacts {
    pub agent: AgentId,
    /// When it last answered a sync; `None`: never.
    pub last_seen_ms: Option<i64>,
    /// When it was added to the inventory (a workstation never seen is
    /// "not seen" from then on).
    pub added_ms: i64,
    /// Its health points of the last hours, in time order.
    pub health: Vec<HealthPoint>,
    /// The last time it sent invalid data, if ever.
    pub last_invalid_ms: Option<i64>,
}

/// A rule's answer for one workstation now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The condition holds; `value` is what was measured (minutes, percent).
    Present { value: f64 },
    /// It does not.
    Absent,
    /// It cannot be told now (outside working hours, no data): nothing
    /// opens or clears.
    Hold,
}

/// Every rule's verdict for every workstation, in (agent, rule) order.
/// `is_open` says which alerts are open, for the hysteresis of disk alerts.
pub fn evaluate(
    rules: &AlertRules,
    facts: &[AgentFacts],
    now_ms: i64,
    clock: &DayClock,
    is_open: &dyn Fn(Rule, AgentId) -> bool,
) -> Vec<(AgentId, Rule, Verdict)> {
    let working = in_working_hours(rules, now_ms, clock);
    let mut verdicts = Vec::with_capacity(facts.len() * Rule::ALL.len());
    for agent in facts {
        for rule in Rule::ALL {
            let verdict = match rule {
                Rule::HealthCritical => health_critical(rules, agent, now_ms),
                Rule::DiskFull => {
                    disk_full(rules, agent, now_ms, is_open(Rule::DiskFull, agent.agent))
                }
                Rule::NotSeen => not_seen(rules, agent, now_ms, working),
                Rule::InvalidData => match agent.last_invalid_ms {
                    Some(at_ms) if now_ms - at_ms < INVALID_DATA_WINDOW_MS => Verdict::Present {
                        value: ((now_ms - at_ms) / MINUTE_MS) as f64,
                    },
                    _ => Verdict::Absent,
                },
            };
            verdicts.push((agent.agent, rule, verdict));
        }
    }
    verdicts
}

/// Whether `now_ms` is on a weekday within the working hours, local time.
fn in_working_hours(rules: &AlertRules, now_ms: i64, clock: &DayClock) -> bool {
    let day = clock.day_of(now_ms);
    if crate::analytics::weekday(day) >= 5 {
        return false;
    }
    let since_midnight_ms = now_ms - clock.day_start_ms(day);
    (rules.work_hours_start_ms..rules.work_hours_end_ms).contains(&since_midnight_ms)
}

/// Health samples older than this are not current.
const HEALTH_CURRENT_MS: i64 = 30 * MINUTE_MS;

fn health_critical(rules: &AlertRules, facts: &AgentFacts, now_ms: i64) -> Verdict {
    let Some(latest) = facts.health.last() else {
        return Verdict::Hold;
    };
    if now_ms - latest.at_ms > HEALTH_CURRENT_MS {
        return Verdict::Hold;
    }
    if latest.level != HealthLevel::Critical {
        return Verdict::Absent;
    }
    // Critical since the first sample of the current critical run.
    let since_ms = facts
        .health
        .iter()
        .rev()
        .take_while(|point| point.level == HealthLevel::Critical)
        .last()
        .map_or(latest.at_ms, |point| point.at_ms);
    let lasted_ms = now_ms - since_ms;
    if lasted_ms >= rules.health_critical_ms {
        Verdict::Present {
            value: (lasted_ms / MINUTE_MS) as f64,
        }
    } else {
        Verdict::Hold
    }
}

fn disk_full(rules: &AlertRules, facts: &AgentFacts, now_ms: i64, open: bool) -> Verdict {
    let Some(latest) = facts
        .health
        .last()
        .filter(|point| now_ms - point.at_ms <= HEALTH_CURRENT_MS)
    else {
        return Verdict::Hold;
    };
    let threshold = if open {
        rules.disk_full_pct - DISK_HYSTERESIS_PCT
    } else {
        rules.disk_full_pct
    };
    if latest.disk_pct >= threshold {
        Verdict::Present {
            value: f64::from(latest.disk_pct),
        }
    } else {
        Verdict::Absent
    }
}

fn not_seen(rules: &AlertRules, facts: &AgentFacts, now_ms: i64, working: bool) -> Verdict {
    let seen_ms = facts.last_seen_ms.unwrap_or(facts.added_ms);
    let unseen_ms = now_ms - seen_ms;
    if unseen_ms < rules.not_seen_ms {
        Verdict::Absent
    } else if working {
        Verdict::Present {
            value: (unseen_ms / HOUR_MS) as f64,
        }
    } else {
        // At night and on weekends a workstation may well be off.
        Verdict::Hold
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: u64,
    pub rule: Rule,
    pub agent: AgentId,
    pub opened_ms: i64,
    /// The measured value when opened, then the worst seen.
    pub value: f64,
    pub cleared_ms: Option<i64>,
    pub acked_ms: Option<i64>,
    /// Opened while its (rule, workstation) was muted: nobody is told.
    pub muted: bool,
    /// While open: since when the condition has been absent.
    absent_since_ms: Option<i64>,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.cleared_ms.is_none()
    }
}

/// What changed in one evaluation, for the audit log and notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Transition {
    Opened(Alert),
    Cleared(Alert),
}

/// Why an acknowledgement or a mute is refused, or the book not read.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("no alert #{0}: `alerts list --all` shows their numbers")]
    Unknown(u64),
    #[error("a mute lasts from 1 minute to 30 days")]
    BadMute,
    #[error("the alert book in the store does not read ({0}); it is left as it is")]
    Damaged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every alert, open and past, and the mutes in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBook {
    /// In id order.
    alerts: Vec<Alert>,
    next_id: u64,
    /// The (rule, workstation) pairs muted, and until when.
    mutes: Vec<Mute>,
}

/// A rule muted on one workstation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Mute {
    rule: Rule,
    agent: AgentId,
    until_ms: i64,
}

impl AlertBook {
    /// Every alert kept, in id order.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// The open alert of (rule, agent), if any.
    pub fn open(&self, rule: Rule, agent: AgentId) -> Option<&Alert> {
        self.alerts
            .iter()
            .rev()
            .find(|alert| alert.rule == rule && alert.agent == agent && alert.is_open())
    }

    /// The (rule, workstation) pairs with an open alert, for [`evaluate`].
    pub fn open_keys(&self) -> HashSet<(Rule, AgentId)> {
        self.alerts
            .iter()
            .filter(|alert| alert.is_open())
            .map(|alert| (alert.rule, alert.agent))
            .collect()
    }

    /// Open alerts nobody acknowledged and that are not muted: the bell.
    pub fn unread(&self) -> usize {
        self.alerts
            .iter()
            .filter(|alert| alert.is_open() && alert.acked_ms.is_none() && !alert.muted)
            .count()
    }

    /// Applies one evaluation's verdicts at `now_ms`: a present condition
    /// without an open alert opens one; an open alert whose condition has
    /// been absent for [`CLEAR_AFTER_MS`] clears; `Hold` changes nothing.
    /// Alerts of workstations no longer in `agents` clear at once.
    pub fn apply(
        &mut self,
        verdicts: &[(AgentId, Rule, Verdict)],
        agents: &[AgentId],
        now_ms: i64,
    ) -> Vec<Transition> {
        self.mutes.retain(|mute| mute.until_ms > now_ms);
        // Open alerts by (rule, workstation): one lookup per verdict.
        let mut open: HashMap<(Rule, AgentId), usize> = self
            .alerts
            .iter()
            .enumerate()
            .filter(|(_, alert)| alert.is_open())
            .map(|(index, alert)| ((alert.rule, alert.agent), index))
            .collect();
        let mut transitions = Vec::new();
        for (agent, rule, verdict) in verdicts {
            let open_index = open.get(&(*rule, *agent)).copied();
            match (verdict, open_index) {
                (Verdict::Present { value }, None) => {
                    let alert = Alert {
                        id: self.next_id.max(1),
                        rule: *rule,
                        agent: *agent,
                        opened_ms: now_ms,
                        value: *value,
                        cleared_ms: None,
                        acked_ms: None,
                        muted: self
                            .mutes
                            .iter()
                            .any(|mute| mute.rule == *rule && mute.agent == *agent),
                        absent_since_ms: None,
                    };
                    self.next_id = alert.id + 1;
                    open.insert((*rule, *agent), self.alerts.len());
                    self.alerts.push(alert.clone());
                    transitions.push(Transition::Opened(alert));
                }
                (Verdict::Present { value }, Some(index)) => {
                    let alert = &mut self.alerts[index];
                    alert.absent_since_ms = None;
                    alert.value = alert.value.max(*value);
                }
                (Verdict::Absent, Some(index)) => {
                    let alert = &mut self.alerts[index];
                    let since_ms = *alert.absent_since_ms.get_or_insert(now_ms);
                    if now_ms - since_ms >= CLEAR_AFTER_MS {
                        alert.cleared_ms = Some(now_ms);
                        transitions.push(Transition::Cleared(alert.clone()));
                        open.remove(&(*rule, *agent));
                    }
                }
                (Verdict::Absent | Verdict::Hold, None) | (Verdict::Hold, Some(_)) => {}
            }
        }
        let inventoried: HashSet<AgentId> = agents.iter().copied().collect();
        for alert in self
            .alerts
            .iter_mut()
            .filter(|alert| alert.is_open() && !inventoried.contains(&alert.agent))
        {
            alert.cleared_ms = Some(now_ms);
            transitions.push(Transition::Cleared(alert.clone()));
        }
        self.trim();
        transitions
    }

    /// Acknowledges alert `id` (it stays open until it clears).
    pub fn ack(&mut self, id: u64, now_ms: i64) -> Result<&Alert, AlertError> {
        let alert = self
            .alerts
            .iter_mut()
            .find(|alert| alert.id == id)
            .ok_or(AlertError::Unknown(id))?;
        alert.acked_ms.get_or_insert(now_ms);
        Ok(alert)
    }

    /// Mutes the rule and workstation of alert `id` for `for_ms`: alerts
    /// they open meanwhile tell nobody; the alert itself is muted too.
    pub fn mute(&mut self, id: u64, for_ms: i64, now_ms: i64) -> Result<&Alert, AlertError> {
        if !(MINUTE_MS..=MAX_MUTE_MS).contains(&for_ms) {
            return Err(AlertError::BadMute);
        }
        let alert = self
            .alerts
            .iter_mut()
            .find(|alert| alert.id == id)
            .ok_or(AlertError::Unknown(id))?;
        alert.muted = true;
        let (rule, agent) = (alert.rule, alert.agent);
        self.mutes
            .retain(|mute| !(mute.rule == rule && mute.agent == agent));
        self.mutes.push(Mute {
            rule,
            agent,
            until_ms: now_ms.saturating_add(for_ms),
        });
        Ok(alert)
    }

    /// Keeps at most [`MAX_ALERTS`], dropping the oldest cleared ones.
    fn trim(&mut self) {
        let mut excess = self.alerts.len().saturating_sub(MAX_ALERTS);
        self.alerts.retain(|alert| {
            if excess > 0 && !alert.is_open() {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Health samples read per workstation for the rules.
const FACTS_WINDOW_MS: i64 = 2 * HOUR_MS;

/// What the store knows of every inventoried workstation now. Blocking.
pub fn facts(store: &ConsoleStore, now_ms: i64) -> Result<Vec<AgentFacts>, StoreError> {
    let mut invalid: BTreeMap<AgentId, i64> = BTreeMap::new();
    for fault in store.faults(None)? {
        if fault.kind == crate::store::FaultKind::InvalidData {
            let last = invalid.entry(fault.agent).or_insert(fault.last_ms);
            *last = (*last).max(fault.last_ms);
        }
    }
    store
        .agents()?
        .into_iter()
        .map(|record| {
            Ok(AgentFacts {
                agent: record.agent,
                last_seen_ms: record.last_seen_ms,
                added_ms: record.added_ms,
                health: store.health_points(
                    record.agent,
                    now_ms - FACTS_WINDOW_MS,
                    now_ms + MINUTE_MS,
                )?,
                last_invalid_ms: invalid.get(&record.agent).copied(),
            })
        })
        .collect()
}

/// What one evaluation changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub transitions: Vec<Transition>,
    /// The bell's count afterwards.
    pub unread: usize,
    /// Inventory names of the workstations evaluated.
    names: BTreeMap<AgentId, String>,
}

impl Evaluated {
    /// The inventory name of `agent`, or its id once it left the inventory.
    pub fn name_of(&self, agent: AgentId) -> String {
        self.names
            .get(&agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    }
}

/// One evaluation: the rules over the store's facts, applied to the stored
/// book, which is saved; every opening and clearing is audited. Blocking.
pub fn run(
    store: &ConsoleStore,
    rules: &AlertRules,
    now_ms: i64,
    actor: &str,
) -> Result<Evaluated, AlertError> {
    let names = store
        .agents()?
        .into_iter()
        .map(|record| (record.agent, record.name))
        .collect();
    let facts = facts(store, now_ms)?;
    let _writer = BOOK_WRITER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut book = load(store)?;
    let before = book.clone();
    let open = book.open_keys();
    let verdicts = evaluate(rules, &facts, now_ms, &store.day_clock(), &|rule, agent| {
        open.contains(&(rule, agent))
    });
    let agents: Vec<AgentId> = facts.iter().map(|fact| fact.agent).collect();
    let transitions = book.apply(&verdicts, &agents, now_ms);
    // Also when only a condition's absence began: the clearing counts
    // from then.
    if book != before {
        save(store, &book)?;
    }
    for transition in &transitions {
        let (action, alert) = match transition {
            Transition::Opened(alert) => ("alert-open", alert),
            Transition::Cleared(alert) => ("alert-clear", alert),
        };
        store.audit(crate::store::AuditEntry {
            at_ms: now_ms,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: alert.agent.to_string(),
            detail: format!(
                "#{} {} ({}){}",
                alert.id,
                alert.rule.name(),
                alert.value,
                if alert.muted { ", muted" } else { "" }
            ),
        })?;
    }
    Ok(Evaluated {
        transitions,
        unread: book.unread(),
        names,
    })
}

/// The book as stored (empty when there is none yet).
pub fn load(store: &ConsoleStore) -> Result<AlertBook, AlertError> {
    match store.get_setting(ALERTS_KEY)? {
        None => Ok(AlertBook::default()),
        Some(value) => {
            serde_json::from_value(value).map_err(|error| AlertError::Damaged(error.to_string()))
        }
    }
}

/// Stores `book`.
pub fn save(store: &ConsoleStore, book: &AlertBook) -> Result<(), AlertError> {
    let value =
        serde_json::to_value(book).map_err(|error| AlertError::Damaged(error.to_string()))?;
    store.put_setting(ALERTS_KEY, &value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: u8) -> AgentId {
        AgentId::from_bytes([n; 16])
    }

    fn point(at_ms: i64, level: HealthLevel, disk_pct: f32) -> HealthPoint {
        HealthPoint {
            agent: agent(1),
            at_ms,
            cpu_pct: 10.0,
            mem_pct: 10.0,
            disk_pct,
            uptime_secs: 1,
            score: 50,
            level,
        }
    }

    /// Thursday 2026-12-17 10:00 UTC.
    const THURSDAY_10H_MS: i64 = 1_797_501_600_000;

    fn facts(health: Vec<HealthPoint>, last_seen_ms: Option<i64>) -> AgentFacts {
        AgentFacts {
            agent: agent(1),
            last_seen_ms,
            added_ms: 0,
            health,
            last_invalid_ms: None,
        }
    }

    fn verdict(facts: &AgentFacts, now_ms: i64, rule: Rule, open: bool) -> Verdict {
        let rules = AlertRules::default();
        evaluate(
            &rules,
            std::slice::from_ref(facts),
            now_ms,
            &DayClock::utc(),
            &|_, _| open,
        )
        .into_iter()
        .find(|(_, found, _)| *found == rule)
        .map(|(_, _, verdict)| verdict)
        .expect("every rule answers")
    }

    #[test]
    fn health_critical_needs_its_duration_and_current_samples() {
        let now = THURSDAY_10H_MS;
        let run = |minutes: i64| {
            (0..=minutes)
                .map(|m| point(now - (minutes - m) * MINUTE_MS, HealthLevel::Critical, 50.0))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            verdict(&facts(run(5), Some(now)), now, Rule::HealthCritical, false),
            Verdict::Hold
        );
        assert_eq!(
            verdict(&facts(run(12), Some(now)), now, Rule::HealthCritical, false),
            Verdict::Present { value: 12.0 }
        );
        let mut recovered = run(12);
        recovered.push(point(now, HealthLevel::Ok, 50.0));
        assert_eq!(
            verdict(
                &facts(recovered, Some(now)),
                now,
                Rule::HealthCritical,
                false
            ),
            Verdict::Absent
        );
        // Old samples say nothing about now.
        assert_eq!(
            verdict(
                &facts(run(12), Some(now)),
                now + HOUR_MS,
                Rule::HealthCritical,
                false
            ),
            Verdict::Hold
        );
    }

    #[test]
    fn a_disk_alert_clears_only_below_its_threshold_minus_the_hysteresis() {
        let now = THURSDAY_10H_MS;
        let at = |pct| facts(vec![point(now, HealthLevel::Warn, pct)], Some(now));
        assert!(matches!(
            verdict(&at(91.0), now, Rule::DiskFull, false),
            Verdict::Present { .. }
        ));
        assert_eq!(
            verdict(&at(88.0), now, Rule::DiskFull, false),
            Verdict::Absent
        );
        assert!(matches!(
            verdict(&at(88.0), now, Rule::DiskFull, true),
            Verdict::Present { .. }
        ));
        assert_eq!(
            verdict(&at(84.0), now, Rule::DiskFull, true),
            Verdict::Absent
        );
    }

    #[test]
    fn not_seen_opens_only_in_working_hours() {
        let now = THURSDAY_10H_MS;
        let gone = facts(Vec::new(), Some(now - 5 * HOUR_MS));
        assert_eq!(
            verdict(&gone, now, Rule::NotSeen, false),
            Verdict::Present { value: 5.0 }
        );
        // 23:00 the same day, and Sunday 10:00: held.
        assert_eq!(
            verdict(&gone, now + 13 * HOUR_MS, Rule::NotSeen, false),
            Verdict::Hold
        );
        assert_eq!(
            verdict(&gone, now + 3 * 24 * HOUR_MS, Rule::NotSeen, false),
            Verdict::Hold
        );
        let here = facts(Vec::new(), Some(now - MINUTE_MS));
        assert_eq!(verdict(&here, now, Rule::NotSeen, false), Verdict::Absent);
    }

    #[test]
    fn one_open_alert_per_rule_and_workstation_a_flap_does_not_reopen_it() {
        let mut book = AlertBook::default();
        let present = |value| vec![(agent(1), Rule::DiskFull, Verdict::Present { value })];
        let absent = vec![(agent(1), Rule::DiskFull, Verdict::Absent)];
        let agents = [agent(1)];
        let t0 = THURSDAY_10H_MS;
        assert!(matches!(
            book.apply(&present(91.0), &agents, t0)[..],
            [Transition::Opened(_)]
        ));
        assert!(book
            .apply(&present(92.0), &agents, t0 + MINUTE_MS)
            .is_empty());
        // Absent for less than CLEAR_AFTER_MS, then back: still the same alert.
        assert!(book.apply(&absent, &agents, t0 + 2 * MINUTE_MS).is_empty());
        assert!(book
            .apply(&present(91.0), &agents, t0 + 3 * MINUTE_MS)
            .is_empty());
        assert_eq!(book.alerts().len(), 1);
        assert_eq!(book.alerts()[0].value, 92.0);
        // Absent long enough: cleared once.
        assert!(book.apply(&absent, &agents, t0 + 4 * MINUTE_MS).is_empty());
        let cleared = book.apply(&absent, &agents, t0 + 4 * MINUTE_MS + CLEAR_AFTER_MS);
        assert!(matches!(cleared[..], [Transition::Cleared(_)]));
        assert!(book.apply(&absent, &agents, t0 + HOUR_MS).is_empty());
        assert_eq!(book.unread(), 0);
        // A workstation removed from the inventory clears its alerts.
        book.apply(&present(95.0), &agents, t0 + 2 * HOUR_MS);
        assert_eq!(book.unread(), 1);
        let gone = book.apply(&[], &[], t0 + 2 * HOUR_MS);
        assert!(matches!(gone[..], [Transition::Cleared(_)]));
    }

    #[test]
    fn acknowledged_and_muted_alerts_leave_the_bell() {
        let mut book = AlertBook::default();
        let agents = [agent(1), agent(2)];
        let t0 = THURSDAY_10H_MS;
        let verdicts = vec![
            (agent(1), Rule::NotSeen, Verdict::Present { value: 5.0 }),
            (agent(2), Rule::NotSeen, Verdict::Present { value: 5.0 }),
        ];
        book.apply(&verdicts, &agents, t0);
        assert_eq!(book.unread(), 2);
        book.ack(1, t0).expect("ack");
        assert_eq!(book.unread(), 1);
        assert!(matches!(book.mute(2, 0, t0), Err(AlertError::BadMute)));
        assert!(matches!(
            book.mute(9, HOUR_MS, t0),
            Err(AlertError::Unknown(9))
        ));
        book.mute(2, HOUR_MS, t0).expect("mute");
        assert_eq!(book.unread(), 0);
        // Cleared then back within the mute: opens muted.
        let absent = vec![(agent(2), Rule::NotSeen, Verdict::Absent)];
        book.apply(&absent, &agents, t0 + MINUTE_MS);
        book.apply(&absent, &agents, t0 + MINUTE_MS + CLEAR_AFTER_MS);
        let back = book.apply(&verdicts[1..], &agents, t0 + 30 * MINUTE_MS);
        assert!(matches!(&back[..], [Transition::Opened(alert)] if alert.muted));
        assert_eq!(book.unread(), 0);
        // The book, mutes included, is what the store keeps as JSON.
        let stored = serde_json::to_value(&book).expect("JSON");
        assert_eq!(
            serde_json::from_value::<AlertBook>(stored).expect("read back"),
            book
        );
    }

    #[test]
    fn the_book_stays_bounded() {
        let mut book = AlertBook::default();
        let agents: Vec<AgentId> = (0..=255).map(agent).collect();
        let mut now = THURSDAY_10H_MS;
        for _ in 0..20 {
            let present: Vec<_> = agents
                .iter()
                .map(|agent| (*agent, Rule::InvalidData, Verdict::Present { value: 1.0 }))
                .collect();
            book.apply(&present, &agents, now);
            now += MINUTE_MS;
            let absent: Vec<_> = agents
                .iter()
                .map(|agent| (*agent, Rule::InvalidData, Verdict::Absent))
                .collect();
            book.apply(&absent, &agents, now);
            now += CLEAR_AFTER_MS;
            book.apply(&absent, &agents, now);
        }
        assert!(book.alerts().len() <= MAX_ALERTS);
    }
}
