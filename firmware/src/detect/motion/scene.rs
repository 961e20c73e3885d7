//! Test frames that look like a camera's: a textured, shaded background (a wall, a
//! door, a window), sensor noise on every frame, optional lighting gain, and
//! "people": textured blocks drawn where a test puts them. Deterministic for a seed.

use std::time::{Duration, Instant, SystemTime};

use crate::camera::{BufferPool, Frame, I420};

/// Frame interval of the simulated camera (25 fps).
pub(crate) const FRAME_INTERVAL: Duration = Duration::from_millis(40);

/// Something in front of the background, in frame pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Mean luma.
    pub luma: u8,
    /// Vertical stripes, 3 pixels wide, this much above and below `luma`.
    pub texture: u8,
}

impl Block {
    /// A person-sized block (about 1/13 of the frame wide, 1/4 high) at `(x, y)`.
    pub fn person(scene: &Scene, x: u32, y: u32, luma: u8) -> Self {
        Self {
            x,
            y,
            w: scene.width / 13,
            h: scene.height / 4,
            luma,
            texture: 10,
        }
    }
}

pub(crate) struct Scene {
    pub width: u32,
    pub height: u32,
    background: Vec<u8>,
    pool: BufferPool,
    rng: u64,
    /// Capture time of frame 0.
    pub start: Instant,
    /// Standard deviation of the sensor noise, levels (about).
    pub noise: f32,
}

impl Scene {
    pub fn new(width: u32, height: u32, seed: u64) -> Self {
        let (w, h) = (width as usize, height as usize);
        let mut background = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
                // A wall lit from the left, brick texture, a dark door and a bright
                // window: edges and flat areas of many levels, as in a real view.
                let mut l = 150.0 - 60.0 * u + 20.0 * v;
                if (y / 6 + (x / 12) % 2) % 2 == 0 && (x % 12 == 0 || y % 6 == 0) {
                    l -= 25.0;
                }
                if (0.12..0.30).contains(&u) && v > 0.35 {
                    l = 55.0 + 10.0 * v;
                }
                if (0.60..0.85).contains(&u) && (0.20..0.50).contains(&v) {
                    l = 215.0 - 15.0 * v;
                }
                background[y * w + x] = l.clamp(0.0, 255.0) as u8;
            }
        }
        Self {
            width,
            height,
            background,
            pool: BufferPool::new(I420::len_for(width, height), 16),
            rng: seed,
            start: Instant::now(),
            noise: 2.0,
        }
    }

    /// Repaints the background through `f`: the camera switching to night mode, or
    /// the scene changing for good.
    pub fn repaint(&mut self, f: impl Fn(u8) -> u8) {
        for p in &mut self.background {
            *p = f(*p);
        }
    }

    /// Frame number `index` (captured at `start + index × 40 ms`): the background
    /// times `gain`, then `blocks`, then fresh sensor noise.
    pub fn frame(&mut self, index: u64, blocks: &[Block], gain: f32) -> Frame {
        let buf = self
            .pool
            .take()
            .expect("tests hold fewer frames than the pool has buffers");
        let mut image = I420::new(self.width, self.height, buf);
        let w = self.width as usize;
        let [y_plane, u_plane, v_plane] = image.planes_mut();
        for (dst, &src) in y_plane.iter_mut().zip(&self.background) {
            *dst = (f32::from(src) * gain).min(255.0) as u8;
        }
        for b in blocks {
            let x_end = (b.x + b.w).min(self.width) as usize;
            let y_end = (b.y + b.h).min(self.height) as usize;
            for y in b.y as usize..y_end {
                for x in b.x as usize..x_end {
                    let t = f32::from(b.texture);
                    let stripe = if (x / 3) % 2 == 0 { t } else { -t };
                    y_plane[y * w + x] =
                        ((f32::from(b.luma) + stripe) * gain).clamp(0.0, 255.0) as u8;
                }
            }
        }
        // Roughly Gaussian noise: the sum of three uniform values 0..7 (standard
        // deviation 3.97), scaled.
        let scale = self.noise / 3.97;
        for chunk in y_plane.chunks_mut(5) {
            let mut r = self.next();
            for p in chunk {
                let n = (r & 7) + ((r >> 3) & 7) + ((r >> 6) & 7);
                r >>= 9;
                let noisy = f32::from(*p) + (n as f32 - 10.5) * scale;
                *p = noisy.round().clamp(0.0, 255.0) as u8;
            }
        }
        u_plane.fill(128);
        v_plane.fill(128);
        Frame {
            seq: index,
            captured: self.start + FRAME_INTERVAL * index as u32,
            wall: SystemTime::now(),
            image,
        }
    }

    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
