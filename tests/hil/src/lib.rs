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
//!
//! # Accounts
//!
//! Everything but `/`, `/style.css`, `/api/v1/health`, setup and login needs
//! credentials. [`Device::admin`] returns a client logged in as the owner:
//!
//! - **local**: a fresh device is set up on first use as [`auth::ADMIN_USER`] with
//!   [`auth::ADMIN_PASSWORD`] (`POST /api/v1/setup`, from loopback).
//! - **remote**: the device must already be set up; set `MECAM_HIL_USER` and
//!   `MECAM_HIL_PASSWORD` to an admin account on it. Tests that change accounts,
//!   lock an account out or need a fresh device run only locally and say so.
//!
//! A [`Client`] carries one kind of credentials ([`auth::Auth`]): a cookie session
//! (cookie-authenticated writes get `Origin` and `X-CSRF-Token` added, as a page of
//! the device sends them; [`Req`] can leave them out or change them), a bearer token,
//! or HTTP Basic. [`netns::PublicPeer`] gives a request a public source address.
//!
//! Local launches take a configuration file as text: [`Device::launcher`]
//! `.config("[auth]\nsession_idle_secs = 10\n").args(&[...]).start()`.

pub mod auth;
mod client;
mod device;
mod error;
pub mod fixtures;
pub mod jpeg;
mod logbuf;
pub mod mjpeg;
pub mod netns;
pub mod raw;
pub mod receivers;
pub mod sse;
pub mod tls;

pub use auth::{Auth, Session};
pub use client::{Client, Connection, HttpVersion, Req, Response, plain_http_get};
pub use device::{Device, Exited, Launch, mecam_binary, remote_configured, run_to_exit};
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

/// Runs an async test body to completion on a multi-threaded runtime (two workers,
/// like `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`) whose threads
/// have large stacks, re-raising its panic. Long test bodies, rustls and hyper in a
/// debug build can overflow the 2 MiB of a test thread.
///
/// ```ignore
/// #[test]
/// fn a_long_scenario() {
///     mecam_hil::run(async { /* ... */ });
/// }
/// ```
pub fn run<F>(body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    const STACK: usize = 32 << 20;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(STACK)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let task = runtime.spawn(body);
    let outcome = runtime.block_on(task);
    // Connections still open (their tasks) end with the runtime, not with the test.
    runtime.shutdown_background();
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test body did not finish: {e}"),
        }
    }
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
