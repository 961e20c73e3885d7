//! Events: what the detector saw, as the owner meets it — "person at the door,
//! 18:02:10–18:02:31, 91 %" with a thumbnail and a link to the recording.
//!
//! - `tracker`: turns the detector's [`Observation`](crate::detect::Observation)s into
//!   event starts, updates and ends (one motion event and at most one person event
//!   open at a time; an event ends after a quiet cooldown).
//! - `store`: the `events` table in the index, keyed by start time; sealed thumbnails
//!   under `DATA/thumbnails/`.
//! - the API is in `api::events` (list, thumbnail, Server-Sent Events).
//!
//! Every [`EventUpdate`] is broadcast on an [`EventBus`] to the API's SSE clients, the
//! recorder (event mode), and the notifiers.

pub mod store;
pub mod tracker;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::detect::BBox;

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
