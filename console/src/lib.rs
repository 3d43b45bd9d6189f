//! SmartTracker console engine: finds agents, pulls their records exactly
//! once into its own store, and turns them into the numbers managers read.

pub mod analytics;
pub mod categories;
pub mod model;
pub mod store;
