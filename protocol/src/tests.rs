//! Codec tests: property round trips, golden bytes, hostile input.

use proptest::prelude::*;
use uuid::Uuid;

use crate::*;

/// Encodes, decodes and re-encodes; bincode is canonical, so equal bytes
/// prove the round trip even for float fields holding NaN.
fn assert_round_trip<M: WireMessage + std::fmt::Debug>(message: &M) {
    let frame = encode_frame(message).expect("encodes");
    let (decoded, used_bytes) = decode_frame::<M>(&frame).expect("decodes");
    assert_eq!(used_bytes, frame.len());
    assert_eq!(
        encode_frame(&decoded).expect("re-encodes"),
        frame,
        "{message:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_round_trips(request in any::<Request>()) {
        assert_round_trip(&request);
    }

    #[test]
    fn every_response_round_trips(response in any::<Response>()) {
        if let Ok(frame) = encode_frame(&response) {
            let (decoded, _) = decode_frame::<Response>(&frame).expect("decodes");
            prop_assert_eq!(encode_frame(&decoded).expect("re-encodes"), frame);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_frame::<Request>(&bytes);
        let _ = decode_frame::<Response>(&bytes);
    }

    #[test]
    fn garbage_body_behind_a_valid_length_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut frame = u32::try_from(body.len()).expect("small").to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let _ = decode_frame::<Request>(&frame);
        let _ = decode_frame::<Response>(&frame);
    }

    #[test]
    fn truncating_a_valid_frame_is_an_error(request in any::<Request>(), cut in any::<prop::sample::Index>()) {
        let frame = encode_frame(&request).expect("encodes");
        let len = cut.index(frame.len());
        prop_assert!(decode_frame::<Request>(&frame[..len]).is_err());
    }
}

fn sample_cursor() -> Cursor {
    Cursor {
        epoch: 0x0102_0304_0506_0708,
        seq: 42,
    }
}

fn sample_spec() -> CaptureSpec {
    CaptureSpec {
        monitor: Some(1),
        max_width: 320,
        max_height: 180,
        quality: 70,
    }
}

fn sample_image() -> CapturedImage {
    CapturedImage {
        meta: FrameMeta {
            at_ms: 5,
            width: 2,
            height: 1,
            format: ImageFormat::Jpeg,
            size_bytes: 3,
            sha256: [0xcd; 32],
            blurred: false,
        },
        bytes: vec![0xff, 0xd8, 0xff],
    }
}

fn sample_health() -> HealthSample {
    HealthSample {
        at_ms: 1_700_000_000_000,
        cpu_pct: 12.5,
        mem_used_bytes: 4 << 30,
        mem_total_bytes: 16 << 30,
        swap_used_bytes: 0,
        swap_total_bytes: 2 << 30,
        disks: vec![DiskUsage {
            mount: "/".into(),
            used_bytes: 50 << 30,
            total_bytes: 100 << 30,
        }],
        uptime_secs: 3600,
        load_avg: [0.5, 0.25, 0.125],
        top_processes: vec![ProcessUsage {
            name: "firefox".into(),
            cpu_pct: 8.0,
            mem_bytes: 1 << 30,
        }],
        score: 92,
        level: HealthLevel::Ok,
    }
}

