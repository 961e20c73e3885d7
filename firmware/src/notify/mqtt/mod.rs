//! MQTT: motion and person states, event messages and the latest event's snapshot on
//! a broker, announced to Home Assistant by MQTT discovery.
//!
//! Topics under `base_topic` (default `mecam/<device id>`):
//!
//! | topic | payload | retained |
//! |---|---|---|
//! | `availability` | `online`, or `offline` (Last Will: also when the camera dies) | yes |
//! | `motion`, `person` | `ON` while such an event is open, else `OFF` | yes |
//! | `event` | the webhook's JSON envelope, one per event update | no |
//! | `snapshot` | JPEG of the live view when an event starts | yes |
//!
//! Three futures run together in [`MqttNotifier::run`]:
//!
//! ```text
//! EventBus ─► read ─► Outbox (64, oldest dropped) ─► drain ─► rumqttc channel (8)
//!                                                              │
//!                               broker ◄──── drive: EventLoop::poll, reconnects with backoff
//! ```
//!
//! `drive` polls rumqttc's event loop all the time (nothing else moves bytes, keeps
//! the connection alive or reconnects). `drain` is the only one that waits for room
//! in rumqttc's channel, so while the broker is down it is `drain` that waits, the
//! outbox that fills and drops its oldest, and `read` — and so the detector — that
//! never waits. On every (re)connection the announcement goes out first: `online`,
//! the discovery configs and the current states (retained), so a broker that lost
//! its retained messages, or a Home Assistant that restarted (it publishes `online`
//! on `<discovery_prefix>/status`), is brought up to date.

mod discovery;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::broadcast::{self, error::RecvError};

pub use discovery::{Discovery, configs as discovery_configs};

use super::{Device, Envelope, Outbox, update_type};
use crate::config::MqttSettings;
use crate::events::{EventKind, EventUpdate};
use crate::live::LiveBus;

const AVAILABILITY: &str = "availability";
const MOTION: &str = "motion";
const PERSON: &str = "person";
const EVENT: &str = "event";
const SNAPSHOT: &str = "snapshot";
const ONLINE: &str = "online";
const OFFLINE: &str = "offline";
/// How long a clean stop waits for `offline` and the DISCONNECT to go out.
const FAREWELL_WAIT: Duration = Duration::from_secs(1);
const ON: &str = "ON";
const OFF: &str = "OFF";

/// Messages kept while the broker is unreachable.
pub const DEFAULT_QUEUE: usize = 64;
/// rumqttc's own request channel: small, because it is a second queue that cannot
/// drop its oldest (and may hold snapshots).
const CHANNEL: usize = 8;
/// Snapshots larger than this are not published: a 1080p JPEG at quality 80 is about
/// 300 KiB; brokers and Home Assistant handle a megabyte without trouble.
pub const MAX_SNAPSHOT: usize = 1024 * 1024;
/// What rumqttc will send in one packet (larger ones would end the connection).
const MAX_OUTGOING: usize = MAX_SNAPSHOT + 64 * 1024;
/// The broker only sends us `<discovery_prefix>/status` and acknowledgements.
const MAX_INCOMING: usize = 16 * 1024;
const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Where and how to publish.
#[derive(Clone, PartialEq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Unique per broker: a second client with the same id makes the broker drop the
    /// first.
    pub client_id: String,
    /// This camera's stable id (e.g. its MAC address or machine id): Home Assistant's
    /// device identifier and the entities' unique ids derive from it, so entities keep
    /// their history and settings across restarts and renames.
    pub device_id: String,
    /// Prefix of the state topics, without a trailing `/`.
    pub base_topic: String,
    pub discovery_prefix: String,
    /// The device's name in Home Assistant.
    pub device_name: String,
    /// How often an idle connection is checked; the broker publishes the Last Will
    /// about 1.5 times this long after the camera vanished without closing it.
    pub keep_alive: Duration,
    pub queue: usize,
}

