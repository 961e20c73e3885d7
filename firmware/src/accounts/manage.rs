//! Managing accounts once logged in: users and roles, passwords, API tokens, TOTP
//! enrolment, and reading the audit log. Callers have checked the role; what needs
//! the vault key takes it from the acting principal.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{AccessError, Accounts, Inner, actor, lock, now_us};
use crate::api::auth::{Principal, Via};
use crate::auth::{
    Password, RecoveryCode, RecoveryCodes, Role, Token, TokenKind, Totp, TotpSecret, check_policy,
};
use crate::store::users::normalize_username;
use crate::store::{
    ApiToken, AuditEntry, AuditQuery, AuditRecord, AuditTamper, ChainSummary, NewToken, NewUser,
    TokenId, TotpState, User, UserId,
};
use crate::vault::{UnlockedVault, VaultRecord};

/// A token just made: the secret is shown once.
pub struct CreatedToken {
    pub row: ApiToken,
    pub token: Token,
}

/// A TOTP enrolment waiting for its first code.
pub struct TotpEnrolment {
    pub secret_base32: zeroize::Zeroizing<String>,
    pub uri: zeroize::Zeroizing<String>,
}

/// A page of the audit log and the state of the chain.
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub chain: Result<ChainSummary, AuditTamper>,
}

/// Owned audit filters (the store's query borrows).
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub from_us: Option<u64>,
    pub to_us: Option<u64>,
    pub action: Option<String>,
    pub user: Option<String>,
    pub cursor: Option<u64>,
    pub limit: usize,
}

impl Accounts {
    fn require_vault(principal: &Principal) -> Result<Arc<UnlockedVault>, AccessError> {
        principal.vault.clone().ok_or_else(|| {
            AccessError::Forbidden(
                "this needs the recording key: log in with your password (a session, not a token) and try again"
                    .into(),
            )
        })
    }

    pub fn users(&self) -> Result<Vec<User>, AccessError> {
        Ok(self.inner.store.users()?)
    }

    /// Creates an account and gives it the recording key.
    pub async fn create_user(
        &self,
        by: &Principal,
        ip: IpAddr,
        username: String,
        password: Password,
        role: Role,
    ) -> Result<User, AccessError> {
        let vault = Self::require_vault(by)?;
        check_policy(&username, &password)?;
        if self.inner.store.user(&username)?.is_some() {
            return Err(AccessError::conflict(
                "user_exists",
                format!("a user named `{username}` already exists"),
            ));
        }
        let by_name = by.username.clone();
        self.argon2(move |inner| {
            let hash = inner
                .hasher
                .hash(&password)
                .map_err(|e| AccessError::Internal(e.to_string()))?;
            let mut record = inner.vault_record()?;
            record.add_user(
                &vault,
                &normalize_username(&username),
                password.expose(),
                inner.params,
            )?;
            let now = now_us();
            let user = inner.store.write_accounts(|txn| {
                let user = inner.store.create_user_in(
                    txn,
                    &NewUser {
                        username: &username,
                        role,
                        password_hash: hash.as_phc(),
                        now_us: now,
                    },
                )?;
                inner
                    .store
                    .set_setting_in(txn, super::VAULT_SETTING, &record)?;
                inner.audit_in(
                    txn,
                    &by_name,
                    ip,
                    "user.create",
                    json!({ "user": user.username, "role": role }),
                )?;
                Ok(user)
            })?;
            *lock(&inner.vault) = Some(record);
            Ok(user)
        })
        .await
    }

