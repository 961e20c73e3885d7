//! The recording key pair and the ways its private half is kept: wrapped once per user
//! under an Argon2id-derived key, and once under the recovery key. [`VaultRecord`] is
//! what the store persists (JSON via serde; it holds nothing secret in the clear);
//! [`UnlockedVault`] is what a logged-in session holds and drops at logout.
//!
//! Every unwrap tells three failures apart:
//! - the stored bytes changed (a checksum over the wrap fails, or the AEAD tag does
//!   after a correct password): [`VaultError::Corrupted`];
//! - the secret is wrong (a check value derived next to the wrapping key differs):
//!   [`VaultError::WrongPassword`] / [`VaultError::WrongRecoveryKey`];
//! - otherwise the key is returned, and checked against the public key.
//!
//! The check value lets an attacker with the card test password guesses — but so does
//! the AEAD tag it sits beside, and each guess costs one Argon2id either way.
//!
//! Argon2id, and so every function here that takes a password, costs a few hundred
//! milliseconds of CPU on the Pi: call those on the password-hashing thread, never on
//! the I/O loop.

use std::collections::BTreeMap;
use std::fmt;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::crypto::{self, KEY_LEN, NONCE_LEN, SecretKey, WRAPPED_KEY_LEN};
use super::error::VaultError;
use super::recovery::{RecoveryKey, RecoveryWrap};

const RECORD_VERSION: u32 = 1;
const SALT_LEN: usize = 16;

const LABEL_PASSWORD_WRAP_KEY: &[u8] = b"ME_CAM password wrap key";
const LABEL_PASSWORD_CHECK: &[u8] = b"ME_CAM password check";
const LABEL_PASSWORD_AAD: &[u8] = b"ME_CAM recording key wrapped by password";
const LABEL_PASSWORD_CHECKSUM: &[u8] = b"ME_CAM password wrap checksum";

/// Argon2id cost parameters, stored with each password wrap so they can be raised later
/// (see [`VaultRecord::params_of`] and [`VaultRecord::set_password`]) without breaking
/// existing wraps.
///
/// # The default: 19 MiB, 2 passes, 1 lane
///
/// OWASP's recommended Argon2id setting (m = 19 MiB, t = 2, p = 1), which is also about
/// as far as the Pi Zero 2 W can safely go:
/// - **Memory** is what makes guessing on GPUs and ASICs expensive, so we spend as much
///   as is safe. The service has a 64 MB steady budget on a 512 MB board that also
///   holds camera and encoder buffers; 19 MiB is a transient peak during a login.
///   64 MiB would double the service's footprint for the duration and, with two logins
///   at once, risk the OOM killer stopping the recorder.
/// - **Passes**: t = 2 at 19 MiB measured 44 ms per unlock on this project's x86 build
///   host (release build). A 1 GHz Cortex-A53 with LPDDR2, and no SIMD path in the
///   `argon2` crate, is projected 8–10× slower: about 0.35–0.45 s per login on the Pi.
///   Acceptable for a login; every guess costs an attacker the same memory-hard work.
/// - **Lanes**: p = 1. The `argon2` crate runs lanes one after another (its `parallel`
///   feature is off), so more lanes would not make a login faster, and a login should
///   not take cores from the encoder anyway.
///
/// Measure with `cargo test -p mecam --release argon2_cost -- --ignored --nocapture`.
/// Tests use [`Argon2Params::INSECURE_FAST`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2Params {
    /// The device default; see the type's documentation for why.
    pub const RECOMMENDED: Self = Self {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    /// The cheapest setting Argon2 accepts. For tests only: it protects nothing.
    pub const INSECURE_FAST: Self = Self {
        m_cost_kib: 8,
        t_cost: 1,
        p_cost: 1,
    };

    /// Upper bounds, so a damaged or hostile record cannot make a login allocate more
    /// than the board has (512 MB) or spin for minutes.
    pub const MAX_M_COST_KIB: u32 = 256 * 1024;
    pub const MAX_T_COST: u32 = 64;
    pub const MAX_P_COST: u32 = 16;

    /// Checks the bounds and builds Argon2id (version 0x13) with these costs.
    fn to_argon2(self) -> Result<(Argon2<'static>, usize), VaultError> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(VaultError::BadParams(format!(
                "{self:?} exceeds the limits (m ≤ {} KiB, t ≤ {}, p ≤ {})",
                Self::MAX_M_COST_KIB,
                Self::MAX_T_COST,
                Self::MAX_P_COST
            )));
        }
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| VaultError::BadParams(format!("{self:?}: {e}")))?;
        let blocks = params.block_count();
        Ok((
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            blocks,
        ))
    }

    fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.m_cost_kib.to_be_bytes());
        out[4..8].copy_from_slice(&self.t_cost.to_be_bytes());
        out[8..].copy_from_slice(&self.p_cost.to_be_bytes());
        out
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::RECOMMENDED
    }
}

