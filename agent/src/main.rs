//! smarttracker-agent binary (being written).
fn main() {}
