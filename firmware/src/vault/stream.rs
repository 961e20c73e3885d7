//! Chunked content encryption: XChaCha20-Poly1305 in the STREAM construction of Hoang,
//! Reyhanitabar, Rogaway and Vizár ("Online Authenticated-Encryption and its
//! Nonce-Reuse Misuse-Resistance", 2015), one chunk per fMP4 fragment.
//!
//! Written directly on the AEAD rather than with `aead::stream`, because those helpers
//! only decrypt in order, and playback with HTTP Range needs chunk *i* on its own.
//!
//! Two layers:
//! - sans-I/O: [`FileSealer`] turns fragments into bytes to append, [`FileDecryptor`]
//!   turns a header into a key and stored chunks back into fragments. The recorder and
//!   the HTTP API drive these with their own (io_uring) file I/O.
//! - `std::io` adapters: [`FileWriter`], [`FileReader`] (sequential, for
//!   `mecam decrypt` and tests), [`FileDecryptor::read_chunk_at`] (random access), and
//!   [`seal_blob`] / [`open_blob`] for small whole files such as thumbnails.
//!
//! Data chunks are never empty; the end marker is the one empty chunk and the only one
//! with the last-chunk flag. So random access never has to guess the flag, and a file
//! that stops without its end marker is known to be incomplete.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};

use chacha20poly1305::XChaCha20Poly1305;

use super::crypto::{self, TAG_LEN};
use super::error::VaultError;
use super::format::{
    CHUNK_PREFIX_LEN, ContentKind, END_MARKER_LEN, HEADER_LEN, Header, MAX_CHUNK_PLAINTEXT,
    MIN_DATA_CHUNK, NONCE_PREFIX_LEN, chunk_aad, chunk_nonce,
};
use super::keys::{RecordingPublicKey, SealingKey, UnlockedVault};
use super::recovery::RecoveryKey;
use super::seal::{self, DataKey};

/// Where a chunk sits in its file: what the index stores to find a fragment without
/// reading the file from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLocation {
    /// Chunk number, from 0. For a segment, chunk 0 is the init segment and chunk
    /// *i* is the *i*-th fragment after it.
    pub index: u32,
    /// Byte offset of the chunk's length prefix in the file.
    pub offset: u64,
    /// Bytes the chunk occupies: prefix, ciphertext and tag.
    pub len: u32,
}

impl ChunkLocation {
    /// Offset just past this chunk (where the next one starts).
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    /// Length of the fragment this chunk decrypts to.
    pub fn plaintext_len(&self) -> u32 {
        self.len - (CHUNK_PREFIX_LEN + TAG_LEN) as u32
    }
}

/// A chunk ready to append: `bytes` go at `location.offset`.
#[derive(Debug)]
pub struct SealedChunk {
    pub location: ChunkLocation,
    pub bytes: Vec<u8>,
}

/// Encrypts one file, sans I/O: write [`FileSealer::header`] at offset 0, then each
/// [`SealedChunk`] in order, then the one from [`FileSealer::finish`].
pub struct FileSealer {
    /// Holds the data key, and wipes it when dropped.
    cipher: XChaCha20Poly1305,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    header: [u8; HEADER_LEN],
    digest: [u8; 32],
    next_index: u32,
    next_offset: u64,
    #[cfg(test)]
    pub(crate) test_data_key: [u8; 32],
}

