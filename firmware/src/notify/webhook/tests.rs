//! Webhooks against a real HTTP(S) server on 127.0.0.1 (hyper, on its own thread and
//! runtime, so a server that hangs never stalls the notifier under test).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::hmac;
use tokio::sync::mpsc;

use super::*;
use crate::events::{EventBus, EventKind};
use crate::notify::testing::{event, runtime, until};

const SECRET: &str = "a webhook secret of some length";
const WAIT: Duration = Duration::from_secs(10);

/// What the test server answers to request number `n` (from 0).
#[derive(Clone)]
enum Answer {
    Status(u16),
    StatusWith(u16, &'static str, &'static str),
    /// Read the request, never answer.
    Hang,
}

/// A request as the server saw it.
#[derive(Debug)]
struct Received {
    at: Instant,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn delivery(&self) -> String {
        self.header(DELIVERY_HEADER).to_owned()
    }
}

struct Server {
    addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Received>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    fn start(plan: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_with(None, plan)
    }

    fn start_with(
        tls: Option<tokio_rustls::TlsAcceptor>,
        plan: impl Fn(usize) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, requests) = mpsc::unbounded_channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let plan: Arc<dyn Fn(usize) -> Answer + Send + Sync> = Arc::new(plan);
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let tcp = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((tcp, _)) => tcp,
                            Err(_) => continue,
                        },
                    };
                    let (plan, count, tx, tls) =
                        (plan.clone(), count.clone(), tx.clone(), tls.clone());
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |req: http::Request<hyper::body::Incoming>| {
                                let (plan, count, tx) = (plan.clone(), count.clone(), tx.clone());
                                async move {
                                    let at = Instant::now();
                                    let (parts, body) = req.into_parts();
                                    let body = body
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    let n = count.fetch_add(1, Ordering::SeqCst);
                                    let _ = tx.send(Received {
                                        at,
                                        method: parts.method,
                                        path: parts.uri.to_string(),
                                        headers: parts.headers,
                                        body,
                                    });
                                    let mut response = Response::new(Full::new(Bytes::new()));
                                    match plan(n) {
                                        Answer::Status(s) => {
                                            *response.status_mut() = s.try_into().unwrap()
                                        }
                                        Answer::StatusWith(s, name, value) => {
                                            *response.status_mut() = s.try_into().unwrap();
                                            response
                                                .headers_mut()
                                                .insert(name, value.parse().unwrap());
                                        }
                                        Answer::Hang => std::future::pending::<()>().await,
                                    }
                                    Ok::<_, Infallible>(response)
                                }
                            });
                        let http = hyper::server::conn::http1::Builder::new();
                        let _ = match tls {
                            None => http.serve_connection(TokioIo::new(tcp), service).await,
                            Some(tls) => match tls.accept(tcp).await {
                                Ok(tcp) => http.serve_connection(TokioIo::new(tcp), service).await,
                                Err(_) => return,
                            },
                        };
                    });
                }
            })
        });
        Self {
            addr,
            requests,
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("the webhook reached the server in time")
            .expect("the server is running")
    }
}

/// Checks the signature as a receiver would, with its own HMAC over `"{ts}.{body}"`.
fn signature_verifies(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(tag) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &tag).is_ok()
}

fn fast(url: String) -> WebhookConfig {
    WebhookConfig {
        retry_base: Duration::from_millis(10),
        ..WebhookConfig::new(url, SECRET)
    }
}

/// Runs `test` next to the webhook's `run`, on one thread like the service.
fn with_webhook<F: std::future::Future<Output = ()>>(
    hook: &Webhook,
    bus: &EventBus,
    test: impl FnOnce() -> F,
) {
    let updates = bus.subscribe();
    runtime().block_on(async {
        tokio::select! {
            _ = hook.run(updates) => panic!("the webhook stopped while the bus is open"),
            _ = test() => {}
        }
    });
}

#[test]
fn posts_signed_json_that_a_receiver_can_verify() {
    let mut server = Server::start(|_| Answer::Status(204));
    let hook = Webhook::new(fast(server.url("/api/webhook/door?x=1"))).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        bus.publish(EventUpdate::Started(event(7, EventKind::Person, false)));
        let got = server.next().await;
        assert_eq!(got.method, Method::POST);
        assert_eq!(got.path, "/api/webhook/door?x=1");
        assert_eq!(got.header("content-type"), "application/json");
        assert_eq!(
            got.header("user-agent"),
            format!("mecam/{}", crate::notify::VERSION)
        );
        assert_eq!(got.header("host"), server.addr.to_string());
        let delivery = got.delivery();
        assert!(delivery.len() == 32 && delivery.bytes().all(|b| b.is_ascii_hexdigit()));

        let ts = got.header(TIMESTAMP_HEADER);
        let sent: i64 = ts.parse().expect("unix seconds");
        assert!((jiff::Timestamp::now().as_second() - sent).abs() < 60);
        let sig = got.header(SIGNATURE_HEADER);
        assert!(signature_verifies(SECRET, ts, &got.body, sig), "{sig}");
        // What the timestamp is for: the same body under another time does not verify,
        // and neither does another secret.
        let later = (sent + 600).to_string();
        assert!(!signature_verifies(SECRET, &later, &got.body, sig));
        assert!(!signature_verifies(
            "another secret entirely",
            ts,
            &got.body,
            sig
        ));

        let json = got.json();
        assert_eq!(json["type"], "event.started");
        assert_eq!(json["event"]["id"], 7);
        assert_eq!(json["event"]["kind"], "person");
        assert_eq!(json["event"]["end_us"], serde_json::Value::Null);
        assert_eq!(json["event"]["zones"][0], "door");
        assert_eq!(json["device"]["name"], "ME_CAM");
        assert_eq!(json["device"]["version"], crate::notify::VERSION);
        let sent_at: jiff::Timestamp = json["sent_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(sent_at.as_second(), sent, "sent_at is the signed time");

        until("the delivery is counted", WAIT, || {
            hook.stats().delivered == 1
        })
        .await;
    });
    assert_eq!(hook.stats().failed, 0);
}

