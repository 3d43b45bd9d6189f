//! smarttracker-console binary (being written).
fn main() {}
