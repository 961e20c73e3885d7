//! SHA-256 of the model file, and the `SHA256SUMS` lists that name the expected ones.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use ring::digest::{Context, SHA256};

use crate::auth::encoding::{hex_decode, hex_encode};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn of(data: &[u8]) -> Self {
        let digest = ring::digest::digest(&SHA256, data);
        Self(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SHA-256 checksum; expected 64 hex digits")]
pub struct BadChecksum(pub String);

impl FromStr for Sha256 {
    type Err = BadChecksum;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex_decode::<32>(s.trim())
            .map(Self)
            .ok_or_else(|| BadChecksum(s.to_owned()))
    }
}

/// The checksum `sums` (the text of a `sha256sum` output file) lists for `file_name`.
/// Both of `sha256sum`'s formats are read: `<hex>  name` and `<hex> *name` (binary mode).
/// Lines that are not checksums are skipped.
pub fn lookup(sums: &str, file_name: &str) -> Option<Sha256> {
    sums.lines().find_map(|line| {
        let (hex, name) = line.trim_end().split_once(' ')?;
        let name = name.strip_prefix(' ').or_else(|| name.strip_prefix('*'))?;
        (name == file_name).then(|| hex.parse().ok())?
    })
}

/// Passes reads through while hashing them, so a file is hashed in the same pass that
/// reads it: what gets checked is exactly what gets loaded, with no second read.
pub struct HashingReader<R> {
    inner: R,
    context: Context,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            context: Context::new(&SHA256),
        }
    }

    /// The digest of everything read so far.
    pub fn finish(self) -> Sha256 {
        let digest = self.context.finish();
        Sha256(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.context.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf abc | sha256sum`
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_what_is_read_and_round_trips_as_hex() {
        let mut reader = HashingReader::new(&b"abc"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        let digest = reader.finish();
        assert_eq!(digest.to_string(), ABC);
        assert_eq!(digest, Sha256::of(b"abc"));
        assert_eq!(ABC.to_uppercase().parse::<Sha256>().unwrap(), digest);
        assert!("abc".parse::<Sha256>().is_err());
    }

    #[test]
    fn finds_the_line_for_a_file_in_either_sha256sum_format() {
        let sums = format!(
            "# made by sha256sum\n{}  other.tflite\n{ABC}  model.tflite\n{ABC} *binary.tflite\n",
            "0".repeat(64)
        );
        let abc = ABC.parse().ok();
        assert_eq!(lookup(&sums, "model.tflite"), abc);
        assert_eq!(lookup(&sums, "binary.tflite"), abc);
        assert_eq!(lookup(&sums, "other.tflite"), Some(Sha256([0; 32])));
        assert_eq!(lookup(&sums, "model"), None);
        assert_eq!(lookup(&sums, "missing.tflite"), None);
    }
}
