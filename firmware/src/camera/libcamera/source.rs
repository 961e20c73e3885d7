//! [`LibcameraSource`]: frames from the shim's callback, over a channel, into I420.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use super::BUFFER_COUNT;
use super::ffi::{self, ErrBuf, RawFrame};
use crate::camera::{BufferPool, CameraError, Frame, FrameSource, I420, SourceInfo};
use crate::config::CameraConfig;

/// A frame later than this means the sensor or its pipeline has stopped.
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs on libcamera's thread. Copies the frame description into the channel and
/// returns; it must not block or unwind into C++.
unsafe extern "C" fn on_frame(user: *mut c_void, frame: *const RawFrame) {
    if user.is_null() || frame.is_null() {
        return;
    }
    // SAFETY: `user` is the `SyncSender` boxed in `open`, alive until after
    // `mecam_cam_close`; `frame` is valid for the duration of the call.
    let (tx, frame) = unsafe { (&*(user as *const SyncSender<RawFrame>), *frame) };
    // The channel holds one slot per buffer, so it is never full; if the receiver is
    // gone the source is closing and the frame is simply not requeued.
    let _ = tx.try_send(frame);
}

pub struct LibcameraSource {
    cam: *mut ffi::Cam,
    sender: *mut SyncSender<RawFrame>,
    frames: Receiver<RawFrame>,
    maps: HashMap<i32, Mapping>,
    pool: BufferPool,
    info: SourceInfo,
    stride: u32,
    seq: u64,
}

// SAFETY: the shim's handle is used only from the thread that owns the source; the
// callback touches only the `SyncSender`, which is `Send + Sync`.
unsafe impl Send for LibcameraSource {}

impl LibcameraSource {
    pub fn open(config: &CameraConfig) -> Result<Self, CameraError> {
        let mut err = ErrBuf::new();
        let mut cam = std::ptr::null_mut();
        let (e, n) = err.ptr();
        // SAFETY: out-pointer and error buffer are valid for the call.
        let rc = unsafe { ffi::mecam_cam_open(&mut cam, e, n) };
        if rc == -libc::ENODEV {
            return Err(CameraError::NoCamera(format!(
                "libcamera: {}",
                err.message()
            )));
        }
        if rc < 0 || cam.is_null() {
            return Err(device("open", err.message()));
        }
        let (tx, rx) = mpsc::sync_channel(BUFFER_COUNT as usize * 2);
        let sender = Box::into_raw(Box::new(tx));
        let mut source = Self {
            cam,
            sender,
            frames: rx,
            maps: HashMap::new(),
            pool: BufferPool::new(0, 1),
            info: SourceInfo {
                kind: "libcamera",
                width: 0,
                height: 0,
                fps: config.fps,
            },
            stride: 0,
            seq: 0,
        };
        let (mut w, mut h, mut stride) = (0, 0, 0);
        let (e, n) = err.ptr();
        // SAFETY: `cam` is open; out-pointers are valid.
        let rc = unsafe {
            ffi::mecam_cam_configure(
                cam,
                config.size.width,
                config.size.height,
                BUFFER_COUNT,
                0,
                &mut w,
                &mut h,
                &mut stride,
                e,
                n,
            )
        };
        if rc < 0 {
            return Err(device("configure", err.message()));
        }
        if (w, h) != (config.size.width, config.size.height) {
            tracing::info!(
                requested = %config.size, width = w, height = h,
                "libcamera adjusted the frame size to what the sensor offers"
            );
        }
        source.info.width = w & !1;
        source.info.height = h & !1;
        source.stride = stride;
        source.pool = BufferPool::new(I420::len_for(w & !1, h & !1), BUFFER_COUNT as usize);
        let (e, n) = err.ptr();
        // SAFETY: the sender outlives the camera (freed in Drop after close).
        let rc = unsafe { ffi::mecam_cam_start(cam, on_frame, sender.cast(), e, n) };
        if rc < 0 {
            return Err(device("start", err.message()));
        }
        tracing::info!(width = w, height = h, stride, "libcamera camera started");
        Ok(source)
    }

    fn requeue(&self, cookie: u64) {
        // SAFETY: `cam` is open and started.
        let rc = unsafe { ffi::mecam_cam_requeue(self.cam, cookie) };
        if rc < 0 {
            tracing::warn!(
                cookie,
                rc,
                "libcamera refused to requeue a buffer; capture may slow down"
            );
        }
    }
}

fn device(step: &str, reason: String) -> CameraError {
    CameraError::Device {
        device: "libcamera".into(),
        reason: format!("{step}: {reason}"),
    }
}

