//! `alerts list|ack|mute`: the alert book from the command line (run by
//! the engine, like every command), audited.

use serde::{Deserialize, Serialize};

use super::{AlertError, Rule};
use crate::analytics::format_duration_ms;
use crate::commands::{say, CliOutput, CommandContext, CommandError, Output};

/// What an alerts command asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertsAsk {
    /// Open alerts (every kept one with `all`), newest first.
    List {
        all: bool,
        json: bool,
    },
    Ack {
        id: u64,
    },
    /// Mutes the alert's rule on its workstation for `for_secs`.
    Mute {
        id: u64,
        for_secs: u64,
    },
}

fn refused(error: AlertError) -> CommandError {
    match error {
        AlertError::Store(error) => CommandError::Store(error),
        AlertError::Damaged(_) => CommandError::Failed(error.to_string()),
        AlertError::Unknown(_) | AlertError::BadMute => CommandError::Refused(error.to_string()),
    }
}

/// Runs an alerts command (blocking: the store).
pub fn run(context: &CommandContext, ask: AlertsAsk, output: &Output) -> Result<(), CommandError> {
    let store = &context.store;
    let now_ms = crate::clock::wall_now_ms();
    match ask {
        AlertsAsk::List { all, json } => {
            let book = super::load(store).map_err(refused)?;
            let names: std::collections::BTreeMap<_, _> = store
                .agents()?
                .into_iter()
                .map(|record| (record.agent, record.name))
                .collect();
            let mut shown: Vec<&super::Alert> = book
                .alerts()
                .iter()
                .filter(|alert| all || alert.is_open())
                .collect();
            shown.reverse();
            if json {
                let mut text = serde_json::to_string_pretty(&shown)
                    .map_err(|error| CommandError::Failed(format!("cannot write JSON: {error}")))?;
                text.push('\n');
                output(CliOutput::Data(text.into_bytes()));
                return Ok(());
            }
            let clock = store.day_clock();
            let mut text = String::new();
            if shown.is_empty() {
                text.push_str(if all {
                    "no alerts yet\n"
                } else {
                    "no open alert\n"
                });
            }
            for alert in shown {
                let name = names
                    .get(&alert.agent)
                    .cloned()
                    .unwrap_or_else(|| alert.agent.to_string());
                let state = match (alert.cleared_ms, alert.acked_ms, alert.muted) {
                    (Some(cleared_ms), _, _) => format!("cleared {}", clock.iso_local(cleared_ms)),
                    (None, _, true) => "open, muted".to_owned(),
                    (None, Some(_), false) => "open, acknowledged".to_owned(),
                    (None, None, false) => format!(
                        "open for {}",
                        format_duration_ms(now_ms.saturating_sub(alert.opened_ms))
                    ),
                };
                text.push_str(&format!(
                    "#{:<5} {:<16} {:<24} {}  since {}  ({state})\n",
                    alert.id,
                    alert.rule.name(),
                    name,
                    describe(alert.rule, alert.value),
                    clock.iso_local(alert.opened_ms),
                ));
            }
            output(CliOutput::Data(text.into_bytes()));
            Ok(())
        }
        AlertsAsk::Ack { id } => {
            let _writer = super::BOOK_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut book = super::load(store).map_err(refused)?;
            let rule = book.ack(id, now_ms).map_err(refused)?.rule;
            super::save(store, &book).map_err(refused)?;
            audit(context, "alert-ack", id, rule.name().to_owned())?;
            say(output, format!("alert #{id} acknowledged"));
            Ok(())
        }
        AlertsAsk::Mute { id, for_secs } => {
            let for_ms = i64::try_from(for_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let _writer = super::BOOK_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut book = super::load(store).map_err(refused)?;
            let rule = book.mute(id, for_ms, now_ms).map_err(refused)?.rule;
            super::save(store, &book).map_err(refused)?;
            let until = store.day_clock().iso_local(now_ms.saturating_add(for_ms));
            audit(
                context,
                "alert-mute",
                id,
                format!("{} until {until}", rule.name()),
            )?;
            say(
                output,
                format!(
                    "alert #{id} muted: {} on that workstation tells nobody until {until}",
                    rule.name()
                ),
            );
            Ok(())
        }
    }
}

/// `disk 93 % full`, `not seen for 5 h`…
pub fn describe(rule: Rule, value: f64) -> String {
    match rule {
        Rule::HealthCritical => format!("health critical for {value} min"),
        Rule::DiskFull => format!("disk {value:.0} % full"),
        Rule::NotSeen => format!("not seen for {value} h"),
        Rule::InvalidData => format!("invalid data {value} min ago"),
    }
}

fn audit(
    context: &CommandContext,
    action: &str,
    id: u64,
    detail: String,
) -> Result<(), CommandError> {
    context.audit(action, format!("alert #{id}"), detail)
}
