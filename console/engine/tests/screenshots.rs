//! Screenshots in the console store on real sled databases: round trip,
//! the key file, tampered and moved values, wrong and missing keys,
//! exactly-once ingest of frames with their images, retention, and a scan
//! of every file under the data directory for image signatures.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use console_engine::model::{AgentId, DayClock, DAY_MS};
use console_engine::settings::ConsoleSettings;
use console_engine::store::{
    jpeg_dimensions, ConsoleStore, FetchedFrame, ImageCheckError, ScreenshotKeyError, ShotSource,
    StoreError, SCREENSHOT_KEY_FILE,
};
use console_engine::validate::Invalid;
use protocol::{
    CapturedImage, Cursor, FrameMeta, GapMarker, GapReason, ImageFormat, Record, RecordBatch,
    Retention, SeqRecord, StreamKind,
};
use sha2::{Digest, Sha256};

/// 2026-03-02T08:00:00Z.
const T0_MS: i64 = 1_772_438_400_000;
const A: AgentId = AgentId::from_u128(0xA);
const B: AgentId = AgentId::from_u128(0xB);
const EPOCH: u64 = 0xF1;
const PNG_MAGIC: [u8; 8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

/// The console data directory layout: `DATA/store`, key in
/// `DATA/identity`.
fn store_dir(data: &Path) -> PathBuf {
    data.join("store")
}

fn key_file(data: &Path) -> PathBuf {
    data.join("identity").join(SCREENSHOT_KEY_FILE)
}

fn open(data: &Path) -> ConsoleStore {
    ConsoleStore::open(&store_dir(data), DayClock::utc()).expect("store opens")
}

/// A noisy `width`×`height` JPEG (noise so it does not compress to
/// nothing), different per `seed`.
fn jpeg(seed: u32, width: u32, height: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (state >> 24) as u8;
        image::Rgb([(x * 4) as u8 ^ noise, (y * 4) as u8, noise])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
        .encode_image(&pixels)
        .expect("encode jpeg");
    bytes
}

/// A real PNG.
fn png(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut bytes = Vec::new();
    pixels
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode png");
    bytes
}

fn captured(at_ms: i64, bytes: Vec<u8>) -> CapturedImage {
    let (width, height) = jpeg_dimensions(&bytes).expect("a decodable jpeg");
    CapturedImage {
        meta: FrameMeta {
            at_ms,
            width,
            height,
            format: ImageFormat::Jpeg,
            size_bytes: u32::try_from(bytes.len()).expect("small"),
            sha256: Sha256::digest(&bytes).into(),
            blurred: false,
        },
        bytes,
    }
}

fn frame_record(seq: u64, image: &CapturedImage) -> SeqRecord {
    SeqRecord {
        seq,
        record: Record::Frame(image.meta.clone()),
    }
}

fn frames_batch(records: Vec<SeqRecord>) -> RecordBatch {
    RecordBatch {
        stream: StreamKind::Frames,
        epoch: EPOCH,
        records,
        more: false,
    }
}

fn retention(frames_days: u16) -> Retention {
    Retention {
        usage_days: 30,
        sessions_days: 30,
        health_days: 14,
        frames_days,
    }
}

/// The `data` tree of a closed store, opened with sled directly (the
/// store's background threads may hold sled's lock for a moment).
fn raw_data_tree(data: &Path) -> (sled::Db, sled::Tree) {
    for _ in 0..250 {
        if let Ok(db) = sled::Config::new().path(store_dir(data)).open() {
            let tree = db.open_tree("data").expect("data tree");
            return (db, tree);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the closed store never released its lock");
}

/// Keys of the `data` tree starting with `prefix`.
fn raw_keys(tree: &sled::Tree, prefix: u8) -> Vec<Vec<u8>> {
    tree.scan_prefix([prefix])
        .map(|item| item.expect("read").0.to_vec())
        .collect()
}

fn all_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            all_files(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn screenshots_round_trip_in_time_order_and_the_key_file_is_private() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    assert!(
        !key_file(data.path()).exists(),
        "no key before the first screenshot"
    );
    let later = captured(T0_MS + 60_000, jpeg(1, 64, 48));
    let earlier = captured(T0_MS, jpeg(2, 32, 24));
    let same_ms = captured(T0_MS, jpeg(3, 40, 30));
    let other_agent = captured(T0_MS, jpeg(4, 16, 16));
    let stored_later = store
        .put_screenshot(A, ShotSource::OnDemand, &later)
        .expect("put");
    let stored_earlier = store
        .put_screenshot(A, ShotSource::OnDemand, &earlier)
        .expect("put");
    store
        .put_screenshot(A, ShotSource::OnDemand, &same_ms)
        .expect("put");
    store
        .put_screenshot(B, ShotSource::OnDemand, &other_agent)
        .expect("put");
    assert_eq!(
        (
            stored_later.width,
            stored_later.height,
            stored_later.size_bytes
        ),
        (64, 48, later.meta.size_bytes)
    );
    assert!(stored_later.available && !stored_later.blurred);

    let key = std::fs::metadata(key_file(data.path())).expect("key file made on first use");
    assert_eq!(key.permissions().mode() & 0o777, 0o600, "key file mode");
    let dir = std::fs::metadata(data.path().join("identity")).expect("identity dir");
    assert_eq!(dir.permissions().mode() & 0o077, 0, "identity dir private");

    let listed = store.screenshots(A, T0_MS, T0_MS + 61_000).expect("list");
    let times: Vec<(i64, u32)> = listed
        .iter()
        .map(|meta| (meta.key.at_ms, meta.width))
        .collect();
    assert_eq!(
        times,
        vec![(T0_MS, 32), (T0_MS, 40), (T0_MS + 60_000, 64)],
        "ascending time, then serial; agent B not listed"
    );
    assert!(listed
        .iter()
        .all(|meta| meta.source == ShotSource::OnDemand && meta.key.agent == A));
    assert_eq!(
        store
            .screenshots(A, T0_MS + 1, T0_MS + 60_000)
            .expect("list")
            .len(),
        0,
        "the range is [from, to)"
    );
    assert_eq!(listed[0], stored_earlier);

    for (meta, image) in listed.iter().zip([&earlier, &same_ms, &later]) {
        assert_eq!(
            store.screenshot_jpeg(meta.key).expect("decrypts"),
            image.bytes
        );
    }
    // Reopened, with the key loaded from its file.
    drop(store);
    let store = open(data.path());
    assert_eq!(
        store.screenshot_jpeg(listed[2].key).expect("decrypts"),
        later.bytes
    );

    // Stores and views are audited, and the chain holds.
    let actions: Vec<String> = store
        .audit_log(0, 100)
        .expect("audit")
        .into_iter()
        .map(|record| record.entry.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|action| *action == "screenshot-store")
            .count(),
        4
    );
    assert_eq!(
        actions
            .iter()
            .filter(|action| *action == "screenshot-view")
            .count(),
        4
    );
    assert_eq!(store.verify_audit().expect("chain"), 8);
}

#[test]
fn bad_images_are_refused_and_nothing_is_stored() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    let good = captured(T0_MS, jpeg(5, 32, 32));

    let mut wrong_hash = good.clone();
    wrong_hash.meta.sha256[0] ^= 1;
    let mut wrong_size = good.clone();
    wrong_size.meta.size_bytes += 1;
    let mut wrong_dimensions = good.clone();
    wrong_dimensions.meta.width = 33;
    let mut webp = good.clone();
    webp.meta.format = ImageFormat::WebP;
    let png_bytes = png(8, 8);
    let not_jpeg = CapturedImage {
        meta: FrameMeta {
            size_bytes: png_bytes.len() as u32,
            sha256: Sha256::digest(&png_bytes).into(),
            ..good.meta.clone()
        },
        bytes: png_bytes,
    };
    let mut truncated_bytes = good.bytes.clone();
    truncated_bytes.truncate(good.bytes.len() / 3);
    let truncated = CapturedImage {
        meta: FrameMeta {
            size_bytes: truncated_bytes.len() as u32,
            sha256: Sha256::digest(&truncated_bytes).into(),
            ..good.meta.clone()
        },
        bytes: truncated_bytes,
    };

    /// What is offered, and the refusal expected.
    type Refusal = (&'static str, CapturedImage, fn(&ImageCheckError) -> bool);
    let refusals: Vec<Refusal> = vec![
        ("hash", wrong_hash, |error| {
            matches!(error, ImageCheckError::HashMismatch)
        }),
        ("size", wrong_size, |error| {
            matches!(error, ImageCheckError::SizeMismatch { .. })
        }),
        ("dimensions", wrong_dimensions, |error| {
            matches!(error, ImageCheckError::DimensionMismatch { .. })
        }),
        ("png", not_jpeg, |error| {
            matches!(error, ImageCheckError::NoJpegMagic)
        }),
        ("truncated", truncated, |error| {
            matches!(error, ImageCheckError::Undecodable { .. })
        }),
    ];
    for (what, image, expected) in refusals {
        match store.put_screenshot(A, ShotSource::OnDemand, &image) {
            Err(StoreError::BadImage { source, .. }) => {
                assert!(expected(&source), "{what}: {source}")
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    // Metadata that cannot be true is refused before the image is read.
    let from_the_future = CapturedImage {
        meta: FrameMeta {
            at_ms: i64::MAX,
            ..good.meta.clone()
        },
        bytes: good.bytes.clone(),
    };
    for (what, image) in [("webp", webp), ("future", from_the_future)] {
        match store.put_screenshot(A, ShotSource::OnDemand, &image) {
            Err(StoreError::InvalidScreenshot { reason, .. }) => {
                assert!(
                    matches!(
                        (what, &reason),
                        ("webp", Invalid::FrameFormat { .. })
                            | ("future", Invalid::InFuture { .. })
                    ),
                    "{what}: {reason}"
                )
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    assert!(store
        .screenshots(A, i64::MIN, i64::MAX)
        .expect("list")
        .is_empty());
    assert_eq!(
        store.audit_log(0, 10).expect("audit").len(),
        0,
        "nothing stored, nothing audited"
    );
}

#[test]
fn frames_are_ingested_exactly_once_with_their_images() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    let first = captured(T0_MS, jpeg(6, 48, 32));
    let dropped = captured(T0_MS + 120_000, jpeg(7, 48, 32));
    let third = captured(T0_MS + 240_000, jpeg(8, 48, 32));
    let records = vec![
        frame_record(1, &first),
        frame_record(2, &dropped),
        SeqRecord {
            seq: 3,
            record: Record::Gap(GapMarker {
                stream: StreamKind::Frames,
                first_seq: 1,
                last_seq: 1,
                reason: GapReason::QuotaExceeded,
            }),
        },
        frame_record(4, &third),
    ];
    let batch = frames_batch(records);

    // An image that does not match its record refuses the whole batch.
    let mut forged = third.clone();
    forged.bytes = first.bytes.clone();
    let bad: HashMap<u64, FetchedFrame> = HashMap::from([
        (1, FetchedFrame::Image(first.clone())),
        (2, FetchedFrame::Dropped),
        (4, FetchedFrame::Image(forged)),
    ]);
    assert!(matches!(
        store.ingest_with_frames(A, &batch, &bad, T0_MS),
        Err(StoreError::BadImage { .. })
    ));
    // So does a frame without an answer, and a plain ingest.
    let missing: HashMap<u64, FetchedFrame> =
        HashMap::from([(1, FetchedFrame::Image(first.clone()))]);
    assert!(matches!(
        store.ingest_with_frames(A, &batch, &missing, T0_MS),
        Err(StoreError::FrameImageMissing { seq: 2, .. })
    ));
    assert!(matches!(
        store.ingest(A, &batch, T0_MS),
        Err(StoreError::FrameImageMissing { seq: 1, .. })
    ));
    assert_eq!(store.cursor(A, StreamKind::Frames).expect("cursor"), None);
    assert!(store.gaps(A).expect("gaps").is_empty());
    assert!(store
        .screenshots(A, i64::MIN, i64::MAX)
        .expect("list")
        .is_empty());

    let fetched: HashMap<u64, FetchedFrame> = HashMap::from([
        (1, FetchedFrame::Image(first.clone())),
        (2, FetchedFrame::Dropped),
        (4, FetchedFrame::Image(third.clone())),
    ]);
    let report = store
        .ingest_with_frames(A, &batch, &fetched, T0_MS)
        .expect("ingest");
    assert_eq!(report.stored_records, 4);
    assert_eq!(
        report.new_cursor,
        Cursor {
            epoch: EPOCH,
            seq: 4
        }
    );
    // Replayed: every record is a duplicate, nothing is fetched or stored.
    let replay = store
        .ingest_with_frames(A, &batch, &HashMap::new(), T0_MS)
        .expect("replay");
    assert_eq!((replay.stored_records, replay.skipped_duplicates), (0, 4));

    let listed = store.screenshots(A, i64::MIN, i64::MAX).expect("list");
    let summary: Vec<(i64, bool, ShotSource)> = listed
        .iter()
        .map(|meta| (meta.key.at_ms, meta.available, meta.source))
        .collect();
    assert_eq!(
        summary,
        vec![
            (T0_MS, true, ShotSource::Periodic),
            (T0_MS + 120_000, false, ShotSource::Periodic),
            (T0_MS + 240_000, true, ShotSource::Periodic),
        ]
    );
    assert_eq!(
        (listed[1].width, listed[1].size_bytes),
        (48, dropped.meta.size_bytes),
        "a dropped image keeps its metadata"
    );
    assert_eq!(store.gaps(A).expect("gaps").len(), 1);
    assert_eq!(
        store.screenshot_jpeg(listed[0].key).expect("image"),
        first.bytes
    );
    assert_eq!(
        store.screenshot_jpeg(listed[2].key).expect("image"),
        third.bytes
    );
    let error = store
        .screenshot_jpeg(listed[1].key)
        .expect_err("dropped on the workstation");
    assert!(matches!(error, StoreError::ScreenshotDropped { .. }));
    assert!(
        error.to_string().contains("dropped on the workstation"),
        "{error}"
    );
}

#[test]
fn altered_or_moved_ciphertext_is_an_error_not_a_panic() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    let one = captured(T0_MS, jpeg(9, 32, 32));
    let two = captured(T0_MS + 1_000, jpeg(10, 32, 32));
    let key_one = store
        .put_screenshot(A, ShotSource::OnDemand, &one)
        .expect("put")
        .key;
    let key_two = store
        .put_screenshot(A, ShotSource::OnDemand, &two)
        .expect("put")
        .key;
    drop(store);

    {
        let (db, tree) = raw_data_tree(data.path());
        let images = raw_keys(&tree, b'I');
        assert_eq!(images.len(), 2);
        // Flip one bit of the first image's ciphertext.
        let first = tree.get(&images[0]).expect("get").expect("value").to_vec();
        let second = tree.get(&images[1]).expect("get").expect("value").to_vec();
        let mut altered = first.clone();
        let last = altered.len() - 1;
        altered[last] ^= 0x01;
        tree.insert(&images[0], altered).expect("alter");
        drop(tree);
        db.flush().expect("flush");
        drop(db);
        let store = open(data.path());
        let error = store
            .screenshot_jpeg(key_one)
            .expect_err("an altered value does not decrypt");
        assert!(
            matches!(error, StoreError::ScreenshotTampered { .. }),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&store_dir(data.path()).display().to_string()),
            "{text}"
        );
        assert!(text.contains("restore the store from a backup"), "{text}");
        assert_eq!(
            store.screenshot_jpeg(key_two).expect("untouched"),
            two.bytes
        );
        drop(store);

        // The intact values swapped between the two keys: each is bound to
        // its own key, so neither decrypts in the other's place.
        let (db, tree) = raw_data_tree(data.path());
        tree.insert(&images[0], second).expect("swap");
        tree.insert(&images[1], first).expect("swap");
        drop(tree);
        db.flush().expect("flush");
    }
    let store = open(data.path());
    for key in [key_one, key_two] {
        assert!(matches!(
            store.screenshot_jpeg(key),
            Err(StoreError::ScreenshotTampered { .. })
        ));
    }
}

#[test]
fn a_wrong_missing_or_open_key_file_is_an_error_naming_the_file() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    let shot = captured(T0_MS, jpeg(11, 32, 32));
    let key = store
        .put_screenshot(A, ShotSource::OnDemand, &shot)
        .expect("put")
        .key;
    drop(store);
    let path = key_file(data.path());
    let original = std::fs::read(&path).expect("key file");

    // Another console's key (a valid key file, mode 0600).
    let other = tempfile::tempdir().expect("tempdir");
    open(other.path())
        .put_screenshot(B, ShotSource::OnDemand, &shot)
        .expect("put");
    std::fs::write(
        &path,
        std::fs::read(key_file(other.path())).expect("other key"),
    )
    .expect("replace key");
    let store = open(data.path());
    let error = store.screenshot_jpeg(key).expect_err("wrong key");
    assert!(
        matches!(
            error,
            StoreError::ScreenshotKey {
                source: ScreenshotKeyError::WrongKey { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("backup"), "{text}");
    assert!(
        store
            .put_screenshot(A, ShotSource::OnDemand, &shot)
            .is_err(),
        "nothing is encrypted with a wrong key"
    );
    assert!(
        store
            .screenshots(A, i64::MIN, i64::MAX)
            .expect("list")
            .len()
            == 1,
        "listing needs no key"
    );
    drop(store);

    // Missing: never silently replaced by a new key.
    std::fs::remove_file(&path).expect("remove key");
    let store = open(data.path());
    let error = store.screenshot_jpeg(key).expect_err("missing key");
    assert!(
        matches!(
            error,
            StoreError::ScreenshotKey {
                source: ScreenshotKeyError::Missing { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()));
    assert!(!path.exists(), "no new key was made");
    drop(store);

    // Readable by others: refused with the chmod to run.
    std::fs::write(&path, &original).expect("restore");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = open(data.path());
    let error = store.screenshot_jpeg(key).expect_err("open key file");
    assert!(error.to_string().contains("chmod 600"), "{error}");
    drop(store);

    // Not a key at all.
    std::fs::write(&path, b"garbage").expect("garbage");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let store = open(data.path());
    assert!(matches!(
        store.screenshot_jpeg(key),
        Err(StoreError::ScreenshotKey {
            source: ScreenshotKeyError::Malformed { .. },
            ..
        })
    ));
    drop(store);

    // The right key back: it reads again.
    std::fs::write(&path, &original).expect("restore");
    let store = open(data.path());
    assert_eq!(store.screenshot_jpeg(key).expect("reads"), shot.bytes);
}

#[test]
fn retention_deletes_old_screenshots_for_real() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    let old = captured(T0_MS, jpeg(12, 32, 32));
    let recent = captured(T0_MS + 9 * DAY_MS, jpeg(13, 32, 32));
    let old_key = store
        .put_screenshot(A, ShotSource::OnDemand, &old)
        .expect("put")
        .key;
    // A periodic one whose image was dropped: its metadata goes too.
    let dropped = captured(T0_MS + 1_000, jpeg(14, 32, 32));
    store
        .ingest_with_frames(
            A,
            &frames_batch(vec![frame_record(1, &dropped)]),
            &HashMap::from([(1, FetchedFrame::Dropped)]),
            T0_MS,
        )
        .expect("ingest");
    let recent_key = store
        .put_screenshot(A, ShotSource::OnDemand, &recent)
        .expect("put")
        .key;

    // Day 10 with 7 days: the two of day 0 go, day 9 stays.
    let settings = ConsoleSettings::load(&store).expect("settings");
    ConsoleSettings {
        retention: retention(7),
        ..settings.clone()
    }
    .save_changes(&settings, &store)
    .expect("save");
    let report = console_engine::sync::purge(&store, T0_MS + 10 * DAY_MS, "test").expect("purge");
    assert_eq!(report.screenshots().records, 2);
    assert!(report.screenshots().bytes > old.bytes.len() as u64);
    let left: Vec<_> = store
        .screenshots(A, i64::MIN, i64::MAX)
        .expect("list")
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    assert_eq!(left, vec![recent_key]);
    assert!(matches!(
        store.screenshot_jpeg(old_key),
        Err(StoreError::ScreenshotNotFound { .. })
    ));
    let purge_entry = store
        .audit_log(0, 100)
        .expect("audit")
        .into_iter()
        .find(|record| record.entry.action == "purge")
        .expect("the purge is audited");
    assert!(purge_entry.entry.detail.contains("2 screenshots"));
    // A second purge finds nothing more.
    assert_eq!(
        store
            .prune(T0_MS + 10 * DAY_MS, &retention(7))
            .expect("prune")
            .screenshots()
            .records,
        0
    );
    drop(store);

    // Gone from the database, index entries and images alike.
    let (_db, tree) = raw_data_tree(data.path());
    assert_eq!(raw_keys(&tree, b'S').len(), 1);
    assert_eq!(raw_keys(&tree, b'I').len(), 1);
}

#[test]
fn no_jpeg_or_png_signature_reaches_any_file_of_the_data_directory() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    let mut payloads = Vec::new();
    for seed in 0..6_u32 {
        let mut bytes = jpeg(100 + seed, 48 + seed * 8, 40);
        if seed % 2 == 1 {
            // PNG-like: a whole PNG after the JPEG's end (decoders stop at
            // the end marker, so it is still a valid JPEG).
            bytes.extend_from_slice(&png(12, 12));
        }
        let image = captured(T0_MS + i64::from(seed) * 1_000, bytes);
        payloads.push(image.bytes.clone());
        if seed < 3 {
            store
                .put_screenshot(A, ShotSource::OnDemand, &image)
                .expect("put");
        } else {
            let seq = u64::from(seed) - 2;
            store
                .ingest_with_frames(
                    A,
                    &frames_batch(vec![frame_record(seq, &image)]),
                    &HashMap::from([(seq, FetchedFrame::Image(image))]),
                    T0_MS,
                )
                .expect("ingest");
        }
    }
    // A real PNG offered as a screenshot is refused before any write.
    let png_bytes = png(20, 20);
    payloads.push(png_bytes.clone());
    let refused = CapturedImage {
        meta: FrameMeta {
            at_ms: T0_MS,
            width: 20,
            height: 20,
            format: ImageFormat::Jpeg,
            size_bytes: png_bytes.len() as u32,
            sha256: Sha256::digest(&png_bytes).into(),
            blurred: false,
        },
        bytes: png_bytes,
    };
    assert!(store
        .put_screenshot(A, ShotSource::OnDemand, &refused)
        .is_err());
    for key in store
        .screenshots(A, i64::MIN, i64::MAX)
        .expect("list")
        .iter()
        .map(|meta| meta.key)
    {
        store.screenshot_jpeg(key).expect("reads back");
    }
    drop(store);

    // What to look for: the PNG signature, the JPEG start-of-image marker
    // followed by the marker our encoder writes next (a bare 3-byte
    // FF D8 FF turns up by chance in ~1 of 5600 random 3-byte windows of
    // ciphertext, so it alone would make this test flaky), and a 32-byte
    // window from the start and from the middle of every payload.
    let mut needles: Vec<Vec<u8>> = vec![PNG_MAGIC.to_vec()];
    for payload in &payloads {
        if payload.starts_with(&[0xFF, 0xD8, 0xFF]) {
            needles.push(payload[..4].to_vec());
        } else {
            assert!(payload.starts_with(&PNG_MAGIC));
        }
        needles.push(payload[..32].to_vec());
        let middle = payload.len() / 2;
        needles.push(payload[middle..middle + 32].to_vec());
    }
    let mut files = Vec::new();
    all_files(data.path(), &mut files);
    assert!(files.len() > 3, "the store's files: {files:?}");
    let mut scanned_bytes = 0;
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        scanned_bytes += bytes.len();
        for needle in &needles {
            assert!(
                !contains(&bytes, needle),
                "{} holds plain image bytes {:02x?}",
                file.display(),
                &needle[..8]
            );
        }
    }
    let payload_bytes: usize = payloads.iter().map(Vec::len).sum();
    assert!(
        scanned_bytes > payload_bytes,
        "the ciphertext is on disk: {scanned_bytes} bytes scanned"
    );
}
