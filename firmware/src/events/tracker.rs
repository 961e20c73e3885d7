//! Turns the detector's per-frame [`Observation`]s into events: when they start, when
//! they get better (a higher peak, another zone), and when they end.
//!
//! A pure state machine: no clock, no I/O. The caller feeds observations in capture
//! order and calls [`Tracker::tick`] now and then, so that an event still ends when
//! the detector goes quiet altogether (camera stalled, detection switched off).
//!
//! # Rules
//!
//! - At most one **motion** event and at most one **person** event are open at a time;
//!   they are independent (a person event usually runs inside a motion event).
//! - A motion event starts on the first observation with motion, a person event on the
//!   first detection scoring at least `person_threshold`.
//! - An event ends once `end_after` has passed (by capture time) since the last frame
//!   that fed it. Its end time is that last frame's wall time, so "18:02:10–18:02:31"
//!   means the person was last seen at 18:02:31, not when the cooldown ran out. A frame
//!   without the thing (one missed detection, a rate-limited model) is not an end: only
//!   a quiet `end_after` is, so flicker never splits an event.
//! - The **peak** is the highest score seen (the model's score for a person, the
//!   changed fraction of the frame for motion), with the boxes of the frame it came from.
//!   **Zones** are the union of the zones touched; for a person event those of the
//!   motion in the frames where the person was detected (a detection carries no zone).
//! - `Updated` is emitted only when the peak has risen by [`PEAK_MARGIN`] over the last
//!   published peak, or a zone was added — not on every frame — so SSE clients and
//!   notifiers see a handful of messages per event. The event itself always holds the
//!   true peak, so the final `Ended` is exact.
//!
//! # Ids
//!
//! The caller hands the tracker its first id ([`Tracker::new`]); the tracker numbers
//! events from there, one per `Started`, and [`Tracker::next_id`] says where it is.
//! The event service takes the first id from [`EventStore::reserve_ids`], which keeps
//! the stored counter ahead of every id handed out, so ids are never reused across
//! restarts (see `store`).
//!
//! [`EventStore::reserve_ids`]: super::store::EventStore::reserve_ids

use std::time::{Duration, Instant};

use super::{Event, EventKind, EventUpdate};
use crate::detect::{BBox, Detection, Observation};

/// Smallest rise of the peak score that is published as `Updated`.
pub const PEAK_MARGIN: f32 = 0.05;

/// Most boxes kept at the peak of a person event (the highest-scoring ones): a crowd
/// must not make a row or a message unbounded.
pub const MAX_BOXES: usize = 16;

/// Most zones kept per event (zone names come from the configuration, which has few).
pub const MAX_ZONES: usize = 32;

/// How events are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Quiet time that ends an event (`detection.cooldown_secs`).
    pub end_after: Duration,
    /// Lowest person score that starts or feeds a person event
    /// (`detection.person_threshold`).
    pub person_threshold: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            end_after: Duration::from_secs(5),
            person_threshold: 0.5,
        }
    }
}

/// An event in progress.
#[derive(Debug, Clone)]
struct Open {
    event: Event,
    /// Capture time of the last frame that fed the event.
    last_seen: Instant,
    /// Its wall time, µs since the epoch: the end time if nothing follows.
    last_seen_us: u64,
    /// Peak as last published (Started or Updated).
    published_peak: f32,
}

/// What one observation contributes to one kind of event.
struct Sighting<'a> {
    score: f32,
    boxes: Vec<BBox>,
    zones: &'a [String],
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    next_id: u64,
    motion: Option<Open>,
    person: Option<Open>,
}

