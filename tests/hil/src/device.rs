//! The device under test: a `mecam` process started here, or a camera on the bench.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::auth::{ADMIN_PASSWORD, ADMIN_USER};
use crate::logbuf::{self, LogBuf, WaitError};
use crate::{Client, Error};

/// Start-up includes making a certificate and the first frame; on a loaded CI machine
/// that can take a while, so wait generously. A crash is noticed at once anyway.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const FINGERPRINT_LINE: &str = "TLS certificate SHA-256 fingerprint ";
const SERVING_LINE: &str = "serving HTTPS on https://";
const REDIRECT_LINE: &str = "redirecting plain HTTP on http://";

/// Whether `MECAM_HIL_URL` points the suite at a remote device.
pub fn remote_configured() -> bool {
    std::env::var_os("MECAM_HIL_URL").is_some_and(|v| !v.is_empty())
}

/// The `mecam` binary to launch: `MECAM_BIN`, or `mecam` in this test's target
/// directory (`target/debug/deps/<test>` → `target/debug/mecam`), built first.
///
/// Cargo does not build another package's binary for these tests, and a stale binary
/// would let the suite pass against old code, so the first launch in each test process
/// runs `cargo build -p mecam` (a no-op when it is up to date, as after `scripts/test`).
pub fn mecam_binary() -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("MECAM_BIN") {
        let path = PathBuf::from(bin);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Launch(format!(
                "MECAM_BIN={} is not a file",
                path.display()
            )))
        };
    }
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(build_local_binary)
        .clone()
        .map_err(Error::Launch)
}

fn build_local_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("cannot find the target directory from {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("{} has no parent", profile_dir.display()))?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "mecam", "--manifest-path"])
        .arg(&workspace)
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let out = build
        .output()
        .map_err(|e| format!("cannot run cargo to build mecam: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo build -p mecam` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let path = profile_dir.join("mecam");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "cargo built mecam but {} is missing",
            path.display()
        ))
    }
}

/// How a `mecam` run that was expected to stop on its own ended.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub log: String,
    pub elapsed: Duration,
}

/// Runs `mecam ARGS` to completion (it is expected to exit by itself, e.g. refusing a
/// bad configuration) and kills it if it is still running after `timeout`.
pub fn run_to_exit<S: AsRef<OsStr>>(args: &[S], timeout: Duration) -> Result<Exited, Error> {
    // The first call may build the binary; that is not the run's time.
    mecam_binary()?;
    let started = Instant::now();
    let mut child = spawn(args)?;
    let log = child_log(&mut child)?;
    let status = poll_exit(&mut child, timeout)?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Timeout(format!(
            "mecam still running after {}s; log:\n{}",
            timeout.as_secs_f32(),
            log.text()
        )));
    };
    let elapsed = started.elapsed();
    wait_closed(&log);
    Ok(Exited {
        status,
        log: log.text(),
        elapsed,
    })
}

fn spawn<S: AsRef<OsStr>>(args: &[S]) -> Result<Child, Error> {
    let bin = mecam_binary()?;
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The lines parsed here are at INFO; keep a developer's MECAM_LOG if they set one.
    if std::env::var_os("MECAM_LOG").is_none() {
        cmd.env("MECAM_LOG", "info");
    }
    cmd.spawn()
        .map_err(|e| Error::Launch(format!("cannot start {}: {e}", bin.display())))
}

fn child_log(child: &mut Child) -> Result<LogBuf, Error> {
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| Error::Launch("child has no stderr pipe".into()))?;
    Ok(LogBuf::drain(stderr)?)
}

