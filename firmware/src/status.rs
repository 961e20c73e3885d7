//! What the capture pipeline is doing, for `/api/v1/health`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::camera::SourceInfo;

/// Frames older than this no longer count towards the measured rate.
const FPS_WINDOW: Duration = Duration::from_secs(2);
/// With no frame for this long a running camera is reported as stalled.
const STALL_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Starting,
    Running,
    Stalled,
    Failed,
}

#[derive(Default)]
struct Inner {
    info: Option<SourceInfo>,
    failed: bool,
    frames: u64,
    skipped: u64,
    errors: u64,
    last_error: Option<String>,
    recent: VecDeque<Instant>,
}

/// Shared between the capture threads (writers) and the API (reader).
#[derive(Default)]
pub struct CameraStatus {
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CameraReport {
    pub state: CameraState,
    pub source: Option<&'static str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps_configured: Option<u32>,
    /// Frames a second reaching the live bus over the last two seconds.
    pub fps_measured: f64,
    pub frames: u64,
    pub skipped: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl CameraStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain counters: a panicking writer cannot leave them inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn started(&self, info: SourceInfo) {
        self.lock().info = Some(info);
    }

    pub fn frame_delivered(&self, at: Instant) {
        let mut s = self.lock();
        s.frames += 1;
        s.recent.push_back(at);
        while s
            .recent
            .front()
            .is_some_and(|t| at.duration_since(*t) > FPS_WINDOW)
        {
            s.recent.pop_front();
        }
    }

    pub fn frame_skipped(&self) {
        self.lock().skipped += 1;
    }

    /// Records an error; returns how many there have been, so callers can rate-limit logs.
    pub fn error(&self, message: String) -> u64 {
        let mut s = self.lock();
        s.errors += 1;
        s.last_error = Some(message);
        s.errors
    }

    pub fn failed(&self, message: String) {
        let mut s = self.lock();
        s.failed = true;
        s.last_error = Some(message);
    }

    pub fn report(&self, now: Instant) -> CameraReport {
        let s = self.lock();
        let last = s.recent.back().copied();
        let live: Vec<Instant> = s
            .recent
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) <= FPS_WINDOW)
            .collect();
        let fps_measured = match (live.first(), live.last()) {
            (Some(first), Some(last)) if live.len() >= 2 && last > first => {
                (live.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
            }
            _ => 0.0,
        };
        let state = if s.failed {
            CameraState::Failed
        } else if let Some(last) = last {
            if now.duration_since(last) > STALL_AFTER {
                CameraState::Stalled
            } else {
                CameraState::Running
            }
        } else {
            CameraState::Starting
        };
        CameraReport {
            state,
            source: s.info.map(|i| i.kind),
            width: s.info.map(|i| i.width),
            height: s.info.map(|i| i.height),
            fps_configured: s.info.map(|i| i.fps),
            fps_measured: (fps_measured * 10.0).round() / 10.0,
            frames: s.frames,
            skipped: s.skipped,
            errors: s.errors,
            last_error: s.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_delivered_rate_and_notices_a_stall() {
        let status = CameraStatus::default();
        let t0 = Instant::now();
        assert_eq!(status.report(t0).state, CameraState::Starting);
        for i in 0..=20 {
            status.frame_delivered(t0 + Duration::from_millis(50 * i));
        }
        let r = status.report(t0 + Duration::from_secs(1));
        assert_eq!(r.state, CameraState::Running);
        assert!((r.fps_measured - 20.0).abs() < 0.01, "{}", r.fps_measured);
        let later = status.report(t0 + Duration::from_secs(10));
        assert_eq!(later.state, CameraState::Stalled);
        assert_eq!(later.fps_measured, 0.0);
    }
}
