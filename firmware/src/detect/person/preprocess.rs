//! From a frame to the model's input tensor: choose the crop, convert I420 to RGB,
//! resize bilinearly, scale to -1..1. And back: boxes in the crop to boxes in the frame.

use super::decode::Corners;
use crate::camera::I420;
use crate::detect::BBox;

/// The smallest crop side, in frame pixels. A motion region of a few pixels blown up
/// to the model's 300×300 shows the model nothing it can recognise; a little context
/// around it can.
pub const MIN_CROP_PIXELS: f32 = 32.0;

/// The part of a `width`×`height` frame the model looks at, in normalised frame
/// coordinates: all of it without a region; with one, the region clamped to the frame
/// and widened (or heightened) about its centre to the model's aspect ratio `aspect`
/// (input width ÷ height) as far as the frame allows, so a person is not squashed
/// more than the model's training did (it was trained on whole pictures stretched to
/// a square). The region itself is never cut.
pub fn crop_region(width: u32, height: u32, region: Option<BBox>, aspect: f32) -> BBox {
    let full = BBox {
        x: 0.0,
        y: 0.0,
        w: 1.0,
        h: 1.0,
    };
    let Some(r) = region else {
        return full;
    };
    if ![r.x, r.y, r.w, r.h].iter().all(|v| v.is_finite()) || r.w <= 0.0 || r.h <= 0.0 {
        return full;
    }
    let (fw, fh) = (width as f32, height as f32);
    // In pixels, clamped to the frame.
    let x0 = (r.x * fw).clamp(0.0, fw);
    let x1 = ((r.x + r.w) * fw).clamp(0.0, fw);
    let y0 = (r.y * fh).clamp(0.0, fh);
    let y1 = ((r.y + r.h) * fh).clamp(0.0, fh);
    let (mut w, mut h) = (
        (x1 - x0).max(MIN_CROP_PIXELS.min(fw)),
        (y1 - y0).max(MIN_CROP_PIXELS.min(fh)),
    );
    if w / h < aspect {
        w = (h * aspect).min(fw);
    } else {
        h = (w / aspect).min(fh);
    }
    // Centred on the region, then shifted back inside the frame.
    let x = ((x0 + x1) / 2.0 - w / 2.0).clamp(0.0, fw - w);
    let y = ((y0 + y1) / 2.0 - h / 2.0).clamp(0.0, fh - h);
    BBox {
        x: x / fw,
        y: y / fh,
        w: w / fw,
        h: h / fh,
    }
}

/// Fills `out` (`size.0 × size.1 × 3`, row-major RGB, NHWC without the batch) with
/// the `crop` of `image` resized bilinearly, converted from full-range BT.601 (JFIF)
/// and scaled to -1..1 (`rgb / 127.5 - 1`), the range the model was trained on.
///
/// Pixel centres are at +0.5 (like PIL, OpenCV and TensorFlow 2's resize); the crop's
/// edges are kept with sub-pixel precision. Chroma is sampled at its own (half)
/// resolution, centred between its two luma samples, as `rgb_to_i420` produces it.
pub fn fill_input(image: &I420, crop: BBox, size: (usize, usize), out: &mut [f32]) {
    let (out_w, out_h) = size;
    assert_eq!(out.len(), out_w * out_h * 3, "input buffer size");
    let (w, h) = (image.width() as usize, image.height() as usize);
    let [y_plane, u_plane, v_plane] = image.planes();
    let cw = w / 2;
    let columns = taps(crop.x * w as f32, crop.w * w as f32, out_w, w);
    let rows = taps(crop.y * h as f32, crop.h * h as f32, out_h, h);
    for (oy, row) in rows.iter().enumerate() {
        for (ox, col) in columns.iter().enumerate() {
            let luma = bilinear(y_plane, w, &row.luma, &col.luma);
            let u = bilinear(u_plane, cw, &row.chroma, &col.chroma) - 128.0;
            let v = bilinear(v_plane, cw, &row.chroma, &col.chroma) - 128.0;
            let rgb = [
                luma + 1.402 * v,
                luma - 0.344_136 * u - 0.714_136 * v,
                luma + 1.772 * u,
            ];
            let o = (oy * out_w + ox) * 3;
            for (dst, value) in out[o..o + 3].iter_mut().zip(rgb) {
                *dst = value.clamp(0.0, 255.0) / 127.5 - 1.0;
            }
        }
    }
}

