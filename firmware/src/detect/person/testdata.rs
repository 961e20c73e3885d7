//! Real photographs for the detector's tests and bench: scikit-image's sample images
//! (see the licence notes in `docs/detection.md`), fetched from PyPI at test setup —
//! never committed, never fetched by the service. The wheel is downloaded once with
//! `python3 -m pip download` and cached in `<workspace>/target/test-data/skimage`
//! (shared with the black-box suite's fixtures); `./scripts/test` installs `python3-pip`.
//!
//! Set `MECAM_SKIP_NETWORK_FIXTURES=1` to skip, rather than fail, tests whose pictures
//! are not cached and cannot be fetched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use crate::camera::frame::rgb_to_i420;
use crate::camera::{BufferPool, Frame, I420};

/// The scikit-image release whose wheel holds the pictures.
pub const SKIMAGE: &str = "scikit-image==0.24.0";
/// The wheel's platform and Python version are pinned, so every host (aarch64 too)
/// fetches the same file; the pictures are the same in every wheel.
const WHEEL_PLATFORM: [&str; 4] = [
    "--python-version",
    "3.11",
    "--platform",
    "manylinux2014_x86_64",
];
pub const SKIP_ENV: &str = "MECAM_SKIP_NETWORK_FIXTURES";

#[derive(Debug, thiserror::Error)]
#[error("test picture {name}: {problem}")]
pub struct FixtureError {
    pub name: String,
    pub problem: String,
}

/// `<workspace>/target/test-data/skimage`, whatever `CARGO_TARGET_DIR` says: the cache
/// outlives `cargo clean` of another target directory and is shared by every build.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-data/skimage")
        .components()
        .collect()
}

/// Whether `MECAM_SKIP_NETWORK_FIXTURES=1` asks to skip tests whose pictures cannot
/// be had.
pub fn skip_requested() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v == "1")
}

/// Serialises fetches within one test process; across processes the files appear by
/// rename, complete or not at all.
static FETCH: Mutex<()> = Mutex::new(());

/// The path of `skimage/data/<name>`, downloading and unpacking the wheel the first
/// time.
pub fn skimage_file(name: &str) -> Result<PathBuf, FixtureError> {
    let fail = |problem: String| FixtureError {
        name: name.to_owned(),
        problem,
    };
    let dir = cache_dir();
    let path = dir.join("skimage/data").join(name);
    if path.is_file() {
        return Ok(path);
    }
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let wheel = match find_wheel(&dir) {
        Some(w) => w,
        None => download_wheel(&dir).map_err(fail)?,
    };
    extract(&wheel, &format!("skimage/data/{name}"), &path).map_err(fail)?;
    Ok(path)
}

fn download_wheel(dir: &Path) -> Result<PathBuf, String> {
    // pip writes the wheel in place; a folder of this process's own keeps another
    // process from seeing it half-written.
    let staging = dir.join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = download_into(dir, &staging);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn download_into(dir: &Path, staging: &Path) -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            SKIMAGE,
            "--no-deps",
            "--only-binary=:all:",
        ])
        .args(WHEEL_PLATFORM)
        .arg("-d")
        .arg(staging)
        .output()
        .map_err(|e| {
            format!(
                "cannot run python3 -m pip ({e}) to download {SKIMAGE}, which holds the test \
                 pictures; install python3-pip (./scripts/test does), or set {SKIP_ENV}=1 to \
                 skip these tests"
            )
        })?;
    let downloaded = find_wheel(staging);
    let Some(downloaded) = downloaded.filter(|_| out.status.success()) else {
        return Err(format!(
            "downloading {SKIMAGE} from PyPI for its test pictures failed (no network? \
             set {SKIP_ENV}=1 to skip these tests): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    };
    let wheel = dir.join(downloaded.file_name().unwrap_or_default());
    std::fs::rename(&downloaded, &wheel)
        .map_err(|e| format!("cannot move the wheel into {}: {e}", dir.display()))?;
    Ok(wheel)
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("scikit_image-0.24.0-") && n.ends_with(".whl"))
        })
}

/// Unpacks `member` of `wheel` (a zip) to `to`, through a temporary file.
fn extract(wheel: &Path, member: &str, to: &Path) -> Result<(), String> {
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let partial = parent.join(format!(
        ".{}.{}",
        std::process::id(),
        to.file_name().and_then(|n| n.to_str()).unwrap_or("part")
    ));
    let out = Command::new("python3")
        .args([
            "-c",
            "import shutil, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n\
             \x20   shutil.copyfileobj(src, dst)",
        ])
        .arg(wheel)
        .arg(member)
        .arg(&partial)
        .output()
        .map_err(|e| format!("cannot run python3 to unpack {}: {e}", wheel.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "cannot unpack {member} from {}: {}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::rename(&partial, to)
        .map_err(|e| format!("cannot move {} into place: {e}", to.display()))
}

/// An 8-bit RGB picture.
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Rgb {
    /// Decodes a PNG (any 8-bit colour type; grey is repeated into R, G and B) or a
    /// JPEG (by its signature).
    pub fn decode(data: &[u8]) -> Result<Self, String> {
        if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            Self::from_png(data)
        } else {
            let image = turbojpeg::decompress(data, turbojpeg::PixelFormat::RGB)
                .map_err(|e| format!("is not a readable JPEG or PNG: {e}"))?;
            Ok(Self {
                width: image.width,
                height: image.height,
                pixels: image.pixels,
            })
        }
    }

    fn from_png(data: &[u8]) -> Result<Self, String> {
        let mut pixels = Vec::new();
        let (width, height) = crate::camera::replay::decode_png_rgb(data, &mut pixels)?;
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// The picture as a camera frame (I420, full-range BT.601), cropped to even
    /// dimensions as a camera's would be.
    pub fn to_frame(&self) -> Frame {
        let (w, h) = (self.width as u32 & !1, self.height as u32 & !1);
        let pool = BufferPool::new(I420::len_for(w, h), 1);
        let buf = pool.take().expect("a new pool has a free buffer");
        let mut image = I420::new(w, h, buf);
        rgb_to_i420(&self.pixels, self.width, &mut image);
        Frame {
            seq: 0,
            captured: Instant::now(),
            wall: SystemTime::now(),
            image,
        }
    }
}

/// `skimage/data/<name>` as a frame, fetched as [`skimage_file`] does.
pub fn skimage_frame(name: &str) -> Result<Frame, FixtureError> {
    let path = skimage_file(name)?;
    let data = std::fs::read(&path).map_err(|e| FixtureError {
        name: name.to_owned(),
        problem: format!("cannot read {}: {e}", path.display()),
    })?;
    let rgb = Rgb::decode(&data).map_err(|problem| FixtureError {
        name: name.to_owned(),
        problem,
    })?;
    Ok(rgb.to_frame())
}
