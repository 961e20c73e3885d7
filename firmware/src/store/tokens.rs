//! The `tokens` table: named, revocable bearer tokens for scripts (Home Assistant,
//! Frigate, curl).
//!
//! Key: SHA-256 of the token (32 bytes), computed by `auth`; the token itself is shown
//! once at creation and never stored. Value: JSON ([`ApiToken`]), which does not contain
//! the hash, so listings cannot leak it. Ids come from `next_token_id` in `meta`, start
//! at 1 and are never reused; the API names tokens by id.
//!
//! Revoking keeps the row (flagged) so the owner still sees it in the list; deleting
//! the user removes the rows. Tokens are few, so lookups by id scan the table.

use std::fmt;

use heed::{RoTxn, RwTxn};
use serde::{Deserialize, Serialize};

use super::Store;
use super::accounts::{self, AccountError};
use super::error::StoreError;
use super::schema::key;
use super::sessions::{TOUCH_GRANULARITY_US, TokenHash};
use super::users::{Role, UserId};

/// Longest token name in bytes.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// Identifier of an API token: increasing, never reused, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub u64);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A token row. Times are µs since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    /// Unique among the user's tokens.
    pub name: String,
    /// Never more than the owner's role at creation.
    pub scope: Role,
    pub created_us: u64,
    #[serde(default)]
    pub last_used_us: Option<u64>,
    #[serde(default)]
    pub revoked: bool,
}

/// What the caller supplies to create a token.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub user_id: UserId,
    pub name: &'a str,
    pub scope: Role,
    pub now_us: u64,
}

fn decode(bytes: &[u8]) -> Result<ApiToken, StoreError> {
    accounts::from_row("token", bytes)
}

impl Store {
    /// Every token row with its key, in key (hash) order.
    fn all_tokens_in(&self, txn: &RoTxn<'_>) -> Result<Vec<(TokenHash, ApiToken)>, StoreError> {
        self.tables
            .tokens
            .iter(txn)?
            .map(|row| {
                let (k, v) = row?;
                Ok((accounts::hash_key(k)?, decode(v)?))
            })
            .collect()
    }

    /// Stores a new token under `hash` for an existing user. Refuses a name the user
    /// already uses and an admin scope for a viewer.
    pub fn create_token_in(
        &self,
        txn: &mut RwTxn<'_>,
        hash: &TokenHash,
        new: &NewToken<'_>,
    ) -> Result<ApiToken, AccountError> {
        accounts::check_name("token name", new.name, MAX_TOKEN_NAME_LEN)?;
        let user = self
            .user_by_id_in(txn, new.user_id)?
            .ok_or_else(|| AccountError::NoSuchUser(format!("id {}", new.user_id)))?;
        if new.scope == Role::Admin && user.role != Role::Admin {
            return Err(AccountError::invalid(
                "scope",
                "a viewer cannot create an admin token",
            ));
        }
        if self.tables.tokens.get(txn, hash)?.is_some() {
            return Err(AccountError::invalid(
                "token",
                "a token with this hash exists (tokens must be random)",
            ));
        }
        let taken = self
            .all_tokens_in(txn)?
            .iter()
            .any(|(_, t)| t.user_id == new.user_id && t.name == new.name);
        if taken {
            return Err(AccountError::TokenNameTaken(new.name.to_owned()));
        }
        let next = self.tables.meta_u64(txn, key::NEXT_TOKEN_ID)?.unwrap_or(1);
        self.tables
            .set_meta_u64(txn, key::NEXT_TOKEN_ID, next + 1)?;
        let token = ApiToken {
            id: TokenId(next),
            user_id: new.user_id,
            name: new.name.to_owned(),
            scope: new.scope,
            created_us: new.now_us,
            last_used_us: None,
            revoked: false,
        };
        let row = accounts::to_row("token", &token)?;
        self.tables.tokens.put(txn, hash, &row)?;
        Ok(token)
    }