impl Tracker {
    /// A tracker with nothing open, numbering events from `first_id`.
    pub fn new(config: TrackerConfig, first_id: u64) -> Self {
        Self {
            config,
            next_id: first_id,
            motion: None,
            person: None,
        }
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// The events in progress (motion first).
    pub fn open_events(&self) -> impl Iterator<Item = &Event> {
        self.motion
            .iter()
            .chain(self.person.iter())
            .map(|o| &o.event)
    }

    /// Records that event `id` now has a thumbnail, so its later updates say so.
    pub fn mark_thumbnail(&mut self, id: u64) {
        for open in [&mut self.motion, &mut self.person].into_iter().flatten() {
            if open.event.id == id {
                open.event.thumbnail = true;
            }
        }
    }

    /// Feeds one analysed frame; `wall_us` is its wall-clock time (µs since the
    /// epoch). Observations must come in capture order.
    pub fn observe(&mut self, obs: &Observation, wall_us: u64) -> Vec<EventUpdate> {
        // Quiet time that passed before this frame ends events first: a person who
        // comes back after the cooldown is a new event.
        let mut out = self.tick(obs.captured);
        let zones: &[String] = obs.motion.as_ref().map_or(&[], |m| &m.zones);
        if let Some(motion) = &obs.motion {
            let sighting = Sighting {
                score: clamp_score(motion.area),
                boxes: vec![motion.region],
                zones,
            };
            self.feed(EventKind::Motion, sighting, obs.captured, wall_us, &mut out);
        }
        if let Some(sighting) = obs
            .persons
            .as_deref()
            .and_then(|found| self.persons(found, zones))
        {
            self.feed(EventKind::Person, sighting, obs.captured, wall_us, &mut out);
        }
        out
    }

    /// Ends the events that have been quiet for `end_after` at `now` (a capture-clock
    /// instant). Call it regularly: observations may stop altogether.
    pub fn tick(&mut self, now: Instant) -> Vec<EventUpdate> {
        let end_after = self.config.end_after;
        let mut out = Vec::new();
        for slot in [&mut self.motion, &mut self.person] {
            let quiet = slot
                .as_ref()
                .is_some_and(|o| now.saturating_duration_since(o.last_seen) >= end_after);
            if quiet && let Some(open) = slot.take() {
                out.push(EventUpdate::Ended(close(open)));
            }
        }
        out
    }

    /// Ends every open event now (the service is stopping), each at the last time it
    /// was seen.
    pub fn finish(&mut self) -> Vec<EventUpdate> {
        [self.motion.take(), self.person.take()]
            .into_iter()
            .flatten()
            .map(|open| EventUpdate::Ended(close(open)))
            .collect()
    }

    /// The person detections of one frame that count, as a sighting; `None` if none
    /// reaches the threshold.
    fn persons<'a>(&self, found: &[Detection], zones: &'a [String]) -> Option<Sighting<'a>> {
        let threshold = self.config.person_threshold;
        let mut hits: Vec<&Detection> = found
            .iter()
            .filter(|d| d.score.is_finite() && d.score >= threshold)
            .collect();
        if hits.is_empty() {
            return None;
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Some(Sighting {
            score: clamp_score(hits[0].score),
            boxes: hits.iter().take(MAX_BOXES).map(|d| d.bbox).collect(),
            zones,
        })
    }

    fn feed(
        &mut self,
        kind: EventKind,
        sighting: Sighting<'_>,
        captured: Instant,
        wall_us: u64,
        out: &mut Vec<EventUpdate>,
    ) {
        let slot = match kind {
            EventKind::Motion => &mut self.motion,
            EventKind::Person => &mut self.person,
        };
        let Some(open) = slot else {
            let mut zones = Vec::new();
            add_zones(&mut zones, sighting.zones);
            let event = Event {
                id: self.next_id,
                kind,
                start_us: wall_us,
                end_us: None,
                peak_score: sighting.score,
                boxes: sighting.boxes,
                zones,
                thumbnail: false,
            };
            self.next_id += 1;
            out.push(EventUpdate::Started(event.clone()));
            *slot = Some(Open {
                event,
                last_seen: captured,
                last_seen_us: wall_us,
                published_peak: sighting.score,
            });
            return;
        };
        // `max`: a frame analysed out of order must not move the end backwards.
        open.last_seen = open.last_seen.max(captured);
        open.last_seen_us = open.last_seen_us.max(wall_us);
        let mut changed = add_zones(&mut open.event.zones, sighting.zones);
        if sighting.score > open.event.peak_score {
            open.event.peak_score = sighting.score;
            open.event.boxes = sighting.boxes;
        }
        if open.event.peak_score >= open.published_peak + PEAK_MARGIN {
            open.published_peak = open.event.peak_score;
            changed = true;
        }
        if changed {
            out.push(EventUpdate::Updated(open.event.clone()));
        }
    }
}

/// The event as it ends: at the last time it was seen (never before its start, even
/// if the wall clock was stepped back meanwhile).
fn close(open: Open) -> Event {
    let mut event = open.event;
    event.end_us = Some(open.last_seen_us.max(event.start_us));
    event
}

/// Adds the zones not yet in `zones` (kept sorted, at most [`MAX_ZONES`]); true if
/// any was new.
fn add_zones(zones: &mut Vec<String>, new: &[String]) -> bool {
    let mut added = false;
    for zone in new {
        if zones.len() >= MAX_ZONES {
            break;
        }
        if let Err(at) = zones.binary_search(zone) {
            zones.insert(at, zone.clone());
            added = true;
        }
    }
    added
}

