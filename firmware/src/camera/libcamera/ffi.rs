//! Hand-written bindings to `shim/mecam_libcamera.h`; keep them in step with it.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
pub struct Cam {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    pub cookie: u64,
    pub fd: c_int,
    pub offset: u32,
    pub length: u32,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub timestamp_ns: u64,
    pub sequence: u64,
}

pub type FrameCb = unsafe extern "C" fn(user: *mut c_void, frame: *const RawFrame);

unsafe extern "C" {
    pub fn mecam_cam_open(out: *mut *mut Cam, err: *mut c_char, err_len: usize) -> c_int;
    #[allow(clippy::too_many_arguments)]
    pub fn mecam_cam_configure(
        cam: *mut Cam,
        width: u32,
        height: u32,
        buffers: u32,
        rotation: u32,
        out_width: *mut u32,
        out_height: *mut u32,
        out_stride: *mut u32,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn mecam_cam_start(
        cam: *mut Cam,
        cb: FrameCb,
        user: *mut c_void,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn mecam_cam_requeue(cam: *mut Cam, cookie: u64) -> c_int;
    pub fn mecam_cam_close(cam: *mut Cam);
}

/// A buffer for the shim's one-line error messages.
pub struct ErrBuf([c_char; 256]);

impl ErrBuf {
    pub fn new() -> Self {
        Self([0; 256])
    }

    pub fn ptr(&mut self) -> (*mut c_char, usize) {
        (self.0.as_mut_ptr(), self.0.len())
    }

    pub fn message(&self) -> String {
        // SAFETY: the shim writes with snprintf, which always NUL-terminates, and
        // the buffer starts zeroed.
        unsafe { std::ffi::CStr::from_ptr(self.0.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}
