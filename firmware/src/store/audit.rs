//! The `audit` table: an append-only, hash-chained log of security-relevant actions
//! (setup, logins, logouts, user, role, token and config changes, updates).
//!
//! # Layout
//!
//! Key: sequence number, `u64` big-endian, from 1, without gaps: byte order is append
//! order. Value, format 1:
//!
//! ```text
//! u8      format (= 1)
//! u64 BE  time_us            caller's clock; not monotonic (a Pi has no RTC)
//! opt     actor user         u8 0 = none | u8 1, u16 BE length, UTF-8
//! opt     actor address      same
//! u16 BE  length, action     ASCII code such as `login.failed`
//! u32 BE  length, details    JSON text, exactly as hashed
//! [32]    prev_hash          `hash` of entry seq - 1 (of the checkpoint, or zeros)
//! [32]    hash               SHA-256(prev_hash ‖ seq BE ‖ value up to prev_hash)
//! ```
//!
//! The hash covers the bytes as stored, so the details JSON is hashed as the text that
//! was written, not as re-serialised (which could reorder keys). It covers the key too,
//! so moving an entry to another sequence number breaks it.
//!
//! `meta` holds the chain head (`audit_head`: seq ‖ hash of the last entry appended)
//! and the retention checkpoint (`audit_checkpoint`: seq ‖ hash of the last entry
//! dropped by [`Store::drop_oldest_audit_entries`]); the chain is verified from the
//! checkpoint to the head, so removing the newest entries is detected as well as
//! removing or editing any in between, and retention does not break verification.
//!
//! # What it protects against
//!
//! Editing, deleting or reordering entries with tools that do not also recompute every
//! later hash and the head — a careless or partial tampering, a damaged row. Someone
//! who can write the index at will can rewrite the whole chain; detecting that needs an
//! anchor outside the device (for example the head exported to the owner's phone or a
//! remote log), which the API can offer by showing the head.
//!
//! # Same transaction as the change
//!
//! [`Store::append_audit_in`] appends inside a caller's [`Store::write_accounts`]
//! transaction, so a change and its record commit together.

use std::fmt;
use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use ring::digest;
use serde::{Deserialize, Serialize};

use super::Store;
use super::accounts::{self, AccountError};
use super::codec;
use super::error::StoreError;
use super::schema::key;
use super::users::normalize_username;

/// Format byte of audit rows written by this build.
const AUDIT_FORMAT: u8 = 1;
/// Longest action code (bytes).
pub const MAX_ACTION_LEN: usize = 64;
/// Actor fields longer than this are cut (bytes).
pub const MAX_ACTOR_LEN: usize = 128;
/// Longest details JSON text (bytes); larger details are refused.
pub const MAX_DETAILS_LEN: usize = 4096;
/// Hash of the (absent) entry before the first one.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Who did it: an account and/or the address the request came from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditActor {
    pub user: Option<String>,
    pub addr: Option<String>,
}

/// What the caller supplies to append an entry.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    /// µs since the Unix epoch.
    pub time_us: u64,
    pub actor: &'a AuditActor,
    /// ASCII letters, digits, `.`, `_`, `-`: e.g. `login.failed`, `user.role`.
    pub action: &'a str,
    pub details: &'a serde_json::Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub seq: u64,
    pub time_us: u64,
    pub actor: AuditActor,
    pub action: String,
    pub details: serde_json::Value,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// Selects entries for [`Store::audit_entries`]. All filters combine with "and".
#[derive(Debug, Clone)]
pub struct AuditQuery<'a> {
    /// Entries with `time_us >= from_us`.
    pub from_us: Option<u64>,
    /// Entries with `time_us < to_us`.
    pub to_us: Option<u64>,
    pub action: Option<&'a str>,
    /// Compared ignoring case, like user names.
    pub actor_user: Option<&'a str>,
    pub actor_addr: Option<&'a str>,
    /// Continue after this sequence number (in the listing direction): pass the `seq`
    /// of the last entry of the previous page.
    pub cursor: Option<u64>,
    pub newest_first: bool,
    pub limit: usize,
}

