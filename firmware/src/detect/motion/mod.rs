//! Motion detection on a small luma plane: "did something in the picture change, where,
//! and in which zones?" — cheap enough to run on every analysed frame of a Pi Zero 2 W,
//! and the gate in front of the person model.
//!
//! Per frame ([`MotionDetector::process`]):
//!
//! 1. **Downscale** the Y plane by an integer factor to about `analysis_width` pixels
//!    wide (box filter, aspect kept; 1280×720 → 320×180). Averaging also divides the
//!    sensor noise by the factor.
//! 2. **Lighting.** The gain between this frame and the background is the median of
//!    `frame / background` over a sample of unmasked pixels that were not changing in
//!    the previous frame. A light switched on, a cloud or the camera's auto-exposure
//!    scale most of the picture by one factor; the median ignores the minority of
//!    pixels a person covers. The background is compared (and then rebased) at that
//!    gain, so the lighting step itself is not a change, while a person walking
//!    during it still is. Gains within 1 % of 1 are ignored (noise).
//! 3. **Threshold.** A pixel changed if it differs from the (gain-corrected)
//!    background by more than `max(floor, k × noise)`, where `noise` is a running
//!    mean of the difference over unchanged pixels (it rises at night, when the sensor
//!    amplifies) and `floor` and `k` come from the sensitivity: 0 → 30 levels and
//!    5 × noise, 100 → 5 levels and 2.5 × noise. Masked pixels never change.
//! 4. **Most of the frame changed** (over half the unmasked pixels, after the gain
//!    correction: the camera switched to night mode, was bumped, lights changed
//!    unevenly across the whole view): the background is replaced by this frame and
//!    the frame counts as no motion.
//! 5. **Cleanup**: a 3×3 morphological opening keeps only changed pixels that are part
//!    of a 3×3 changed block, so sensor noise and one-pixel flicker never count.
//! 6. **Area**: changed pixels as a share of the unmasked pixels; below `min_area` it
//!    is not motion. Otherwise the bounding box of the changed pixels and the names
//!    of the zones they touch (config order) make the [`MotionSeen`].
//! 7. **Background update**, a running average whose rate depends on elapsed time
//!    (not frame count, so it behaves the same at 25 and at 2 analysed frames per
//!    second): unchanged pixels follow the scene with a 4 s time constant, changed
//!    pixels with 20 s. A person walking through is never absorbed; one standing
//!    still fades into the background after roughly half a minute, and so does a
//!    parked car (and, after it leaves, the "ghost" where it stood).
//!
//! **Motion, its end, and the cooldown.** A frame "has changed" when step 6 finds
//! enough area. Motion *starts* at a changed frame and goes on as long as changed
//! frames keep coming; frames without change in between are reported as no motion
//! (`None`), but a change within [`MOTION_END_GAP`] (1 s) of the last one belongs to
//! the same motion. After a full second without change the motion has *ended*, at the
//! time of its last changed frame. Then `cooldown` applies: a new motion start is not
//! reported until `cooldown` has passed since that end; changed frames before that
//! are reported as no motion. (They still show in
//! [`MotionDetector::changed_region`], which the detector thread uses to decide where
//! to run the person model, so the cooldown never hides a person.)
//!
//! **Zones** label motion; they do not filter it. With zones set, motion that touches
//! none of them is still reported, with an empty `zones` list. Masks exclude areas
//! entirely.
//!
//! Times come from the frames' capture times, so a test or a replay at any speed sees
//! the same behaviour as the live camera.
//!
//! All buffers are allocated in [`MotionDetector::new`]; processing a frame allocates
//! only the [`MotionSeen`] it returns (the zone names).

mod geometry;
mod image;
#[cfg(test)]
pub(crate) mod scene;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use super::{BBox, MotionSeen};
use crate::camera::Frame;
use crate::config::DetectionConfig;
use geometry::Grid;

/// How wide the analysis image is by default: a person across the yard is still a
/// few pixels wide, and the whole plane fits in the Pi's L2 cache.
pub const DEFAULT_ANALYSIS_WIDTH: u32 = 320;

/// Changed frames closer together than this are one motion; a gap this long ends it.
pub const MOTION_END_GAP: Duration = Duration::from_secs(1);

