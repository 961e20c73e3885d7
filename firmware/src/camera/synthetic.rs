//! A generated test scene: a static textured background, a few objects moving on
//! bouncing paths and a clock. Everything but the clock is a function of the seed and
//! the frame number, so tests and benchmarks see the same pictures on every run.

use std::time::{Duration, SystemTime};

use super::font;
use super::frame::{BufferPool, Frame, I420};
use super::pacer::Pacer;
use super::{CameraError, FrameSource, SourceInfo};
use crate::record::layout::civil_from_days;

/// Buffers the scene can have in flight; beyond that frames are skipped.
const POOL_BUFFERS: usize = 4;

struct Mover {
    /// Position and velocity in pixels and pixels per frame.
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    w: u32,
    h: u32,
    yuv: [u8; 3],
}

pub struct SyntheticScene {
    width: u32,
    height: u32,
    fps: u32,
    background: Vec<u8>,
    movers: Vec<Mover>,
}

impl SyntheticScene {
    pub fn new(width: u32, height: u32, seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        let (w, h) = (width as usize, height as usize);
        let mut background = vec![0u8; I420::len_for(width, height)];
        let (y_plane, uv) = background.split_at_mut(w * h);
        // A diagonal gradient with a seeded tile texture: enough detail that the JPEG
        // encoder does real work, like a real scene.
        let tile = 8 + (rng.next() % 24) as usize;
        for row in 0..h {
            for col in 0..w {
                let base = 40 + (row * 120 / h) + (col * 60 / w);
                let texture = if ((row / tile) + (col / tile)).is_multiple_of(2) {
                    12
                } else {
                    0
                };
                y_plane[row * w + col] = (base + texture) as u8;
            }
        }
        let (u_plane, v_plane) = uv.split_at_mut(w * h / 4);
        u_plane.fill(140);
        v_plane.fill(120);

        let movers = (0..3)
            .map(|_| {
                let mw = (width / 10).max(4) + (rng.next() % u64::from(width / 8 + 1)) as u32;
                let mh = (height / 10).max(4) + (rng.next() % u64::from(height / 8 + 1)) as u32;
                Mover {
                    x: (rng.next() % u64::from(width - mw.min(width - 2))) as f32,
                    y: (rng.next() % u64::from(height - mh.min(height - 2))) as f32,
                    vx: 1.0 + (rng.next() % 600) as f32 / 100.0 * width as f32 / 640.0,
                    vy: 1.0 + (rng.next() % 400) as f32 / 100.0 * height as f32 / 480.0,
                    w: mw.min(width - 2) & !1,
                    h: mh.min(height - 2) & !1,
                    yuv: [
                        60 + (rng.next() % 170) as u8,
                        (rng.next() % 256) as u8,
                        (rng.next() % 256) as u8,
                    ],
                }
            })
            .collect();
        Self {
            width,
            height,
            fps: 0,
            background,
            movers,
        }
    }

    /// Draws frame number `index` with `clock` as overlay text into `dst`.
    pub fn render(&self, index: u64, clock: &str, dst: &mut I420) {
        let (w, h) = (self.width as usize, self.height as usize);
        let bytes = self.background.len();
        let [y_plane, u_plane, v_plane] = dst.planes_mut();
        y_plane.copy_from_slice(&self.background[..w * h]);
        u_plane.copy_from_slice(&self.background[w * h..w * h + w * h / 4]);
        v_plane.copy_from_slice(&self.background[w * h + w * h / 4..bytes]);

        for m in &self.movers {
            let x = bounce(m.x + m.vx * index as f32, (self.width - m.w) as f32) as usize & !1;
            let y = bounce(m.y + m.vy * index as f32, (self.height - m.h) as f32) as usize & !1;
            let (mw, mh) = (m.w as usize, m.h as usize);
            for row in y..y + mh {
                y_plane[row * w + x..row * w + x + mw].fill(m.yuv[0]);
            }
            for row in y / 2..(y + mh) / 2 {
                u_plane[row * w / 2 + x / 2..row * w / 2 + (x + mw) / 2].fill(m.yuv[1]);
                v_plane[row * w / 2 + x / 2..row * w / 2 + (x + mw) / 2].fill(m.yuv[2]);
            }
        }

        // The clock: white text on a black band, sized to stay legible at any height.
        let scale = (h / 180).max(1);
        let pad = 2 * scale;
        let band_h = (font::GLYPH_HEIGHT * scale + 2 * pad).min(h);
        let band_w = (font::text_width(clock.chars().count(), scale) + 2 * pad).min(w);
        for row in 0..band_h {
            y_plane[row * w..row * w + band_w].fill(16);
        }
        for row in 0..band_h / 2 {
            u_plane[row * w / 2..row * w / 2 + band_w / 2].fill(128);
            v_plane[row * w / 2..row * w / 2 + band_w / 2].fill(128);
        }
        font::draw_text(y_plane, w, pad, pad, scale, clock, 235);
    }
}

