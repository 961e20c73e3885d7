//! Accounts as the service runs them: first-run setup, logins, sessions, API tokens,
//! users, TOTP and the audit trail, on top of the pure logic in [`crate::auth`], the
//! rows of [`crate::store`] and the keys of [`crate::vault`].
//!
//! - Password work (Argon2id) and durable writes (fsync) run on blocking threads, at
//!   most [`MAX_CONCURRENT_ARGON2`] Argon2 computations at once so a burst of logins
//!   cannot take the memory of the 512 MB board.
//! - A login unlocks the vault; the key lives in memory with the session and is wiped
//!   when the session ends (logout, expiry, user removed or demoted).
//! - Failures of every kind (form login, Basic, wrong current password) go through
//!   one [`Lockout`]; a wrong password and an unknown user cost the same Argon2 run and
//!   get the same answer.
//!
//! The HTTP mapping lives in `api::account_routes`; nothing here knows about requests.

mod error;
mod manage;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

pub use error::AccessError;
pub use manage::{AuditFilter, AuditPage, CreatedToken, TotpEnrolment};

use crate::api::auth::{Principal, Via};
use crate::api::credentials::Presented;
use crate::auth::{
    CsrfKey, Lockout, LockoutPolicy, Password, PasswordHash, PasswordHasher, RecoveryCodes, Role,
    Token, TokenHash, TokenKind, Totp, TotpSecret, check_policy, setup_allowed,
};
use crate::config::AuthConfig;
use crate::store::{
    AuditActor, AuditRecord, ClientInfo, Session, Store, User, UserId, users::normalize_username,
};
use crate::vault::{Argon2Params, SealingKey, UnlockedVault, VaultRecord};

/// Settings key of the vault record (public key and wrapped private keys).
pub const VAULT_SETTING: &str = "vault.record";
/// Argon2id computations allowed at once (each takes `m_cost` of memory).
pub const MAX_CONCURRENT_ARGON2: usize = 2;
/// A Basic-auth password that verified is remembered this long, so a camera client
/// polling `snapshot.jpg` does not cost an Argon2id per request.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);
const BASIC_CACHE_MAX: usize = 64;
/// A TOTP enrolment must be confirmed within this time.
const TOTP_PENDING_TTL: Duration = Duration::from_secs(600);

/// A session just made, for the response: the cookie value is shown once.
#[derive(Debug)]
pub struct NewSession {
    pub token: Token,
    pub csrf_token: String,
    pub expires_us: u64,
    pub max_age_secs: u64,
    pub user: User,
}

/// What first-run setup hands back.
#[derive(Debug)]
pub struct SetupDone {
    /// Shown to the owner once; stored nowhere.
    pub recovery_key: Zeroizing<String>,
    pub session: NewSession,
    /// For the recorder, which starts now.
    pub sealing_key: SealingKey,
}

/// Where a request came from, for the audit log and the session list.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip: IpAddr,
    pub user_agent: String,
}

/// The service's account manager. Cheap to clone; shared with blocking threads.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    hasher: PasswordHasher,
    params: Argon2Params,
    argon2: Semaphore,
    lockout: Mutex<Lockout>,
    csrf: CsrfKey,
    idle_us: u64,
    max_us: u64,
    /// The vault record as stored (`None` before setup).
    vault: Mutex<Option<VaultRecord>>,
    /// Unlocked vault keys of live sessions, by session hash, with their user.
    unlocked: Mutex<HashMap<SessionKey, (UserId, Arc<UnlockedVault>)>>,
    /// Session activity newer than what the store holds (it writes at most once a
    /// minute), by session hash, with the session's user.
    last_seen: Mutex<HashMap<SessionKey, (UserId, u64)>>,
    /// Verified Basic credentials: keyed hash of user and password → (user, when).
    basic: Mutex<HashMap<[u8; 32], (UserId, Instant)>>,
    basic_key: [u8; 32],
    /// TOTP enrolments awaiting their first code.
    pending_totp: Mutex<HashMap<UserId, (TotpSecret, Instant)>>,
}

/// A session's token hash, as the store keys it.
type SessionKey = [u8; 32];

/// Locks a mutex whose data stays consistent even if a holder panicked (every
/// critical section here is a single map operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn now_us() -> u64 {
    crate::record::layout::unix_us(SystemTime::now())
}

