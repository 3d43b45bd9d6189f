//! X11 window and idle sensors (being written).
