//! Password hashing (Argon2id, PHC strings) and the password policy.
//!
//! # Parameters
//!
//! Logins use the vault's [`Argon2Params::RECOMMENDED`] — m = 19 MiB, t = 2, p = 1,
//! OWASP's Argon2id setting — for one reason of consistency and one of cost:
//! a login already runs the vault's Argon2id to unwrap the recording key, so the two
//! should cost an attacker (and the Pi) the same, and 19 MiB is the most a transient
//! login may take from the 64 MB service budget on a 512 MB board (see that type's
//! documentation for the measurements: ~44 ms on the x86 build host, projected
//! 0.35–0.45 s on the Zero 2 W's Cortex-A53).
//!
//! Hashes are stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), which
//! carry their own parameters: raising [`PasswordHasher`]'s parameters later leaves old
//! hashes verifiable, and [`PasswordHasher::needs_rehash`] says when to re-hash one
//! after a successful login. Parameters read back from a stored hash are bounded by
//! [`Argon2Params::MAX_M_COST_KIB`] and friends, so a damaged record cannot make a
//! login allocate more than the board has.
//!
//! # Bytes hashed
//!
//! Passwords are hashed as the UTF-8 bytes given, without Unicode normalisation (no
//! normalisation tables are available without a new dependency). A password typed with
//! a composed "é" on one device and a decomposed one on another therefore differs;
//! phone and desktop keyboards produce the composed (NFC) form in practice.
//!
//! # Timing
//!
//! Argon2's output comparison is constant-time (`password_hash::Output`'s equality).
//! For an unknown username, call [`PasswordHasher::dummy_verify`]: it runs the same
//! Argon2id work as a real verify, so the answer's timing does not reveal whether the
//! account exists. Every function here that hashes costs a few hundred milliseconds on
//! the Pi: run it on the password-hashing thread, never on the I/O loop.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHash as PhcHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::encoding::{RandomError, fill_random};
use crate::vault::Argon2Params;

/// Minimum length in Unicode scalar values (what a person would call characters).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum length in bytes. Argon2 hashes any length, but the pre-hash of a huge input
/// is attacker-controlled CPU time; 1 KiB is more than any passphrase needs.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The zxcvbn score (0–4) a password needs: 3 is "safely unguessable: moderate
/// protection from offline slow-hash scenario" (≥ 10^8 guesses).
pub const MIN_ZXCVBN_SCORE: u8 = 3;
/// Words every ME_CAM password is checked against besides the username.
const PRODUCT_WORDS: &[&str] = &["mecam", "me_cam", "camera"];

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;
/// Fixed salt for [`PasswordHasher::dummy_verify`]; its output is never compared with
/// anything stored, so a constant is fine.
const DUMMY_SALT: &[u8; SALT_LEN] = b"ME_CAM dummy sal";

/// A password as received: wiped from memory on drop, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl<'de> Deserialize<'de> for Password {
    /// Lets request bodies deserialize straight into a wiped-on-drop value.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A stored password hash: an Argon2id PHC string. What the store persists per user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string read from storage; checked when verified.
    pub fn from_phc(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// The Argon2 parameters recorded in the hash, if it parses.
    pub fn params(&self) -> Option<Argon2Params> {
        let phc = PhcHash::new(&self.0).ok()?;
        let params = Params::try_from(&phc).ok()?;
        Some(Argon2Params {
            m_cost_kib: params.m_cost(),
            t_cost: params.t_cost(),
            p_cost: params.p_cost(),
        })
    }
}

impl fmt::Debug for PasswordHash {
    /// Shows the parameters only: the hash is an offline-guessing target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash({:?})", self.params())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("Argon2 parameters {0:?} are out of bounds or invalid")]
    BadParams(Argon2Params),
    #[error("the stored password hash is malformed or not Argon2id")]
    MalformedHash,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("Argon2 failed: {0}")]
    Argon2(String),
}

/// Hashes and verifies passwords with one set of Argon2id parameters.
///
/// Counts its Argon2 runs ([`Self::argon2_runs`]), which lets tests (and metrics) check
/// that the dummy path really does the work.
pub struct PasswordHasher {
    params: Argon2Params,
    argon2: Argon2<'static>,
    runs: AtomicU64,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Builds Argon2id v0x13 with `params`, refusing values beyond the vault's bounds.
fn argon2_for(params: Argon2Params) -> Result<Argon2<'static>, PasswordError> {
    if params.m_cost_kib > Argon2Params::MAX_M_COST_KIB
        || params.t_cost > Argon2Params::MAX_T_COST
        || params.p_cost > Argon2Params::MAX_P_COST
    {
        return Err(PasswordError::BadParams(params));
    }
    let built = Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(OUTPUT_LEN),
    )
    .map_err(|_| PasswordError::BadParams(params))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, built))
}

