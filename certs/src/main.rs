//! `smarttracker-certs`: the offline site CA tool. Creates a site, issues
//! console identities and agent bundles, and inspects certificates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use certs::inspect::{inspect_path, Inspection};
use certs::tls::AgentPin;
use certs::{
    Role, SiteCa, Validity, AGENT_VALIDITY_DAYS, CA_VALIDITY_DAYS, CONSOLE_VALIDITY_DAYS,
    PASSPHRASE_ENV,
};
use clap::{Parser, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest validity the tool accepts for any certificate (100 years).
const MAX_VALIDITY_DAYS: u32 = 36_500;

#[derive(Debug, Parser)]
#[command(
    name = "smarttracker-certs",
    version,
    about = "SmartTracker site certificate authority (offline)",
    long_about = format!(
        "SmartTracker site certificate authority (offline).\n\n\
         The CA key passphrase is read from {PASSPHRASE_ENV}; when it is unset \
         or empty the CA key is stored unencrypted."
    )
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new site CA in DIR (refuses if a site is already there).
    Init {
        /// Site directory (created with mode 0700 if missing).
        #[arg(long, value_name = "DIR")]
        site: PathBuf,
        /// Site (organisation) name.
        #[arg(long)]
        name: String,
        /// CA validity in days.
        #[arg(long = "days", value_name = "N", default_value_t = CA_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS)))]
        validity_days: u32,
    },
    /// Issue a console identity into a new directory.
    Console {
        /// Site directory.
        #[arg(long, value_name = "DIR")]
        site: PathBuf,
        /// admin or viewer.
        #[arg(long)]
        role: Role,
        /// Console name (subject common name).
        #[arg(long)]
        name: String,
        /// Output directory (must not already hold an identity).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Limit the console to a team: only workstations enrolled in that
        /// team serve it (a teacher and their room).
        #[arg(long, value_name = "NAME")]
        team: Option<String>,
        /// Certificate validity in days.
        #[arg(long = "days", value_name = "N", default_value_t = CONSOLE_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS)))]
        validity_days: u32,
    },
    /// Issue an agent identity bundle (certificate, key, site CA) into one file.
    Agent {
        /// Site directory.
        #[arg(long, value_name = "DIR")]
        site: PathBuf,
        /// Output bundle file (must not exist; written with mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Host name for the subject common name (never used as an identity).
        #[arg(long, value_name = "HOST")]
        name: Option<String>,
        /// The team the workstation is in (consoles limited to a team are
        /// served only by its workstations).
        #[arg(long, value_name = "NAME")]
        team: Option<String>,
        /// Certificate validity in days.
        #[arg(long = "days", value_name = "N", default_value_t = AGENT_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS)))]
        validity_days: u32,
    },
    /// Describe a PEM certificate file, a console identity directory, a site
    /// directory or an agent bundle.
    Inspect {
        /// File or directory to inspect.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever the paths or names contain.
            let message = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            site,
            name,
            validity_days,
        } => init(&site, &name, validity_days),
        Command::Console {
            site,
            role,
            name,
            out,
            team,
            validity_days,
        } => console(&site, (role, team.as_deref()), &name, &out, validity_days),
        Command::Agent {
            site,
            out,
            name,
            team,
            validity_days,
        } => agent(
            &site,
            &out,
            (name.as_deref(), team.as_deref()),
            validity_days,
        ),
        Command::Inspect { file, json } => inspect(&file, json),
    }
}

/// The CA passphrase from the environment; unset or empty means none.
fn passphrase() -> anyhow::Result<Option<String>> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("{PASSPHRASE_ENV} is not valid UTF-8: set it to a UTF-8 passphrase")
        }
    }
}

fn rfc3339(at: OffsetDateTime) -> anyhow::Result<String> {
    at.format(&Rfc3339)
        .context("cannot format a date as RFC 3339")
}