impl MqttConfig {
    /// Port 1883, client id `mecam-<id>`, base topic `mecam/<id>`, discovery prefix
    /// `homeassistant`, device name `ME_CAM`, no credentials.
    pub fn new(host: impl Into<String>, device_id: impl Into<String>) -> Self {
        let device_id = device_id.into();
        let node = node_id(&device_id);
        Self {
            host: host.into(),
            port: 1883,
            username: None,
            password: None,
            client_id: format!("mecam-{node}"),
            base_topic: format!("mecam/{node}"),
            discovery_prefix: "homeassistant".into(),
            device_name: "ME_CAM".into(),
            keep_alive: Duration::from_secs(30),
            queue: DEFAULT_QUEUE,
            device_id,
        }
    }

    /// From the `[notify.mqtt]` table and the camera's stable id.
    pub fn from_settings(settings: &MqttSettings, device_id: &str) -> Self {
        Self {
            port: settings.port,
            username: settings.username.clone(),
            password: settings.password.clone(),
            discovery_prefix: settings.discovery_prefix.clone(),
            device_name: settings.device_name.clone(),
            ..match &settings.base_topic {
                Some(topic) => Self {
                    base_topic: topic.clone(),
                    ..Self::new(settings.host.clone(), device_id)
                },
                None => Self::new(settings.host.clone(), device_id),
            }
        }
    }

    /// `<base_topic>/<leaf>`.
    pub fn topic(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.base_topic)
    }

    /// The device id as a discovery topic level and id: `[A-Za-z0-9_-]` only.
    pub fn node_id(&self) -> String {
        node_id(&self.device_id)
    }
}

fn node_id(device_id: &str) -> String {
    let id: String = device_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() { "camera".into() } else { id }
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_id", &self.client_id)
            .field("device_id", &self.device_id)
            .field("base_topic", &self.base_topic)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// What the MQTT notifier did so far, for health and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttStats {
    /// Connected to the broker now.
    pub connected: bool,
    /// Messages handed to the MQTT client for sending.
    pub published: u64,
    /// Messages dropped unsent because the queue was full.
    pub dropped: u64,
    /// Updates the notifier never saw because it fell behind the event bus.
    pub skipped: u64,
    /// Messages waiting now.
    pub queued: usize,
    /// The last connection failure, as the log said it.
    pub last_error: Option<String>,
}

#[derive(Clone)]
struct Message {
    topic: String,
    payload: Bytes,
    retain: bool,
    qos: QoS,
}

/// Publishes event updates to an MQTT broker. Share it (`Rc`) between the task that
/// [`run`](Self::run)s it and whatever shows [`stats`](Self::stats).
pub struct MqttNotifier {
    config: MqttConfig,
    live: Option<Arc<LiveBus>>,
    device: Device,
    outbox: Outbox<Message>,
    motion: Cell<bool>,
    person: Cell<bool>,
    /// Publish the announcement before anything else queued.
    announce: Cell<bool>,
    connected: Cell<bool>,
    published: Cell<u64>,
    skipped: Cell<u64>,
    last_error: RefCell<Option<String>>,
    rng: SystemRandom,
}

impl MqttNotifier {
    /// `live` gives the JPEG published as the snapshot when an event starts; without
    /// it no snapshot is published.
    pub fn new(config: MqttConfig, live: Option<Arc<LiveBus>>) -> Self {
        Self {
            device: Device::named(&config.device_name),
            outbox: Outbox::new(config.queue),
            config,
            live,
            motion: Cell::new(false),
            person: Cell::new(false),
            announce: Cell::new(false),
            connected: Cell::new(false),
            published: Cell::new(0),
            skipped: Cell::new(0),
            last_error: RefCell::new(None),
            rng: SystemRandom::new(),
        }
    }

    pub fn config(&self) -> &MqttConfig {
        &self.config
    }

    pub fn stats(&self) -> MqttStats {
        MqttStats {
            connected: self.connected.get(),
            published: self.published.get(),
            dropped: self.outbox.dropped(),
            skipped: self.skipped.get(),
            queued: self.outbox.len(),
            last_error: self.last_error.borrow().clone(),
        }
    }

    /// Connects (and keeps reconnecting) to the broker and publishes what `updates`
    /// brings, until the bus closes. Returning or being dropped closes the connection
    /// without an MQTT DISCONNECT, so the broker publishes the Last Will (`offline`).
    /// Call once.
    pub async fn run(&self, updates: broadcast::Receiver<EventUpdate>) {
        self.run_until(updates, std::future::pending()).await;
    }

