//! The service's stderr, drained continuously into memory.
//!
//! A background thread keeps reading so the child never blocks on a full pipe (a
//! blocked logger would stall the service and show up as a bogus failure), and tests
//! can wait for a line to appear.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    text: String,
    /// The writer closed its end: the process has exited (or closed stderr).
    closed: bool,
}

#[derive(Clone, Default)]
pub struct LogBuf {
    inner: Arc<(Mutex<State>, Condvar)>,
}

/// Why [`LogBuf::wait_for`] gave up.
pub enum WaitError {
    Closed,
    TimedOut,
}

impl LogBuf {
    /// Starts a thread that appends everything `reader` yields until EOF.
    pub fn drain(reader: impl Read + Send + 'static) -> std::io::Result<Self> {
        let log = Self::default();
        let writer = log.clone();
        thread::Builder::new()
            .name("mecam-stderr".into())
            .spawn(move || writer.pump(reader))?;
        Ok(log)
    }

    fn pump(&self, mut reader: impl Read) {
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.lock()
                        .text
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                    self.inner.1.notify_all();
                }
            }
        }
        self.lock().closed = true;
        self.inner.1.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a String half-appended.
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn text(&self) -> String {
        self.lock().text.clone()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits until `find` returns something for a complete line of the log.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, WaitError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            // Only whole lines: a line still being written could be cut mid-address.
            let complete = match state.text.rfind('\n') {
                Some(end) => &state.text[..end],
                None => "",
            };
            if let Some(found) = complete.lines().find_map(&mut find) {
                return Ok(found);
            }
            if state.closed {
                return Err(WaitError::Closed);
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(WaitError::TimedOut);
            };
            state = self
                .inner
                .1
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The text after `marker` on a log line, trimmed: `... INFO serving HTTPS on X` → `X`.
pub fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker)
        .map(|at| line[at + marker.len()..].trim())
        .filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_on_tracing_lines() {
        let line = "2025-01-01T00:00:00.000000Z  INFO serving HTTPS on https://127.0.0.1:37043";
        assert_eq!(
            after(line, "serving HTTPS on https://"),
            Some("127.0.0.1:37043")
        );
        assert_eq!(after("INFO serving HTTPS on https://", "https://"), None);
        assert_eq!(after("unrelated", "serving HTTPS on"), None);
    }

    #[test]
    fn waits_for_a_complete_line_and_reports_a_closed_pipe() {
        let log = LogBuf::drain(&b"first\nsecond line\npartial"[..]).expect("thread starts");
        let found = log.wait_for(Duration::from_secs(5), |l| {
            after(l, "second").map(str::to_owned)
        });
        assert_eq!(found.ok().as_deref(), Some("line"));
        let partial = log.wait_for(Duration::from_secs(5), |l| {
            after(l, "part").map(str::to_owned)
        });
        assert!(
            matches!(partial, Err(WaitError::Closed)),
            "a line without newline is not complete"
        );
    }
}
