//! Frame pacing for sources that are not paced by hardware (synthetic, replay).

use std::time::{Duration, Instant};

/// Sleeps until each frame is due. Deadlines advance by exactly one interval, so
/// sleep jitter never accumulates into drift. If the caller falls more than a frame
/// behind (a stalled thread, a suspended laptop), the schedule restarts from now
/// instead of bursting to catch up.
pub struct Pacer {
    interval: Duration,
    next_due: Instant,
    index: u64,
}

impl Pacer {
    pub fn new(fps: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / fps.max(1),
            next_due: Instant::now(),
            index: 0,
        }
    }

    /// Blocks until the next frame is due and returns how many frames were due before.
    pub fn wait(&mut self) -> u64 {
        let now = Instant::now();
        if let Some(wait) = self.next_due.checked_duration_since(now) {
            std::thread::sleep(wait);
            self.next_due += self.interval;
        } else if now - self.next_due > self.interval {
            self.next_due = now + self.interval;
        } else {
            self.next_due += self.interval;
        }
        let index = self.index;
        self.index += 1;
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_instead_of_bursting_after_a_stall() {
        let mut p = Pacer::new(1000);
        p.wait();
        std::thread::sleep(Duration::from_millis(20));
        p.wait();
        // After the stall, the next frame is due one interval from now, not 20 in a row
        // immediately: the deadline is in the future.
        assert!(p.next_due > Instant::now());
        assert_eq!(p.index, 2);
    }
}