impl FileSealer {
    /// Starts a file with a fresh data key sealed to `key`. Needs no unlocked vault.
    pub fn new(key: &SealingKey, kind: ContentKind) -> Result<Self, VaultError> {
        let data_key = DataKey::generate()?;
        let sealed_key = seal::seal(&key.public_key, &data_key)?;
        let nonce_prefix = crypto::random_array()?;
        let header = Header::encode(
            kind,
            &key.public_key,
            &nonce_prefix,
            &sealed_key,
            &key.recovery,
        );
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&header[HEADER_LEN - 32..]);
        Ok(Self {
            cipher: crypto::content_cipher(data_key.bytes()),
            nonce_prefix,
            header,
            digest,
            next_index: 0,
            next_offset: HEADER_LEN as u64,
            #[cfg(test)]
            test_data_key: *data_key.bytes(),
        })
    }

    /// The header, to be written at offset 0.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// SHA-256 of the header. Stored in the index row, it lets a reader check that the
    /// file is the one the row was written for, so whole files cannot be swapped on
    /// disk unnoticed (chunks already cannot be).
    pub fn header_digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Number of data chunks sealed so far.
    pub fn chunks(&self) -> u32 {
        self.next_index
    }

    /// Encrypts one fragment as the next chunk.
    pub fn seal_chunk(&mut self, fragment: &[u8]) -> Result<SealedChunk, VaultError> {
        if fragment.is_empty() {
            return Err(VaultError::EmptyChunk);
        }
        if fragment.len() > MAX_CHUNK_PLAINTEXT {
            return Err(VaultError::ChunkTooLarge {
                len: fragment.len(),
                max: MAX_CHUNK_PLAINTEXT,
            });
        }
        // The end marker takes the index after the last data chunk: keep one free.
        if self.next_index == u32::MAX {
            return Err(VaultError::TooManyChunks);
        }
        let mut bytes = Vec::with_capacity(CHUNK_PREFIX_LEN + fragment.len() + TAG_LEN);
        bytes.extend_from_slice(&[0; CHUNK_PREFIX_LEN]);
        bytes.extend_from_slice(fragment);
        Ok(self.seal_framed(bytes, false))
    }

    /// Writes the end marker. Without it a reader reports the file as incomplete.
    pub fn finish(mut self) -> SealedChunk {
        self.seal_framed(vec![0; CHUNK_PREFIX_LEN], true)
    }

    /// Encrypts `bytes[4..]` in place, appends the tag and fills in the length prefix.
    fn seal_framed(&mut self, mut bytes: Vec<u8>, last: bool) -> SealedChunk {
        let index = self.next_index;
        let tag = crypto::seal_in_place(
            &self.cipher,
            &chunk_nonce(&self.nonce_prefix, index, last),
            &chunk_aad(&self.digest, index),
            &mut bytes[CHUNK_PREFIX_LEN..],
        );
        bytes.extend_from_slice(&tag);
        // Lengths are bounded by MAX_CHUNK_PLAINTEXT, far below u32::MAX.
        let body_len = (bytes.len() - CHUNK_PREFIX_LEN) as u32;
        bytes[..CHUNK_PREFIX_LEN].copy_from_slice(&body_len.to_be_bytes());
        let location = ChunkLocation {
            index,
            offset: self.next_offset,
            len: bytes.len() as u32,
        };
        self.next_index = index.wrapping_add(1);
        self.next_offset = location.end();
        SealedChunk { location, bytes }
    }
}

impl fmt::Debug for FileSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSealer")
            .field("next_index", &self.next_index)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

/// Decrypts chunks of one file, sans I/O. Made from the file's header and either an
/// unlocked vault (a logged-in session) or the recovery key (offline).
pub struct FileDecryptor {
    /// Holds the data key, and wipes it when dropped.
    cipher: XChaCha20Poly1305,
    kind: ContentKind,
    public_key: RecordingPublicKey,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    digest: [u8; 32],
}

impl FileDecryptor {
    /// Opens a file's header (its first [`HEADER_LEN`] bytes) with a session's vault.
    pub fn open(header: &[u8], vault: &UnlockedVault) -> Result<Self, VaultError> {
        let header = Header::parse(header)?;
        if header.public_key != *vault.public_key() {
            return Err(VaultError::WrongVault {
                what: "this recording",
            });
        }
        let data_key = seal::open(vault, &header.sealed_key)?;
        Ok(Self::with_key(&header, &data_key))
    }