impl Default for AuditQuery<'_> {
    fn default() -> Self {
        Self {
            from_us: None,
            to_us: None,
            action: None,
            actor_user: None,
            actor_addr: None,
            cursor: None,
            newest_first: false,
            limit: 100,
        }
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log tampered with or damaged at entry {seq}: {what}")]
pub struct AuditTamper {
    /// The first sequence number at which the chain does not hold.
    pub seq: u64,
    pub what: String,
}

/// What a successful [`Store::verify_audit_chain`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSummary {
    /// Entries verified.
    pub entries: u64,
    /// Sequence number of the last dropped entry (0 if none was).
    pub checkpoint_seq: u64,
    /// Sequence number and hash of the newest entry (0 and zeros for an empty log).
    pub head_seq: u64,
    pub head_hash: [u8; 32],
}

/// A `seq ‖ hash` record of `meta`.
fn decode_mark(bytes: &[u8]) -> Result<(u64, [u8; 32]), StoreError> {
    if bytes.len() != 40 {
        return Err(StoreError::corrupt_row("audit mark is not 40 bytes"));
    }
    let (seq, hash) = bytes.split_at(8);
    Ok((codec::be_u64(seq)?, accounts::hash_key(hash)?))
}

fn encode_mark(seq: u64, hash: &[u8; 32]) -> [u8; 40] {
    let mut out = [0; 40];
    out[..8].copy_from_slice(&seq.to_be_bytes());
    out[8..].copy_from_slice(hash);
    out
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str16(out, s);
        }
    }
}

/// Callers cut strings to far below 64 KiB first.
fn put_str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The hash of an entry: SHA-256(prev_hash ‖ seq BE ‖ body).
fn entry_hash(prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(body);
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Reads an audit row without panicking on short or malformed input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if n > self.0.len() {
            return Err(StoreError::corrupt_row("audit row ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn str_n(&mut self, n: usize) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| StoreError::corrupt_row("audit row text is not UTF-8"))
    }

    fn str16(&mut self) -> Result<&'a str, StoreError> {
        let b = self.take(2)?;
        self.str_n(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn opt(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str16()?.to_owned())),
            n => Err(StoreError::corrupt_row(format!("audit row option tag {n}"))),
        }
    }
}

/// Decodes a row; also returns the body the hash covers.
fn decode_entry(seq: u64, value: &[u8]) -> Result<(AuditEntry, &[u8]), StoreError> {
    if value.len() < 64 {
        return Err(StoreError::corrupt_row(format!(
            "audit entry {seq} is too short"
        )));
    }
    let (body, hashes) = value.split_at(value.len() - 64);
    let mut r = Reader(body);
    let format = r.u8()?;
    if format != AUDIT_FORMAT {
        return Err(StoreError::corrupt_row(format!(
            "audit entry {seq} has format {format}, this build reads {AUDIT_FORMAT}"
        )));
    }
    let time_us = codec::be_u64(r.take(8)?)?;
    let actor = AuditActor {
        user: r.opt()?,
        addr: r.opt()?,
    };
    let action = r.str16()?.to_owned();
    let len = r.take(4)?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let details_text = r.str_n(usize::try_from(len).unwrap_or(usize::MAX))?;
    if !r.0.is_empty() {
        return Err(StoreError::corrupt_row(format!(
            "audit entry {seq} has trailing bytes"
        )));
    }
    let details = serde_json::from_str(details_text).map_err(|e| {
        StoreError::corrupt_row(format!("audit entry {seq} details are not JSON: {e}"))
    })?;
    let (prev, hash) = hashes.split_at(32);
    let entry = AuditEntry {
        seq,
        time_us,
        actor,
        action,
        details,
        prev_hash: accounts::hash_key(prev)?,
        hash: accounts::hash_key(hash)?,
    };
    Ok((entry, body))
}

