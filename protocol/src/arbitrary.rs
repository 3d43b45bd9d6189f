//! Strategies for property tests and fuzz harnesses of this crate and of
//! its users (feature `arbitrary`): every wire type derives
//! `proptest::arbitrary::Arbitrary`, so `any::<Response>()` makes any
//! message a peer could send.

use proptest::prelude::*;
use uuid::Uuid;

/// Any UUID, version bits included.
pub fn any_uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}
