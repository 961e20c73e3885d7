//! The event service: one task on the I/O thread that turns the detector's
//! observations into stored, published events.
//!
//! ```text
//! detector ──Observation (mpsc)──► tracker ──EventUpdate──► thumbnail + row (blocking thread)
//!                                     ▲                         │ durable
//!                          tick every second                    ▼
//!                                                     EventBus ──► SSE, recorder, notifiers
//! ```
//!
//! For each update, in order: a thumbnail when one is due (a start, or a higher peak
//! of a person event) from the newest live frame, then the row, then the broadcast.
//! So a subscriber that hears of an event can already list it and fetch its thumbnail,
//! and a notification can carry it. The blocking work (JPEG scaling, sealing, `fsync`)
//! runs on tokio's blocking pool; the loop waits for it, so observations queue in the
//! detector's bounded channel meanwhile (the detector drops what does not fit — the
//! events a few frames decide are not lost by skipping some).
//!
//! A row or thumbnail that cannot be written is logged and the update is published
//! anyway: an intruder is still worth a notification when the card is failing.
//!
//! Before setup there is no sealing key: events are stored and published without
//! thumbnails until [`EventsApi::set_sealing_key`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::thumbnail::ThumbnailError;
use super::tracker::{Tracker, TrackerConfig};
use super::{Event, EventError, EventKind, EventUpdate, EventsApi};
use crate::detect::Observation;
use crate::live::LiveBus;
use crate::record::layout::unix_us;
use crate::runtime;
use crate::store::StoreError;

/// How often events are checked for their quiet time when no observation comes.
const TICK: Duration = Duration::from_secs(1);
/// How far the detector may run behind the capture clock (inference on the Pi takes
/// hundreds of ms). A tick ends events this much later than an observation would, so
/// an observation still on its way cannot find its event already ended and split it.
const DETECTOR_LAG: Duration = Duration::from_secs(2);
/// A live frame older than this is not the scene of the event (the camera stalled):
/// no thumbnail then.
const MAX_FRAME_AGE: Duration = Duration::from_secs(2);
/// Wait before trying the start-up repair again when the index failed.
const RECOVER_RETRY: Duration = Duration::from_secs(10);

/// Starts the event service. See the module documentation.
pub struct EventService;

/// The running service. Dropping it stops the service as [`stop`](Self::stop) does,
/// without waiting.
pub struct EventServiceHandle {
    api: EventsApi,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EventService {
    /// Spawns the service on the current (I/O) thread. Thumbnails are sealed with
    /// the key of [`EventsApi::set_sealing_key`]; without one (before setup) events
    /// have none. The service ends when [`EventServiceHandle::stop`] is called or
    /// `observations` closes, ending the events still open.
    pub fn start(
        api: EventsApi,
        live: Arc<LiveBus>,
        config: TrackerConfig,
        observations: mpsc::Receiver<Observation>,
    ) -> EventServiceHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = Worker {
            api: api.clone(),
            live,
            thumbnail_peaks: HashMap::new(),
        };
        let task = runtime::spawn(run(worker, config, observations, stop_rx));
        EventServiceHandle {
            api,
            stop: stop_tx,
            task,
        }
    }
}

impl EventServiceHandle {
    /// The storage and bus, for the HTTP API and retention.
    pub fn api(&self) -> &EventsApi {
        &self.api
    }

    /// Stops the service: the observations already received are processed, the events
    /// still open end (at the last time they were seen) and are stored and published.
    /// Returns when that is done.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!("the event service failed: {e}");
        }
    }
}