/// Polls for the child's exit; `None` if it is still running at the deadline.
fn poll_exit(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After exit, lets the stderr thread take the last lines out of the pipe.
fn wait_closed(log: &LogBuf) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !log.is_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `mecam run` process owned by a test.
struct Local {
    child: Child,
    log: LogBuf,
    data_dir: PathBuf,
    /// Deleted when the device is dropped, if the device made it.
    _temp: Option<TempDir>,
    signalled_at: Option<Instant>,
    exited: Option<ExitStatus>,
    /// Holds the `--config` file, if the launch had one.
    _config_dir: Option<TempDir>,
}

/// The device under test. Dropping a local device kills its process.
pub struct Device {
    addr: SocketAddr,
    host: String,
    fingerprint: String,
    /// A remote device's plain-HTTP port, from `MECAM_HIL_HTTP_URL`.
    remote_redirect: Option<SocketAddr>,
    local: Option<Local>,
    /// The owner's logged-in client, made on first use by [`Device::admin`].
    admin: tokio::sync::OnceCell<Client>,
}

/// How to start a local device: [`Device::launcher`], then these, then [`Launch::start`].
#[derive(Debug, Clone, Default)]
pub struct Launch {
    args: Vec<String>,
    config: Option<String>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
}

impl Launch {
    /// More `mecam run` flags (`--size`, `--fps`, ...).
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// A configuration file with this TOML text, passed as `--config` (flags still
    /// override it). E.g. `"[auth]\nsession_idle_secs = 10\n"`.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// `--listen ADDR` instead of `127.0.0.1:0`, e.g. `0.0.0.0:0` to be reachable from a
    /// network namespace. An unspecified address is reached over loopback by
    /// [`Device::client`].
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = Some(addr.to_owned());
        self
    }

    /// Runs on this data directory (kept by the caller, e.g. for a restart) instead of
    /// a fresh temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    pub fn start(self) -> Result<Device, Error> {
        let (data_dir, temp) = match &self.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new().prefix("mecam-hil-").tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let config_dir = match &self.config {
            None => None,
            Some(text) => {
                let dir = tempfile::Builder::new()
                    .prefix("mecam-hil-config-")
                    .tempdir()?;
                std::fs::write(dir.path().join("mecam.toml"), text)?;
                Some(dir)
            }
        };
        let config_path = config_dir.as_ref().map(|d| d.path().join("mecam.toml"));
        let mut args: Vec<&OsStr> = Vec::new();
        if let Some(path) = &config_path {
            args.extend([OsStr::new("--config"), path.as_os_str()]);
        }
        args.extend(self.args.iter().map(OsStr::new));
        Device::start(
            &data_dir,
            temp,
            config_dir,
            self.listen.as_deref().unwrap_or("127.0.0.1:0"),
            &args,
        )
    }
}

impl Device {
    /// The remote device named by `MECAM_HIL_URL` and `MECAM_HIL_FINGERPRINT`, or else
    /// a local `mecam run --data <tempdir> --listen 127.0.0.1:0 ARGS`. A remote device
    /// runs its own configuration: tests read sizes and rates from its health report.
    pub fn from_env_or_launch(args: &[&str]) -> Result<Self, Error> {
        if remote_configured() {
            Self::remote()
        } else {
            Self::launch(args)
        }
    }

    fn remote() -> Result<Self, Error> {
        let url = std::env::var("MECAM_HIL_URL").unwrap_or_default();
        let fingerprint = std::env::var("MECAM_HIL_FINGERPRINT").map_err(|_| {
            Error::Launch(
                "MECAM_HIL_URL is set but MECAM_HIL_FINGERPRINT is not; copy the fingerprint \
                 from the device's log (`TLS certificate SHA-256 fingerprint ...`)"
                    .into(),
            )
        })?;
        let (host, addr) = resolve(&url, "https", 443)?;
        let remote_redirect = match std::env::var("MECAM_HIL_HTTP_URL") {
            Ok(http) if !http.is_empty() => Some(resolve(&http, "http", 80)?.1),
            _ => None,
        };
        Ok(Self {
            addr,
            host,
            fingerprint,
            remote_redirect,
            local: None,
            admin: tokio::sync::OnceCell::new(),
        })
    }

    /// Options for a local launch: a configuration file, the listen address, a data
    /// directory to keep. `Device::launch(args)` is `Device::launcher().args(args).start()`.
    pub fn launcher() -> Launch {
        Launch::default()
    }

    /// Launches a local service with a fresh data directory.
    pub fn launch(args: &[&str]) -> Result<Self, Error> {
        Self::launcher().args(args).start()
    }

    /// Launches a local service on a data directory the caller keeps, e.g. to restart
    /// it on the same certificate.
    pub fn launch_in(data_dir: &Path, args: &[&str]) -> Result<Self, Error> {
        Self::launcher().data_dir(data_dir).args(args).start()
    }

