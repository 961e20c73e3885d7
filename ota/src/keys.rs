//! Ed25519 keys: generation, files, and the set of keys a device trusts.
//!
//! Files:
//! - `NAME.key`: the private key as PKCS#8 DER (what `ring` generates; OpenSSL's
//!   `openssl pkey -outform DER` output loads too), mode 0600.
//! - `NAME.pub`: the 32-byte public key as 64 lower-case hex digits and a newline.
//!   Blank lines and `#` comment lines are ignored, so a key file can say whose it is.
//!
//! A device trusts every `*.pub` in a directory (`/etc/mecam/ota-keys/` in the image),
//! so keys can be rotated by shipping an update that bakes in the new key alongside
//! the old one, then one signed by the new key that drops the old.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::hex;

/// Neither key file comes near this; reading stops there so a wrong path (a disk
/// image, /dev/zero) cannot eat memory.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Names a public key in a bundle: the first 8 bytes of SHA-256 of its 32 raw bytes.
/// Lets a device trusting several keys pick the right one without trying them all,
/// and lets a refusal message say which key signed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KeyId::LEN]);

impl KeyId {
    pub const LEN: usize = 8;
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: larger than {MAX_KEY_FILE_LEN} bytes, not a key file")]
    TooLarge { path: PathBuf },
    #[error("{path}: {reason}")]
    BadPublicKey { path: PathBuf, reason: &'static str },
    #[error("{path}: not an Ed25519 private key in PKCS#8 DER form")]
    BadPrivateKey { path: PathBuf },
    #[error("{path}: already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
    #[error("no trusted public keys (*.pub) in {path}")]
    NoKeys { path: PathBuf },
    #[error("two different trusted keys share the key id {0}")]
    KeyIdCollision(KeyId),
    #[error("the system random number generator failed")]
    Random,
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn key_id(&self) -> KeyId {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let mut id = [0u8; KeyId::LEN];
        id.copy_from_slice(&digest.as_ref()[..KeyId::LEN]);
        KeyId(id)
    }

    /// True if `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// The `.pub` file contents.
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex::encode(&self.0))
    }

    /// Parses `.pub` file contents.
    pub fn from_file_text(text: &str) -> Result<Self, &'static str> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines.next().ok_or("no key in file")?;
        if lines.next().is_some() {
            return Err("more than one key in file; use one file per key");
        }
        hex::decode_array(line)
            .map(PublicKey)
            .ok_or("expected 64 lower-case hex digits (a raw 32-byte Ed25519 public key)")
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_small(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::BadPublicKey {
            path: path.to_owned(),
            reason: "not text",
        })?;
        PublicKey::from_file_text(text).map_err(|reason| KeyError::BadPublicKey {
            path: path.to_owned(),
            reason,
        })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0))
    }
}

/// An Ed25519 private key, for the host tool.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// A fresh key as PKCS#8 DER.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        Ok(doc.as_ref().to_vec())
    }

    /// `None` if `der` is not an Ed25519 PKCS#8 key.
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        // "maybe_unchecked" accepts PKCS#8 v1 (no embedded public key, as OpenSSL
        // writes) besides ring's own v2; with v2 the embedded public key is still checked.
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .ok()
            .map(|pair| SigningKey { pair })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let der = read_small(path)?;
        SigningKey::from_pkcs8(&der).ok_or_else(|| KeyError::BadPrivateKey {
            path: path.to_owned(),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print private material.
        write!(f, "SigningKey({})", self.key_id())
    }
}

