//! The `sessions` table: logged-in browser sessions.
//!
//! Key: SHA-256 of the session token (32 bytes), computed by `auth`. The token itself is
//! never stored, so a copy of the index does not log anyone in. Value: JSON
//! ([`Session`]).
//!
//! Expiry is decided by the caller's clock ([`Session::is_live`]); expired rows are
//! removed by [`Store::purge_expired_sessions`], which the service runs periodically,
//! and a user's sessions are capped at [`MAX_SESSIONS_PER_USER`] (the oldest go first)
//! so a script that logs in in a loop cannot grow the table without bound.
//!
//! Touching a session (`last_seen`) is a durable write, an `fsync` on the SD card;
//! [`Store::touch_session`] therefore writes only when the stored value is more than
//! [`TOUCH_GRANULARITY_US`] old, which makes idle expiry up to that much more lenient.

use heed::{RoTxn, RwTxn};
use serde::{Deserialize, Serialize};

use super::Store;
use super::accounts::{self, AccountError};
use super::error::StoreError;
use super::users::UserId;

/// Sessions kept per user; creating one more removes the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 20;
/// `last_seen` is rewritten at most this often (µs): one minute.
pub const TOUCH_GRANULARITY_US: u64 = 60 * 1_000_000;
/// Longest stored client address and user agent (bytes); longer ones are cut.
pub const MAX_CLIENT_IP_LEN: usize = 64;
pub const MAX_USER_AGENT_LEN: usize = 256;
/// Longest CSRF value (bytes).
pub const MAX_CSRF_LEN: usize = 256;

/// SHA-256 of a session or API token.
pub type TokenHash = [u8; 32];

/// Who opened the session, for the user's "where am I logged in" list. Cut to
/// [`MAX_CLIENT_IP_LEN`] and [`MAX_USER_AGENT_LEN`] on insert.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientInfo {
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub user_agent: String,
}

/// A session row. Times are µs since the Unix epoch.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: UserId,
    pub created_us: u64,
    pub last_seen_us: u64,
    /// The session ends after this long without a request.
    pub idle_timeout_us: u64,
    /// The session ends at this instant whatever happens.
    pub expires_us: u64,
    /// CSRF secret (or a value `auth` derives it from); opaque to the store.
    pub csrf: String,
    #[serde(default)]
    pub client: ClientInfo,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("created_us", &self.created_us)
            .field("last_seen_us", &self.last_seen_us)
            .field("idle_timeout_us", &self.idle_timeout_us)
            .field("expires_us", &self.expires_us)
            .field("csrf", &"<redacted>")
            .field("client", &self.client)
            .finish()
    }
}

impl Session {
    /// Neither idle nor past its absolute expiry at `now_us`.
    pub fn is_live(&self, now_us: u64) -> bool {
        now_us < self.expires_us && now_us < self.last_seen_us.saturating_add(self.idle_timeout_us)
    }
}

fn decode(bytes: &[u8]) -> Result<Session, StoreError> {
    accounts::from_row("session", bytes)
}

impl Store {
    /// Every session of `user`, with its key, oldest (by creation) first.
    pub fn user_sessions_in(
        &self,
        txn: &RoTxn<'_>,
        user: UserId,
    ) -> Result<Vec<(TokenHash, Session)>, StoreError> {
        let mut out = Vec::new();
        for row in self.tables.sessions.iter(txn)? {
            let (k, v) = row?;
            let session = decode(v)?;
            if session.user_id == user {
                out.push((accounts::hash_key(k)?, session));
            }
        }
        out.sort_by_key(|(_, s)| s.created_us);
        Ok(out)
    }

