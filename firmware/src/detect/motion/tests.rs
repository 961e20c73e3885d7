use super::scene::{Block, Scene};
use super::*;

const W: u32 = 320;
const H: u32 = 240;

fn config() -> MotionConfig {
    MotionConfig {
        cooldown: Duration::ZERO,
        ..MotionConfig::default()
    }
}

fn square(x0: f32, y0: f32, x1: f32, y1: f32) -> Polygon {
    Polygon(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
}

/// Runs frames `range` of `scene` through `detector`, with the blocks `blocks(i)` and
/// lighting gain `gain(i)` in frame `i`; what it reported and what changed, per frame.
fn run(
    detector: &mut MotionDetector,
    scene: &mut Scene,
    range: impl IntoIterator<Item = u64>,
    blocks: impl Fn(u64) -> Vec<Block>,
    gain: impl Fn(u64) -> f32,
) -> Vec<(u64, Option<MotionSeen>, Option<BBox>)> {
    range
        .into_iter()
        .map(|i| {
            let frame = scene.frame(i, &blocks(i), gain(i));
            let seen = detector.process(&frame);
            (i, seen, detector.changed_region())
        })
        .collect()
}

fn still(_: u64) -> Vec<Block> {
    Vec::new()
}

fn unlit(_: u64) -> f32 {
    1.0
}

/// Frames in which motion was reported.
fn reported(results: &[(u64, Option<MotionSeen>, Option<BBox>)]) -> Vec<u64> {
    results
        .iter()
        .filter(|(_, seen, _)| seen.is_some())
        .map(|(i, _, _)| *i)
        .collect()
}

/// `region` covers `block` and extends past it by at most `slack` frame pixels.
fn fits(region: BBox, block: Block, scene: &Scene, slack: f32) -> bool {
    let (fw, fh) = (scene.width as f32, scene.height as f32);
    let (x0, y0) = (region.x * fw, region.y * fh);
    let (x1, y1) = ((region.x + region.w) * fw, (region.y + region.h) * fh);
    let (bx0, by0) = (block.x as f32, block.y as f32);
    let (bx1, by1) = (bx0 + block.w as f32, by0 + block.h as f32);
    let within = |inner: f32, outer: f32| (outer - inner).abs() <= slack;
    within(bx0, x0) && within(by0, y0) && within(bx1, x1) && within(by1, y1)
}

/// A person in dark clothes walking right from `x` at 4 pixels a frame, starting at
/// frame `from`.
fn walker(scene: &Scene, from: u64, x: u32, y: u32) -> impl Fn(u64) -> Vec<Block> + use<> {
    let template = Block::person(scene, x, y, 20);
    move |i| {
        if i < from {
            return Vec::new();
        }
        vec![Block {
            x: template.x + 4 * (i - from) as u32,
            ..template
        }]
    }
}

#[test]
fn a_still_scene_with_sensor_noise_is_not_motion() {
    for sensitivity in [60, 100] {
        let mut scene = Scene::new(W, H, 1);
        scene.noise = 3.0;
        let mut detector = MotionDetector::new(
            &MotionConfig {
                sensitivity,
                ..config()
            },
            W,
            H,
        )
        .unwrap();
        let results = run(&mut detector, &mut scene, 0..100, still, unlit);
        assert_eq!(
            reported(&results),
            Vec::<u64>::new(),
            "sensitivity {sensitivity}"
        );
        assert!(
            results.iter().all(|(_, _, changed)| changed.is_none()),
            "sensitivity {sensitivity}: nothing may even gate the person model"
        );
    }
}

#[test]
fn a_moving_person_is_motion_where_they_are() {
    let mut scene = Scene::new(W, H, 2);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let walk = walker(&scene, 20, 20, 100);
    let results = run(&mut detector, &mut scene, 0..60, &walk, unlit);
    assert_eq!(reported(&results), (20..60).collect::<Vec<_>>());
    for (i, seen, _) in &results[20..] {
        let seen = seen.as_ref().unwrap();
        let block = walk(*i)[0];
        assert!(
            fits(seen.region, block, &scene, 2.0),
            "frame {i}: {:?} for the block at {block:?}",
            seen.region
        );
        let block_area = (block.w * block.h) as f32 / (W * H) as f32;
        assert!(
            (seen.area - block_area).abs() < 0.3 * block_area,
            "frame {i}: area {} for a block of {block_area}",
            seen.area
        );
        assert!(seen.zones.is_empty(), "no zones configured");
    }
}

#[test]
fn a_standing_person_stays_motion_for_seconds() {
    let mut scene = Scene::new(W, H, 3);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    // Walks in for 10 frames, then stands still for 3 s.
    let walk = walker(&scene, 10, 100, 80);
    let stand = |i: u64| walk(i.min(20));
    let results = run(&mut detector, &mut scene, 0..95, stand, unlit);
    assert_eq!(reported(&results), (10..95).collect::<Vec<_>>());
}

#[test]
fn frames_from_a_larger_camera_are_downscaled_and_boxes_are_in_frame_coordinates() {
    let mut scene = Scene::new(640, 480, 4);
    let mut detector = MotionDetector::new(&config(), 640, 480).unwrap();
    assert_eq!(detector.analysis_size(), (320, 240));
    let walk = walker(&scene, 10, 300, 200);
    let results = run(&mut detector, &mut scene, 0..25, &walk, unlit);
    assert_eq!(reported(&results), (10..25).collect::<Vec<_>>());
    let (_, seen, _) = &results[24];
    let region = seen.as_ref().unwrap().region;
    assert!(fits(region, walk(24)[0], &scene, 4.0), "{region:?}");

    // Other sizes shrink by whole factors to about 320 wide.
    let size = |w, h| {
        MotionDetector::new(&config(), w, h)
            .unwrap()
            .analysis_size()
    };
    assert_eq!(size(1280, 720), (320, 180));
    assert_eq!(size(1920, 1080), (320, 180));
    assert_eq!(size(320, 240), (320, 240));
}

#[test]
fn a_frame_of_another_size_is_ignored() {
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let mut other = Scene::new(160, 120, 5);
    let walk = walker(&other, 0, 10, 10);
    for i in 0..3 {
        assert_eq!(detector.process(&other.frame(i, &walk(i), 1.0)), None);
    }
}

#[test]
fn zones_name_what_the_motion_touches() {
    let zoned = MotionConfig {
        zones: vec![
            Zone {
                name: "door".into(),
                polygon: square(0.1, 0.3, 0.4, 1.0),
            },
            Zone {
                name: "window".into(),
                polygon: square(0.55, 0.1, 0.9, 0.55),
            },
        ],
        ..config()
    };

    // Inside the door zone only: x 0.16..0.36, y 0.5..0.75.
    let mut scene = Scene::new(W, H, 6);
    let mut detector = MotionDetector::new(&zoned, W, H).unwrap();
    let walk = walker(&scene, 10, 50, 120);
    let results = run(&mut detector, &mut scene, 0..20, walk, unlit);
    assert_eq!(reported(&results), (10..20).collect::<Vec<_>>());
    for (i, seen, _) in &results[10..] {
        assert_eq!(seen.as_ref().unwrap().zones, ["door"], "frame {i}");
    }

    // Between the zones: still motion, touching none.
    let mut scene = Scene::new(W, H, 7);
    let mut detector = MotionDetector::new(&zoned, W, H).unwrap();
    let walk = walker(&scene, 10, 140, 170);
    let results = run(&mut detector, &mut scene, 0..15, walk, unlit);
    assert_eq!(reported(&results), (10..15).collect::<Vec<_>>());
    for (_, seen, _) in &results[10..] {
        assert!(seen.as_ref().unwrap().zones.is_empty());
    }

    // Walking from the door zone into the window zone's column, both are touched once
    // the person spans them.
    let mut scene = Scene::new(W, H, 8);
    let mut detector = MotionDetector::new(&zoned, W, H).unwrap();
    let tall = |i: u64| {
        (i >= 10)
            .then(|| Block {
                x: 40 + 3 * (i - 10) as u32,
                y: 60,
                w: 90,
                h: 150,
                luma: 90,
                texture: 10,
            })
            .into_iter()
            .collect()
    };
    let results = run(&mut detector, &mut scene, 0..30, tall, unlit);
    let zones: Vec<Vec<String>> = results[10..]
        .iter()
        .map(|(_, seen, _)| seen.as_ref().unwrap().zones.clone())
        .collect();
    assert_eq!(zones[0], ["door"]);
    assert_eq!(zones[19], ["door", "window"]);
}

#[test]
fn a_lighting_step_is_not_motion_and_motion_after_it_still_is() {
    for gain in [1.5, 0.6] {
        let mut scene = Scene::new(W, H, 9);
        let mut detector = MotionDetector::new(&config(), W, H).unwrap();
        let lights = move |i: u64| if i < 30 { 1.0 } else { gain };
        let results = run(&mut detector, &mut scene, 0..80, still, lights);
        assert_eq!(reported(&results), Vec::<u64>::new(), "gain {gain}");
        assert!(results.iter().all(|(_, _, c)| c.is_none()), "gain {gain}");

        let walk = walker(&scene, 80, 40, 40);
        let results = run(&mut detector, &mut scene, 80..90, walk, lights);
        assert_eq!(
            reported(&results),
            (80..90).collect::<Vec<_>>(),
            "gain {gain}"
        );
    }
}

#[test]
fn a_person_walking_through_a_lighting_step_stays_motion() {
    let mut scene = Scene::new(W, H, 16);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let walk = walker(&scene, 20, 30, 110);
    let lights = |i: u64| if i < 40 { 1.0 } else { 1.4 };
    let results = run(&mut detector, &mut scene, 0..60, &walk, lights);
    assert_eq!(reported(&results), (20..60).collect::<Vec<_>>());
    let (_, seen, _) = &results[40];
    let region = seen.as_ref().unwrap().region;
    assert!(fits(region, walk(40)[0], &scene, 2.0), "{region:?}");
}

#[test]
fn the_whole_picture_changing_at_once_is_not_motion() {
    // The camera switches to night mode: every level changes, not by one factor.
    let mut scene = Scene::new(W, H, 17);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let results = run(&mut detector, &mut scene, 0..20, still, unlit);
    assert_eq!(reported(&results), Vec::<u64>::new());
    scene.repaint(|l| 255 - l / 2);
    let results = run(&mut detector, &mut scene, 20..40, still, unlit);
    assert_eq!(reported(&results), Vec::<u64>::new());

    let walk = walker(&scene, 40, 40, 40);
    let results = run(&mut detector, &mut scene, 40..50, walk, unlit);
    assert_eq!(reported(&results), (40..50).collect::<Vec<_>>());
}

#[test]
fn a_lamp_switched_off_after_minutes_is_not_motion() {
    // The lamp overexposes the window (215 × 1.4 clips at 255) for two minutes, long
    // enough for the background to learn everything it can; then it goes off.
    let mut scene = Scene::new(W, H, 18);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let lit_from = 20;
    let lit: Vec<u64> = (lit_from..).step_by(25).take(120).collect(); // 1 fps
    let off_from = lit[lit.len() - 1] + 1;
    let lamp = move |i: u64| {
        if (lit_from..off_from).contains(&i) {
            1.4
        } else {
            1.0
        }
    };
    let frames = (0..lit_from).chain(lit).chain(off_from..off_from + 25);
    let results = run(&mut detector, &mut scene, frames, still, lamp);
    assert_eq!(reported(&results), Vec::<u64>::new());
}

#[test]
fn lighting_ramping_over_a_few_frames_is_not_motion() {
    // Auto-exposure catching up with a light switched on: ×1.6 over 5 frames.
    let mut scene = Scene::new(W, H, 10);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let ramp = |i: u64| 1.0 + 0.6 * (i.clamp(20, 25) - 20) as f32 / 5.0;
    let results = run(&mut detector, &mut scene, 0..60, still, ramp);
    assert_eq!(reported(&results), Vec::<u64>::new());
}

#[test]
fn motion_under_a_mask_is_ignored() {
    let walk_right_half = |scene: &Scene| walker(scene, 10, 180, 100);
    let masked = MotionConfig {
        masks: vec![square(0.5, 0.0, 1.0, 1.0)],
        ..config()
    };
    let mut scene = Scene::new(W, H, 11);
    let mut detector = MotionDetector::new(&masked, W, H).unwrap();
    let walk = walk_right_half(&scene);
    let results = run(&mut detector, &mut scene, 0..30, walk, unlit);
    assert_eq!(reported(&results), Vec::<u64>::new());
    assert!(results.iter().all(|(_, _, c)| c.is_none()));

    // The same walk without the mask is motion.
    let mut scene = Scene::new(W, H, 11);
    let mut detector = MotionDetector::new(&config(), W, H).unwrap();
    let walk = walk_right_half(&scene);
    let results = run(&mut detector, &mut scene, 0..30, walk, unlit);
    assert_eq!(reported(&results), (10..30).collect::<Vec<_>>());
}

#[test]
fn a_person_half_under_a_mask_is_measured_without_the_masked_part() {
    let masked = MotionConfig {
        masks: vec![square(0.5, 0.0, 1.0, 1.0)],
        ..config()
    };
    let mut scene = Scene::new(W, H, 12);
    let mut detector = MotionDetector::new(&masked, W, H).unwrap();
    // 40 pixels wide, straddling x = 160 (the mask's edge) from 140 to 180.
    let block = Block {
        x: 140,
        y: 100,
        w: 40,
        h: 60,
        luma: 70,
        texture: 10,
    };
    let blocks = move |i: u64| if i >= 10 { vec![block] } else { Vec::new() };
    let results = run(&mut detector, &mut scene, 0..12, blocks, unlit);
    let region = results[10]
        .1
        .as_ref()
        .expect("the unmasked half moves")
        .region;
    assert!(
        (region.x + region.w - 0.5).abs() < 0.01,
        "the box stops at the mask: {region:?}"
    );
}

#[test]
fn higher_sensitivity_sees_fainter_changes() {
    // A faint block on the door (background ≈ 61): stripes 10 and 24 levels brighter.
    let faint = |i: u64| {
        (i >= 10)
            .then_some(Block {
                x: 50,
                y: 120,
                w: 24,
                h: 60,
                luma: 78,
                texture: 7,
            })
            .into_iter()
            .collect::<Vec<_>>()
    };
    let area = |sensitivity: u8| {
        let mut scene = Scene::new(W, H, 13);
        let mut detector = MotionDetector::new(
            &MotionConfig {
                sensitivity,
                min_area: 0.0,
                ..config()
            },
            W,
            H,
        )
        .unwrap();
        let results = run(&mut detector, &mut scene, 0..11, faint, unlit);
        results[10].1.as_ref().map_or(0.0, |seen| seen.area)
    };
    let (dull, middle, keen) = (area(0), area(50), area(100));
    assert_eq!(dull, 0.0, "sensitivity 0 ignores a 10-24 level change");
    assert!(middle > 0.0, "sensitivity 50 sees the brighter stripes");
    assert!(
        keen > middle,
        "sensitivity 100 sees more: {keen} vs {middle}"
    );
}

#[test]
fn min_area_decides_what_is_big_enough() {
    // An 8×8 block: 64 of 76 800 pixels, 0.083 % of the frame.
    let small = |i: u64| {
        (i >= 10)
            .then(|| Block {
                x: 100 + 3 * (i - 10) as u32,
                y: 60,
                w: 8,
                h: 8,
                luma: 20,
                texture: 0,
            })
            .into_iter()
            .collect::<Vec<_>>()
    };
    let reported_with = |min_area: f32| {
        let mut scene = Scene::new(W, H, 14);
        let mut detector = MotionDetector::new(
            &MotionConfig {
                min_area,
                ..config()
            },
            W,
            H,
        )
        .unwrap();
        let results = run(&mut detector, &mut scene, 0..20, small, unlit);
        (
            reported(&results),
            results.iter().filter(|(_, _, c)| c.is_some()).count(),
        )
    };
    assert_eq!(reported_with(0.0005), ((10..20).collect(), 10));
    assert_eq!(reported_with(0.002), (Vec::new(), 0));
}

#[test]
fn cooldown_holds_back_a_new_start_but_not_a_pause() {
    let mut scene = Scene::new(W, H, 15);
    let mut detector = MotionDetector::new(
        &MotionConfig {
            cooldown: Duration::from_secs(3),
            ..config()
        },
        W,
        H,
    )
    .unwrap();
    let template = Block::person(&scene, 20, 100, 20);
    // Walks during frames 10..30, is out of sight for 0.8 s (frames 30..49),
    // walks again 49..60, then is gone; someone else walks from frame 90 to 130.
    let script = move |i: u64| {
        let walking = (10..30).contains(&i) || (49..60).contains(&i) || (90..130).contains(&i);
        walking
            .then_some(Block {
                x: template.x + 2 * (i % 90) as u32,
                ..template
            })
            .into_iter()
            .collect()
    };
    let results = run(&mut detector, &mut scene, 0..130, script, unlit);
    // The pause is shorter than MOTION_END_GAP: the same motion goes on. The last
    // changed frame of it is 59 (t = 2.36 s); the new start is held back until
    // 2.36 + 3 = 5.36 s, frame 134 — so frames 90..130 are not reported…
    let expected: Vec<u64> = (10..30).chain(49..60).collect();
    assert_eq!(reported(&results), expected);
    // …though they did change (the person model still gets to look).
    assert!(results[90..].iter().all(|(_, _, c)| c.is_some()));

    // Past the cooldown, the walk is reported again.
    let results = run(
        &mut detector,
        &mut scene,
        130..140,
        |i| script(i - 40),
        unlit,
    );
    assert_eq!(reported(&results), (134..140).collect::<Vec<_>>());
}

#[test]
fn broken_masks_and_zones_are_refused_naming_them() {
    let with_zone = |name: &str, polygon: Polygon| MotionConfig {
        zones: vec![Zone {
            name: name.into(),
            polygon,
        }],
        ..config()
    };
    let err = MotionDetector::new(
        &with_zone("gate", Polygon(vec![(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)])),
        W,
        H,
    )
    .unwrap_err();
    assert_eq!(
        err,
        MotionError::Zone {
            name: "gate".into(),
            problem: PolygonProblem::NoArea
        }
    );
    assert!(err.to_string().contains("`gate`"), "{err}");

    let err = MotionDetector::new(
        &with_zone("porch", Polygon(vec![(0.1, 0.1), (0.2, 0.2)])),
        W,
        H,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`porch` has 2 corners"), "{err}");

    let two_doors = MotionConfig {
        zones: vec![
            Zone {
                name: "door".into(),
                polygon: square(0.0, 0.0, 0.5, 0.5),
            },
            Zone {
                name: "door".into(),
                polygon: square(0.5, 0.5, 1.0, 1.0),
            },
        ],
        ..config()
    };
    assert_eq!(
        MotionDetector::new(&two_doors, W, H).unwrap_err(),
        MotionError::DuplicateZone("door".into())
    );

    let bad_mask = MotionConfig {
        masks: vec![square(0.0, 0.0, 0.5, 0.5), square(0.2, 0.2, 1.2, 0.4)],
        ..config()
    };
    let err = MotionDetector::new(&bad_mask, W, H).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("motion mask 2 corner 1 (1.2, 0.2)"),
        "{err}"
    );

    let everything = MotionConfig {
        masks: vec![square(0.0, 0.0, 1.0, 1.0)],
        ..config()
    };
    assert_eq!(
        MotionDetector::new(&everything, W, H).unwrap_err(),
        MotionError::AllMasked
    );
    assert!(matches!(
        MotionDetector::new(&config(), 20, 10),
        Err(MotionError::FrameTooSmall { .. })
    ));
}