    /// Opens a file's header with the recovery key alone, using the copy of the
    /// recording key wrapped in the header: for a file copied off the device.
    pub fn open_with_recovery_key(
        header: &[u8],
        recovery: &RecoveryKey,
    ) -> Result<Self, VaultError> {
        let parsed = Header::parse(header)?;
        let vault =
            UnlockedVault::from_recovery_wrap(&parsed.recovery, recovery, &parsed.public_key)?;
        Self::open(header, &vault)
    }

    fn with_key(header: &Header, data_key: &DataKey) -> Self {
        Self {
            cipher: crypto::content_cipher(data_key.bytes()),
            kind: header.kind,
            public_key: header.public_key,
            nonce_prefix: header.nonce_prefix,
            digest: header.digest,
        }
    }

    pub fn kind(&self) -> ContentKind {
        self.kind
    }

    /// The recording key this file was sealed to.
    pub fn public_key(&self) -> &RecordingPublicKey {
        &self.public_key
    }

    /// SHA-256 of the header; compare with the digest the index stored at write time.
    pub fn header_digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Decrypts data chunk `index` from its stored bytes — exactly
    /// [`ChunkLocation::len`] bytes read at [`ChunkLocation::offset`]. Random access:
    /// no other chunk is needed.
    pub fn decrypt_chunk(&self, index: u32, stored: &[u8]) -> Result<Vec<u8>, VaultError> {
        let Some((prefix, body)) = stored.split_first_chunk::<CHUNK_PREFIX_LEN>() else {
            return Err(VaultError::Incomplete {
                complete_chunks: index,
            });
        };
        let declared = check_len(index, *prefix)?;
        if declared != body.len() {
            return Err(VaultError::BadChunkLength {
                chunk: index,
                len: declared as u64,
            });
        }
        self.open_body(index, false, body.to_vec())
    }

    /// Reads and decrypts data chunk `index` at `offset` (from the index).
    pub fn read_chunk_at<R: Read + Seek>(
        &self,
        file: &mut R,
        index: u32,
        offset: u64,
    ) -> Result<Vec<u8>, VaultError> {
        file.seek(SeekFrom::Start(offset))?;
        let incomplete = VaultError::Incomplete {
            complete_chunks: index,
        };
        let mut prefix = [0u8; CHUNK_PREFIX_LEN];
        if read_full(file, &mut prefix)? < CHUNK_PREFIX_LEN {
            return Err(incomplete);
        }
        let len = check_len(index, prefix)?;
        let body = read_up_to(file, len)?;
        if body.len() < len {
            return Err(incomplete);
        }
        self.open_body(index, false, body)
    }

    /// Decrypts a chunk body (ciphertext and tag) in place.
    fn open_body(&self, index: u32, last: bool, mut body: Vec<u8>) -> Result<Vec<u8>, VaultError> {
        if !self.verify_body(index, last, &mut body) {
            return Err(VaultError::Authentication { chunk: index });
        }
        body.truncate(body.len() - TAG_LEN);
        Ok(body)
    }

    fn verify_body(&self, index: u32, last: bool, body: &mut [u8]) -> bool {
        let Some(split) = body.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let (ciphertext, tag) = body.split_at_mut(split);
        crypto::open_in_place(
            &self.cipher,
            &chunk_nonce(&self.nonce_prefix, index, last),
            &chunk_aad(&self.digest, index),
            ciphertext,
            tag,
        )
    }

    /// Whether `tag` is a valid end marker at `index`.
    fn is_end_marker(&self, index: u32, tag: &[u8]) -> bool {
        let mut tag = tag.to_vec();
        self.verify_body(index, true, &mut tag)
    }
}

impl fmt::Debug for FileDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDecryptor")
            .field("kind", &self.kind)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// The body length in a chunk prefix, if it is possible at all.
