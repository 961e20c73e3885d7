//! Events: what the detector saw, as the owner meets it — "person at the door,
//! 18:02:10–18:02:31, 91 %" with a thumbnail and a link to the recording.
//!
//! - [`tracker`]: turns the detector's [`Observation`](crate::detect::Observation)s
//!   into event starts, updates and ends (one motion event and at most one person
//!   event open at a time; an event ends after a quiet cooldown).
//! - [`store`]: the `events` table in the index, keyed by kind and start time.
//! - [`thumbnail`]: sealed thumbnails under `DATA/thumbnails/`.
//! - [`service`]: the task on the I/O thread that runs the tracker on the detector's
//!   observations, writes rows and thumbnails, and publishes the updates.
//! - [`EventsApi`]: what the HTTP API and retention use (listing, thumbnails, the bus).
//! - the API is in `api::events` (list, thumbnail, Server-Sent Events); the user-level
//!   description is `docs/events.md`.
//!
//! Every [`EventUpdate`] is broadcast on an [`EventBus`] to the API's SSE clients, the
//! recorder (event mode), and the notifiers — after its row is written, so whoever
//! hears of an event can look it up.

pub mod service;
pub mod store;
pub mod thumbnail;
pub mod tracker;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::detect::BBox;
use crate::store::{Store, StoreError};
use crate::vault::SealingKey;

pub use service::{EventService, EventServiceHandle};
pub use store::{Cursor, EventPage, EventQuery, EventStore};
pub use thumbnail::{ThumbnailError, Thumbnails};
pub use tracker::{Tracker, TrackerConfig};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Motion,
    Person,
}

/// An event as stored and as the API shows it. Times are µs since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub kind: EventKind,
    pub start_us: u64,
    /// `None` while the event is going on.
    pub end_us: Option<u64>,
    /// Highest score seen: the model's for a person, the changed area for motion.
    pub peak_score: f32,
    /// Boxes at the peak.
    pub boxes: Vec<BBox>,
    /// Zones touched during the event.
    pub zones: Vec<String>,
    /// A sealed thumbnail exists for this event.
    pub thumbnail: bool,
}

/// A change to an event, in the order they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum EventUpdate {
    Started(Event),
    /// A higher peak, more zones, or a thumbnail.
    Updated(Event),
    Ended(Event),
}

impl EventUpdate {
    pub fn event(&self) -> &Event {
        match self {
            Self::Started(e) | Self::Updated(e) | Self::Ended(e) => e,
        }
    }
}

/// Fan-out of event updates. Slow subscribers lag and skip (broadcast semantics),
/// never slowing the detector.
#[derive(Clone)]
pub struct EventBus(broadcast::Sender<EventUpdate>);

impl EventBus {
    pub fn new() -> Self {
        Self(broadcast::channel(256).0)
    }

    pub fn publish(&self, update: EventUpdate) {
        // No subscriber is fine.
        let _ = self.0.send(update);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EventUpdate> {
        self.0.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// What can go wrong with events.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("events: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Thumbnail(#[from] ThumbnailError),
    #[error("events: work on a blocking thread failed: {0}")]
    Task(String),
}

/// Rows deleted per retention transaction.
const RETENTION_BATCH: usize = 500;

/// The events' storage and bus, as the HTTP API and retention use them. Cheap to clone
/// (one `Arc`), `Send + Sync`: its blocking methods can run on a blocking thread.
#[derive(Clone)]
pub struct EventsApi(Arc<Shared>);

struct Shared {
    store: EventStore,
    thumbnails: Thumbnails,
    bus: EventBus,
    /// `None` until the vault exists (first-run setup): no thumbnails before that.
    sealing_key: watch::Sender<Option<SealingKey>>,
}

impl std::fmt::Debug for EventsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsApi")
            .field("thumbnails", &self.0.thumbnails.dir())
            .finish_non_exhaustive()
    }
}

impl EventsApi {
    /// Opens the `events` table and the thumbnail directory of `data_dir`. Blocking
    /// (one index write): call at start-up.
    pub fn open(store: Arc<Store>, data_dir: &Path, bus: EventBus) -> Result<Self, EventError> {
        let store = EventStore::open(store)?;
        let thumbnails = Thumbnails::new(data_dir);
        thumbnails.create_dir()?;
        Ok(Self(Arc::new(Shared {
            store,
            thumbnails,
            bus,
            sealing_key: watch::Sender::new(None),
        })))
    }

    /// Thumbnails from now on: call at start when the device is set up, and right
    /// after first-run setup created the vault.
    pub fn set_sealing_key(&self, key: SealingKey) {
        self.0.sealing_key.send_replace(Some(key));
    }

    /// The key thumbnails are sealed with, if the vault exists.
    pub fn sealing_key(&self) -> Option<SealingKey> {
        self.0.sealing_key.borrow().clone()
    }

    pub fn bus(&self) -> &EventBus {
        &self.0.bus
    }

    /// Every update from now on (see [`EventBus`]).
    pub fn subscribe(&self) -> broadcast::Receiver<EventUpdate> {
        self.0.bus.subscribe()
    }

    pub fn store(&self) -> &EventStore {
        &self.0.store
    }

    pub fn thumbnails(&self) -> &Thumbnails {
        &self.0.thumbnails
    }

    /// Start-up repair, before the tracker runs: ends the events a crash left open,
    /// removes orphaned thumbnails, and reserves the ids of this run (returns the
    /// first). Blocking.
    pub fn recover(&self) -> Result<u64, EventError> {
        let closed = self.0.store.close_interrupted()?;
        for e in &closed {
            tracing::info!(id = e.id, kind = ?e.kind, "closed an event interrupted by a restart");
        }
        let mut known = self.0.store.ids()?;
        known.sort_unstable();
        let swept = self
            .0
            .thumbnails
            .sweep(|id| known.binary_search(&id).is_ok())?;
        if swept > 0 {
            tracing::info!(swept, "removed thumbnails without an event");
        }
        Ok(self.0.store.reserve_ids()?)
    }

    /// Retention: deletes the ended events that started before `cutoff_us` (µs since
    /// the epoch), thumbnails first, then rows — so a crash in between leaves rows
    /// without a thumbnail (shown as such, deleted next time), never a thumbnail
    /// without a row. Returns how many events went. Blocking: run it on a blocking
    /// thread, or use [`prune`](Self::prune).
    pub fn delete_before(&self, cutoff_us: u64) -> Result<usize, EventError> {
        let mut deleted = 0;
        loop {
            let batch = self.0.store.expired(cutoff_us, RETENTION_BATCH)?;
            if batch.is_empty() {
                break;
            }
            self.0.thumbnails.remove(batch.iter().map(|e| e.id))?;
            let n = self.0.store.delete(&batch)?;
            deleted += n;
            if n == 0 {
                // Cannot happen (the rows were just read); never loop forever on it.
                break;
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "events past retention deleted");
        }
        Ok(deleted)
    }

    /// [`delete_before`](Self::delete_before) now minus `max_age`, on a blocking
    /// thread.
    pub async fn prune(&self, max_age: Duration) -> Result<usize, EventError> {
        let cutoff = SystemTime::now()
            .checked_sub(max_age)
            .map_or(0, crate::record::layout::unix_us);
        let api = self.clone();
        tokio::task::spawn_blocking(move || api.delete_before(cutoff))
            .await
            .map_err(|e| EventError::Task(e.to_string()))?
    }
}
