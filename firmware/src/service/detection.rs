//! The detection side of the service: the detector thread on the pipeline's frame tap,
//! the event service, and what follows the events (event-mode recording, webhooks,
//! MQTT, retention).
//!
//! ```text
//! FrameTap ──► detect thread ──Observation──► EventService ──► EventBus ─┬─► SSE (api/events)
//!                                                                         ├─► recorder trigger
//!                                                                         ├─► webhooks
//!                                                                         └─► MQTT
//! ```

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::detect::person::ModelError;
use crate::detect::runner::{
    Detector, DetectorConfig, DetectorCounters, DetectorHandle, PersonModel,
};
use crate::events::{
    EventKind, EventService, EventServiceHandle, EventUpdate, EventsApi, TrackerConfig,
};
use crate::live::LiveBus;
use crate::notify::mqtt::{MqttConfig, MqttNotifier};
use crate::notify::webhook::{Webhook, WebhookConfig};
use crate::pipeline::FrameTap;
use crate::record::Recording;
use crate::record::control::EventKind as TriggerKind;
use crate::runtime;
use crate::store::{Store, StoreError};

/// Observations waiting for the event service. The detector keeps only the newest
/// one beyond this (see `detect::runner`), so a slow index write never stalls it.
const OBSERVATION_QUEUE: usize = 16;
/// How often events past retention are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How long events are kept when `recording.max_age_days` is not set: a year of
/// rows and 320×180 thumbnails is small next to one day of video.
const DEFAULT_EVENT_AGE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Settings key of the camera's stable id (MQTT topics and Home Assistant ids).
const DEVICE_ID_KEY: &str = "device.id";

/// Loads the person model when detection is on. Done before anything starts, so a
/// model that is missing, damaged or does not fit stops the service with the reason
/// instead of leaving a camera that silently never sees anyone.
pub fn load_model(config: &Config) -> Result<Option<Box<dyn PersonModel>>, ModelError> {
    let d = &config.detection;
    if !d.enabled {
        tracing::info!("detection is off (`detection.enabled = false`)");
        return Ok(None);
    }
    load_person_model(d)
}

#[cfg(feature = "tract")]
fn load_person_model(
    d: &crate::config::DetectionConfig,
) -> Result<Option<Box<dyn PersonModel>>, ModelError> {
    use crate::detect::person::{ModelFiles, PersonDetector};
    let files = ModelFiles::locate(d.model.as_deref(), d.anchors.as_deref())?;
    // `load` logs what it loaded and how long it took.
    let model = PersonDetector::open(&files)?;
    // Loading peaks about 10 MB above what the loaded model keeps.
    crate::memory::release_free();
    Ok(Some(Box::new(model)))
}

#[cfg(not(feature = "tract"))]
fn load_person_model(
    _: &crate::config::DetectionConfig,
) -> Result<Option<Box<dyn PersonModel>>, ModelError> {
    tracing::warn!("this build has no person model (cargo feature `tract`): motion only");
    Ok(None)
}

/// The running detection side; [`stop`](Self::stop) it before the recorder.
pub struct Detection {
    detector: Option<DetectorHandle>,
    events: EventServiceHandle,
    /// Ends after saying `offline` to the broker at a clean stop.
    mqtt: Option<JoinHandle<()>>,
}

/// The running parts of the service that detection feeds from and into.
pub struct Stages<'a> {
    pub tap: &'a FrameTap,
    pub live: &'a Arc<LiveBus>,
    pub events: &'a EventsApi,
    pub recording: &'a Rc<Recording>,
    /// Turns `true` at a stop signal.
    pub shutdown: &'a watch::Receiver<bool>,
}

