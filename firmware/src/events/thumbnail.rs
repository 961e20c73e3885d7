//! Event thumbnails: a small JPEG of the scene, sealed with the vault and kept as
//! `DATA/thumbnails/<id>.mct` ("ME_CAM thumbnail": the vault format, kind thumbnail).
//!
//! The picture is the newest frame of the live bus when the event starts (and, for a
//! person, each time the peak rises), scaled down in the JPEG decoder itself (DCT
//! scaling, so a 1280-wide frame costs a quarter of a full decode) to about
//! [`TARGET_WIDTH`] pixels and re-encoded. It is sealed in memory with the recording
//! public key: no plaintext thumbnail ever touches the disk, and only a logged-in user
//! (an unlocked vault) can open one.
//!
//! Files are written whole and durably (temporary file, `fsync`, rename, directory
//! `fsync`) before the index row says the event has a thumbnail, so after a crash a
//! row never points at a half-written file. Everything here blocks (JPEG work, file
//! I/O): call it from a blocking thread.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use crate::vault::{self, ContentKind, SealingKey, UnlockedVault, VaultError};

/// Directory of thumbnails, under the data directory.
pub const THUMBNAILS_DIR: &str = "thumbnails";
/// Extension of a sealed thumbnail.
pub const THUMBNAIL_EXT: &str = "mct";
/// Width a thumbnail is scaled towards: the smallest DCT scaling (n/8) that keeps at
/// least this many pixels across.
pub const TARGET_WIDTH: usize = 320;
/// JPEG quality of a re-encoded thumbnail.
const QUALITY: i32 = 75;
/// Largest thumbnail file read back (a sealed 320-pixel JPEG is ~10 KiB; this bounds
/// what a damaged or planted file can make the service allocate).
const MAX_FILE: u64 = 4 << 20;

/// What can go wrong with a thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("the live frame cannot be scaled down: {0}")]
    Jpeg(String),
    #[error("thumbnail {}: {source}", path.display())]
    Vault {
        path: PathBuf,
        #[source]
        source: VaultError,
    },
    #[error(
        "thumbnail {}: {source}; check that the data partition is mounted read-write and not full",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("thumbnail {} is {len} bytes, more than a thumbnail can be; it is damaged", path.display())]
    TooLarge { path: PathBuf, len: u64 },
}

/// The thumbnail directory.
#[derive(Debug, Clone)]
pub struct Thumbnails {
    dir: PathBuf,
}

impl Thumbnails {
    /// Thumbnails of the data directory `data_dir` (nothing is touched yet).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(THUMBNAILS_DIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where event `id`'s thumbnail lives.
    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.{THUMBNAIL_EXT}"))
    }

    fn io(&self, path: &Path) -> impl FnOnce(io::Error) -> ThumbnailError {
        let path = path.to_path_buf();
        move |source| ThumbnailError::Io { path, source }
    }

    /// Creates the directory (mode 0700) if it is missing.
    pub fn create_dir(&self) -> Result<(), ThumbnailError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(self.io(&self.dir))
    }

    /// Scales `jpeg` down, seals it and stores it durably as event `id`'s thumbnail,
    /// replacing any earlier one.
    pub fn write(&self, id: u64, key: &SealingKey, jpeg: &[u8]) -> Result<(), ThumbnailError> {
        let small = shrink(jpeg, TARGET_WIDTH)?;
        let path = self.path(id);
        let sealed = vault::seal_blob(
            key,
            ContentKind::Thumbnail,
            small.as_deref().unwrap_or(jpeg),
        )
        .map_err(|source| ThumbnailError::Vault {
            path: path.clone(),
            source,
        })?;
        self.create_dir()?;
        let tmp = path.with_extension("tmp");
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&sealed)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(self.io(&path))
    }

    /// Event `id`'s thumbnail as a JPEG, opened with `vault`; `None` if there is none.
    pub fn read(&self, id: u64, vault: &UnlockedVault) -> Result<Option<Vec<u8>>, ThumbnailError> {
        let path = self.path(id);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(&path)(e)),
        };
        let len = file.metadata().map_err(self.io(&path))?.len();
        if len > MAX_FILE {
            return Err(ThumbnailError::TooLarge { path, len });
        }
        let mut sealed = Vec::with_capacity(len as usize);
        io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE), &mut sealed)
            .map_err(self.io(&path))?;
        vault::open_blob(vault, &sealed)
            .map(Some)
            .map_err(|source| ThumbnailError::Vault { path, source })
    }

    /// Deletes the thumbnails of `ids` (missing ones are fine) and makes that durable.
    pub fn remove(&self, ids: impl IntoIterator<Item = u64>) -> Result<usize, ThumbnailError> {
        let mut removed = 0;
        for id in ids {
            let path = self.path(id);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(&path)(e)),
            }
        }
        if removed > 0 {
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io(&self.dir))?;
        }
        Ok(removed)
    }

    /// Start-up repair: deletes temporary files of interrupted writes and thumbnails
    /// whose event has no row (`known(id)` is false): a crash between writing the file
    /// and its row. Other names are left alone. Returns how many files went.
    pub fn sweep(&self, known: impl Fn(u64) -> bool) -> Result<usize, ThumbnailError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.io(&self.dir)(e)),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(self.io(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let Ok(id) = stem.parse::<u64>() else {
                continue;
            };
            let orphan = match ext {
                "tmp" => true,
                THUMBNAIL_EXT => !known(id),
                _ => false,
            };
            if orphan {
                let path = entry.path();
                fs::remove_file(&path).map_err(self.io(&path))?;
                tracing::info!(path = %path.display(), "removed a thumbnail without an event");
                removed += 1;
            }
        }
        if removed > 0 {
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io(&self.dir))?;
        }
        Ok(removed)
    }
}

