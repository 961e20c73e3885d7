//! One segment file while it is written: packets in, encrypted fragments appended, and
//! the index row that describes what is durably on disk.
//!
//! ```text
//! vault header │ chunk 0: fMP4 init segment │ chunk 1: fragment (GOP) │ … │ end marker
//! ```
//!
//! The muxer cuts a fragment at every keyframe; the fragment is sealed as the next
//! chunk and appended at once, so at most one GOP lives in memory. The row (the store's
//! [`Segment`]) lists every appended fragment with its *encrypted* location — byte
//! offset and length of the chunk in the file — and its wall-clock time, so the API can
//! serve any instant by decrypting one chunk.
//!
//! The recorder commits the row only after [`SegmentFile::sync`], so by the crash rule
//! the index never points at bytes that are not on the medium.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::RecordError;
use super::fmp4::{Mp4Error, SegmentMuxer, TrackInfo, ticks_to_duration};
use super::layout;
use crate::encode::Packet;
use crate::runtime::{self, AppendFile};
use crate::store::{Fragment, Segment, SegmentId, SegmentState, Trigger};
use crate::vault::{ContentKind, FileSealer, SealingKey};

/// Data keys of every segment sealed by tests, so the tests can check that none of
/// them reached the disk.
#[cfg(test)]
pub(crate) static TEST_DATA_KEYS: std::sync::Mutex<Vec<[u8; 32]>> =
    std::sync::Mutex::new(Vec::new());

/// What to create.
pub(crate) struct SegmentSpec<'a> {
    pub data_dir: &'a Path,
    pub id: SegmentId,
    pub trigger: Trigger,
    pub track: TrackInfo,
    /// Nominal frame rate (for the last frame's duration).
    pub fps: u32,
    pub key: &'a SealingKey,
    /// Wall-clock time of the first frame, µs since the epoch.
    pub start_us: u64,
}

/// What became of a packet.
#[derive(Debug)]
pub(crate) enum Pushed {
    /// Added; `fragment` says whether it completed a fragment that was appended.
    Stored { fragment: bool },
    /// Not stored, with why (a malformed access unit). The frames after it up to the
    /// next keyframe are dropped too: they may refer to it.
    Dropped(Mp4Error),
    /// A keyframe with new SPS/PPS: this segment must end and a new one start with it.
    NewTrack,
}

pub(crate) struct SegmentFile {
    path: PathBuf,
    /// `None` once closed.
    file: Option<AppendFile>,
    sealer: Option<FileSealer>,
    muxer: Option<SegmentMuxer>,
    row: Segment,
    /// Capture time of the first frame.
    first_captured: Option<Instant>,
    /// Fragments and bytes known to be on the medium (appended before the last
    /// successful sync).
    durable_fragments: usize,
    durable_len: u64,
    /// The row in the index: fragments it lists, and whether there is one at all.
    committed_fragments: Option<usize>,
    /// End (µs) of the row at its last commit, for the checkpoint cadence.
    committed_end_us: u64,
    skip_until_keyframe: bool,
}

impl SegmentFile {
    /// Creates the file (and its date directories), writes the vault header and the
    /// init segment, and makes them durable, directory entry included. On failure
    /// nothing is left behind.
    pub async fn create(spec: SegmentSpec<'_>) -> Result<Self, RecordError> {
        let relative = layout::segment_path(spec.id, spec.start_us);
        let path = layout::absolute(spec.data_dir, &relative);
        let dir = path.parent().unwrap_or(spec.data_dir).to_path_buf();
        runtime::create_dir_all_durable(&dir, 0o700)
            .await
            .map_err(RecordError::io("create the directory", &dir))?;
        let mut file = AppendFile::create(&path)
            .await
            .map_err(RecordError::io("create", &path))?;
        match Self::start(&mut file, &spec, &path, &dir).await {
            Ok((sealer, muxer)) => {
                let durable_len = file.len();
                let row = Segment {
                    id: spec.id,
                    path: relative,
                    start_us: spec.start_us,
                    end_us: spec.start_us,
                    bytes: file.len(),
                    state: SegmentState::Writing,
                    trigger: spec.trigger,
                    fragments: Vec::new(),
                };
                Ok(Self {
                    path,
                    file: Some(file),
                    sealer: Some(sealer),
                    muxer: Some(muxer),
                    committed_end_us: row.start_us,
                    row,
                    first_captured: None,
                    durable_fragments: 0,
                    durable_len,
                    committed_fragments: None,
                    skip_until_keyframe: false,
                })
            }
            Err(e) => {
                // No row points here and no video is inside: remove it.
                let _ = file.close().await;
                if let Err(rm) = runtime::remove_file(&path).await {
                    tracing::warn!(path = %path.display(), "cannot remove a failed segment: {rm}");
                }
                Err(e)
            }
        }
    }

