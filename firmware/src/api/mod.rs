//! The HTTPS API: hyper 1 over tokio-rustls, on the single I/O thread.

// Checks return the finished error response as `Err` so handlers can `return` it; it
// is built once per refused request, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod account_routes;
pub mod auth;
pub mod body;
pub mod credentials;
pub mod events;
pub mod json;
pub mod mjpeg;
pub mod recordings;
mod redirect;
pub mod routes;
mod server;
pub mod time;
mod timeout_io;
pub mod tls;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use redirect::serve_redirect;
pub use server::serve_https;

use crate::accounts::Accounts;
use crate::events::EventsApi;
use crate::live::LiveBus;
use crate::record::Recording;
use crate::status::CameraStatus;
use crate::store::Store;

/// What request handlers share. Lives on the I/O thread only, behind an `Rc`.
pub struct AppState {
    pub bus: Arc<LiveBus>,
    pub camera: Arc<CameraStatus>,
    pub started: Instant,
    /// Becomes `true` when the service is stopping.
    pub shutdown: watch::Receiver<bool>,
    pub write_timeout: Duration,
    pub live_clients: Gauge,
    pub connections: Gauge,
    /// The index: segments, accounts, audit. Writes fsync: call them off this thread.
    pub store: Arc<Store>,
    /// The recording stage (idle until the vault exists).
    pub recording: Rc<Recording>,
    pub accounts: Accounts,
    /// Events: listing, thumbnails and the update bus (SSE).
    pub events: EventsApi,
    /// The detector thread's counters; `None` when detection is off.
    pub detector: Option<Arc<crate::detect::runner::DetectorCounters>>,
    /// `server.allow_public_clients`.
    pub allow_public_clients: bool,
}

/// A count of things in progress, decremented when their guard drops.
#[derive(Default)]
pub struct Gauge(Cell<usize>);

impl Gauge {
    pub fn get(&self) -> usize {
        self.0.get()
    }

    pub fn enter(&self) -> GaugeGuard<'_> {
        self.0.set(self.0.get() + 1);
        GaugeGuard(self)
    }
}

pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.0.set(self.0.0.get() - 1);
    }
}
