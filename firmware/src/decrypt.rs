//! `mecam decrypt`: opens a copied or exported recording offline with the recovery key.
//!
//! Each encrypted file carries the recording key wrapped under the recovery key, so
//! the file and the key the owner wrote down at setup are all that is needed.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::vault::{FileReader, RecoveryKey, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error("{0}")]
    Key(VaultError),
    #[error("cannot read {}: {source}", path.display())]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} cannot be decrypted: {source}; nothing was written", path.display())]
    Content { path: PathBuf, source: VaultError },
}

/// What was recovered.
#[derive(Debug, PartialEq, Eq)]
pub enum Decrypted {
    /// The whole file, `chunks` fragments.
    Complete { chunks: u32 },
    /// The recording was cut off (power loss while recording); every complete
    /// fragment was written and plays.
    Incomplete { chunks: u32 },
}

/// Decrypts `input` into `output` (written to a temporary name and renamed, so a
/// failed run never leaves a half-written file that looks like a recording).
pub fn decrypt_file(
    recovery_key: &str,
    input: &Path,
    output: &Path,
) -> Result<Decrypted, DecryptError> {
    let key = RecoveryKey::parse(recovery_key).map_err(DecryptError::Key)?;
    let file = File::open(input).map_err(|source| DecryptError::Input {
        path: input.to_owned(),
        source,
    })?;
    let content = |source| DecryptError::Content {
        path: input.to_owned(),
        source,
    };
    let reader =
        FileReader::open_with_recovery_key(BufReader::new(file), &key).map_err(|e| match e {
            VaultError::WrongRecoveryKey | VaultError::RecoveryKeyTypo(_) => DecryptError::Key(e),
            other => content(other),
        })?;

    let tmp = output.with_extension("partial");
    let out_err = |source| DecryptError::Output {
        path: output.to_owned(),
        source,
    };
    let mut out = BufWriter::new(File::create(&tmp).map_err(out_err)?);
    let result = match reader.copy_to(&mut out) {
        Ok(chunks) => Ok(Decrypted::Complete { chunks }),
        Err(VaultError::Incomplete { complete_chunks }) => Ok(Decrypted::Incomplete {
            chunks: complete_chunks,
        }),
        Err(e) => Err(content(e)),
    };
    let finished = result.and_then(|done| {
        out.flush().map_err(out_err)?;
        out.get_ref().sync_all().map_err(out_err)?;
        std::fs::rename(&tmp, output).map_err(out_err)?;
        Ok(done)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{Argon2Params, ContentKind, FileWriter, VaultRecord};

    fn sealed_file(dir: &Path, chunks: &[&[u8]], finish: bool) -> (PathBuf, String) {
        let (record, recovery, _unlocked) = VaultRecord::create(
            "owner",
            "correct horse battery",
            Argon2Params::INSECURE_FAST,
        )
        .unwrap();
        let path = dir.join("segment.enc");
        let mut w = FileWriter::new(
            File::create(&path).unwrap(),
            &record.sealing_key().unwrap(),
            ContentKind::Segment,
        )
        .unwrap();
        for c in chunks {
            w.append(c).unwrap();
        }
        if finish {
            w.finish().unwrap();
        }
        (path, recovery.to_display_string().to_string())
    }

    #[test]
    fn decrypts_with_the_recovery_key_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let (input, key) = sealed_file(dir.path(), &[b"init", b"fragment one"], true);
        let out = dir.path().join("out.mp4");
        assert_eq!(
            decrypt_file(&key, &input, &out).unwrap(),
            Decrypted::Complete { chunks: 2 }
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"initfragment one");

        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = sealed_file(other.path(), &[b"x"], true);
        let out2 = dir.path().join("out2.mp4");
        let e = decrypt_file(&other_key, &input, &out2).unwrap_err();
        assert!(
            matches!(e, DecryptError::Key(VaultError::WrongRecoveryKey)),
            "{e}"
        );
        assert!(!out2.exists());
    }

    #[test]
    fn a_cut_recording_gives_its_complete_fragments() {
        let dir = tempfile::tempdir().unwrap();
        let (input, key) = sealed_file(dir.path(), &[b"init", b"gop"], false);
        let out = dir.path().join("out.mp4");
        assert_eq!(
            decrypt_file(&key, &input, &out).unwrap(),
            Decrypted::Incomplete { chunks: 2 }
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"initgop");
    }

    #[test]
    fn tampering_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (input, key) = sealed_file(dir.path(), &[b"init", b"fragment"], true);
        let mut bytes = std::fs::read(&input).unwrap();
        let n = bytes.len();
        bytes[n - 30] ^= 1;
        std::fs::write(&input, bytes).unwrap();
        let out = dir.path().join("out.mp4");
        let e = decrypt_file(&key, &input, &out).unwrap_err();
        assert!(matches!(e, DecryptError::Content { .. }), "{e}");
        assert!(!out.exists() && !out.with_extension("partial").exists());
    }
}