#[test]
fn only_the_chosen_updates_are_sent() {
    let mut server = Server::start(|_| Answer::Status(200));
    let mut config = fast(server.url("/"));
    config.events = EventFilter::parse(&["person.ended"]).unwrap();
    let hook = Webhook::new(config).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        bus.publish(EventUpdate::Started(event(1, EventKind::Motion, false)));
        bus.publish(EventUpdate::Started(event(2, EventKind::Person, false)));
        bus.publish(EventUpdate::Updated(event(2, EventKind::Person, false)));
        bus.publish(EventUpdate::Ended(event(1, EventKind::Motion, true)));
        bus.publish(EventUpdate::Ended(event(2, EventKind::Person, true)));
        bus.publish(EventUpdate::Ended(event(3, EventKind::Person, true)));
        // Notifications go out in order, so anything let through before would come
        // before these two.
        let first = server.next().await.json();
        assert_eq!(
            (first["type"].as_str(), first["event"]["id"].as_u64()),
            (Some("event.ended"), Some(2))
        );
        let second = server.next().await.json();
        assert_eq!(second["event"]["id"], 3);
    });
}

#[test]
fn server_errors_are_retried_with_the_same_delivery_id_until_accepted() {
    let mut server = Server::start(|n| Answer::Status(if n < 2 { 500 } else { 200 }));
    let hook = Webhook::new(fast(server.url("/"))).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        bus.publish(EventUpdate::Ended(event(4, EventKind::Motion, true)));
        let attempts = [
            server.next().await,
            server.next().await,
            server.next().await,
        ];
        for got in &attempts {
            assert_eq!(got.delivery(), attempts[0].delivery(), "one notification");
            assert_eq!(got.json()["event"]["id"], 4);
            let ts = got.header(TIMESTAMP_HEADER);
            assert!(signature_verifies(
                SECRET,
                ts,
                &got.body,
                got.header(SIGNATURE_HEADER)
            ));
        }
        until("the retry is accepted", WAIT, || {
            hook.stats().delivered == 1
        })
        .await;
    });
    let stats = hook.stats();
    assert_eq!((stats.delivered, stats.failed), (1, 0));
}

#[test]
fn a_refusal_is_not_retried() {
    let mut server = Server::start(|n| Answer::Status(if n == 0 { 400 } else { 200 }));
    let hook = Webhook::new(fast(server.url("/"))).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        bus.publish(EventUpdate::Started(event(1, EventKind::Person, false)));
        bus.publish(EventUpdate::Started(event(2, EventKind::Person, false)));
        // Notifications go one at a time: a retry of the first would come before the
        // second.
        assert_eq!(server.next().await.json()["event"]["id"], 1);
        assert_eq!(server.next().await.json()["event"]["id"], 2);
        until("the second is accepted", WAIT, || {
            hook.stats().delivered == 1
        })
        .await;
    });
    let stats = hook.stats();
    assert_eq!(stats.failed, 1);
    let error = stats.last_error.unwrap();
    assert!(
        error.contains("HTTP 400") && error.contains("not retried"),
        "{error}"
    );
}

#[test]
fn retry_after_is_waited_for() {
    let mut server = Server::start(|n| {
        if n == 0 {
            Answer::StatusWith(429, "retry-after", "1")
        } else {
            Answer::Status(200)
        }
    });
    let hook = Webhook::new(fast(server.url("/"))).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        bus.publish(EventUpdate::Started(event(1, EventKind::Motion, false)));
        let first = server.next().await;
        let second = server.next().await;
        // The backoff alone would have been ~10 ms.
        let waited = second.at - first.at;
        assert!(
            waited >= Duration::from_millis(950),
            "retried after {waited:?}"
        );
        until("the retry is accepted", WAIT, || {
            hook.stats().delivered == 1
        })
        .await;
    });
}

