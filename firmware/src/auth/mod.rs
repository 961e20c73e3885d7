//! Accounts and authentication: passwords, sessions, tokens, TOTP, lockout.
//!
//! Pure logic only — no HTTP and no storage. The API layer calls these functions and
//! the store persists what they produce (PHC hashes, token hashes, TOTP state); none of
//! it is a secret the device could do without (the TOTP secret must be kept to check
//! codes; everything else is a hash).
//!
//! - [`password`]: Argon2id PHC hashes, constant-cost verify for unknown users, policy.
//! - [`totp`]: RFC 6238 codes with replay refusal, one-time recovery codes.
//! - [`lockout`]: exponential back-off per source and per account, bounded memory.
//! - [`token`]: session and API tokens stored as hashes, roles, CSRF and Origin checks.
//! - [`addr`]: loopback / private / link-local / public classification of sources.
//!
//! Secrets (passwords, tokens, TOTP secrets, recovery codes, the CSRF key) are wiped on
//! drop and their `Debug` output is redacted.

pub mod addr;
pub(crate) mod encoding;
pub mod lockout;
pub mod password;
pub mod token;
pub mod totp;

pub use addr::{SourceClass, classify, setup_allowed};
pub use encoding::RandomError;
pub use lockout::{Lockout, LockoutPolicy, RetryAfter};
pub use password::{
    Password, PasswordError, PasswordHash, PasswordHasher, WeakPassword, check_policy,
};
pub use token::{
    Action, CsrfKey, OriginError, Role, Token, TokenError, TokenHash, TokenKind, check_origin,
};
pub use totp::{RecoveryCode, RecoveryCodes, Totp, TotpError, TotpSecret};
