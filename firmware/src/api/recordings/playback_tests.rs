//! Playback and export against real recordings: the recorder writes sealed segments
//! of the synthetic scene (OpenH264, io_uring files, the LMDB index), and what the API
//! would serve is compared byte for byte with the file decrypted whole.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;

use super::playback::{
    BlockingBody, ExportSource, PlaybackError, RangeSource, SegmentReader, Source,
};
use super::range::parse_range;
use crate::api::body::BodyError;
use crate::encode::Encoder;
use crate::encode::h264::{H264Config, OpenH264};
use crate::record::fmp4::export;
use crate::record::fmp4::testing::{TestScene, ffprobe};
use crate::record::{Recorder, RecorderConfig, layout};
use crate::runtime;
use crate::store::{Segment, SegmentState, Store};
use crate::vault::{Argon2Params, FileReader, UnlockedVault, VaultError, VaultRecord};

const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;
const FPS: u32 = 30;

/// A data directory with recordings in it.
struct Recorded {
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
    store: Arc<Store>,
    vault: Arc<UnlockedVault>,
    segments: Vec<Segment>,
}

impl Recorded {
    /// `seconds` of video in segments of `segment_secs`, a keyframe every second.
    /// `None` where io_uring is missing (the recorder writes through it).
    fn new(seconds: u64, segment_secs: u64) -> Option<Self> {
        if !runtime::io_uring_available() {
            eprintln!("skipped: io_uring is not available here, and the recorder needs it");
            return None;
        }
        let (record, _recovery, vault) = VaultRecord::create(
            "owner",
            "a long enough passphrase",
            Argon2Params::INSECURE_FAST,
        )
        .unwrap();
        let sealing = record.sealing_key().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let store = Arc::new(Store::open(&data_dir).unwrap());

        let scene = TestScene::new(WIDTH, HEIGHT, 5);
        let mut encoder = OpenH264::new(H264Config {
            width: WIDTH,
            height: HEIGHT,
            fps: FPS,
            bitrate: 400_000,
            keyframe_interval: FPS,
        })
        .unwrap();
        let packets: Vec<_> = (0..seconds * u64::from(FPS))
            .map(|seq| {
                let frame = scene.frame(seq, Duration::from_secs(seq) / FPS);
                encoder.encode(&frame).unwrap()
            })
            .collect();

        let mut config = RecorderConfig::new(&data_dir, WIDTH, HEIGHT, FPS);
        config.segment_duration = Duration::from_secs(segment_secs);
        config.min_free_bytes = 0;
        config.reserve_bytes = 64 << 10;
        let task_store = Arc::clone(&store);
        runtime::start(async move {
            let (recorder, control) = Recorder::new(config, task_store, sealing, None);
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            let task = runtime::spawn(recorder.run(rx));
            let count = packets.len() as u64;
            for packet in packets {
                tx.send(packet).await.unwrap();
            }
            while control.status().packets < count {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            control.shutdown();
            task.await.unwrap();
        })
        .unwrap();
        let segments = store
            .segments_overlapping(0, u64::MAX, 100)
            .unwrap()
            .into_iter()
            .map(|s| store.segment(s.id).unwrap().unwrap())
            .collect();
        Some(Self {
            _dir: dir,
            data_dir,
            store,
            vault: Arc::new(vault),
            segments,
        })
    }

    fn path(&self, segment: &Segment) -> PathBuf {
        layout::absolute(&self.data_dir, &segment.path)
    }

    /// The whole file decrypted in order: what `mecam decrypt` gives.
    fn decrypted(&self, segment: &Segment) -> Vec<u8> {
        let file = std::fs::File::open(self.path(segment)).unwrap();
        let mut out = Vec::new();
        FileReader::open(std::io::BufReader::new(file), &self.vault)
            .unwrap()
            .copy_to(&mut out)
            .unwrap();
        out
    }

    /// Decrypted chunks: the init segment, then each fragment.
    fn chunks(&self, segment: &Segment) -> Vec<Vec<u8>> {
        let file = std::fs::File::open(self.path(segment)).unwrap();
        FileReader::open(std::io::BufReader::new(file), &self.vault)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn reader(&self, segment: &Segment) -> Result<SegmentReader, PlaybackError> {
        SegmentReader::open(&self.data_dir, segment, &self.vault)
    }
}

/// Polls a body to its end on a runtime with a blocking pool, as hyper would: the
/// bytes it gave, and the error that cut it, if one did.
fn collect<S: Source>(body: BlockingBody<S>) -> (Vec<u8>, Option<BodyError>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut body = std::pin::pin!(body);
        let mut out = Vec::new();
        loop {
            match body.frame().await {
                None => return (out, None),
                Some(Ok(frame)) => out.extend_from_slice(&frame.into_data().unwrap()),
                Some(Err(e)) => return (out, Some(e)),
            }
        }
    })
}