/// A score as stored: finite and within 0..1 whatever the detector sent.
fn clamp_score(score: f32) -> f32 {
    if score.is_finite() {
        score.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::detect::MotionSeen;

    /// 2026-03-01T00:00:00Z in µs.
    const T0_US: u64 = 1_772_323_200_000_000;

    fn config() -> TrackerConfig {
        TrackerConfig {
            end_after: Duration::from_secs(5),
            person_threshold: 0.5,
        }
    }

    fn bbox(x: f32) -> BBox {
        BBox {
            x,
            y: 0.1,
            w: 0.2,
            h: 0.5,
        }
    }

    /// A scripted camera: frames every `step` from a fixed start.
    struct Script {
        base: Instant,
        tracker: Tracker,
        updates: Vec<EventUpdate>,
    }

    impl Script {
        fn new() -> Self {
            Self {
                base: Instant::now(),
                tracker: Tracker::new(config(), 1),
                updates: Vec::new(),
            }
        }

        fn frame(
            &mut self,
            at_ms: u64,
            motion: Option<(f32, &[&str])>,
            persons: Option<&[f32]>,
        ) -> Vec<EventUpdate> {
            let obs = Observation {
                captured: self.base + Duration::from_millis(at_ms),
                wall: SystemTime::UNIX_EPOCH + Duration::from_micros(T0_US + at_ms * 1000),
                motion: motion.map(|(area, zones)| MotionSeen {
                    region: bbox(area),
                    area,
                    zones: zones.iter().map(|z| z.to_string()).collect(),
                }),
                persons: persons.map(|scores| {
                    scores
                        .iter()
                        .enumerate()
                        .map(|(i, &score)| Detection {
                            score,
                            bbox: bbox(i as f32 / 10.0),
                        })
                        .collect()
                }),
            };
            let got = self.tracker.observe(&obs, T0_US + at_ms * 1000);
            self.updates.extend(got.iter().cloned());
            got
        }

        fn tick(&mut self, at_ms: u64) -> Vec<EventUpdate> {
            let got = self.tracker.tick(self.base + Duration::from_millis(at_ms));
            self.updates.extend(got.iter().cloned());
            got
        }

        fn of_kind(&self, kind: EventKind) -> Vec<&EventUpdate> {
            self.updates
                .iter()
                .filter(|u| u.event().kind == kind)
                .collect()
        }
    }

    fn label(u: &EventUpdate) -> &'static str {
        match u {
            EventUpdate::Started(_) => "started",
            EventUpdate::Updated(_) => "updated",
            EventUpdate::Ended(_) => "ended",
        }
    }

    #[test]
    fn a_person_for_three_seconds_is_one_event_with_one_start_and_one_end() {
        let mut s = Script::new();
        // 5 fps for 3 s with a steady score, then an empty scene for 10 s.
        for i in 0..15 {
            s.frame(i * 200, Some((0.1, &[])), Some(&[0.8]));
        }
        for i in 15..65 {
            s.frame(i * 200, None, Some(&[]));
        }
        let person: Vec<_> = s.of_kind(EventKind::Person);
        let labels: Vec<_> = person.iter().map(|u| label(u)).collect();
        assert_eq!(labels, ["started", "ended"], "{person:#?}");
        let ended = person[1].event();
        assert_eq!(ended.id, person[0].event().id);
        assert_eq!(ended.start_us, T0_US);
        assert_eq!(
            ended.end_us,
            Some(T0_US + 2_800_000),
            "ends when last seen, not when the cooldown ran out"
        );
        assert_eq!(ended.peak_score, 0.8);
        assert_eq!(s.tracker.open_events().count(), 0);
    }

    #[test]
    fn an_event_ends_only_after_the_quiet_time() {
        let mut s = Script::new();
        s.frame(0, None, Some(&[0.9]));
        // 4.8 s of frames without the person: still open.
        for i in 1..=24 {
            assert!(s.frame(i * 200, None, Some(&[])).is_empty(), "frame {i}");
        }
        // 5.0 s after the last sighting: ended.
        let got = s.frame(5_000, None, Some(&[]));
        assert!(matches!(got.as_slice(), [EventUpdate::Ended(e)] if e.end_us == Some(T0_US)));
    }

    #[test]
    fn a_missed_frame_does_not_split_an_event() {
        let mut s = Script::new();
        for i in 0..30 {
            // Every third frame the model misses the person or does not run at all.
            let persons: Option<&[f32]> = match i % 3 {
                0 => Some(&[]),
                1 => None,
                _ => Some(&[0.7]),
            };
            s.frame(i * 200, Some((0.05, &[])), persons);
        }
        s.tick(60_000);
        let person = s.of_kind(EventKind::Person);
        let labels: Vec<_> = person.iter().map(|u| label(u)).collect();
        assert_eq!(labels, ["started", "ended"]);
        let motion = s.of_kind(EventKind::Motion);
        let labels: Vec<_> = motion.iter().map(|u| label(u)).collect();
        assert_eq!(labels, ["started", "ended"]);
    }

    #[test]
    fn a_return_after_the_quiet_time_is_a_new_event_with_the_next_id() {
        let mut s = Script::new();
        s.frame(0, None, Some(&[0.9]));
        let got = s.frame(6_000, None, Some(&[0.6]));
        let labels: Vec<_> = got.iter().map(label).collect();
        assert_eq!(
            labels,
            ["ended", "started"],
            "old one ends before the new starts"
        );
        assert_eq!(got[0].event().id, 1);
        assert_eq!(got[1].event().id, 2);
        assert_eq!(got[1].event().start_us, T0_US + 6_000_000);
        assert_eq!(s.tracker.next_id(), 3);
    }

    #[test]
    fn tick_ends_events_when_observations_stop() {
        let mut s = Script::new();
        s.frame(0, Some((0.2, &["door"])), Some(&[0.9]));
        assert!(s.tick(4_999).is_empty());
        let got = s.tick(5_000);
        let kinds: Vec<_> = got.iter().map(|u| (label(u), u.event().kind)).collect();
        assert_eq!(
            kinds,
            [("ended", EventKind::Motion), ("ended", EventKind::Person)]
        );
        assert!(s.tick(20_000).is_empty(), "ended once");
    }

    #[test]
    fn motion_and_person_events_are_independent() {
        let mut s = Script::new();
        s.frame(0, Some((0.1, &[])), None);
        s.frame(1_000, Some((0.1, &[])), Some(&[0.9]));
        // Motion goes on; the person leaves at 1 s.
        for i in 2..=10 {
            s.frame(i * 1_000, Some((0.1, &[])), Some(&[0.1]));
        }
        let person = s.of_kind(EventKind::Person);
        let labels: Vec<_> = person.iter().map(|u| label(u)).collect();
        assert_eq!(labels, ["started", "ended"]);
        assert_eq!(person[1].event().end_us, Some(T0_US + 1_000_000));
        let motion = s.of_kind(EventKind::Motion);
        assert_eq!(motion.len(), 1, "motion still open: {motion:#?}");
        assert_ne!(motion[0].event().id, person[0].event().id);
    }

    #[test]
    fn low_scores_and_garbage_scores_do_not_start_a_person_event() {
        let mut s = Script::new();
        s.frame(0, None, Some(&[0.49, f32::NAN, f32::NEG_INFINITY]));
        s.frame(200, None, Some(&[]));
        s.frame(400, None, None);
        assert!(s.updates.is_empty(), "{:#?}", s.updates);
        let got = s.frame(600, None, Some(&[0.5]));
        assert!(matches!(got.as_slice(), [EventUpdate::Started(e)] if e.kind == EventKind::Person));
    }

    #[test]
    fn zones_accumulate_and_each_new_zone_is_published() {
        let mut s = Script::new();
        s.frame(0, Some((0.05, &["porch"])), Some(&[0.9]));
        s.frame(200, Some((0.05, &["porch"])), Some(&[0.9]));
        s.frame(400, Some((0.05, &["drive", "porch"])), Some(&[0.9]));
        s.frame(600, Some((0.05, &["drive"])), Some(&[0.9]));
        // Motion in the garden, but the person is not seen in that frame.
        s.frame(800, Some((0.05, &["garden"])), Some(&[]));
        s.tick(30_000);
        let person = s.of_kind(EventKind::Person);
        let labels: Vec<_> = person.iter().map(|u| label(u)).collect();
        assert_eq!(labels, ["started", "updated", "ended"]);
        assert_eq!(person[0].event().zones, ["porch"]);
        assert_eq!(person[1].event().zones, ["drive", "porch"]);
        assert_eq!(
            person[2].event().zones,
            ["drive", "porch"],
            "a zone where the person was not seen is not theirs"
        );
        let motion = s.of_kind(EventKind::Motion);
        let labels: Vec<_> = motion.iter().map(|u| label(u)).collect();
        assert_eq!(labels, ["started", "updated", "updated", "ended"]);
        assert_eq!(motion[3].event().zones, ["drive", "garden", "porch"]);
    }

    #[test]
    fn peak_updates_only_when_the_peak_rises_by_the_margin() {
        let mut s = Script::new();
        // A slowly rising score: 0.60, 0.61, ... 0.80 over 21 frames.
        for i in 0..=20u16 {
            s.frame(
                u64::from(i) * 200,
                None,
                Some(&[0.6 + f32::from(i) / 100.0]),
            );
        }
        // Falling again.
        for i in 21..=30u16 {
            s.frame(u64::from(i) * 200, None, Some(&[0.6]));
        }
        s.tick(60_000);
        let person = s.of_kind(EventKind::Person);
        let updated: Vec<f32> = person
            .iter()
            .filter(|u| matches!(u, EventUpdate::Updated(_)))
            .map(|u| u.event().peak_score)
            .collect();
        assert!(
            (3..=4).contains(&updated.len()),
            "a few updates for a rise of 0.2, not 20: {updated:?}"
        );
        for pair in updated.windows(2) {
            assert!(pair[1] >= pair[0] + PEAK_MARGIN - 1e-6, "{updated:?}");
        }
        let ended = person.last().unwrap().event();
        assert!(matches!(person.last(), Some(EventUpdate::Ended(_))));
        assert!(
            (ended.peak_score - 0.8).abs() < 1e-6,
            "the end carries the true peak: {}",
            ended.peak_score
        );
    }

    #[test]
    fn the_peak_keeps_the_boxes_of_its_frame() {
        let mut s = Script::new();
        s.frame(0, None, Some(&[0.6]));
        // Two people, the better one second in the list.
        s.frame(200, None, Some(&[0.3, 0.95, 0.7]));
        s.frame(400, None, Some(&[0.65]));
        let got = s.tracker.finish();
        let [EventUpdate::Ended(e)] = got.as_slice() else {
            panic!("{got:#?}")
        };
        assert_eq!(e.peak_score, 0.95);
        assert_eq!(
            e.boxes,
            [bbox(0.1), bbox(0.2)],
            "boxes of the peak frame above the threshold, best first"
        );
    }

    #[test]
    fn boxes_are_bounded() {
        let mut s = Script::new();
        let crowd = [0.9f32; 100];
        let got = s.frame(0, None, Some(&crowd));
        assert_eq!(got[0].event().boxes.len(), MAX_BOXES);
    }

    #[test]
    fn thumbnail_marks_carry_into_later_updates() {
        let mut s = Script::new();
        let got = s.frame(0, None, Some(&[0.6]));
        let id = got[0].event().id;
        s.tracker.mark_thumbnail(id);
        let got = s.frame(200, None, Some(&[0.9]));
        assert!(matches!(got.as_slice(), [EventUpdate::Updated(e)] if e.thumbnail));
        let got = s.tracker.finish();
        assert!(got[0].event().thumbnail);
    }

    #[test]
    fn finish_ends_everything_at_the_last_sighting() {
        let mut s = Script::new();
        s.frame(0, Some((0.1, &[])), Some(&[0.9]));
        s.frame(1_000, Some((0.1, &[])), None);
        let got = s.tracker.finish();
        let ends: Vec<_> = got
            .iter()
            .map(|u| (label(u), u.event().kind, u.event().end_us))
            .collect();
        assert_eq!(
            ends,
            [
                ("ended", EventKind::Motion, Some(T0_US + 1_000_000)),
                ("ended", EventKind::Person, Some(T0_US))
            ]
        );
        assert!(s.tracker.finish().is_empty());
    }

    #[test]
    fn a_wall_clock_stepped_back_never_ends_an_event_before_it_started() {
        let base = Instant::now();
        let mut tracker = Tracker::new(config(), 7);
        let obs = |ms: u64| Observation {
            captured: base + Duration::from_millis(ms),
            wall: SystemTime::now(),
            motion: None,
            persons: Some(vec![Detection {
                score: 0.9,
                bbox: bbox(0.0),
            }]),
        };
        tracker.observe(&obs(0), T0_US);
        // NTP steps the clock back an hour.
        tracker.observe(&obs(200), T0_US - 3_600_000_000);
        let got = tracker.finish();
        assert_eq!(got[0].event().id, 7);
        assert_eq!(got[0].event().end_us, Some(T0_US));
    }
}
