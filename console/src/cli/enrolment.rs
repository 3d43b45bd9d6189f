//! `smarttracker-console enrolment open`: prints a one-time code and
//! enrols the workstations that present it, in the foreground, until the
//! code's uses are taken, it expires, or Ctrl-C. The site CA key stays in
//! this process; each enrolled agent goes into the inventory through the
//! engine (`serve` when it runs, else one started here).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use certs::enrol::EnrolmentCode;
use certs::{SiteCa, Validity, PASSPHRASE_ENV};
use clap::{Args, Subcommand};
use console_engine::commands::CliRequest;
use console_engine::enrolment::{
    self, parse_expiry, Enrolled, Host, Pending, Session, DEFAULT_ENROL_PORT, MAX_USES,
};
use console_engine::settings::site_clock_of;
use tokio::sync::watch;

use super::engine::{identity, Destination, Runner, StoreCommand};

/// Writes a line to standard output; a closed one (a script that read the
/// code and went) does not stop the enrolment.
macro_rules! show {
    ($($arg:tt)*) => {{
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, $($arg)*).and_then(|()| stdout.flush());
    }};
}

#[derive(Debug, Subcommand)]
pub enum EnrolmentCommand {
    /// Prints a one-time code and enrols the workstations that present it
    /// (`smarttracker-agent enroll --code CODE`) until its uses are taken,
    /// it expires, or Ctrl-C.
    Open(OpenArgs),
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The site directory made by `smarttracker-certs init` (its CA signs
    /// the workstations' keys; passphrase in SMARTTRACKER_CA_PASSPHRASE).
    #[arg(long, value_name = "DIR")]
    site: PathBuf,
    /// How many workstations the code enrols.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USES)))]
    uses: u32,
    /// How long the code is valid: 90s, 30m, 24h, 7d.
    #[arg(long, default_value = "24h", value_parser = parse_expiry)]
    expires: Duration,
    /// The agent group enrolled workstations join.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// The team written in enrolled workstations' certificates: consoles
    /// limited to a team are served only by its workstations.
    #[arg(long, value_name = "NAME")]
    team: Option<String>,
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_ENROL_PORT)))]
    listen: SocketAddr,
    /// Ask on the terminal before enrolling each workstation.
    #[arg(long)]
    approve_each: bool,
    /// Do not advertise the enrolment over mDNS (agents then need
    /// --console HOST:PORT).
    #[arg(long)]
    no_mdns: bool,
}

pub fn run(data: &Path, command: EnrolmentCommand) -> Result<()> {
    match command {
        EnrolmentCommand::Open(args) => open(data, args),
    }
}

