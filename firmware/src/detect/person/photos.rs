//! The shipped model on real photographs (scikit-image's sample images, fetched at test
//! setup by [`testdata`](super::testdata)): people are found where they stand, at the
//! default threshold, and nothing is found where there is nobody.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::testdata::{SKIP_ENV, skimage_frame, skip_requested};
use super::{MODEL_FILE, ModelFiles, PersonDetector, SOURCE_MODEL_DIR};
use crate::camera::Frame;
use crate::config::DetectionConfig;
use crate::detect::{BBox, Detection};

/// Loaded once per test process: every test here needs it, and loading takes seconds
/// in a debug build.
fn detector() -> MutexGuard<'static, PersonDetector> {
    static DETECTOR: OnceLock<Mutex<PersonDetector>> = OnceLock::new();
    DETECTOR
        .get_or_init(|| {
            let model = Path::new(SOURCE_MODEL_DIR).join(MODEL_FILE);
            let files = ModelFiles::locate(Some(&model), None).unwrap();
            Mutex::new(PersonDetector::open(&files).unwrap())
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The picture, or `None` (the test then passes without checking anything) when it
/// cannot be fetched and `MECAM_SKIP_NETWORK_FIXTURES=1` says that is expected.
fn picture(name: &str) -> Option<Frame> {
    match skimage_frame(name) {
        Ok(frame) => Some(frame),
        Err(e) if skip_requested() => {
            eprintln!("skipped ({SKIP_ENV}=1): {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn threshold() -> f32 {
    DetectionConfig::default().person_threshold
}

fn above_threshold(found: &[Detection]) -> Vec<Detection> {
    found
        .iter()
        .copied()
        .filter(|d| d.score >= threshold())
        .collect()
}

fn centre(b: &BBox) -> (f32, f32) {
    (b.x + b.w / 2.0, b.y + b.h / 2.0)
}

/// The one person in `name`, checked to stand with the centre of their box within
/// `x` and `y` (normalised ranges, read off the picture by eye).
fn one_person(
    name: &str,
    region: Option<BBox>,
    x: std::ops::Range<f32>,
    y: std::ops::Range<f32>,
) -> Option<Detection> {
    let frame = picture(name)?;
    let found = detector().detect(&frame, region).unwrap();
    let people = above_threshold(&found);
    assert_eq!(people.len(), 1, "{name}: one person expected: {found:?}");
    let person = people[0];
    let (cx, cy) = centre(&person.bbox);
    assert!(
        x.contains(&cx) && y.contains(&cy),
        "{name}: the person's box {:?} is centred at ({cx:.2}, {cy:.2}), not within \
         x {x:?}, y {y:?}",
        person.bbox
    );
    Some(person)
}

#[test]
fn people_in_photographs_are_found_where_they_stand() {
    // Eileen Collins, seated left of centre, filling the height of the picture.
    let astronaut = one_person("astronaut.png", None, 0.2..0.5, 0.35..0.7);
    // The cameraman, standing left of centre, his head in the upper third.
    let camera = one_person("camera.png", None, 0.15..0.45, 0.35..0.75);
    for person in astronaut.iter().chain(&camera) {
        // A box around a whole person, not around a face or a hand.
        assert!(person.bbox.h > 0.6, "{person:?}");
    }
}

#[test]
fn photographs_without_people_give_nobody_above_the_threshold() {
    for name in ["coffee.png", "chelsea.png", "rocket.jpg"] {
        let Some(frame) = picture(name) else {
            return;
        };
        let found = detector().detect(&frame, None).unwrap();
        assert_eq!(above_threshold(&found), [], "{name}: {found:?}");
    }
}

#[test]
fn a_person_found_in_a_region_is_placed_in_whole_frame_coordinates() {
    let Some(whole) = one_person("astronaut.png", None, 0.2..0.5, 0.35..0.7) else {
        return;
    };
    // A motion region around her upper body: the model sees a crop, the box must
    // still land on her in the whole frame.
    let region = BBox {
        x: 0.05,
        y: 0.05,
        w: 0.6,
        h: 0.6,
    };
    let Some(cropped) = one_person("astronaut.png", Some(region), 0.1..0.6, 0.1..0.7) else {
        return;
    };
    let inside = |b: &BBox| {
        b.x >= region.x - 1e-4
            && b.y >= region.y - 1e-4
            && b.x + b.w <= region.x + region.w + 1e-4
            && b.y + b.h <= region.y + region.h + 1e-4
    };
    assert!(inside(&cropped.bbox), "within the crop: {cropped:?}");
    // Her head and left side are in both views: the boxes share their top-left.
    assert!(
        (cropped.bbox.x - whole.bbox.x).abs() < 0.08
            && (cropped.bbox.y - whole.bbox.y).abs() < 0.08,
        "{cropped:?} vs the whole frame's {whole:?}"
    );
}
