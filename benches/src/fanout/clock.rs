//! Reads the capture time back out of a delivered frame. The synthetic scene draws its
//! capture clock (`YYYY-MM-DD HH:MM:SS.mmm UTC #n`, taken just before the frame is
//! rendered) into every frame. The latency probe reads it to check the server's
//! `X-Timestamp` part header independently — a latency computed from a header that was
//! stamped at the wrong moment would look fine and mean nothing — and falls back on it
//! for servers that send no such header.
//!
//! The digit templates come from the firmware's own renderer, so the reader follows any
//! change to its font or layout instead of copying them.

use anyhow::{Context, Result, ensure};
use mecam::camera::synthetic::SyntheticScene;
use mecam::camera::{BufferPool, I420};

use crate::scene::SEED;

/// A clock string in the scene's format; only the time-of-day digits are read.
const TEMPLATE: &str = "2000-01-01 00:00:00.000 UTC #0";
/// Character positions of H H M M S S m m m in [`TEMPLATE`].
const DIGITS: [usize; 9] = [11, 12, 14, 15, 17, 18, 20, 21, 22];
const MS_PER_DAY: i64 = 86_400_000;

/// Where one character of the clock is drawn, and what each digit looks like there.
struct Slot {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    templates: Vec<Vec<u8>>,
}

pub struct ClockReader {
    width: usize,
    height: usize,
    slots: Vec<Slot>,
}

impl ClockReader {
    pub fn new(width: u32, height: u32) -> Self {
        let scene = SyntheticScene::new(width, height, SEED);
        let pool = BufferPool::new(I420::len_for(width, height), 1);
        let mut image = I420::new(width, height, pool.take().expect("a pool of one"));
        let (w, h) = (width as usize, height as usize);
        let mut luma_with = |position: usize, digit: u8| -> Vec<u8> {
            let mut text = TEMPLATE.as_bytes().to_vec();
            text[position] = b'0' + digit;
            let text = String::from_utf8(text).expect("ASCII");
            scene.render(0, &text, &mut image);
            image.planes()[0].to_vec()
        };
        let slots = DIGITS
            .iter()
            .map(|&position| {
                let lumas: Vec<Vec<u8>> = (0..10).map(|d| luma_with(position, d)).collect();
                // The character's cell: every pixel that differs between any two digits.
                let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
                for luma in &lumas[1..] {
                    for (i, (a, b)) in lumas[0].iter().zip(luma).enumerate() {
                        if a != b {
                            let (x, y) = (i % w, i / w);
                            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                        }
                    }
                }
                assert!(x1 >= x0 && y1 >= y0, "digits must look different");
                let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
                let templates = lumas
                    .iter()
                    .map(|luma| crop(luma, w, x0, y0, cw, ch))
                    .collect();
                Slot {
                    x: x0,
                    y: y0,
                    w: cw,
                    h: ch,
                    templates,
                }
            })
            .collect();
        Self {
            width: w,
            height: h,
            slots,
        }
    }

    /// The capture time of a JPEG frame, in milliseconds since midnight UTC; `None` if
    /// the digits cannot be read with confidence.
    pub fn read_jpeg(&self, jpeg: &[u8]) -> Result<Option<i64>> {
        let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::GRAY)
            .context("decoding a frame")?;
        ensure!(
            (image.width, image.height) == (self.width, self.height),
            "frame is {}x{}, expected {}x{}",
            image.width,
            image.height,
            self.width,
            self.height
        );
        Ok(self.read_luma(&image.pixels, image.pitch))
    }

    /// Like [`Self::read_jpeg`], from a luma plane `stride` bytes wide.
    pub fn read_luma(&self, luma: &[u8], stride: usize) -> Option<i64> {
        let mut digits = [0i64; 9];
        for (slot, digit) in self.slots.iter().zip(&mut digits) {
            let patch = crop(luma, stride, slot.x, slot.y, slot.w, slot.h);
            let mut scores: Vec<(u64, usize)> = slot
                .templates
                .iter()
                .enumerate()
                .map(|(d, t)| (sad(&patch, t), d))
                .collect();
            scores.sort_unstable();
            let (best, second) = (scores[0].0, scores[1].0);
            // JPEG blurs the glyphs a little; a real match is still far closer than the
            // runner-up. A tie means we are not looking at the clock.
            if best * 2 > second {
                return None;
            }
            *digit = scores[0].1 as i64;
        }
        let [h1, h2, m1, m2, s1, s2, f1, f2, f3] = digits;
        let (hours, minutes, seconds) = (h1 * 10 + h2, m1 * 10 + m2, s1 * 10 + s2);
        (hours < 24 && minutes < 60 && seconds < 60)
            .then(|| ((hours * 60 + minutes) * 60 + seconds) * 1000 + f1 * 100 + f2 * 10 + f3)
    }
}