fn init(site: &Path, name: &str, validity_days: u32) -> anyhow::Result<()> {
    let passphrase = passphrase()?;
    let validity = Validity::days_from(OffsetDateTime::now_utc(), validity_days);
    let ca = SiteCa::init(site, name, passphrase.as_deref(), validity)?;
    println!("created site {:?} in {}", ca.name(), site.display());
    println!(
        "  CA certificate: {}",
        site.join(certs::ca::CA_CERT_FILE).display()
    );
    let key_path = site.join(certs::ca::CA_KEY_FILE);
    match passphrase {
        Some(_) => println!(
            "  CA key:         {} (encrypted with the passphrase from {PASSPHRASE_ENV})",
            key_path.display()
        ),
        None => println!(
            "  CA key:         {} (NOT encrypted: {PASSPHRASE_ENV} is unset or empty)",
            key_path.display()
        ),
    }
    println!("  fingerprint:    {}", ca.fingerprint());
    println!("  valid until:    {}", rfc3339(ca.not_after())?);
    Ok(())
}

fn console(
    site: &Path,
    (role, team): (Role, Option<&str>),
    name: &str,
    out: &Path,
    validity_days: u32,
) -> anyhow::Result<()> {
    let ca = SiteCa::open(site, passphrase()?.as_deref())?;
    let validity = Validity::days_from(OffsetDateTime::now_utc(), validity_days);
    let identity = ca.issue_console_in_team(role, name, team, validity)?;
    identity.write(out)?;
    println!(
        "issued {} console {:?} into {}",
        identity.role,
        identity.name,
        out.display()
    );
    println!("  console id:  {}", identity.console_id);
    if let Some(team) = team {
        println!("  team:        {team}");
    }
    println!(
        "  fingerprint: {}",
        certs::fingerprint_der(&identity.cert_der)
    );
    println!("  valid until: {}", rfc3339(validity.not_after)?);
    Ok(())
}

fn agent(
    site: &Path,
    out: &Path,
    (name, team): (Option<&str>, Option<&str>),
    validity_days: u32,
) -> anyhow::Result<()> {
    let ca = SiteCa::open(site, passphrase()?.as_deref())?;
    let validity = Validity::days_from(OffsetDateTime::now_utc(), validity_days);
    let identity = ca.issue_agent_in_team(name, team, validity)?;
    let pin = AgentPin::of_certificate(&identity.cert_der)?;
    identity.write_bundle(out)?;
    println!("issued agent bundle {}", out.display());
    println!("  agent id:    {}", identity.agent_id);
    println!(
        "  server name: {}",
        certs::agent_server_name(identity.agent_id)
    );
    println!("  key pin:     {}", hex::encode(pin.spki_sha256));
    println!(
        "  fingerprint: {}",
        certs::fingerprint_der(&identity.cert_der)
    );
    println!("  valid until: {}", rfc3339(validity.not_after)?);
    Ok(())
}

fn inspect(path: &Path, json: bool) -> anyhow::Result<()> {
    let inspection = inspect_path(path)?;
    if json {
        let text = serde_json::to_string_pretty(&inspection)
            .context("cannot encode the result as JSON")?;
        println!("{text}");
        return Ok(());
    }
    print_inspection(&inspection)
}

fn print_inspection(inspection: &Inspection) -> anyhow::Result<()> {
    println!("{}: {}", inspection.kind, inspection.path.display());
    for cert in &inspection.certificates {
        let summary = &cert.summary;
        println!();
        println!("{} ({})", summary.kind, cert.file.display());
        println!("  subject:     {}", summary.subject);
        println!("  issuer:      {}", summary.issuer);
        println!("  serial:      {}", summary.serial);
        println!("  SANs:        {}", list(&summary.subject_alt_names));
        println!("  EKU:         {}", list(&summary.extended_key_usage));
        println!("  key usage:   {}", list(&summary.key_usage));
        match summary.path_len_constraint {
            Some(path_len) if summary.is_ca => {
                println!("  CA:          yes (path length {path_len})")
            }
            _ => println!(
                "  CA:          {}",
                if summary.is_ca { "yes" } else { "no" }
            ),
        }
        if let Some(role) = summary.role {
            println!("  role:        {role}");
        }
        if let Some(console_id) = summary.console_id {
            println!("  console id:  {console_id}");
        }
        if let Some(agent_id) = summary.agent_id {
            println!("  agent id:    {agent_id}");
        }
        println!("  not before:  {}", rfc3339(summary.not_before)?);
        println!("  not after:   {}", rfc3339(summary.not_after)?);
        println!("  key:         {}", summary.key_algorithm);
        println!("  key pin:     {}", summary.spki_sha256);
        println!("  SHA-256:     {}", summary.fingerprint_sha256);
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}
