//! `index_lookup`: how fast the index finds an instant in a year of recordings, how
//! soon the first decrypted byte of that instant is ready, and how long start-up
//! reconciliation takes.
//!
//! Part 1 fills a temporary index with a year of back-to-back one-minute segments
//! (525 600 rows, 30 fragments of ~2 s each, with the byte layout a real sealed file
//! has), then times `Store::find_at` at random instants. Reference, same run: fetching
//! the row by id (`Store::segment`), the cheapest way to get one row with its fragment
//! table out of LMDB.
//!
//! Part 2 writes a few of those rows as real sealed files (random fragment bytes: the
//! cipher does not care what it encrypts) and times "first byte of an instant" as the
//! playback endpoint does it: `find_at`, open the file, unseal its data key with the
//! vault, verify the init segment, read and decrypt the fragment. Reference: `find_at`
//! and a plain read of the same bytes (open, header, init chunk, fragment chunk). Both
//! with the file in the page cache (warm) and evicted with `posix_fadvise(DONTNEED)`
//! (cold; only this bench's files are evicted).
//!
//! Part 3 is start-up repair (`record::startup::recover`: list `DATA/segments`,
//! reconcile the index, commit) over 10 000 segments whose files exist (sparse, with
//! the rows' sizes): once after a simulated crash (a segment cut short, 20 files gone,
//! 20 orphans), then when consistent. Reference: the directory walk alone
//! (`layout::list_segment_files`).

use std::fs::File;
use std::io::BufWriter;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mecam::api::recordings::playback::SegmentReader;
use mecam::record::layout;
use mecam::store::{Fragment, Segment, SegmentId, SegmentState, Store, Trigger};
use mecam::vault::{
    Argon2Params, CHUNK_PREFIX_LEN, ContentKind, FileWriter, HEADER_LEN, SealingKey, UnlockedVault,
    VaultRecord,
};
use mecam_benches::args::{Args, OptSpec};
use mecam_benches::host::Host;
use mecam_benches::stats::{Summary, round};
use mecam_benches::table;
use serde_json::json;

const ABOUT: &str = "Index lookup in a year of one-minute segments, first decrypted byte of an\n\
     instant, and start-up reconciliation, each against an in-run reference.\n\
     Run: cargo run --release -p mecam-benches --bin index_lookup";
const SPEC: &[OptSpec] = &[
    (
        "rows",
        "N",
        "one-minute segments in the index (default 525600, a year)",
    ),
    (
        "lookups",
        "N",
        "random instants for find_at (default 100000)",
    ),
    (
        "files",
        "N",
        "real sealed segment files for first-byte (default 6)",
    ),
    (
        "reads",
        "N",
        "first-byte samples per cache state (default 500)",
    ),
    (
        "fragment-kib",
        "K",
        "mean fragment size, KiB (default 500: 2 Mb/s, 2 s GOP)",
    ),
    (
        "reconcile-rows",
        "N",
        "segments for the reconcile part (default 10000)",
    ),
    (
        "dir",
        "PATH",
        "where the temporary data directories go (default: the temp dir)",
    ),
];