impl PasswordHasher {
    pub fn new(params: Argon2Params) -> Result<Self, PasswordError> {
        Ok(Self {
            argon2: argon2_for(params)?,
            params,
            runs: AtomicU64::new(0),
        })
    }

    /// The parameters new hashes get.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// How many Argon2 computations this hasher has run.
    pub fn argon2_runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Hashes `password` with a fresh random salt. Does not apply the policy: call
    /// [`check_policy`] first where a user chooses a password.
    pub fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordError> {
        let bytes = password.expose().as_bytes();
        if bytes.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| PasswordError::Argon2(e.to_string()))?;
        let phc = argon2::password_hash::PasswordHasher::hash_password(&self.argon2, bytes, &salt)
            .map_err(|e| PasswordError::Argon2(e.to_string()))?;
        self.count_run();
        Ok(PasswordHash(phc.to_string()))
    }

    /// Checks `password` against `stored`, with the parameters recorded in `stored`.
    ///
    /// `Ok(false)` for a wrong password (and for one over the length limit, after the
    /// same work as a dummy verify); `Err` only when the stored hash itself is unusable,
    /// which the caller should log — it is not the user's fault.
    pub fn verify(
        &self,
        password: &Password,
        stored: &PasswordHash,
    ) -> Result<bool, PasswordError> {
        let bytes = password.expose().as_bytes();
        if bytes.len() > MAX_PASSWORD_BYTES {
            // Same cost as a real attempt, so length probing reveals nothing either.
            self.dummy_verify(&Password::new(""));
            return Ok(false);
        }
        let phc = PhcHash::new(&stored.0).map_err(|_| PasswordError::MalformedHash)?;
        if phc.algorithm != Algorithm::Argon2id.ident() {
            return Err(PasswordError::MalformedHash);
        }
        let params = stored.params().ok_or(PasswordError::MalformedHash)?;
        // Bounds check before any allocation sized by the record.
        let argon2 = argon2_for(params)?;
        match argon2.verify_password(bytes, &phc) {
            Ok(()) => {
                self.count_run();
                Ok(true)
            }
            Err(argon2::password_hash::Error::Password) => {
                self.count_run();
                Ok(false)
            }
            Err(e) => Err(PasswordError::Argon2(e.to_string())),
        }
    }

    /// Runs the Argon2id work of a verify with the current parameters and returns
    /// `false`. Use it when the username is unknown, so that answer costs as long as a
    /// wrong password for a real account.
    pub fn dummy_verify(&self, password: &Password) -> bool {
        let out = self.dummy_hash(password);
        std::hint::black_box(&out);
        false
    }

    /// The Argon2id output [`Self::dummy_verify`] computes (and discards). Separate so
    /// tests can check it is real Argon2id output, not skipped work.
    fn dummy_hash(&self, password: &Password) -> Zeroizing<[u8; OUTPUT_LEN]> {
        let bytes = password.expose().as_bytes();
        let bytes = &bytes[..bytes.len().min(MAX_PASSWORD_BYTES)];
        let mut out = Zeroizing::new([0u8; OUTPUT_LEN]);
        // An error (impossible with validated params) changes nothing: the answer is
        // "no" either way.
        if self
            .argon2
            .hash_password_into(bytes, DUMMY_SALT, &mut out[..])
            .is_ok()
        {
            self.count_run();
        }
        out
    }

    /// Counts a completed Argon2 computation (only after it has returned).
    fn count_run(&self) {
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// True when `stored` was made with other parameters (or another algorithm) than
    /// this hasher's: re-hash the password, which the caller has just verified.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        let Ok(phc) = PhcHash::new(&stored.0) else {
            return true;
        };
        phc.algorithm != Algorithm::Argon2id.ident()
            || phc.version != Some(Version::V0x13.into())
            || stored.params() != Some(self.params)
            || phc.hash.map(|h| h.len()) != Some(OUTPUT_LEN)
    }
}

/// Why a chosen password was refused, phrased for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("use at least {min} characters (this one has {actual})")]
    TooShort { min: usize, actual: usize },
    #[error("use at most {max} bytes")]
    TooLong { max: usize },
    #[error("{}", guessable_message(.warning, .suggestions))]
    Guessable {
        /// zxcvbn's score, 0–4.
        score: u8,
        /// What makes it weak, if zxcvbn can say.
        warning: Option<String>,
        /// What to do instead.
        suggestions: Vec<String>,
    },
}