/// Smallest analysis image side: below this the 3×3 cleanup erases everything.
const MIN_ANALYSIS_SIDE: usize = 16;
/// Largest analysis width: beyond it a frame costs more than the gate saves (and the
/// noise sum could overflow).
const MAX_ANALYSIS_WIDTH: u32 = 1280;
/// Largest downscale factor (the u16 column sums of the box filter hold 16×16 pixels).
const MAX_FACTOR: usize = 16;
/// Time constants of the background, seconds: for pixels that look like background,
/// and for pixels that are changing (slow, so a person is not learnt).
const TAU_BACKGROUND: f32 = 4.0;
const TAU_CHANGING: f32 = 20.0;
/// Time constant of the noise estimate, seconds.
const TAU_NOISE: f32 = 2.0;
/// The noise estimate before the first comparison (mean absolute difference, levels).
const INITIAL_NOISE: f32 = 1.5;
/// No threshold goes above this many levels, whatever the noise.
const MAX_THRESHOLD: f32 = 60.0;
/// Share of the unmasked frame that, changed at once, is a global change.
const GLOBAL_CHANGE: u32 = 2; // more than 1/2
/// Gains closer to 1 than this are noise, not lighting.
const GAIN_DEADBAND: f32 = 0.01;
/// Gain histogram: bin `i` holds ratios around `i / GAIN_STEPS`, up to 4×.
const GAIN_STEPS: f32 = 256.0;
const GAIN_BINS: usize = 1024;
/// Fewer usable samples than this (a dark or saturated picture): assume no gain change.
const MIN_GAIN_SAMPLES: u32 = 32;
/// Luma at or above this is (near) clipping: it does not scale with the light.
const SATURATED: u8 = 250;
/// Fixed-point scale of the summed noise (1/16 level).
const NOISE_SCALE: f32 = 16.0;

/// A polygon in normalised frame coordinates (0..1, origin top-left), corners in
/// drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon(pub Vec<(f32, f32)>);

/// A named area; motion reports the zones it touches.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub polygon: Polygon,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MotionConfig {
    /// 0 (only large, strong changes) to 100 (the slightest change).
    pub sensitivity: u8,
    /// Smallest changed share of the unmasked frame (0..1) that counts as motion.
    pub min_area: f32,
    /// After motion ends, a new motion start is not reported before this has passed
    /// (see the module documentation).
    pub cooldown: Duration,
    /// Approximate width of the analysis image; frames are shrunk by an integer factor.
    pub analysis_width: u32,
    /// Areas ignored entirely (a road, a tree).
    pub masks: Vec<Polygon>,
    /// Named areas motion is labelled with.
    pub zones: Vec<Zone>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self::from(&DetectionConfig::default())
    }
}

impl From<&DetectionConfig> for MotionConfig {
    fn from(d: &DetectionConfig) -> Self {
        Self {
            sensitivity: d.sensitivity,
            min_area: d.min_area,
            cooldown: d.cooldown,
            analysis_width: DEFAULT_ANALYSIS_WIDTH,
            masks: d.masks.iter().map(|p| Polygon(p.clone())).collect(),
            zones: d
                .zones
                .iter()
                .map(|(name, p)| Zone {
                    name: name.clone(),
                    polygon: Polygon(p.clone()),
                })
                .collect(),
        }
    }
}

impl MotionConfig {
    /// Checks everything that does not depend on the frame size: value ranges, zone
    /// names, and that every mask and zone is a real polygon inside the frame.
    pub fn validate(&self) -> Result<(), MotionError> {
        if self.sensitivity > 100 {
            return Err(MotionError::Sensitivity(self.sensitivity));
        }
        if !(0.0..=1.0).contains(&self.min_area) {
            return Err(MotionError::MinArea(self.min_area));
        }
        if (self.analysis_width as usize) < MIN_ANALYSIS_SIDE
            || self.analysis_width > MAX_ANALYSIS_WIDTH
        {
            return Err(MotionError::AnalysisWidth(self.analysis_width));
        }
        for (index, mask) in self.masks.iter().enumerate() {
            mask.check()
                .map_err(|problem| MotionError::Mask { index, problem })?;
        }
        for (index, zone) in self.zones.iter().enumerate() {
            if zone.name.trim().is_empty() {
                return Err(MotionError::ZoneName { index });
            }
            if self.zones[..index].iter().any(|z| z.name == zone.name) {
                return Err(MotionError::DuplicateZone(zone.name.clone()));
            }
            zone.polygon.check().map_err(|problem| MotionError::Zone {
                name: zone.name.clone(),
                problem,
            })?;
        }
        Ok(())
    }
}