const S: u64 = 1_000_000;
const MINUTE: u64 = 60 * S;
const GOP: u64 = 2 * S;
const FRAGMENTS: u64 = 30;
/// 2025-01-01T00:00:00Z.
const T0: u64 = 1_735_689_600 * S;
/// Plaintext of an init segment (ftyp + moov with avcC) at 1080p, about.
const INIT_PLAIN: u64 = 700;
/// Prefix and tag around every chunk.
const FRAMING: u64 = CHUNK_PREFIX_LEN as u64 + 16;
/// Rows per index transaction while filling (as `store::measure` does).
const BATCH: u64 = 10_000;
/// Consistent start-ups timed (after one warm-up).
const RECONCILE_ROUNDS: usize = 15;

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let rows: u64 = args.get("rows", 525_600)?;
    let lookups: usize = args.get("lookups", 100_000)?;
    let files: u64 = args.get("files", 6)?;
    let reads: usize = args.get("reads", 500)?;
    let fragment_bytes = args.get::<u64>("fragment-kib", 500)? * 1024;
    let reconcile_rows: u64 = args.get("reconcile-rows", 10_000)?;
    let dir = PathBuf::from(args.get("dir", std::env::temp_dir().display().to_string())?);
    if rows == 0 || lookups == 0 || files == 0 || reads == 0 || reconcile_rows < 100 {
        bail!("--rows, --lookups, --files, --reads must be positive, --reconcile-rows ≥ 100");
    }
    if files > rows || fragment_bytes < 4096 {
        bail!("--files must not exceed --rows, --fragment-kib must be at least 4");
    }
    let host = Host::probe();
    eprintln!("host: {}", host.describe());
    let layout = Layout { fragment_bytes };

    // A throwaway vault: fast Argon2 only shortens set-up; sealing needs the public key
    // and unsealing the unlocked private key, whatever protected them.
    let (record, _recovery, vault) =
        VaultRecord::create("bench", "bench", Argon2Params::INSECURE_FAST).context("vault")?;
    let key = record.sealing_key().context("sealing key")?;

    let data = TempDir::new(&dir, "mecam-index-bench")?;
    let store = Store::open(data.path()).context("opening the index")?;
    eprintln!("filling the index with {rows} one-minute segments…");
    let t = Instant::now();
    fill(&store, &layout, rows)?;
    let fill_secs = t.elapsed().as_secs_f64();
    let index_mib = std::fs::metadata(store.path().join("data.mdb"))
        .map(|m| m.len())
        .unwrap_or(0) as f64
        / (1 << 20) as f64;
    eprintln!("filled in {fill_secs:.1} s; data.mdb {index_mib:.0} MiB");

    let lookup = bench_lookup(&store, rows, lookups)?;
    eprintln!("writing {files} sealed segment files…");
    let first_byte = bench_first_byte(
        &store,
        data.path(),
        &layout,
        &key,
        &vault,
        rows,
        files,
        reads,
    )?;
    drop(store);
    drop(data);

    eprintln!("reconcile: {reconcile_rows} segments…");
    let reconcile = bench_reconcile(&dir, &layout, reconcile_rows)?;

    print_report(
        &host,
        rows,
        fill_secs,
        index_mib,
        &layout,
        &lookup,
        &first_byte,
        &reconcile,
    );
    Ok(())
}

/// A directory removed when dropped (the benches add no `tempfile` dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, prefix: &str) -> Result<Self> {
        let path = parent.join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

/// The byte layout of the rows (and of the files written for some of them).
struct Layout {
    fragment_bytes: u64,
}

impl Layout {
    /// Plaintext size of fragment `i` of segment `id`: ±10 % around the mean, varied
    /// like real GOPs (so the row codec's varints are not all one width).
    fn fragment_plain(&self, id: u64, i: u64) -> u64 {
        let spread = self.fragment_bytes / 5;
        self.fragment_bytes - spread / 2
            + (id.wrapping_mul(7919) ^ i.wrapping_mul(104_729)) % spread
    }

    /// Minute `n`'s row: header, init chunk, 30 fragment chunks, end marker.
    fn row(&self, id: SegmentId, n: u64) -> Segment {
        let start_us = T0 + n * MINUTE;
        let mut offset = HEADER_LEN as u64 + INIT_PLAIN + FRAMING;
        let fragments = (0..FRAGMENTS)
            .map(|i| {
                let len = self.fragment_plain(id.0, i) + FRAMING;
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
            path: layout::segment_path(id, start_us),
            start_us,
            end_us: start_us + MINUTE,
            bytes: offset + FRAMING,
            state: SegmentState::Complete,
            trigger: Trigger::Continuous,
            fragments,
        }
    }
}

fn fill(store: &Store, layout: &Layout, rows: u64) -> Result<()> {
    let mut done = 0;
    while done < rows {
        let n = (rows - done).min(BATCH);
        let ids = store.allocate_segment_ids(n)?;
        let batch: Vec<_> = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| layout.row(id, done + i as u64))
            .collect();
        store.put_segments(&batch)?;
        done += n;
    }
    Ok(())
}

