//! Raw frames and the bounded buffer pool they live in.
//!
//! Every source hands out I420 (planar YUV 4:2:0, full-range BT.601) frames: it is
//! what the Pi's ISP and encoders use natively, the JPEG and H.264 encoders take it
//! without conversion, and motion detection reads the luma plane directly.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// A captured frame. Consumers share it through an `Arc`; when the last one drops it,
/// its buffer goes back to the source's pool.
pub struct Frame {
    /// Position in the source's sequence, starting at 0.
    pub seq: u64,
    /// Monotonic capture time, for latency and frame pacing.
    pub captured: Instant,
    /// Wall-clock capture time, for recordings and overlays.
    pub wall: SystemTime,
    pub image: I420,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("width", &self.image.width)
            .field("height", &self.image.height)
            .finish_non_exhaustive()
    }
}

/// A tightly packed I420 image: Y plane (`width × height`), then U and V planes
/// (`width/2 × height/2` each). Width and height are even.
pub struct I420 {
    width: u32,
    height: u32,
    buf: PooledBuf,
}

impl I420 {
    /// Bytes an image of this size needs.
    pub fn len_for(width: u32, height: u32) -> usize {
        let luma = width as usize * height as usize;
        luma + luma / 2
    }

    /// Wraps `buf`, which must hold exactly [`I420::len_for`] bytes.
    pub fn new(width: u32, height: u32, buf: PooledBuf) -> Self {
        assert!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "I420 needs even dimensions"
        );
        assert_eq!(buf.len(), Self::len_for(width, height), "I420 buffer size");
        Self { width, height, buf }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The Y, U and V planes.
    pub fn planes(&self) -> [&[u8]; 3] {
        let luma = self.width as usize * self.height as usize;
        let (y, uv) = self.buf.split_at(luma);
        let (u, v) = uv.split_at(luma / 4);
        [y, u, v]
    }

    /// The Y, U and V planes, writable.
    pub fn planes_mut(&mut self) -> [&mut [u8]; 3] {
        let luma = self.width as usize * self.height as usize;
        let (y, uv) = self.buf.split_at_mut(luma);
        let (u, v) = uv.split_at_mut(luma / 4);
        [y, u, v]
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The three planes as one writable slice, in Y, U, V order.
    pub fn planes_mut_flat(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// A fixed number of equally sized buffers, reused frame after frame.
///
/// When every buffer is out (consumers are holding frames), the source skips a frame
/// instead of allocating: like a real camera that runs out of request buffers, memory
/// stays bounded however slow the consumers are.
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    buf_len: usize,
    capacity: usize,
    state: Mutex<PoolState>,
}

struct PoolState {
    free: Vec<Vec<u8>>,
    outstanding: usize,
}

impl BufferPool {
    pub fn new(buf_len: usize, capacity: usize) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                buf_len,
                capacity,
                state: Mutex::new(PoolState {
                    free: Vec::with_capacity(capacity),
                    outstanding: 0,
                }),
            }),
        }
    }

    pub fn buf_len(&self) -> usize {
        self.inner.buf_len
    }

    /// A zero-length-checked buffer of `buf_len` bytes, or `None` if all are in use.
    /// Contents are whatever the previous frame left there.
    pub fn take(&self) -> Option<PooledBuf> {
        let mut state = self.inner.lock();
        if state.outstanding >= self.inner.capacity {
            return None;
        }
        state.outstanding += 1;
        let buf = state
            .free
            .pop()
            .unwrap_or_else(|| vec![0; self.inner.buf_len]);
        Some(PooledBuf {
            buf,
            pool: Arc::clone(&self.inner),
        })
    }

    /// Buffers currently held by frames.
    pub fn outstanding(&self) -> usize {
        self.inner.lock().outstanding
    }
}

impl PoolInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is two plain fields that are always consistent; a panic elsewhere
        // while holding the lock cannot leave them half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A buffer on loan from a [`BufferPool`]; returned to it on drop.
pub struct PooledBuf {
    buf: Vec<u8>,
    pool: Arc<PoolInner>,
}

impl std::ops::Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl std::ops::DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut state = self.pool.lock();
        state.outstanding -= 1;
        if buf.len() == self.pool.buf_len {
            state.free.push(buf);
        }
    }
}

/// Converts packed RGB (3 bytes a pixel, `src_width` wide) into `dst`, cropping to
/// `dst`'s even size. Full-range BT.601 (JFIF), the convention of the whole pipeline:
/// JPEG expects it, decoded JPEGs come out in it, and the H.264 encoder signals it.
pub fn rgb_to_i420(rgb: &[u8], src_width: usize, dst: &mut I420) {
    let (w, h) = (dst.width() as usize, dst.height() as usize);
    let [y_plane, u_plane, v_plane] = dst.planes_mut();
    // 16.16 fixed point JFIF coefficients.
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    for row in 0..h {
        let src = &rgb[row * src_width * 3..];
        let y_row = &mut y_plane[row * w..(row + 1) * w];
        for (x, y) in y_row.iter_mut().enumerate() {
            let (r, g, b) = (
                src[x * 3] as i32,
                src[x * 3 + 1] as i32,
                src[x * 3 + 2] as i32,
            );
            *y = clamp((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
        }
    }
    let cw = w / 2;
    for row in 0..h / 2 {
        for col in 0..cw {
            // Average the 2×2 block so chroma edges do not alias.
            let (mut r, mut g, mut b) = (0i32, 0i32, 0i32);
            for dy in 0..2 {
                let src = &rgb[((row * 2 + dy) * src_width + col * 2) * 3..];
                for dx in 0..2 {
                    r += src[dx * 3] as i32;
                    g += src[dx * 3 + 1] as i32;
                    b += src[dx * 3 + 2] as i32;
                }
            }
            let (r, g, b) = (r / 4, g / 4, b / 4);
            u_plane[row * cw + col] =
                clamp(((-11059 * r - 21709 * g + 32768 * b + 32768) >> 16) + 128);
            v_plane[row * cw + col] =
                clamp(((32768 * r - 27439 * g - 5329 * b + 32768) >> 16) + 128);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_bounded_and_buffers_come_back() {
        let pool = BufferPool::new(16, 2);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(
            pool.take().is_none(),
            "a third buffer must not be allocated"
        );
        assert_eq!(pool.outstanding(), 2);
        drop(a);
        let c = pool.take().expect("a returned buffer is reused");
        assert_eq!(c.len(), 16);
        drop((b, c));
        assert_eq!(pool.outstanding(), 0);
    }

    #[test]
    fn i420_planes_have_the_right_sizes() {
        let pool = BufferPool::new(I420::len_for(8, 4), 1);
        let img = I420::new(8, 4, pool.take().unwrap());
        let [y, u, v] = img.planes();
        assert_eq!((y.len(), u.len(), v.len()), (32, 8, 8));
    }

    #[test]
    fn rgb_conversion_is_full_range_bt601() {
        let pool = BufferPool::new(I420::len_for(2, 2), 1);
        let mut img = I420::new(2, 2, pool.take().unwrap());
        let white = [255u8; 12];
        rgb_to_i420(&white, 2, &mut img);
        let [y, u, v] = img.planes();
        assert_eq!((y[0], u[0], v[0]), (255, 128, 128));
        let red: Vec<u8> = [255, 0, 0].repeat(4);
        rgb_to_i420(&red, 2, &mut img);
        let [y, u, v] = img.planes();
        assert_eq!((y[3], u[0], v[0]), (76, 85, 255));
    }
}
