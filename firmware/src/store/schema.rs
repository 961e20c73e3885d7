//! Table names, the schema version record and the rules for changing them.
//!
//! # Versioning rule
//!
//! The `meta` table holds one `schema` record: the version of the layout that last wrote
//! the environment and the oldest reader version that can still use it. An OTA update
//! can be rolled back (design decision 9), so an older build meets an index written by a
//! newer one. Therefore:
//!
//! - an *additive* change (a new table, a new meta key, a new `Trigger` tag that old
//!   builds show as `Other`) raises [`SCHEMA_VERSION`] only; older builds keep working;
//! - a change older builds would misread (a new row format, a changed key layout) also
//!   raises [`MIN_READER_VERSION`] to the new version, and older builds refuse the index
//!   with [`StoreError::NewerSchema`] instead of misreading it;
//! - opening never lowers a stored version: a rolled-back build leaves the newer record.
//!
//! # Tables
//!
//! Named LMDB databases in the one environment. Those this module owns are listed in
//! [`OWN_TABLES`]; names set aside for the other stages (accounts, events, OTA) are in
//! [`RESERVED_TABLES`] and are opened through [`Store::table`](super::Store::table).
//! A new table gets its name added there, and [`SCHEMA_VERSION`] raised, in one change.

use heed::types::Bytes;
use heed::{Database, RwTxn};

use super::error::StoreError;

/// Layout version this build writes.
///
/// - 1: segments, settings, meta.
/// - 2: accounts (additive): the `users`, `sessions`, `tokens` and `audit` tables are
///   opened at start-up with the row formats of `users`, `sessions`, `tokens` and
///   `audit`, and `meta` gains `next_user_id`, `next_token_id`, `audit_head` and
///   `audit_checkpoint`. A schema-1 build ignores all of them.
pub const SCHEMA_VERSION: u32 = 2;
/// Oldest reader version able to read what this build writes.
pub const MIN_READER_VERSION: u32 = 1;

/// Small counters and records (`schema`, id counter, byte total). Key: ASCII name.
pub(crate) const META: &str = "meta";
/// Segment rows. Key: start time (µs, big-endian) ‖ id (big-endian). Value: see `codec`.
pub(crate) const SEGMENTS: &str = "segments";
/// Secondary index. Key: id (big-endian). Value: start time (µs, big-endian).
pub(crate) const SEGMENT_IDS: &str = "segment_ids";
/// Configuration. Key: UTF-8 name. Value: JSON.
pub(crate) const SETTINGS: &str = "settings";

/// Accounts tables (reserved names, opened at start-up by the store since schema 2).
pub(crate) const USERS: &str = "users";
pub(crate) const SESSIONS: &str = "sessions";
pub(crate) const TOKENS: &str = "tokens";
pub(crate) const AUDIT: &str = "audit";

/// Tables owned by the store module itself.
pub const OWN_TABLES: &[&str] = &[META, SEGMENTS, SEGMENT_IDS, SETTINGS];

/// Names set aside for tables other stages add to the same environment, with what each
/// is meant to hold. Opening any other name through `Store::table` is refused, so the
/// list stays the one place that says what lives in the index.
pub const RESERVED_TABLES: &[(&str, &str)] = &[
    (
        "users",
        "accounts: one row per user (name, role, Argon2id hash and parameters, TOTP)",
    ),
    (
        "sessions",
        "accounts: session token hashes with idle and absolute expiry",
    ),
    (
        "tokens",
        "accounts: named, revocable bearer tokens (hash, scope)",
    ),
    (
        "audit",
        "accounts: hash-chained audit log, keyed by sequence number",
    ),
    ("events", "detection: motion/person events keyed by time"),
    (
        "ota",
        "OTA agent: slot state, pending version, last health check",
    ),
    (
        "vault",
        "vault: wrapped recording keys, if kept in the index",
    ),
];

