//! The `users` table: one row per account.
//!
//! Key: the user name normalised for comparison (Unicode lower case, UTF-8), so that
//! `Alice` and `alice` are one account and a lookup at login is one B-tree get. The row
//! keeps the name as the user typed it for display. Value: JSON ([`User`]).
//!
//! Ids come from the `next_user_id` counter in `meta`, start at 1 and are never reused,
//! so a session or token that outlived its user (it cannot: deleting a user deletes
//! them in the same transaction) could never be mistaken for a later account's.
//!
//! Accounts are few (a household), so lookups by id and counts of admins scan the
//! table instead of keeping a second index in step.

use std::fmt;

use heed::{RoTxn, RwTxn};
use serde::{Deserialize, Serialize};

use super::Store;
use super::accounts::{self, AccountError, hex_bytes};
use super::error::StoreError;
use super::schema::key;

/// Longest user name in bytes. Far below LMDB's 511-byte key limit even after lower
/// casing (which can grow a string a little).
pub const MAX_USERNAME_LEN: usize = 64;

/// Identifier of an account: increasing, never reused, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an account (or an API token) may do. Stored as `"admin"` / `"viewer"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Live view, events and recordings; no settings, users, tokens or updates.
    Viewer,
}

/// Per-user TOTP state, as opaque to the store as the password hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// The shared secret, or a blob sealed by the caller (the store does not look).
    #[serde(with = "hex_bytes")]
    pub secret: Vec<u8>,
    /// Last accepted time step, so a code cannot be replayed within its window.
    #[serde(default)]
    pub last_step: Option<u64>,
    /// Hashes (PHC strings) of the unused one-time recovery codes.
    #[serde(default)]
    pub recovery_code_hashes: Vec<String>,
}

impl fmt::Debug for TotpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("TotpState")
            .field("secret", &"<redacted>")
            .field("last_step", &self.last_step)
            .field("recovery_codes", &self.recovery_code_hashes.len())
            .finish()
    }
}

/// An account row.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// The name as created (display form); unique ignoring case.
    pub username: String,
    pub role: Role,
    /// PHC string (`$argon2id$v=19$m=...`), which carries its own parameters so they
    /// can be raised later and old hashes still verified.
    pub password_hash: String,
    #[serde(default)]
    pub totp: Option<TotpState>,
    /// µs since the Unix epoch.
    pub created_us: u64,
    /// µs since the Unix epoch, of the last change.
    pub updated_us: u64,
    /// A disabled account cannot log in and does not count as an admin.
    #[serde(default)]
    pub disabled: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .field("totp", &self.totp)
            .field("created_us", &self.created_us)
            .field("updated_us", &self.updated_us)
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl User {
    /// Counts towards "at least one admin must remain".
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }
}

/// What the caller supplies to create an account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub now_us: u64,
}

/// The comparison form of a user name: the table key.
pub fn normalize_username(name: &str) -> String {
    name.to_lowercase()
}

fn check_username(name: &str) -> Result<(), AccountError> {
    accounts::check_name("username", name, MAX_USERNAME_LEN)?;
    if name.trim() != name {
        return Err(AccountError::invalid(
            "username",
            "must not start or end with white space",
        ));
    }
    if normalize_username(name).len() > 2 * MAX_USERNAME_LEN {
        return Err(AccountError::invalid("username", "is too long"));
    }
    Ok(())
}

