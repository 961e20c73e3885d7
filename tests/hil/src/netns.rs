//! A client on a *public* source address, for the rules that depend on where a request
//! comes from (setup only from the local network, public clients refused).
//!
//! [`PublicPeer::create`] makes a network namespace joined to this host by a veth pair
//! and numbers both ends from TEST-NET-2 (198.51.100.0/24, RFC 5737): public as far as
//! the device can tell, yet routed nowhere. Each peer takes one /30 of it — host end
//! `.4k+1`, namespace end `.4k+2` — claimed atomically by creating the namespace
//! `mecam-hil-k`, so parallel tests (and parallel test processes) do not collide.
//! [`PublicPeer::run`] runs a future on a thread that has entered the namespace, so
//! the sockets it opens (and only those) come from the public address; the rest of
//! the test stays on the host. Dropping the peer deletes the namespace, which deletes
//! the veth pair with it.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip` from iproute2; tests skip
//! with a message otherwise ([`PublicPeer::unavailable`]).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::Error;

/// /30 slots in 198.51.100.0/24.
const SLOTS: u8 = 64;
const NS_DIR: &str = "/run/netns";
/// A namespace left behind by a test process that died is reclaimed after this long
/// even if its owner file is missing; no test runs this long.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A network namespace whose one interface has a public IPv4 address, linked to an
/// address of this host.
pub struct PublicPeer {
    slot: u8,
    name: String,
}

impl PublicPeer {
    /// Why public peers cannot be made here, if they cannot (not root, no `ip`).
    pub fn unavailable() -> Option<String> {
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Some("making a network namespace needs root".into());
        }
        match Command::new("ip").arg("-V").output() {
            Ok(out) if out.status.success() => None,
            _ => Some("`ip` (iproute2) is not installed".into()),
        }
    }

    /// Makes the namespace and the link; see the module documentation.
    pub fn create() -> Result<Self, Error> {
        if let Some(why) = Self::unavailable() {
            return Err(Error::Unsupported(why));
        }
        for slot in 0..SLOTS {
            let name = format!("mecam-hil-{slot}");
            if !Path::new(NS_DIR).join(&name).exists() || reclaim_if_stale(slot, &name) {
                match ip(&["netns", "add", &name]) {
                    Ok(()) => return Self::claimed(slot, name),
                    // Taken by another test between the check and the claim.
                    Err(_) if Path::new(NS_DIR).join(&name).exists() => {}
                    // Not allowed here (a container without CAP_SYS_ADMIN, say).
                    Err(e) => return Err(Error::Unsupported(e.to_string())),
                }
            }
        }
        Err(Error::Launch(format!(
            "all {SLOTS} network namespace slots `mecam-hil-*` are taken; \
             remove stale ones with `ip netns del`"
        )))
    }

    fn claimed(slot: u8, name: String) -> Result<Self, Error> {
        // From here on, dropping `peer` removes what was made.
        let peer = Self { slot, name };
        let _ = std::fs::write(owner_file(slot), std::process::id().to_string());
        let (host_if, ns_if) = (format!("mhil{slot}h"), format!("mhil{slot}n"));
        // A veth left from a crashed run would make `link add` fail.
        let _ = ip(&["link", "del", &host_if]);
        let host = format!("{}/30", peer.host_ip());
        let public = format!("{}/30", peer.public_ip());
        let ns = peer.name.as_str();
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", ns])?;
        ip(&["addr", "add", &host, "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&["-n", ns, "addr", "add", &public, "dev", &ns_if])?;
        ip(&["-n", ns, "link", "set", &ns_if, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(peer)
    }

    /// This host's end of the link: a device listening on `0.0.0.0` (or on this
    /// address) is reached here from the namespace.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, self.slot * 4 + 1)
    }

    /// The namespace's address: the source address the device sees.
    pub fn public_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, self.slot * 4 + 2)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `make()`'s future to completion on a new thread inside the namespace, on
    /// a single-threaded runtime of its own; sockets it opens belong to the namespace.
    pub async fn run<F, Fut, T>(&self, make: F) -> Result<T, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = Path::new(NS_DIR).join(&self.name);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                let result = enter(&path).and_then(|()| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    Ok(runtime.block_on(make()))
                });
                let _ = tx.send(result);
            })?;
        rx.await
            .map_err(|_| Error::Protocol("the namespace thread panicked".into()))?
    }
}

impl Drop for PublicPeer {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("could not remove network namespace {}: {e}", self.name);
        }
        let _ = ip(&["link", "del", &format!("mhil{}h", self.slot)]);
        let _ = std::fs::remove_file(owner_file(self.slot));
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &Path) -> Result<(), Error> {
    let file = std::fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: setns(2) with a namespace file descriptor we hold open; it changes only
    // this thread's network namespace, which this thread alone uses afterwards.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

fn owner_file(slot: u8) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mecam-hil-netns-{slot}.pid"))
}

/// Deletes namespace `name` if the process that made it is gone (or it is very old).
fn reclaim_if_stale(slot: u8, name: &str) -> bool {
    let owner_alive = std::fs::read_to_string(owner_file(slot))
        .ok()
        .and_then(|t| t.trim().parse::<libc::pid_t>().ok())
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        .map(|pid| unsafe { libc::kill(pid, 0) } == 0);
    let old = std::fs::metadata(Path::new(NS_DIR).join(name))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_AFTER);
    let stale = match owner_alive {
        Some(alive) => !alive,
        None => old,
    };
    if stale {
        eprintln!("removing stale network namespace {name}");
        let _ = ip(&["netns", "del", name]);
        let _ = ip(&["link", "del", &format!("mhil{slot}h")]);
    }
    stale
}

fn ip(args: &[&str]) -> Result<(), Error> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Launch(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
