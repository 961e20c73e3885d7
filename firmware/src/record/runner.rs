//! The recording stage as the service runs it: the H.264 encoder thread fed from the
//! pipeline's frame tap, and the recorder task, started once the vault exists.
//!
//! STUB — being implemented (see the interface below; `service.rs` and the API call
//! exactly these).

use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::FrameTap;
use crate::store::Store;
use crate::vault::SealingKey;

use super::{RecordError, RecorderControl, RecorderStatus, RecoveryReport};

/// Owns the recording stage on the I/O thread.
pub struct Recording {
    _store: Arc<Store>,
}

impl Recording {
    /// Prepares the stage; nothing runs until [`Recording::enable`].
    pub fn new(_config: &Config, store: Arc<Store>, _tap: FrameTap) -> Self {
        Self { _store: store }
    }

    /// Start-up reconciliation of the index with the disk (before `enable`).
    pub async fn recover(&self) -> Result<RecoveryReport, RecordError> {
        Ok(RecoveryReport::default())
    }

    /// Starts encoding and recording, sealing to `key`. Called at start when the vault
    /// exists, or right after first-run setup. A second call does nothing.
    pub fn enable(&self, _key: SealingKey) -> Result<(), RecordError> {
        Ok(())
    }

    /// The recorder's handle, once enabled.
    pub fn control(&self) -> Option<RecorderControl> {
        None
    }

    /// What the recorder is doing, once enabled.
    pub fn status(&self) -> Option<RecorderStatus> {
        None
    }

    /// Closes the open segment and stops the encoder (at shutdown).
    pub async fn stop(&self) {}
}