fn check_user(user: &User) -> Result<(), AccountError> {
    check_username(&user.username)?;
    if user.password_hash.is_empty() || user.password_hash.len() > 1024 {
        return Err(AccountError::invalid(
            "password_hash",
            "must be 1 to 1024 bytes",
        ));
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<User, StoreError> {
    accounts::from_row("user", bytes)
}

/// Transaction-level operations (see `accounts` for the `_in` convention).
impl Store {
    /// The account named `username` (any case).
    pub fn user_in(&self, txn: &RoTxn<'_>, username: &str) -> Result<Option<User>, StoreError> {
        let k = normalize_username(username);
        // LMDB refuses empty and over-long keys; no account can have such a name.
        if k.is_empty() || k.len() > 2 * MAX_USERNAME_LEN {
            return Ok(None);
        }
        self.tables
            .users
            .get(txn, k.as_bytes())?
            .map(decode)
            .transpose()
    }

    /// The account with id `id` (a scan: accounts are few).
    pub fn user_by_id_in(&self, txn: &RoTxn<'_>, id: UserId) -> Result<Option<User>, StoreError> {
        for row in self.tables.users.iter(txn)? {
            let user = decode(row?.1)?;
            if user.id == id {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    /// Every account, ordered by normalised name.
    pub fn users_in(&self, txn: &RoTxn<'_>) -> Result<Vec<User>, StoreError> {
        self.tables
            .users
            .iter(txn)?
            .map(|row| decode(row?.1))
            .collect()
    }

    /// Enabled admins.
    pub fn admin_count_in(&self, txn: &RoTxn<'_>) -> Result<u64, StoreError> {
        let mut n = 0;
        for row in self.tables.users.iter(txn)? {
            n += u64::from(decode(row?.1)?.is_active_admin());
        }
        Ok(n)
    }

    /// Creates an account; fails with [`AccountError::UserExists`] if the name is taken
    /// in any case.
    pub fn create_user_in(
        &self,
        txn: &mut RwTxn<'_>,
        new: &NewUser<'_>,
    ) -> Result<User, AccountError> {
        check_username(new.username)?;
        let k = normalize_username(new.username);
        if self.tables.users.get(txn, k.as_bytes())?.is_some() {
            return Err(AccountError::UserExists(new.username.to_owned()));
        }
        let next = self.tables.meta_u64(txn, key::NEXT_USER_ID)?.unwrap_or(1);
        let user = User {
            id: UserId(next),
            username: new.username.to_owned(),
            role: new.role,
            password_hash: new.password_hash.to_owned(),
            totp: None,
            created_us: new.now_us,
            updated_us: new.now_us,
            disabled: false,
        };
        check_user(&user)?;
        self.tables.set_meta_u64(txn, key::NEXT_USER_ID, next + 1)?;
        let row = accounts::to_row("user", &user)?;
        self.tables.users.put(txn, k.as_bytes(), &row)?;
        Ok(user)
    }

    /// First-run setup: creates an admin only while no account exists. Inside one write
    /// transaction, and LMDB runs one writer at a time, so of two racing setup calls
    /// exactly one succeeds and the other gets [`AccountError::AlreadySetUp`].
    pub fn create_first_admin_in(
        &self,
        txn: &mut RwTxn<'_>,
        username: &str,
        password_hash: &str,
        now_us: u64,
    ) -> Result<User, AccountError> {
        if !self.tables.users.is_empty(txn)? {
            return Err(AccountError::AlreadySetUp);
        }
        self.create_user_in(
            txn,
            &NewUser {
                username,
                role: Role::Admin,
                password_hash,
                now_us,
            },
        )
    }

    /// Read-modify-write of one account. `f` may change anything but the id and the
    /// creation time (restored if changed); a rename must stay unique. Refused with
    /// [`AccountError::LastAdmin`] if it would demote or disable the last enabled admin.
    pub fn update_user_in(
        &self,
        txn: &mut RwTxn<'_>,
        username: &str,
        now_us: u64,
        f: impl FnOnce(&mut User),
    ) -> Result<User, AccountError> {
        let old_key = normalize_username(username);
        let old = self
            .user_in(txn, username)?
            .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))?;
        let mut user = old.clone();
        f(&mut user);
        user.id = old.id;
        user.created_us = old.created_us;
        user.updated_us = now_us;
        check_user(&user)?;
        if old.is_active_admin() && !user.is_active_admin() && self.admin_count_in(txn)? <= 1 {
            return Err(AccountError::LastAdmin(old.username));
        }
        let new_key = normalize_username(&user.username);
        if new_key != old_key {
            if self.tables.users.get(txn, new_key.as_bytes())?.is_some() {
                return Err(AccountError::UserExists(user.username));
            }
            self.tables.users.delete(txn, old_key.as_bytes())?;
        }
        let row = accounts::to_row("user", &user)?;
        self.tables.users.put(txn, new_key.as_bytes(), &row)?;
        Ok(user)
    }

    /// Deletes an account together with its sessions and API tokens. Refused with
    /// [`AccountError::LastAdmin`] for the last enabled admin.
    pub fn delete_user_in(
        &self,
        txn: &mut RwTxn<'_>,
        username: &str,
    ) -> Result<User, AccountError> {
        let user = self
            .user_in(txn, username)?
            .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))?;
        if user.is_active_admin() && self.admin_count_in(txn)? <= 1 {
            return Err(AccountError::LastAdmin(user.username));
        }
        self.delete_user_sessions_in(txn, user.id)?;
        self.delete_user_tokens_in(txn, user.id)?;
        self.tables
            .users
            .delete(txn, normalize_username(username).as_bytes())?;
        Ok(user)
    }
}

/// One-transaction forms.
impl Store {
    /// See [`Store::create_user_in`].
    pub fn create_user(&self, new: &NewUser<'_>) -> Result<User, AccountError> {
        self.write_accounts(|txn| self.create_user_in(txn, new))
    }

    /// See [`Store::create_first_admin_in`].
    pub fn create_first_admin(
        &self,
        username: &str,
        password_hash: &str,
        now_us: u64,
    ) -> Result<User, AccountError> {
        self.write_accounts(|txn| self.create_first_admin_in(txn, username, password_hash, now_us))
    }

    /// The account named `username` (any case).
    pub fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.read(|txn| self.user_in(txn, username))
    }

    /// The account with id `id`.
    pub fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(|txn| self.user_by_id_in(txn, id))
    }

    /// Every account, ordered by normalised name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|txn| self.users_in(txn))
    }

    /// Number of accounts.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(self.tables.users.len(txn)?))
    }

    /// Number of enabled admins.
    pub fn admin_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| self.admin_count_in(txn))
    }

    /// Whether any account exists. Setup is open only while this is false; use
    /// [`Store::create_first_admin`] to act on it without a race.
    pub fn has_any_user(&self) -> Result<bool, StoreError> {
        self.read(|txn| Ok(!self.tables.users.is_empty(txn)?))
    }

    /// See [`Store::update_user_in`]. `f` may run more than once (see [`Store::write`]).
    pub fn update_user(
        &self,
        username: &str,
        now_us: u64,
        mut f: impl FnMut(&mut User),
    ) -> Result<User, AccountError> {
        self.write_accounts(|txn| self.update_user_in(txn, username, now_us, &mut f))
    }

    /// See [`Store::delete_user_in`].
    pub fn delete_user(&self, username: &str) -> Result<User, AccountError> {
        self.write_accounts(|txn| self.delete_user_in(txn, username))
    }
}