/// Reflects `pos` into `[0, max]`, so objects bounce off the frame's edges.
fn bounce(pos: f32, max: f32) -> f32 {
    if max <= 0.0 {
        return 0.0;
    }
    let period = 2.0 * max;
    let p = pos.rem_euclid(period);
    if p > max { period - p } else { p }
}

/// SplitMix64: a tiny, well-distributed PRNG, plenty for placing test objects.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The synthetic scene as a paced [`FrameSource`].
pub struct SyntheticSource {
    scene: SyntheticScene,
    pool: BufferPool,
    pacer: Pacer,
    seq: u64,
}

impl SyntheticSource {
    pub fn new(width: u32, height: u32, fps: u32, seed: u64) -> Self {
        let mut scene = SyntheticScene::new(width, height, seed);
        scene.fps = fps;
        Self {
            scene,
            pool: BufferPool::new(I420::len_for(width, height), POOL_BUFFERS),
            pacer: Pacer::new(fps),
            seq: 0,
        }
    }
}

impl FrameSource for SyntheticSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "synthetic",
            width: self.scene.width,
            height: self.scene.height,
            fps: self.scene.fps,
        }
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
        let index = self.pacer.wait();
        let Some(buf) = self.pool.take() else {
            return Ok(None);
        };
        let wall = SystemTime::now();
        let mut image = I420::new(self.scene.width, self.scene.height, buf);
        let clock = format!("{} #{}", utc_clock(wall), index % 100_000);
        self.scene.render(index, &clock, &mut image);
        let frame = Frame {
            seq: self.seq,
            captured: std::time::Instant::now(),
            wall,
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` for the overlay, without a date library.
pub fn utc_clock(t: SystemTime) -> String {
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(seed: u64, index: u64) -> Vec<u8> {
        let scene = SyntheticScene::new(320, 240, seed);
        let pool = BufferPool::new(I420::len_for(320, 240), 1);
        let mut img = I420::new(320, 240, pool.take().unwrap());
        scene.render(index, "2026-01-01 00:00:00.000 UTC", &mut img);
        img.as_bytes().to_vec()
    }

    #[test]
    fn same_seed_same_pictures() {
        assert_eq!(render(7, 42), render(7, 42));
    }

    #[test]
    fn different_seeds_and_frames_differ() {
        assert_ne!(render(7, 42), render(8, 42));
        assert_ne!(
            render(7, 42),
            render(7, 43),
            "objects must move between frames"
        );
    }

    #[test]
    fn clock_overlay_changes_the_picture() {
        let scene = SyntheticScene::new(320, 240, 1);
        let pool = BufferPool::new(I420::len_for(320, 240), 2);
        let mut a = I420::new(320, 240, pool.take().unwrap());
        let mut b = I420::new(320, 240, pool.take().unwrap());
        scene.render(0, "00:00:00", &mut a);
        scene.render(0, "00:00:01", &mut b);
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        render(3, 1000);
        let scene = SyntheticScene::new(16, 16, 9);
        let pool = BufferPool::new(I420::len_for(16, 16), 1);
        let mut img = I420::new(16, 16, pool.take().unwrap());
        scene.render(12345, "2026-01-01 00:00:00.000 UTC", &mut img);
    }

    #[test]
    fn utc_clock_formats_known_instants() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(utc_clock(t), "2026-11-18 11:06:40.123 UTC");
        assert_eq!(
            utc_clock(SystemTime::UNIX_EPOCH),
            "1970-01-01 00:00:00.000 UTC"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(&utc_clock(leap)[..10], "2000-02-29");
    }
}
