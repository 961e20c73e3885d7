//! `GET /api/v1/events/stream`: event updates as Server-Sent Events.
//!
//! ```text
//! retry: 5000
//! : mecam events
//!
//! event: started
//! id: 42
//! data: {"id":42,"kind":"person","start":"2026-03-01T08:00:00.250Z","end":null,...}
//!
//! : keep-alive
//!
//! event: lagged
//! data: {"skipped":3}
//! ```
//!
//! - `event` is `started`, `updated` or `ended`; `id` the event's id (so an
//!   `EventSource`'s `lastEventId` is the last event heard of); `data` the event as
//!   the listing shows it, on one line (JSON escapes every newline).
//! - A comment every 15 s of silence keeps proxies and NAT from closing the stream and
//!   lets a client notice a dead connection.
//! - Each client has its own receiver on the broadcast [`EventBus`]: a client that
//!   reads too slowly falls behind on its own, skips what the bus no longer holds and
//!   is told so with `event: lagged` — it never holds up the detector or other clients.
//!   One that takes nothing for the server's write timeout is cut off, as the MJPEG
//!   stream does.
//! - At service shutdown the stream ends cleanly (the body finishes).
//!
//! [`EventBus`]: crate::events::EventBus

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::event_json;
use crate::api::AppState;
use crate::api::body::{BodySender, ChannelBody};
use crate::events::{EventKind, EventUpdate};
use crate::runtime;

/// Silence after which a keep-alive comment is sent.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
/// The first bytes of every stream: how long a browser waits before reconnecting, and
/// a comment that gets the headers and a first chunk through buffering proxies.
const HELLO: &[u8] = b"retry: 5000\n: mecam events\n\n";
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";
/// Messages queued for one client beyond what the socket takes (each a few hundred
/// bytes).
const QUEUE: usize = 16;

/// One update as an SSE message.
pub fn message(update: &EventUpdate, recording: Option<String>) -> String {
    let (name, event) = match update {
        EventUpdate::Started(e) => ("started", e),
        EventUpdate::Updated(e) => ("updated", e),
        EventUpdate::Ended(e) => ("ended", e),
    };
    format!(
        "event: {name}\nid: {}\ndata: {}\n\n",
        event.id,
        event_json(event, recording)
    )
}

/// The message telling a slow client that `skipped` updates were lost.
pub fn lagged(skipped: u64) -> String {
    format!("event: lagged\ndata: {{\"skipped\":{skipped}}}\n\n")
}

/// Starts streaming updates (of `kind` only, if given) to one client.
pub fn stream(state: &Rc<AppState>, kind: Option<EventKind>) -> ChannelBody {
    let (tx, body) = ChannelBody::new(QUEUE);
    // Subscribed now, before the response goes out: nothing published after the
    // request was answered is missed.
    let updates = state.events.subscribe();
    let shutdown = state.shutdown.clone();
    let write_timeout = state.write_timeout;
    runtime::spawn(run(
        tx,
        updates,
        shutdown,
        super::linker(state),
        Pacing {
            kind,
            write_timeout,
            keep_alive: KEEP_ALIVE_EVERY,
        },
    ));
    body
}

/// What a stream filters and how it paces.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    kind: Option<EventKind>,
    write_timeout: Duration,
    keep_alive: Duration,
}