    /// Stores a new session for an existing user, removing that user's oldest sessions
    /// beyond [`MAX_SESSIONS_PER_USER`]. Returns how many were removed.
    pub fn insert_session_in(
        &self,
        txn: &mut RwTxn<'_>,
        hash: &TokenHash,
        session: &Session,
    ) -> Result<usize, AccountError> {
        if self.user_by_id_in(txn, session.user_id)?.is_none() {
            return Err(AccountError::NoSuchUser(format!("id {}", session.user_id)));
        }
        if self.tables.sessions.get(txn, hash)?.is_some() {
            return Err(AccountError::invalid(
                "session",
                "a session with this token hash exists (tokens must be random)",
            ));
        }
        if session.csrf.len() > MAX_CSRF_LEN {
            return Err(AccountError::invalid(
                "csrf",
                format!("at most {MAX_CSRF_LEN} bytes"),
            ));
        }
        let mut session = session.clone();
        session.client.ip = accounts::truncate(&session.client.ip, MAX_CLIENT_IP_LEN);
        session.client.user_agent =
            accounts::truncate(&session.client.user_agent, MAX_USER_AGENT_LEN);

        let existing = self.user_sessions_in(txn, session.user_id)?;
        let excess = (existing.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
        for (k, _) in existing.iter().take(excess) {
            self.tables.sessions.delete(txn, k)?;
        }
        let row = accounts::to_row("session", &session)?;
        self.tables.sessions.put(txn, hash, &row)?;
        Ok(excess)
    }

    /// The session stored under `hash`, live or not (see [`Session::is_live`]).
    pub fn session_in(
        &self,
        txn: &RoTxn<'_>,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        self.tables.sessions.get(txn, hash)?.map(decode).transpose()
    }

    /// Removes every session of `user` (password change, account removal). Returns
    /// how many there were.
    pub fn delete_user_sessions_in(
        &self,
        txn: &mut RwTxn<'_>,
        user: UserId,
    ) -> Result<usize, StoreError> {
        let doomed = self.user_sessions_in(txn, user)?;
        for (k, _) in &doomed {
            self.tables.sessions.delete(txn, k)?;
        }
        Ok(doomed.len())
    }

    /// See [`Store::insert_session_in`].
    pub fn insert_session(
        &self,
        hash: &TokenHash,
        session: &Session,
    ) -> Result<usize, AccountError> {
        self.write_accounts(|txn| self.insert_session_in(txn, hash, session))
    }

    /// See [`Store::session_in`].
    pub fn session(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.read(|txn| self.session_in(txn, hash))
    }

    /// Records activity on a session at `now_us`: returns the session as it is now, or
    /// `None` if there is none. Writes only when the stored `last_seen` is more than
    /// [`TOUCH_GRANULARITY_US`] older (see the module doc); never moves it backwards.
    pub fn touch_session(
        &self,
        hash: &TokenHash,
        now_us: u64,
    ) -> Result<Option<Session>, StoreError> {
        let stale = |s: &Session| now_us.saturating_sub(s.last_seen_us) > TOUCH_GRANULARITY_US;
        match self.session(hash)? {
            Some(s) if stale(&s) => {}
            other => return Ok(other),
        }
        self.write(|txn| {
            let Some(mut s) = self.session_in(txn, hash)? else {
                return Ok(None);
            };
            if stale(&s) {
                s.last_seen_us = now_us;
                let row = serde_json::to_vec(&s)
                    .map_err(|e| StoreError::corrupt_row(format!("session: {e}")))?;
                self.tables.sessions.put(txn, hash, &row)?;
            }
            Ok(Some(s))
        })
    }

    /// Removes one session inside the caller's transaction; returns whether it existed.
    pub fn delete_session_in(
        &self,
        txn: &mut RwTxn<'_>,
        hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        Ok(self.tables.sessions.delete(txn, hash)?)
    }

    /// Logs a session out; returns whether it existed.
    pub fn delete_session(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        self.write(|txn| Ok(self.tables.sessions.delete(txn, hash)?))
    }

    /// See [`Store::delete_user_sessions_in`].
    pub fn delete_user_sessions(&self, user: UserId) -> Result<usize, StoreError> {
        self.write(|txn| self.delete_user_sessions_in(txn, user))
    }

    /// Every session of `user`, oldest first, without their keys (for listing).
    pub fn user_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        self.read(|txn| {
            Ok(self
                .user_sessions_in(txn, user)?
                .into_iter()
                .map(|(_, s)| s)
                .collect())
        })
    }

    /// Removes every session that is not live at `now_us`; returns how many.
    pub fn purge_expired_sessions(&self, now_us: u64) -> Result<usize, StoreError> {
        self.write(|txn| {
            let mut doomed = Vec::new();
            for row in self.tables.sessions.iter(txn)? {
                let (k, v) = row?;
                if !decode(v)?.is_live(now_us) {
                    doomed.push(accounts::hash_key(k)?);
                }
            }
            for k in &doomed {
                self.tables.sessions.delete(txn, k)?;
            }
            Ok(doomed.len())
        })
    }

    /// Number of stored sessions (all users, live or not).
    pub fn session_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(self.tables.sessions.len(txn)?))
    }
}