/// What is wrong with a mask or zone outline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolygonProblem {
    #[error("has {0} corners, and an area needs at least 3")]
    TooFewPoints(usize),
    #[error("corner {index} ({x}, {y}) is outside the frame (x and y must be from 0 to 1)")]
    OutsideFrame { index: usize, x: f32, y: f32 },
    #[error("encloses no area (its corners are on one line or repeated)")]
    NoArea,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MotionError {
    #[error("motion zone `{name}` {problem}; draw it again with at least three corners")]
    Zone {
        name: String,
        problem: PolygonProblem,
    },
    #[error(
        "motion mask {} {problem}; draw it again with at least three corners",
        index + 1
    )]
    Mask {
        index: usize,
        problem: PolygonProblem,
    },
    #[error("motion zone {} has no name; give every zone a name", index + 1)]
    ZoneName { index: usize },
    #[error("two motion zones are named `{0}`; give each zone its own name")]
    DuplicateZone(String),
    #[error("motion sensitivity {0} is out of range; use 0 to 100")]
    Sensitivity(u8),
    #[error("motion minimum area {0} is out of range; use a share of the frame from 0 to 1")]
    MinArea(f32),
    #[error(
        "motion analysis width {0} is out of range; use {MIN_ANALYSIS_SIDE} to {MAX_ANALYSIS_WIDTH}"
    )]
    AnalysisWidth(u32),
    #[error(
        "a {width}×{height} frame is too small for motion detection \
         (at least {MIN_ANALYSIS_SIDE}×{MIN_ANALYSIS_SIDE})"
    )]
    FrameTooSmall { width: u32, height: u32 },
    #[error(
        "the motion masks cover the whole frame, leaving nothing to watch; shrink or remove one"
    )]
    AllMasked,
}

/// The changed area of one frame, before the cooldown decides whether to report it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Change {
    region: BBox,
    area: f32,
}

/// Where the current motion stands (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Episode {
    /// No motion; the last one ended at this time (if any).
    Idle { ended: Option<Instant> },
    /// Motion, last changed frame at this time.
    Active { last_change: Instant },
}

/// Threshold parameters from the sensitivity.
#[derive(Debug, Clone, Copy)]
struct Sensitivity {
    floor: f32,
    noise_factor: f32,
}

impl Sensitivity {
    fn new(sensitivity: u8) -> Self {
        let dull = f32::from(100 - sensitivity.min(100));
        Self {
            floor: 5.0 + 0.25 * dull,
            noise_factor: 2.5 + 0.025 * dull,
        }
    }

    fn threshold(self, noise: f32) -> f32 {
        (self.noise_factor * noise)
            .max(self.floor)
            .min(MAX_THRESHOLD)
    }
}

/// The masks and zones at the analysis size: one byte per pixel (0 or 1), so applying
/// them is a plain AND the compiler vectorises.
struct Areas {
    /// 1 where motion counts, 0 under a mask.
    watch: Vec<u8>,
    unmasked: u32,
    zones: Vec<(String, Vec<u8>)>,
}

/// The background model and its per-frame scratch.
struct Background {
    /// Running average of the scene, in luma levels (not clamped to 255, so a
    /// brightening step and its reverse cancel out).
    mean: Vec<f32>,
    /// This frame's change mask (0/1); until overwritten, the previous frame's.
    changed: Vec<u8>,
    scratch: Vec<u8>,
    gains: Vec<u32>,
    /// Running mean absolute difference of unchanged pixels, levels.
    noise: f32,
    /// `noise` has been measured at least once (the first measurement replaces the
    /// initial guess instead of averaging with it).
    noise_measured: bool,
}

/// Finds motion in frames of one size. See the module documentation.
pub struct MotionDetector {
    frame_size: (u32, u32),
    factor: usize,
    grid: Grid,
    /// The downscaled luma (unused when the factor is 1: the Y plane is read directly).
    small: Vec<u8>,
    column_sums: Vec<u16>,
    areas: Areas,
    background: Background,
    sensitivity: Sensitivity,
    min_area: f32,
    cooldown: Duration,
    previous: Option<Instant>,
    episode: Episode,
    change: Option<Change>,
    touched: Vec<bool>,
    warned_size: bool,
}

impl std::fmt::Debug for MotionDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotionDetector")
            .field("frame_size", &self.frame_size)
            .field("analysis_size", &self.analysis_size())
            .field("episode", &self.episode)
            .finish_non_exhaustive()
    }
}