async fn run(
    mut worker: Worker,
    config: TrackerConfig,
    mut observations: mpsc::Receiver<Observation>,
    mut stop: watch::Receiver<bool>,
) {
    let first_id = loop {
        let api = worker.api.clone();
        match blocking(move || api.recover()).await {
            Ok(id) => break id,
            Err(e) => {
                tracing::error!(
                    "events cannot start: {e}; no events are recorded until this is fixed \
                     (trying again in {}s)",
                    RECOVER_RETRY.as_secs()
                );
                let retry = tokio::time::sleep(RECOVER_RETRY);
                tokio::pin!(retry);
                loop {
                    tokio::select! {
                        _ = &mut retry => break,
                        _ = stop.changed() => return,
                        // Not kept: without ids there is nothing to make of them.
                        obs = observations.recv() => if obs.is_none() { return },
                    }
                }
            }
        }
    };
    tracing::info!(first_id, "event service running");
    let mut tracker = Tracker::new(config, first_id);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let updates = tokio::select! {
            // Also when the handle was dropped (`Err`).
            _ = stop.changed() => {
                while let Ok(obs) = observations.try_recv() {
                    for update in tracker.observe(&obs, unix_us(obs.wall)) {
                        worker.apply(&mut tracker, update).await;
                    }
                }
                break;
            }
            obs = observations.recv() => match obs {
                Some(obs) => tracker.observe(&obs, unix_us(obs.wall)),
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                tracker.tick(now.checked_sub(DETECTOR_LAG).unwrap_or(now))
            }
        };
        for update in updates {
            worker.apply(&mut tracker, update).await;
        }
    }
    for update in tracker.finish() {
        worker.apply(&mut tracker, update).await;
    }
    tracing::info!("event service stopped");
}

/// What the loop needs besides the tracker.
struct Worker {
    api: EventsApi,
    live: Arc<LiveBus>,
    /// Peak score at the last thumbnail of each open event that has one.
    thumbnail_peaks: HashMap<u64, f32>,
}

/// The outcome of the blocking part of one update.
struct Persisted {
    event: Event,
    thumbnail: Option<Result<(), ThumbnailError>>,
    row: Result<(), StoreError>,
}

impl Worker {
    /// Whether `event` should get a (new) thumbnail with this update.
    fn thumbnail_due(&self, update: &EventUpdate) -> bool {
        let event = update.event();
        match update {
            EventUpdate::Started(_) => true,
            EventUpdate::Updated(_) => match self.thumbnail_peaks.get(&event.id) {
                None => true,
                Some(&peak) => event.kind == EventKind::Person && event.peak_score > peak,
            },
            EventUpdate::Ended(_) => false,
        }
    }

    /// The newest live JPEG, if it is recent enough to show the event.
    fn fresh_frame(&self) -> Option<bytes::Bytes> {
        let packet = self.live.latest()?;
        if packet.captured.elapsed() > MAX_FRAME_AGE {
            tracing::debug!("no thumbnail: the newest live frame is stale");
            return None;
        }
        Some(packet.data)
    }

