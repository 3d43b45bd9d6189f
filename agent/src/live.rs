//! Live-view sessions and the notice to the employee while one runs.