impl MotionDetector {
    /// A detector for frames of `frame_width × frame_height`. Fails on a config that
    /// [`MotionConfig::validate`] refuses, a frame too small to analyse, or masks that
    /// leave no pixel to watch.
    pub fn new(
        config: &MotionConfig,
        frame_width: u32,
        frame_height: u32,
    ) -> Result<Self, MotionError> {
        config.validate()?;
        let too_small = MotionError::FrameTooSmall {
            width: frame_width,
            height: frame_height,
        };
        let (fw, fh) = (frame_width as usize, frame_height as usize);
        let factor =
            ((fw as f32 / config.analysis_width as f32).round() as usize).clamp(1, MAX_FACTOR);
        let (width, height) = (fw / factor, fh / factor);
        if width < MIN_ANALYSIS_SIDE || height < MIN_ANALYSIS_SIDE {
            return Err(too_small);
        }
        let grid = Grid {
            width,
            height,
            step_x: factor as f32 / fw as f32,
            step_y: factor as f32 / fh as f32,
        };
        let n = width * height;

        let mut watch = vec![1u8; n];
        for mask in &config.masks {
            grid.fill(mask, &mut watch, 0);
        }
        let unmasked = watch.iter().map(|&w| u32::from(w)).sum::<u32>();
        if unmasked == 0 {
            return Err(MotionError::AllMasked);
        }
        let zones = config
            .zones
            .iter()
            .map(|zone| {
                let mut mask = vec![0u8; n];
                grid.fill(&zone.polygon, &mut mask, 1);
                (zone.name.clone(), mask)
            })
            .collect::<Vec<_>>();

        Ok(Self {
            frame_size: (frame_width, frame_height),
            factor,
            grid,
            small: if factor > 1 { vec![0; n] } else { Vec::new() },
            column_sums: vec![0; width * factor],
            touched: vec![false; zones.len()],
            areas: Areas {
                watch,
                unmasked,
                zones,
            },
            background: Background {
                mean: vec![0.0; n],
                changed: vec![0; n],
                scratch: vec![0; n],
                gains: vec![0; GAIN_BINS],
                noise: INITIAL_NOISE,
                noise_measured: false,
            },
            sensitivity: Sensitivity::new(config.sensitivity),
            min_area: config.min_area,
            cooldown: config.cooldown,
            previous: None,
            episode: Episode::Idle { ended: None },
            change: None,
            warned_size: false,
        })
    }

    /// Width and height of the analysis image.
    pub fn analysis_size(&self) -> (u32, u32) {
        (self.grid.width as u32, self.grid.height as u32)
    }

    /// The frame size this detector was made for.
    pub fn frame_size(&self) -> (u32, u32) {
        self.frame_size
    }

    /// Analyses one frame; `Some` when it shows motion to report (after the cooldown
    /// rule). The first frame only starts the background. A frame of another size
    /// than the detector was made for is ignored (with one warning).
    pub fn process(&mut self, frame: &Frame) -> Option<MotionSeen> {
        self.change = None;
        let size = (frame.image.width(), frame.image.height());
        if size != self.frame_size {
            if !self.warned_size {
                self.warned_size = true;
                tracing::warn!(
                    expected = ?self.frame_size,
                    got = ?size,
                    "motion detection skips frames of another size"
                );
            }
            return None;
        }
        let now = frame.captured;
        let [luma, _, _] = frame.image.planes();
        let (width, n) = (self.grid.width, self.grid.width * self.grid.height);
        let current: &[u8] = if self.factor == 1 {
            &luma[..n]
        } else {
            image::downscale(
                luma,
                self.frame_size.0 as usize,
                self.factor,
                &mut self.small,
                width,
                &mut self.column_sums,
            );
            &self.small
        };

        let Some(previous) = self.previous.replace(now) else {
            for (m, &c) in self.background.mean.iter_mut().zip(current) {
                *m = f32::from(c);
            }
            return None;
        };
        // Frames with equal (or out-of-order) times still learn a little.
        let dt = now
            .saturating_duration_since(previous)
            .max(Duration::from_millis(1))
            .as_secs_f32();
        let changed = self
            .background
            .update(current, &self.areas, self.sensitivity, dt, width);
        if changed {
            self.change = measure(
                &self.background.changed,
                &self.areas,
                &self.grid,
                &mut self.touched,
            )
            .filter(|c| c.area >= self.min_area && c.area > 0.0);
        }
        self.advance(now)
    }