fn check_len(index: u32, prefix: [u8; CHUNK_PREFIX_LEN]) -> Result<usize, VaultError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if !(TAG_LEN..=TAG_LEN + MAX_CHUNK_PLAINTEXT).contains(&len) {
        return Err(VaultError::BadChunkLength {
            chunk: index,
            len: len as u64,
        });
    }
    Ok(len)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads up to `len` bytes, growing the buffer only as data arrives: a damaged length
/// field near a file's end then costs what the file holds, not what the field claims.
fn read_up_to<R: Read>(input: &mut R, len: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(1 << 20));
    input.take(len as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// Writes an encrypted file to any `Write`.
pub struct FileWriter<W: Write> {
    inner: W,
    sealer: FileSealer,
    poisoned: bool,
}

impl<W: Write> FileWriter<W> {
    /// Writes the header.
    pub fn new(mut inner: W, key: &SealingKey, kind: ContentKind) -> Result<Self, VaultError> {
        let sealer = FileSealer::new(key, kind)?;
        inner.write_all(sealer.header())?;
        Ok(Self {
            inner,
            sealer,
            poisoned: false,
        })
    }

    /// Encrypts and writes one fragment; returns where it went, for the index.
    pub fn append(&mut self, fragment: &[u8]) -> Result<ChunkLocation, VaultError> {
        if self.poisoned {
            return Err(VaultError::Poisoned);
        }
        let chunk = self.sealer.seal_chunk(fragment)?;
        // A failed write leaves an unknown part of the chunk on disk: later chunks
        // would not sit where the index expects, so refuse them.
        self.poisoned = true;
        self.inner.write_all(&chunk.bytes)?;
        self.poisoned = false;
        Ok(chunk.location)
    }

    pub fn header_digest(&self) -> &[u8; 32] {
        self.sealer.header_digest()
    }

    /// Writes the end marker and hands back the writer (to flush and fsync it).
    pub fn finish(mut self) -> Result<(W, ChunkLocation), VaultError> {
        if self.poisoned {
            return Err(VaultError::Poisoned);
        }
        let end = self.sealer.finish();
        self.inner.write_all(&end.bytes)?;
        Ok((self.inner, end.location))
    }
}

impl<W: Write> fmt::Debug for FileWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWriter")
            .field("sealer", &self.sealer)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Reads an encrypted file from the start, verifying each chunk before returning it.
///
/// Yields data chunks in order and ends after the end marker. A file that stops early
/// yields every complete chunk and then [`VaultError::Incomplete`]; a damaged or moved
/// chunk yields [`VaultError::Authentication`] or [`VaultError::BadChunkLength`] naming
/// it. After an error the reader yields nothing more.
pub struct FileReader<R: Read> {
    inner: R,
    decryptor: FileDecryptor,
    next_index: u32,
    done: bool,
}

impl<R: Read> FileReader<R> {
    /// Opens with a session's vault.
    pub fn open(mut inner: R, vault: &UnlockedVault) -> Result<Self, VaultError> {
        let header = read_header(&mut inner)?;
        let decryptor = FileDecryptor::open(&header, vault)?;
        Ok(Self::new(inner, decryptor))
    }

    /// Opens with the recovery key alone (offline).
    pub fn open_with_recovery_key(
        mut inner: R,
        recovery: &RecoveryKey,
    ) -> Result<Self, VaultError> {
        let header = read_header(&mut inner)?;
        let decryptor = FileDecryptor::open_with_recovery_key(&header, recovery)?;
        Ok(Self::new(inner, decryptor))
    }

    fn new(inner: R, decryptor: FileDecryptor) -> Self {
        Self {
            inner,
            decryptor,
            next_index: 0,
            done: false,
        }
    }

    pub fn decryptor(&self) -> &FileDecryptor {
        &self.decryptor
    }

    /// The next data chunk, or `None` after a verified end marker.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, VaultError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_next();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_next(&mut self) -> Result<Option<Vec<u8>>, VaultError> {
        let index = self.next_index;
        let incomplete = VaultError::Incomplete {
            complete_chunks: index,
        };
        let mut prefix = [0u8; CHUNK_PREFIX_LEN];
        if read_full(&mut self.inner, &mut prefix)? < CHUNK_PREFIX_LEN {
            return Err(incomplete);
        }
        let len = check_len(index, prefix)?;
        let body = read_up_to(&mut self.inner, len)?;
        if body.len() < len {
            // Either a power cut (the usual case) or a damaged length field that
            // points past the end. Only a complete file ends in a valid end marker.
            if self.ends_in_end_marker(index, &body) {
                return Err(VaultError::BadChunkLength {
                    chunk: index,
                    len: len as u64,
                });
            }
            return Err(incomplete);
        }
        if len == TAG_LEN {
            // The only empty chunk is the end marker.
            self.decryptor.open_body(index, true, body)?;
            let mut extra = [0u8; 1];
            if read_full(&mut self.inner, &mut extra)? > 0 {
                return Err(VaultError::TrailingData { after_chunk: index });
            }
            return Ok(None);
        }
        let fragment = self.decryptor.open_body(index, false, body)?;
        self.next_index = index.checked_add(1).ok_or(VaultError::TooManyChunks)?;
        Ok(Some(fragment))
    }

    /// Whether `rest` (everything after chunk `index`'s prefix) ends in a valid end
    /// marker: then the file is complete and chunk `index`'s length field is damaged.
    fn ends_in_end_marker(&self, index: u32, rest: &[u8]) -> bool {
        // The damaged prefix was the end marker's own: only its tag follows.
        if rest.len() == TAG_LEN && self.decryptor.is_end_marker(index, rest) {
            return true;
        }
        // Otherwise the marker is intact at the end, some chunks later. A cut-off file
        // practically never ends in these four bytes, so this rarely searches at all.
        let Some(marker) = rest.len().checked_sub(END_MARKER_LEN).map(|at| &rest[at..]) else {
            return false;
        };
        if marker[..CHUNK_PREFIX_LEN] != (TAG_LEN as u32).to_be_bytes() {
            return false;
        }
        let max_between = (rest.len() / MIN_DATA_CHUNK) as u64;
        (1..=max_between + 1)
            .filter_map(|k| u32::try_from(u64::from(index) + k).ok())
            .any(|k| self.decryptor.is_end_marker(k, &marker[CHUNK_PREFIX_LEN..]))
    }

    /// Writes every data chunk to `out` (the `mecam decrypt` path) and returns how many
    /// there were. On an error, the chunks before it have been written.
    pub fn copy_to<W: Write>(mut self, out: &mut W) -> Result<u32, VaultError> {
        let mut count = 0;
        while let Some(chunk) = self.next_chunk()? {
            out.write_all(&chunk)?;
            count += 1;
        }
        Ok(count)
    }
}

impl<R: Read> fmt::Debug for FileReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileReader")
            .field("decryptor", &self.decryptor)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Iterator for FileReader<R> {
    type Item = Result<Vec<u8>, VaultError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

fn read_header<R: Read>(input: &mut R) -> Result<[u8; HEADER_LEN], VaultError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(input, &mut header)?;
    if got < HEADER_LEN {
        // Tells a short header from a foreign or newer file.
        Header::parse(&header[..got])?;
        return Err(VaultError::Incomplete { complete_chunks: 0 });
    }
    Ok(header)
}

/// Encrypts a small whole file (a thumbnail) in one go.
pub fn seal_blob(key: &SealingKey, kind: ContentKind, data: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut writer = FileWriter::new(Vec::new(), key, kind)?;
    for part in data.chunks(MAX_CHUNK_PLAINTEXT) {
        writer.append(part)?;
    }
    Ok(writer.finish()?.0)
}

/// Decrypts a file made by [`seal_blob`] (or any complete file) into one buffer.
pub fn open_blob(vault: &UnlockedVault, bytes: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut out = Vec::new();
    FileReader::open(bytes, vault)?.copy_to(&mut out)?;
    Ok(out)
}
