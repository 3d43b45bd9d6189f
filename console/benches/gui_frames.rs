//! GUI frame-time benchmark (filled in below).

fn main() {}
