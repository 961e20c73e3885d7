//! Opening the LMDB environment, its flags and map size, and the transaction helpers
//! that grow the map when it fills up.
//!
//! # Durability: the open flags
//!
//! The environment is opened with LMDB's defaults and no relaxing flag:
//!
//! - no `NO_SYNC` / `NO_META_SYNC` / `MAP_ASYNC`: every commit `fdatasync`s the data
//!   pages and then the meta page. LMDB never overwrites live pages and keeps two meta
//!   pages, so a power cut at any moment leaves the last fully synced commit as the
//!   state on next open — no log replay, no repair step. This is what the crash rule of
//!   design decision 7 relies on: when `put_segment` returns, the row survives a power
//!   cut; a write that had not returned is simply absent.
//! - no `WRITE_MAP`: with a writable map a stray write through a bad pointer lands in
//!   the database, and on Linux LMDB grows the file to the full map size; the read-only
//!   map keeps the file as large as its data.
//! - no `NO_LOCK`: the lock file lets `mecam` tools (a future `mecam index check`) open
//!   the index next to the running service safely.
//! - read transactions without thread-local storage (`read_txn_without_tls`): a reader
//!   slot belongs to the transaction, not the thread, so a store shared with a pool of
//!   blocking threads cannot leak slots as threads come and go.
//!
//! The price is an `fsync` per commit (a few ms to tens of ms on an SD card), so callers
//! batch rows (`put_segments`, `delete_segments`) and keep writes off the I/O loop.
//!
//! # Map size
//!
//! LMDB maps the whole file; the map size is a reservation of *virtual address space*
//! and the upper bound of the file, not memory or disk used: the file grows page by
//! page as data is written. A one-minute segment with 30 fragments is a ~280-byte row;
//! with its key, the id index and B-tree pages the file grows by 370 bytes per segment
//! (measured over a year of rows, see `measure.rs`): a year of continuous one-minute
//! segments (525 600 rows) is ~190 MiB, and a 1 s keyframe interval doubles that.
//! 16 GiB therefore holds decades of segments plus events, audit log and the rest, and
//! costs nothing on aarch64, whose user address space is 512 GiB (39-bit VA on
//! Raspberry Pi kernels); a read-only shared file mapping is not charged against
//! memory either. A 32-bit build has only ~3 GiB of address space and gets 1 GiB.
//! Should the map fill anyway, a write that fails with `MDB_MAP_FULL` is aborted, the
//! map is doubled (up to `max_map_size`) and the write retried; at the ceiling the
//! caller gets [`StoreError::Full`], and everything already stored stays readable.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use heed::{Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use super::error::StoreError;
use super::schema::MAX_TABLES;

/// Map size a new environment is opened with.
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_MAP_SIZE: usize = 16 << 30;
/// Ceiling the map may grow to when it fills.
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_MAX_MAP_SIZE: usize = 64 << 30;
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_MAP_SIZE: usize = 1 << 30;
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_MAX_MAP_SIZE: usize = 3 << 29;

/// How often one write is retried after growing or adopting the map size. Doubling
/// from 16 GiB reaches any ceiling long before this.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// Tunables of [`Store::open_with`](super::Store::open_with). The defaults are right
/// for the device; tests use small maps to exercise growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Initial map size in bytes (rounded up to the page size).
    pub map_size: usize,
    /// Largest map size growth may reach.
    pub max_map_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            map_size: DEFAULT_MAP_SIZE,
            max_map_size: DEFAULT_MAX_MAP_SIZE,
        }
    }
}

/// The environment and the helpers every table goes through.
pub(crate) struct Core {
    env: Env<WithoutTls>,
    path: PathBuf,
    max_map_size: usize,
    /// Every transaction holds this shared; resizing the map holds it exclusively,
    /// because LMDB requires that no transaction of this process is active during
    /// `mdb_env_set_mapsize`. Transactions never escape the helpers below, so this
    /// lock sees all of them.
    gate: RwLock<()>,
}