    /// The changed area of the last processed frame when it was large enough to be
    /// motion, also when the cooldown kept it from being reported.
    pub fn changed_region(&self) -> Option<BBox> {
        self.change.map(|c| c.region)
    }

    /// Moves the motion state on by one frame and says what to report.
    fn advance(&mut self, now: Instant) -> Option<MotionSeen> {
        let cooled = |ended: Option<Instant>| {
            ended.is_none_or(|e| now.saturating_duration_since(e) >= self.cooldown)
        };
        let report = match (self.episode, self.change) {
            (Episode::Active { .. }, Some(_)) => true,
            (Episode::Idle { ended }, Some(_)) => cooled(ended),
            (Episode::Active { last_change }, None) => {
                if now.saturating_duration_since(last_change) >= MOTION_END_GAP {
                    self.episode = Episode::Idle {
                        ended: Some(last_change),
                    };
                }
                false
            }
            (Episode::Idle { .. }, None) => false,
        };
        let change = self.change.filter(|_| report)?;
        self.episode = Episode::Active { last_change: now };
        Some(MotionSeen {
            region: change.region,
            area: change.area,
            zones: self
                .areas
                .zones
                .iter()
                .zip(&self.touched)
                .filter(|(_, t)| **t)
                .map(|((name, _), _)| name.clone())
                .collect(),
        })
    }
}

impl Background {
    /// Compares `current` with the background, leaves the cleaned change mask in
    /// `self.changed`, and learns. Returns whether any pixel changed.
    fn update(
        &mut self,
        current: &[u8],
        areas: &Areas,
        sensitivity: Sensitivity,
        dt: f32,
        width: usize,
    ) -> bool {
        let gain = self.gain(current, &areas.watch, width);
        let threshold = sensitivity.threshold(self.noise);

        // Row by row, so the inner loop (plain lanes of i32/f32/u8, no branches)
        // vectorises and its i32 sums cannot overflow.
        let (mut changed, mut noise_sum) = (0u32, 0u64);
        for (((changed_row, mean_row), current_row), watch_row) in self
            .changed
            .chunks_exact_mut(width)
            .zip(self.mean.chunks_exact(width))
            .zip(current.chunks_exact(width))
            .zip(areas.watch.chunks_exact(width))
        {
            let (mut row_changed, mut row_noise) = (0u32, 0i32);
            for (((c, &m), &cur), &keep) in changed_row
                .iter_mut()
                .zip(mean_row)
                .zip(current_row)
                .zip(watch_row)
            {
                let d = (f32::from(cur) - (m * gain).min(255.0)).abs();
                let watched = keep != 0;
                let hit = (d > threshold) & watched;
                *c = u8::from(hit);
                row_changed += u32::from(hit);
                // Truncated at the threshold: the noise of unchanged pixels.
                let q = fixed_point(d.min(threshold));
                row_noise += if watched & !hit { q } else { 0 };
            }
            changed += row_changed;
            noise_sum += row_noise as u64;
        }

        if changed > areas.unmasked / GLOBAL_CHANGE {
            tracing::debug!(
                changed_share = changed as f32 / areas.unmasked as f32,
                gain,
                "most of the picture changed at once: background replaced"
            );
            for (m, &cur) in self.mean.iter_mut().zip(current) {
                *m = f32::from(cur);
            }
            self.changed.fill(0);
            return false;
        }

        let quiet = areas.unmasked - changed;
        if quiet > 0 {
            let mean = noise_sum as f32 / NOISE_SCALE / quiet as f32;
            if self.noise_measured {
                self.noise += (mean - self.noise) * rate(dt, TAU_NOISE);
            } else {
                self.noise = mean;
                self.noise_measured = true;
            }
        }
        if changed > 0 {
            image::open3x3(&mut self.changed, &mut self.scratch, &areas.watch, width);
        }

        let (learn, learn_changing) = (rate(dt, TAU_BACKGROUND), rate(dt, TAU_CHANGING));
        for ((m, &cur), &c) in self.mean.iter_mut().zip(current).zip(&self.changed) {
            let a = if c != 0 { learn_changing } else { learn };
            let predicted = *m * gain;
            // A saturated pixel says only "at least this bright": learning its clipped
            // value would make a window that was overexposed while a lamp was on
            // look darker than the background once the lamp goes off.
            let seen = f32::from(cur);
            let target = if cur >= SATURATED {
                seen.max(predicted)
            } else {
                seen
            };
            *m = predicted + (target - predicted) * a;
        }
        changed > 0
    }