/// xorshift64: random instants without a rand dependency, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct LookupResult {
    n: usize,
    find_at_us: Summary,
    by_id_us: Summary,
    /// `None` with less than a day of rows.
    segments_day_ms: Option<Summary>,
}

fn bench_lookup(store: &Store, rows: u64, lookups: usize) -> Result<LookupResult> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Warm the map, as a running service has it.
    for _ in 0..1000 {
        store.find_at(T0 + rng.next() % (rows * MINUTE))?;
    }
    let (mut find, mut by_id) = (Vec::with_capacity(lookups), Vec::with_capacity(lookups));
    // Interleaved, so both see the same machine load.
    for _ in 0..lookups {
        let instant = T0 + rng.next() % (rows * MINUTE);
        let t = Instant::now();
        let found = store.find_at(instant)?;
        find.push(us(t.elapsed()));
        let found = found.context("continuous recording covers every instant")?;
        ensure!(found.fragment().start_us <= instant && instant < found.fragment().end_us());

        let id = SegmentId(1 + rng.next() % rows);
        let t = Instant::now();
        let row = store.segment(id)?;
        by_id.push(us(t.elapsed()));
        ensure!(row.is_some_and(|r| r.fragments.len() == FRAGMENTS as usize));
    }
    let days = rows / 1440;
    let mut day = Vec::new();
    for d in 0..days.min(20) {
        let from = T0 + (d * days / days.min(20)) * 1440 * MINUTE;
        let t = Instant::now();
        let got = store.segments_overlapping(from, from + 1440 * MINUTE, 2000)?;
        day.push(t.elapsed().as_secs_f64() * 1e3);
        ensure!(got.len() >= 1440);
    }
    Ok(LookupResult {
        n: lookups,
        find_at_us: Summary::of(&find).context("no samples")?,
        by_id_us: Summary::of(&by_id).context("no samples")?,
        segments_day_ms: Summary::of(&day),
    })
}

struct FirstByteResult {
    files: u64,
    fragment_mean_bytes: u64,
    warm: Pair,
    cold: Pair,
}

/// Microseconds per sample: the decrypting path (and the part of it up to the
/// opened file: header, data key, init segment), and the plain-read reference.
struct Pair {
    decrypt_us: Summary,
    open_us: Summary,
    plain_us: Summary,
}

impl Pair {
    fn ratio(&self) -> f64 {
        self.decrypt_us.median / self.plain_us.median
    }
}

