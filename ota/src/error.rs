//! Why a bundle was refused. Every message names the part of the bundle at fault and,
//! where there are two values, both: the device shows these to the person updating it.

use std::fmt;
use std::io;

use crate::format::{FORMAT_VERSION, MAX_MANIFEST_LEN};
use crate::keys::{KeyError, KeyId};
use crate::manifest::{ManifestError, Sha256};
use crate::policy::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    #[error("not a ME_CAM update bundle (bad magic)")]
    BadMagic,
    #[error(
        "bundle format version {found} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedFormat { found: u16 },
    #[error("bundle header has unknown flags {flags:#06x}")]
    UnknownFlags { flags: u16 },
    #[error("manifest length {len} is out of range (1 to {MAX_MANIFEST_LEN} bytes)")]
    ManifestLength { len: u32 },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("bundle is not signed")]
    Unsigned,
    #[error(
        "bundle is signed by key {key_id}, which is not trusted (trusted: {})",
        list(trusted)
    )]
    UntrustedKey { key_id: KeyId, trusted: Vec<KeyId> },
    #[error(
        "signature by key {key_id} does not match the header and manifest: the bundle was modified after signing"
    )]
    BadSignature { key_id: KeyId },
    #[error("payload {name:?}: SHA-256 mismatch: manifest says {expected}, content is {actual}")]
    PayloadHash {
        name: String,
        expected: Sha256,
        actual: Sha256,
    },
    #[error("bundle is truncated: {section} ends after {got} of {expected} bytes")]
    Truncated {
        section: Section,
        got: u64,
        expected: u64,
    },
    #[error("unexpected data after the last payload, at byte offset {offset}")]
    TrailingData { offset: u64 },
    #[error("payload {name:?}: source changed while the bundle was being written")]
    SourceChanged { name: String },
    #[error("this verifier already refused the bundle; start a new one")]
    Poisoned,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("I/O error: {0}")]
    Io(io::Error),
}

/// Recovers the precise reason from an `io::Error` made by a
/// [`PayloadReader`](crate::PayloadReader), which has to speak `io::Error`.
impl From<io::Error> for OtaError {
    fn from(e: io::Error) -> Self {
        if !e.get_ref().is_some_and(|inner| inner.is::<OtaError>()) {
            return OtaError::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<OtaError>()) {
            Some(Ok(ota)) => *ota,
            Some(Err(other)) => OtaError::Io(io::Error::new(kind, other)),
            None => OtaError::Io(kind.into()),
        }
    }
}

/// A part of a bundle, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    Header,
    Manifest,
    SignatureBlock,
    Payload(String),
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::Header => f.write_str("the header"),
            Section::Manifest => f.write_str("the manifest"),
            Section::SignatureBlock => f.write_str("the signature block"),
            Section::Payload(name) => write!(f, "payload {name:?}"),
        }
    }
}

fn list(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
