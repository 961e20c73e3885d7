//! Webhooks: each event update the owner asked for becomes a signed JSON POST.
//!
//! ```text
//! EventBus ──recv──► filter ──► Outbox (64, oldest dropped) ──► one attempt at a time
//!                                                               └─ retry: 5xx, 429, 408,
//!                                                                  no answer (backoff)
//! ```
//!
//! The reader only filters and queues, so it keeps up with the bus whatever the
//! receiver does; a receiver that is down or slow costs queued notifications (the
//! oldest first, counted in [`WebhookStats::dropped`]), never the detector's time.
//! Body, headers and signature: `docs/notifications.md`.

mod client;
mod retry;
mod sign;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http::header::{CONTENT_TYPE, HeaderMap, USER_AGENT};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::broadcast::{self, error::RecvError};

pub use client::{DeliveryError, SYSTEM_CA_BUNDLE, WebhookError};
pub use sign::{DELIVERY_HEADER, SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER};

use super::{Device, Envelope, Outbox, update_type};
use crate::config::WebhookSettings;
use crate::events::{Event, EventKind, EventUpdate};
use client::Target;
use retry::Verdict;

/// Notifications waiting for a receiver that is slow or down.
pub const DEFAULT_QUEUE: usize = 64;

/// Which updates a webhook is sent for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventFilter(u8);

const KINDS: [(&str, EventKind); 2] =
    [("motion", EventKind::Motion), ("person", EventKind::Person)];
const UPDATES: [&str; 3] = ["started", "updated", "ended"];

impl EventFilter {
    /// Every update of every kind, `updated` included (a higher score, a new zone or
    /// the thumbnail becoming available).
    pub const ALL: Self = Self(0b11_1111);

    fn bit(kind: EventKind, update: usize) -> u8 {
        let k = match kind {
            EventKind::Motion => 0,
            EventKind::Person => 1,
        };
        1 << (k * 3 + update)
    }

    fn update_index(update: &EventUpdate) -> usize {
        match update {
            EventUpdate::Started(_) => 0,
            EventUpdate::Updated(_) => 1,
            EventUpdate::Ended(_) => 2,
        }
    }

    /// Reads the `events` setting: each name is a kind (`person`, `motion`: all its
    /// updates) or a kind and an update (`person.started`, `motion.ended`, ...).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownEvent> {
        let mut bits = 0;
        for name in names {
            let name = name.as_ref();
            let (kind, update) = match name.split_once('.') {
                Some((k, u)) => (k, Some(u)),
                None => (name, None),
            };
            let kind = KINDS
                .iter()
                .find(|(n, _)| *n == kind)
                .ok_or_else(|| UnknownEvent(name.to_owned()))?
                .1;
            match update {
                None => (0..3).for_each(|u| bits |= Self::bit(kind, u)),
                Some(u) => {
                    let u = UPDATES
                        .iter()
                        .position(|n| *n == u)
                        .ok_or_else(|| UnknownEvent(name.to_owned()))?;
                    bits |= Self::bit(kind, u);
                }
            }
        }
        Ok(Self(bits))
    }

    pub fn allows(&self, update: &EventUpdate) -> bool {
        self.0 & Self::bit(update.event().kind, Self::update_index(update)) != 0
    }

    /// The names this filter allows, as [`parse`](Self::parse) reads them.
    pub fn names(&self) -> Vec<String> {
        KINDS
            .iter()
            .flat_map(|(k, kind)| {
                UPDATES
                    .iter()
                    .enumerate()
                    .filter(move |(u, _)| self.0 & Self::bit(*kind, *u) != 0)
                    .map(move |(_, n)| format!("{k}.{n}"))
            })
            .collect()
    }
}

/// Started and ended, for motion and for people: what an automation usually wants.
impl Default for EventFilter {
    fn default() -> Self {
        Self(
            Self::bit(EventKind::Motion, 0)
                | Self::bit(EventKind::Motion, 2)
                | Self::bit(EventKind::Person, 0)
                | Self::bit(EventKind::Person, 2),
        )
    }
}

impl fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown event `{0}`: expected `motion` or `person`, alone or with `.started`, `.updated` \
     or `.ended` (e.g. `person.started`)"
)]
pub struct UnknownEvent(pub String);

/// One webhook receiver.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://`; https is checked against the system's CA bundle.
    pub url: String,
    /// The HMAC-SHA256 key the receiver checks `X-MeCam-Signature` with.
    pub secret: String,
    /// For one attempt: connecting, TLS, sending and the answer's headers.
    pub timeout: Duration,
    /// Attempts after the first, for answers that may change (see [`retry::verdict`]).
    pub max_retries: u32,
    pub events: EventFilter,
    /// The camera's name in `device.name`.
    pub device_name: String,
    /// The wait before the first retry; it doubles for each further one (with jitter),
    /// up to a minute.
    pub retry_base: Duration,
    /// Notifications kept while the receiver is slow or down.
    pub queue: usize,
}

