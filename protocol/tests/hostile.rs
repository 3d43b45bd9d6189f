//! Hostile frames: absurd length prefixes and length fields inside bodies are
//! refused before any large allocation (measured with a counting allocator).

#![allow(unsafe_code)] // the counting allocator below; nothing else

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use protocol::{
    decode_frame, encode_frame, ActivitySpan, CapturedImage, Cursor, DecodeError, DiskUsage,
    FrameMeta, GapMarker, GapReason, HealthLevel, HealthSample, Hello, HelloReply, ImageFormat,
    Policy, Presence, ProcessUsage, Pull, Record, RecordBatch, Request, Response, SeqRecord,
    SessionEvent, SessionEventKind, StreamKind, UsageSpan, MAX_REQUEST_BODY_BYTES,
    MAX_RESPONSE_BODY_BYTES,
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

/// Rounds of the randomised tests: `SMARTTRACKER_FUZZ_CASES` (see
/// `scripts/fuzz.sh`) raises them.
fn rounds(default: u64) -> u64 {
    std::env::var("SMARTTRACKER_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse::<u64>().ok())
        .map_or(default, |cases| cases.max(default))
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Deterministic random garbage, many sizes: no panic, bounded allocation.
#[test]
fn random_garbage_is_rejected_with_bounded_allocation() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let largest_bytes = largest_allocation_during(|| {
        for round in 0..rounds(20_000) {
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

/// One message of every response kind with every record kind, as an
/// honest agent would send them.
fn sample_responses() -> Vec<Response> {
    let records = vec![
        Record::Usage(UsageSpan {
            start_ms: 1_795_000_000_000,
            end_ms: 1_795_000_060_000,
            app: "Firefox".into(),
            raw_app: "firefox-esr".into(),
            title: Some("Mail — Firefox".into()),
        }),
        Record::Activity(ActivitySpan {
            start_ms: 1_795_000_000_000,
            end_ms: 1_795_000_300_000,
            presence: Presence::Idle,
            user: "marie".into(),
        }),
        Record::Session(SessionEvent {
            at_ms: 1_795_000_000_000,
            kind: SessionEventKind::ClockJump { delta_ms: -3_600 },
            user: "marie".into(),
        }),
        Record::Health(HealthSample {
            at_ms: 1_795_000_000_000,
            cpu_pct: 12.5,
            mem_used_bytes: 1 << 30,
            mem_total_bytes: 8 << 30,
            swap_used_bytes: 0,
            swap_total_bytes: 1 << 30,
            disks: vec![DiskUsage {
                mount: "/".into(),
                used_bytes: 5,
                total_bytes: 9,
            }],
            uptime_secs: 3_600,
            load_avg: [0.5, 0.4, 0.3],
            top_processes: vec![ProcessUsage {
                name: "code".into(),
                cpu_pct: 150.0,
                mem_bytes: 1 << 28,
            }],
            score: 88,
            level: HealthLevel::Ok,
        }),
        Record::Gap(GapMarker {
            stream: StreamKind::Usage,
            first_seq: 3,
            last_seq: 9,
            reason: GapReason::QuotaExceeded,
        }),
    ];
    let meta = FrameMeta {
        at_ms: 1_795_000_000_000,
        width: 1280,
        height: 720,
        format: ImageFormat::Jpeg,
        size_bytes: 64,
        sha256: [7; 32],
        blurred: true,
    };
    vec![
        Response::Hello(HelloReply {
            version: 2,
            agent_id: uuid::Uuid::from_u128(42),
            hostname: "pc-07".into(),
            demo: false,
            heads: vec![(StreamKind::Usage, Cursor { epoch: 9, seq: 3 })],
            time_zone: "Europe/Paris".into(),
        }),
        Response::Records(RecordBatch {
            stream: StreamKind::Usage,
            epoch: 9,
            records: records
                .into_iter()
                .zip(1..)
                .map(|(record, seq)| SeqRecord { seq, record })
                .collect(),
            more: true,
        }),
        Response::Policy(Policy::default()),
        Response::Image(CapturedImage {
            meta,
            bytes: vec![0xff; 64],
        }),
    ]
}

/// Valid frames with random bytes flipped, cut, repeated or inserted:
/// every mutation decodes or is refused, never panics, and never makes
/// the decoder allocate near a cap.
#[test]
fn mutated_messages_are_refused_or_decoded_with_bounded_allocation() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut frames: Vec<Vec<u8>> = sample_responses()
        .iter()
        .map(|response| encode_frame(response).expect("encodes"))
        .collect();
    frames.push(
        encode_frame(&Request::Hello(Hello {
            min_version: 1,
            max_version: 1,
            console_name: "Poste direction".into(),
        }))
        .expect("encodes"),
    );
    frames.push(
        encode_frame(&Request::Pull(Pull {
            stream: StreamKind::Sessions,
            after: Cursor { epoch: 9, seq: 3 },
            max_records: 2_000,
        }))
        .expect("encodes"),
    );
    let mut decoded = 0u64;
    let largest_bytes = largest_allocation_during(|| {
        for _ in 0..rounds(20_000) {
            let mut bytes = frames[(next() % frames.len() as u64) as usize].clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 4 {
                    0 => bytes[at] ^= 1 << (next() % 8),
                    1 => bytes[at] = next() as u8,
                    2 => bytes.truncate(at.max(1)),
                    _ => bytes.insert(at, next() as u8),
                }
            }
            // Keep the prefix consistent half the time, so bodies parse.
            if next().is_multiple_of(2) && bytes.len() >= 4 {
                let body_len = u32::try_from(bytes.len() - 4).expect("small");
                bytes[..4].copy_from_slice(&body_len.to_be_bytes());
            }
            decoded += u64::from(decode_frame::<Response>(&bytes).is_ok());
            decoded += u64::from(decode_frame::<Request>(&bytes).is_ok());
        }
    });
    assert!(
        decoded > 0,
        "some mutations still decode: the bodies are parsed"
    );
    // A length field inside a body is believed up to the cap and no
    // further (bincode checks every claim against it before allocating).
    assert!(
        largest_bytes <= MAX_RESPONSE_BODY_BYTES,
        "allocated {largest_bytes} bytes"
    );
}