impl Accounts {
    /// Loads the vault record (if set up) and prepares the per-boot secrets.
    pub fn new(store: Arc<Store>, config: &AuthConfig) -> Result<Self, AccessError> {
        Self::with_params(store, config, Argon2Params::RECOMMENDED)
    }

    /// [`Accounts::new`] with other Argon2id parameters (tests use cheap ones).
    pub fn with_params(
        store: Arc<Store>,
        config: &AuthConfig,
        params: Argon2Params,
    ) -> Result<Self, AccessError> {
        let vault: Option<VaultRecord> = store.setting(VAULT_SETTING)?;
        if vault.is_none() && store.has_any_user()? {
            return Err(AccessError::Internal(format!(
                "accounts exist but the vault record (`{VAULT_SETTING}`) is missing: the index is damaged; restore it or reset the device"
            )));
        }
        let mut basic_key = [0u8; 32];
        crate::auth::encoding::fill_random(&mut basic_key)
            .map_err(|e| AccessError::Internal(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                hasher: PasswordHasher::new(params)
                    .map_err(|e| AccessError::Internal(e.to_string()))?,
                params,
                argon2: Semaphore::new(MAX_CONCURRENT_ARGON2),
                lockout: Mutex::new(Lockout::new(LockoutPolicy::default())),
                csrf: CsrfKey::generate().map_err(|e| AccessError::Internal(e.to_string()))?,
                idle_us: config.session_idle.as_micros() as u64,
                max_us: config.session_max.as_micros() as u64,
                vault: Mutex::new(vault),
                unlocked: Mutex::default(),
                last_seen: Mutex::default(),
                basic: Mutex::default(),
                basic_key,
                pending_totp: Mutex::default(),
                store,
            }),
        })
    }

    /// Whether first-run setup is still to be done.
    pub fn setup_needed(&self) -> Result<bool, AccessError> {
        Ok(!self.inner.store.has_any_user()?)
    }

    /// The key recordings are sealed with, once the vault exists.
    pub fn sealing_key(&self) -> Result<Option<SealingKey>, AccessError> {
        lock(&self.inner.vault)
            .as_ref()
            .map(|v| v.sealing_key().map_err(AccessError::from))
            .transpose()
    }

    /// The CSRF token of a session.
    pub fn csrf_token(&self, session: &TokenHash) -> String {
        self.inner.csrf.token_for(session)
    }

    /// Whether `presented` is the CSRF token of `session`.
    pub fn csrf_ok(&self, session: &TokenHash, presented: &str) -> bool {
        self.inner.csrf.verify(session, presented)
    }

    /// Runs `f` on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, AccessError> + Send + 'static,
    ) -> Result<T, AccessError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| AccessError::Internal(format!("a worker thread failed: {e}")))?
    }

    /// Like [`Self::blocking`] for work that runs Argon2id: waits for a permit first.
    async fn argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, AccessError> + Send + 'static,
    ) -> Result<T, AccessError> {
        let _permit = self
            .inner
            .argon2
            .acquire()
            .await
            .map_err(|_| AccessError::Internal("the password worker is closed".into()))?;
        self.blocking(move |inner| {
            let result = f(inner);
            // Argon2's tens of MB would otherwise stay in the heap after a login.
            crate::memory::release_free();
            result
        })
        .await
    }

    fn check_lockout(&self, ip: IpAddr, account: &str) -> Result<(), AccessError> {
        lock(&self.inner.lockout)
            .check(ip, Some(account), Instant::now())
            .map_err(AccessError::TooManyAttempts)
    }

    /// First-run setup: the owner's admin account, the vault, and a session.
    pub async fn setup(
        &self,
        username: String,
        password: Password,
        origin: Origin,
    ) -> Result<SetupDone, AccessError> {
        if !setup_allowed(origin.ip) {
            return Err(AccessError::SetupNotLocal);
        }
        if !self.setup_needed()? {
            return Err(AccessError::AlreadySetUp);
        }
        check_policy(&username, &password)?;
        let this = self.clone();
        let done = self
            .argon2(move |inner| {
                let hash = inner
                    .hasher
                    .hash(&password)
                    .map_err(|e| AccessError::Internal(e.to_string()))?;
                let (record, recovery, unlocked) = VaultRecord::create(
                    &normalize_username(&username),
                    password.expose(),
                    inner.params,
                )?;
                let sealing_key = record.sealing_key()?;
                let (token, row) = this.new_session_row(UserId(0), &origin)?;
                let now = row.created_us;
                let user = inner.store.write_accounts(|txn| {
                    let user =
                        inner
                            .store
                            .create_first_admin_in(txn, &username, hash.as_phc(), now)?;
                    inner.store.set_setting_in(txn, VAULT_SETTING, &record)?;
                    let row = Session {
                        user_id: user.id,
                        ..row.clone()
                    };
                    inner
                        .store
                        .insert_session_in(txn, token.hash().as_bytes(), &row)?;
                    inner.store.append_audit_in(
                        txn,
                        &AuditRecord {
                            time_us: now,
                            actor: &actor(Some(&user.username), origin.ip),
                            action: "setup",
                            details: &json!({ "user": user.username }),
                        },
                    )?;
                    Ok(user)
                })?;
                *lock(&inner.vault) = Some(record);
                lock(&inner.unlocked)
                    .insert(*token.hash().as_bytes(), (user.id, Arc::new(unlocked)));
                Ok(SetupDone {
                    recovery_key: recovery.to_display_string(),
                    session: this.describe_session(token, now, user),
                    sealing_key,
                })
            })
            .await?;
        tracing::info!(user = %done.session.user.username, "first-run setup done");
        Ok(done)
    }

    /// A password (and TOTP) login: a new session with the vault unlocked.
    pub async fn login(
        &self,
        username: String,
        password: Password,
        totp: Option<String>,
        origin: Origin,
    ) -> Result<NewSession, AccessError> {
        let key = normalize_username(&username);
        let ip = origin.ip;
        self.check_lockout(ip, &key)?;
        let this = self.clone();
        let result = self
            .argon2(move |inner| {
                let user = inner.verify_password(&username, &password)?;
                inner.check_second_factor(&user, totp.as_deref())?;
                let unlocked = inner.unlock_vault(&user, &password);
                if let Some(vault) = &unlocked {
                    inner.upgrade_hashes(vault, &user, &password);
                }
                let (token, mut row) = this.new_session_row(user.id, &origin)?;
                row.user_id = user.id;
                let now = row.created_us;
                inner.store.write_accounts(|txn| {
                    inner
                        .store
                        .insert_session_in(txn, token.hash().as_bytes(), &row)?;
                    inner.store.append_audit_in(
                        txn,
                        &AuditRecord {
                            time_us: now,
                            actor: &actor(Some(&user.username), origin.ip),
                            action: "login",
                            details: &json!({}),
                        },
                    )?;
                    Ok(())
                })?;
                if let Some(unlocked) = unlocked {
                    lock(&inner.unlocked)
                        .insert(*token.hash().as_bytes(), (user.id, Arc::new(unlocked)));
                }
                Ok(this.describe_session(token, now, user))
            })
            .await;
        self.after_attempt(&result, ip, &key, "session").await;
        result
    }

    /// Counts a failed attempt (and audits it) or clears the counters after a success.
    async fn after_attempt<T>(
        &self,
        result: &Result<T, AccessError>,
        ip: IpAddr,
        account: &str,
        method: &'static str,
    ) {
        match result {
            Ok(_) => lock(&self.inner.lockout).record_success(ip, Some(account)),
            Err(AccessError::BadCredentials | AccessError::TotpInvalid) => {
                lock(&self.inner.lockout).record_failure(ip, Some(account), Instant::now());
                let account: String = account.chars().take(64).collect();
                let audited = self
                    .blocking(move |inner| {
                        inner.store.append_audit(&AuditRecord {
                            time_us: now_us(),
                            actor: &actor(None, ip),
                            action: "login.failed",
                            details: &json!({ "username": account, "method": method }),
                        })?;
                        Ok(())
                    })
                    .await;
                if let Err(e) = audited {
                    tracing::warn!("failed login not audited: {e}");
                }
            }
            Err(_) => {}
        }
    }

    /// Who `presented` is. `allow_basic` is true only for the stream and snapshot,
    /// which camera clients (Home Assistant, VLC, Frigate) fetch with Basic.
    pub async fn authenticate(
        &self,
        presented: Presented,
        ip: IpAddr,
        allow_basic: bool,
    ) -> Result<Principal, AccessError> {
        match presented {
            Presented::None | Presented::Malformed => Err(AccessError::Unauthenticated),
            Presented::Cookie(text) => self.session_principal(&text),
            Presented::Bearer(text) => self.token_principal(&text),
            Presented::Basic { user, password } if allow_basic => {
                if password.starts_with(TokenKind::Api.prefix()) {
                    return self.token_principal(&password);
                }
                self.basic_principal(user, Password::new(password.as_str()), ip)
                    .await
            }
            Presented::Basic { .. } => Err(AccessError::Unauthenticated),
        }
    }

    fn session_principal(&self, text: &str) -> Result<Principal, AccessError> {
        let token = Token::parse_kind(text, TokenKind::Session)
            .map_err(|_| AccessError::Unauthenticated)?;
        let hash = token.hash();
        let inner = &self.inner;
        let mut session = inner
            .store
            .session(hash.as_bytes())?
            .ok_or(AccessError::Unauthenticated)?;
        let now = now_us();
        if let Some((_, seen)) = lock(&inner.last_seen).get(hash.as_bytes()) {
            session.last_seen_us = session.last_seen_us.max(*seen);
        }
        if !session.is_live(now) {
            self.forget_session(hash.as_bytes());
            return Err(AccessError::Unauthenticated);
        }
        let user = inner
            .store
            .user_by_id(session.user_id)?
            .filter(|u| !u.disabled)
            .ok_or(AccessError::Unauthenticated)?;
        lock(&inner.last_seen).insert(*hash.as_bytes(), (user.id, now));
        self.persist_touch(hash, now);
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            vault: lock(&inner.unlocked)
                .get(hash.as_bytes())
                .map(|(_, vault)| Arc::clone(vault)),
            via: Via::Session(hash),
        })
    }

    /// Writes a session's activity to the store now and then, off this thread.
    fn persist_touch(&self, hash: TokenHash, now: u64) {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = inner.store.touch_session(hash.as_bytes(), now) {
                tracing::warn!("session activity not saved: {e}");
            }
        });
    }

    fn token_principal(&self, text: &str) -> Result<Principal, AccessError> {
        let token =
            Token::parse_kind(text, TokenKind::Api).map_err(|_| AccessError::Unauthenticated)?;
        let hash = token.hash();
        let inner = &self.inner;
        let row = inner
            .store
            .token(hash.as_bytes())?
            .filter(|t| !t.revoked)
            .ok_or(AccessError::Unauthenticated)?;
        let user = inner
            .store
            .user_by_id(row.user_id)?
            .filter(|u| !u.disabled)
            .ok_or(AccessError::Unauthenticated)?;
        let store = Arc::clone(&inner.store);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.touch_token(hash.as_bytes(), now_us()) {
                tracing::warn!("token use not saved: {e}");
            }
        });
        // A token never does more than its owner can now.
        let role = if row.scope == Role::Admin && user.role == Role::Admin {
            Role::Admin
        } else {
            Role::Viewer
        };
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role,
            via: Via::ApiToken(row.id),
            vault: None,
        })
    }

    async fn basic_principal(
        &self,
        username: String,
        password: Password,
        ip: IpAddr,
    ) -> Result<Principal, AccessError> {
        let key = normalize_username(&username);
        self.check_lockout(ip, &key)?;
        let cache_key = crate::vault::crypto::sha256(&[
            &self.inner.basic_key,
            key.as_bytes(),
            b"\0",
            password.expose().as_bytes(),
        ]);
        let cached = lock(&self.inner.basic)
            .get(&cache_key)
            .filter(|(_, at)| at.elapsed() < BASIC_CACHE_TTL)
            .map(|(id, _)| *id);
        let user = match cached {
            Some(id) => self
                .inner
                .store
                .user_by_id(id)?
                .filter(|u| !u.disabled)
                .ok_or(AccessError::Unauthenticated)?,
            None => {
                let result = self
                    .argon2(move |inner| inner.verify_password(&username, &password))
                    .await;
                self.after_attempt(&result, ip, &key, "basic").await;
                // Counted like a failed login, answered like any bad credentials on
                // these endpoints.
                let user = result.map_err(|e| match e {
                    AccessError::BadCredentials => AccessError::Unauthenticated,
                    other => other,
                })?;
                let mut cache = lock(&self.inner.basic);
                if cache.len() >= BASIC_CACHE_MAX {
                    cache.clear();
                }
                cache.insert(cache_key, (user.id, Instant::now()));
                user
            }
        };
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            via: Via::Basic,
            vault: None,
        })
    }

    /// Ends a session: the cookie stops working and its vault key is wiped.
    pub async fn logout(&self, principal: &Principal, ip: IpAddr) -> Result<(), AccessError> {
        let Via::Session(hash) = &principal.via else {
            return Err(AccessError::Invalid {
                field: "session",
                reason: "only a browser session can log out; revoke a token instead".into(),
            });
        };
        let key = *hash.as_bytes();
        self.forget_session(&key);
        let username = principal.username.clone();
        self.blocking(move |inner| {
            inner.store.write_accounts(|txn| {
                inner.store.delete_session_in(txn, &key)?;
                inner.store.append_audit_in(
                    txn,
                    &AuditRecord {
                        time_us: now_us(),
                        actor: &actor(Some(&username), ip),
                        action: "logout",
                        details: &json!({}),
                    },
                )?;
                Ok(())
            })?;
            Ok(())
        })
        .await
    }

    fn forget_session(&self, key: &[u8; 32]) {
        lock(&self.inner.unlocked).remove(key);
        lock(&self.inner.last_seen).remove(key);
    }

    /// Housekeeping, every minute: expired sessions go (with their keys), old lockout
    /// entries, cached Basic logins and unconfirmed TOTP enrolments are forgotten.
    pub async fn purge(&self) {
        let now = now_us();
        let live: Result<Vec<[u8; 32]>, AccessError> = {
            let last_seen = lock(&self.inner.last_seen).clone();
            let mut keys: Vec<[u8; 32]> = lock(&self.inner.unlocked).keys().copied().collect();
            keys.extend(last_seen.keys().copied());
            keys.sort_unstable();
            keys.dedup();
            self.blocking(move |inner| {
                // Persist in-memory activity before purging, so an active session whose
                // stored `last_seen` lags is not removed.
                for (k, (_, seen)) in &last_seen {
                    inner.store.touch_session(k, *seen)?;
                }
                inner.store.purge_expired_sessions(now)?;
                let mut live = Vec::new();
                for k in keys {
                    if inner.store.session(&k)?.is_some_and(|s| s.is_live(now)) {
                        live.push(k);
                    }
                }
                Ok(live)
            })
            .await
        };
        match live {
            Ok(live) => {
                lock(&self.inner.unlocked).retain(|k, _| live.contains(k));
                lock(&self.inner.last_seen).retain(|k, _| live.contains(k));
            }
            Err(e) => tracing::warn!("session housekeeping failed: {e}"),
        }
        lock(&self.inner.lockout).expire(Instant::now());
        lock(&self.inner.basic).retain(|_, (_, at)| at.elapsed() < BASIC_CACHE_TTL);
        lock(&self.inner.pending_totp).retain(|_, (_, at)| at.elapsed() < TOTP_PENDING_TTL);
    }

    /// A fresh session row for `user_id` (the caller fills it in for setup).
    fn new_session_row(
        &self,
        user_id: UserId,
        origin: &Origin,
    ) -> Result<(Token, Session), AccessError> {
        let token = Token::generate(TokenKind::Session)
            .map_err(|e| AccessError::Internal(e.to_string()))?;
        let now = now_us();
        Ok((
            token,
            Session {
                user_id,
                created_us: now,
                last_seen_us: now,
                idle_timeout_us: self.inner.idle_us,
                expires_us: now.saturating_add(self.inner.max_us),
                // The CSRF token is derived from the session hash with a per-boot key;
                // nothing needs storing.
                csrf: String::new(),
                client: ClientInfo {
                    ip: origin.ip.to_string(),
                    user_agent: origin.user_agent.clone(),
                },
            },
        ))
    }

    fn describe_session(&self, token: Token, now: u64, user: User) -> NewSession {
        let csrf_token = self.inner.csrf.token_for(&token.hash());
        NewSession {
            token,
            csrf_token,
            expires_us: now.saturating_add(self.inner.idle_us),
            max_age_secs: self.inner.max_us / 1_000_000,
            user,
        }
    }
}

