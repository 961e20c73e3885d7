//! Decrypting recordings on the fly: one segment as an MP4 with byte ranges, and an
//! export stitched across segments.
//!
//! A segment file is the vault header, chunk 0 (the fMP4 init segment), then one chunk
//! per fragment. Served, it is the plaintext of those chunks back to back, so its
//! length is known from the index alone: the init segment's, plus each fragment's
//! stored length less its 20 bytes of framing (length prefix and tag). A byte range
//! maps to the chunks it touches; only those are read, each at the offset the index
//! gives, and decrypted whole (a tag covers the whole chunk, so nothing is served
//! before its chunk has verified).
//!
//! File reads and decryption run on tokio's blocking pool, one chunk per step, driven
//! by the response body as the client takes the bytes ([`BlockingBody`]): memory stays
//! at one fragment per response whatever the range, and a client that goes away stops
//! the reading.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::api::body::BodyError;
use crate::record::fmp4::{Mp4Error, Stitcher};
use crate::record::layout;
use crate::store::{Fragment, Segment, SegmentId, Store, StoreError};
use crate::vault::{
    CHUNK_PREFIX_LEN, ContentKind, FileDecryptor, HEADER_LEN, UnlockedVault, VaultError,
};

/// Bytes a stored chunk has beyond its plaintext: the length prefix and the tag.
const FRAMING: u64 = CHUNK_PREFIX_LEN as u64 + 16;

/// Most segments an export reads: a day of one-minute segments is 1 440.
const MAX_EXPORT_SEGMENTS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("the file of recording {id} is missing")]
    Missing { id: SegmentId },
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("recording {id}: {source}")]
    Vault { id: SegmentId, source: VaultError },
    #[error("recording {id} does not match its index row: {detail}")]
    Mismatch { id: SegmentId, detail: String },
    #[error("index: {0}")]
    Store(#[from] StoreError),
    #[error("recording {id} cannot be exported: {source}")]
    Mp4 { id: SegmentId, source: Mp4Error },
    #[error("no recording overlaps the range")]
    NoRecordings,
    #[error("a blocking task failed: {0}")]
    Task(String),
}

