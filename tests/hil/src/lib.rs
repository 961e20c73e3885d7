//! Black-box client and device launcher for the ME_CAM test suite.
//!
//! The suite talks to the service only as a user's phone or a script would: over
//! HTTPS, pinned to the certificate fingerprint the device logs, plus the process
//! exit code and log when the device runs on this machine. So the same tests run
//! against a local instance (CI, a laptop) and a real camera on the bench:
//!
//! - **local** (default): [`Device::from_env_or_launch`] starts the `mecam` binary on
//!   an ephemeral port with a fresh data directory. Build it first with
//!   `cargo build -p mecam` (`scripts/test` does), or set `MECAM_BIN` to a binary.
//! - **remote**: set `MECAM_HIL_URL` (`https://192.168.1.50:443`) and
//!   `MECAM_HIL_FINGERPRINT` (the SHA-256 fingerprint the device logs), and optionally
//!   `MECAM_HIL_HTTP_URL` for its plain-HTTP redirect port. Tests that need the process
//!   itself (signals, memory, exit codes) print why they skip.

mod client;
mod device;
mod error;
pub mod jpeg;
mod logbuf;
pub mod mjpeg;
pub mod raw;
pub mod tls;

pub use client::{Client, Connection, HttpVersion, Response, plain_http_get};
pub use device::{Device, Exited, mecam_binary, remote_configured, run_to_exit};
pub use error::Error;
pub use mjpeg::{MjpegFrame, MjpegStream};
pub use tls::Fingerprint;

/// Frames per second over a run of frames: intervals between the first and last
/// arrival, so the wait for the first frame does not count.
pub fn frame_rate(frames: &[MjpegFrame]) -> Option<f64> {
    let (first, last) = (frames.first()?, frames.last()?);
    let span = last.arrived.duration_since(first.arrived).as_secs_f64();
    (frames.len() >= 2 && span > 0.0).then(|| (frames.len() - 1) as f64 / span)
}

/// For tests that need the service process on this machine: prints why the test is
/// skipped and returns `true` when the suite runs against a remote device.
pub fn skip_if_remote(test: &str, why: &str) -> bool {
    let remote = remote_configured();
    if remote {
        eprintln!("skipped {test}: {why}; it runs only against a local instance");
    }
    remote
}