    /// Stores and publishes one update (see the module documentation).
    async fn apply(&mut self, tracker: &mut Tracker, update: EventUpdate) {
        let key = self.api.sealing_key();
        let frame = key
            .as_ref()
            .filter(|_| self.thumbnail_due(&update))
            .and_then(|_| self.fresh_frame());
        let thumbnail = key.zip(frame);
        let (mut event, rebuild): (Event, fn(Event) -> EventUpdate) = match update {
            EventUpdate::Started(e) => (e, EventUpdate::Started),
            EventUpdate::Updated(e) => (e, EventUpdate::Updated),
            EventUpdate::Ended(e) => (e, EventUpdate::Ended),
        };
        // An update the tracker made before the thumbnail was marked there.
        event.thumbnail |= self.thumbnail_peaks.contains_key(&event.id);
        let api = self.api.clone();
        let seen_us = unix_us(SystemTime::now());
        let job = blocking(move || {
            let thumbnail = thumbnail.map(|(key, jpeg)| {
                let written = api.thumbnails().write(event.id, &key, &jpeg);
                if written.is_ok() {
                    event.thumbnail = true;
                }
                written
            });
            let row = api.store().put(&event, seen_us);
            Ok(Persisted {
                event,
                thumbnail,
                row,
            })
        });
        let Persisted {
            event,
            thumbnail,
            row,
        } = match job.await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("event not stored: {e}");
                return;
            }
        };
        match thumbnail {
            Some(Ok(())) => {
                tracker.mark_thumbnail(event.id);
                self.thumbnail_peaks.insert(event.id, event.peak_score);
            }
            Some(Err(e)) => tracing::warn!(id = event.id, "event thumbnail not saved: {e}"),
            None => {}
        }
        if let Err(e) = row {
            tracing::error!(id = event.id, "event not stored in the index: {e}");
        }
        let update = rebuild(event);
        if let EventUpdate::Ended(e) = &update {
            self.thumbnail_peaks.remove(&e.id);
        }
        tracing::debug!(?update, "event");
        self.api.bus().publish(update);
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EventError> + Send + 'static,
) -> Result<T, EventError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EventError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;
    use tokio::sync::broadcast;

    use super::*;
    use crate::detect::{BBox, Detection, MotionSeen};
    use crate::encode::Packet;
    use crate::events::thumbnail::tests::{test_jpeg, test_vault};
    use crate::events::{EventBus, EventQuery};
    use crate::store::Store;

    /// 2026-03-01T00:00:00Z in µs.
    const T0: u64 = 1_772_323_200_000_000;

    /// Runs `f` as the service would run: on one thread with local tasks.
    fn on_io_thread<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    struct Rig {
        _dir: tempfile::TempDir,
        api: EventsApi,
        live: Arc<LiveBus>,
        updates: broadcast::Receiver<EventUpdate>,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        rig_in(dir)
    }

    fn rig_in(dir: tempfile::TempDir) -> Rig {
        let data_dir = dir.path().to_path_buf();
        let store = Arc::new(Store::open(&data_dir).unwrap());
        let api = EventsApi::open(store, &data_dir, EventBus::new()).unwrap();
        let live = Arc::new(LiveBus::new());
        let updates = api.subscribe();
        Rig {
            _dir: dir,
            api,
            live,
            updates,
        }
    }

    /// A camera on the live bus: a fresh 640×480 frame every 100 ms, for as long as
    /// the test runs (call inside [`on_io_thread`]).
    fn camera(live: &Arc<LiveBus>) {
        let live = Arc::clone(live);
        let data = Bytes::from(test_jpeg(640, 480));
        tokio::task::spawn_local(async move {
            for seq in 0.. {
                live.publish(Packet {
                    seq,
                    captured: Instant::now(),
                    wall: SystemTime::now(),
                    keyframe: true,
                    data: data.clone(),
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    fn config() -> TrackerConfig {
        TrackerConfig {
            end_after: Duration::from_secs(5),
            person_threshold: 0.5,
        }
    }

    /// A frame `at_ms` after `base`: motion in `zone`, a person scoring `person`.
    fn obs(base: Instant, at_ms: u64, zone: Option<&str>, person: Option<f32>) -> Observation {
        let region = BBox {
            x: 0.2,
            y: 0.2,
            w: 0.3,
            h: 0.6,
        };
        Observation {
            captured: base + Duration::from_millis(at_ms),
            wall: SystemTime::UNIX_EPOCH + Duration::from_micros(T0 + at_ms * 1000),
            motion: zone.map(|z| MotionSeen {
                region,
                area: 0.1,
                zones: vec![z.to_string()],
            }),
            persons: Some(
                person
                    .map(|score| Detection {
                        score,
                        bbox: region,
                    })
                    .into_iter()
                    .collect(),
            ),
        }
    }

    fn drain(rx: &mut broadcast::Receiver<EventUpdate>) -> Vec<EventUpdate> {
        let mut out = Vec::new();
        while let Ok(u) = rx.try_recv() {
            out.push(u);
        }
        out
    }

    fn labels(updates: &[EventUpdate], kind: EventKind) -> Vec<&'static str> {
        updates
            .iter()
            .filter(|u| u.event().kind == kind)
            .map(|u| match u {
                EventUpdate::Started(_) => "started",
                EventUpdate::Updated(_) => "updated",
                EventUpdate::Ended(_) => "ended",
            })
            .collect()
    }

    #[test]
    fn observations_become_stored_published_events_with_sealed_thumbnails() {
        let mut rig = rig();
        let (key, vault) = test_vault();
        let (tx, rx) = mpsc::channel(256);
        on_io_thread(async {
            camera(&rig.live);
            rig.api.set_sealing_key(key);
            let handle = EventService::start(rig.api.clone(), Arc::clone(&rig.live), config(), rx);
            let base = Instant::now();
            // A person at the door for 3 s (5 fps), then 8 s of an empty scene.
            for i in 0..15 {
                tx.send(obs(
                    base,
                    i * 200,
                    Some("door"),
                    Some(0.7 + i as f32 / 100.0),
                ))
                .await
                .unwrap();
            }
            for i in 15..55 {
                tx.send(obs(base, i * 200, None, None)).await.unwrap();
            }
            handle.stop().await;
        });
        let updates = drain(&mut rig.updates);
        assert_eq!(
            labels(&updates, EventKind::Person),
            ["started", "updated", "updated", "ended"],
            "{updates:#?}"
        );
        assert_eq!(labels(&updates, EventKind::Motion), ["started", "ended"]);

        let started = updates
            .iter()
            .find(|u| matches!(u, EventUpdate::Started(e) if e.kind == EventKind::Person))
            .unwrap()
            .event();
        assert!(started.thumbnail, "the start already has its thumbnail");
        assert_eq!(started.zones, ["door"]);

        // What the bus said is what the index holds.
        let page = rig.api.store().list(&EventQuery::default()).unwrap();
        assert_eq!(page.events.len(), 2);
        let person = page
            .events
            .iter()
            .find(|e| e.kind == EventKind::Person)
            .unwrap();
        let ended = updates.last().unwrap().event();
        assert_eq!(person, ended);
        assert_eq!(person.start_us, T0);
        assert_eq!(person.end_us, Some(T0 + 2_800_000));
        assert!((person.peak_score - 0.84).abs() < 1e-6);
        assert!(person.thumbnail);
        let jpeg = rig
            .api
            .thumbnails()
            .read(person.id, &vault)
            .unwrap()
            .unwrap();
        assert_eq!(turbojpeg::read_header(&jpeg).unwrap().width, 320);
        let motion = page
            .events
            .iter()
            .find(|e| e.kind == EventKind::Motion)
            .unwrap();
        assert!(motion.thumbnail);
        assert_ne!(motion.id, person.id);
    }

    #[test]
    fn before_setup_events_have_no_thumbnail_until_the_key_arrives() {
        let mut rig = rig();
        let (key, vault) = test_vault();
        let (tx, rx) = mpsc::channel(256);
        on_io_thread(async {
            camera(&rig.live);
            let handle = EventService::start(rig.api.clone(), Arc::clone(&rig.live), config(), rx);
            let base = Instant::now();
            tx.send(obs(base, 0, Some("yard"), None)).await.unwrap();
            // Setup happens; the motion goes on and ends, then a new one starts.
            tokio::time::sleep(Duration::from_millis(200)).await;
            rig.api.set_sealing_key(key);
            tx.send(obs(base, 200, Some("yard"), None)).await.unwrap();
            tx.send(obs(base, 10_000, Some("yard"), None))
                .await
                .unwrap();
            handle.stop().await;
        });
        let updates = drain(&mut rig.updates);
        assert_eq!(
            labels(&updates, EventKind::Motion),
            ["started", "ended", "started", "ended"],
            "{updates:#?}"
        );
        let first = updates[1].event();
        let second = updates[3].event();
        assert!(!first.thumbnail);
        assert!(!rig.api.thumbnails().path(first.id).exists());
        assert!(second.thumbnail);
        assert!(
            rig.api
                .thumbnails()
                .read(second.id, &vault)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_stale_live_frame_makes_no_thumbnail() {
        let mut rig = rig();
        rig.live.publish(Packet {
            seq: 2,
            captured: Instant::now() - Duration::from_secs(60),
            wall: SystemTime::now(),
            keyframe: true,
            data: Bytes::from(test_jpeg(320, 240)),
        });
        let (key, _) = test_vault();
        let (tx, rx) = mpsc::channel(8);
        on_io_thread(async {
            rig.api.set_sealing_key(key);
            let handle = EventService::start(rig.api.clone(), Arc::clone(&rig.live), config(), rx);
            tx.send(obs(Instant::now(), 0, Some("yard"), None))
                .await
                .unwrap();
            handle.stop().await;
        });
        let updates = drain(&mut rig.updates);
        assert_eq!(updates.len(), 2);
        assert!(updates.iter().all(|u| !u.event().thumbnail));
    }

    #[test]
    fn stop_ends_open_events_durably_and_a_restart_continues_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let mut rig = rig_in(dir);
        let (tx, rx) = mpsc::channel(8);
        on_io_thread(async {
            let handle = EventService::start(rig.api.clone(), Arc::clone(&rig.live), config(), rx);
            tx.send(obs(Instant::now(), 0, Some("yard"), Some(0.9)))
                .await
                .unwrap();
            handle.stop().await;
        });
        let updates = drain(&mut rig.updates);
        let ended: Vec<_> = updates
            .iter()
            .filter(|u| matches!(u, EventUpdate::Ended(_)))
            .collect();
        assert_eq!(ended.len(), 2, "{updates:#?}");
        let page = rig.api.store().list(&EventQuery::default()).unwrap();
        assert!(page.events.iter().all(|e| e.end_us == Some(T0)));
        let max_id = page.events.iter().map(|e| e.id).max().unwrap();

        // A crash leaves a half-written thumbnail and one without a row; the next
        // start removes both and hands out ids above everything before.
        let thumbs = rig.api.thumbnails().clone();
        std::fs::write(thumbs.dir().join("999.tmp"), b"x").unwrap();
        std::fs::write(thumbs.path(998), b"x").unwrap();
        // Closes the index (one environment per process), keeping the directory.
        let Rig {
            _dir: _keep, api, ..
        } = rig;
        drop(api);
        let store = Arc::new(Store::open(&data_dir).unwrap());
        let api = EventsApi::open(store, &data_dir, EventBus::new()).unwrap();
        let first = api.recover().unwrap();
        assert!(first > max_id);
        assert!(!thumbs.path(998).exists());
        assert!(!thumbs.dir().join("999.tmp").exists());
        assert!(Path::new(&data_dir).join("thumbnails").is_dir());
    }

    #[test]
    fn retention_deletes_old_events_with_their_thumbnails() {
        let rig = rig();
        let (key, _) = test_vault();
        let thumbs = rig.api.thumbnails();
        // An hour ago, a second apart.
        let base = unix_us(SystemTime::now()) - 3_600_000_000;
        for id in 1..=4u64 {
            let event = Event {
                id,
                kind: EventKind::Person,
                start_us: base + id * 1_000_000,
                end_us: Some(base + id * 1_000_000 + 500),
                peak_score: 0.9,
                boxes: Vec::new(),
                zones: Vec::new(),
                thumbnail: true,
            };
            thumbs.write(id, &key, &test_jpeg(64, 48)).unwrap();
            rig.api.store().put(&event, T0).unwrap();
        }
        assert_eq!(rig.api.delete_before(base + 3_000_000).unwrap(), 2);
        assert!(!thumbs.path(1).exists() && !thumbs.path(2).exists());
        assert!(thumbs.path(3).exists() && thumbs.path(4).exists());
        let left: Vec<u64> = rig
            .api
            .store()
            .list(&EventQuery::default())
            .unwrap()
            .events
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(left, [4, 3]);
        let pruned = on_io_thread(rig.api.prune(Duration::from_secs(60)));
        assert_eq!(pruned.unwrap(), 2, "both are older than a minute");
    }
}