impl PlaybackError {
    fn io(id: SegmentId, path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| {
            if source.kind() == io::ErrorKind::NotFound {
                Self::Missing { id }
            } else {
                Self::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        }
    }
}

/// One chunk as served: where it is stored, and where its plaintext goes.
#[derive(Debug, Clone, Copy)]
struct Piece {
    chunk: u32,
    offset: u64,
    stored: u64,
    /// First byte of its plaintext in the served MP4.
    start: u64,
    len: u64,
}

/// An open segment: its file, its data key, and the map from served bytes to chunks.
/// `Send`, so the blocking pool can take it for a read and give it back.
pub struct SegmentReader {
    id: SegmentId,
    path: PathBuf,
    file: File,
    decryptor: FileDecryptor,
    /// Chunk 0, decrypted (and so verified) when opening.
    init: Bytes,
    /// `pieces[0]` is the init segment, `pieces[i]` fragment `i - 1` of the row.
    pieces: Vec<Piece>,
    len: u64,
}

impl SegmentReader {
    /// Opens the file of `segment` and checks that it is the one the row describes:
    /// the header opens with `vault`, chunk 0 verifies and ends where the row's first
    /// fragment starts. Blocking.
    pub fn open(
        data_dir: &Path,
        segment: &Segment,
        vault: &UnlockedVault,
    ) -> Result<Self, PlaybackError> {
        let id = segment.id;
        let path = layout::absolute(data_dir, &segment.path);
        let file = File::open(&path).map_err(PlaybackError::io(id, &path))?;
        let mut header = [0u8; HEADER_LEN];
        file.read_exact_at(&mut header, 0)
            .map_err(PlaybackError::io(id, &path))?;
        let vault_error = |source| PlaybackError::Vault { id, source };
        let decryptor = FileDecryptor::open(&header, vault).map_err(vault_error)?;
        let mismatch = |detail: String| PlaybackError::Mismatch { id, detail };
        if decryptor.kind() != ContentKind::Segment {
            return Err(mismatch("the file is not a segment".into()));
        }
        let mut reader = &file;
        let init = decryptor
            .read_chunk_at(&mut reader, 0, HEADER_LEN as u64)
            .map_err(vault_error)?;
        let init_len = init.len() as u64;
        let mut pieces = vec![Piece {
            chunk: 0,
            offset: HEADER_LEN as u64,
            stored: init_len + FRAMING,
            start: 0,
            len: init_len,
        }];
        let mut next_offset = HEADER_LEN as u64 + init_len + FRAMING;
        let mut served = init_len;
        for (i, fragment) in segment.fragments.iter().enumerate() {
            let chunk =
                u32::try_from(i + 1).map_err(|_| mismatch("more fragments than chunks".into()))?;
            // The recorder appends chunks back to back; anything else is a row that
            // belongs to another file (or a damaged index).
            if fragment.offset != next_offset || fragment.len <= FRAMING {
                return Err(mismatch(format!(
                    "fragment {i} is at {}+{}, expected at {next_offset}",
                    fragment.offset, fragment.len
                )));
            }
            let len = fragment.len - FRAMING;
            pieces.push(Piece {
                chunk,
                offset: fragment.offset,
                stored: fragment.len,
                start: served,
                len,
            });
            next_offset = fragment.end_offset();
            served += len;
        }
        Ok(Self {
            id,
            path,
            file,
            decryptor,
            init: Bytes::from(init),
            pieces,
            len: served,
        })
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// Bytes of the served MP4.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The init segment (`ftyp` + `moov`), verified.
    pub fn init(&self) -> &Bytes {
        &self.init
    }

    /// Reads and decrypts one piece. Blocking.
    fn read(&self, piece: &Piece) -> Result<Bytes, PlaybackError> {
        if piece.chunk == 0 {
            return Ok(self.init.clone());
        }
        // The index's length bounds the read: a damaged length field in the file
        // cannot make it allocate more.
        let stored_len = usize::try_from(piece.stored).map_err(|_| PlaybackError::Mismatch {
            id: self.id,
            detail: format!("chunk {} is {} bytes", piece.chunk, piece.stored),
        })?;
        let mut stored = vec![0u8; stored_len];
        self.file
            .read_exact_at(&mut stored, piece.offset)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    // The file is shorter than the index says: cut or replaced.
                    PlaybackError::Vault {
                        id: self.id,
                        source: VaultError::Incomplete {
                            complete_chunks: piece.chunk,
                        },
                    }
                } else {
                    PlaybackError::io(self.id, &self.path)(e)
                }
            })?;
        let plain = self
            .decryptor
            .decrypt_chunk(piece.chunk, &stored)
            .map_err(|source| PlaybackError::Vault {
                id: self.id,
                source,
            })?;
        if plain.len() as u64 != piece.len {
            return Err(PlaybackError::Mismatch {
                id: self.id,
                detail: format!("chunk {} decrypts to {} bytes", piece.chunk, plain.len()),
            });
        }
        Ok(Bytes::from(plain))
    }

    /// Fragments the row lists.
    pub fn fragment_count(&self) -> usize {
        self.pieces.len() - 1
    }

    /// Decrypts fragment `i` of the row (a `moof` + `mdat`): what a player seeking to
    /// an instant in it needs first. Blocking.
    pub fn fragment(&self, i: usize) -> Result<Bytes, PlaybackError> {
        match self.pieces.get(i + 1) {
            Some(piece) => self.read(piece),
            None => Err(PlaybackError::Mismatch {
                id: self.id,
                detail: format!("no fragment {i}"),
            }),
        }
    }
}

/// Something that yields a response body piece by piece, each step blocking (file
/// reads, decryption). `Ok(None)` ends the body.
pub trait Source: Send + 'static {
    fn next(&mut self) -> Result<Option<Bytes>, PlaybackError>;
}

/// Bytes `first..=last` of a segment's MP4.
pub struct RangeSource {
    reader: SegmentReader,
    /// Next byte to serve, and the first not to.
    pos: u64,
    end: u64,
}

impl RangeSource {
    /// `first..=last` must lie within the reader's length (as `parse_range` gives).
    pub fn new(reader: SegmentReader, first: u64, last: u64) -> Self {
        let end = last.saturating_add(1).min(reader.len);
        Self {
            reader,
            pos: first.min(end),
            end,
        }
    }