/// The public half of the recording key pair: all the device needs to record while
/// nobody is logged in.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordingPublicKey(#[serde(with = "super::hex::array")] pub(crate) [u8; 32]);

impl RecordingPublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for RecordingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordingPublicKey({})", super::hex::encode(&self.0))
    }
}

/// What the recorder needs to seal a file: the public key, and the recovery wrap that
/// goes into each file header so `mecam decrypt` can open it offline. Obtained from
/// [`VaultRecord::sealing_key`], which checks both for damage first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingKey {
    pub(crate) public_key: RecordingPublicKey,
    pub(crate) recovery: RecoveryWrap,
}

impl SealingKey {
    pub fn public_key(&self) -> &RecordingPublicKey {
        &self.public_key
    }
}

/// The recording private key, in memory while a session lasts. Wiped when dropped
/// (`StaticSecret` zeroizes itself); `Debug` shows only the public key.
pub struct UnlockedVault {
    secret: StaticSecret,
    public: RecordingPublicKey,
}

// Every secret field wipes itself on drop.
impl ZeroizeOnDrop for UnlockedVault {}

impl UnlockedVault {
    /// Takes an unwrapped private key, refusing one that does not belong to `expected`.
    fn from_secret(
        secret: SecretKey,
        expected: &RecordingPublicKey,
        what: &'static str,
    ) -> Result<Self, VaultError> {
        let vault = Self::from_secret_unchecked(secret);
        if vault.public != *expected {
            return Err(VaultError::corrupted(
                what,
                "the key inside does not match the vault's public key",
            ));
        }
        Ok(vault)
    }

