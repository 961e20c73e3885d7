//! The LMDB index and state store (design decision 7).
//!
//! One LMDB environment (via `heed`) in `DATA/index/` holds everything the device must
//! remember besides the recordings themselves: segment rows with their fragment tables,
//! settings, and — added by the other stages in the same environment — users,
//! sessions, tokens, the audit log, events and OTA state (`schema::RESERVED_TABLES`).
//!
//! - [`env`](mod@env): opening, durability flags, map size and its growth;
//! - [`schema`]: table names, the schema version record and the rules for changing it;
//! - [`segments`]: segment rows, time-range listing, find-at-instant, the byte total;
//! - `codec`: the byte layout of keys and rows (and why it is binary);
//! - [`reconcile`]: the start-up repair that makes the index agree with the disk;
//! - [`retention`]: choosing what to delete for a maximum age and a byte quota;
//! - [`settings`]: string key → JSON value;
//! - [`users`], [`sessions`], [`tokens`], [`audit`]: accounts storage (issue 3): user
//!   rows, hashed session and API tokens, the hash-chained audit log; `accounts` holds
//!   what they share ([`AccountError`], [`Store::write_accounts`]).
//!
//! # The crash rule
//!
//! A segment file is made durable before the row that points at it commits, and every
//! commit is durable when it returns. After a power cut the index can therefore only
//! be *behind* the disk: a row still `writing` (its file holds more or fewer fragments
//! than the row says), a file without a row (written but not yet indexed), or a row
//! whose file was being deleted. [`Store::reconcile`] resolves all three at start-up.
//!
//! # Threads
//!
//! `Store` is `Send + Sync` and every method is a short transaction. Writes `fsync`
//! (milliseconds on an SD card), so the service calls them from a blocking thread, not
//! from the I/O loop.

mod accounts;
pub mod audit;
mod codec;
pub mod env;
mod error;
pub mod reconcile;
pub mod retention;
pub mod schema;
pub mod segments;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod users;

#[cfg(test)]
mod measure;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_accounts;

use std::fmt;
use std::path::Path;

use heed::types::{Bytes, Str};
use heed::{Database, RoTxn, RwTxn, WithoutTls};

pub use accounts::AccountError;
pub use audit::{AuditActor, AuditEntry, AuditQuery, AuditRecord, AuditTamper, ChainSummary};
pub use env::{DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, StoreOptions};
pub use error::StoreError;
pub use reconcile::{DiskFile, InterruptedSegment, ReconcileSummary};
pub use retention::RetentionPolicy;
pub use segments::{
    Fragment, Located, MAX_SEGMENT_SPAN_US, Segment, SegmentId, SegmentState, SegmentSummary,
    Trigger,
};
pub use sessions::{ClientInfo, MAX_SESSIONS_PER_USER, Session, TokenHash};
pub use tokens::{ApiToken, NewToken, TokenId};
pub use users::{NewUser, Role, TotpState, User, UserId};

use env::Core;
use schema::{SchemaRecord, key};

/// Handles of the tables this module owns. Copies of LMDB handles: cheap, valid for the
/// life of the environment.
#[derive(Clone, Copy)]
pub(crate) struct Tables {
    pub meta: Database<Bytes, Bytes>,
    pub segments: Database<Bytes, Bytes>,
    pub segment_ids: Database<Bytes, Bytes>,
    pub settings: Database<Str, Bytes>,
    // Accounts (issue 3): the reserved names of `schema::RESERVED_TABLES`, opened at
    // start-up because the store enforces their invariants (see `accounts`).
    pub users: Database<Bytes, Bytes>,
    pub sessions: Database<Bytes, Bytes>,
    pub tokens: Database<Bytes, Bytes>,
    pub audit: Database<Bytes, Bytes>,
}

/// The index and state store. See the module documentation.
pub struct Store {
    core: Core,
    tables: Tables,
    schema: SchemaRecord,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.core.path())
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Directory of the environment inside the data directory.
    pub const INDEX_DIR: &'static str = "index";

    /// Opens (creating if needed) the index in `data_dir/index/` with the device
    /// defaults. Errors say what is wrong and what to do; nothing here panics on a
    /// damaged or foreign file.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(data_dir, StoreOptions::default())
    }

    /// [`open`](Self::open) with explicit map sizes.
    pub fn open_with(
        data_dir: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let path = data_dir.as_ref().join(Self::INDEX_DIR);
        let core = Core::open(&path, options)?;
        let (tables, schema) = core.write(|txn| {
            let env = core.env();
            // The schema record is checked before any other table is touched, so an
            // index from newer firmware is refused without being modified.
            let meta = env.create_database(txn, Some(schema::META))?;
            let schema = schema::check_or_init(txn, meta, &path)?;
            let tables = Tables {
                meta,
                segments: env.create_database(txn, Some(schema::SEGMENTS))?,
                segment_ids: env.create_database(txn, Some(schema::SEGMENT_IDS))?,
                settings: env.create_database(txn, Some(schema::SETTINGS))?,
                users: env.create_database(txn, Some(schema::USERS))?,
                sessions: env.create_database(txn, Some(schema::SESSIONS))?,
                tokens: env.create_database(txn, Some(schema::TOKENS))?,
                audit: env.create_database(txn, Some(schema::AUDIT))?,
            };
            for k in [key::NEXT_SEGMENT_ID, key::SEGMENT_BYTES, key::MAX_SPAN_US] {
                if tables.meta.get(txn, k)?.is_none() {
                    let initial: u64 = if k == key::NEXT_SEGMENT_ID { 1 } else { 0 };
                    tables.set_meta_u64(txn, k, initial)?;
                }
            }
            Ok((tables, schema))
        })?;
        let store = Self {
            core,
            tables,
            schema,
        };
        tracing::info!(
            path = %path.display(),
            schema = schema.version,
            map_size = store.map_size(),
            "index open"
        );
        Ok(store)
    }

    /// The environment directory (`DATA/index`).
    pub fn path(&self) -> &Path {
        self.core.path()
    }

    /// Current map size in bytes (grows when the map fills).
    pub fn map_size(&self) -> usize {
        self.core.map_size()
    }

    /// Schema version recorded in the environment (newer than [`schema::SCHEMA_VERSION`]
    /// if newer firmware wrote it compatibly).
    pub fn schema_version(&self) -> u32 {
        self.schema.version
    }

    /// Runs `f` in a read transaction. For the other stages' tables (see [`Self::table`]).
    /// `f` gets the transaction, not the store: it must not call other `Store` methods
    /// (a nested transaction can deadlock against a map resize).
    pub fn read<R>(
        &self,
        f: impl FnOnce(&RoTxn<'_, WithoutTls>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.core.read(f)
    }

    /// Runs `f` in a write transaction committed durably if `f` succeeds. `f` may run
    /// more than once (after the map is grown), so it must not consume its captures;
    /// nor may it call other `Store` methods (see [`Self::read`]).
    pub fn write<R>(
        &self,
        f: impl FnMut(&mut RwTxn<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.core.write(f)
    }

    /// Opens (creating if needed) one of the [`schema::RESERVED_TABLES`] for another
    /// stage, with the key and value codecs it chooses. Call once at start-up and keep
    /// the handle.
    pub fn table<K: 'static, V: 'static>(&self, name: &str) -> Result<Database<K, V>, StoreError> {
        if !schema::RESERVED_TABLES.iter().any(|(n, _)| *n == name) {
            return Err(StoreError::UnknownTable(name.to_owned()));
        }
        self.write(|txn| Ok(self.core.env().create_database(txn, Some(name))?))
    }
}