    pub fn len(&self) -> u64 {
        self.end - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }
}

impl Source for RangeSource {
    fn next(&mut self) -> Result<Option<Bytes>, PlaybackError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let pieces = &self.reader.pieces;
        let i = pieces
            .partition_point(|p| p.start <= self.pos)
            .saturating_sub(1);
        let Some(piece) = pieces.get(i).copied() else {
            return Ok(None);
        };
        let data = self.reader.read(&piece)?;
        let from = (self.pos - piece.start) as usize;
        let to = (self.end.min(piece.start + piece.len) - piece.start) as usize;
        if from >= to || to > data.len() {
            // Cannot happen with a table built by `open`; never loop or slice past.
            return Err(PlaybackError::Mismatch {
                id: self.reader.id,
                detail: format!("no bytes at {} in chunk {}", self.pos, piece.chunk),
            });
        }
        self.pos = piece.start + to as u64;
        Ok(Some(data.slice(from..to)))
    }
}

/// Fragments overlapping `[from_us, to_us)` of every segment there, stitched into one
/// MP4 behind the first segment's init segment.
pub struct ExportSource {
    data_dir: PathBuf,
    store: Arc<Store>,
    vault: Arc<UnlockedVault>,
    from_us: u64,
    to_us: u64,
    /// Segments still to read, in start order.
    segments: VecDeque<SegmentId>,
    /// The segment being read, and its fragments still to send.
    current: Option<(SegmentReader, VecDeque<Wanted>)>,
    stitcher: Stitcher,
    /// Sent before any fragment.
    init: Option<Bytes>,
    /// End of the last fragment sent: overlapping recordings are not sent twice.
    sent_until_us: u64,
}

impl ExportSource {
    /// Finds the segments and opens the first one with a fragment in range, so that
    /// "nothing there" and a damaged first file are known before any byte is sent.
    /// Blocking.
    pub fn open(
        data_dir: PathBuf,
        store: Arc<Store>,
        vault: Arc<UnlockedVault>,
        from_us: u64,
        to_us: u64,
    ) -> Result<Self, PlaybackError> {
        let mut segments: VecDeque<SegmentId> = store
            .segments_overlapping(from_us, to_us, MAX_EXPORT_SEGMENTS)?
            .into_iter()
            .filter(|s| s.fragment_count > 0)
            .map(|s| s.id)
            .collect();
        while let Some(id) = segments.pop_front() {
            let Some((reader, fragments)) =
                open_in_range(&data_dir, &store, &vault, id, from_us, to_us, 0)?
            else {
                continue;
            };
            let stitcher = Stitcher::new(reader.init()).map_err(|source| PlaybackError::Mp4 {
                id: reader.id(),
                source,
            })?;
            let init = reader.init().clone();
            return Ok(Self {
                data_dir,
                store,
                vault,
                from_us,
                to_us,
                segments,
                current: Some((reader, fragments)),
                stitcher,
                init: Some(init),
                sent_until_us: 0,
            });
        }
        Err(PlaybackError::NoRecordings)
    }
}

/// A fragment to export: its index in the row, and when it ends.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    index: usize,
    end_us: u64,
}