#[test]
fn a_receiver_that_never_answers_times_out() {
    let mut server = Server::start(|_| Answer::Hang);
    let mut config = fast(server.url("/"));
    config.timeout = Duration::from_millis(300);
    config.max_retries = 1;
    let hook = Webhook::new(config).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        bus.publish(EventUpdate::Started(event(1, EventKind::Motion, false)));
        let first = server.next().await;
        assert_eq!(
            server.next().await.delivery(),
            first.delivery(),
            "retried once"
        );
        until("the notification is given up", WAIT, || {
            hook.stats().failed == 1
        })
        .await;
        let error = hook.stats().last_error.unwrap();
        assert!(error.contains("did not answer within 300ms"), "{error}");
        assert!(!error.contains("/api"), "logs show no path: {error}");

        match hook.send_test().await {
            Err(DeliveryError::Timeout { after, .. }) => {
                assert_eq!(after, Duration::from_millis(300))
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    });
}

#[test]
fn a_dead_receiver_never_holds_up_the_publisher_and_keeps_the_newest() {
    // A port nobody listens on: every connection is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = fast(format!("http://{dead}/"));
    config.max_retries = 1;
    // The first notification then waits for its retry for the rest of the test, so
    // the queue can only fill.
    config.retry_base = Duration::from_secs(3600);
    let hook = Webhook::new(config).unwrap();
    let bus = EventBus::new();
    with_webhook(&hook, &bus, || async {
        // The publisher runs on the webhook's own thread: were `publish` ever to wait
        // for the webhook, this loop could not finish.
        for id in 0..1000 {
            bus.publish(EventUpdate::Started(event(id, EventKind::Motion, false)));
            if id % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        until("the queue catches up with the bus", WAIT, || {
            let s = hook.stats();
            s.dropped + s.skipped + s.queued as u64 + 1 == 1000
        })
        .await;
    });
    let stats = hook.stats();
    assert_eq!(stats.queued, DEFAULT_QUEUE, "{stats:?}");
    assert_eq!(stats.delivered, 0);
    let newest: Vec<u64> = (1000 - DEFAULT_QUEUE as u64..1000).collect();
    assert_eq!(hook.queued_ids(), newest, "the oldest are dropped first");
}

#[test]
fn https_receivers_need_a_trusted_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key.into())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let mut server = Server::start_with(Some(acceptor), |_| Answer::Status(202));
    // An address, not `localhost`: no name lookup, which a static binary under
    // qemu-user (the aarch64 test run) cannot do.
    let url = format!("https://{}/hook", server.addr);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let trusting = Webhook::with_roots(WebhookConfig::new(&url, SECRET), roots).unwrap();
    let untrusting = Webhook::with_roots(
        WebhookConfig::new(&url, SECRET),
        rustls::RootCertStore::empty(),
    )
    .unwrap();
    runtime().block_on(async {
        assert_eq!(trusting.send_test().await.unwrap(), 202);
        let got = server.next().await;
        assert_eq!(got.path, "/hook");
        assert_eq!(got.json()["type"], "test");
        assert_eq!(got.json()["event"]["id"], 0);
        let ts = got.header(TIMESTAMP_HEADER);
        assert!(signature_verifies(
            SECRET,
            ts,
            &got.body,
            got.header(SIGNATURE_HEADER)
        ));

        let error = untrusting.send_test().await.unwrap_err();
        assert!(matches!(error, DeliveryError::Tls { .. }), "{error:?}");
        assert!(error.to_string().contains("certificate"), "{error}");
    });
}

#[test]
fn send_test_reports_the_receivers_refusal() {
    let server = Server::start(|_| Answer::Status(404));
    let hook = Webhook::new(WebhookConfig::new(server.url("/wrong"), SECRET)).unwrap();
    let error = runtime().block_on(hook.send_test()).unwrap_err();
    assert!(
        matches!(error, DeliveryError::Status { status: 404, .. }),
        "{error:?}"
    );
    assert!(error.to_string().ends_with("answered HTTP 404"), "{error}");
}

#[test]
fn event_filter_reads_kinds_and_updates() {
    let started = EventUpdate::Started(event(1, EventKind::Person, false));
    let updated = EventUpdate::Updated(event(1, EventKind::Person, false));
    let motion_ended = EventUpdate::Ended(event(2, EventKind::Motion, true));
    let default = EventFilter::default();
    assert!(default.allows(&started) && default.allows(&motion_ended));
    assert!(
        !default.allows(&updated),
        "updates are opt-in: they can be many"
    );
    assert_eq!(
        default.names(),
        [
            "motion.started",
            "motion.ended",
            "person.started",
            "person.ended"
        ]
    );
    let person = EventFilter::parse(&["person"]).unwrap();
    assert!(person.allows(&updated) && !person.allows(&motion_ended));
    assert_eq!(EventFilter::parse(&default.names()).unwrap(), default);
    assert_eq!(EventFilter::ALL.names().len(), 6);
    assert_eq!(
        EventFilter::parse(&["person.begun"]),
        Err(UnknownEvent("person.begun".into()))
    );
    assert!(EventFilter::parse(&["car"]).is_err());
    assert!(!EventFilter::parse::<&str>(&[]).unwrap().allows(&started));
}
