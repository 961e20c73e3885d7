//! Measurements, printed rather than asserted (timed assertions are flaky on a shared
//! machine; budgets are checked in `benches/`). Run in release mode:
//!
//! ```sh
//! cargo test --release -p mecam --lib store::measure -- --ignored --nocapture --test-threads=1
//! ```

use std::time::{Duration, Instant};

use super::*;

const S: u64 = 1_000_000;
const MIN: u64 = 60 * S;
/// 2024-01-01T00:00:00Z.
const T0: u64 = 1_704_067_200 * S;
const HEAD: u64 = 1_200;
/// One 2 s GOP of 1080p at ~4 Mbit/s.
const FRAG: u64 = 1_000_000;
const GOP: u64 = 2 * S;

/// A complete one-minute segment of 30 fragments; fragment sizes vary a little, as
/// real GOPs do, so the varints are not all the same width.
fn minute(id: SegmentId, start_us: u64) -> Segment {
    let mut offset = HEAD;
    let fragments: Vec<_> = (0..30)
        .map(|i| {
            let len = FRAG - (id.0 * 7919 + i * 104_729) % 200_000;
            let f = Fragment {
                offset,
                len,
                start_us: start_us + i * GOP,
                duration_us: GOP,
            };
            offset += len;
            f
        })
        .collect();
    Segment {
        id,
        path: format!("rec/{:04}/{:010}.seg", start_us / (86_400 * S), id.0),
        start_us,
        end_us: start_us + MIN,
        bytes: offset,
        state: SegmentState::Complete,
        trigger: Trigger::Continuous,
        fragments,
    }
}

/// Stores `count` back-to-back one-minute segments in transactions of 10 000 rows.
fn fill(store: &Store, count: u64) -> Vec<DiskFile> {
    let mut files = Vec::with_capacity(count as usize);
    let mut done = 0;
    while done < count {
        let n = (count - done).min(10_000);
        let ids = store.allocate_segment_ids(n).unwrap();
        let batch: Vec<_> = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| minute(id, T0 + (done + i as u64) * MIN))
            .collect();
        store.put_segments(&batch).unwrap();
        files.extend(batch.iter().map(|s| DiskFile {
            path: s.path.clone(),
            bytes: s.bytes,
        }));
        done += n;
    }
    files
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn index_bytes(store: &Store) -> u64 {
    std::fs::metadata(store.path().join("data.mdb"))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture in release mode"]
fn reconcile_time_for_10_000_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut files = fill(&store, 10_000);

    // A realistic crash: the last segment was being written and lost half of it, a
    // retention pass deleted 20 files but not their rows, and 20 files have no row.
    let mut last = store.segment(SegmentId(10_000)).unwrap().unwrap();
    last.state = SegmentState::Writing;
    store.put_segment(&last).unwrap();
    files[9_999].bytes /= 2;
    files.drain(100..120);
    files.extend((0..20).map(|i| DiskFile {
        path: format!("rec/orphan/{i}.seg"),
        bytes: 4_000_000,
    }));

    let t = Instant::now();
    let summary = store.reconcile(&files).unwrap();
    let dirty = t.elapsed();
    assert_eq!(summary.missing.len(), 20);
    assert_eq!(summary.interrupted.len(), 1);
    assert_eq!(summary.orphans.len(), 20);

    let clean: Vec<_> = (0..5)
        .map(|_| {
            let t = Instant::now();
            store.reconcile(&files).unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "reconcile, 10 000 rows: {:.1} ms with 20 missing + 1 cut + 20 orphans; \
         {:.1} ms median of 5 when already consistent (each includes one fsync'd commit)",
        dirty.as_secs_f64() * 1e3,
        median(clean).as_secs_f64() * 1e3,
    );
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture in release mode"]
fn find_at_in_a_year_of_one_minute_segments() {
    const YEAR: u64 = 525_600;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let t = Instant::now();
    let files = fill(&store, YEAR);
    let filled = t.elapsed();
    let size = index_bytes(&store);
    println!(
        "a year of one-minute segments (30 fragments each): {YEAR} rows stored in {:.1} s; \
         data.mdb {:.1} MiB = {} bytes per segment",
        filled.as_secs_f64(),
        size as f64 / (1 << 20) as f64,
        size / YEAR,
    );

    // Random instants over the year (xorshift: no rand crate needed).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut times = Vec::with_capacity(100_000);
    let mut hits = 0;
    for _ in 0..100_000 {
        let instant = T0 + next() % (YEAR * MIN);
        let t = Instant::now();
        let found = store.find_at(instant).unwrap();
        times.push(t.elapsed());
        let found = found.expect("continuous recording covers every instant");
        assert!(found.fragment().start_us <= instant && instant < found.fragment().end_us());
        hits += 1;
    }
    times.sort();
    let pct = |p: usize| times[times.len() * p / 100].as_secs_f64() * 1e6;
    println!(
        "find_at over {YEAR} rows, {hits} random instants: median {:.1} µs, p99 {:.1} µs, \
         max {:.1} µs",
        pct(50),
        pct(99),
        times[times.len() - 1].as_secs_f64() * 1e6,
    );

    let day: Vec<_> = (0..20)
        .map(|d| {
            let from = T0 + d * 17 * 1_440 * MIN;
            let t = Instant::now();
            let got = store
                .segments_overlapping(from, from + 1_440 * MIN, 2_000)
                .unwrap();
            assert_eq!(got.len(), 1_440);
            t.elapsed()
        })
        .collect();
    println!(
        "segments_overlapping one day (1 440 rows): median {:.2} ms",
        median(day).as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let summary = store.reconcile(&files).unwrap();
    assert!(summary.is_clean());
    println!(
        "reconcile at a year's scale ({YEAR} rows, consistent): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
