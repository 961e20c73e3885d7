//! Writing bundles from blocking sources: what the host tool's `create` and `sign` do.
//!
//! Payloads are streamed twice — once to measure size and SHA-256 for the manifest,
//! which comes first in the bundle, and once to copy — so memory use does not depend
//! on payload size. The copy is hashed again, so a source file that changes between
//! the passes fails the command instead of producing a bundle no device would accept.

use std::io::{self, Read, Write};

use ring::digest;

use crate::error::{OtaError, Section};
use crate::format::{Prelude, read_full};
use crate::keys::SigningKey;
use crate::manifest::{PayloadInfo, Sha256};

const BUF_LEN: usize = 64 * 1024;

/// Size and SHA-256 of everything `reader` yields.
pub fn measure<R: Read>(reader: R) -> io::Result<(u64, Sha256)> {
    copy_hashing(reader, &mut io::sink(), u64::MAX)
}

/// Copies at most `limit` bytes from `reader` to `writer`; returns how many were
/// copied and their SHA-256. Fewer than `limit` means the reader ended.
pub fn copy_hashing<R: Read, W: Write>(
    mut reader: R,
    writer: &mut W,
    limit: u64,
) -> io::Result<(u64, Sha256)> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; BUF_LEN];
    let mut copied = 0u64;
    while copied < limit {
        let want = usize::try_from(limit - copied).map_or(BUF_LEN, |r| r.min(BUF_LEN));
        let n = read_full(&mut reader, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        copied += n as u64;
    }
    Ok((copied, Sha256::from_digest(&ctx.finish())))
}

/// Copies payload `info` from a bundle being read to `writer`, checking its size and
/// SHA-256 against the manifest.
pub fn copy_payload<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    info: &PayloadInfo,
) -> Result<(), OtaError> {
    let (got, actual) = copy_hashing(reader, writer, info.size)?;
    if got < info.size {
        return Err(OtaError::Truncated {
            section: Section::Payload(info.name.clone()),
            got,
            expected: info.size,
        });
    }
    if actual != info.sha256 {
        return Err(OtaError::PayloadHash {
            name: info.name.clone(),
            expected: info.sha256,
            actual,
        });
    }
    Ok(())
}

/// Writes a bundle: `prelude`, then each payload from the reader `open` returns for it.
/// Returns the bundle length.
pub fn write_bundle<W: Write, R: Read>(
    writer: &mut W,
    prelude: &Prelude,
    mut open: impl FnMut(usize, &PayloadInfo) -> io::Result<R>,
) -> Result<u64, OtaError> {
    writer.write_all(&prelude.to_bytes())?;
    let mut len = prelude.payload_offset();
    for (index, info) in prelude.manifest.payloads.iter().enumerate() {
        let mut source = open(index, info)?;
        let (got, actual) = copy_hashing(&mut source, writer, info.size)?;
        // One more byte would mean the source grew since it was measured.
        let grew = read_full(&mut source, &mut [0u8; 1])? != 0;
        if got != info.size || actual != info.sha256 || grew {
            return Err(OtaError::SourceChanged {
                name: info.name.clone(),
            });
        }
        len += got;
    }
    writer.flush()?;
    Ok(len)
}

/// Copies a bundle from `reader` to `writer` with the signature replaced by one from
/// `key`. Payloads are checked against the manifest on the way, so a corrupt bundle is
/// never signed, and anything after the last payload is refused.
pub fn resign<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    key: &SigningKey,
) -> Result<Prelude, OtaError> {
    let mut prelude = Prelude::read(reader)?;
    prelude.sign(key);
    writer.write_all(&prelude.to_bytes())?;
    for info in &prelude.manifest.payloads {
        copy_payload(reader, writer, info)?;
    }
    if read_full(reader, &mut [0u8; 1])? != 0 {
        let offset = prelude.payload_offset() + prelude.manifest.payload_bytes()?;
        return Err(OtaError::TrailingData { offset });
    }
    writer.flush()?;
    Ok(prelude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashing_stops_at_the_limit_or_the_end() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let (n, hash) = copy_hashing(&data[..], &mut out, 150_000).unwrap();
        assert_eq!((n, hash), (150_000, Sha256::of(&data[..150_000])));
        assert_eq!(out, data[..150_000]);
        assert_eq!(measure(&data[..]).unwrap(), (200_000, Sha256::of(&data)));
        assert_eq!(measure(&b""[..]).unwrap().0, 0);
    }
}
