//! Hostile frames: absurd length prefixes and length fields inside bodies are
//! refused before any large allocation (measured with a counting allocator).

#![allow(unsafe_code)] // the counting allocator below; nothing else

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use protocol::{
    decode_frame, DecodeError, Request, Response, MAX_REQUEST_BODY_BYTES, MAX_RESPONSE_BODY_BYTES,
};

/// Records the largest single allocation made by the current thread.
struct LargestAllocation;

thread_local! {
    static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the only
// extra work is a thread-local max over the requested size.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_BYTES.with(|largest| largest.set(largest.get().max(layout.size())));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

fn largest_allocation_during(run: impl FnOnce()) -> usize {
    LARGEST_BYTES.with(|largest| largest.set(0));
    run();
    LARGEST_BYTES.with(Cell::get)
}

#[test]
fn four_gib_length_prefix_is_refused_without_allocating() {
    let mut frame = vec![0xff, 0xff, 0xff, 0xff];
    frame.extend_from_slice(&[0u8; 64]);
    let largest_bytes = largest_allocation_during(|| {
        let request = decode_frame::<Request>(&frame);
        assert!(
            matches!(
                request,
                Err(DecodeError::TooLarge {
                    len_bytes: 0xffff_ffff,
                    ..
                })
            ),
            "{request:?}"
        );
        let response = decode_frame::<Response>(&frame);
        assert!(
            matches!(response, Err(DecodeError::TooLarge { .. })),
            "{response:?}"
        );
    });
    assert!(largest_bytes < 4096, "allocated {largest_bytes} bytes");
}

#[test]
fn length_just_over_each_cap_is_refused() {
    for (cap, is_too_large) in [
        (
            MAX_REQUEST_BODY_BYTES,
            decode_frame::<Request>(&frame_header(MAX_REQUEST_BODY_BYTES + 1)).map(|_| ()),
        ),
        (
            MAX_RESPONSE_BODY_BYTES,
            decode_frame::<Response>(&frame_header(MAX_RESPONSE_BODY_BYTES + 1)).map(|_| ()),
        ),
    ] {
        assert!(
            matches!(is_too_large, Err(DecodeError::TooLarge { cap_bytes, .. }) if cap_bytes == cap),
            "{is_too_large:?}"
        );
    }
}

fn frame_header(len: usize) -> Vec<u8> {
    u32::try_from(len).expect("fits u32").to_be_bytes().to_vec()
}

/// A small body whose inner string length claims far more than the frame
/// holds: bincode's limit stops it at the cap, and the slice runs out.
#[test]
fn inner_length_claims_are_bounded_by_the_cap() {
    // Request::Hello { min 1, max 1, console_name: len = u64::MAX }
    let body = [
        0x00, 0x01, 0x01, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    let mut frame = frame_header(body.len());
    frame.extend_from_slice(&body);
    let largest_bytes = largest_allocation_during(|| {
        let decoded = decode_frame::<Request>(&frame);
        assert!(
            matches!(decoded, Err(DecodeError::Malformed(_))),
            "{decoded:?}"
        );
    });
    assert!(
        largest_bytes <= MAX_REQUEST_BODY_BYTES,
        "allocated {largest_bytes} bytes"
    );
}

#[test]
fn unknown_variant_and_trailing_bytes_are_errors() {
    let unknown_variant = [0, 0, 0, 1, 0x7f];
    assert!(matches!(
        decode_frame::<Request>(&unknown_variant),
        Err(DecodeError::Malformed(_))
    ));
    // GetPolicy (variant 3) followed by one stray byte inside the body.
    let trailing = [0, 0, 0, 2, 0x03, 0x00];
    assert!(matches!(
        decode_frame::<Request>(&trailing),
        Err(DecodeError::TrailingBytes { trailing_bytes: 1 })
    ));
}

/// Deterministic random garbage, many sizes: no panic, bounded allocation.
#[test]
fn random_garbage_is_rejected_with_bounded_allocation() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let largest_bytes = largest_allocation_during(|| {
        for round in 0..20_000 {
            let len = (next() % 256) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && bytes.len() >= 4 {
                // Half the rounds carry a plausible length so the body is parsed.
                let body_len = u32::try_from(bytes.len() - 4).expect("small");
                bytes[..4].copy_from_slice(&body_len.to_be_bytes());
            }
            let _ = decode_frame::<Request>(&bytes);
            let _ = decode_frame::<Response>(&bytes);
        }
    });
    // Seen: about 39 KB. Anything near a cap would mean a length field in
    // the garbage was trusted.
    assert!(
        largest_bytes < 1024 * 1024,
        "allocated {largest_bytes} bytes"
    );
}
