//! The other end of the camera's notifications, run by the test on this machine: a
//! plain-HTTP webhook receiver that records every request, and a real Mosquitto
//! broker with a subscriber watching it the way Home Assistant would.
//!
//! Both listen on 127.0.0.1, so they serve a local device only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Error;

/// A request head larger than this is refused (the camera's are well under 1 KiB).
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1 << 20;

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    pub arrived: Instant,
}

impl HookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A plain-HTTP/1.1 server on 127.0.0.1 that answers every request `204 No Content`
/// and keeps it. Stops when dropped.
pub struct WebhookReceiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<HookRequest>>>,
    task: JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let requests = requests.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, requests.clone()));
                }
            }
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<HookRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection: requests one after another until the peer closes.
async fn serve(mut stream: TcpStream, requests: Arc<Mutex<Vec<HookRequest>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split_whitespace();
        let method = request_line.next().unwrap_or_default().to_owned();
        let path = request_line.next().unwrap_or_default().to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            // Not what the camera sends; refuse rather than misread it.
            let _ = stream
                .write_all(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            return;
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if length > MAX_BODY {
            return;
        }
        let body_start = head_end + 4;
        while buf.len() < body_start + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = Bytes::copy_from_slice(&buf[body_start..body_start + length]);
        buf.drain(..body_start + length);
        let close = headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(HookRequest {
                method,
                path,
                headers,
                body,
                arrived: Instant::now(),
            });
        let answer: &[u8] = if close {
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        } else {
            b"HTTP/1.1 204 No Content\r\n\r\n"
        };
        if stream.write_all(answer).await.is_err() || close {
            return;
        }
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `timestamp.body` under `secret`:
/// the `X-MeCam-Signature` a webhook request must carry (docs/notifications.md).
pub fn webhook_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A Mosquitto broker of the test's own on 127.0.0.1, on a free port; killed on drop.
pub struct Mosquitto {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// Debian's broker binary (`./scripts/test` installs the `mosquitto` package).
fn mosquitto_binary() -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("mosquitto"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Unsupported(
                "the MQTT test needs the Mosquitto broker: run ./scripts/test (it installs the \
                 test packages) or `apt-get install mosquitto`"
                    .into(),
            )
        })
}

impl Mosquitto {
    pub fn start() -> Result<Self, Error> {
        let binary = mosquitto_binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::Builder::new()
            .prefix("mecam-hil-mosquitto-")
            .tempdir()?;
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )?;
        let log = std::fs::File::create(dir.path().join("mosquitto.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Launch(format!("cannot start {}: {e}", binary.display())))?;
        let mut broker = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(Error::Launch(format!(
                    "mosquitto exited ({status}): {}",
                    broker.log()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "mosquitto did not listen on port {port}: {}",
                    broker.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as the watcher saw it; `retain` is set only for messages the broker had
/// stored before the subscription.
#[derive(Debug, Clone)]
pub struct MqttMessage {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    pub arrived: Instant,
}

impl MqttMessage {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A separate MQTT client subscribed to `#` on a broker, keeping everything it
/// receives. Disconnects when dropped.
pub struct MqttWatcher {
    seen: Arc<Mutex<Vec<MqttMessage>>>,
    task: JoinHandle<()>,
}

impl MqttWatcher {
    /// Connects to the broker on 127.0.0.1:`port` and returns once subscribed.
    pub async fn connect(port: u16) -> Result<Self, Error> {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let mut options = MqttOptions::new(
            format!("mecam-hil-watcher-{}", std::process::id()),
            "127.0.0.1",
            port,
        );
        options.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 10);
        client
            .subscribe("#", QoS::AtLeastOnce)
            .await
            .map_err(|e| Error::Protocol(format!("MQTT subscribe: {e}")))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (subscribed, mut suback) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                let _client = client;
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => seen
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(MqttMessage {
                                topic: p.topic,
                                payload: p.payload,
                                retain: p.retain,
                                arrived: Instant::now(),
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
        match tokio::time::timeout(Duration::from_secs(10), suback.recv()).await {
            Ok(Some(())) => Ok(Self { seen, task }),
            _ => {
                task.abort();
                Err(Error::Timeout(format!(
                    "the MQTT watcher did not subscribe on port {port}"
                )))
            }
        }
    }

    /// Everything received so far, in order.
    pub fn messages(&self) -> Vec<MqttMessage> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The payloads received on `topic`, in order.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        self.messages()
            .iter()
            .filter(|m| m.topic == topic)
            .map(MqttMessage::text)
            .collect()
    }
}

impl Drop for MqttWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_documented_example() {
        // docs/notifications.md, "Checking the signature".
        assert_eq!(
            webhook_signature("0123456789abcdef", "1700000000", b"{}"),
            "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
        );
    }
}
