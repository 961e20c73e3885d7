//! The MQTT notifier against a real Mosquitto broker on 127.0.0.1, watched by a
//! separate rumqttc client the way Home Assistant would watch it.
//!
//! Needs Debian's `mosquitto` package (`./scripts/test` installs it);
//! `MECAM_SKIP_MQTT=1` skips these tests where it cannot be installed.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::{JoinHandle, LocalSet, spawn_local};

use super::*;
use crate::encode::Packet as Jpeg;
use crate::events::{EventBus, EventKind, EventUpdate};
use crate::notify::testing::{event, runtime, until};

const WAIT: Duration = Duration::from_secs(20);

/// A Mosquitto broker of the test's own, on a port of its own; killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// The broker's binary, or `None` when the tests are to be skipped; fails the test
/// when it is missing and skipping was not asked for.
fn mosquitto_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("mosquitto"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("MECAM_SKIP_MQTT").as_deref() == Ok("1") {
            eprintln!("skipped: mosquitto is not installed and MECAM_SKIP_MQTT=1");
        } else {
            panic!(
                "the MQTT tests need the Mosquitto broker: run ./scripts/test (it installs the \
                 test packages) or `apt-get install mosquitto`; MECAM_SKIP_MQTT=1 skips them"
            );
        }
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Mosquitto {
    fn start(binary: &std::path::Path, port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let mut broker = Self { child, port, dir };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("mosquitto exited ({status}): {}", broker.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as a subscriber saw it; `retain` is set only for messages the broker had
/// stored before the subscription.
#[derive(Debug, Clone)]
struct Seen {
    topic: String,
    payload: Bytes,
    retain: bool,
}

/// A local task that is aborted when this is dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A separate MQTT client subscribed to `filter`, recording everything it receives.
struct Watcher {
    seen: Rc<RefCell<Vec<Seen>>>,
    _task: Task,
}

impl Watcher {
    async fn connect(port: u16, filter: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut options = MqttOptions::new(format!("watcher-{n}"), "127.0.0.1", port);
        options.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 10);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (subscribed, mut suback) = tokio::sync::mpsc::unbounded_channel();
        let task = spawn_local({
            let seen = seen.clone();
            async move {
                let _client = client;
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => seen.borrow_mut().push(Seen {
                            topic: p.topic,
                            payload: p.payload,
                            retain: p.retain,
                        }),
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = subscribed.send(());
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, suback.recv())
            .await
            .expect("the watcher subscribed in time");
        Self {
            seen,
            _task: Task(task),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.borrow().clone()
    }

    fn payloads(&self, topic: &str) -> Vec<String> {
        self.seen
            .borrow()
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect()
    }

    fn last(&self, topic: &str) -> Option<String> {
        self.payloads(topic).pop()
    }
}

fn local<F: std::future::Future>(future: F) -> F::Output {
    LocalSet::new().block_on(&runtime(), future)
}

fn spawn_notifier(notifier: &Rc<MqttNotifier>, bus: &EventBus) -> Task {
    let notifier = notifier.clone();
    let updates = bus.subscribe();
    Task(spawn_local(async move { notifier.run(updates).await }))
}

#[test]
fn home_assistant_sees_the_camera_its_states_and_its_last_will() {
    let Some(binary) = mosquitto_binary() else {
        return;
    };
    let broker = Mosquitto::start(&binary, free_port());
    let port = broker.port;
    let jpeg = Bytes::from_static(b"\xff\xd8\xff\xe0 a live frame \xff\xd9");
    let live = Arc::new(LiveBus::new());
    live.publish(Jpeg {
        seq: 1,
        captured: Instant::now(),
        wall: SystemTime::now(),
        keyframe: true,
        data: jpeg.clone(),
    });
    let config = MqttConfig {
        port,
        device_name: "Porch".into(),
        ..MqttConfig::new("127.0.0.1", "cam:01")
    };
    let notifier = Rc::new(MqttNotifier::new(config, Some(live)));
    let bus = EventBus::new();
    let topic = |leaf: &str| format!("mecam/cam_01/{leaf}");

    local(async {
        let watcher = Watcher::connect(port, "#").await;
        let running = spawn_notifier(&notifier, &bus);
        until("available and states announced", WAIT, || {
            watcher.payloads(&topic("availability")) == ["online"]
                && watcher.payloads(&topic("motion")) == ["OFF"]
                && watcher.payloads(&topic("person")) == ["OFF"]
        })
        .await;
        assert!(notifier.stats().connected);

        // Home Assistant starting later gets everything from the broker's store.
        let ha = Watcher::connect(port, "#").await;
        until("the retained messages", WAIT, || ha.seen().len() >= 6).await;
        let retained = ha.seen();
        assert!(retained.iter().all(|m| m.retain), "{retained:?}");
        let config = |component: &str, leaf: &str| -> serde_json::Value {
            let t = format!("homeassistant/{component}/cam_01/{leaf}/config");
            let m = retained
                .iter()
                .find(|m| m.topic == t)
                .unwrap_or_else(|| panic!("no retained {t}"));
            serde_json::from_slice(&m.payload).expect("a discovery config is JSON")
        };
        let motion = config("binary_sensor", "motion");
        assert_eq!(motion["device_class"], "motion");
        assert_eq!(motion["state_topic"], topic("motion"));
        assert_eq!(
            (
                motion["payload_on"].as_str(),
                motion["payload_off"].as_str()
            ),
            (Some("ON"), Some("OFF"))
        );
        assert_eq!(motion["availability_topic"], topic("availability"));
        assert_eq!(motion["unique_id"], "mecam_cam_01_motion");
        assert_eq!(motion["device"]["identifiers"][0], "mecam_cam_01");
        assert_eq!(motion["device"]["name"], "Porch");
        assert_eq!(motion["device"]["model"], "ME_CAM");
        assert_eq!(motion["device"]["sw_version"], crate::notify::VERSION);
        let person = config("binary_sensor", "person");
        assert_eq!(person["device_class"], "occupancy");
        assert_eq!(person["state_topic"], topic("person"));
        assert_eq!(person["unique_id"], "mecam_cam_01_person");
        let image = config("image", "snapshot");
        assert_eq!(image["image_topic"], topic("snapshot"));
        assert_eq!(image["content_type"], "image/jpeg");
        assert_eq!(image["device"], motion["device"]);
        drop(ha);

        bus.publish(EventUpdate::Started(event(1, EventKind::Motion, false)));
        until("motion on", WAIT, || {
            watcher.payloads(&topic("motion")) == ["OFF", "ON"]
        })
        .await;
        until("the snapshot", WAIT, || {
            !watcher.payloads(&topic("snapshot")).is_empty()
        })
        .await;
        let snapshot = watcher
            .seen()
            .into_iter()
            .find(|m| m.topic == topic("snapshot"))
            .unwrap();
        assert_eq!(snapshot.payload, jpeg, "the live JPEG, byte for byte");
        until("the event message", WAIT, || {
            !watcher.payloads(&topic("event")).is_empty()
        })
        .await;
        let json: serde_json::Value =
            serde_json::from_str(&watcher.payloads(&topic("event"))[0]).unwrap();
        assert_eq!(
            (json["type"].as_str(), json["event"]["id"].as_u64()),
            (Some("event.started"), Some(1))
        );

        bus.publish(EventUpdate::Updated(event(1, EventKind::Motion, false)));
        bus.publish(EventUpdate::Ended(event(1, EventKind::Motion, true)));
        until("motion off", WAIT, || {
            watcher.payloads(&topic("motion")) == ["OFF", "ON", "OFF"]
        })
        .await;
        bus.publish(EventUpdate::Started(event(2, EventKind::Person, false)));
        until("person on", WAIT, || {
            watcher.payloads(&topic("person")) == ["OFF", "ON"]
        })
        .await;
        until("four event messages", WAIT, || {
            watcher.payloads(&topic("event")).len() == 4
        })
        .await;

        // The camera vanishes without an MQTT DISCONNECT (a crash, a power cut): the
        // broker publishes its Last Will.
        drop(running);
        until("the last will", WAIT, || {
            watcher.payloads(&topic("availability")) == ["online", "offline"]
        })
        .await;
        let later = Watcher::connect(port, &topic("availability")).await;
        until("offline is retained", WAIT, || !later.seen().is_empty()).await;
        assert!(later.seen()[0].retain && later.seen()[0].payload == "offline");
    });
}

#[test]
fn a_broker_that_is_down_never_holds_up_events_and_gets_the_current_state_when_back() {
    let Some(binary) = mosquitto_binary() else {
        return;
    };
    let port = free_port();
    let config = MqttConfig {
        port,
        ..MqttConfig::new("127.0.0.1", "cam-02")
    };
    let notifier = Rc::new(MqttNotifier::new(config, None));
    let bus = EventBus::new();
    let topic = |leaf: &str| format!("mecam/cam-02/{leaf}");

    local(async {
        let _running = spawn_notifier(&notifier, &bus);
        until("a failed connection", WAIT, || {
            notifier.stats().last_error.is_some()
        })
        .await;
        // On the notifier's own thread: were publishing ever to wait for the broker,
        // this loop could not finish.
        for id in 0..1000 {
            bus.publish(if id % 2 == 0 {
                EventUpdate::Started(event(id, EventKind::Motion, false))
            } else {
                EventUpdate::Ended(event(id, EventKind::Motion, true))
            });
            if id % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        bus.publish(EventUpdate::Started(event(1000, EventKind::Person, false)));
        let event_id = |m: &Message| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["event"]["id"].clone()
        };
        until("the newest update is queued", WAIT, || {
            notifier.outbox.snapshot().last().map(event_id) == Some(1000.into())
        })
        .await;
        let stats = notifier.stats();
        assert!(!stats.connected);
        assert!(stats.dropped > 1000, "the oldest were dropped: {stats:?}");
        assert!(stats.published <= CHANNEL as u64, "{stats:?}");
        // What waits is the newest: the last 32 updates, a state and an event each.
        let queued = notifier.outbox.snapshot();
        assert_eq!(queued.len(), DEFAULT_QUEUE);
        assert_eq!(queued[0].topic, topic("motion"));
        assert_eq!(event_id(&queued[1]), 969);
        assert_eq!(queued[DEFAULT_QUEUE - 2].topic, topic("person"));
        assert_eq!(event_id(&queued[DEFAULT_QUEUE - 1]), 1000);

        let _broker = Mosquitto::start(&binary, port);
        // Event messages are not retained, and the notifier may reconnect before this
        // watcher subscribes: judge by the retained states and by what was sent.
        let watcher = Watcher::connect(port, "#").await;
        let announcement = 6;
        until("back online, everything queued sent", WAIT * 3, || {
            let s = notifier.stats();
            s.connected
                && s.queued == 0
                && s.published >= stats.published + (DEFAULT_QUEUE + announcement) as u64
                && watcher.last(&topic("availability")).as_deref() == Some("online")
                && watcher.last(&topic("motion")).as_deref() == Some("OFF")
                && watcher.last(&topic("person")).as_deref() == Some("ON")
        })
        .await;
        assert!(notifier.stats().connected);
    });
}

#[test]
fn settings_map_to_the_config_and_ids_are_topic_safe() {
    let settings = crate::config::MqttSettings {
        host: "broker.lan".into(),
        port: 8883,
        username: Some("cam".into()),
        password: Some("pw".into()),
        base_topic: Some("house/porch".into()),
        discovery_prefix: "ha".into(),
        device_name: "Porch".into(),
    };
    let config = MqttConfig::from_settings(&settings, "b8:27:eb/01 #");
    assert_eq!(config.node_id(), "b8_27_eb_01__");
    assert_eq!(config.client_id, "mecam-b8_27_eb_01__");
    assert_eq!(config.topic("motion"), "house/porch/motion");
    assert_eq!(
        (config.port, config.discovery_prefix.as_str()),
        (8883, "ha")
    );
    assert!(
        !format!("{config:?}").contains("pw"),
        "the password is not logged"
    );
    assert_eq!(MqttConfig::new("h", "").base_topic, "mecam/camera");
}

#[test]
fn a_clean_stop_says_offline_at_once() {
    let Some(binary) = mosquitto_binary() else {
        return;
    };
    let broker = Mosquitto::start(&binary, free_port());
    let config = MqttConfig {
        port: broker.port,
        ..MqttConfig::new("127.0.0.1", "cam:02")
    };
    // The broker would publish the Last Will only after 1.5 keep-alives (45 s): an
    // `offline` within a few seconds can only be the notifier's own.
    assert!(config.keep_alive >= Duration::from_secs(30));
    let notifier = Rc::new(MqttNotifier::new(config, None));
    let bus = EventBus::new();
    let topic = "mecam/cam_02/availability";

    local(async {
        let watcher = Watcher::connect(broker.port, "#").await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = {
            let notifier = notifier.clone();
            let updates = bus.subscribe();
            spawn_local(async move {
                notifier
                    .run_until(updates, async {
                        let _ = stopped.await;
                    })
                    .await;
            })
        };
        until("online", WAIT, || watcher.payloads(topic) == ["online"]).await;
        stop.send(()).unwrap();
        until("offline at once", Duration::from_secs(5), || {
            watcher.payloads(topic) == ["online", "offline"]
        })
        .await;
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("run_until returns after the farewell")
            .unwrap();
    });
}
