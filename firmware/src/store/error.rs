//! What can go wrong with the index, worded for the person who has to fix it.
//!
//! A camera appliance has no console: the message of an open error ends up in the
//! status page and the log, so every variant that a user can meet says what to do.

use std::io;
use std::path::PathBuf;

use super::segments::SegmentId;

/// An error from the index and state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory or its files cannot be created, opened or written.
    #[error(
        "cannot use the index at {path}: {source}. Check that the data partition is mounted \
         read-write, is not full, and that the service may write to {path}"
    )]
    Unavailable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The data file is not a readable LMDB environment (garbage, truncated, bit rot).
    #[error(
        "the index at {path} is damaged ({detail}). The recordings themselves are separate \
         files and are not affected: stop the service, move {path} aside (for example to \
         {path}.broken, to keep it for inspection) and start again. A new, empty index is \
         created and the segment files on disk are reported for re-indexing; users, sessions \
         and settings kept in the index are lost with it"
    )]
    Corrupt { path: PathBuf, detail: String },

    /// The data or lock file was made by an incompatible LMDB build.
    #[error(
        "the index at {path} was made by an incompatible LMDB version. If no other ME_CAM \
         process is running, delete {path}/lock.mdb (it holds no data) and start again; if \
         the error stays, data.mdb itself is from an incompatible version: move {path} aside \
         to start a fresh index (recordings on disk are kept and re-indexed)"
    )]
    LmdbVersion { path: PathBuf },

    /// The environment was written by newer firmware in a way this build cannot read.
    #[error(
        "the index at {path} has schema version {found} and needs a build that reads schema \
         {min_reader} or newer, but this build reads up to schema {supported}. It was written \
         by newer firmware: install that firmware again, or move {path} aside to start a \
         fresh index (recordings on disk are kept and re-indexed)"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        min_reader: u32,
        supported: u32,
    },

    /// The memory map reached its configured ceiling; nothing more can be written.
    #[error(
        "the index at {path} is full: it reached its ceiling of {map_size} bytes of address \
         space. Shorten the retention (fewer, older recordings are then removed) or raise the \
         index ceiling; existing data is intact and readable"
    )]
    Full { path: PathBuf, map_size: usize },

    /// The environment is already open in this process (two `Store`s on one directory).
    #[error("the index at {path} is already open in this process; share the one `Store`")]
    AlreadyOpen { path: PathBuf },

    /// A segment row handed to the store breaks an invariant (caller bug).
    #[error("invalid segment {id}: {reason}")]
    InvalidSegment { id: SegmentId, reason: String },

    /// A settings key is empty, too long, or a stored value does not fit the asked type.
    #[error("setting `{key}`: {reason}")]
    Setting { key: String, reason: String },

    /// A table name outside the documented list (see `schema::RESERVED_TABLES`).
    #[error("table `{0}` is not a reserved table name of the index (see store::schema)")]
    UnknownTable(String),

    /// Any other LMDB failure. Kept raw until [`Store`](super::Store) classifies it at its
    /// boundary, so that `MDB_MAP_FULL` can be recognised and retried.
    #[error("index operation failed: {0}")]
    Lmdb(#[source] heed::Error),
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> Self {
        Self::Lmdb(e)
    }
}

impl StoreError {
    /// Turns a raw LMDB error into the variant a user can act on. Called once, at the
    /// edge of each public operation, where the index path is known.
    pub(crate) fn classify(self, path: &std::path::Path, map_size: usize) -> Self {
        use heed::MdbError as M;
        let path = path.to_path_buf();
        match self {
            Self::Corrupt { path: p, detail } if p.as_os_str().is_empty() => {
                Self::Corrupt { path, detail }
            }
            Self::Lmdb(heed::Error::Mdb(e)) => match e {
                M::Invalid | M::Corrupted | M::PageNotFound | M::Panic => Self::Corrupt {
                    path,
                    detail: e.to_string(),
                },
                M::VersionMismatch => Self::LmdbVersion { path },
                M::MapFull => Self::Full { path, map_size },
                other => Self::Lmdb(heed::Error::Mdb(other)),
            },
            Self::Lmdb(heed::Error::Io(source)) => Self::Unavailable { path, source },
            Self::Lmdb(heed::Error::EnvAlreadyOpened) => Self::AlreadyOpen { path },
            other => other,
        }
    }

    /// True for `MDB_MAP_FULL`, the one failure that growing the map fixes.
    pub(crate) fn is_map_full(&self) -> bool {
        matches!(self, Self::Lmdb(heed::Error::Mdb(heed::MdbError::MapFull)))
    }

    /// True for `MDB_MAP_RESIZED`: another process grew the map; adopt its size and retry.
    pub(crate) fn is_map_resized(&self) -> bool {
        matches!(
            self,
            Self::Lmdb(heed::Error::Mdb(heed::MdbError::MapResized))
        )
    }

    /// A row that cannot be decoded: reported as damage of the environment.
    pub(crate) fn corrupt_row(what: impl std::fmt::Display) -> Self {
        // A row error is raised deep in the codec where the index path is not at hand;
        // it travels with an empty path and `classify` fills it in.
        Self::Corrupt {
            path: PathBuf::new(),
            detail: what.to_string(),
        }
    }
}
