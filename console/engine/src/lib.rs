//! SmartTracker console engine, headless: finds agents, pulls their records
//! exactly once into its own store, turns them into the numbers managers
//! read, and runs as a service the window and the command line talk to.

pub mod alerts;
pub mod analytics;
pub mod blocking;
pub mod categories;
pub mod clock;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod enrolment;
pub mod export;
pub mod i18n;
pub mod live;
pub mod model;
pub mod people;
pub mod reach;
pub mod report;
pub mod revocation;
pub mod service;
pub mod settings;
pub mod store;
pub mod sync;
pub mod validate;
pub mod views;

/// The console identity inside the data directory (written by
/// `smarttracker-certs console --out DIR/identity`).
pub const IDENTITY_DIR: &str = "identity";
/// The sled store inside the data directory.
pub const STORE_DIR: &str = "store";