/// `max_dbs` for the environment: own and reserved tables plus room to grow without
/// reopening (LMDB fixes this number at open time; each slot costs a few bytes).
pub(crate) const MAX_TABLES: u32 = 32;

/// Keys of the `meta` table.
pub(crate) mod key {
    /// `version: u32 BE ‖ min_reader: u32 BE`.
    pub const SCHEMA: &[u8] = b"schema";
    /// Next segment id to hand out (`u64 BE`); ids start at 1 and are never reused.
    pub const NEXT_SEGMENT_ID: &[u8] = b"next_segment_id";
    /// Sum of `bytes` over all segment rows (`u64 BE`), kept in step by every write.
    pub const SEGMENT_BYTES: &[u8] = b"segment_bytes";
    /// Upper bound on `end - start` of any segment row (`u64 BE`, µs): how far before
    /// an instant a segment covering it can start. Bounds range scans backwards.
    pub const MAX_SPAN_US: &[u8] = b"max_span_us";
    /// Next user id (`u64 BE`); absent means 1. Ids are never reused.
    pub const NEXT_USER_ID: &[u8] = b"next_user_id";
    /// Next API token id (`u64 BE`); absent means 1. Ids are never reused.
    pub const NEXT_TOKEN_ID: &[u8] = b"next_token_id";
    /// Last audit entry: `seq u64 BE ‖ hash [32]` (see `audit`).
    pub const AUDIT_HEAD: &[u8] = b"audit_head";
    /// Last audit entry dropped by retention: `seq u64 BE ‖ hash [32]`.
    pub const AUDIT_CHECKPOINT: &[u8] = b"audit_checkpoint";
}

/// The stored schema record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SchemaRecord {
    pub version: u32,
    pub min_reader: u32,
}

impl SchemaRecord {
    pub const CURRENT: Self = Self {
        version: SCHEMA_VERSION,
        min_reader: MIN_READER_VERSION,
    };

    pub fn encode(self) -> [u8; 8] {
        let mut out = [0; 8];
        out[..4].copy_from_slice(&self.version.to_be_bytes());
        out[4..].copy_from_slice(&self.min_reader.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let [v0, v1, v2, v3, m0, m1, m2, m3]: [u8; 8] = bytes
            .try_into()
            .map_err(|_| StoreError::corrupt_row("schema record is not 8 bytes"))?;
        Ok(Self {
            version: u32::from_be_bytes([v0, v1, v2, v3]),
            min_reader: u32::from_be_bytes([m0, m1, m2, m3]),
        })
    }
}

/// Checks the schema record inside the opening transaction and writes it on a new
/// environment. Refuses an index this build cannot read; never lowers a newer record.
pub(crate) fn check_or_init(
    txn: &mut RwTxn<'_>,
    meta: Database<Bytes, Bytes>,
    path: &std::path::Path,
) -> Result<SchemaRecord, StoreError> {
    let stored = meta
        .get(txn, key::SCHEMA)?
        .map(SchemaRecord::decode)
        .transpose()?;
    match stored {
        None => {
            meta.put(txn, key::SCHEMA, &SchemaRecord::CURRENT.encode())?;
            Ok(SchemaRecord::CURRENT)
        }
        Some(found) if found.min_reader > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: found.version,
            min_reader: found.min_reader,
            supported: SCHEMA_VERSION,
        }),
        Some(found) if found.version < SCHEMA_VERSION => {
            // Migrations from older layouts go here, in this transaction, one version
            // step at a time. 1 → 2 only adds tables and meta keys, created empty (or
            // adopted if a stage already opened them by name): nothing to rewrite.
            meta.put(txn, key::SCHEMA, &SchemaRecord::CURRENT.encode())?;
            Ok(SchemaRecord::CURRENT)
        }
        Some(found) => {
            if found.version > SCHEMA_VERSION {
                tracing::warn!(
                    stored = found.version,
                    supported = SCHEMA_VERSION,
                    "index written by newer firmware; opening it in compatible mode"
                );
            }
            Ok(found)
        }
    }
}
