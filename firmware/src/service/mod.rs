//! `mecam run`: checks everything that can be wrong before starting, then wires the
//! stages together and runs until SIGTERM or SIGINT.

mod detection;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::accounts::{AccessError, Accounts};
use crate::api::{self, AppState, Gauge};
use crate::camera::{self, CameraError};
use crate::config::{CameraSource, Config, ConfigError};
use crate::detect::person::ModelError;
use crate::encode::EncodeError;
use crate::encode::jpeg::TurboJpeg;
use crate::events::{EventBus, EventError, EventsApi};
use crate::live::LiveBus;
use crate::pipeline::Pipeline;
use crate::record::schedule::{self, Schedule};
use crate::record::{RecordError, Recording};
use crate::runtime;
use crate::status::CameraStatus;
use crate::store::{Store, StoreError};

/// How long open connections get to finish after a stop signal.
const DRAIN: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "data directory {} (`data_dir`, --data) is not usable: {source}; choose another directory or fix its permissions",
        path.display()
    )]
    DataDir { path: PathBuf, source: io::Error },
    #[error("cannot listen on {addr} (`{key}`): {reason}")]
    Listen {
        addr: SocketAddr,
        key: &'static str,
        reason: String,
    },
    #[error("camera `{spec}` (`camera.source`, --camera) cannot start: {source}")]
    Camera { spec: String, source: CameraError },
    #[error(transparent)]
    Encoder(#[from] EncodeError),
    #[error(transparent)]
    Tls(#[from] api::tls::TlsError),
    #[error("the index in the data directory cannot be opened: {0}")]
    Store(#[from] StoreError),
    #[error("accounts cannot be loaded: {0}")]
    Accounts(#[from] AccessError),
    #[error("recordings cannot be checked at start: {0}")]
    Recording(#[from] RecordError),
    #[error("detection cannot start: {0} (or turn detection off: `detection.enabled = false`)")]
    Model(#[from] ModelError),
    #[error("events cannot be opened: {0}")]
    Events(#[from] EventError),
    #[error("{0}")]
    Runtime(io::Error),
}

impl StartError {
    /// 2 for anything the user can fix in the configuration or environment.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Encoder(_) | Self::Runtime(_) | Self::Recording(_) | Self::Events(_) => 1,
            _ => 2,
        }
    }
}

pub fn run(config: Config) -> Result<(), StartError> {
    prepare_data_dir(&config.data_dir)?;
    let https = bind(config.server.listen, "server.listen")?;
    let redirect = config
        .server
        .http_redirect_listen
        .map(|addr| bind(addr, "server.http_redirect_listen"))
        .transpose()?;
    let source = camera::open(&config.camera).map_err(|source| StartError::Camera {
        spec: config.camera.source.to_string(),
        source,
    })?;
    if matches!(config.camera.source, CameraSource::Replay(_)) {
        let info = source.info();
        if (info.width, info.height) != (config.camera.size.width, config.camera.size.height) {
            tracing::info!(
                "replay frames are {}x{}; `camera.size` does not apply to replays",
                info.width,
                info.height
            );
        }
    }
    let jpeg = TurboJpeg::new(config.jpeg.quality)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    let accounts = Accounts::new(Arc::clone(&store), &config.auth)?;
    let model = detection::load_model(&config)?;
    let events = EventsApi::open(Arc::clone(&store), &config.data_dir, EventBus::new())?;
    let device_id = detection::device_id(&store)?;

    runtime::start(async move {
        // Handlers first: a stop signal during start-up must stop cleanly too, not
        // kill the process with the default action.
        let stop_signal = stop_signal().map_err(StartError::Runtime)?;
        let tls = api::tls::load_or_create(&config.data_dir, config.server.listen).await?;
        tracing::info!("TLS certificate SHA-256 fingerprint {}", tls.fingerprint);

        let (shutdown_tx, shutdown) = watch::channel(false);
        let bus = Arc::new(LiveBus::new());
        let camera = Arc::new(CameraStatus::default());
        let pipeline = Pipeline::start(
            source,
            Box::new(jpeg),
            Arc::clone(&bus),
            Arc::clone(&camera),
        )
        .map_err(StartError::Runtime)?;
        let recording = Rc::new(Recording::new(&config, Arc::clone(&store), pipeline.tap()));
        let report = recording.recover().await?;
        tracing::info!(?report, "recordings checked");
        match accounts.sealing_key()? {
            Some(key) => {
                events.set_sealing_key(key.clone());
                recording.enable(key)?;
            }
            None => tracing::info!(
                "not set up yet: open the web page to create the owner account; recording starts then"
            ),
        }
        let detection = detection::Detection::start(
            &config,
            model,
            &device_id,
            detection::Stages {
                tap: &pipeline.tap(),
                live: &bus,
                events: &events,
                recording: &recording,
                shutdown: &shutdown,
            },
        )
        .map_err(StartError::Runtime)?;
        let state = Rc::new(AppState {
            bus,
            camera,
            started: Instant::now(),
            shutdown,
            write_timeout: config.server.write_timeout,
            live_clients: Gauge::default(),
            connections: Gauge::default(),
            events: events.clone(),
            detector: detection.counters(),
            store,
            recording: Rc::clone(&recording),
            accounts: accounts.clone(),
            allow_public_clients: config.server.allow_public_clients,
        });
        let schedule = Schedule::from_config(&config.recording);
        if !schedule.windows.is_empty() {
            // The name was checked when the configuration was read.
            let tz = schedule::time_zone(config.recording.time_zone.as_deref())
                .unwrap_or(jiff::tz::TimeZone::UTC);
            tracing::info!(
                windows = schedule.windows.len(),
                time_zone = tz.iana_name().unwrap_or("system"),
                "following the recording schedule"
            );
            runtime::spawn(schedule::follow(schedule, tz, Rc::clone(&recording)));
        }
        runtime::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                accounts.purge().await;
            }
        });

        let https = TcpListener::from_std(https).map_err(StartError::Runtime)?;
        let https_addr = https.local_addr().map_err(StartError::Runtime)?;
        runtime::spawn(api::serve_https(
            https,
            tls.config,
            Rc::clone(&state),
            config.server.clone(),
        ));
        tracing::info!("serving HTTPS on https://{https_addr}");
        if let Some(redirect) = redirect {
            let redirect = TcpListener::from_std(redirect).map_err(StartError::Runtime)?;
            tracing::info!(
                "redirecting plain HTTP on http://{} to HTTPS",
                redirect.local_addr().map_err(StartError::Runtime)?
            );
            runtime::spawn(api::serve_redirect(
                redirect,
                https_addr.port(),
                Rc::clone(&state),
            ));
        }

        let signal = stop_signal.await;
        tracing::info!("{signal} received; stopping");
        let _ = shutdown_tx.send(true);
        let stopping = pipeline.request_stop();
        let deadline = Instant::now() + DRAIN;
        while state.connections.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if state.connections.get() > 0 {
            tracing::warn!(
                "{} connections did not close in time",
                state.connections.get()
            );
        }
        // Events first: the ones still open end and are stored while the recorder
        // still runs, then the recorder closes its segment.
        detection.stop().await;
        recording.stop().await;
        stopping.join();
        tracing::info!("stopped");
        Ok(())
    })
    .map_err(StartError::Runtime)?
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves with the name of
/// the first signal to arrive.
fn stop_signal() -> io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Creates the data directory and proves it is writable, so a read-only or foreign
/// directory is reported at start, not when the first recording fails.
fn prepare_data_dir(dir: &Path) -> Result<(), StartError> {
    let fail = |source| StartError::DataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".mecam-write-probe");
    std::fs::write(&probe, b"ok").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

fn bind(addr: SocketAddr, key: &'static str) -> Result<std::net::TcpListener, StartError> {
    let fail = |e: io::Error| {
        let reason = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "the address is already in use (is another mecam or web server running?)".into()
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".into()
            }
            io::ErrorKind::AddrNotAvailable => "no network interface has this address".into(),
            _ => e.to_string(),
        };
        StartError::Listen { addr, key, reason }
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(fail)?;
    // Lets a restarted service bind while old connections sit in TIME_WAIT; it does
    // not allow two live listeners on one port.
    socket.set_reuse_address(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(1024).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(socket.into())
}
