//! `smarttracker-console alerts …`: the alerts the rules opened after each
//! sync pass, acknowledged or muted from the command line (run by the
//! engine, like the window's bell).

use clap::Subcommand;
use console_engine::alerts::commands::AlertsAsk;
use console_engine::commands::CliRequest;

/// What `alerts` does.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Open alerts, newest first (every kept one with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledges an alert: it leaves the bell, and stays open until its
    /// condition clears.
    Ack {
        /// The alert's number (`alerts list`).
        id: u64,
    },
    /// Mutes the alert's rule on its workstation for a while: alerts it
    /// opens meanwhile tell nobody.
    Mute {
        id: u64,
        /// 30m, 2h, 7d (1 minute to 30 days).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_mute)]
        for_secs: u64,
    },
}

/// A mute's length in seconds.
fn parse_mute(text: &str) -> Result<u64, String> {
    console_engine::analytics::parse_duration(text)
        .map(|duration| duration.as_secs())
        .ok_or_else(|| format!("{:?}: write a number and s, m, h or d (2h)", text.trim()))
}

/// The engine request of `command`.
pub fn request(command: AlertsCommand) -> CliRequest {
    CliRequest::Alerts(match command {
        AlertsCommand::List { all, json } => AlertsAsk::List { all, json },
        AlertsCommand::Ack { id } => AlertsAsk::Ack { id },
        AlertsCommand::Mute { id, for_secs } => AlertsAsk::Mute { id, for_secs },
    })
}