/// `jpeg` decoded at the smallest scale that is still at least `target_width` wide and
/// encoded again; `None` when it is already that small (use it as it is).
pub fn shrink(jpeg: &[u8], target_width: usize) -> Result<Option<Vec<u8>>, ThumbnailError> {
    let fail = |e: turbojpeg::Error| ThumbnailError::Jpeg(e.to_string());
    let mut decompressor = Decompressor::new().map_err(fail)?;
    let header = decompressor.read_header(jpeg).map_err(fail)?;
    let Some(factor) = scale_for(header.width, target_width) else {
        return Ok(None);
    };
    decompressor.set_scaling_factor(factor).map_err(fail)?;
    let scaled = header.scaled(factor);
    let mut image = Image {
        pixels: vec![0u8; 3 * scaled.width * scaled.height],
        width: scaled.width,
        pitch: 3 * scaled.width,
        height: scaled.height,
        format: PixelFormat::RGB,
    };
    decompressor
        .decompress(jpeg, image.as_deref_mut())
        .map_err(fail)?;
    let mut compressor = Compressor::new().map_err(fail)?;
    compressor.set_quality(QUALITY).map_err(fail)?;
    compressor.set_subsamp(Subsamp::Sub2x2).map_err(fail)?;
    compressor
        .compress_to_vec(image.as_deref())
        .map(Some)
        .map_err(fail)
}

