//! The live stream's `fps` query parameter: `mecam::api::mjpeg::parse_fps`.
//!
//! Input: the first byte is the camera's frame rate, the rest is the query string
//! (UTF-8, as hyper hands it over). Property: never panics, and an accepted cap is in
//! the documented range and below the camera's rate.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mecam::api::mjpeg::parse_fps;

fuzz_target!(|data: &[u8]| {
    let Some((&camera_fps, query)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let camera_fps = u32::from(camera_fps);
    if let Ok(Some(fps)) = parse_fps(Some(query), camera_fps) {
        assert!((0.1..=120.0).contains(&fps), "{fps}");
        assert!(fps < f64::from(camera_fps), "{fps} >= {camera_fps}");
    }
    assert_eq!(parse_fps(None, camera_fps), Ok(None));
});