impl Inner {
    /// The account for `username` if `password` is its password. Unknown, disabled
    /// and wrong all cost one Argon2id and give [`AccessError::BadCredentials`].
    fn verify_password(&self, username: &str, password: &Password) -> Result<User, AccessError> {
        let user = self.store.user(username)?.filter(|u| !u.disabled);
        let Some(user) = user else {
            self.hasher.dummy_verify(password);
            return Err(AccessError::BadCredentials);
        };
        let stored = PasswordHash::from_phc(user.password_hash.clone());
        match self.hasher.verify(password, &stored) {
            Ok(true) => Ok(user),
            Ok(false) => Err(AccessError::BadCredentials),
            Err(e) => {
                tracing::error!(user = %user.username, "stored password hash unusable: {e}");
                Err(AccessError::BadCredentials)
            }
        }
    }

    /// Checks the TOTP code (or a recovery code) of an account that has TOTP, and
    /// records its use so it cannot be replayed.
    fn check_second_factor(&self, user: &User, code: Option<&str>) -> Result<(), AccessError> {
        let Some(state) = &user.totp else {
            return Ok(());
        };
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let Some(code) = code else {
            return Err(AccessError::TotpRequired);
        };
        let unix_secs = now_us() / 1_000_000;
        let mut totp = Totp {
            secret: TotpSecret::from_bytes(&state.secret),
            last_step: state.last_step,
        };
        let mut codes = RecoveryCodes::from_hex_hashes(&state.recovery_code_hashes)
            .ok_or_else(|| AccessError::Internal("stored recovery codes are damaged".into()))?;
        let used_recovery = if totp.verify(code, unix_secs).is_ok() {
            false
        } else if codes.consume(code) {
            true
        } else {
            return Err(AccessError::TotpInvalid);
        };
        let (last_step, hashes) = (totp.last_step, codes.to_hex_hashes());
        self.store.write_accounts(|txn| {
            self.store
                .update_user_in(txn, &user.username, now_us(), |u| {
                    if let Some(t) = &mut u.totp {
                        t.last_step = last_step;
                        t.recovery_code_hashes = hashes.clone();
                    }
                })
                .map(drop)
        })?;
        if used_recovery {
            tracing::info!(user = %user.username, remaining = codes.remaining(), "TOTP recovery code used");
        }
        Ok(())
    }

