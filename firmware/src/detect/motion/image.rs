//! The per-pixel kernels: box-filter downscaling of the luma plane and the 3×3
//! morphological opening of the change mask. Written as plain loops over slices that
//! the compiler turns into SIMD (SSE2 here, NEON on the Pi): no bounds checks in the
//! inner loops, no branches on pixel values.

/// Shrinks a `src_width`-wide luma plane by `factor` in both directions into `dst`
/// (`width × height`), averaging each `factor × factor` block. Columns and rows beyond
/// `width * factor` / `height * factor` (less than one block) are left out.
///
/// `acc` holds one row of column sums (at least `width * factor` entries); u16 is
/// enough for blocks of up to 16×16 (16·16·255 < 65 536).
pub(super) fn downscale(
    src: &[u8],
    src_width: usize,
    factor: usize,
    dst: &mut [u8],
    width: usize,
    acc: &mut [u16],
) {
    debug_assert!((2..=16).contains(&factor));
    let used = width * factor;
    let acc = &mut acc[..used];
    for (dst_row, band) in dst
        .chunks_exact_mut(width)
        .zip(src.chunks_exact(src_width * factor))
    {
        // Column sums, two source rows per pass: this loop reads the whole frame,
        // and memory traffic is what it costs (on the Pi above all).
        let mut rows = band.chunks_exact(src_width).map(|row| &row[..used]);
        let (first, second) = (rows.next(), rows.next());
        if let (Some(a), Some(b)) = (first, second) {
            for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
                *s = u16::from(a) + u16::from(b);
            }
        }
        while let Some(a) = rows.next() {
            match rows.next() {
                Some(b) => {
                    for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
                        *s += u16::from(a) + u16::from(b);
                    }
                }
                None => {
                    for (s, &a) in acc.iter_mut().zip(a) {
                        *s += u16::from(a);
                    }
                }
            }
        }
        match factor {
            2 => block_means::<2>(acc, dst_row),
            3 => block_means::<3>(acc, dst_row),
            4 => block_means::<4>(acc, dst_row),
            5 => block_means::<5>(acc, dst_row),
            6 => block_means::<6>(acc, dst_row),
            8 => block_means::<8>(acc, dst_row),
            _ => {
                let n = (factor * factor) as u32;
                for (d, block) in dst_row.iter_mut().zip(acc.chunks_exact(factor)) {
                    let sum: u32 = block.iter().map(|&v| u32::from(v)).sum();
                    *d = ((sum + n / 2) / n) as u8;
                }
            }
        }
    }
}

/// The horizontal half of [`downscale`] for a block width known at compile time: the
/// sums unroll, and the division by a constant becomes a shift or a multiply.
fn block_means<const F: usize>(acc: &[u16], dst: &mut [u8]) {
    let n = (F * F) as u32;
    for (d, block) in dst.iter_mut().zip(acc.chunks_exact(F)) {
        let mut sum = 0u32;
        for &v in block {
            sum += u32::from(v);
        }
        *d = ((sum + n / 2) / n) as u8;
    }
}

/// 3×3 opening (erosion, then dilation) of a 0/1 mask, in place, using `tmp` (same
/// size) as scratch. A changed pixel survives only if it belongs to some 3×3 block
/// of changed pixels: isolated noise pixels and one-pixel lines go, blobs keep their
/// shape. Outside the image counts as "same as the edge pixel", so a person entering
/// at the border is not eroded away. The result is ANDed with `keep` (the unmasked
/// pixels), so dilation never grows into a mask.
pub(super) fn open3x3(mask: &mut [u8], tmp: &mut [u8], keep: &[u8], width: usize) {
    horizontal(mask, tmp, width, u8::min);
    vertical(tmp, mask, width, u8::min);
    horizontal(mask, tmp, width, u8::max);
    vertical(tmp, mask, width, u8::max);
    for (m, &k) in mask.iter_mut().zip(keep) {
        *m &= k;
    }
}

/// `dst[x] = op(src[x-1], src[x], src[x+1])` along each row, edges replicated.
fn horizontal(src: &[u8], dst: &mut [u8], width: usize, op: impl Fn(u8, u8) -> u8 + Copy) {
    for (s, d) in src.chunks_exact(width).zip(dst.chunks_exact_mut(width)) {
        d[0] = op(s[0], s[1]);
        d[width - 1] = op(s[width - 2], s[width - 1]);
        for (((d, &l), &c), &r) in d[1..width - 1]
            .iter_mut()
            .zip(&s[..width - 2])
            .zip(&s[1..width - 1])
            .zip(&s[2..])
        {
            *d = op(op(l, c), r);
        }
    }
}

/// `dst[y] = op(src[y-1], src[y], src[y+1])` down each column, edges replicated.
fn vertical(src: &[u8], dst: &mut [u8], width: usize, op: impl Fn(u8, u8) -> u8 + Copy) {
    let height = src.len() / width;
    for (y, d) in dst.chunks_exact_mut(width).enumerate() {
        let row = |y: usize| &src[y * width..(y + 1) * width];
        let (up, here, down) = (
            row(y.saturating_sub(1)),
            row(y),
            row((y + 1).min(height - 1)),
        );
        for (((d, &u), &c), &w) in d.iter_mut().zip(up).zip(here).zip(down) {
            *d = op(op(u, c), w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscale_averages_blocks_and_rounds() {
        // 6×4 source, factor 2 → 3×2.
        #[rustfmt::skip]
        let src = [
            0, 2,   10, 10,   255, 255,
            4, 6,   10, 11,   255, 254,
            1, 1,   1, 1,     100, 0,
            1, 1,   1, 1,     0, 100,
        ];
        let mut dst = [0u8; 6];
        let mut acc = [0u16; 6];
        downscale(&src, 6, 2, &mut dst, 3, &mut acc);
        assert_eq!(dst, [3, 10, 255, 1, 1, 50]);

        // An odd factor takes the generic path's rounding too: 7 × 7 of 200 → 200.
        let src = vec![200u8; 15 * 7];
        let mut dst = [0u8; 2];
        let mut acc = [0u16; 15];
        downscale(&src, 15, 7, &mut dst, 2, &mut acc);
        assert_eq!(dst, [200, 200]);
    }

    #[test]
    fn opening_removes_specks_and_keeps_blobs() {
        let (w, h) = (12, 10);
        let mut mask = vec![0u8; w * h];
        // A lone pixel, a one-pixel line, and a 4×4 blob touching the right edge.
        mask[w + 1] = 1;
        for y in 3..9 {
            mask[y * w + 3] = 1;
        }
        for y in 4..8 {
            for x in 8..12 {
                mask[y * w + x] = 1;
            }
        }
        let keep = vec![1u8; w * h];
        let mut tmp = vec![0u8; w * h];
        open3x3(&mut mask, &mut tmp, &keep, w);
        let on: Vec<(usize, usize)> = (0..w * h)
            .filter(|&i| mask[i] == 1)
            .map(|i| (i % w, i / w))
            .collect();
        let blob: Vec<(usize, usize)> = (4..8).flat_map(|y| (8..12).map(move |x| (x, y))).collect();
        assert_eq!(on, blob);
    }

    #[test]
    fn opening_never_grows_into_a_mask() {
        let (w, h) = (8, 8);
        let mut mask = vec![1u8; w * h];
        let keep: Vec<u8> = (0..w * h).map(|i| u8::from(i % w < 4)).collect();
        let mut tmp = vec![0u8; w * h];
        open3x3(&mut mask, &mut tmp, &keep, w);
        assert_eq!(mask, keep);
    }
}