fn open(data: &Path, args: OpenArgs) -> Result<()> {
    let passphrase = std::env::var(PASSPHRASE_ENV).ok();
    let ca = SiteCa::open(&args.site, passphrase.as_deref())
        .with_context(|| format!("cannot open the site CA in {}", args.site.display()))?;
    if let Some(console) = identity(data)? {
        if console.ca_cert_der != ca.cert_der() {
            bail!(
                "the console identity in {} is of another site than {}: enrolled workstations could not be synced; give the site this console belongs to",
                data.display(),
                args.site.display()
            );
        }
    } else {
        bail!(
            "{} has no console identity: issue one first (smarttracker-certs console --site {} --out {}/identity)",
            data.display(),
            args.site.display(),
            data.display()
        );
    }
    if let Some(team) = &args.team {
        certs::check_team(team).map_err(|reason| anyhow::anyhow!("--team {team:?}: {reason}"))?;
    }
    let (clock, _) = site_clock_of(data)?;
    let code = EnrolmentCode::generate(&ca.cert_der()).context("cannot make a random code")?;
    let now_ms = console_engine::clock::wall_now_ms();
    let expiry_ms = i64::try_from(args.expires.as_millis()).unwrap_or(i64::MAX);
    let expires_at_ms = now_ms.saturating_add(expiry_ms);
    let runner = Runner::for_data(data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let _guard = runtime.enter();
    let validity = Validity {
        not_after: time::OffsetDateTime::from_unix_timestamp(expires_at_ms / 1000)
            .context("expiry out of range")?
            .min(ca.not_after()),
        ..Validity::days_from(time::OffsetDateTime::now_utc(), 1)
    };
    let endpoint = enrolment::bind(&ca, args.listen, validity)?;
    let bound = endpoint
        .local_addr()
        .context("cannot read the bound address")?;
    let _advert = if args.no_mdns {
        None
    } else {
        match enrolment::Advert::start(&code, bound.port()) {
            Ok(advert) => Some(advert),
            Err(error) => {
                eprintln!(
                    "warning: mDNS advert unavailable ({error}); agents need --console HOST:{}",
                    bound.port()
                );
                None
            }
        }
    };
    show!(
        "enrolment open for site {:?} until {} ({} use{}{})",
        ca.name(),
        clock.iso_local(expires_at_ms),
        args.uses,
        if args.uses == 1 { "" } else { "s" },
        args.group
            .as_deref()
            .map(|group| format!(", group {group:?}"))
            .unwrap_or_default()
    );
    show!("code: {code}");
    show!(
        "on each workstation: smarttracker-agent enroll --code {code}{}",
        if args.no_mdns {
            format!(" --console THIS-HOST:{}", bound.port())
        } else {
            String::new()
        }
    );
    show!("listening on {bound}");

    let session = Arc::new(Mutex::new(Session::new(code, args.uses, expires_at_ms)));
    let host = Arc::new(CliHost {
        inventory: Mutex::new(inventory_thread(data.to_owned(), runner)?),
        group: args.group,
        approve_each: args.approve_each,
        asking: Mutex::new(()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });
    let ca = Arc::new(ca);
    runtime.block_on(enrolment::serve(
        endpoint,
        ca,
        args.team.map(Arc::from),
        session.clone(),
        host,
        console_engine::clock::wall_now_ms,
        stop_rx,
    ));
    let session = session.lock().unwrap_or_else(PoisonError::into_inner);
    let now_ms = console_engine::clock::wall_now_ms();
    let reason = if session.is_over(now_ms) {
        session.end_reason(now_ms).describe()
    } else {
        "stopped"
    };
    show!(
        "enrolment closed ({reason}): {} workstation{} enrolled",
        session.enrolled(),
        if session.enrolled() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// A store command for the inventory thread, and where its result goes.
type InventoryJob = (CliRequest, std::sync::mpsc::Sender<Result<(), String>>);

/// The thread that owns the [`Runner`] (an engine started here has its own
/// runtime, which must not be dropped on an async worker) and runs the
/// inventory's commands one at a time.
fn inventory_thread(
    data: PathBuf,
    runner: Runner,
) -> Result<std::sync::mpsc::Sender<InventoryJob>> {
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<InventoryJob>();
    std::thread::Builder::new()
        .name("inventory".to_owned())
        .spawn(move || {
            for (request, done) in jobs_rx {
                // The inventory's answer is kept, then shown: a closed
                // standard output must not fail an enrolment.
                let said = Arc::new(Mutex::new(Vec::new()));
                let command = StoreCommand::new(request).to(Destination::Kept(said.clone()));
                let result = runner
                    .run(&data, command)
                    .map_err(|error| format!("{error:#}"));
                let said =
                    std::mem::take(&mut *said.lock().unwrap_or_else(PoisonError::into_inner));
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(&said).and_then(|()| stdout.flush());
                let _ = done.send(result);
            }
        })
        .context("cannot start the inventory thread")?;
    Ok(jobs_tx)
}

struct CliHost {
    inventory: Mutex<std::sync::mpsc::Sender<InventoryJob>>,
    group: Option<String>,
    approve_each: bool,
    /// One question on the terminal at a time.
    asking: Mutex<()>,
}

impl Host for CliHost {
    fn approve(&self, pending: &Pending) -> bool {
        if !self.approve_each {
            return true;
        }
        let _one = self.asking.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(
                stdout,
                "workstation {:?} at {} asks to enrol; approve? [y/N] ",
                pending.name, pending.from
            )
            .and_then(|()| stdout.flush());
        }
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(_) => matches!(answer.trim(), "y" | "Y" | "yes" | "o" | "oui"),
            Err(_) => false,
        }
    }

    fn add(&self, enrolled: &Enrolled) -> Result<(), String> {
        let request = CliRequest::AddAgent {
            file_name: format!("enrolment from {}", enrolled.from),
            cert_der: enrolled.cert_der.clone(),
            name: enrolled.name.clone(),
            group: self.group.clone(),
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.inventory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send((request, done_tx))
            .map_err(|_| "the inventory thread stopped".to_owned())?;
        done_rx
            .recv()
            .map_err(|_| "the inventory thread stopped".to_owned())?
    }
}