#[allow(clippy::too_many_arguments)]
fn bench_first_byte(
    store: &Store,
    data_dir: &Path,
    layout: &Layout,
    key: &SealingKey,
    vault: &UnlockedVault,
    rows: u64,
    files: u64,
    reads: usize,
) -> Result<FirstByteResult> {
    // Minutes spread over the year, written as real files.
    let minutes: Vec<u64> = (0..files)
        .map(|k| k * rows / files + rows / (2 * files))
        .collect();
    let mut written = Vec::new();
    for &n in &minutes {
        let segment = store.segment(SegmentId(n + 1))?.context("the filled row")?;
        write_segment(data_dir, &segment, layout, key)?;
        written.push(segment);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut instant = || {
        let n = minutes[(rng.next() % files) as usize];
        T0 + n * MINUTE + rng.next() % MINUTE
    };
    let evict = |path: &Path| -> Result<()> {
        let f = File::open(path)?;
        // SAFETY: a valid descriptor for the duration of the call.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        ensure!(rc == 0, "posix_fadvise failed: {rc}");
        Ok(())
    };
    let mut run = |cold: bool| -> Result<Pair> {
        let (mut decrypt, mut open, mut plain) = (
            Vec::with_capacity(reads),
            Vec::with_capacity(reads),
            Vec::with_capacity(reads),
        );
        for _ in 0..reads {
            let t_us = instant();
            let path = {
                let found = store.find_at(t_us)?.context("a written minute")?;
                layout::absolute(data_dir, &found.segment.path)
            };
            if cold {
                evict(&path)?;
            }
            let t = Instant::now();
            let found = store.find_at(t_us)?.context("a written minute")?;
            let reader = SegmentReader::open(data_dir, &found.segment, vault)?;
            open.push(us(t.elapsed()));
            let fragment = reader.fragment(found.index)?;
            decrypt.push(us(t.elapsed()));
            ensure!(fragment.len() as u64 == found.fragment().len - FRAMING);

            if cold {
                evict(&path)?;
            }
            let t = Instant::now();
            let found = store.find_at(t_us)?.context("a written minute")?;
            let got = plain_read(data_dir, &found.segment, found.index)?;
            plain.push(us(t.elapsed()));
            ensure!(got == found.fragment().len + HEADER_LEN as u64 + INIT_PLAIN + FRAMING);
        }
        Ok(Pair {
            decrypt_us: Summary::of(&decrypt).context("no samples")?,
            open_us: Summary::of(&open).context("no samples")?,
            plain_us: Summary::of(&plain).context("no samples")?,
        })
    };
    run(false)?; // warm-up: page cache, code, allocator
    let warm = run(false)?;
    let cold = run(true)?;
    let total: u64 = written
        .iter()
        .flat_map(|s| s.fragments.iter().map(|f| f.len - FRAMING))
        .sum();
    Ok(FirstByteResult {
        files,
        fragment_mean_bytes: total / (files * FRAGMENTS),
        warm,
        cold,
    })
}

/// Writes `segment` as a sealed file with the row's exact layout.
fn write_segment(
    data_dir: &Path,
    segment: &Segment,
    layout: &Layout,
    key: &SealingKey,
) -> Result<()> {
    let path = layout::absolute(data_dir, &segment.path);
    std::fs::create_dir_all(path.parent().context("segment directory")?)?;
    let mut writer = FileWriter::new(
        BufWriter::new(File::create(&path)?),
        key,
        ContentKind::Segment,
    )?;
    let mut rng = Rng(segment.id.0 | 1);
    let mut bytes = |n: u64| -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| rng.next().to_le_bytes())
            .take(n as usize)
            .collect()
    };
    writer.append(&bytes(INIT_PLAIN))?;
    for (i, f) in segment.fragments.iter().enumerate() {
        let at = writer.append(&bytes(layout.fragment_plain(segment.id.0, i as u64)))?;
        ensure!(
            at.offset == f.offset && u64::from(at.len) == f.len,
            "layout of fragment {i}"
        );
    }
    let (out, _) = writer.finish()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    ensure!(file.metadata()?.len() == segment.bytes, "file size");
    Ok(())
}

/// The reference: open, read the header, the init chunk and fragment `index`'s chunk;
/// no cryptography. Returns the bytes read.
fn plain_read(data_dir: &Path, segment: &Segment, index: usize) -> Result<u64> {
    let file = File::open(layout::absolute(data_dir, &segment.path))?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0)?;
    let mut init = vec![0u8; (INIT_PLAIN + FRAMING) as usize];
    file.read_exact_at(&mut init, HEADER_LEN as u64)?;
    let f = segment.fragments[index];
    let mut chunk = vec![0u8; f.len as usize];
    file.read_exact_at(&mut chunk, f.offset)?;
    std::hint::black_box((&header, &init, &chunk));
    Ok((header.len() + init.len() + chunk.len()) as u64)
}

struct ReconcileResult {
    rows: u64,
    dirty_ms: f64,
    clean_ms: Summary,
    listing_ms: Summary,
}