    fn start(
        data_dir: &Path,
        temp: Option<TempDir>,
        config_dir: Option<TempDir>,
        listen: &str,
        args: &[&OsStr],
    ) -> Result<Self, Error> {
        let mut full: Vec<&OsStr> = vec![
            "run".as_ref(),
            "--data".as_ref(),
            data_dir.as_os_str(),
            "--listen".as_ref(),
            listen.as_ref(),
        ];
        full.extend(args.iter().copied());
        let mut child = spawn(&full)?;
        let log = match child_log(&mut child) {
            Ok(log) => log,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let local = Local {
            child,
            log,
            data_dir: data_dir.to_owned(),
            _temp: temp,
            signalled_at: None,
            exited: None,
            _config_dir: config_dir,
        };
        // `local` is dropped (and the child killed) on every early return below.
        let fingerprint = local.wait_for_line(FINGERPRINT_LINE, |v| Some(v.to_owned()))?;
        let mut addr = local.wait_for_line(SERVING_LINE, |v| v.parse::<SocketAddr>().ok())?;
        // Listening on every address: talk to it over loopback.
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(Self {
            addr,
            host: addr.ip().to_string(),
            fingerprint,
            remote_redirect: None,
            local: Some(local),
            admin: tokio::sync::OnceCell::new(),
        })
    }

    /// A client pinned to this device's certificate, without credentials.
    pub fn client(&self) -> Result<Client, Error> {
        Client::new(self.addr, &self.host, &self.fingerprint)
    }

    /// A client that reaches the device at another of its addresses (same port), e.g.
    /// the host side of a network namespace's link.
    pub fn client_at(&self, ip: IpAddr) -> Result<Client, Error> {
        let addr = SocketAddr::new(ip, self.addr.port());
        Client::new(addr, &ip.to_string(), &self.fingerprint)
    }

    /// The owner's user name and password: for a local device the ones
    /// [`Device::admin`] sets it up with, for a remote one `MECAM_HIL_USER` and
    /// `MECAM_HIL_PASSWORD`.
    pub fn admin_credentials(&self) -> Result<(String, String), Error> {
        if self.is_local() {
            return Ok((ADMIN_USER.to_owned(), ADMIN_PASSWORD.to_owned()));
        }
        let user = std::env::var("MECAM_HIL_USER").unwrap_or_default();
        let password = std::env::var("MECAM_HIL_PASSWORD").unwrap_or_default();
        if user.is_empty() || password.is_empty() {
            return Err(Error::Launch(
                "the remote device needs an admin account: set MECAM_HIL_USER and \
                 MECAM_HIL_PASSWORD"
                    .into(),
            ));
        }
        Ok((user, password))
    }

    /// A client logged in (cookie session) as the device's admin. A local device that
    /// has not been set up yet is set up first, as `auth::ADMIN_USER` with
    /// `auth::ADMIN_PASSWORD`. Made once per device; clones share the session, so a
    /// test that logs this session out or changes the admin password should log in
    /// on its own with [`Client::login`] instead.
    pub async fn admin(&self) -> Result<Client, Error> {
        self.admin
            .get_or_try_init(|| async {
                let client = self.client()?;
                let (user, password) = self.admin_credentials()?;
                if self.is_local() && self.setup_needed().await? {
                    return Ok(client.setup(&user, &password).await?.0);
                }
                client.login(&user, &password, None).await
            })
            .await
            .cloned()
    }

    /// `GET /api/v1/setup`: whether the device still waits for its owner.
    pub async fn setup_needed(&self) -> Result<bool, Error> {
        let body = self.client()?.get_json("/api/v1/setup").await?;
        body["needed"]
            .as_bool()
            .ok_or_else(|| Error::Protocol(format!("no boolean `needed` in {body}")))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The logged SHA-256 certificate fingerprint, colon-separated hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The plain-HTTP redirect port, if the device has one (locally: started with
    /// `--http-redirect-listen`, waiting briefly for its log line).
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        match &self.local {
            None => self.remote_redirect,
            Some(local) => local
                .log
                .wait_for(Duration::from_secs(10), |line| {
                    logbuf::after(line, REDIRECT_LINE)?
                        .split_whitespace()
                        .next()?
                        .parse::<SocketAddr>()
                        .ok()
                })
                .ok(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.local.as_ref().map(|l| l.child.id())
    }

    pub fn data_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.data_dir.as_path())
    }

    /// Everything the local service has logged so far (empty for a remote device).
    pub fn log(&self) -> String {
        self.local
            .as_ref()
            .map(|l| l.log.text())
            .unwrap_or_default()
    }

    /// Resident memory of the service process, from `/proc/PID/status` (`VmRSS`).
    pub fn rss_bytes(&self) -> Result<u64, Error> {
        let pid = self.pid().ok_or(Error::NotLocal)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| Error::Protocol(format!("no VmRSS in /proc/{pid}/status")))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the local service.
    pub fn signal(&mut self, signal: libc::c_int) -> Result<(), Error> {
        let local = self.local.as_mut().ok_or(Error::NotLocal)?;
        let pid = libc::pid_t::try_from(local.child.id())
            .map_err(|_| Error::Launch("pid out of range".into()))?;
        // SAFETY: kill(2) on our own child's pid; it has not been reaped (we hold the
        // Child and reap only through it), so the pid cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        local.signalled_at = Some(Instant::now());
        Ok(())
    }

    /// Waits for the local service to exit; returns its status and the time since the
    /// last [`Device::signal`] (or since this call, if none was sent). Blocks the thread.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration), Error> {
        let local = self.local.as_mut().ok_or(Error::NotLocal)?;
        let since = local.signalled_at.unwrap_or_else(Instant::now);
        let status = match local.exited {
            Some(status) => status,
            None => poll_exit(&mut local.child, timeout)?.ok_or_else(|| {
                Error::Timeout(format!(
                    "mecam still running {}s after the signal",
                    since.elapsed().as_secs_f32()
                ))
            })?,
        };
        // Measured before waiting for the log so the pipe's tail does not count.
        let took = since.elapsed();
        local.exited = Some(status);
        wait_closed(&local.log);
        Ok((status, took))
    }

    /// [`Device::signal`] then [`Device::wait_exit`] with a generous timeout.
    pub fn stop(&mut self, signal: libc::c_int) -> Result<(ExitStatus, Duration), Error> {
        self.signal(signal)?;
        self.wait_exit(Duration::from_secs(15))
    }
}

impl Local {
    /// Waits for the line carrying `marker` and parses what follows it.
    fn wait_for_line<T>(
        &self,
        marker: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, Error> {
        let found = self.log.wait_for(START_TIMEOUT, |line| {
            logbuf::after(line, marker).and_then(&parse)
        });
        found.map_err(|why| {
            let what = match why {
                WaitError::Closed => "mecam exited before logging",
                WaitError::TimedOut => "mecam did not log in time",
            };
            Error::Launch(format!(
                "{what} `{}`; its log:\n{}",
                marker.trim(),
                self.log.text()
            ))
        })
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            // The service's side of a failed test; the test harness shows it with the panic.
            eprintln!(
                "---- mecam log ({}) ----\n{}",
                self.data_dir.display(),
                self.log.text()
            );
        }
    }
}

/// Splits `https://host:port/...` into the host and a resolved address.
fn resolve(url: &str, scheme: &str, default_port: u16) -> Result<(String, SocketAddr), Error> {
    let bad = |why: &str| Error::Launch(format!("`{url}` is not a usable {scheme} URL: {why}"));
    let rest = url
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
        .ok_or_else(|| bad(&format!("expected {scheme}://HOST[:PORT]")))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
        None => default_port,
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .next()
        .ok_or_else(|| bad("the host has no address"))?;
    Ok((host.to_owned(), addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_urls_are_split_into_host_and_address() {
        let (host, addr) = resolve("https://192.168.1.50:8443/", "https", 443).expect("valid");
        assert_eq!((host.as_str(), addr.port()), ("192.168.1.50", 8443));
        let (host, addr) = resolve("https://[::1]", "https", 443).expect("valid");
        assert_eq!((host.as_str(), addr.port()), ("::1", 443));
        assert!(resolve("http://10.0.0.1", "https", 443).is_err());
        assert!(resolve("https://:443", "https", 443).is_err());
    }
}