    /// The token stored under `hash`, revoked or not.
    pub fn token_in(
        &self,
        txn: &RoTxn<'_>,
        hash: &TokenHash,
    ) -> Result<Option<ApiToken>, StoreError> {
        self.tables.tokens.get(txn, hash)?.map(decode).transpose()
    }

    /// Marks token `id` revoked; returns it as it is now.
    pub fn revoke_token_in(
        &self,
        txn: &mut RwTxn<'_>,
        id: TokenId,
    ) -> Result<ApiToken, AccountError> {
        let (k, mut token) = self
            .all_tokens_in(txn)?
            .into_iter()
            .find(|(_, t)| t.id == id)
            .ok_or(AccountError::NoSuchToken(id.0))?;
        token.revoked = true;
        let row = accounts::to_row("token", &token)?;
        self.tables.tokens.put(txn, &k, &row)?;
        Ok(token)
    }

    /// Removes every token of `user`; returns how many.
    pub fn delete_user_tokens_in(
        &self,
        txn: &mut RwTxn<'_>,
        user: UserId,
    ) -> Result<usize, StoreError> {
        let doomed: Vec<_> = self
            .all_tokens_in(txn)?
            .into_iter()
            .filter(|(_, t)| t.user_id == user)
            .collect();
        for (k, _) in &doomed {
            self.tables.tokens.delete(txn, k)?;
        }
        Ok(doomed.len())
    }

    /// Every token of every user (revoked ones too), oldest first.
    pub fn all_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let mut tokens: Vec<ApiToken> = self
            .read(|txn| self.all_tokens_in(txn))?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        tokens.sort_by_key(|t| t.id);
        Ok(tokens)
    }

    /// See [`Store::create_token_in`].
    pub fn create_token(
        &self,
        hash: &TokenHash,
        new: &NewToken<'_>,
    ) -> Result<ApiToken, AccountError> {
        self.write_accounts(|txn| self.create_token_in(txn, hash, new))
    }

    /// See [`Store::token_in`].
    pub fn token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        self.read(|txn| self.token_in(txn, hash))
    }

    /// The tokens of `user` ordered by id (the hashes are not part of the rows).
    pub fn user_tokens(&self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        let mut out: Vec<_> = self.read(|txn| {
            Ok(self
                .all_tokens_in(txn)?
                .into_iter()
                .filter(|(_, t)| t.user_id == user)
                .map(|(_, t)| t)
                .collect())
        })?;
        out.sort_by_key(|t| t.id);
        Ok(out)
    }

    /// See [`Store::revoke_token_in`].
    pub fn revoke_token(&self, id: TokenId) -> Result<ApiToken, AccountError> {
        self.write_accounts(|txn| self.revoke_token_in(txn, id))
    }

    /// See [`Store::delete_user_tokens_in`].
    pub fn delete_user_tokens(&self, user: UserId) -> Result<usize, StoreError> {
        self.write(|txn| self.delete_user_tokens_in(txn, user))
    }

    /// Records use of a token at `now_us`, at most once per [`TOUCH_GRANULARITY_US`]
    /// (each write is an `fsync`). Returns the token as it is now.
    pub fn touch_token(
        &self,
        hash: &TokenHash,
        now_us: u64,
    ) -> Result<Option<ApiToken>, StoreError> {
        let stale = |t: &ApiToken| {
            t.last_used_us
                .is_none_or(|u| now_us.saturating_sub(u) > TOUCH_GRANULARITY_US)
        };
        match self.token(hash)? {
            Some(t) if stale(&t) => {}
            other => return Ok(other),
        }
        self.write(|txn| {
            let Some(mut t) = self.token_in(txn, hash)? else {
                return Ok(None);
            };
            if stale(&t) {
                t.last_used_us = Some(now_us);
                let row = serde_json::to_vec(&t)
                    .map_err(|e| StoreError::corrupt_row(format!("token: {e}")))?;
                self.tables.tokens.put(txn, hash, &row)?;
            }
            Ok(Some(t))
        })
    }
}