    fn from_secret_unchecked(secret: SecretKey) -> Self {
        let secret = StaticSecret::from(*secret);
        let public = RecordingPublicKey(PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    /// Opens the recovery wrap carried in a file header, for offline decryption.
    pub(crate) fn from_recovery_wrap(
        wrap: &RecoveryWrap,
        recovery: &RecoveryKey,
        public_key: &RecordingPublicKey,
    ) -> Result<Self, VaultError> {
        let secret = wrap.unwrap(recovery, &public_key.0)?;
        Self::from_secret(secret, public_key, "the recovery key wrap")
    }

    pub fn public_key(&self) -> &RecordingPublicKey {
        &self.public
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    fn check_same_vault(&self, record: &VaultRecord) -> Result<(), VaultError> {
        if self.public != record.public_key {
            return Err(VaultError::WrongVault {
                what: "the unlocked key",
            });
        }
        Ok(())
    }
}

impl fmt::Debug for UnlockedVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnlockedVault")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The recording private key wrapped under a key derived from one user's password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PasswordWrap {
    argon2id: Argon2Params,
    #[serde(with = "super::hex::array")]
    salt: [u8; SALT_LEN],
    /// Derived from the password next to the wrapping key; tells a wrong password from
    /// a damaged wrap.
    #[serde(with = "super::hex::array")]
    check: [u8; 16],
    #[serde(with = "super::hex::array")]
    nonce: [u8; NONCE_LEN],
    #[serde(with = "super::hex::array")]
    wrapped_key: [u8; WRAPPED_KEY_LEN],
    /// Over every field above and the public key: catches damage in storage.
    #[serde(with = "super::hex::array")]
    checksum: [u8; 16],
}

/// The keys a password yields for one wrap.
struct PasswordKeys {
    wrap_key: SecretKey,
    check: [u8; 16],
}

fn password_keys(
    password: &str,
    salt: &[u8; SALT_LEN],
    params: Argon2Params,
    public_key: &RecordingPublicKey,
) -> Result<PasswordKeys, VaultError> {
    let (argon2, block_count) = params.to_argon2()?;
    let mut master = Zeroizing::new([0u8; KEY_LEN]);
    // Our own memory so it can be wiped: Argon2's blocks are password-derived.
    let mut blocks = Zeroizing::new(vec![Block::default(); block_count]);
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, master.as_mut(), &mut *blocks)
        .map_err(|e| VaultError::BadParams(format!("{params:?}: {e}")))?;
    let mut check = [0u8; 16];
    crypto::hkdf(
        master.as_ref(),
        &[LABEL_PASSWORD_CHECK, &public_key.0],
        &mut check,
    );
    Ok(PasswordKeys {
        wrap_key: crypto::hkdf_key(master.as_ref(), &[LABEL_PASSWORD_WRAP_KEY, &public_key.0]),
        check,
    })
}

impl PasswordWrap {
    fn new(
        vault: &UnlockedVault,
        password: &str,
        params: Argon2Params,
    ) -> Result<Self, VaultError> {
        let salt = crypto::random_array()?;
        let keys = password_keys(password, &salt, params, &vault.public)?;
        let nonce = crypto::random_array()?;
        let wrapped_key = crypto::wrap_key(
            &keys.wrap_key,
            &nonce,
            &password_aad(&vault.public),
            vault.secret.as_bytes(),
        );
        let mut wrap = Self {
            argon2id: params,
            salt,
            check: keys.check,
            nonce,
            wrapped_key,
            checksum: [0; 16],
        };
        wrap.checksum = wrap.compute_checksum(&vault.public);
        Ok(wrap)
    }

    fn compute_checksum(&self, public_key: &RecordingPublicKey) -> [u8; 16] {
        crypto::checksum(&[
            LABEL_PASSWORD_CHECKSUM,
            &public_key.0,
            &self.argon2id.to_bytes(),
            &self.salt,
            &self.check,
            &self.nonce,
            &self.wrapped_key,
        ])
    }

    fn unwrap(
        &self,
        password: &str,
        public_key: &RecordingPublicKey,
    ) -> Result<UnlockedVault, VaultError> {
        const WHAT: &str = "the user's vault key wrap";
        if self.compute_checksum(public_key) != self.checksum {
            return Err(VaultError::corrupted(WHAT, "checksum mismatch"));
        }
        let keys = password_keys(password, &self.salt, self.argon2id, public_key)?;
        if !crypto::ct_eq(&keys.check, &self.check) {
            return Err(VaultError::WrongPassword);
        }
        let secret = crypto::unwrap_key(
            &keys.wrap_key,
            &self.nonce,
            &password_aad(public_key),
            &self.wrapped_key,
        )
        .ok_or(VaultError::corrupted(WHAT, "it failed authentication"))?;
        UnlockedVault::from_secret(secret, public_key, WHAT)
    }
}

fn password_aad(public_key: &RecordingPublicKey) -> Vec<u8> {
    [LABEL_PASSWORD_AAD, &public_key.0[..]].concat()
}

/// Everything the store persists about the vault. Contains no secret in the clear:
/// a copy of it (or of the whole card) opens nothing without a password or the
/// recovery key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultRecord {
    version: u32,
    public_key: RecordingPublicKey,
    recovery: RecoveryWrap,
    users: BTreeMap<String, PasswordWrap>,
}

