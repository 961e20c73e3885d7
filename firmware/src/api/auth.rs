//! Who is asking: the authenticated [`Principal`] of a request, and the checks routes
//! make with it (role, unlocked vault).

use std::sync::Arc;

use http::{Response, StatusCode};

use super::body::ResponseBody;
use super::routes::error;
use crate::auth::{Action, Role, TokenHash};
use crate::store::{TokenId, UserId};
use crate::vault::UnlockedVault;

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// The session cookie of a browser login; the hash identifies the session.
    Session(TokenHash),
    /// A named API token (`Authorization: Bearer`, or as a Basic password).
    ApiToken(TokenId),
    /// An account's name and password in HTTP Basic (stream and snapshot only).
    Basic,
}

/// An authenticated user.
#[derive(Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    /// What this request may do: the account's role, or less for a token's scope.
    pub role: Role,
    pub via: Via,
    /// The vault key, present only for a session that logged in with a password
    /// since the service started. Recordings need it.
    pub vault: Option<Arc<UnlockedVault>>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("via", &self.via)
            .field("vault", &self.vault.is_some())
            .finish()
    }
}

impl Principal {
    /// 403 unless the role allows `action`.
    pub fn require(&self, action: Action) -> Result<(), Response<ResponseBody>> {
        if self.role.permits(action) {
            return Ok(());
        }
        Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{}` is a {} {}; this needs an admin",
                self.username,
                match self.role {
                    Role::Admin => "admin",
                    Role::Viewer => "viewer",
                },
                match self.via {
                    Via::ApiToken(_) => "token",
                    _ => "account",
                }
            ),
        ))
    }

    /// The unlocked vault, or 403 saying why there is none and what to do.
    pub fn vault(&self) -> Result<&Arc<UnlockedVault>, Response<ResponseBody>> {
        if let Some(vault) = &self.vault {
            return Ok(vault);
        }
        let why = match self.via {
            Via::Session(_) => {
                "recordings are locked: the device restarted since this login; log in again with your password to unlock them"
            }
            Via::ApiToken(_) => {
                "recordings are encrypted and an API token cannot unlock them; log in with a password (POST /api/v1/session)"
            }
            Via::Basic => {
                "recordings are encrypted and need a logged-in session; log in with POST /api/v1/session"
            }
        };
        Err(error(StatusCode::FORBIDDEN, "vault_locked", why))
    }
}
