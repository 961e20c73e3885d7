//! The device under test: a `mecam` process started here, or a camera on the bench.

use std::ffi::OsStr;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

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
}

/// The device under test. Dropping a local device kills its process.
pub struct Device {
    addr: SocketAddr,
    host: String,
    fingerprint: String,
    /// A remote device's plain-HTTP port, from `MECAM_HIL_HTTP_URL`.
    remote_redirect: Option<SocketAddr>,
    local: Option<Local>,
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
        })
    }

    /// Launches a local service with a fresh data directory.
    pub fn launch(args: &[&str]) -> Result<Self, Error> {
        let temp = tempfile::Builder::new().prefix("mecam-hil-").tempdir()?;
        let data_dir = temp.path().to_owned();
        Self::start(&data_dir, Some(temp), args)
    }

    /// Launches a local service on a data directory the caller keeps, e.g. to restart
    /// it on the same certificate.
    pub fn launch_in(data_dir: &Path, args: &[&str]) -> Result<Self, Error> {
        Self::start(data_dir, None, args)
    }

    fn start(data_dir: &Path, temp: Option<TempDir>, args: &[&str]) -> Result<Self, Error> {
        let mut full: Vec<&OsStr> = vec![
            "run".as_ref(),
            "--data".as_ref(),
            data_dir.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ];
        full.extend(args.iter().map(OsStr::new));
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
        };
        // `local` is dropped (and the child killed) on every early return below.
        let fingerprint = local.wait_for_line(FINGERPRINT_LINE, |v| Some(v.to_owned()))?;
        let addr = local.wait_for_line(SERVING_LINE, |v| v.parse::<SocketAddr>().ok())?;
        Ok(Self {
            addr,
            host: addr.ip().to_string(),
            fingerprint,
            remote_redirect: None,
            local: Some(local),
        })
    }

    /// A client pinned to this device's certificate.
    pub fn client(&self) -> Result<Client, Error> {
        Client::new(self.addr, &self.host, &self.fingerprint)
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
