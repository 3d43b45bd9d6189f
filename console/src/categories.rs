//! Application categories: manager rules, then a trained model (being written).