fn guessable_message(warning: &Option<String>, suggestions: &[String]) -> String {
    let mut message = String::from("this password is too easy to guess");
    if let Some(warning) = warning {
        message.push_str(": ");
        message.push_str(warning.trim_end_matches('.'));
    }
    message.push('.');
    for suggestion in suggestions {
        message.push(' ');
        message.push_str(suggestion);
    }
    if suggestions.is_empty() {
        message.push_str(" Add more words or characters that are not common or related to you.");
    }
    message
}

/// The password policy: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes, and a zxcvbn score of at least [`MIN_ZXCVBN_SCORE`]
/// judged with the username and the product name as known words (so "alice…alice" or
/// "mecammecam…" count as guessable).
pub fn check_policy(username: &str, password: &Password) -> Result<(), WeakPassword> {
    let text = password.expose();
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    let chars = text.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort {
            min: MIN_PASSWORD_CHARS,
            actual: chars,
        });
    }
    let mut inputs: Vec<&str> = PRODUCT_WORDS.to_vec();
    if !username.is_empty() {
        inputs.push(username);
    }
    let entropy = zxcvbn::zxcvbn(text, &inputs);
    let score = u8::from(entropy.score());
    if score >= MIN_ZXCVBN_SCORE {
        return Ok(());
    }
    let (warning, suggestions) = match entropy.feedback() {
        Some(feedback) => (
            feedback.warning().map(|w| w.to_string()),
            feedback
                .suggestions()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    Err(WeakPassword::Guessable {
        score,
        warning,
        suggestions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(Argon2Params::INSECURE_FAST).expect("test params are valid")
    }

    const STRONG: &str = "correct horse battery staple under the porch light";

    #[test]
    fn hash_verifies_right_password_and_refuses_wrong_one() {
        let h = hasher();
        let stored = h.hash(&Password::from(STRONG)).unwrap();
        assert!(stored.as_phc().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(!stored.as_phc().contains(STRONG));
        assert!(h.verify(&Password::from(STRONG), &stored).unwrap());
        assert!(
            !h.verify(
                &Password::from("correct horse battery staple under the porch lighT"),
                &stored
            )
            .unwrap()
        );
        assert!(!h.verify(&Password::from(""), &stored).unwrap());
    }

    #[test]
    fn same_password_gets_different_salts() {
        let h = hasher();
        let a = h.hash(&Password::from(STRONG)).unwrap();
        let b = h.hash(&Password::from(STRONG)).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_with_old_parameters_still_verify_and_need_rehash() {
        let old = hasher();
        let stored = old.hash(&Password::from(STRONG)).unwrap();
        let raised = PasswordHasher::new(Argon2Params {
            m_cost_kib: 16,
            t_cost: 2,
            p_cost: 1,
        })
        .unwrap();
        assert!(raised.verify(&Password::from(STRONG), &stored).unwrap());
        assert!(raised.needs_rehash(&stored));
        assert!(!old.needs_rehash(&stored));
        let rehashed = raised.hash(&Password::from(STRONG)).unwrap();
        assert!(!raised.needs_rehash(&rehashed));
        assert_eq!(
            rehashed.params(),
            Some(Argon2Params {
                m_cost_kib: 16,
                t_cost: 2,
                p_cost: 1
            })
        );
    }

    #[test]
    fn hostile_or_malformed_stored_hashes_are_errors_not_allocations() {
        let h = hasher();
        let huge = PasswordHash::from_phc(
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        );
        assert!(matches!(
            h.verify(&Password::from(STRONG), &huge),
            Err(PasswordError::BadParams(_))
        ));
        assert!(matches!(
            h.verify(
                &Password::from(STRONG),
                &PasswordHash::from_phc("not a hash")
            ),
            Err(PasswordError::MalformedHash)
        ));
        let argon2i = PasswordHash::from_phc(
            "$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        );
        assert!(matches!(
            h.verify(&Password::from(STRONG), &argon2i),
            Err(PasswordError::MalformedHash)
        ));
        assert!(h.needs_rehash(&argon2i));
        assert!(
            PasswordHasher::new(Argon2Params {
                m_cost_kib: Argon2Params::MAX_M_COST_KIB + 1,
                t_cost: 1,
                p_cost: 1
            })
            .is_err()
        );
    }

    #[test]
    fn dummy_verify_runs_argon2_like_a_real_verify_and_says_no() {
        let h = hasher();
        let stored = h.hash(&Password::from(STRONG)).unwrap();
        let before = h.argon2_runs();
        assert!(
            !h.verify(&Password::from("wrong wrong wrong"), &stored)
                .unwrap()
        );
        let after_real = h.argon2_runs();
        assert!(!h.dummy_verify(&Password::from(STRONG)));
        let after_dummy = h.argon2_runs();
        assert_eq!(after_real - before, 1, "a real verify runs Argon2 once");
        assert_eq!(
            after_dummy - after_real,
            1,
            "a dummy verify runs Argon2 once too"
        );

        // And what it computes is the real Argon2id of the password, with the hasher's
        // parameters — not a shortcut.
        let mut reference = [0u8; OUTPUT_LEN];
        argon2_for(Argon2Params::INSECURE_FAST)
            .unwrap()
            .hash_password_into(STRONG.as_bytes(), DUMMY_SALT, &mut reference)
            .unwrap();
        assert_eq!(*h.dummy_hash(&Password::from(STRONG)), reference);
        assert_ne!(reference, [0u8; OUTPUT_LEN]);
    }

    #[test]
    fn overlong_password_is_refused_after_the_same_work() {
        let h = hasher();
        let stored = h.hash(&Password::from(STRONG)).unwrap();
        let long = Password::new("a".repeat(MAX_PASSWORD_BYTES + 1));
        let before = h.argon2_runs();
        assert!(!h.verify(&long, &stored).unwrap());
        assert_eq!(h.argon2_runs() - before, 1);
        assert!(matches!(h.hash(&long), Err(PasswordError::TooLong)));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let h = hasher();
        let password = Password::from(STRONG);
        let stored = h.hash(&password).unwrap();
        let shown = format!("{password:?} {stored:?} {h:?}");
        assert!(!shown.contains("horse"), "{shown}");
        let hash_part = stored.as_phc().rsplit('$').next().unwrap();
        assert!(!shown.contains(hash_part), "{shown}");
    }

    #[test]
    fn password_hash_round_trips_through_serde_as_a_phc_string() {
        let stored = hasher().hash(&Password::from(STRONG)).unwrap();
        let json = serde_json::to_string(&stored).unwrap();
        assert_eq!(json, format!("\"{}\"", stored.as_phc()));
        let back: PasswordHash = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stored);
    }

    #[test]
    fn policy_refuses_short_passwords() {
        let err = check_policy("alice", &Password::from("Xq7#vB2!pL9")).unwrap_err();
        assert_eq!(
            err,
            WeakPassword::TooShort {
                min: 12,
                actual: 11
            }
        );
        assert!(err.to_string().contains("at least 12"));
        // Characters, not bytes: 11 two-byte characters are still too short.
        let err = check_policy("alice", &Password::from("ééééééééééé")).unwrap_err();
        assert!(matches!(err, WeakPassword::TooShort { actual: 11, .. }));
    }

    #[test]
    fn policy_refuses_overlong_passwords() {
        let long = Password::new("correct horse ".repeat(100));
        assert_eq!(
            check_policy("alice", &long),
            Err(WeakPassword::TooLong {
                max: MAX_PASSWORD_BYTES
            })
        );
    }

    fn assert_guessable(username: &str, password: &str) {
        match check_policy(username, &Password::from(password)) {
            Err(err @ WeakPassword::Guessable { score, .. }) => {
                assert!(score < MIN_ZXCVBN_SCORE);
                let message = err.to_string();
                assert!(message.starts_with("this password is too easy to guess"));
                assert!(
                    message.len() > "this password is too easy to guess.".len(),
                    "{message}"
                );
            }
            other => panic!("{password:?} for {username:?} should be guessable, got {other:?}"),
        }
    }

    #[test]
    fn policy_refuses_common_product_and_username_passwords_with_a_reason() {
        assert_guessable("alice", "password123456");
        assert_guessable("alice", "mecammecammecam");
        assert_guessable("zanzibarquokka", "zanzibarquokkazanzibarquokka");
        assert_guessable("alice", "aaaaaaaaaaaaaaaa");
        assert_guessable("alice", "qwertyuiopasdf");
    }

    #[test]
    fn username_is_a_known_word() {
        // Strong for a stranger, weak when it is the user's own name repeated.
        let password = "zanzibarquokkazanzibarquokka";
        assert_eq!(check_policy("alice", &Password::from(password)), Ok(()));
        assert_guessable("zanzibarquokka", password);
    }

    #[test]
    fn policy_accepts_a_strong_passphrase() {
        assert_eq!(check_policy("alice", &Password::from(STRONG)), Ok(()));
        assert_eq!(
            check_policy("alice", &Password::from("vN8#qT2!mZ6@wL4$")),
            Ok(())
        );
    }
}
