//! What can go wrong while recording. None of it stops the recorder: each error ends
//! or skips one segment, lands in the status, and recording resumes when it can.

use std::io;
use std::path::PathBuf;

use super::fmp4::Mp4Error;
use super::space::is_disk_full;
use crate::store::StoreError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("index: {0}")]
    Store(#[from] StoreError),
    #[error("encryption: {0}")]
    Vault(#[from] VaultError),
    #[error("MP4: {0}")]
    Mp4(#[from] Mp4Error),
    /// The recording stage could not start (no camera frames yet, or the H.264
    /// encoder refused its settings).
    #[error("recording cannot start: {0}")]
    Start(String),
    /// A blocking index task panicked or was cancelled.
    #[error("index task failed: {0}")]
    Task(String),
}

impl RecordError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the data partition is full (a segment write or an index commit).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Io { source, .. } => is_disk_full(source),
            Self::Store(StoreError::Unavailable { source, .. }) => is_disk_full(source),
            Self::Vault(VaultError::Io(source)) => is_disk_full(source),
            _ => false,
        }
    }
}