    async fn start(
        file: &mut AppendFile,
        spec: &SegmentSpec<'_>,
        path: &Path,
        dir: &Path,
    ) -> Result<(FileSealer, SegmentMuxer), RecordError> {
        let mut sealer = FileSealer::new(spec.key, ContentKind::Segment)?;
        #[cfg(test)]
        TEST_DATA_KEYS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sealer.test_data_key);
        let muxer = SegmentMuxer::new(spec.track.clone(), spec.fps)?;
        let init = sealer.seal_chunk(muxer.init_segment())?;
        let write = RecordError::io("write", path);
        file.append(sealer.header().to_vec()).await.map_err(write)?;
        file.append(init.bytes)
            .await
            .map_err(RecordError::io("write", path))?;
        file.sync_data()
            .await
            .map_err(RecordError::io("sync", path))?;
        runtime::sync_dir(dir)
            .await
            .map_err(RecordError::io("sync the directory", dir))?;
        Ok((sealer, muxer))
    }

    pub fn id(&self) -> SegmentId {
        self.row.id
    }

    /// The row with every fragment appended so far.
    pub fn row(&self) -> &Segment {
        &self.row
    }

    /// The row as far as it is on the medium: what may be committed (crash rule).
    pub fn durable_row(&self) -> Segment {
        let mut row = self.row.clone();
        row.fragments.truncate(self.durable_fragments);
        row.end_us = row.fragments.last().map_or(row.start_us, Fragment::end_us);
        row.bytes = self.durable_len;
        row
    }

    /// Time since the first frame.
    pub fn age(&self, now: Instant) -> std::time::Duration {
        self.first_captured.map_or(std::time::Duration::ZERO, |t| {
            now.saturating_duration_since(t)
        })
    }

    /// Adds a packet; appends the fragment it completes. An error means the file can
    /// take no more: [`abandon`](Self::abandon) it.
    pub async fn push(&mut self, packet: &Packet) -> Result<Pushed, RecordError> {
        if self.skip_until_keyframe && !packet.keyframe {
            return Ok(Pushed::Dropped(Mp4Error::NeedKeyframe));
        }
        let Some(muxer) = self.muxer.as_mut() else {
            return Ok(Pushed::Dropped(Mp4Error::Malformed(
                "segment closed".into(),
            )));
        };
        let fragment = match muxer.push(packet) {
            Ok(fragment) => fragment,
            Err(Mp4Error::ParameterSetsChanged) => return Ok(Pushed::NewTrack),
            Err(e) => {
                self.skip_until_keyframe = true;
                return Ok(Pushed::Dropped(e));
            }
        };
        self.skip_until_keyframe = false;
        self.first_captured.get_or_insert(packet.captured);
        let appended = fragment.is_some();
        if let Some(fragment) = fragment {
            self.append_fragment(fragment).await?;
        }
        Ok(Pushed::Stored { fragment: appended })
    }

    async fn append_fragment(
        &mut self,
        fragment: super::fmp4::Fragment,
    ) -> Result<(), RecordError> {
        let (Some(sealer), Some(file)) = (self.sealer.as_mut(), self.file.as_mut()) else {
            return Err(RecordError::Mp4(Mp4Error::Malformed(
                "segment closed".into(),
            )));
        };
        let chunk = sealer.seal_chunk(&fragment.data)?;
        let location = chunk.location;
        file.append(chunk.bytes)
            .await
            .map_err(RecordError::io("write", &self.path))?;
        let start_us = self.row.start_us + micros(fragment.info.decode_time);
        let duration_us = micros(fragment.info.duration).max(1);
        self.row.fragments.push(Fragment {
            offset: location.offset,
            len: u64::from(location.len),
            start_us,
            duration_us,
        });
        self.row.end_us = start_us + duration_us;
        self.row.bytes = file.len();
        Ok(())
    }

    /// Whether the row should be committed: it lists fragments the index lacks, and
    /// the newest is `interval_us` or more past the last commit.
    pub fn checkpoint_due(&self, interval_us: u64) -> bool {
        let committed = self.committed_fragments.unwrap_or(0);
        self.row.fragments.len() > committed
            && self.row.end_us.saturating_sub(self.committed_end_us) >= interval_us
    }

    /// `fdatasync`: everything appended so far is on the medium.
    pub async fn sync(&mut self) -> Result<(), RecordError> {
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        file.sync_data()
            .await
            .map_err(RecordError::io("sync", &self.path))?;
        self.durable_fragments = self.row.fragments.len();
        self.durable_len = file.len();
        Ok(())
    }

    /// The row as committed (call after the commit succeeded).
    pub fn mark_committed(&mut self, row: &Segment) {
        self.committed_fragments = Some(row.fragments.len());
        self.committed_end_us = row.end_us;
    }

    /// Ends the segment: the last fragment (lasting until `end`, the capture time of
    /// the next frame, when known), the end marker, a sync, close. Returns the
    /// `Complete` row to commit. On error returns what [`abandon`](Self::abandon)
    /// gives.
    pub async fn finish(
        mut self,
        end: Option<Instant>,
    ) -> Result<Segment, (RecordError, Option<Segment>)> {
        match self.finish_inner(end).await {
            Ok(()) => {
                self.row.state = SegmentState::Complete;
                Ok(self.row)
            }
            Err(e) => {
                let row = self.abandon().await;
                Err((e, row))
            }
        }
    }

    async fn finish_inner(&mut self, end: Option<Instant>) -> Result<(), RecordError> {
        if let Some(muxer) = self.muxer.take()
            && let Some(fragment) = muxer.finish(end)?
        {
            self.append_fragment(fragment).await?;
        }
        let (Some(sealer), Some(file)) = (self.sealer.take(), self.file.as_mut()) else {
            return Err(RecordError::Mp4(Mp4Error::Malformed(
                "segment closed".into(),
            )));
        };
        file.append(sealer.finish().bytes)
            .await
            .map_err(RecordError::io("write", &self.path))?;
        self.sync().await?;
        let bytes = self.file.as_ref().map_or(self.row.bytes, AppendFile::len);
        self.row.bytes = bytes;
        if let Some(file) = self.file.take()
            && let Err(e) = file.close().await
        {
            // Everything is synced; a late error from close changes nothing on disk.
            tracing::warn!(path = %self.path.display(), "closing the segment failed: {e}");
        }
        Ok(())
    }

    /// Gives up on the file after an error: cuts off whatever a failed write left
    /// (which also gives the space back), syncs and closes, all best effort. Returns
    /// the `Interrupted` row listing the fragments known durable, or `None` if the
    /// index never had a row and the file holds no video (then the file is removed).
    ///
    /// The file gets no end marker: the sealer's chunk counter already counted the
    /// chunk that failed, so a marker now would not verify. Readers report such a
    /// file as cut short after its last complete chunk, which is what it is.
    pub async fn abandon(mut self) -> Option<Segment> {
        if let Some(mut file) = self.file.take() {
            let good = file.len();
            if let Err(e) = file.truncate(good) {
                tracing::warn!(path = %self.path.display(), "cannot truncate: {e}");
            }
            match file.sync_data().await {
                Ok(()) => {
                    self.durable_fragments = self.row.fragments.len();
                    self.durable_len = good;
                }
                Err(e) => tracing::warn!(path = %self.path.display(), "cannot sync: {e}"),
            }
            if let Err(e) = file.close().await {
                tracing::warn!(path = %self.path.display(), "cannot close: {e}");
            }
        }
        let mut row = self.durable_row();
        if self.committed_fragments.is_none() && row.fragments.is_empty() {
            if let Err(e) = runtime::remove_file(&self.path).await {
                tracing::warn!(path = %self.path.display(), "cannot remove: {e}");
            }
            return None;
        }
        row.state = SegmentState::Interrupted;
        Some(row)
    }
}

/// 90 kHz ticks to whole microseconds (rounded down, so consecutive fragments never
/// overlap in the index).
fn micros(ticks: u64) -> u64 {
    u64::try_from(ticks_to_duration(ticks).as_micros()).unwrap_or(u64::MAX)
}