impl VaultRecord {
    /// Creates the vault at first-run setup: a new recording key pair, wrapped for the
    /// first user and under a new recovery key. Show the recovery key to the owner
    /// once (`to_display_string`) and drop it; it is not stored anywhere.
    pub fn create(
        user: &str,
        password: &str,
        params: Argon2Params,
    ) -> Result<(VaultRecord, RecoveryKey, UnlockedVault), VaultError> {
        params.to_argon2()?;
        let vault = UnlockedVault::from_secret_unchecked(crypto::random_key()?);
        let recovery_key = RecoveryKey::generate()?;
        let mut record = VaultRecord {
            version: RECORD_VERSION,
            public_key: vault.public,
            recovery: RecoveryWrap::new(&recovery_key, &vault.public.0, vault.secret.as_bytes())?,
            users: BTreeMap::new(),
        };
        record.add_user(&vault, user, password, params)?;
        Ok((record, recovery_key, vault))
    }

    pub fn public_key(&self) -> &RecordingPublicKey {
        &self.public_key
    }

    /// The key to seal new recordings with, after checking that the stored public key
    /// is undamaged (a flipped bit there would make every later recording unreadable).
    pub fn sealing_key(&self) -> Result<SealingKey, VaultError> {
        self.check_version()?;
        self.recovery.verify(&self.public_key.0)?;
        Ok(SealingKey {
            public_key: self.public_key,
            recovery: self.recovery.clone(),
        })
    }

    /// Unlocks with a user's password. Slow (Argon2id): call off the I/O loop.
    ///
    /// An unknown user is answered at once; the auth layer, which verifies the password
    /// first, is what keeps timing from revealing which usernames exist.
    pub fn unlock(&self, user: &str, password: &str) -> Result<UnlockedVault, VaultError> {
        self.check_version()?;
        self.wrap_of(user)?.unwrap(password, &self.public_key)
    }

    /// Unlocks with the recovery key (for example to set a new password for an owner
    /// who forgot theirs).
    pub fn unlock_with_recovery_key(
        &self,
        recovery: &RecoveryKey,
    ) -> Result<UnlockedVault, VaultError> {
        self.check_version()?;
        UnlockedVault::from_recovery_wrap(&self.recovery, recovery, &self.public_key)
    }

    /// Gives another user access. Needs an unlocked vault: only someone who can already
    /// open the recordings can share them.
    pub fn add_user(
        &mut self,
        vault: &UnlockedVault,
        user: &str,
        password: &str,
        params: Argon2Params,
    ) -> Result<(), VaultError> {
        vault.check_same_vault(self)?;
        if self.users.contains_key(user) {
            return Err(VaultError::UserExists(user.to_owned()));
        }
        let wrap = PasswordWrap::new(vault, password, params)?;
        self.users.insert(user.to_owned(), wrap);
        Ok(())
    }

    /// Re-wraps for an existing user: on a password change, or after a login to raise
    /// the Argon2 parameters (compare [`VaultRecord::params_of`] with the current
    /// default). The old wrap is replaced, so the old password stops working.
    pub fn set_password(
        &mut self,
        vault: &UnlockedVault,
        user: &str,
        password: &str,
        params: Argon2Params,
    ) -> Result<(), VaultError> {
        vault.check_same_vault(self)?;
        let slot = self
            .users
            .get_mut(user)
            .ok_or_else(|| VaultError::UnknownUser(user.to_owned()))?;
        *slot = PasswordWrap::new(vault, password, params)?;
        Ok(())
    }

