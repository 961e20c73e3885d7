//! Start-up repair, before the recorder runs: make the index agree with the segment
//! files on disk (design decision 7), and put files the index does not know aside.
//!
//! [`Store::reconcile`] does the index side: rows still `writing` after a power cut
//! become `interrupted` with the fragments that are wholly in the file, rows of
//! missing files go. What is left are *orphans*, files no row points to: a segment
//! whose first row never committed (a power cut in its first moments), or a file
//! whose row retention deleted just before a crash. The recorder cannot tell them
//! apart — it holds no key to read them — so it never deletes one: each is moved to
//! `DATA/unindexed/`, where `mecam decrypt` still opens it with the recovery key, and
//! reported.
//!
//! The tail of an interrupted file, past the fragments its row lists (written after
//! the last checkpoint), is kept too, for the same reason: the index does not list it,
//! but `mecam decrypt` recovers it.
//!
//! Blocking (`std::fs`, an index commit): run it before the runtime starts, or on a
//! blocking thread.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::RecordError;
use super::layout::{self, SEGMENT_EXT, UNINDEXED_DIR};
use crate::store::{ReconcileSummary, Store};

/// An orphan moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostFile {
    /// Where it was, relative to the data directory.
    pub from: String,
    /// Where it is now.
    pub to: PathBuf,
    pub bytes: u64,
}

/// What start-up found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub reconcile: ReconcileSummary,
    pub lost_and_found: Vec<LostFile>,
}

/// Reconciles the index with `DATA/segments` and moves orphans to `DATA/unindexed`.
pub fn recover(data_dir: &Path, store: &Store) -> Result<RecoveryReport, RecordError> {
    let segments = data_dir.join(layout::SEGMENTS_DIR);
    let files = layout::list_segment_files(data_dir)
        .map_err(RecordError::io("list the segment files in", &segments))?;
    let reconcile = store.reconcile(&files)?;
    for cut in &reconcile.interrupted {
        tracing::warn!(
            id = %cut.id,
            path = cut.path,
            kept = cut.kept_fragments,
            dropped = cut.dropped_fragments,
            "segment was cut short (power loss or crash while recording)"
        );
    }
    let mut lost_and_found = Vec::new();
    if !reconcile.orphans.is_empty() {
        let lost = data_dir.join(UNINDEXED_DIR);
        create_private_dir(&lost).map_err(RecordError::io("create", &lost))?;
        for orphan in &reconcile.orphans {
            let from = layout::absolute(data_dir, &orphan.path);
            let to = free_name(&lost, &from);
            fs::rename(&from, &to).map_err(RecordError::io("move to unindexed", &from))?;
            if let Some(dir) = from.parent() {
                sync_dir(dir).map_err(RecordError::io("sync", dir))?;
            }
            tracing::warn!(
                from = orphan.path,
                to = %to.display(),
                bytes = orphan.bytes,
                "segment file had no index row; moved to unindexed (mecam decrypt opens it)"
            );
            lost_and_found.push(LostFile {
                from: orphan.path.clone(),
                to,
                bytes: orphan.bytes,
            });
        }
        sync_dir(&lost).map_err(RecordError::io("sync", &lost))?;
    }
    Ok(RecoveryReport {
        reconcile,
        lost_and_found,
    })
}

/// `DATA/unindexed/<name>`, or `<stem>.<n>.mcs` if that is taken: nothing there is
/// ever overwritten.
fn free_name(lost: &Path, from: &Path) -> PathBuf {
    let name = from.file_name().map_or_else(
        || "segment.mcs".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let first = lost.join(&name);
    if !first.exists() {
        return first;
    }
    let stem = name
        .strip_suffix(&format!(".{SEGMENT_EXT}"))
        .unwrap_or(&name)
        .to_string();
    (1u32..)
        .map(|n| lost.join(format!("{stem}.{n}.{SEGMENT_EXT}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => dir.parent().map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
