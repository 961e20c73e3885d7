//! Why the vault refused. Messages reach the owner (login page, `mecam decrypt`), so each
//! one says what is wrong in their terms and keeps three cases apart that call for
//! different actions: a wrong secret (try again), a typo in the recovery key (fix the
//! typing), and damaged data (the bytes on the card changed; nothing the owner types
//! will help).

use std::fmt;
use std::io;

use super::format::FORMAT_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("wrong password")]
    WrongPassword,
    #[error("wrong recovery key: it is well-formed but belongs to a different vault")]
    WrongRecoveryKey,
    #[error("the recovery key was mistyped: {0}")]
    RecoveryKeyTypo(RecoveryKeyTypo),
    #[error("no vault key is stored for user {0:?}")]
    UnknownUser(String),
    #[error("user {0:?} already has a vault key")]
    UserExists(String),
    #[error("unsupported Argon2 parameters: {0}")]
    BadParams(String),
    /// Stored bytes changed after they were written: a failing card, or tampering.
    #[error("{what} is damaged: {detail}")]
    Corrupted {
        what: &'static str,
        detail: &'static str,
    },
    #[error("{what} was made with a different vault (another recording key)")]
    WrongVault { what: &'static str },
    #[error("vault record version {found} is not supported (this build reads version 1)")]
    UnsupportedRecord { found: u32 },

    // --- encrypted files ---
    #[error("not a ME_CAM encrypted file (bad magic)")]
    NotVaultFile,
    #[error(
        "encrypted file format version {found} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedFormat { found: u8 },
    #[error("unknown content kind {found} in the encrypted file header")]
    UnknownKind { found: u8 },
    /// The AEAD tag of a chunk did not verify: its bytes, its position or its header
    /// changed. Never returned for a merely short file (see `Incomplete`).
    #[error("chunk {chunk} failed authentication: the file was modified or damaged")]
    Authentication { chunk: u32 },
    #[error("chunk {chunk} has an impossible length field ({len} bytes): the file is damaged")]
    BadChunkLength { chunk: u32, len: u64 },
    /// The file ends early, the usual result of a power cut while recording. Every
    /// chunk before `complete_chunks` was authenticated and returned.
    #[error(
        "the recording is incomplete (cut off while it was being written): it ends inside or before chunk {complete_chunks}; the {complete_chunks} chunk(s) before it are intact"
    )]
    Incomplete { complete_chunks: u32 },
    #[error("unexpected data after the end of the recording (after chunk {after_chunk})")]
    TrailingData { after_chunk: u32 },
    #[error("cannot seal an empty fragment (an empty chunk is reserved for the end marker)")]
    EmptyChunk,
    #[error("fragment of {len} bytes is larger than the {max}-byte chunk limit")]
    ChunkTooLarge { len: usize, max: usize },
    #[error("too many chunks in one file")]
    TooManyChunks,
    #[error("an earlier write to this file failed; start a new file")]
    Poisoned,

    #[error("the system random number generator failed")]
    Random,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl VaultError {
    /// The error for a stored thing whose bytes no longer check out.
    pub(crate) fn corrupted(what: &'static str, detail: &'static str) -> Self {
        Self::Corrupted { what, detail }
    }
}

/// What is wrong with a typed recovery key. Positions count typed characters from 1,
/// separators included, so they match what the owner sees on their screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryKeyTypo {
    InvalidCharacter {
        position: usize,
        character: char,
    },
    WrongLength {
        expected: usize,
        found: usize,
    },
    /// Every character is valid but the built-in checksum does not match: at least one
    /// character was mistyped (or two were swapped).
    Checksum,
}

impl fmt::Display for RecoveryKeyTypo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidCharacter {
                position,
                character,
            } => write!(
                f,
                "character {position} ({character:?}) is not used in recovery keys"
            ),
            Self::WrongLength { expected, found } => write!(
                f,
                "a recovery key has {expected} letters and digits, this has {found}"
            ),
            Self::Checksum => f.write_str(
                "its checksum does not match, so a character is wrong or two are swapped",
            ),
        }
    }
}