/// Microseconds since the Unix epoch.
pub fn unix_us(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64
}

/// Milliseconds since midnight UTC of a time in µs since the epoch: what the drawn
/// clock shows (truncated, as the overlay truncates).
pub fn ms_of_day(unix_us: i64) -> i64 {
    unix_us.div_euclid(1000).rem_euclid(MS_PER_DAY)
}

/// `later - earlier` for two times of day, across midnight if need be.
pub fn ms_between(earlier: i64, later: i64) -> i64 {
    let d = (later - earlier).rem_euclid(MS_PER_DAY);
    if d > MS_PER_DAY / 2 {
        d - MS_PER_DAY
    } else {
        d
    }
}

fn crop(plane: &[u8], stride: usize, x: usize, y: usize, w: usize, h: usize) -> Vec<u8> {
    (y..y + h)
        .flat_map(|row| &plane[row * stride + x..row * stride + x + w])
        .copied()
        .collect()
}

fn sad(a: &[u8], b: &[u8]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecam::encode::Encoder;
    use mecam::encode::jpeg::TurboJpeg;

    #[test]
    fn reads_the_clock_from_encoded_frames() {
        let reader = ClockReader::new(640, 360);
        let mut encoder = TurboJpeg::new(80).unwrap();
        // Frames 0..60 at 25 fps: 00:00:00.000 to 00:00:02.360, plus later hours.
        let frames = crate::scene::frames(640, 360, 60);
        for (i, frame) in frames.iter().enumerate() {
            let jpeg = encoder.encode(frame).unwrap().data;
            let ms = reader.read_jpeg(&jpeg).unwrap();
            assert_eq!(ms, Some(i as i64 * 40), "frame {i}");
        }
    }

    #[test]
    fn reads_every_digit_in_every_place() {
        let (w, h) = (1280, 720);
        let reader = ClockReader::new(w, h);
        let scene = SyntheticScene::new(w, h, SEED);
        let pool = BufferPool::new(I420::len_for(w, h), 1);
        let mut encoder = TurboJpeg::new(80).unwrap();
        for (clock, ms) in [
            ("2031-07-04 23:59:58.999 UTC #12345", 86_398_999),
            ("2031-07-04 14:36:47.012 UTC #7", 52_607_012),
            ("2031-07-04 05:20:31.864 UTC #0", 19_231_864),
        ] {
            let mut image = I420::new(w, h, pool.take().unwrap());
            scene.render(777, clock, &mut image);
            let frame = mecam::camera::Frame {
                seq: 0,
                captured: std::time::Instant::now(),
                wall: std::time::SystemTime::now(),
                image,
            };
            let jpeg = encoder.encode(&frame).unwrap().data;
            assert_eq!(reader.read_jpeg(&jpeg).unwrap(), Some(ms), "{clock}");
        }
    }

    #[test]
    fn refuses_a_frame_without_a_clock() {
        let reader = ClockReader::new(640, 360);
        assert_eq!(reader.read_luma(&vec![128u8; 640 * 360], 640), None);
    }

    #[test]
    fn time_of_day() {
        // 2026-11-18 11:06:40.123456 UTC
        assert_eq!(ms_of_day(1_795_000_000_123_456), 40_000_123);
    }

    #[test]
    fn intervals_across_midnight() {
        assert_eq!(ms_between(MS_PER_DAY - 10, 5), 15);
        assert_eq!(ms_between(100, 130), 30);
        assert_eq!(ms_between(130, 100), -30);
    }
}