/// `c`, a box in the model's input (0..1 across the crop), in normalised coordinates
/// of the whole frame. The box is clipped to the crop first: the model saw nothing
/// outside it.
pub fn to_frame(c: &Corners, crop: BBox) -> BBox {
    let c = c.clipped();
    BBox {
        x: crop.x + c.xmin * crop.w,
        y: crop.y + c.ymin * crop.h,
        w: (c.xmax - c.xmin) * crop.w,
        h: (c.ymax - c.ymin) * crop.h,
    }
}

/// The two source samples and the weight of the second, for one output position.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    first: usize,
    second: usize,
    weight: f32,
}

/// Taps for one output row or column, in luma and in (half-resolution) chroma.
struct Taps {
    luma: Tap,
    chroma: Tap,
}

/// Taps for `n` outputs covering `len` source pixels from `start`, on a plane of
/// `size` luma pixels.
fn taps(start: f32, len: f32, n: usize, size: usize) -> Vec<Taps> {
    let step = len / n as f32;
    (0..n)
        .map(|i| {
            let at = start + (i as f32 + 0.5) * step - 0.5;
            Taps {
                luma: tap(at, size),
                // Chroma sample k sits at luma position 2k + 0.5.
                chroma: tap((at - 0.5) / 2.0, size / 2),
            }
        })
        .collect()
}

fn tap(at: f32, size: usize) -> Tap {
    let last = size.saturating_sub(1);
    let at = at.clamp(0.0, last as f32);
    let first = at.floor() as usize;
    Tap {
        first,
        second: (first + 1).min(last),
        weight: at - first as f32,
    }
}