    /// Re-hashes the password and re-wraps the vault key when they were made with
    /// other Argon2id parameters than the device's current ones (parameters raised by
    /// a firmware update). Best effort: the login goes ahead either way.
    fn upgrade_hashes(&self, vault: &UnlockedVault, user: &User, password: &Password) {
        let stored = PasswordHash::from_phc(user.password_hash.clone());
        let Some(record) = lock(&self.vault).clone() else {
            return;
        };
        let name = normalize_username(&user.username);
        let wrap_stale = record.params_of(&name).is_ok_and(|p| p != self.params);
        if !self.hasher.needs_rehash(&stored) && !wrap_stale {
            return;
        }
        let upgraded = (|| -> Result<VaultRecord, AccessError> {
            let hash = self
                .hasher
                .hash(password)
                .map_err(|e| AccessError::Internal(e.to_string()))?;
            let mut record = record.clone();
            record.set_password(vault, &name, password.expose(), self.params)?;
            self.store.write_accounts(|txn| {
                self.store
                    .update_user_in(txn, &user.username, now_us(), |u| {
                        u.password_hash = hash.as_phc().to_owned();
                    })?;
                self.store.set_setting_in(txn, VAULT_SETTING, &record)?;
                Ok(())
            })?;
            Ok(record)
        })();
        match upgraded {
            Ok(record) => {
                *lock(&self.vault) = Some(record);
                tracing::info!(user = %user.username, "password hash upgraded to the current Argon2id parameters");
            }
            Err(e) => tracing::warn!(user = %user.username, "password hash not upgraded: {e}"),
        }
    }

    /// The vault key for a user who just proved their password. `None` (logged) if
    /// the user has no wrap, which only a damaged record can cause.
    fn unlock_vault(&self, user: &User, password: &Password) -> Option<UnlockedVault> {
        let record = lock(&self.vault).clone()?;
        match record.unlock(&normalize_username(&user.username), password.expose()) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(user = %user.username, "vault not unlocked at login: {e}");
                None
            }
        }
    }
}

/// The actor of an audit entry.
pub(crate) fn actor(user: Option<&str>, ip: IpAddr) -> AuditActor {
    AuditActor {
        user: user.map(str::to_owned),
        addr: Some(ip.to_string()),
    }
}

#[cfg(test)]
mod tests;