fn check_action(action: &str) -> Result<(), AccountError> {
    accounts::check_name("audit action", action, MAX_ACTION_LEN)?;
    if !action
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(AccountError::invalid(
            "audit action",
            "only ASCII letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

impl AuditQuery<'_> {
    fn matches(&self, e: &AuditEntry) -> bool {
        self.from_us.is_none_or(|t| e.time_us >= t)
            && self.to_us.is_none_or(|t| e.time_us < t)
            && self.action.is_none_or(|a| e.action == a)
            && self.actor_user.is_none_or(|u| {
                e.actor
                    .user
                    .as_deref()
                    .is_some_and(|x| normalize_username(x) == normalize_username(u))
            })
            && self
                .actor_addr
                .is_none_or(|a| e.actor.addr.as_deref() == Some(a))
    }
}

impl Store {
    fn audit_mark(&self, txn: &RoTxn<'_>, k: &[u8]) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.tables.meta.get(txn, k)?.map(decode_mark).transpose()
    }

    /// Appends an entry inside the caller's transaction; returns its sequence number.
    /// Refuses an action code that is not a short ASCII code and details over
    /// [`MAX_DETAILS_LEN`] bytes of JSON; actor fields are cut to [`MAX_ACTOR_LEN`].
    pub fn append_audit_in(
        &self,
        txn: &mut RwTxn<'_>,
        record: &AuditRecord<'_>,
    ) -> Result<u64, AccountError> {
        check_action(record.action)?;
        let details = serde_json::to_string(record.details)
            .map_err(|e| AccountError::invalid("audit details", e.to_string()))?;
        if details.len() > MAX_DETAILS_LEN {
            return Err(AccountError::invalid(
                "audit details",
                format!("{} bytes of JSON, at most {MAX_DETAILS_LEN}", details.len()),
            ));
        }
        let (head_seq, prev) = match self.audit_mark(txn, key::AUDIT_HEAD)? {
            Some(mark) => mark,
            None => self
                .audit_mark(txn, key::AUDIT_CHECKPOINT)?
                .unwrap_or((0, GENESIS_HASH)),
        };
        let seq = head_seq + 1;
        let cut = |s: &Option<String>| s.as_deref().map(|s| accounts::truncate(s, MAX_ACTOR_LEN));

        let mut row = Vec::with_capacity(96 + details.len());
        row.push(AUDIT_FORMAT);
        row.extend_from_slice(&record.time_us.to_be_bytes());
        put_opt(&mut row, cut(&record.actor.user).as_deref());
        put_opt(&mut row, cut(&record.actor.addr).as_deref());
        put_str16(&mut row, record.action);
        row.extend_from_slice(&(details.len() as u32).to_be_bytes());
        row.extend_from_slice(details.as_bytes());
        let hash = entry_hash(&prev, seq, &row);
        row.extend_from_slice(&prev);
        row.extend_from_slice(&hash);

        self.tables.audit.put(txn, &seq.to_be_bytes(), &row)?;
        self.tables
            .meta
            .put(txn, key::AUDIT_HEAD, &encode_mark(seq, &hash))?;
        Ok(seq)
    }

    /// Appends an entry in its own durable transaction. Prefer
    /// [`Store::append_audit_in`] next to the change it records.
    pub fn append_audit(&self, record: &AuditRecord<'_>) -> Result<u64, AccountError> {
        self.write_accounts(|txn| self.append_audit_in(txn, record))
    }

    /// Entries matching `query`, in sequence order (or reversed), at most `limit`.
    /// Time filters are a scan, not a seek: the clock may have stepped between entries.
    pub fn audit_entries(&self, query: &AuditQuery<'_>) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|txn| {
            let mut out = Vec::new();
            if query.limit == 0 {
                return Ok(out);
            }
            let cursor = query.cursor.map(u64::to_be_bytes);
            let (lower, upper) = match (&cursor, query.newest_first) {
                (Some(c), false) => (Bound::Excluded(&c[..]), Bound::Unbounded),
                (Some(c), true) => (Bound::Unbounded, Bound::Excluded(&c[..])),
                (None, _) => (Bound::Unbounded, Bound::Unbounded),
            };
            let range = (lower, upper);
            let mut visit = |k: &[u8], v: &[u8]| -> Result<bool, StoreError> {
                let (entry, _) = decode_entry(codec::be_u64(k)?, v)?;
                if query.matches(&entry) {
                    out.push(entry);
                }
                Ok(out.len() < query.limit)
            };
            if query.newest_first {
                for row in self.tables.audit.rev_range(txn, &range)? {
                    let (k, v) = row?;
                    if !visit(k, v)? {
                        break;
                    }
                }
            } else {
                for row in self.tables.audit.range(txn, &range)? {
                    let (k, v) = row?;
                    if !visit(k, v)? {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Number of entries kept (after retention).
    pub fn audit_len(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(self.tables.audit.len(txn)?))
    }

    /// Checks the whole chain from the retention checkpoint to the head. The outer error
    /// is a failure to read the index; the inner one says where the chain breaks.
    pub fn verify_audit_chain(&self) -> Result<Result<ChainSummary, AuditTamper>, StoreError> {
        self.read(|txn| {
            let tamper = |seq: u64, what: String| Ok(Err(AuditTamper { seq, what }));
            let checkpoint = self.audit_mark(txn, key::AUDIT_CHECKPOINT)?;
            let head = self.audit_mark(txn, key::AUDIT_HEAD)?;
            let (checkpoint_seq, mut prev) = checkpoint.unwrap_or((0, GENESIS_HASH));
            let mut last = checkpoint_seq;
            let mut entries = 0;
            for row in self.tables.audit.iter(txn)? {
                let (k, v) = row?;
                let expected = last + 1;
                let Ok(seq) = codec::be_u64(k) else {
                    return tamper(expected, "an entry key is not a sequence number".into());
                };
                if seq < expected {
                    return tamper(
                        seq,
                        format!("entry is at or before the retention checkpoint {checkpoint_seq}"),
                    );
                }
                if seq > expected {
                    return tamper(
                        expected,
                        format!("entries {expected} to {} are missing", seq - 1),
                    );
                }
                let (entry, body) = match decode_entry(seq, v) {
                    Ok(decoded) => decoded,
                    Err(e) => return tamper(seq, format!("entry does not decode: {e}")),
                };
                if entry.prev_hash != prev {
                    return tamper(
                        seq,
                        format!(
                            "entry does not link to entry {}: an entry was deleted, \
                             replaced or reordered",
                            seq - 1
                        ),
                    );
                }
                if entry_hash(&prev, seq, body) != entry.hash {
                    return tamper(seq, "entry content does not match its hash (edited)".into());
                }
                prev = entry.hash;
                last = seq;
                entries += 1;
            }
            match head {
                None if last == 0 => {}
                None => return tamper(last, "the chain head record is missing".into()),
                Some((head_seq, _)) if head_seq != last => {
                    return tamper(
                        last + 1,
                        format!(
                            "the head says the log ends at entry {head_seq}, \
                             but it ends at {last}: newest entries were removed"
                        ),
                    );
                }
                Some((_, head_hash)) if head_hash != prev => {
                    return tamper(last, "the last entry does not match the chain head".into());
                }
                Some(_) => {}
            }
            Ok(Ok(ChainSummary {
                entries,
                checkpoint_seq,
                head_seq: last,
                head_hash: prev,
            }))
        })
    }

    /// Retention: drops the oldest entries so that at most `keep` remain, recording the
    /// last dropped entry as the checkpoint the chain is then verified from. Returns how
    /// many were dropped.
    pub fn drop_oldest_audit_entries(&self, keep: u64) -> Result<u64, StoreError> {
        self.write(|txn| {
            let len = self.tables.audit.len(txn)?;
            let excess = len.saturating_sub(keep);
            if excess == 0 {
                return Ok(0);
            }
            let mut doomed = Vec::new();
            let mut mark = None;
            for row in self
                .tables
                .audit
                .iter(txn)?
                .take(usize::try_from(excess).unwrap_or(usize::MAX))
            {
                let (k, v) = row?;
                let seq = codec::be_u64(k)?;
                let (entry, _) = decode_entry(seq, v)?;
                doomed.push(seq);
                mark = Some((seq, entry.hash));
            }
            for seq in &doomed {
                self.tables.audit.delete(txn, &seq.to_be_bytes())?;
            }
            if let Some((seq, hash)) = mark {
                self.tables
                    .meta
                    .put(txn, key::AUDIT_CHECKPOINT, &encode_mark(seq, &hash))?;
            }
            Ok(doomed.len() as u64)
        })
    }
}

impl fmt::Display for ChainSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries verified up to entry {} (checkpoint {})",
            self.entries, self.head_seq, self.checkpoint_seq
        )
    }
}