/// One message per kind, with its exact wire bytes. A failure here means the
/// wire format changed: bump the protocol version or fix the change.
fn golden_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let requests = [
        (
            "hello",
            Request::Hello(Hello {
                min_version: 2,
                max_version: 2,
                console_name: "rh".into(),
            }),
            "00000006000202027268",
        ),
        (
            "pull",
            Request::Pull(Pull {
                stream: StreamKind::Health,
                after: sample_cursor(),
                max_records: 500,
            }),
            "0000000f0102fd08070605040302012afbf401",
        ),
        (
            "ack",
            Request::Ack(Ack {
                stream: StreamKind::Usage,
                upto: sample_cursor(),
            }),
            "0000000c0200fd08070605040302012a",
        ),
        ("get-policy", Request::GetPolicy, "0000000103"),
        (
            "set-policy",
            Request::SetPolicy(Policy::default()),
            "0000000f0400b400001e1e0e071e00fb580200",
        ),
        (
            "screenshot",
            Request::Screenshot(sample_spec()),
            "00000008050101fb4001b446",
        ),
        (
            "live-start",
            Request::LiveStart(LiveStart {
                spec: sample_spec(),
                interval_ms: 1_000,
            }),
            "0000000b060101fb4001b446fbe803",
        ),
        (
            "live-frame",
            Request::LiveFrame(LiveSession { session_id: 9 }),
            "000000020709",
        ),
        (
            "live-stop",
            Request::LiveStop(LiveSession { session_id: 9 }),
            "000000020809",
        ),
        (
            "fetch-frame",
            Request::FetchFrame(sample_cursor()),
            "0000000b09fd08070605040302012a",
        ),
        (
            "erase-users",
            Request::EraseUsers(EraseUsers {
                users: vec!["ana".into(), "bo".into()],
            }),
            "000000090d0203616e6102626f",
        ),
    ];
    let responses = [
        ("hello-reply", Response::Hello(HelloReply { version: 2, agent_id: Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff), hostname: "pc-07".into(), demo: true, heads: vec![(StreamKind::Usage, sample_cursor())], time_zone: "America/Montreal".into() }), "0000003700021000112233445566778899aabbccddeeff0570632d3037010100fd08070605040302012a10416d65726963612f4d6f6e747265616c"),
        ("records-usage", Response::Records(RecordBatch { stream: StreamKind::Usage, epoch: 7, more: false, records: vec![SeqRecord { seq: 1, record: Record::Usage(UsageSpan { start_ms: 1_000, end_ms: 61_000, app: "Firefox".into(), raw_app: "firefox-esr".into(), title: None }) }] }), "00000024010007010100fbd007fc90dc01000746697265666f780b66697265666f782d6573720000"),
        ("records-sessions", Response::Records(RecordBatch { stream: StreamKind::Sessions, epoch: 7, more: true, records: vec![
            SeqRecord { seq: 1, record: Record::Session(SessionEvent { at_ms: 1_000, kind: SessionEventKind::Login, user: "ana".into() }) },
            SeqRecord { seq: 2, record: Record::Activity(ActivitySpan { start_ms: 1_000, end_ms: 2_000, presence: Presence::Idle, user: "ana".into() }) },
            SeqRecord { seq: 3, record: Record::Session(SessionEvent { at_ms: 3_000, kind: SessionEventKind::ClockJump { delta_ms: -3_600_000 }, user: "ana".into() }) },
        ] }), "0000002b010107030102fbd0070003616e610201fbd007fba00f0103616e610302fb701707fcffdc6d0003616e6101"),
        ("records-health", Response::Records(RecordBatch { stream: StreamKind::Health, epoch: 7, more: false, records: vec![SeqRecord { seq: 9, record: Record::Health(sample_health()) }] }), "00000064010207010903fd00d0ca9f1703000000004841fd0000000001000000fd000000000400000000fc0000008001012ffd000000800c000000fd0000000019000000fb100e0000003f0000803e0000003e010766697265666f7800000041fc000000405c0000"),
        ("records-frames-gap", Response::Records(RecordBatch { stream: StreamKind::Frames, epoch: 7, more: false, records: vec![
            SeqRecord { seq: 3, record: Record::Frame(FrameMeta { at_ms: 5, width: 320, height: 180, format: ImageFormat::Jpeg, size_bytes: 9_000, sha256: [0xab; 32], blurred: true }) },
            SeqRecord { seq: 4, record: Record::Gap(GapMarker { stream: StreamKind::Frames, first_seq: 4, last_seq: 10, reason: GapReason::QuotaExceeded }) },
        ] }), "000000370103070203040afb4001b400fb2823abababababababababababababababababababababababababababababababab01040503040a0000"),
        ("acked", Response::Acked(AckReply { stream: StreamKind::Sessions, acked: sample_cursor() }), "0000000c0201fd08070605040302012a"),
        ("policy", Response::Policy(Policy::default()), "0000000f0300b400001e1e0e071e00fb580200"),
        ("error", Response::Error(ErrorReply { code: ErrorCode::Forbidden, message: "admin only".into() }), "0000000d04010a61646d696e206f6e6c79"),
        ("image", Response::Image(sample_image()), "0000002b050a02010003cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd0003ffd8ff"),
        ("live-started", Response::LiveStarted(LiveLease { session_id: 9, interval_ms: 1_000, lease_secs: 15 }), "000000060609fbe8030f"),
        ("live-frame-new", Response::LiveFrame(LiveFrameReply { session_id: 9, frame: Some(sample_image()), interval_ms: 1_000 }), "000000300709010a02010003cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd0003ffd8fffbe803"),
        ("live-frame-same", Response::LiveFrame(LiveFrameReply { session_id: 9, frame: None, interval_ms: 2_000 }), "00000006070900fbd007"),
        ("live-stopped", Response::LiveStopped(LiveSession { session_id: 9 }), "000000020809"),
        ("erased", Response::Erased(ErasedReply { records: 1_234, images: 3 }), "000000050cfbd20403"),
        ("records-erased-gap", Response::Records(RecordBatch { stream: StreamKind::Sessions, epoch: 7, more: false, records: vec![
            SeqRecord { seq: 5, record: Record::Gap(GapMarker { stream: StreamKind::Sessions, first_seq: 5, last_seq: 5, reason: GapReason::Erased }) },
        ] }), "0000000b0101070105050105050200"),
        ("error-not-found", Response::Error(ErrorReply { code: ErrorCode::NotFound, message: String::new() }), "00000003040600"),
    ];
    let mut cases = Vec::new();
    for (name, message, golden) in requests {
        cases.push((name, encode_frame(&message).expect("encodes"), golden));
    }
    for (name, message, golden) in responses {
        cases.push((name, encode_frame(&message).expect("encodes"), golden));
    }
    cases
}

#[test]
fn golden_bytes_per_message_kind() {
    let mut mismatches = Vec::new();
    for (name, frame, golden) in golden_cases() {
        let actual = hex::encode(&frame);
        if actual != golden.replace('_', "") {
            mismatches.push(format!("(\"{name}\", \"{actual}\")"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "wire bytes changed:\n{}",
        mismatches.join("\n")
    );
}