/// The scale [`shrink`] would use for a frame `width` pixels wide (for the docs and
/// tests): e.g. 1/4 for 1280, 1/2 for 640, none for 320.
pub fn scale_for(width: usize, target_width: usize) -> Option<ScalingFactor> {
    Decompressor::supported_scaling_factors()
        .into_iter()
        .filter(|f| f.num() < f.denom() && f.scale(width) >= target_width)
        .min_by_key(|f| f.scale(width))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vault::{Argon2Params, VaultRecord};

    /// A JPEG of `width`×`height` (a gradient, so it is not trivially small).
    pub(crate) fn test_jpeg(width: usize, height: usize) -> Vec<u8> {
        let mut pixels = vec![0u8; 3 * width * height];
        for (i, px) in pixels.chunks_mut(3).enumerate() {
            let (x, y) = (i % width, i / width);
            px.copy_from_slice(&[(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]);
        }
        let image = Image {
            pixels: pixels.as_slice(),
            width,
            pitch: 3 * width,
            height,
            format: PixelFormat::RGB,
        };
        turbojpeg::compress(image, 80, Subsamp::Sub2x2)
            .unwrap()
            .to_vec()
    }

    /// A vault for tests: its sealing key and an unlocked copy.
    pub(crate) fn test_vault() -> (SealingKey, UnlockedVault) {
        let (record, _recovery, vault) = VaultRecord::create(
            "owner",
            "correct horse battery",
            Argon2Params::INSECURE_FAST,
        )
        .unwrap();
        (record.sealing_key().unwrap(), vault)
    }

    #[test]
    fn thumbnails_are_scaled_down_to_about_320_wide() {
        assert_eq!(
            scale_for(1280, TARGET_WIDTH),
            Some(ScalingFactor::ONE_QUARTER)
        );
        assert_eq!(scale_for(640, TARGET_WIDTH), Some(ScalingFactor::ONE_HALF));
        assert_eq!(scale_for(320, TARGET_WIDTH), None);
        assert_eq!(scale_for(200, TARGET_WIDTH), None);
        let big = test_jpeg(1280, 720);
        let small = shrink(&big, TARGET_WIDTH).unwrap().unwrap();
        let header = turbojpeg::read_header(&small).unwrap();
        assert_eq!((header.width, header.height), (320, 180));
        assert!(
            small.len() * 4 < big.len(),
            "{} vs {}",
            small.len(),
            big.len()
        );
        assert_eq!(shrink(&test_jpeg(320, 240), TARGET_WIDTH).unwrap(), None);
        assert!(matches!(
            shrink(b"not a jpeg", TARGET_WIDTH),
            Err(ThumbnailError::Jpeg(_))
        ));
    }

    #[test]
    fn thumbnails_are_sealed_on_disk_and_open_with_the_vault() {
        let dir = tempfile::tempdir().unwrap();
        let thumbs = Thumbnails::new(dir.path());
        let (key, vault) = test_vault();
        let frame = test_jpeg(640, 480);
        thumbs.write(7, &key, &frame).unwrap();
        let on_disk = fs::read(thumbs.path(7)).unwrap();
        assert!(on_disk.starts_with(&vault::MAGIC), "vault format on disk");
        // Neither the frame nor the thumbnail made of it is in the file in the clear.
        let plain = shrink(&frame, TARGET_WIDTH).unwrap().unwrap();
        for text in [&plain[..], &frame[..]] {
            let probe = &text[text.len() / 2..text.len() / 2 + 32];
            assert!(!on_disk.windows(32).any(|w| w == probe));
        }
        let jpeg = thumbs.read(7, &vault).unwrap().unwrap();
        let header = turbojpeg::read_header(&jpeg).unwrap();
        assert_eq!(header.width, 320);
        assert_eq!(thumbs.read(8, &vault).unwrap(), None);
        let mode = fs::metadata(thumbs.path(7)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // Replaced whole by a later write.
        thumbs.write(7, &key, &test_jpeg(320, 200)).unwrap();
        let jpeg = thumbs.read(7, &vault).unwrap().unwrap();
        assert_eq!(turbojpeg::read_header(&jpeg).unwrap().width, 320);
        assert_eq!(turbojpeg::read_header(&jpeg).unwrap().height, 200);
        assert!(!thumbs.path(7).with_extension("tmp").exists());
    }

    #[test]
    fn a_thumbnail_of_another_vault_or_damaged_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let thumbs = Thumbnails::new(dir.path());
        let (key, _) = test_vault();
        let (_, other) = test_vault();
        thumbs.write(1, &key, &test_jpeg(320, 240)).unwrap();
        assert!(matches!(
            thumbs.read(1, &other),
            Err(ThumbnailError::Vault { .. })
        ));
        fs::write(thumbs.path(2), b"MECAMENC garbage").unwrap();
        let (_, vault) = test_vault();
        assert!(thumbs.read(2, &vault).is_err());
    }

    #[test]
    fn sweep_removes_orphans_and_interrupted_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let thumbs = Thumbnails::new(dir.path());
        let (key, _) = test_vault();
        for id in [1, 2, 3] {
            thumbs.write(id, &key, &test_jpeg(64, 64)).unwrap();
        }
        fs::write(thumbs.dir().join("4.tmp"), b"half").unwrap();
        fs::write(thumbs.dir().join("notes.txt"), b"mine").unwrap();
        let removed = thumbs.sweep(|id| id != 2).unwrap();
        assert_eq!(removed, 2);
        assert!(thumbs.path(1).exists() && thumbs.path(3).exists());
        assert!(!thumbs.path(2).exists());
        assert!(!thumbs.dir().join("4.tmp").exists());
        assert!(thumbs.dir().join("notes.txt").exists(), "not ours: kept");
        assert_eq!(thumbs.remove([1, 2, 3]).unwrap(), 2);
        assert_eq!(
            Thumbnails::new(&dir.path().join("x"))
                .sweep(|_| false)
                .unwrap(),
            0
        );
    }
}
