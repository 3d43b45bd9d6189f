//! The command line: what each subcommand takes (clap) and where it runs.
//! Commands on the store go to the engine: to `serve` over its socket when
//! one runs on `--data`, else to an engine started in this process.

mod alerts;
mod consoles;
mod demo;
mod engine;
mod enrolment;
mod gui;
mod people;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use console::app::Screen;
use console_engine::commands::{CliRequest, Reach};
use console_engine::export::{Format, Table};
use console_engine::i18n::Lang;
use protocol::CaptureSpec;

use self::engine::{Destination, StoreCommand};

#[derive(Debug, Parser)]
#[command(
    name = "smarttracker-console",
    version,
    about = "SmartTracker manager console"
)]
struct Cli {
    /// The console's data directory (identity, store, console.toml);
    /// default: $XDG_DATA_HOME/smarttracker (~/.local/share/smarttracker).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum RevokeWhat {
    /// Removes a workstation from the inventory: sync refuses it from then
    /// on; its data is kept unless --erase.
    Agent {
        /// The agent: its id, or its name in the inventory (with --erase,
        /// also the id of an agent revoked before whose data is left).
        agent: String,
        /// Also delete every record, rollup, cursor, screenshot, fault and
        /// setting of the agent in the console's store.
        #[arg(long)]
        erase: bool,
    },
    /// Puts a console certificate on the site's deny-list (signed by the
    /// site CA; passphrase in SMARTTRACKER_CA_PASSPHRASE): every agent
    /// refuses it once a console of the site has synced it.
    Console {
        /// The console's id, or its name in the site's registry.
        console: String,
        /// The site directory (made by `smarttracker-certs init`).
        #[arg(long, value_name = "DIR")]
        site: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the console's engine without a window: background sync and
    /// retention; windows and commands on --data attach to it.
    Serve {
        /// Do not browse mDNS (static peers and remembered addresses only).
        #[arg(long)]
        no_mdns: bool,
        /// Pause between background syncs [default: sync_interval_secs in
        /// DATA/console.toml].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        sync_interval_secs: Option<u64>,
    },
    /// Opens the console window on --data (attached to `serve` when it
    /// runs; otherwise sync runs in the background of the window).
    Gui {
        /// Do not browse mDNS (static peers and remembered addresses only).
        #[arg(long)]
        no_mdns: bool,
        /// Screen shown first.
        #[arg(long, value_parser = parse_screen, default_value = "fleet")]
        screen: Screen,
        /// Pause between background syncs without `serve` [default:
        /// sync_interval_secs in DATA/console.toml].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        sync_interval_secs: Option<u64>,
    },
    /// Creates a temporary demo site, starts demo agents with labelled
    /// simulated history on loopback and opens the console on them.
    Demo {
        /// Number of demo agents.
        #[arg(long, default_value_t = 3)]
        agents: u32,
        /// Days of simulated history each agent records first.
        #[arg(long, default_value_t = 30)]
        history_days: u32,
        /// Keep the site in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Screen shown first.
        #[arg(long, value_parser = parse_screen, default_value = "fleet")]
        screen: Screen,
    },
    /// Pulls every record from every reachable inventoried agent (with
    /// `serve` running: `--once` syncs now).
    Sync {
        /// One pass, then exit (otherwise: keep syncing).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        reach: ReachArgs,
        /// Pause between passes when not --once [default:
        /// sync_interval_secs in DATA/console.toml].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        interval_secs: Option<u64>,
        /// Longest a pass spends on one agent; the next pass resumes.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        agent_deadline_secs: u64,
        /// Most records one stream of one agent brings per pass.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        budget_records: u64,
    },
    /// Lists the agents of the inventory and their state.
    Agents {
        #[arg(long)]
        json: bool,
    },
    /// The console identities the site issued, and which are revoked.
    Consoles {
        /// The site directory (made by `smarttracker-certs init`).
        #[arg(long, value_name = "DIR")]
        site: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The alerts the rules opened (health critical, disk full, not seen
    /// during working hours, invalid data): list, acknowledge, mute.
    Alerts {
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// The persons of the site and which OS accounts and workstations are
    /// theirs: attendance and reports are per person.
    People {
        #[command(subcommand)]
        command: people::PeopleCommand,
    },
    /// Revokes a console or removes a workstation.
    Revoke {
        #[command(subcommand)]
        what: RevokeWhat,
    },
    /// Enrolment of workstations by code.
    Enrolment {
        #[command(subcommand)]
        command: enrolment::EnrolmentCommand,
    },
    /// Adds an agent to the inventory from its enrolment bundle or
    /// certificate (only the certificate is kept, and only it leaves this
    /// process).
    AddAgent {
        file: PathBuf,
        /// Display name (default: the name in the bundle).
        #[arg(long)]
        name: Option<String>,
    },
    /// Writes a table of stored data (the audit log is verified first).
    Export {
        #[arg(value_enum)]
        table: TableArg,
        /// First day included (YYYY-MM-DD, site time); default: 30 days
        /// before --to. Give an earlier day to widen.
        #[arg(long)]
        from: Option<String>,
        /// Last day included (YYYY-MM-DD, site time); default: today.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: FormatArg,
        /// Output file; default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the organisation's report for a period.
    Report {
        #[arg(long, value_enum, default_value = "7d")]
        range: RangeArg,
        /// Language of the report (fr, en, es, ru); default: the
        /// console's `language` setting.
        #[arg(long, value_parser = parse_lang)]
        lang: Option<Lang>,
    },
    /// Captures one agent's screen now (admin consoles only): writes the
    /// JPEG to --out (mode 0600) and keeps an encrypted copy in the
    /// console's gallery. Audited here and on the agent.
    Screenshot {
        /// The agent: its id, or its name in the inventory.
        #[arg(long)]
        agent: String,
        /// Where to write the JPEG.
        #[arg(long)]
        out: PathBuf,
        /// Monitor index, left to right; default: the whole desktop.
        #[arg(long)]
        monitor: Option<u16>,
        /// The image fits in this width (pixels; never upscaled).
        #[arg(long, default_value_t = 1920)]
        max_width: u16,
        /// The image fits in this height (pixels; never upscaled).
        #[arg(long, default_value_t = 1080)]
        max_height: u16,
        /// JPEG quality, 1–95.
        #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=95))]
        quality: u8,
        #[command(flatten)]
        reach: ReachArgs,
    },
    /// Renews the certificates of agents with less than a third of their
    /// validity left: each agent makes a new key, the site CA signs it
    /// (passphrase in SMARTTRACKER_CA_PASSPHRASE). Run it from a timer.
    Renew {
        /// The site directory (made by `smarttracker-certs init`).
        #[arg(long, value_name = "DIR")]
        site: PathBuf,
        /// Renew every reachable agent, due or not.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        reach: ReachArgs,
    },
}

/// Where to look for agents, besides remembered addresses and static peers.
#[derive(Debug, Clone, clap::Args)]
struct ReachArgs {
    /// An agent address to try first (repeatable).
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    /// Do not browse mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// How long to browse mDNS.
    #[arg(long, default_value_t = 3)]
    browse_secs: u64,
}

impl From<ReachArgs> for Reach {
    fn from(args: ReachArgs) -> Reach {
        Reach {
            peers: args.peers,
            mdns_browse_secs: (!args.no_mdns).then_some(args.browse_secs),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TableArg {
    Usage,
    Sessions,
    Attendance,
    Health,
    Audit,
}

impl From<TableArg> for Table {
    fn from(table: TableArg) -> Table {
        match table {
            TableArg::Usage => Table::Usage,
            TableArg::Sessions => Table::Sessions,
            TableArg::Attendance => Table::Attendance,
            TableArg::Health => Table::Health,
            TableArg::Audit => Table::Audit,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    /// `;`-separated with decimal commas, for spreadsheets set to French,
    /// Spanish or Russian.
    CsvDecimalComma,
    Jsonl,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Csv => Format::Csv,
            FormatArg::CsvDecimalComma => Format::CsvDecimalComma,
            FormatArg::Jsonl => Format::Jsonl,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RangeArg {
    #[value(name = "24h")]
    Day,
    #[value(name = "7d")]
    Week,
    #[value(name = "30d")]
    Month,
}

fn parse_screen(name: &str) -> Result<Screen, String> {
    Screen::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Screen::ALL.iter().map(|screen| screen.name()).collect();
        format!("unknown screen {name:?}; one of: {}", names.join(", "))
    })
}

fn parse_lang(code: &str) -> Result<Lang, String> {
    Lang::from_code(code).ok_or_else(|| {
        let codes: Vec<&str> = Lang::ALL.iter().map(|lang| lang.code()).collect();
        format!("unknown language {code:?}; one of: {}", codes.join(", "))
    })
}

/// `$XDG_DATA_HOME/smarttracker`, else `~/.local/share/smarttracker`.
fn default_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("smarttracker"));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: give --data DIR")?;
    Ok(PathBuf::from(home).join(".local/share/smarttracker"))
}

/// Parses the command line and runs it.
pub fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SMARTTRACKER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let data = match cli.data {
        Some(data) => data,
        None => default_data_dir()?,
    };
    match cli.command {
        Command::Serve {
            no_mdns,
            sync_interval_secs,
        } => serve::serve(&data, !no_mdns, sync_interval_secs.map(Duration::from_secs)),
        Command::Gui {
            no_mdns,
            screen,
            sync_interval_secs,
        } => gui::gui(
            &data,
            !no_mdns,
            screen,
            sync_interval_secs.map(Duration::from_secs),
        ),
        Command::Demo {
            agents,
            history_days,
            keep,
            screen,
        } => demo::demo(demo::DemoOptions {
            agents: agents.max(1),
            history_days,
            keep,
            screen,
        }),
        Command::Enrolment { command } => enrolment::run(&data, command),
        Command::Consoles { site, json } => consoles::list(&data, &site, json),
        Command::Alerts { command } => {
            engine::run(&data, StoreCommand::new(alerts::request(command)))
        }
        Command::People { command } => {
            engine::run(&data, StoreCommand::new(people::request(command)))
        }
        Command::Revoke { what } => match what {
            RevokeWhat::Agent { agent, erase } => engine::run(
                &data,
                StoreCommand::new(CliRequest::RevokeAgent { agent, erase }),
            ),
            RevokeWhat::Console { console, site } => consoles::revoke(&data, &site, &console),
        },
        Command::AddAgent { file, name } => {
            let (cert_der, bundle_name) = engine::read_agent_certificate(&file)?;
            let request = CliRequest::AddAgent {
                file_name: file.display().to_string(),
                cert_der,
                name: name
                    .or(bundle_name)
                    .unwrap_or_else(|| "unnamed agent".to_owned()),
                group: None,
            };
            engine::run(&data, StoreCommand::new(request))
        }
        Command::Agents { json } => {
            engine::run(&data, StoreCommand::new(CliRequest::Agents { json }))
        }
        Command::Export {
            table,
            from,
            to,
            format,
            out,
        } => {
            let destination = Destination::file_or_stdout(out)?;
            let request = CliRequest::Export {
                table: table.into(),
                format: format.into(),
                from,
                to,
                destination: destination.file_name(),
            };
            engine::run(&data, StoreCommand::new(request).to(destination))
        }
        Command::Report { range, lang } => {
            let days = match range {
                RangeArg::Day => 1,
                RangeArg::Week => 7,
                RangeArg::Month => 30,
            };
            engine::run(&data, StoreCommand::new(CliRequest::Report { days, lang }))
        }
        Command::Screenshot {
            agent,
            out,
            monitor,
            max_width,
            max_height,
            quality,
            reach,
        } => {
            let destination = Destination::private_file(out)?;
            let request = CliRequest::Screenshot {
                agent,
                spec: CaptureSpec {
                    monitor,
                    max_width,
                    max_height,
                    quality,
                },
                reach: reach.into(),
                destination: destination.describe(),
            };
            engine::run(
                &data,
                StoreCommand::new(request).to(destination).needs_identity(),
            )
        }
        Command::Renew { site, force, reach } => {
            let request = CliRequest::Renew {
                site: std::path::absolute(&site).unwrap_or(site),
                passphrase: std::env::var(certs::PASSPHRASE_ENV)
                    .ok()
                    .map(console_engine::commands::Passphrase),
                reach: reach.into(),
                force,
            };
            engine::run(&data, StoreCommand::new(request).needs_identity())
        }
        Command::Sync {
            once,
            reach,
            interval_secs,
            agent_deadline_secs,
            budget_records,
        } => {
            let request = CliRequest::SyncOnce {
                reach: reach.into(),
                agent_deadline_secs,
                budget_records,
            };
            if once {
                return engine::run(&data, StoreCommand::new(request).needs_identity());
            }
            if engine::serve_runs(&data)? {
                bail!(
                    "`smarttracker-console serve` already syncs {} in the background: use `sync --once` to sync now",
                    data.display()
                );
            }
            engine::run_every(
                &data,
                StoreCommand::new(request).needs_identity(),
                interval_secs.map(Duration::from_secs),
            )
        }
    }
}