/// Generates a key pair and writes `STEM.key` (0600) and `STEM.pub`. Refuses to
/// overwrite either file: losing a release key is worse than a failed command.
pub fn write_new_keypair(stem: &Path) -> Result<(PathBuf, PathBuf, KeyId), KeyError> {
    let key_path = with_suffix(stem, ".key");
    let pub_path = with_suffix(stem, ".pub");
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let der = SigningKey::generate_pkcs8()?;
    let key = SigningKey::from_pkcs8(&der).ok_or_else(|| KeyError::BadPrivateKey {
        path: key_path.clone(),
    })?;
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&key_path).map_err(io_err(&key_path))?;
    file.write_all(&der)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&key_path))?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&pub_path)
        .map_err(io_err(&pub_path))?;
    file.write_all(key.public_key().to_file_text().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&pub_path))?;
    Ok((key_path, pub_path, key.key_id()))
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn read_small(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(path)
        .map_err(io_err)?
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The public keys a verifier accepts signatures from.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// Duplicates are dropped; two different keys with one id are refused, since the
    /// id alone picks the key that checks a signature.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Result<Self, KeyError> {
        let mut trusted = TrustedKeys::default();
        for key in keys {
            match trusted.get(key.key_id()) {
                Some(existing) if *existing == key => {}
                Some(_) => return Err(KeyError::KeyIdCollision(key.key_id())),
                None => trusted.keys.push(key),
            }
        }
        Ok(trusted)
    }

    /// Every `*.pub` file in `dir`, in name order; an error if there are none, since a
    /// device that trusts no key can never be updated again.
    pub fn load_dir(dir: &Path) -> Result<Self, KeyError> {
        let io_err = |source| KeyError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err)? {
            let path = entry.map_err(io_err)?.path();
            if path.extension().is_some_and(|e| e == "pub") {
                paths.push(path);
            }
        }
        paths.sort();
        let keys = paths
            .iter()
            .map(|p| PublicKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::NoKeys {
                path: dir.to_owned(),
            });
        }
        TrustedKeys::new(keys)
    }

    /// A directory of `*.pub` files or a single `.pub` file (for the host tool).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        if path.is_dir() {
            TrustedKeys::load_dir(path)
        } else {
            TrustedKeys::new([PublicKey::load(path)?])
        }
    }

    pub fn get(&self, id: KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.key_id() == id)
    }

    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(PublicKey::key_id).collect()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let sig = key.sign(b"hello");
        assert!(key.public_key().verify(b"hello", &sig));
        assert!(!key.public_key().verify(b"hellO", &sig));
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        assert!(!other.public_key().verify(b"hello", &sig));
        assert_ne!(key.key_id(), other.key_id());
    }

    #[test]
    fn key_id_is_sha256_prefix_of_the_public_key() {
        // RFC 8032 test vector 1 public key.
        let text = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let key = PublicKey::from_file_text(text).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        assert_eq!(key.key_id().0, digest.as_ref()[..8]);
        assert_eq!(key.to_file_text(), format!("{text}\n"));
    }

    #[test]
    fn public_key_file_text() {
        let hex64 = "ab".repeat(32);
        assert!(PublicKey::from_file_text(&format!("# release key 2026\n\n  {hex64}  \n")).is_ok());
        assert!(PublicKey::from_file_text("").is_err());
        assert!(PublicKey::from_file_text(&"ab".repeat(31)).is_err());
        assert!(PublicKey::from_file_text(&format!("{hex64}\n{hex64}\n")).is_err());
        assert!(PublicKey::from_file_text(&hex64.to_uppercase()).is_err());
    }

    #[test]
    fn keypair_files_and_trusted_dir() {
        let dir = tempfile::tempdir().unwrap();
        let (key_path, pub_path, id) = write_new_keypair(&dir.path().join("release")).unwrap();
        assert_eq!(key_path, dir.path().join("release.key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(SigningKey::load(&key_path).unwrap().key_id(), id);
        assert_eq!(PublicKey::load(&pub_path).unwrap().key_id(), id);
        assert!(matches!(
            write_new_keypair(&dir.path().join("release")),
            Err(KeyError::Exists { .. })
        ));

        write_new_keypair(&dir.path().join("second")).unwrap();
        fs::write(dir.path().join("README"), "not a key").unwrap();
        let trusted = TrustedKeys::load_dir(dir.path()).unwrap();
        assert_eq!(trusted.len(), 2);
        assert!(trusted.get(id).is_some());
        assert_eq!(TrustedKeys::load(&pub_path).unwrap().ids(), vec![id]);

        // A private key where a public one is expected is refused, not misread.
        assert!(matches!(
            PublicKey::load(&key_path),
            Err(KeyError::BadPublicKey { .. })
        ));
        assert!(matches!(
            SigningKey::load(&pub_path),
            Err(KeyError::BadPrivateKey { .. })
        ));
    }

    #[test]
    fn empty_dir_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            TrustedKeys::load_dir(dir.path()),
            Err(KeyError::NoKeys { .. })
        ));
        let key = PublicKey::from_bytes([7; 32]);
        assert_eq!(TrustedKeys::new([key, key]).unwrap().len(), 1);
    }

    #[test]
    fn oversized_key_file_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pub");
        fs::write(&path, vec![b'#'; 10_000]).unwrap();
        assert!(matches!(
            PublicKey::load(&path),
            Err(KeyError::TooLarge { .. })
        ));
    }
}