impl Core {
    /// Opens (creating if needed) the environment in `path`.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let unavailable = |source| StoreError::Unavailable {
            path: path.to_path_buf(),
            source,
        };
        // 0700: the index will hold password hashes and session tokens (accounts).
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(unavailable)?;
        let map_size = round_to_page(options.map_size);
        let max_map_size = round_to_page(options.max_map_size.max(map_size));

        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(map_size).max_dbs(MAX_TABLES);
        // SAFETY: the flags are LMDB's safe defaults (see the module doc). The data file
        // is modified only through LMDB: the store never hands out the file, and the
        // `index/` directory belongs to this module alone.
        let env =
            unsafe { opts.open(path) }.map_err(|e| StoreError::from(e).classify(path, map_size))?;
        check_file_length(&env, path)?;
        // Reader slots of a process that died (power cut, kill -9) are freed here
        // rather than pinning old pages until the lock file is reset.
        let stale = env
            .clear_stale_readers()
            .map_err(|e| StoreError::from(e).classify(path, map_size))?;
        if stale > 0 {
            tracing::info!(stale, "cleared stale index readers");
        }
        Ok(Self {
            env,
            path: path.to_path_buf(),
            max_map_size,
            gate: RwLock::new(()),
        })
    }

    pub fn env(&self) -> &Env<WithoutTls> {
        &self.env
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// Turns an internal error into the one reported to the caller.
    pub fn classify(&self, e: StoreError) -> StoreError {
        e.classify(&self.path, self.map_size())
    }

    /// Runs `f` in a read transaction. `f` must not call back into the store: a
    /// nested transaction could deadlock against a map resize waiting for this one.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&RoTxn<'_, WithoutTls>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _shared = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        self.env
            .read_txn()
            .map_err(StoreError::from)
            .and_then(|txn| f(&txn))
            .map_err(|e| self.classify(e))
    }

    /// Runs `f` in a write transaction and commits it, durably, if `f` succeeds.
    /// On `MDB_MAP_FULL` the transaction is aborted, the map grown and `f` run again
    /// from scratch, so `f` must not consume what it captures. Like `read`, `f` must
    /// not call back into the store.
    pub fn write<R>(
        &self,
        mut f: impl FnMut(&mut RwTxn<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let seen = self.map_size();
            let outcome = {
                let _shared = self.gate.read().unwrap_or_else(PoisonError::into_inner);
                self.env
                    .write_txn()
                    .map_err(StoreError::from)
                    .and_then(|mut txn| {
                        // An error drops `txn`, which aborts it.
                        let value = f(&mut txn)?;
                        txn.commit()?;
                        Ok(value)
                    })
            };
            match outcome {
                Err(e) if e.is_map_full() && attempts < MAX_WRITE_ATTEMPTS => self.grow(seen)?,
                Err(e) if e.is_map_resized() && attempts < MAX_WRITE_ATTEMPTS => self.resize(0)?,
                other => return other.map_err(|e| self.classify(e)),
            }
        }
    }

    /// Doubles the map, up to the ceiling, unless another thread already grew it past
    /// `seen` (the size the failed transaction ran with) while this one waited.
    fn grow(&self, seen: usize) -> Result<(), StoreError> {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let current = self.map_size();
        if current > seen {
            return Ok(());
        }
        if current >= self.max_map_size {
            return Err(StoreError::Full {
                path: self.path.clone(),
                map_size: current,
            });
        }
        let next = round_to_page(current.saturating_mul(2)).min(self.max_map_size);
        tracing::warn!(from = current, to = next, "index map full; growing it");
        // SAFETY: see `resize`; the exclusive gate is held.
        unsafe { self.env.resize(next) }.map_err(|e| self.classify(e.into()))
    }

    /// Sets the map size; 0 adopts the size another process already set.
    fn resize(&self, size: usize) -> Result<(), StoreError> {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the exclusive gate guarantees that no transaction of this process is
        // active (every transaction is made under the shared gate, and none outlives
        // the helper that made it), which is LMDB's condition for a resize.
        unsafe { self.env.resize(size) }.map_err(|e| self.classify(e.into()))
    }
}

/// Refuses a data file shorter than its last committed page. LMDB maps the file and
/// would touch pages past its end, which is a SIGBUS (a crash, not an error), so a
/// truncated file — a copy cut short, a damaged card — must be caught before any read.
fn check_file_length(env: &Env<WithoutTls>, path: &Path) -> Result<(), StoreError> {
    let info = env.info();
    let page = u64::from(env.stat().page_size);
    let needed = (info.last_page_number as u64).saturating_add(1) * page;
    let actual = env
        .real_disk_size()
        .map_err(|e| StoreError::from(e).classify(path, info.map_size))?;
    if actual < needed {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "data.mdb is {actual} bytes but its last committed page ends at byte \
                 {needed}: the file was truncated"
            ),
        });
    }
    Ok(())
}

/// Rounds up to a multiple of the OS page size, as LMDB requires of map sizes.
fn round_to_page(size: usize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => 4096,
    };
    size.max(page).div_ceil(page).saturating_mul(page)
}
