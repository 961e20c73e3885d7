//! Notifications: event updates to the owner's other systems — webhooks (signed JSON
//! POSTs) and MQTT with Home Assistant discovery. Never on the pipeline's path: each
//! notifier has its own task and queue, and drops what it cannot deliver in time.
//!
//! Both notifiers read the [`EventBus`](crate::events::EventBus) through their own
//! broadcast receiver and move what they want into a small [`Outbox`] right away, so
//! a receiver that is down fills that outbox (oldest dropped, counted), never the bus.
//! Their futures are not `Send`: spawn them on the service's I/O thread.

pub mod mqtt;
pub mod webhook;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use serde::Serialize;
use tokio::sync::Notify;

use crate::events::{Event, EventUpdate};

/// The service's version, as notifications and `User-Agent` show it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `event.started`, `event.updated` or `event.ended`: the `type` of a notification.
pub fn update_type(update: &EventUpdate) -> &'static str {
    match update {
        EventUpdate::Started(_) => "event.started",
        EventUpdate::Updated(_) => "event.updated",
        EventUpdate::Ended(_) => "event.ended",
    }
}

/// Which camera sent a notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub name: String,
    pub version: String,
}

impl Device {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: VERSION.to_owned(),
        }
    }
}

/// The JSON body of a webhook and of an MQTT `<base>/event` message:
/// `{"type": "event.started", "event": {...}, "device": {...}, "sent_at": "..."}`.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: &'a Event,
    pub device: &'a Device,
    /// RFC 3339, UTC.
    pub sent_at: String,
}

impl<'a> Envelope<'a> {
    /// `sent_at` is `now` in whole seconds, so it reads the same as the webhook's
    /// `X-MeCam-Timestamp`.
    pub fn new(
        kind: &'static str,
        event: &'a Event,
        device: &'a Device,
        now: jiff::Timestamp,
    ) -> Self {
        let whole = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        Self {
            kind,
            event,
            device,
            sent_at: whole.to_string(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs of strings and numbers cannot fail; a non-finite
        // score (never produced) would become `null` rather than an error.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// A bounded first-in-first-out queue for one task: pushing to a full queue drops the
/// oldest item and counts it, so the producer never waits.
///
/// Single-threaded by design (`RefCell`): producer and consumer are futures of one
/// notifier on the I/O thread.
pub(crate) struct Outbox<T> {
    items: RefCell<VecDeque<T>>,
    capacity: usize,
    dropped: Cell<u64>,
    ready: Notify,
}

impl<T> Outbox<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: RefCell::new(VecDeque::with_capacity(capacity)),
            capacity: capacity.max(1),
            dropped: Cell::new(0),
            ready: Notify::new(),
        }
    }

    /// Adds `item` at the end, dropping the oldest item if the queue is full.
    pub(crate) fn push(&self, item: T) {
        let mut items = self.items.borrow_mut();
        if items.len() >= self.capacity {
            items.pop_front();
            self.dropped.set(self.dropped.get() + 1);
        }
        items.push_back(item);
        drop(items);
        self.ready.notify_one();
    }

    /// Like [`push`](Self::push), but first removes queued items that `item` makes
    /// pointless (e.g. an older snapshot of the same camera). Those are not counted as
    /// dropped: what they said is still delivered, only newer.
    pub(crate) fn push_replacing(&self, item: T, superseded: impl Fn(&T) -> bool) {
        self.items.borrow_mut().retain(|old| !superseded(old));
        self.push(item);
    }

    pub(crate) fn try_pop(&self) -> Option<T> {
        self.items.borrow_mut().pop_front()
    }

    /// Waits until an item is there, or [`wake`](Self::wake) is called.
    pub(crate) async fn ready(&self) {
        if self.items.borrow().is_empty() {
            self.ready.notified().await;
        }
    }

    /// Wakes a consumer waiting in [`ready`](Self::ready) even if the queue is empty
    /// (it has something else to do).
    pub(crate) fn wake(&self) {
        self.ready.notify_one();
    }

    pub(crate) fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// Items dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.items.borrow().iter().cloned().collect()
    }
}

/// Helpers for the notifiers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use crate::events::{Event, EventKind};

    /// An event as the tracker would report it.
    pub fn event(id: u64, kind: EventKind, ended: bool) -> Event {
        let start_us = 1_700_000_000_000_000 + id * 1_000_000;
        Event {
            id,
            kind,
            start_us,
            end_us: ended.then_some(start_us + 3_000_000),
            peak_score: 0.75,
            boxes: vec![crate::detect::BBox {
                x: 0.25,
                y: 0.5,
                w: 0.125,
                h: 0.25,
            }],
            zones: vec!["door".into()],
            thumbnail: false,
        }
    }

    /// A single-threaded tokio runtime like the service's I/O thread (minus io_uring,
    /// which the notifiers do not use, so these tests also run under qemu-user).
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    /// Waits (yielding to the notifier under test) until `done` holds; panics with
    /// `what` after `limit`, a safety net for a broken notifier, not a speed check.
    pub async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting: {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts_it() {
        let outbox = Outbox::new(3);
        for n in 0..10 {
            outbox.push(n);
        }
        assert_eq!(outbox.snapshot(), [7, 8, 9], "the newest are kept");
        assert_eq!(outbox.dropped(), 7);
        outbox.push_replacing(10, |&old| old == 8);
        assert_eq!(outbox.snapshot(), [7, 9, 10]);
        assert_eq!(outbox.dropped(), 7, "a superseded item is not a loss");
        assert_eq!(outbox.try_pop(), Some(7));
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn envelope_has_the_documented_fields() {
        let event = Event {
            id: 7,
            kind: crate::events::EventKind::Person,
            start_us: 1_700_000_000_000_000,
            end_us: None,
            peak_score: 0.5,
            boxes: vec![],
            zones: vec!["door".into()],
            thumbnail: false,
        };
        let device = Device::named("Porch");
        let update = EventUpdate::Started(event.clone());
        let json: serde_json::Value = serde_json::from_slice(
            &Envelope::new(
                update_type(&update),
                &event,
                &device,
                "2024-06-10T06:13:20.75Z".parse().unwrap(),
            )
            .to_json(),
        )
        .unwrap();
        assert_eq!(json["type"], "event.started");
        assert_eq!(json["event"]["id"], 7);
        assert_eq!(json["event"]["kind"], "person");
        assert_eq!(json["event"]["zones"][0], "door");
        assert_eq!(json["device"]["name"], "Porch");
        assert_eq!(json["device"]["version"], VERSION);
        assert_eq!(
            json["sent_at"], "2024-06-10T06:13:20Z",
            "whole seconds, like X-MeCam-Timestamp"
        );
    }
}