    /// Changes a user's role and/or disables them. Their sessions end (a role change
    /// must not leave an admin session behind), and so do their cached logins.
    pub async fn update_user(
        &self,
        by: &Principal,
        ip: IpAddr,
        username: String,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<User, AccessError> {
        let by_name = by.username.clone();
        let user = self
            .blocking(move |inner| {
                Ok(inner.store.write_accounts(|txn| {
                    let user = inner.store.update_user_in(txn, &username, now_us(), |u| {
                        if let Some(role) = role {
                            u.role = role;
                        }
                        if let Some(disabled) = disabled {
                            u.disabled = disabled;
                        }
                    })?;
                    inner.store.delete_user_sessions_in(txn, user.id)?;
                    inner.audit_in(
                        txn,
                        &by_name,
                        ip,
                        "user.update",
                        json!({ "user": user.username, "role": user.role, "disabled": user.disabled }),
                    )?;
                    Ok(user)
                })?)
            })
            .await?;
        self.forget_user(&user);
        Ok(user)
    }

    /// Deletes an account, its sessions, tokens and recording-key wrap.
    pub async fn delete_user(
        &self,
        by: &Principal,
        ip: IpAddr,
        username: String,
    ) -> Result<(), AccessError> {
        let by_name = by.username.clone();
        let user = self
            .blocking(move |inner| {
                let mut record = inner.vault_record()?;
                // A user without a wrap (a damaged record) can still be deleted.
                let _ = record.remove_user(&normalize_username(&username));
                let user = inner.store.write_accounts(|txn| {
                    let user = inner.store.delete_user_in(txn, &username)?;
                    inner
                        .store
                        .set_setting_in(txn, super::VAULT_SETTING, &record)?;
                    inner.audit_in(
                        txn,
                        &by_name,
                        ip,
                        "user.delete",
                        json!({ "user": user.username }),
                    )?;
                    Ok(user)
                })?;
                *lock(&inner.vault) = Some(record);
                Ok(user)
            })
            .await?;
        self.forget_user(&user);
        Ok(())
    }

    /// Drops the in-memory state of a user's sessions and Basic logins.
    fn forget_user(&self, user: &User) {
        let store = &self.inner.store;
        let live: Vec<[u8; 32]> = store
            .read(|txn| store.user_sessions_in(txn, user.id))
            .map(|rows| rows.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default();
        // Only this user's sessions that ended lose their state; everyone else's stay.
        let keep = |k: &[u8; 32], owner: UserId| owner != user.id || live.contains(k);
        lock(&self.inner.unlocked).retain(|k, (owner, _)| keep(k, *owner));
        lock(&self.inner.last_seen).retain(|k, (owner, _)| keep(k, *owner));
        lock(&self.inner.basic).retain(|_, (id, _)| *id != user.id);
    }

    /// Changes the caller's own password after checking the current one (which counts
    /// towards the lockout like a login). Other sessions of the user end.
    pub async fn change_own_password(
        &self,
        by: &Principal,
        ip: IpAddr,
        current: Password,
        new: Password,
    ) -> Result<(), AccessError> {
        let Via::Session(keep) = by.via.clone() else {
            return Err(AccessError::Forbidden(
                "change a password from a logged-in session, not with a token".into(),
            ));
        };
        let username = by.username.clone();
        check_policy(&username, &new)?;
        let key = normalize_username(&username);
        self.check_lockout(ip, &key)?;
        let name = username.clone();
        let result = self
            .argon2(move |inner| {
                let user = inner.verify_password(&name, &current)?;
                let record = inner.vault_record()?;
                let vault = record.unlock(&normalize_username(&name), current.expose())?;
                inner.set_password(
                    &vault,
                    record,
                    &user,
                    &new,
                    &name,
                    ip,
                    Some(*keep.as_bytes()),
                )
            })
            .await;
        self.after_attempt(&result, ip, &key, "password").await;
        let user = result?;
        self.forget_user(&user);
        Ok(())
    }

    /// An admin sets another user's password (they forgot theirs). Needs the admin's
    /// recording key to re-wrap it for the user. All the user's sessions end.
    pub async fn reset_password(
        &self,
        by: &Principal,
        ip: IpAddr,
        username: String,
        new: Password,
    ) -> Result<(), AccessError> {
        let vault = Self::require_vault(by)?;
        check_policy(&username, &new)?;
        let by_name = by.username.clone();
        let user = self
            .argon2(move |inner| {
                let user = inner
                    .store
                    .user(&username)?
                    .ok_or_else(|| AccessError::NotFound(format!("no user `{username}`")))?;
                let record = inner.vault_record()?;
                inner.set_password(&vault, record, &user, &new, &by_name, ip, None)
            })
            .await?;
        self.forget_user(&user);
        Ok(())
    }

    pub fn tokens(&self) -> Result<Vec<ApiToken>, AccessError> {
        Ok(self.inner.store.all_tokens()?)
    }

    /// Creates a named token for the caller; its scope cannot exceed the caller's role.
    pub async fn create_token(
        &self,
        by: &Principal,
        ip: IpAddr,
        name: String,
        scope: Role,
    ) -> Result<CreatedToken, AccessError> {
        if scope == Role::Admin && by.role != Role::Admin {
            return Err(AccessError::Forbidden(
                "a token cannot have more rights than its creator".into(),
            ));
        }
        let (user_id, by_name) = (by.user_id, by.username.clone());
        self.blocking(move |inner| {
            let token = Token::generate(TokenKind::Api)
                .map_err(|e| AccessError::Internal(e.to_string()))?;
            let row = inner.store.write_accounts(|txn| {
                let row = inner.store.create_token_in(
                    txn,
                    token.hash().as_bytes(),
                    &NewToken {
                        user_id,
                        name: &name,
                        scope,
                        now_us: now_us(),
                    },
                )?;
                inner.audit_in(
                    txn,
                    &by_name,
                    ip,
                    "token.create",
                    json!({ "id": row.id, "name": row.name, "scope": row.scope }),
                )?;
                Ok(row)
            })?;
            Ok(CreatedToken { row, token })
        })
        .await
    }

    pub async fn revoke_token(
        &self,
        by: &Principal,
        ip: IpAddr,
        id: u64,
    ) -> Result<(), AccessError> {
        let by_name = by.username.clone();
        self.blocking(move |inner| {
            inner.store.write_accounts(|txn| {
                let row = inner.store.revoke_token_in(txn, TokenId(id))?;
                inner.audit_in(
                    txn,
                    &by_name,
                    ip,
                    "token.revoke",
                    json!({ "id": row.id, "name": row.name }),
                )
            })?;
            Ok(())
        })
        .await
    }

    /// Starts TOTP enrolment for the caller: a new secret to scan, active only after
    /// [`Accounts::confirm_totp`] proves the authenticator has it.
    pub fn begin_totp(&self, by: &Principal) -> Result<TotpEnrolment, AccessError> {
        let secret = TotpSecret::generate().map_err(|e| AccessError::Internal(e.to_string()))?;
        let enrolment = TotpEnrolment {
            secret_base32: secret.to_base32(),
            uri: secret.provisioning_uri(&by.username),
        };
        lock(&self.inner.pending_totp).insert(by.user_id, (secret, Instant::now()));
        Ok(enrolment)
    }

    /// Activates the pending enrolment if `code` is right; returns the one-time
    /// recovery codes (shown once).
    pub async fn confirm_totp(
        &self,
        by: &Principal,
        ip: IpAddr,
        code: String,
    ) -> Result<Vec<RecoveryCode>, AccessError> {
        let Some((secret, _)) = lock(&self.inner.pending_totp).remove(&by.user_id) else {
            return Err(AccessError::conflict(
                "no_totp_enrolment",
                "no TOTP enrolment is pending (or it expired): start again with POST /api/v1/users/me/totp",
            ));
        };
        let mut totp = Totp::new(TotpSecret::from_bytes(secret.expose_bytes()));
        if totp.verify(&code, now_us() / 1_000_000).is_err() {
            // Let the user retry with the next code.
            lock(&self.inner.pending_totp).insert(by.user_id, (secret, Instant::now()));
            return Err(AccessError::TotpInvalid);
        }
        let (codes, shown) =
            RecoveryCodes::generate().map_err(|e| AccessError::Internal(e.to_string()))?;
        let state = TotpState {
            secret: secret.expose_bytes().to_vec(),
            last_step: totp.last_step,
            recovery_code_hashes: codes.to_hex_hashes(),
        };
        let (username, by_name) = (by.username.clone(), by.username.clone());
        self.blocking(move |inner| {
            inner.store.write_accounts(|txn| {
                inner.store.update_user_in(txn, &username, now_us(), |u| {
                    u.totp = Some(state.clone());
                })?;
                inner.audit_in(
                    txn,
                    &by_name,
                    ip,
                    "totp.enable",
                    json!({ "user": username }),
                )
            })?;
            Ok(())
        })
        .await?;
        Ok(shown)
    }

    /// Removes TOTP from an account.
    pub async fn disable_totp(
        &self,
        by: &Principal,
        ip: IpAddr,
        username: String,
    ) -> Result<(), AccessError> {
        let by_name = by.username.clone();
        self.blocking(move |inner| {
            inner.store.write_accounts(|txn| {
                let user = inner.store.update_user_in(txn, &username, now_us(), |u| {
                    u.totp = None;
                })?;
                inner.audit_in(
                    txn,
                    &by_name,
                    ip,
                    "totp.disable",
                    json!({ "user": user.username }),
                )
            })?;
            Ok(())
        })
        .await
    }

    /// A page of the audit log, newest first, and whether the chain is intact.
    pub async fn audit(&self, filter: AuditFilter) -> Result<AuditPage, AccessError> {
        self.blocking(move |inner| {
            let query = AuditQuery {
                from_us: filter.from_us,
                to_us: filter.to_us,
                action: filter.action.as_deref(),
                actor_user: filter.user.as_deref(),
                actor_addr: None,
                cursor: filter.cursor,
                newest_first: true,
                limit: filter.limit,
            };
            Ok(AuditPage {
                entries: inner.store.audit_entries(&query)?,
                chain: inner.store.verify_audit_chain()?,
            })
        })
        .await
    }

    /// Records an action done through another module (settings, updates).
    pub async fn audit_action(
        &self,
        by: &Principal,
        ip: IpAddr,
        action: &'static str,
        details: serde_json::Value,
    ) -> Result<(), AccessError> {
        let by_name = by.username.clone();
        self.blocking(move |inner| {
            inner
                .store
                .write_accounts(|txn| inner.audit_in(txn, &by_name, ip, action, details.clone()))?;
            Ok(())
        })
        .await
    }
}

impl Inner {
    pub(super) fn vault_record(&self) -> Result<VaultRecord, AccessError> {
        lock(&self.vault)
            .clone()
            .ok_or_else(|| AccessError::conflict("not_set_up", "the device is not set up yet"))
    }

    fn audit_in(
        &self,
        txn: &mut heed::RwTxn<'_>,
        by: &str,
        ip: IpAddr,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), crate::store::AccountError> {
        self.store
            .append_audit_in(
                txn,
                &AuditRecord {
                    time_us: now_us(),
                    actor: &actor(Some(by), ip),
                    action,
                    details: &details,
                },
            )
            .map(drop)
    }

    /// Stores a new password hash and recording-key wrap for `user`, ends their
    /// sessions except `keep`, and audits it.
    #[allow(clippy::too_many_arguments)]
    fn set_password(
        &self,
        vault: &UnlockedVault,
        mut record: VaultRecord,
        user: &User,
        new: &Password,
        by: &str,
        ip: IpAddr,
        keep: Option<[u8; 32]>,
    ) -> Result<User, AccessError> {
        let hash = self
            .hasher
            .hash(new)
            .map_err(|e| AccessError::Internal(e.to_string()))?;
        let name = normalize_username(&user.username);
        match record.set_password(vault, &name, new.expose(), self.params) {
            Ok(()) => {}
            // A user created before the vault knew them (a damaged record): add them.
            Err(crate::vault::VaultError::UnknownUser(_)) => {
                record.add_user(vault, &name, new.expose(), self.params)?
            }
            Err(e) => return Err(e.into()),
        }
        let user = self.store.write_accounts(|txn| {
            let user = self
                .store
                .update_user_in(txn, &user.username, now_us(), |u| {
                    u.password_hash = hash.as_phc().to_owned();
                })?;
            for (k, _) in self.store.user_sessions_in(txn, user.id)? {
                if Some(k) != keep {
                    self.store.delete_session_in(txn, &k)?;
                }
            }
            self.store
                .set_setting_in(txn, super::VAULT_SETTING, &record)?;
            self.audit_in(
                txn,
                by,
                ip,
                "user.password",
                json!({ "user": user.username }),
            )?;
            Ok(user)
        })?;
        *lock(&self.vault) = Some(record);
        Ok(user)
    }
}
