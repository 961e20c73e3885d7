//! Shared parts of the account tables (`users`, `sessions`, `tokens`, `audit`): their
//! error type, the transaction helper that lets one write combine a change with its
//! audit entry, and small encoding helpers.
//!
//! # Storage only
//!
//! Hashing passwords, generating tokens, checking TOTP codes and deciding who may do
//! what happen in `auth`. These tables store what they are given: PHC strings, SHA-256
//! hashes of tokens, opaque TOTP state. What the store does enforce are the invariants
//! that need a transaction to be race-free: unique user names, setup only while no
//! account exists, never losing the last active admin, the per-user session cap and the
//! audit hash chain.
//!
//! # Row encoding
//!
//! User, session and token rows are JSON (heed's `SerdeJson` idea, written by hand so
//! decoding errors become [`StoreError::Corrupt`]): they are few, small, rarely written,
//! and a JSON row lets later firmware add fields (`#[serde(default)]`) that a
//! rolled-back build ignores. The audit log is a binary row because its bytes are what
//! the hash chain covers (see `audit`).
//!
//! # Composing a change with its audit entry
//!
//! Every operation exists in two forms: `Store::create_user` runs its own durable
//! transaction; `Store::create_user_in` works inside a transaction the caller opened
//! with [`Store::write_accounts`], so a user change and the audit entry that records it
//! commit together or not at all. The `_in` methods use only the transaction they are
//! given, which makes them the one exception to "do not call the store inside
//! `Store::write`".

use std::fmt;

use heed::RwTxn;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Store;
use super::error::StoreError;

/// What can go wrong with an account operation: a refused request, or the store.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The index itself failed (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Another account already has this name, compared case-insensitively.
    #[error("a user named `{0}` already exists (names are compared without regard to case)")]
    UserExists(String),

    /// No account with this name or id.
    #[error("no user `{0}`")]
    NoSuchUser(String),

    /// First-run setup was asked for but an account exists.
    #[error("setup is already done: an account exists")]
    AlreadySetUp,

    /// The change would leave no enabled admin, and so nobody able to manage the device.
    #[error("`{0}` is the last enabled admin; make another user admin first")]
    LastAdmin(String),

    /// A value handed to the store breaks a limit or invariant (a caller bug or bad input).
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// The user already has a token with this name.
    #[error("a token named `{0}` already exists; choose another name or revoke it first")]
    TokenNameTaken(String),

    /// No API token with this id.
    #[error("no API token with id {0}")]
    NoSuchToken(u64),
}

impl AccountError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<heed::Error> for AccountError {
    fn from(e: heed::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

/// Carries an [`AccountError`] out of [`Store::write`] as an error, so that the
/// transaction is aborted rather than committed half done. `StoreError` has no variant
/// for it; an encoding error is passed through untouched by the store's classification
/// and never retried, and it is unwrapped again before the caller sees it.
#[derive(Debug)]
struct Abort(AccountError);

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Abort {}

impl Store {
    /// Runs `f` in one durable write transaction for account changes. Any error from `f`
    /// aborts the whole transaction (nothing of it is written). Like [`Store::write`],
    /// `f` may run again after the map grows; inside it use only the `_in` methods.
    pub fn write_accounts<R>(
        &self,
        mut f: impl FnMut(&mut RwTxn<'_>) -> Result<R, AccountError>,
    ) -> Result<R, AccountError> {
        self.write(|txn| match f(txn) {
            Ok(v) => Ok(v),
            Err(AccountError::Store(e)) => Err(e),
            Err(other) => Err(StoreError::Lmdb(heed::Error::Encoding(Box::new(Abort(
                other,
            ))))),
        })
        .map_err(|e| match e {
            StoreError::Lmdb(heed::Error::Encoding(boxed)) => match boxed.downcast::<Abort>() {
                Ok(abort) => abort.0,
                Err(other) => AccountError::Store(StoreError::Lmdb(heed::Error::Encoding(other))),
            },
            other => AccountError::Store(other),
        })
    }
}

/// Encodes a JSON row.
pub(crate) fn to_row<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, AccountError> {
    serde_json::to_vec(value)
        .map_err(|e| AccountError::Store(StoreError::corrupt_row(format!("{what}: {e}"))))
}

/// Decodes a JSON row; a row that does not parse is damage of the index.
pub(crate) fn from_row<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::corrupt_row(format!("{what} row does not decode: {e}")))
}

/// A 32-byte key (a SHA-256 hash) read back from a table.
pub(crate) fn hash_key(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| {
        StoreError::corrupt_row(format!("hash key of {} bytes, expected 32", bytes.len()))
    })
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Checks a caller-supplied name: non-empty, at most `max` bytes, no control characters.
pub(crate) fn check_name(field: &'static str, s: &str, max: usize) -> Result<(), AccountError> {
    if s.is_empty() || s.len() > max {
        return Err(AccountError::invalid(
            field,
            format!("must be 1 to {max} bytes"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(AccountError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Lower-case hex for byte strings inside JSON rows (TOTP secrets).
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("not an even-length hex string"))
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        if !text.len().is_multiple_of(2) {
            return None;
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect()
    }
}