    /// The lighting gain of `current` over the background: the median of their ratio
    /// over a sample of watched pixels that did not change in the previous frame,
    /// leaving out the too dark (ratios of noise) and the saturated (clipped, not
    /// scaled). 1 when the sample is too small or the gain within the dead band.
    fn gain(&mut self, current: &[u8], watch: &[u8], width: usize) -> f32 {
        self.gains.fill(0);
        let mut samples = 0u32;
        // Every 8th pixel of every other row, staggered: 1/16 of the picture, 4800
        // samples at 320×240, plenty for a median.
        for (y, row) in current.chunks_exact(width).enumerate().step_by(2) {
            let start = y * width;
            for x in ((y / 2) % 8..width).step_by(8) {
                let i = start + x;
                let (m, cur) = (self.mean[i], row[x]);
                if watch[i] == 0 || self.changed[i] != 0 || !(16.0..=240.0).contains(&m) {
                    continue;
                }
                if cur >= SATURATED {
                    continue;
                }
                let bin = (f32::from(cur) * GAIN_STEPS / m + 0.5) as usize;
                self.gains[bin.min(GAIN_BINS - 1)] += 1;
                samples += 1;
            }
        }
        if samples < MIN_GAIN_SAMPLES {
            return 1.0;
        }
        let mut seen = 0;
        let median = self
            .gains
            .iter()
            .position(|&count| {
                seen += count;
                seen > samples / 2
            })
            .unwrap_or(GAIN_BINS / 4);
        let gain = median as f32 / GAIN_STEPS;
        if (gain - 1.0).abs() < GAIN_DEADBAND {
            1.0
        } else {
            gain
        }
    }
}

/// `x × NOISE_SCALE` as an integer, for `x` from 0 to [`MAX_THRESHOLD`]. Rust's `as`
/// conversion saturates and maps NaN to 0, and those checks keep the compiler from
/// vectorising the loop around it; here they are never needed.
#[inline(always)]
fn fixed_point(x: f32) -> i32 {
    let scaled = x.clamp(0.0, MAX_THRESHOLD) * NOISE_SCALE;
    // SAFETY: `clamp` returns a value in 0..=MAX_THRESHOLD for any finite or infinite
    // `x` (and `x` is never NaN: it is the `min` of a difference and a finite
    // threshold, which returns the threshold for NaN), so `scaled` is finite and
    // within 0..=960, representable as i32.
    unsafe { scaled.to_int_unchecked::<i32>() }
}

/// Share of the way a running average moves towards a new value after `dt` seconds,
/// for time constant `tau`: the same learning per second at any frame rate.
fn rate(dt: f32, tau: f32) -> f32 {
    1.0 - (-dt / tau).exp()
}

/// Area, bounding box and zones of the cleaned change mask; `touched[z]` is set for
/// each zone the change touches. `None` when nothing survived the cleanup.
fn measure(changed: &[u8], areas: &Areas, grid: &Grid, touched: &mut [bool]) -> Option<Change> {
    let width = grid.width;
    touched.fill(false);
    let (mut count, mut x0, mut y0, mut x1, mut y1) = (0u32, usize::MAX, usize::MAX, 0, 0);
    for (y, row) in changed.chunks_exact(width).enumerate() {
        let n: u32 = row.iter().map(|&c| u32::from(c)).sum();
        if n == 0 {
            continue;
        }
        count += n;
        y0 = y0.min(y);
        y1 = y;
        x0 = x0.min(row.iter().position(|&c| c != 0).unwrap_or(0));
        x1 = x1.max(row.iter().rposition(|&c| c != 0).unwrap_or(0));
        for (t, (_, zone)) in touched.iter_mut().zip(&areas.zones) {
            if !*t {
                let zone_row = &zone[y * width..(y + 1) * width];
                *t = row
                    .iter()
                    .zip(zone_row)
                    .fold(0, |acc, (&c, &z)| acc | (c & z))
                    != 0;
            }
        }
    }
    (count > 0).then(|| Change {
        region: BBox {
            x: x0 as f32 * grid.step_x,
            y: y0 as f32 * grid.step_y,
            w: (x1 + 1 - x0) as f32 * grid.step_x,
            h: (y1 + 1 - y0) as f32 * grid.step_y,
        },
        area: count as f32 / areas.unmasked as f32,
    })
}
