//! Where recordings live in the data directory.
//!
//! ```text
//! DATA/
//!   index/                          LMDB (the store)
//!   segments/YYYY/MM/DD/<id>-<start_us>.mcs
//!                                   one encrypted segment (vault format, kind segment)
//!   unindexed/<name>.mcs            segment files the index did not know at start-up
//!   recorder.reserve                space held back for a full disk (see `space`)
//! ```
//!
//! The date directories are the UTC date of the segment's start: a directory holds
//! about 1 440 one-minute segments, so listings stay short and a day can be copied off
//! the card by hand. The name carries the id (unique, never reused) and the start time,
//! so a file in `unindexed` still says what it is. `.mcs` ("ME_CAM segment") is not
//! `.mp4` on purpose: the content is encrypted, nothing should try to play it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::store::{DiskFile, SegmentId};

/// Segment files, under the data directory.
pub const SEGMENTS_DIR: &str = "segments";
/// Where start-up moves segment files that no index row points to.
pub const UNINDEXED_DIR: &str = "unindexed";
/// Extension of segment files.
pub const SEGMENT_EXT: &str = "mcs";

/// Path of a segment file relative to the data directory, `/`-separated as the index
/// stores it: `segments/2026/03/01/42-1772323200000000.mcs`.
pub fn segment_path(id: SegmentId, start_us: u64) -> String {
    let (year, month, day) = civil_from_days((start_us / 86_400_000_000) as i64);
    format!("{SEGMENTS_DIR}/{year:04}/{month:02}/{day:02}/{id}-{start_us}.{SEGMENT_EXT}")
}

/// The id and start time a segment file name carries, if it is one of ours.
pub fn parse_segment_name(name: &str) -> Option<(SegmentId, u64)> {
    let stem = name.strip_suffix(SEGMENT_EXT)?.strip_suffix('.')?;
    let (id, start) = stem.split_once('-')?;
    Some((SegmentId(id.parse().ok()?), start.parse().ok()?))
}

/// The index's relative path as a path under `data_dir`.
pub fn absolute(data_dir: &Path, relative: &str) -> PathBuf {
    relative
        .split('/')
        .fold(data_dir.to_path_buf(), |path, part| path.join(part))
}

/// Microseconds since the Unix epoch; 0 for a clock before 1970 (a Pi without a
/// real-time clock before NTP can be anywhere, but not before that).
pub fn unix_us(t: SystemTime) -> u64 {
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// Every segment file under `DATA/segments`, with its size, as
/// [`Store::reconcile`](crate::store::Store::reconcile) wants them. Blocking: for
/// start-up, or a blocking thread. Entries that are not ours (other names, symlinks)
/// are left out and logged.
pub fn list_segment_files(data_dir: &Path) -> io::Result<Vec<DiskFile>> {
    let root = data_dir.join(SEGMENTS_DIR);
    let mut out = Vec::new();
    match std::fs::symlink_metadata(&root) {
        Ok(meta) if meta.is_dir() => walk(&root, SEGMENTS_DIR, &mut out)?,
        Ok(_) => {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(dir: &Path, relative: &str, out: &mut Vec<DiskFile>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(dir = %dir.display(), "ignoring a file name that is not UTF-8");
            continue;
        };
        let kind = entry.file_type()?;
        let path = format!("{relative}/{name}");
        if kind.is_dir() {
            walk(&entry.path(), &path, out)?;
        } else if kind.is_file() && parse_segment_name(name).is_some() {
            out.push(DiskFile {
                path,
                bytes: entry.metadata()?.len(),
            });
        } else {
            tracing::warn!(path, "ignoring an unexpected entry among the segments");
        }
    }
    Ok(())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_paths_carry_date_id_and_start() {
        // 2026-03-01T00:00:00Z
        let start = 1_772_323_200_000_000;
        let path = segment_path(SegmentId(42), start);
        assert_eq!(path, "segments/2026/03/01/42-1772323200000000.mcs");
        let name = path.rsplit('/').next().unwrap();
        assert_eq!(parse_segment_name(name), Some((SegmentId(42), start)));
        assert_eq!(
            segment_path(SegmentId(1), start - 1),
            "segments/2026/02/28/1-1772323199999999.mcs"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for bad in ["42.mcs", "a-1.mcs", "1-2.mp4", "1-2mcs", "-1.mcs"] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
        assert_eq!(
            absolute(Path::new("/data"), &path),
            Path::new("/data/segments/2026/03/01/42-1772323200000000.mcs")
        );
    }

    #[test]
    fn record_layout_lists_only_segment_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_segment_files(dir.path()).unwrap().is_empty());
        let day = dir.path().join("segments/2026/03/01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("7-100.mcs"), b"12345").unwrap();
        std::fs::write(day.join("notes.txt"), b"x").unwrap();
        std::fs::create_dir(day.join("8-200.mcs")).unwrap();
        let files = list_segment_files(dir.path()).unwrap();
        assert_eq!(
            files,
            [DiskFile {
                path: "segments/2026/03/01/7-100.mcs".into(),
                bytes: 5
            }]
        );
    }
}
