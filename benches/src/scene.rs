//! Raw frames of the firmware's synthetic scene, rendered directly rather than through
//! `SyntheticSource`: the source paces itself to its frame rate and lends out only four
//! buffers, while a bench wants many distinct frames at once, as fast as possible.

use std::time::{Duration, Instant, SystemTime};

use mecam::camera::synthetic::{SyntheticScene, utc_clock};
use mecam::camera::{BufferPool, Frame, I420};

/// The scene's seed in every bench, so runs and hosts encode the same pictures.
pub const SEED: u64 = 1;

/// 2026-01-01 00:00:00 UTC: a fixed clock for the overlay keeps frames reproducible.
const EPOCH_SECS: u64 = 1_767_225_600;

/// The overlay text of frame `index` at `fps`, formatted as the live source does.
pub fn clock_text(index: u64, fps: u32) -> String {
    let t = SystemTime::UNIX_EPOCH
        + Duration::from_secs(EPOCH_SECS)
        + Duration::from_secs(1) / fps.max(1) * index as u32;
    format!("{} #{}", utc_clock(t), index % 100_000)
}

/// `count` consecutive frames (objects move, the clock ticks) of a `width × height`
/// scene, as they would come from a 25 fps camera.
pub fn frames(width: u32, height: u32, count: usize) -> Vec<Frame> {
    let scene = SyntheticScene::new(width, height, SEED);
    let pool = BufferPool::new(I420::len_for(width, height), count);
    (0..count as u64)
        .map(|index| {
            let buf = pool.take().expect("the pool holds `count` buffers");
            let mut image = I420::new(width, height, buf);
            scene.render(index, &clock_text(index, 25), &mut image);
            Frame {
                seq: index,
                captured: Instant::now(),
                wall: SystemTime::now(),
                image,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_distinct_and_reproducible() {
        let a = frames(64, 48, 3);
        let b = frames(64, 48, 3);
        assert_eq!(a[2].image.as_bytes(), b[2].image.as_bytes());
        assert_ne!(a[0].image.as_bytes(), a[1].image.as_bytes());
        assert_eq!(clock_text(25, 25), "2026-01-01 00:00:01.000 UTC #25");
    }
}
