//! Pure analytics over stored records (being written).