fn bench_reconcile(dir: &Path, layout: &Layout, rows: u64) -> Result<ReconcileResult> {
    let data = TempDir::new(dir, "mecam-reconcile-bench")?;
    let store = Store::open(data.path())?;
    fill(&store, layout, rows)?;
    // The files, sparse: reconcile looks at names and sizes only.
    for id in 1..=rows {
        let row = layout.row(SegmentId(id), id - 1);
        let path = layout::absolute(data.path(), &row.path);
        if id == 1 || row.start_us.is_multiple_of(86_400 * S) {
            std::fs::create_dir_all(path.parent().context("directory")?)?;
        }
        let size = if id == rows { row.bytes / 2 } else { row.bytes };
        File::create(&path)?.set_len(size)?;
    }
    // A crash: the last segment was being written, retention deleted 20 files but not
    // their rows, and 20 files never got a row.
    let mut last = store.segment(SegmentId(rows))?.context("last row")?;
    last.state = SegmentState::Writing;
    store.put_segment(&last)?;
    for id in 100..120 {
        std::fs::remove_file(layout::absolute(
            data.path(),
            &layout.row(SegmentId(id), id - 1).path,
        ))?;
    }
    for k in 0..20 {
        let path = layout::absolute(
            data.path(),
            &layout::segment_path(SegmentId(rows + 1000 + k), T0),
        );
        std::fs::create_dir_all(path.parent().context("directory")?)?;
        File::create(&path)?.set_len(4_000_000)?;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let t = Instant::now();
    let report = mecam::record::startup::recover(data.path(), &store)?;
    let dirty_ms = ms(t.elapsed());
    ensure!(
        report.reconcile.missing.len() == 20,
        "{:?}",
        report.reconcile.missing.len()
    );
    ensure!(report.reconcile.interrupted.len() == 1);
    ensure!(report.lost_and_found.len() == 20);

    // Alternated, so both see the same load; the first pair warms the caches.
    let (mut clean, mut listing) = (Vec::new(), Vec::new());
    for round in 0..=RECONCILE_ROUNDS {
        let t = Instant::now();
        let files = layout::list_segment_files(data.path())?;
        let walk = ms(t.elapsed());
        ensure!(files.len() as u64 == rows - 20);
        let t = Instant::now();
        let report = mecam::record::startup::recover(data.path(), &store)?;
        let recover = ms(t.elapsed());
        ensure!(report.reconcile.is_clean() && report.lost_and_found.is_empty());
        if round > 0 {
            listing.push(walk);
            clean.push(recover);
        }
    }
    Ok(ReconcileResult {
        rows,
        dirty_ms,
        clean_ms: Summary::of(&clean).context("no samples")?,
        listing_ms: Summary::of(&listing).context("no samples")?,
    })
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    host: &Host,
    rows: u64,
    fill_secs: f64,
    index_mib: f64,
    layout: &Layout,
    lookup: &LookupResult,
    first: &FirstByteResult,
    rec: &ReconcileResult,
) {
    println!("host: {}", host.describe());
    println!(
        "\nIndex: {rows} one-minute segments × {FRAGMENTS} fragments, filled in {fill_secs:.1} s \
         (transactions of {BATCH}); data.mdb {index_mib:.0} MiB\n"
    );
    let f = |x: f64| format!("{x:.1}");
    print!(
        "{}",
        table::render(
            &["lookup (µs)", "median", "p95", "max", "n"],
            &[
                vec![
                    "find_at(random instant)".into(),
                    f(lookup.find_at_us.median),
                    f(lookup.find_at_us.p95),
                    f(lookup.find_at_us.max),
                    lookup.n.to_string(),
                ],
                vec![
                    "ref: segment(id)".into(),
                    f(lookup.by_id_us.median),
                    f(lookup.by_id_us.p95),
                    f(lookup.by_id_us.max),
                    lookup.n.to_string(),
                ],
            ],
        )
    );
    println!(
        "\nfind_at ÷ segment(id): {:.2}   segments_overlapping(one day, 1 440 rows): median {} ms\n",
        lookup.find_at_us.median / lookup.by_id_us.median,
        lookup
            .segments_day_ms
            .map_or("-".into(), |s| format!("{:.2}", s.median))
    );
    println!(
        "First byte of an instant: {} sealed files, fragments of {} KiB on average (layout mean {} KiB)\n",
        first.files,
        first.fragment_mean_bytes / 1024,
        layout.fragment_bytes / 1024
    );
    let row = |name: &str, p: &Pair| {
        vec![
            name.to_string(),
            f(p.decrypt_us.median),
            f(p.decrypt_us.p95),
            f(p.open_us.median),
            f(p.plain_us.median),
            f(p.plain_us.p95),
            format!("{:.2}", p.ratio()),
            p.decrypt_us.n.to_string(),
        ]
    };
    print!(
        "{}",
        table::render(
            &[
                "cache",
                "decrypt µs",
                "p95",
                "of it open",
                "ref plain µs",
                "p95",
                "ratio",
                "n"
            ],
            &[row("warm", &first.warm), row("cold", &first.cold)],
        )
    );
    println!(
        "\ndecrypt = find_at + open + unseal data key + verify init + read and decrypt the fragment.\n\
         of it open = up to the opened file (header, data key unsealed, init verified).\n\
         ref plain = find_at + open + read the same header, init and fragment bytes, no crypto.\n\
         cold = the file evicted from the page cache (posix_fadvise DONTNEED) before each sample.\n"
    );
    print!(
        "{}",
        table::render(
            &["start-up, {rows} segments", "ms"],
            &[
                vec![
                    format!("recover after a crash ({} rows)", rec.rows),
                    f(rec.dirty_ms),
                ],
                vec![
                    format!("recover, consistent (median of {RECONCILE_ROUNDS})"),
                    f(rec.clean_ms.median),
                ],
                vec![
                    "ref: directory walk alone (median)".into(),
                    f(rec.listing_ms.median)
                ],
            ],
        )
        .replace("{rows}", &rec.rows.to_string())
    );
    println!(
        "\nrecover ÷ walk: {:.2} (consistent)   crash = 1 segment cut short, 20 files gone, 20 orphans moved\n",
        rec.clean_ms.median / rec.listing_ms.median
    );
    let json = json!({
        "bench": "index_lookup",
        "argv": std::env::args().collect::<Vec<_>>(),
        "host": host.to_json(),
        "rows": rows,
        "fragments_per_row": FRAGMENTS,
        "fill_seconds": round(fill_secs, 2),
        "index_mib": round(index_mib, 1),
        "find_at_us": lookup.find_at_us.to_json(),
        "segment_by_id_us": lookup.by_id_us.to_json(),
        "ratio_find_at_to_by_id": round(lookup.find_at_us.median / lookup.by_id_us.median, 3),
        "segments_overlapping_day_ms": lookup.segments_day_ms.map(Summary::to_json),
        "first_byte": {
            "files": first.files,
            "fragment_mean_bytes": first.fragment_mean_bytes,
            "warm_decrypt_us": first.warm.decrypt_us.to_json(),
            "warm_open_us": first.warm.open_us.to_json(),
            "warm_plain_us": first.warm.plain_us.to_json(),
            "warm_ratio": round(first.warm.ratio(), 3),
            "cold_decrypt_us": first.cold.decrypt_us.to_json(),
            "cold_open_us": first.cold.open_us.to_json(),
            "cold_plain_us": first.cold.plain_us.to_json(),
            "cold_ratio": round(first.cold.ratio(), 3),
        },
        "reconcile": {
            "rows": rec.rows,
            "after_crash_ms": round(rec.dirty_ms, 2),
            "consistent_ms": rec.clean_ms.to_json(),
            "walk_ms": rec.listing_ms.to_json(),
            "ratio_recover_to_walk": round(rec.clean_ms.median / rec.listing_ms.median, 3),
        },
    });
    println!("{json}");
}
