//! SmartTracker agent: sensors, the pure tracker core, the durable local
//! store and the authenticated QUIC service of one workstation.

pub mod access;
pub mod admission;
pub mod apps;
pub mod capture;
pub mod clock;
pub mod config;
pub mod demo;
pub mod enrol;
pub mod health;
pub mod live;
pub mod mdns;
pub mod periodic;
pub mod recorder;
pub mod screen;
pub mod sensors;
pub mod server;
pub mod settings;
pub mod status;
pub mod store;
pub mod tracker;

/// The enrolled identity inside an agent's data directory.
pub const IDENTITY_FILE: &str = "identity.pem";
/// The sled store inside an agent's data directory.
pub const STORE_DIR: &str = "store";