impl WebhookConfig {
    /// A receiver with the defaults: 5 s per attempt, 3 retries from 1 s, started and
    /// ended events of both kinds.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            timeout: Duration::from_secs(5),
            max_retries: 3,
            events: EventFilter::default(),
            device_name: "ME_CAM".into(),
            retry_base: Duration::from_secs(1),
            queue: DEFAULT_QUEUE,
        }
    }

    /// From a `[[notify.webhook]]` table.
    pub fn from_settings(settings: &WebhookSettings, device_name: &str) -> Self {
        Self {
            timeout: settings.timeout,
            max_retries: settings.retries,
            events: settings.events,
            device_name: device_name.to_owned(),
            ..Self::new(settings.url.clone(), settings.secret.clone())
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &client::redact(&self.url))
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("events", &self.events)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// What a webhook did so far, for health and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Notifications the receiver accepted (2xx).
    pub delivered: u64,
    /// Notifications given up on: refused (4xx) or out of retries.
    pub failed: u64,
    /// Notifications dropped unsent because the queue was full.
    pub dropped: u64,
    /// Updates the notifier never saw because it fell behind the event bus.
    pub skipped: u64,
    /// Notifications waiting now.
    pub queued: usize,
    /// The last failure, as the log said it.
    pub last_error: Option<String>,
}

/// A notification waiting to be sent, with the id all its attempts carry.
#[derive(Clone)]
struct Pending {
    update: EventUpdate,
    delivery: String,
}

/// A webhook receiver and its queue. Share it (`Rc`) between the task that
/// [`run`](Self::run)s it and a "send test" button calling [`send_test`](Self::send_test).
pub struct Webhook {
    config: WebhookConfig,
    target: Target,
    signer: Signer,
    device: Device,
    headers: HeaderMap,
    rng: SystemRandom,
    outbox: Outbox<Pending>,
    delivered: Cell<u64>,
    failed: Cell<u64>,
    skipped: Cell<u64>,
    /// The receiver failed last time: log the next failure quietly, the recovery loudly.
    down: Cell<bool>,
    last_error: RefCell<Option<String>>,
}

impl Webhook {
    /// Checks the URL and, for https://, reads the system's CA bundle (once, now).
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookError> {
        let target = Target::parse(&config.url, None)?;
        Ok(Self::with_target(config, target))
    }

    /// Like [`new`](Self::new), but https:// receivers must chain to `roots` instead
    /// of the system's CAs (a private CA, or a test's).
    pub fn with_roots(
        config: WebhookConfig,
        roots: rustls::RootCertStore,
    ) -> Result<Self, WebhookError> {
        let target = Target::parse(&config.url, Some(roots))?;
        Ok(Self::with_target(config, target))
    }