/// What `Range: header` serves from `reader`.
fn serve(reader: SegmentReader, header: &str) -> Vec<u8> {
    let len = reader.len();
    let (first, last) = parse_range(header, len).unwrap().unwrap();
    let source = RangeSource::new(reader, first, last);
    let expected = source.len();
    let body = BlockingBody::new(source, Some(expected), "test");
    assert_eq!(http_body::Body::size_hint(&body).exact(), Some(expected));
    let (bytes, err) = collect(body);
    assert!(err.is_none(), "{header}: {err:?}");
    assert_eq!(bytes.len() as u64, expected, "{header}");
    bytes
}

#[test]
fn playback_ranges_are_byte_exact_slices_of_the_decrypted_file() {
    let Some(rec) = Recorded::new(5, 60) else {
        return;
    };
    assert_eq!(rec.segments.len(), 1);
    let segment = &rec.segments[0];
    assert_eq!(segment.fragments.len(), 5);
    let full = rec.decrypted(segment);
    let len = full.len() as u64;
    assert_eq!(
        rec.reader(segment).unwrap().len(),
        len,
        "length from the index alone"
    );

    // Chunk boundaries in the served bytes: the init segment, then each fragment.
    let mut bounds = vec![rec.chunks(segment)[0].len() as u64];
    for f in &segment.fragments {
        bounds.push(bounds.last().unwrap() + f.len - 20);
    }
    assert_eq!(*bounds.last().unwrap(), len);

    let mut headers = vec![
        "bytes=0-".to_string(),
        "bytes=0-99".into(),
        "bytes=1000-".into(),
        "bytes=-1".into(),
        "bytes=-100000000".into(),
        format!("bytes={}-{}", len - 1, len + 100),
    ];
    for &b in &bounds[..bounds.len() - 1] {
        headers.push(format!("bytes={}-{}", b - 1, b)); // straddles two chunks
        headers.push(format!("bytes={b}-{b}"));
        headers.push(format!("bytes={}-{}", b - 10, b + 5000)); // one and a bit
    }
    headers.push(format!("bytes={}-{}", bounds[0] + 1, bounds[3] + 1)); // several
    for header in &headers {
        let (first, last) = parse_range(header, len).unwrap().unwrap();
        let served = serve(rec.reader(segment).unwrap(), header);
        assert!(
            served == full[first as usize..=last as usize],
            "{header}: served bytes differ from the decrypted file"
        );
    }

    // The two requests a player makes concatenate to the whole file.
    let mut joined = serve(rec.reader(segment).unwrap(), "bytes=0-99");
    joined.extend(serve(rec.reader(segment).unwrap(), "bytes=100-"));
    assert!(joined == full);
}

#[test]
fn playback_a_tampered_chunk_cuts_the_stream_and_nothing_unverified_is_sent() {
    let Some(rec) = Recorded::new(4, 60) else {
        return;
    };
    let segment = &rec.segments[0];
    let full = rec.decrypted(segment);
    let chunks = rec.chunks(segment);
    let before_damage = (chunks[0].len() + chunks[1].len()) as u64;

    // Flip one ciphertext byte of the second fragment (chunk 2).
    let path = rec.path(segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = segment.fragments[1].offset as usize + 4 + 100;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let reader = rec.reader(segment).unwrap();
    let len = reader.len();
    let (served, err) = collect(BlockingBody::new(
        RangeSource::new(reader, 0, len - 1),
        Some(len),
        "test",
    ));
    assert!(err.is_some(), "the body must end with an error");
    assert!(
        served.len() as u64 <= before_damage,
        "{} bytes served, only {before_damage} verified",
        served.len()
    );
    assert!(
        served == full[..served.len()],
        "what was sent is the verified prefix"
    );

    // A range that does not touch the damaged chunk still plays.
    let ok = serve(rec.reader(segment).unwrap(), "bytes=0-99");
    assert!(ok == full[..100]);
    // A range inside it fails before sending anything of it.
    let inside = format!("bytes={}-{}", before_damage + 10, before_damage + 20);
    let reader = rec.reader(segment).unwrap();
    let (first, last) = parse_range(&inside, reader.len()).unwrap().unwrap();
    let (served, err) = collect(BlockingBody::new(
        RangeSource::new(reader, first, last),
        Some(11),
        "test",
    ));
    assert!(served.is_empty() && err.is_some());

    // Damage in the init segment is found when opening, before any header goes out.
    bytes[crate::vault::HEADER_LEN + 4 + 10] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        rec.reader(segment),
        Err(PlaybackError::Vault {
            source: VaultError::Authentication { chunk: 0 },
            ..
        })
    ));
}