impl Detection {
    /// Starts the detector thread (when detection is on) and the event service on the
    /// I/O thread, and spawns the tasks that follow the events.
    pub fn start(
        config: &Config,
        model: Option<Box<dyn PersonModel>>,
        device_id: &str,
        stages: Stages<'_>,
    ) -> std::io::Result<Self> {
        let Stages {
            tap,
            live,
            events,
            recording,
            shutdown,
        } = stages;
        let (observations_tx, observations) = mpsc::channel(OBSERVATION_QUEUE);
        let detector = if config.detection.enabled {
            Some(Detector::start(
                DetectorConfig::from(&config.detection),
                tap.attach(),
                model,
                observations_tx,
            )?)
        } else {
            None
        };
        let tracker = TrackerConfig {
            end_after: config.detection.cooldown,
            person_threshold: config.detection.person_threshold,
        };
        let handle = EventService::start(events.clone(), Arc::clone(live), tracker, observations);

        runtime::spawn(follow_events(events.subscribe(), Rc::clone(recording)));
        for settings in &config.notify.webhooks {
            // The name Home Assistant shows, when set: one name for the camera.
            let name = config
                .notify
                .mqtt
                .as_ref()
                .map_or("ME_CAM", |m| &m.device_name);
            match Webhook::new(WebhookConfig::from_settings(settings, name)) {
                Ok(hook) => {
                    tracing::info!(receiver = hook.origin(), "webhook notifications on");
                    let updates = events.subscribe();
                    runtime::spawn(async move { hook.run(updates).await });
                }
                // A bad receiver must not take the camera down: the others still run.
                Err(e) => tracing::error!("webhook notifications are off for one receiver: {e}"),
            }
        }
        let mut mqtt_task = None;
        if let Some(settings) = &config.notify.mqtt {
            let mqtt = MqttNotifier::new(
                MqttConfig::from_settings(settings, device_id),
                Some(Arc::clone(live)),
            );
            tracing::info!(
                broker = %format_args!("{}:{}", settings.host, settings.port),
                base_topic = mqtt.config().base_topic,
                "MQTT notifications on"
            );
            let updates = events.subscribe();
            let mut shutdown = shutdown.clone();
            mqtt_task = Some(runtime::spawn(async move {
                let stop = async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                };
                mqtt.run_until(updates, stop).await;
            }));
        }
        let max_age = config.recording.max_age.unwrap_or(DEFAULT_EVENT_AGE);
        runtime::spawn(retention(events.clone(), max_age));

        Ok(Self {
            detector,
            events: handle,
            mqtt: mqtt_task,
        })
    }

    /// The detector's counters; `None` when detection is off.
    pub fn counters(&self) -> Option<Arc<DetectorCounters>> {
        self.detector.as_ref().map(DetectorHandle::counters)
    }

    /// Stops the detector thread, then the event service, which ends and stores the
    /// events still open.
    pub async fn stop(self) {
        if let Some(detector) = self.detector {
            match tokio::task::spawn_blocking(move || detector.stop()).await {
                Ok(stats) => tracing::info!(?stats, "detector stopped"),
                Err(e) => tracing::error!("the detector thread failed: {e}"),
            }
        }
        self.events.stop().await;
        if let Some(mqtt) = self.mqtt {
            // The shutdown signal has told it to say goodbye; it gives itself a second.
            let _ = tokio::time::timeout(Duration::from_secs(2), mqtt).await;
        }
    }
}

/// Event-mode recording: the recorder's event window opens at an event's start (with
/// the pre-roll before it), stays open while any event goes on, and closes the
/// post-roll after the last one ends.
async fn follow_events(mut updates: broadcast::Receiver<EventUpdate>, recording: Rc<Recording>) {
    let mut open = std::collections::HashSet::new();
    loop {
        let update = match updates.recv().await {
            Ok(update) => update,
            // 256 updates behind (pathological): an `Ended` may be among the lost, and
            // an id kept open for ever would record for ever. Forget them all; the
            // window closes after the post-roll unless the next update reopens it.
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "event-mode recording fell behind the events");
                open.clear();
                if let Some(control) = recording.control() {
                    control.set_event_open(TriggerKind::External, false);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let event = update.event();
        match update {
            EventUpdate::Ended(_) => open.remove(&event.id),
            _ => open.insert(event.id),
        };
        // `None` before setup: there is no recorder to trigger yet.
        if let Some(control) = recording.control() {
            let kind = match event.kind {
                EventKind::Motion => TriggerKind::Motion,
                EventKind::Person => TriggerKind::Person,
            };
            control.set_event_open(kind, !open.is_empty());
        }
    }
}

async fn retention(events: EventsApi, max_age: Duration) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = events.prune(max_age).await {
            tracing::warn!("old events cannot be deleted: {e}; trying again in an hour");
        }
    }
}

/// The camera's stable id: made once, kept in the index, so MQTT topics and Home
/// Assistant entities stay the same across restarts and updates.
pub fn device_id(store: &Store) -> Result<String, StoreError> {
    if let Some(id) = store.setting::<String>(DEVICE_ID_KEY)? {
        return Ok(id);
    }
    let mut bytes = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        StoreError::Setting {
            key: DEVICE_ID_KEY.into(),
            reason: "the system random generator failed".into(),
        }
    })?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    store.set_setting(DEVICE_ID_KEY, &id)?;
    Ok(id)
}