    fn with_target(config: WebhookConfig, target: Target) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("mecam/", env!("CARGO_PKG_VERSION"))),
        );
        Self {
            signer: Signer::new(config.secret.as_bytes()),
            device: Device::named(&config.device_name),
            outbox: Outbox::new(config.queue),
            headers,
            target,
            config,
            rng: SystemRandom::new(),
            delivered: Cell::new(0),
            failed: Cell::new(0),
            skipped: Cell::new(0),
            down: Cell::new(false),
            last_error: RefCell::new(None),
        }
    }

    /// `scheme://host:port` of the receiver: what logs may show of the URL.
    pub fn origin(&self) -> &str {
        &self.target.origin
    }

    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            delivered: self.delivered.get(),
            failed: self.failed.get(),
            dropped: self.outbox.dropped(),
            skipped: self.skipped.get(),
            queued: self.outbox.len(),
            last_error: self.last_error.borrow().clone(),
        }
    }

    /// Sends the updates `updates` brings that the filter allows, until the bus
    /// closes; then sends what is still queued and returns. Call once per webhook.
    pub async fn run(&self, mut updates: broadcast::Receiver<EventUpdate>) {
        let closed = Cell::new(false);
        let read = async {
            loop {
                match updates.recv().await {
                    Ok(update) if self.config.events.allows(&update) => {
                        let delivery = self.random_id();
                        self.outbox.push(Pending { update, delivery });
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        self.skipped.set(self.skipped.get() + n);
                        tracing::warn!(
                            webhook = %self.target.origin,
                            skipped = n,
                            "webhook notifier fell behind the event bus; updates skipped"
                        );
                    }
                    Err(RecvError::Closed) => break,
                }
            }
            closed.set(true);
            self.outbox.wake();
        };
        let send = async {
            loop {
                match self.outbox.try_pop() {
                    Some(pending) => self.deliver(pending).await,
                    None if closed.get() => break,
                    None => self.outbox.ready().await,
                }
            }
        };
        tokio::join!(read, send);
    }

    /// One POST of a `"type": "test"` notification (with an example event, id 0), no
    /// retries: for a "send test" button, which wants the receiver's answer now.
    /// `Ok` carries the (2xx) status; any other status is an error.
    pub async fn send_test(&self) -> Result<u16, DeliveryError> {
        let now_us = jiff::Timestamp::now().as_microsecond().max(0) as u64;
        let example = Event {
            id: 0,
            kind: EventKind::Person,
            start_us: now_us.saturating_sub(5_000_000),
            end_us: Some(now_us),
            peak_score: 0.9,
            boxes: vec![],
            zones: vec![],
            thumbnail: false,
        };
        let reply = self.attempt("test", &example, &self.random_id()).await?;
        if reply.status.is_success() {
            Ok(reply.status.as_u16())
        } else {
            Err(DeliveryError::Status {
                origin: self.target.origin.clone(),
                status: reply.status.as_u16(),
            })
        }
    }

    /// Tries one notification until it is delivered, refused, or out of retries.
    async fn deliver(&self, pending: Pending) {
        let kind = update_type(&pending.update);
        let event = pending.update.event();
        let mut retry = 0;
        loop {
            let result = self.attempt(kind, event, &pending.delivery).await;
            let (error, retry_after) = match result {
                Ok(reply) => match retry::verdict(reply.status) {
                    Verdict::Delivered => {
                        self.delivered.set(self.delivered.get() + 1);
                        if self.down.replace(false) {
                            tracing::info!(webhook = %self.target.origin, "webhook receiver reached again");
                        }
                        tracing::debug!(webhook = %self.target.origin, kind, id = event.id, "notified");
                        return;
                    }
                    Verdict::GiveUp => {
                        let status = reply.status.as_u16();
                        self.give_up(format!(
                            "{} refused {kind} for event {}: HTTP {status}; not retried (check \
                             the URL and the receiver's settings)",
                            self.target.origin, event.id
                        ));
                        return;
                    }
                    Verdict::Retry => (
                        DeliveryError::Status {
                            origin: self.target.origin.clone(),
                            status: reply.status.as_u16(),
                        },
                        reply.retry_after,
                    ),
                },
                Err(e) => (e, None),
            };
            if retry >= self.config.max_retries {
                self.give_up(format!(
                    "{kind} for event {} not delivered after {} attempts: {error}",
                    event.id,
                    retry + 1
                ));
                return;
            }
            let wait = retry::delay(self.config.retry_base, retry, self.jitter(), retry_after);
            tracing::debug!(webhook = %self.target.origin, %error, ?wait, "webhook attempt failed; retrying");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    fn give_up(&self, message: String) {
        self.failed.set(self.failed.get() + 1);
        if self.down.replace(true) {
            tracing::debug!("{message}");
        } else {
            tracing::warn!("{message}");
        }
        *self.last_error.borrow_mut() = Some(message);
    }

    /// One signed POST, bounded by the timeout.
    async fn attempt(
        &self,
        kind: &'static str,
        event: &Event,
        delivery: &str,
    ) -> Result<client::Reply, DeliveryError> {
        // Rendered per attempt: `sent_at` and the signed timestamp are this attempt's,
        // so a receiver's freshness check holds for retries too.
        let now = jiff::Timestamp::now();
        let body = Bytes::from(Envelope::new(kind, event, &self.device, now).to_json());
        let timestamp = now.as_second().max(0) as u64;
        let mut headers = self.headers.clone();
        let signature = self.signer.sign(timestamp, &body);
        for (name, value) in [
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
            (DELIVERY_HEADER, delivery.to_owned()),
        ] {
            // Digits, hex and `sha256=`: always valid header values.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name, value);
            }
        }
        match tokio::time::timeout(self.config.timeout, self.target.post(headers, body)).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Timeout {
                origin: self.target.origin.clone(),
                after: self.config.timeout,
            }),
        }
    }

    fn random_id(&self) -> String {
        let mut id = [0u8; 16];
        // The system's random source does not fail on Linux once booted; an all-zero
        // id would only weaken duplicate detection, not security.
        let _ = self.rng.fill(&mut id);
        sign::hex(&id)
    }

    fn jitter(&self) -> f64 {
        let mut b = [0u8; 4];
        let _ = self.rng.fill(&mut b);
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    }

    #[cfg(test)]
    fn queued_ids(&self) -> Vec<u64> {
        self.outbox
            .snapshot()
            .iter()
            .map(|p| p.update.event().id)
            .collect()
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}
