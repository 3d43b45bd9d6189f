//! SmartTracker agent: sensors, the pure tracker core, the durable local
//! store and the authenticated QUIC service of one workstation.

pub mod apps;
pub mod clock;
pub mod demo;
pub mod health;
pub mod mdns;
pub mod sensors;
pub mod store;
pub mod tracker;