#[test]
fn playback_a_writing_row_is_served_up_to_its_last_committed_fragment() {
    let Some(rec) = Recorded::new(4, 60) else {
        return;
    };
    let full = rec.decrypted(&rec.segments[0]);
    // The row as a checkpoint left it: two fragments committed, the file goes on.
    let mut row = rec.segments[0].clone();
    row.fragments.truncate(2);
    row.end_us = row.fragments[1].end_us();
    row.state = SegmentState::Writing;
    rec.store.put_segment(&row).unwrap();
    let row = rec.store.segment(row.id).unwrap().unwrap();
    let reader = rec.reader(&row).unwrap();
    let chunks = rec.chunks(&row);
    let committed = chunks[..3].iter().map(Vec::len).sum::<usize>();
    assert_eq!(reader.len(), committed as u64);
    let served = serve(reader, "bytes=0-");
    assert!(served == full[..committed]);

    // A row that does not describe its file is refused, not served.
    let mut wrong = row.clone();
    wrong.fragments[1].offset += 1;
    assert!(matches!(
        rec.reader(&wrong),
        Err(PlaybackError::Mismatch { .. })
    ));
    // A file that is gone is reported as such.
    std::fs::remove_file(rec.path(&row)).unwrap();
    assert!(matches!(
        rec.reader(&row),
        Err(PlaybackError::Missing { .. })
    ));
}

#[test]
fn playback_export_stitches_the_fragments_in_range_across_segments() {
    let Some(rec) = Recorded::new(6, 2) else {
        return;
    };
    assert_eq!(rec.segments.len(), 3, "{:?}", rec.segments);
    let (a, c) = (&rec.segments[0], &rec.segments[2]);
    let open = |from_us, to_us| {
        ExportSource::open(
            rec.data_dir.clone(),
            Arc::clone(&rec.store),
            Arc::clone(&rec.vault),
            from_us,
            to_us,
        )
    };

    // Everything: the init segment once, then all six fragments renumbered.
    let (all, err) = collect(BlockingBody::new(
        open(a.start_us, c.end_us).unwrap(),
        None,
        "test",
    ));
    assert!(err.is_none(), "{err:?}");
    let chunks: Vec<Vec<Vec<u8>>> = rec.segments.iter().map(|s| rec.chunks(s)).collect();
    let fragments: Vec<&[u8]> = chunks
        .iter()
        .flat_map(|c| c[1..].iter().map(Vec::as_slice))
        .collect();
    assert_eq!(fragments.len(), 6);
    let expected = export(&chunks[0][0], fragments.iter().copied()).unwrap();
    assert!(all == expected, "the export is the stitched fragments");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.mp4");
    std::fs::write(&file, &all).unwrap();
    let probe = ffprobe(&file);
    assert_eq!(probe.codec, "h264");
    assert_eq!(probe.frames.len(), 6 * FPS as usize);

    // From the middle of segment 0's second fragment to the start of segment 2's first:
    // fragments 0/1, 1/0, 1/1 and 2/0.
    let b = &rec.segments[1];
    let from = a.fragments[1].start_us + 10;
    let to = c.fragments[0].start_us + 1;
    let (part, err) = collect(BlockingBody::new(open(from, to).unwrap(), None, "test"));
    assert!(err.is_none());
    let expected = export(
        &chunks[0][0],
        [&chunks[0][2], &chunks[1][1], &chunks[1][2], &chunks[2][1]].map(Vec::as_slice),
    )
    .unwrap();
    assert!(part == expected);
    assert_eq!(b.fragments.len(), 2);

    // Nothing recorded there.
    assert!(matches!(
        open(c.end_us + 1_000_000, c.end_us + 2_000_000),
        Err(PlaybackError::NoRecordings)
    ));
    // A later segment damaged: the export so far is sent, then cut.
    let path = rec.path(c);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = c.fragments[0].offset as usize + 50;
    bytes[at] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    let (cut, err) = collect(BlockingBody::new(
        open(a.start_us, c.end_us).unwrap(),
        None,
        "test",
    ));
    assert!(err.is_some());
    assert!(cut.len() < all.len() && cut == all[..cut.len()]);
}