    /// Removes a user's wrap. Their password no longer opens anything (a session they
    /// still hold keeps its key until it ends: end it too). Removing the last user is
    /// allowed: the recovery key still opens the vault.
    pub fn remove_user(&mut self, user: &str) -> Result<(), VaultError> {
        self.users
            .remove(user)
            .map(drop)
            .ok_or_else(|| VaultError::UnknownUser(user.to_owned()))
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The Argon2 parameters a user's wrap was made with.
    pub fn params_of(&self, user: &str) -> Result<Argon2Params, VaultError> {
        Ok(self.wrap_of(user)?.argon2id)
    }

    fn wrap_of(&self, user: &str) -> Result<&PasswordWrap, VaultError> {
        self.users
            .get(user)
            .ok_or_else(|| VaultError::UnknownUser(user.to_owned()))
    }

    fn check_version(&self) -> Result<(), VaultError> {
        if self.version != RECORD_VERSION {
            return Err(VaultError::UnsupportedRecord {
                found: self.version,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vault::crypto::contains;

    const FAST: Argon2Params = Argon2Params::INSECURE_FAST;

    pub(crate) fn secret_bytes(vault: &UnlockedVault) -> [u8; 32] {
        vault.secret.to_bytes()
    }

    fn new_vault() -> (VaultRecord, RecoveryKey, UnlockedVault) {
        VaultRecord::create("owner", "correct horse battery", FAST).unwrap()
    }

    #[test]
    fn password_unlocks_and_wrong_password_is_told_apart() {
        let (record, _, vault) = new_vault();
        let again = record.unlock("owner", "correct horse battery").unwrap();
        assert_eq!(secret_bytes(&again), secret_bytes(&vault));
        assert_eq!(again.public_key(), record.public_key());
        assert!(matches!(
            record.unlock("owner", "correct horse battery!"),
            Err(VaultError::WrongPassword)
        ));
        assert!(matches!(
            record.unlock("nobody", "correct horse battery"),
            Err(VaultError::UnknownUser(u)) if u == "nobody"
        ));
    }

    #[test]
    fn recovery_key_unlocks_and_a_wrong_one_is_told_apart() {
        let (record, recovery, vault) = new_vault();
        let typed = RecoveryKey::parse(&recovery.to_display_string()).unwrap();
        let again = record.unlock_with_recovery_key(&typed).unwrap();
        assert_eq!(secret_bytes(&again), secret_bytes(&vault));

        let (_, other_recovery, _) = new_vault();
        let err = record
            .unlock_with_recovery_key(&other_recovery)
            .unwrap_err();
        assert!(matches!(err, VaultError::WrongRecoveryKey), "{err}");
    }

    #[test]
    fn users_can_be_added_rewrapped_and_removed() {
        let (mut record, _, vault) = new_vault();
        record
            .add_user(&vault, "viewer", "another long passphrase", FAST)
            .unwrap();
        assert!(matches!(
            record.add_user(&vault, "viewer", "x", FAST),
            Err(VaultError::UserExists(_))
        ));
        assert_eq!(record.users().collect::<Vec<_>>(), ["owner", "viewer"]);
        let viewer = record.unlock("viewer", "another long passphrase").unwrap();
        assert_eq!(secret_bytes(&viewer), secret_bytes(&vault));

        record
            .set_password(&viewer, "viewer", "a changed passphrase", FAST)
            .unwrap();
        assert!(matches!(
            record.unlock("viewer", "another long passphrase"),
            Err(VaultError::WrongPassword)
        ));
        record.unlock("viewer", "a changed passphrase").unwrap();
        assert!(matches!(
            record.set_password(&vault, "ghost", "x", FAST),
            Err(VaultError::UnknownUser(_))
        ));

        record.remove_user("viewer").unwrap();
        assert!(matches!(
            record.unlock("viewer", "a changed passphrase"),
            Err(VaultError::UnknownUser(_))
        ));
        assert!(matches!(
            record.remove_user("viewer"),
            Err(VaultError::UnknownUser(_))
        ));
        record.unlock("owner", "correct horse battery").unwrap();
    }

    #[test]
    fn another_vaults_key_cannot_add_users() {
        let (mut record, _, _) = new_vault();
        let (_, _, other) = new_vault();
        assert!(matches!(
            record.add_user(&other, "mallory", "pw", FAST),
            Err(VaultError::WrongVault { .. })
        ));
        assert!(matches!(
            record.set_password(&other, "owner", "pw", FAST),
            Err(VaultError::WrongVault { .. })
        ));
    }

    #[test]
    fn json_round_trip_holds_no_secret() {
        let (record, recovery, vault) = new_vault();
        let json = serde_json::to_string_pretty(&record).unwrap();
        let back: VaultRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        back.unlock("owner", "correct horse battery").unwrap();

        let sk = secret_bytes(&vault);
        for needle in [
            crate::vault::hex::encode(&sk),
            crate::vault::hex::encode(recovery.bytes()),
            recovery.to_display_string().to_string(),
            "correct horse battery".to_owned(),
        ] {
            assert!(!json.contains(&needle), "{needle} in {json}");
        }
        assert!(!contains(json.as_bytes(), &sk));

        // Nor the keys derived from the password.
        let wrap = &record.users["owner"];
        let keys = password_keys(
            "correct horse battery",
            &wrap.salt,
            wrap.argon2id,
            &record.public_key,
        )
        .unwrap();
        assert!(!json.contains(&crate::vault::hex::encode(keys.wrap_key.as_ref())));
        assert_eq!(
            keys.check, wrap.check,
            "the derivation above is the real one"
        );
    }

    /// Every stored field of a wrap, altered, reads as damage — never as a wrong
    /// password, which would send the owner guessing.
    #[test]
    fn damaged_wraps_are_reported_as_damaged() {
        let (record, recovery, _) = new_vault();
        let json = serde_json::to_value(&record).unwrap();
        let wrap = json["users"]["owner"].as_object().unwrap();
        for field in wrap.keys() {
            let mut damaged = json.clone();
            let value = &mut damaged["users"]["owner"][field.as_str()];
            if let Some(text) = value.as_str() {
                let mut chars: Vec<char> = text.chars().collect();
                chars[0] = if chars[0] == '0' { '1' } else { '0' };
                *value = chars.into_iter().collect::<String>().into();
            } else {
                value["t_cost"] = (value["t_cost"].as_u64().unwrap() + 1).into();
            }
            let damaged: VaultRecord = serde_json::from_value(damaged).unwrap();
            let err = damaged
                .unlock("owner", "correct horse battery")
                .unwrap_err();
            assert!(
                matches!(err, VaultError::Corrupted { .. }),
                "{field}: {err}"
            );
        }

        // The public key and the recovery wrap are covered the same way.
        for path in ["public_key", "key_id", "nonce", "wrapped_key", "checksum"] {
            let mut damaged = json.clone();
            let value = if path == "public_key" {
                &mut damaged[path]
            } else {
                &mut damaged["recovery"][path]
            };
            let text = value.as_str().unwrap();
            let flipped = if text.starts_with('0') { "1" } else { "0" };
            *value = format!("{flipped}{}", &text[1..]).into();
            let damaged: VaultRecord = serde_json::from_value(damaged).unwrap();
            let err = damaged.unlock_with_recovery_key(&recovery).unwrap_err();
            assert!(matches!(err, VaultError::Corrupted { .. }), "{path}: {err}");
            if path != "public_key" {
                continue;
            }
            let err = damaged.sealing_key().unwrap_err();
            assert!(matches!(err, VaultError::Corrupted { .. }), "{path}: {err}");
        }
        record.sealing_key().unwrap();
    }

    #[test]
    fn a_tampered_key_that_passes_its_checksum_still_fails_authentication() {
        let (mut record, _, _) = new_vault();
        let wrap = record.users.get_mut("owner").unwrap();
        wrap.wrapped_key[0] ^= 1;
        wrap.checksum = wrap.compute_checksum(&record.public_key);
        let err = record.unlock("owner", "correct horse battery").unwrap_err();
        assert!(
            matches!(err, VaultError::Corrupted { detail, .. } if detail.contains("authentication")),
            "{err}"
        );
    }

    #[test]
    fn argon2_params_are_stored_and_honoured() {
        let params = Argon2Params {
            m_cost_kib: 64,
            t_cost: 3,
            p_cost: 2,
        };
        let (mut record, _, vault) = VaultRecord::create("owner", "pw", params).unwrap();
        assert_eq!(record.params_of("owner").unwrap(), params);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json["users"]["owner"]["argon2id"],
            serde_json::json!({"m_cost_kib": 64, "t_cost": 3, "p_cost": 2})
        );

        // The stored check value is exactly what Argon2id with the stored parameters
        // and salt yields: the parameters are used, not some default.
        let wrap = &record.users["owner"];
        let mut master = [0u8; 32];
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 3, 2, Some(32)).unwrap(),
        )
        .hash_password_into(b"pw", &wrap.salt, &mut master)
        .unwrap();
        let mut check = [0u8; 16];
        crypto::hkdf(
            &master,
            &[LABEL_PASSWORD_CHECK, &record.public_key.0],
            &mut check,
        );
        assert_eq!(check, wrap.check);

        // Unlocking derives with the stored parameters: change them (keeping the
        // checksum valid) and the right password no longer matches.
        let mut forged = record.clone();
        let wrap = forged.users.get_mut("owner").unwrap();
        wrap.argon2id.t_cost = 2;
        wrap.checksum = wrap.compute_checksum(&forged.public_key);
        assert!(matches!(
            forged.unlock("owner", "pw"),
            Err(VaultError::WrongPassword)
        ));

        // Raising the parameters on re-wrap.
        let raised = Argon2Params {
            m_cost_kib: 128,
            ..params
        };
        record.set_password(&vault, "owner", "pw", raised).unwrap();
        assert_eq!(record.params_of("owner").unwrap(), raised);
        record.unlock("owner", "pw").unwrap();
    }

    #[test]
    fn out_of_range_params_are_refused() {
        for params in [
            Argon2Params {
                m_cost_kib: 4,
                ..FAST
            },
            Argon2Params {
                m_cost_kib: Argon2Params::MAX_M_COST_KIB + 1,
                ..FAST
            },
            Argon2Params { t_cost: 0, ..FAST },
            Argon2Params {
                t_cost: 1000,
                ..FAST
            },
        ] {
            assert!(
                matches!(
                    VaultRecord::create("o", "p", params),
                    Err(VaultError::BadParams(_))
                ),
                "{params:?}"
            );
        }
    }

    #[test]
    fn unknown_record_versions_are_refused() {
        let (record, recovery, _) = new_vault();
        let mut json = serde_json::to_value(&record).unwrap();
        json["version"] = 2.into();
        let future: VaultRecord = serde_json::from_value(json).unwrap();
        assert!(matches!(
            future.unlock_with_recovery_key(&recovery),
            Err(VaultError::UnsupportedRecord { found: 2 })
        ));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let (record, recovery, vault) = new_vault();
        let sk = crate::vault::hex::encode(&secret_bytes(&vault));
        for shown in [
            format!("{vault:?}"),
            format!("{record:?}"),
            format!("{recovery:?}"),
        ] {
            assert!(!shown.contains(&sk), "{shown}");
            assert!(
                !shown.contains(&recovery.to_display_string()[..9]),
                "{shown}"
            );
        }
    }

    #[test]
    fn secrets_wipe_themselves() {
        fn zeroize_on_drop<T: ZeroizeOnDrop>() {}
        zeroize_on_drop::<UnlockedVault>();
        // x25519-dalek wipes `StaticSecret` in its `Drop` (`#[zeroize(drop)]`) without
        // implementing the marker trait; what can be checked is that it has that drop.
        assert!(std::mem::needs_drop::<StaticSecret>());
        zeroize_on_drop::<RecoveryKey>();
        zeroize_on_drop::<SecretKey>();
    }

    /// Cost of one unlock with the default parameters on this host:
    /// `cargo test -p mecam --release argon2_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run by hand"]
    fn argon2_cost_of_the_default_params() {
        let (record, _, _) = VaultRecord::create("owner", "pw", Argon2Params::RECOMMENDED).unwrap();
        let start = std::time::Instant::now();
        let n = 5;
        for _ in 0..n {
            record.unlock("owner", "pw").unwrap();
        }
        println!(
            "{:?}: {:?} per unlock",
            Argon2Params::RECOMMENDED,
            start.elapsed() / n
        );
    }
}
