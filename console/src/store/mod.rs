//! The console store (being written).
