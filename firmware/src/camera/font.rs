//! A 5×7 bitmap font for the clock overlay: digits and the few symbols a timestamp needs.

/// Each glyph is seven rows; the low five bits of a row are its pixels, MSB on the left.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        ' ' => [0; 7],
        _ => return None,
    })
}

pub const GLYPH_WIDTH: usize = 5;
pub const GLYPH_HEIGHT: usize = 7;
/// Horizontal advance per character, in font pixels (glyph plus one column of space).
pub const ADVANCE: usize = GLYPH_WIDTH + 1;

/// Draws `text` into a luma plane `stride` bytes wide with its top-left corner at
/// (`x`, `y`), each font pixel a `scale × scale` block of `value`. Characters the font
/// lacks are drawn as spaces; anything past the plane's edge is clipped.
pub fn draw_text(
    plane: &mut [u8],
    stride: usize,
    x: usize,
    y: usize,
    scale: usize,
    text: &str,
    value: u8,
) {
    let rows = plane.len() / stride;
    for (i, c) in text.chars().enumerate() {
        let Some(rows_bits) = glyph(c) else { continue };
        let gx = x + i * ADVANCE * scale;
        for (gy, bits) in rows_bits.iter().enumerate() {
            for bit in 0..GLYPH_WIDTH {
                if bits & (0x10 >> bit) == 0 {
                    continue;
                }
                for py in 0..scale {
                    let row = y + gy * scale + py;
                    if row >= rows {
                        break;
                    }
                    let start = gx + bit * scale;
                    if start >= stride {
                        break;
                    }
                    let end = (start + scale).min(stride);
                    plane[row * stride + start..row * stride + end].fill(value);
                }
            }
        }
    }
}

/// Width in pixels that `draw_text` uses for `chars` characters at `scale`.
pub fn text_width(chars: usize, scale: usize) -> usize {
    chars * ADVANCE * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_one_and_clips_at_the_edge() {
        let mut plane = vec![0u8; 8 * 8];
        draw_text(&mut plane, 8, 0, 0, 1, "1", 255);
        // Top row of '1' is a single pixel in the middle column.
        assert_eq!(&plane[0..5], &[0, 0, 255, 0, 0]);
        // Bottom row is three pixels wide.
        assert_eq!(&plane[6 * 8..6 * 8 + 5], &[0, 255, 255, 255, 0]);
        // Drawing far outside must not panic.
        draw_text(&mut plane, 8, 6, 6, 3, "88", 255);
    }
}