impl FrameSource for LibcameraSource {
    fn info(&self) -> SourceInfo {
        self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
        let raw = match self.frames.recv_timeout(FRAME_TIMEOUT) {
            Ok(raw) => raw,
            Err(RecvTimeoutError::Timeout) => {
                return Err(device(
                    "capture",
                    format!(
                        "no frame for {} s; check the ribbon cable",
                        FRAME_TIMEOUT.as_secs()
                    ),
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(device("capture", "the camera stopped".into()));
            }
        };
        let result = self.copy_out(&raw);
        // The buffer goes back as soon as its pixels are in a pooled frame.
        self.requeue(raw.cookie);
        result
    }
}

impl LibcameraSource {
    /// Copies the dmabuf's strided planes into a packed I420 pool buffer. This is the
    /// one CPU copy on the libcamera path until `Frame` can carry a dmabuf itself.
    fn copy_out(&mut self, raw: &RawFrame) -> Result<Option<Frame>, CameraError> {
        let Some(buf) = self.pool.take() else {
            return Ok(None);
        };
        let end = raw.offset as usize + raw.length as usize;
        let map = match self.maps.entry(raw.fd) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                Mapping::new(raw.fd, end)
                    .map_err(|e| device("mmap", format!("cannot map frame buffer: {e}")))?,
            ),
        };
        if map.len < end {
            return Err(device("capture", "frame larger than its buffer".into()));
        }
        let src = &map.bytes()[raw.offset as usize..end];
        let (w, h) = (self.info.width, self.info.height);
        let mut image = I420::new(w, h, buf);
        if !destride(src, self.stride as usize, &mut image) {
            return Err(device(
                "capture",
                "frame shorter than its size and stride".into(),
            ));
        }
        let frame = Frame {
            seq: self.seq,
            captured: Instant::now(),
            wall: SystemTime::now(),
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

/// Copies I420 planes whose luma rows are `stride` bytes apart (chroma `stride / 2`)
/// into the packed image. Returns false if `src` is too short.
pub(crate) fn destride(src: &[u8], stride: usize, dst: &mut I420) -> bool {
    let (w, h) = (dst.width() as usize, dst.height() as usize);
    let cstride = stride / 2;
    let needed = stride * h + 2 * cstride * (h / 2);
    if stride < w || src.len() < needed {
        return false;
    }
    let (y_src, rest) = src.split_at(stride * h);
    let (u_src, v_src) = rest.split_at(cstride * (h / 2));
    let [y, u, v] = dst.planes_mut();
    for (row, out) in y.chunks_exact_mut(w).enumerate() {
        out.copy_from_slice(&y_src[row * stride..row * stride + w]);
    }
    for (plane, src) in [(u, u_src), (v, v_src)] {
        for (row, out) in plane.chunks_exact_mut(w / 2).enumerate() {
            out.copy_from_slice(&src[row * cstride..row * cstride + w / 2]);
        }
    }
    true
}

impl Drop for LibcameraSource {
    fn drop(&mut self) {
        // SAFETY: close stops the camera first, so the callback cannot run after it;
        // only then is the sender freed.
        unsafe {
            ffi::mecam_cam_close(self.cam);
            drop(Box::from_raw(self.sender));
        }
    }
}

/// A read-only mapping of a dmabuf, unmapped on drop.
struct Mapping {
    ptr: *mut c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: i32, len: usize) -> std::io::Result<Self> {
        // SAFETY: a fresh shared read-only mapping of a valid fd; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libcamera pads rows (the Pi ISP to 64 bytes); the padding must not reach the
    /// packed frame, and a buffer too short for its stride is refused, not read past.
    #[test]
    fn destride_drops_row_padding() {
        let (w, h, stride) = (4u32, 2u32, 8usize);
        let mut src = vec![0xEEu8; stride * 2 + 2 * (stride / 2)];
        src[..4].copy_from_slice(&[1, 2, 3, 4]);
        src[8..12].copy_from_slice(&[5, 6, 7, 8]);
        src[16..18].copy_from_slice(&[9, 10]);
        src[20..22].copy_from_slice(&[11, 12]);
        let pool = BufferPool::new(I420::len_for(w, h), 1);
        let mut image = I420::new(w, h, pool.take().expect("one buffer"));
        assert!(destride(&src, stride, &mut image));
        assert_eq!(image.as_bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert!(!destride(&src[..src.len() - 1], stride, &mut image));
        assert!(!destride(&src, 2, &mut image));
    }
}