/// Opens segment `id` if it still has fragments overlapping the range and not already
/// exported (`sent_until_us`); `None` if not, or if retention deleted it meanwhile.
fn open_in_range(
    data_dir: &Path,
    store: &Store,
    vault: &UnlockedVault,
    id: SegmentId,
    from_us: u64,
    to_us: u64,
    sent_until_us: u64,
) -> Result<Option<(SegmentReader, VecDeque<Wanted>)>, PlaybackError> {
    let Some(segment) = store.segment(id)? else {
        return Ok(None);
    };
    let wanted: VecDeque<Wanted> = segment
        .fragments
        .iter()
        .enumerate()
        .filter(|(_, f)| overlaps(f, from_us, to_us) && !already_sent(f, sent_until_us))
        .map(|(index, f)| Wanted {
            index,
            end_us: f.end_us(),
        })
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    match SegmentReader::open(data_dir, &segment, vault) {
        Ok(reader) => Ok(Some((reader, wanted))),
        // Deleted by retention between the listing and now.
        Err(PlaybackError::Missing { id }) => {
            tracing::info!(%id, "export: segment deleted meanwhile; skipped");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn overlaps(f: &Fragment, from_us: u64, to_us: u64) -> bool {
    f.start_us < to_us && f.end_us() > from_us
}

/// Whether most of `f` lies before `sent_until_us`: then it repeats video already
/// exported (two recordings of one moment). "Most", not "any": back-to-back segments
/// meet within a few µs of each other, since a segment's start comes from the wall
/// clock and its fragments' times from the capture clock.
fn already_sent(f: &Fragment, sent_until_us: u64) -> bool {
    sent_until_us.saturating_sub(f.start_us) > f.duration_us / 2
}

impl Source for ExportSource {
    fn next(&mut self) -> Result<Option<Bytes>, PlaybackError> {
        if let Some(init) = self.init.take() {
            return Ok(Some(init));
        }
        loop {
            if let Some((reader, fragments)) = &mut self.current
                && let Some(wanted) = fragments.pop_front()
            {
                let id = reader.id();
                let mut data = reader.fragment(wanted.index)?.to_vec();
                self.stitcher
                    .rewrite(&mut data)
                    .map_err(|source| PlaybackError::Mp4 { id, source })?;
                self.sent_until_us = self.sent_until_us.max(wanted.end_us);
                return Ok(Some(Bytes::from(data)));
            }
            self.current = None;
            let Some(id) = self.segments.pop_front() else {
                return Ok(None);
            };
            let Some((reader, fragments)) = open_in_range(
                &self.data_dir,
                &self.store,
                &self.vault,
                id,
                self.from_us,
                self.to_us,
                self.sent_until_us,
            )?
            else {
                continue;
            };
            if let Err(e) = self.stitcher.check_init(reader.init()) {
                // Different picture size or SPS/PPS (the camera was reconfigured):
                // it cannot join this stream. The export goes on with what can.
                tracing::warn!(%id, "export: segment skipped: {e}");
                continue;
            }
            self.current = Some((reader, fragments));
        }
    }
}

/// A response body whose every piece comes from a [`Source`] step run on the blocking
/// pool. The next step starts only when hyper asks for more, so a slow client reads
/// nothing ahead. A failing step (a chunk that does not verify) is logged and ends the
/// body with an error, which makes hyper cut the connection: the client sees a broken
/// download, never unverified bytes.
pub struct BlockingBody<S: Source> {
    state: State<S>,
    /// Bytes still to come, when known (playback), for the size hint.
    remaining: Option<u64>,
    what: &'static str,
}

// The source is only ever moved, never pinned in place.
impl<S: Source> Unpin for BlockingBody<S> {}

enum State<S> {
    Idle(S),
    Busy(JoinHandle<(S, Result<Option<Bytes>, PlaybackError>)>),
    Done,
}

impl<S: Source> BlockingBody<S> {
    /// `len`: the exact length, if known. `what` names the body in logs.
    pub fn new(source: S, len: Option<u64>, what: &'static str) -> Self {
        Self {
            state: if len == Some(0) {
                State::Done
            } else {
                State::Idle(source)
            },
            remaining: len,
            what,
        }
    }

    fn fail(&mut self, e: &dyn std::fmt::Display) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        tracing::error!(body = self.what, "response cut off: {e}");
        self.state = State::Done;
        Poll::Ready(Some(Err(BodyError("recording could not be read"))))
    }
}

impl<S: Source> Body for BlockingBody<S> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Idle(mut source) => {
                    this.state = State::Busy(tokio::task::spawn_blocking(move || {
                        let result = source.next();
                        (source, result)
                    }));
                }
                State::Busy(mut task) => {
                    let polled = Pin::new(&mut task).poll(cx);
                    let (source, result) = match polled {
                        Poll::Pending => {
                            this.state = State::Busy(task);
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(done)) => done,
                        Poll::Ready(Err(e)) => return this.fail(&e),
                    };
                    match result {
                        Ok(Some(data)) if data.is_empty() => this.state = State::Idle(source),
                        Ok(Some(data)) => {
                            if let Some(remaining) = &mut this.remaining {
                                *remaining = remaining.saturating_sub(data.len() as u64);
                            }
                            this.state = State::Idle(source);
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Ok(None) => return Poll::Ready(None),
                        Err(e) => return this.fail(&e),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