    /// [`run`](Self::run) until `stop` resolves too; then, at a clean stop (a restart,
    /// an update), says `offline` and disconnects, so Home Assistant shows the camera
    /// unavailable at once instead of after the broker's keep-alive timeout.
    pub async fn run_until(
        &self,
        updates: broadcast::Receiver<EventUpdate>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let c = &self.config;
        let mut options = MqttOptions::new(c.client_id.clone(), c.host.clone(), c.port);
        options
            .set_keep_alive(c.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
            .set_last_will(LastWill::new(
                c.topic(AVAILABILITY),
                OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(user) = &c.username {
            options.set_credentials(user.clone(), c.password.clone().unwrap_or_default());
        }
        let (client, eventloop) = AsyncClient::new(options, CHANNEL);
        let drive = self.drive(eventloop);
        tokio::pin!(drive);
        tokio::select! {
            _ = &mut drive => return,
            _ = self.drain(&client) => return,
            _ = self.read(updates) => {
                tracing::debug!("event bus closed; MQTT notifier stops");
                return;
            }
            _ = stop => {}
        }
        if !self.connected.get() {
            return; // the Last Will is already the broker's word
        }
        let farewell = client
            .try_publish(
                self.config.topic(AVAILABILITY),
                QoS::AtLeastOnce,
                true,
                OFFLINE,
            )
            .and_then(|()| client.try_disconnect());
        if farewell.is_ok() {
            // The event loop sends both, then ends on the DISCONNECT.
            let _ = tokio::time::timeout(FAREWELL_WAIT, &mut drive).await;
        }
    }

    /// Polls rumqttc's event loop for ever: it sends, receives, pings and reconnects.
    async fn drive(&self, mut eventloop: rumqttc::EventLoop) {
        let c = &self.config;
        let status_topic = format!("{}/status", c.discovery_prefix);
        let mut backoff = RECONNECT_MIN;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = RECONNECT_MIN;
                    self.connected.set(true);
                    tracing::info!(broker = %format!("{}:{}", c.host, c.port), "connected to the MQTT broker");
                    self.request_announcement();
                }
                Ok(Event::Incoming(Packet::Publish(p)))
                    if p.topic == status_topic && p.payload.as_ref() == b"online" =>
                {
                    tracing::debug!("Home Assistant came online; announcing again");
                    self.request_announcement();
                }
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => return,
                Err(e) => {
                    let message = match &e {
                        ConnectionError::ConnectionRefused(code) => format!(
                            "MQTT broker {}:{} refused the connection ({code:?}): check \
                             `notify.mqtt.username` and `password`, and the broker's ACL",
                            c.host, c.port
                        ),
                        _ => format!(
                            "MQTT broker {}:{} unreachable: {e}; retrying (up to {} \
                             messages are kept meanwhile, the oldest dropped first)",
                            c.host, c.port, c.queue
                        ),
                    };
                    // Loud once per outage, quiet while it lasts.
                    if self.connected.replace(false) || self.last_error.borrow().is_none() {
                        tracing::warn!("{message}");
                    } else {
                        tracing::debug!("{message}");
                    }
                    *self.last_error.borrow_mut() = Some(message);
                    tokio::time::sleep(backoff.mul_f64(0.5 + self.jitter() / 2.0)).await;
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            }
        }
    }

    /// Moves messages from the outbox (announcement first) into rumqttc's channel,
    /// waiting there when it is full. Returns only when the client is gone.
    async fn drain(&self, client: &AsyncClient) {
        loop {
            if self.announce.replace(false) {
                for message in self.announcement() {
                    if !self.publish(client, message).await {
                        return;
                    }
                }
                // Subscriptions end with the (clean) session: renew on each connection.
                let status = format!("{}/status", self.config.discovery_prefix);
                if client.subscribe(status, QoS::AtLeastOnce).await.is_err() {
                    return;
                }
                continue;
            }
            match self.outbox.try_pop() {
                Some(message) => {
                    if !self.publish(client, message).await {
                        return;
                    }
                }
                None => self.outbox.ready().await,
            }
        }
    }

    async fn publish(&self, client: &AsyncClient, m: Message) -> bool {
        match client
            .publish_bytes(m.topic, m.qos, m.retain, m.payload)
            .await
        {
            Ok(()) => {
                self.published.set(self.published.get() + 1);
                true
            }
            // Only when the event loop is gone, i.e. `run` is ending.
            Err(_) => false,
        }
    }

    /// Turns event updates into queued messages; never waits for the broker.
    async fn read(&self, mut updates: broadcast::Receiver<EventUpdate>) {
        loop {
            match updates.recv().await {
                Ok(update) => self.on_update(&update),
                Err(RecvError::Lagged(n)) => {
                    self.skipped.set(self.skipped.get() + n);
                    tracing::warn!(
                        skipped = n,
                        "MQTT notifier fell behind the event bus; updates skipped"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn on_update(&self, update: &EventUpdate) {
        let event = update.event();
        let (leaf, state) = match event.kind {
            EventKind::Motion => (MOTION, &self.motion),
            EventKind::Person => (PERSON, &self.person),
        };
        // An `Updated` only says something about the state if the `Started` was missed
        // (the bus lagged): then it turns the sensor on.
        let open = !matches!(update, EventUpdate::Ended(_));
        let was = state.replace(open);
        if !matches!(update, EventUpdate::Updated(_)) || was != open {
            self.outbox.push(self.state_message(leaf, open));
        }
        if let EventUpdate::Started(_) = update {
            self.queue_snapshot();
        }
        let json = Envelope::new(
            update_type(update),
            event,
            &self.device,
            jiff::Timestamp::now(),
        )
        .to_json();
        self.outbox.push(Message {
            topic: self.config.topic(EVENT),
            payload: Bytes::from(json),
            retain: false,
            qos: QoS::AtLeastOnce,
        });
    }

    /// The live view's newest JPEG as the snapshot. At most one waits in the outbox
    /// (a newer one replaces it), so a broker that is down holds no pile of images.
    fn queue_snapshot(&self) {
        let Some(jpeg) = self.live.as_ref().and_then(|live| live.latest()) else {
            return;
        };
        if jpeg.data.len() > MAX_SNAPSHOT {
            tracing::debug!(
                bytes = jpeg.data.len(),
                "live JPEG larger than {MAX_SNAPSHOT} bytes; no MQTT snapshot"
            );
            return;
        }
        let topic = self.config.topic(SNAPSHOT);
        let message = Message {
            topic: topic.clone(),
            // The live bus's buffer itself, shared: no copy.
            payload: jpeg.data,
            retain: true,
            // At most once: a lost snapshot is replaced by the next event's, and QoS 0
            // keeps it out of rumqttc's in-flight store.
            qos: QoS::AtMostOnce,
        };
        self.outbox.push_replacing(message, |m| m.topic == topic);
    }

    fn state_message(&self, leaf: &str, on: bool) -> Message {
        Message {
            topic: self.config.topic(leaf),
            payload: Bytes::from_static(if on { ON } else { OFF }.as_bytes()),
            retain: true,
            qos: QoS::AtLeastOnce,
        }
    }

    fn request_announcement(&self) {
        self.announce.set(true);
        self.outbox.wake();
    }

    /// `online`, the discovery configs and the current states, all retained.
    fn announcement(&self) -> Vec<Message> {
        let retained = |topic: String, payload: Vec<u8>| Message {
            topic,
            payload: Bytes::from(payload),
            retain: true,
            qos: QoS::AtLeastOnce,
        };
        let mut messages = vec![retained(
            self.config.topic(AVAILABILITY),
            ONLINE.as_bytes().to_vec(),
        )];
        messages.extend(
            discovery::configs(&self.config)
                .into_iter()
                .map(|d| retained(d.topic, d.payload.to_string().into_bytes())),
        );
        messages.push(self.state_message(MOTION, self.motion.get()));
        messages.push(self.state_message(PERSON, self.person.get()));
        messages
    }

    fn jitter(&self) -> f64 {
        let mut b = [0u8; 4];
        let _ = self.rng.fill(&mut b);
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    }
}

impl fmt::Debug for MqttNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttNotifier")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}
