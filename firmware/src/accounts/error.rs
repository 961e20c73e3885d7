//! What an account operation can refuse, in words for the person at the other end.

use crate::auth::{RetryAfter, WeakPassword};
use crate::store::{AccountError, StoreError};
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Wrong password or no such user: deliberately the same answer.
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed attempts; try again in {} s", .0.secs())]
    TooManyAttempts(RetryAfter),
    #[error("this account uses two-factor authentication: send the current code as `totp`")]
    TotpRequired,
    #[error("the authentication code is wrong or was already used")]
    TotpInvalid,
    #[error("missing, expired or revoked credentials; log in again")]
    Unauthenticated,
    #[error("setup is already done; log in instead (reset the device to start over)")]
    AlreadySetUp,
    #[error(
        "setup is accepted only from this device's local network (loopback, private or link-local addresses)"
    )]
    SetupNotLocal,
    #[error("{0}")]
    WeakPassword(#[from] WeakPassword),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the device's state; `code` is the API's error code.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("`{0}` is the last enabled admin; make another user admin first")]
    LastAdmin(String),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Something on the device failed; the message is for the log, not the client.
    #[error("{0}")]
    Internal(String),
}

impl AccessError {
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<AccountError> for AccessError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::UserExists(ref name) => Self::conflict(
                "user_exists",
                format!("a user named `{name}` already exists"),
            ),
            AccountError::TokenNameTaken(_) => Self::conflict("token_exists", e.to_string()),
            AccountError::NoSuchUser(name) => Self::NotFound(format!("no user `{name}`")),
            AccountError::AlreadySetUp => Self::AlreadySetUp,
            AccountError::LastAdmin(name) => Self::LastAdmin(name),
            AccountError::Invalid { field, reason } => Self::Invalid { field, reason },
            AccountError::NoSuchToken(id) => Self::NotFound(format!("no API token with id {id}")),
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        Self::Internal(format!("the index failed: {e}"))
    }
}

impl From<VaultError> for AccessError {
    fn from(e: VaultError) -> Self {
        Self::Internal(format!("the vault failed: {e}"))
    }
}