async fn run(
    tx: BodySender,
    mut updates: broadcast::Receiver<EventUpdate>,
    mut shutdown: watch::Receiver<bool>,
    link: super::Linker,
    pacing: Pacing,
) {
    if *shutdown.borrow() {
        return;
    }
    let mut next = Some(Bytes::from_static(HELLO));
    let mut quiet_until = Instant::now() + pacing.keep_alive;
    loop {
        let chunk = match next.take() {
            Some(chunk) => chunk,
            None => tokio::select! {
                biased;
                // Also when the service is gone (`Err`).
                _ = shutdown.changed() => break,
                received = updates.recv() => match received {
                    Ok(update) if pacing.kind.is_some_and(|k| k != update.event().kind) => continue,
                    Ok(update) => Bytes::from(message(&update, link(update.event()))),
                    Err(RecvError::Lagged(skipped)) => Bytes::from(lagged(skipped)),
                    Err(RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(quiet_until) => Bytes::from_static(KEEP_ALIVE),
            },
        };
        match tokio::time::timeout(pacing.write_timeout, tx.send(chunk)).await {
            Ok(Ok(())) => quiet_until = Instant::now() + pacing.keep_alive,
            Ok(Err(_gone)) => return,
            Err(_elapsed) => {
                tracing::info!(
                    "event stream client dropped: it took nothing for {}s",
                    pacing.write_timeout.as_secs()
                );
                tx.abort();
                return;
            }
        }
    }
    // Dropping `tx` ends the body: the client sees a clean end, and `EventSource`
    // reconnects after `retry`.
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::detect::BBox;
    use crate::events::Event;

    fn event(id: u64, kind: EventKind) -> Event {
        Event {
            id,
            kind,
            start_us: 1_772_323_200_250_000,
            end_us: None,
            peak_score: 0.912_345,
            boxes: vec![BBox {
                x: 0.1,
                y: 0.25,
                w: 0.5,
                h: 0.75,
            }],
            zones: vec!["front\ndoor".into()],
            thumbnail: true,
        }
    }

    #[test]
    fn sse_message_framing() {
        let text = message(&EventUpdate::Started(event(42, EventKind::Person)), None);
        assert_eq!(
            text,
            "event: started\nid: 42\ndata: {\"boxes\":[{\"h\":0.75,\"w\":0.5,\"x\":0.1,\"y\":0.25}],\
             \"end\":null,\"id\":42,\"kind\":\"person\",\"recording\":null,\
             \"score\":0.912,\"start\":\"2026-03-01T00:00:00.250Z\",\"thumbnail\":\"/api/v1/events/42/thumbnail.jpg\",\
             \"zones\":[\"front\\ndoor\"]}\n\n"
        );
        // One `data:` line whatever the zone names hold; a blank line ends the message.
        let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(text.ends_with("\n\n") && !text.trim_end().contains("\n\n"));
        let ended = message(
            &EventUpdate::Ended(Event {
                end_us: Some(1_772_323_260_000_000),
                thumbnail: false,
                ..event(7, EventKind::Motion)
            }),
            Some("/api/v1/export.mp4?from=x&to=y".into()),
        );
        assert!(
            ended.contains(r#""recording":"/api/v1/export.mp4?from=x&to=y""#),
            "{ended}"
        );
        assert!(ended.starts_with("event: ended\nid: 7\ndata: {"), "{ended}");
        assert!(
            ended.contains("\"end\":\"2026-03-01T00:01:00Z\""),
            "{ended}"
        );
        assert!(ended.contains("\"thumbnail\":null"), "{ended}");
        assert!(
            message(&EventUpdate::Updated(event(1, EventKind::Motion)), None)
                .starts_with("event: updated\n")
        );
        assert_eq!(lagged(3), "event: lagged\ndata: {\"skipped\":3}\n\n");
    }

    /// Runs a stream on a local task; returns its body and the handles that drive it.
    struct Client {
        body: ChannelBody,
        bus: broadcast::Sender<EventUpdate>,
        shutdown: watch::Sender<bool>,
    }

    fn client(bus_capacity: usize, queue: usize, pacing: Pacing) -> Client {
        let (bus, updates) = broadcast::channel(bus_capacity);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (tx, body) = ChannelBody::new(queue);
        tokio::task::spawn_local(run(tx, updates, shutdown_rx, Rc::new(|_| None), pacing));
        Client {
            body,
            bus,
            shutdown,
        }
    }

    const PACING: Pacing = Pacing {
        kind: None,
        write_timeout: Duration::from_secs(5),
        keep_alive: Duration::from_secs(3600),
    };

    /// The next chunk of the body as text; `None` at its end.
    async fn next(body: &mut ChannelBody) -> Option<Result<String, String>> {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("the stream stalled")?;
        Some(
            frame
                .map(|f| String::from_utf8(f.into_data().unwrap().to_vec()).unwrap())
                .map_err(|e| e.to_string()),
        )
    }

    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn sse_stream_sends_updates_and_ends_cleanly_at_shutdown() {
        local(async {
            let mut c = client(16, QUEUE, PACING);
            assert_eq!(
                next(&mut c.body).await,
                Some(Ok(String::from_utf8(HELLO.to_vec()).unwrap()))
            );
            let update = EventUpdate::Started(event(5, EventKind::Person));
            c.bus.send(update.clone()).unwrap();
            assert_eq!(next(&mut c.body).await, Some(Ok(message(&update, None))));
            c.shutdown.send(true).unwrap();
            assert_eq!(next(&mut c.body).await, None, "a clean end, not an error");
        });
    }

    #[test]
    fn sse_stream_filters_by_kind_and_keeps_alive() {
        local(async {
            let mut c = client(
                16,
                QUEUE,
                Pacing {
                    kind: Some(EventKind::Person),
                    keep_alive: Duration::from_millis(100),
                    ..PACING
                },
            );
            next(&mut c.body).await;
            c.bus
                .send(EventUpdate::Started(event(1, EventKind::Motion)))
                .unwrap();
            let person = EventUpdate::Started(event(2, EventKind::Person));
            c.bus.send(person.clone()).unwrap();
            assert_eq!(next(&mut c.body).await, Some(Ok(message(&person, None))));
            assert_eq!(
                next(&mut c.body).await,
                Some(Ok(": keep-alive\n\n".to_string())),
                "silence is filled with a comment"
            );
            // The bus going away (service stopped) ends the stream too.
            drop(c.bus);
            assert_eq!(next(&mut c.body).await, None);
        });
    }

    #[test]
    fn sse_slow_client_skips_and_is_told() {
        local(async {
            let mut c = client(2, QUEUE, PACING);
            next(&mut c.body).await;
            // Five updates while the client is not reading; the bus holds two.
            for id in 1..=5 {
                c.bus
                    .send(EventUpdate::Updated(event(id, EventKind::Person)))
                    .unwrap();
            }
            assert_eq!(next(&mut c.body).await, Some(Ok(lagged(3))));
            for id in 4..=5 {
                let got = next(&mut c.body).await.unwrap().unwrap();
                assert!(
                    got.starts_with(&format!("event: updated\nid: {id}\n")),
                    "{got}"
                );
            }
        });
    }

    #[test]
    fn sse_client_that_takes_nothing_is_cut_off() {
        local(async {
            let mut c = client(
                64,
                1,
                Pacing {
                    write_timeout: Duration::from_millis(100),
                    ..PACING
                },
            );
            for id in 1..=10 {
                c.bus
                    .send(EventUpdate::Updated(event(id, EventKind::Person)))
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
            let got = next(&mut c.body).await;
            assert!(matches!(got, Some(Err(_))), "{got:?}");
            assert_eq!(c.bus.receiver_count(), 0, "its receiver is gone with it");
        });
    }

    #[test]
    fn sse_stream_after_shutdown_ends_at_once() {
        local(async {
            let (bus, updates) = broadcast::channel(4);
            let (_shutdown, shutdown_rx) = watch::channel(true);
            let (tx, mut body) = ChannelBody::new(QUEUE);
            tokio::task::spawn_local(run(tx, updates, shutdown_rx, Rc::new(|_| None), PACING));
            assert_eq!(next(&mut body).await, None);
            drop(bus);
        });
    }
}
