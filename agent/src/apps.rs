//! Application name normalisation (being written).