fn bilinear(plane: &[u8], stride: usize, row: &Tap, col: &Tap) -> f32 {
    let px = |r: usize, c: usize| f32::from(plane[r * stride + c]);
    let top =
        px(row.first, col.first) * (1.0 - col.weight) + px(row.first, col.second) * col.weight;
    let bottom =
        px(row.second, col.first) * (1.0 - col.weight) + px(row.second, col.second) * col.weight;
    top * (1.0 - row.weight) + bottom * row.weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::BufferPool;
    use crate::camera::frame::rgb_to_i420;

    fn close(a: f32, b: f32, tolerance: f32) -> bool {
        (a - b).abs() <= tolerance
    }

    fn bbox(x: f32, y: f32, w: f32, h: f32) -> BBox {
        BBox { x, y, w, h }
    }

    fn assert_bbox(actual: BBox, expected: BBox) {
        let ok = close(actual.x, expected.x, 1e-5)
            && close(actual.y, expected.y, 1e-5)
            && close(actual.w, expected.w, 1e-5)
            && close(actual.h, expected.h, 1e-5);
        assert!(ok, "{actual:?}, expected {expected:?}");
    }

    fn image(width: u32, height: u32, rgb: impl Fn(usize, usize) -> [u8; 3]) -> I420 {
        let pool = BufferPool::new(I420::len_for(width, height), 1);
        let mut img = I420::new(width, height, pool.take().unwrap());
        let mut pixels = Vec::new();
        for y in 0..height as usize {
            for x in 0..width as usize {
                pixels.extend_from_slice(&rgb(x, y));
            }
        }
        rgb_to_i420(&pixels, width as usize, &mut img);
        img
    }

    #[test]
    fn without_a_region_the_model_sees_the_whole_frame() {
        assert_bbox(crop_region(640, 480, None, 1.0), bbox(0.0, 0.0, 1.0, 1.0));
    }

    #[test]
    fn a_tall_region_is_widened_about_its_centre_to_the_models_square() {
        // 100×200 pixels at (300, 100) in 640×480: becomes 200×200 centred on x = 350.
        let r = crop_region(
            640,
            480,
            Some(bbox(
                300.0 / 640.0,
                100.0 / 480.0,
                100.0 / 640.0,
                200.0 / 480.0,
            )),
            1.0,
        );
        assert_bbox(
            r,
            bbox(250.0 / 640.0, 100.0 / 480.0, 200.0 / 640.0, 200.0 / 480.0),
        );
    }

    #[test]
    fn a_widened_region_is_shifted_back_inside_the_frame() {
        // A wide region at the bottom edge: heightened to 300 pixels, which would
        // reach below the frame, so it moves up.
        let r = crop_region(640, 480, Some(bbox(0.25, 0.9, 300.0 / 640.0, 0.1)), 1.0);
        assert_bbox(r, bbox(0.25, 180.0 / 480.0, 300.0 / 640.0, 300.0 / 480.0));
    }

    #[test]
    fn a_region_wider_than_the_frame_allows_keeps_the_whole_region() {
        // Full width, a third of the height: a square would need 640 rows of 480.
        let r = crop_region(640, 480, Some(bbox(0.0, 0.3, 1.0, 1.0 / 3.0)), 1.0);
        assert_bbox(r, bbox(0.0, 0.0, 1.0, 1.0));
        // Outside the frame or nonsense: clamped, or the whole frame.
        let r = crop_region(640, 480, Some(bbox(-0.5, -0.5, 2.0, 2.0)), 1.0);
        assert_bbox(r, bbox(0.0, 0.0, 1.0, 1.0));
        let r = crop_region(640, 480, Some(bbox(f32::NAN, 0.0, 0.1, 0.1)), 1.0);
        assert_bbox(r, bbox(0.0, 0.0, 1.0, 1.0));
    }

    #[test]
    fn a_tiny_region_gets_some_context() {
        let r = crop_region(
            640,
            480,
            Some(bbox(0.5, 0.5, 1.0 / 640.0, 1.0 / 480.0)),
            1.0,
        );
        assert!(close(r.w * 640.0, MIN_CROP_PIXELS, 1e-3), "{r:?}");
        assert!(close(r.h * 480.0, MIN_CROP_PIXELS, 1e-3), "{r:?}");
    }

    #[test]
    fn boxes_in_a_crop_map_back_to_the_whole_frame() {
        let crop = bbox(0.25, 0.5, 0.5, 0.25);
        let b = to_frame(
            &Corners {
                ymin: 0.2,
                xmin: 0.0,
                ymax: 0.6,
                xmax: 0.5,
            },
            crop,
        );
        assert_bbox(b, bbox(0.25, 0.55, 0.25, 0.1));
        // The part of a box outside the crop is cut off.
        let b = to_frame(
            &Corners {
                ymin: -0.5,
                xmin: 0.5,
                ymax: 0.5,
                xmax: 1.5,
            },
            crop,
        );
        assert_bbox(b, bbox(0.5, 0.5, 0.25, 0.125));
        // Without a crop, boxes stay as they are.
        let full = bbox(0.0, 0.0, 1.0, 1.0);
        let b = to_frame(
            &Corners {
                ymin: 0.1,
                xmin: 0.2,
                ymax: 0.3,
                xmax: 0.6,
            },
            full,
        );
        assert_bbox(b, bbox(0.2, 0.1, 0.4, 0.2));
    }

    #[test]
    fn colours_come_out_as_rgb_in_minus_one_to_one() {
        // Left half pure red, right half pure blue, 64×32; the model's input is 4×2.
        let img = image(
            64,
            32,
            |x, _| if x < 32 { [255, 0, 0] } else { [0, 0, 255] },
        );
        let mut out = vec![0.0; 4 * 2 * 3];
        fill_input(&img, bbox(0.0, 0.0, 1.0, 1.0), (4, 2), &mut out);
        for row in out.chunks_exact(4 * 3) {
            let px: Vec<&[f32]> = row.chunks_exact(3).collect();
            // I420 rounds and subsamples chroma: within 3 levels of 255 and 0.
            let tol = 3.0 / 127.5;
            for red in &px[..2] {
                assert!(
                    close(red[0], 1.0, tol) && close(red[1], -1.0, tol) && close(red[2], -1.0, tol),
                    "{red:?}"
                );
            }
            for blue in &px[2..] {
                assert!(
                    close(blue[0], -1.0, tol)
                        && close(blue[1], -1.0, tol)
                        && close(blue[2], 1.0, tol),
                    "{blue:?}"
                );
            }
        }
    }

    #[test]
    fn resizing_is_bilinear_and_follows_the_crop() {
        // A horizontal grey ramp: luma = 2x on a 128-wide frame. Grey has neutral
        // chroma, so R = G = B = luma.
        let img = image(128, 16, |x, _| [(2 * x) as u8; 3]);
        let mut out = vec![0.0; 8 * 2 * 3];
        // The right half (x 64..128) onto 8 columns: centres at 64 + 8i + 3.5.
        fill_input(&img, bbox(0.5, 0.0, 0.5, 1.0), (8, 2), &mut out);
        for i in 0..8 {
            let expected = 2.0 * (64.0 + 8.0 * i as f32 + 3.5);
            let got = (out[i * 3] + 1.0) * 127.5;
            assert!(
                close(got, expected, 1.0),
                "column {i}: {got}, expected {expected}"
            );
            assert!(close(out[i * 3 + 1], out[i * 3], 2.0 / 127.5));
        }
    }
}
