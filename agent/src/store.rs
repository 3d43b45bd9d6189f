//! Durable local record store (being written).
