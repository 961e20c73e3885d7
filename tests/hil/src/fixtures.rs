//! Test pictures with a clear licence, fetched once by the test setup and cached:
//! scikit-image's sample images (the package is BSD-3; `astronaut.png` is a NASA
//! photograph in the public domain, see `skimage/data/README.txt` in the wheel).
//! Nothing here is committed; the cache is `<workspace>/target/test-data/skimage`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The scikit-image release whose wheel holds the pictures.
const SKIMAGE: &str = "scikit-image==0.24.0";

fn cache_dir() -> PathBuf {
    // tests/hil → workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-data/skimage")
        .components()
        .collect()
}

/// The path of `skimage/data/<name>`, downloading the wheel from PyPI the first
/// time (`python3 -m pip download`; `./scripts/test` installs pip).
pub fn skimage_image(name: &str) -> Result<PathBuf, Error> {
    let dir = cache_dir();
    let path = dir.join("skimage/data").join(name);
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let wheel = find_wheel(&dir).map(Ok).unwrap_or_else(|| {
        let out = Command::new("python3")
            .args(["-m", "pip", "download", SKIMAGE, "--no-deps"])
            .args(["--only-binary=:all:", "--python-version", "3.11"])
            .args(["--platform", "manylinux2014_x86_64", "-d"])
            .arg(&dir)
            .output()
            .map_err(|e| Error::Launch(format!("cannot run python3 -m pip: {e}")))?;
        if !out.status.success() {
            return Err(Error::Launch(format!(
                "downloading {SKIMAGE} for its test pictures failed (run ./scripts/test, \
                 which installs pip): {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        find_wheel(&dir).ok_or_else(|| Error::Launch("pip downloaded no wheel".into()))
    })?;
    let member = format!("skimage/data/{name}");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])",
        ])
        .arg(&wheel)
        .arg(&member)
        .arg(&dir)
        .output()
        .map_err(|e| Error::Launch(format!("cannot run python3: {e}")))?;
    if !out.status.success() || !path.is_file() {
        return Err(Error::Launch(format!(
            "{member} is not in {}: {}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(path)
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("scikit_image-") && n.ends_with(".whl"))
        })
}

/// An RGB picture.
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Rgb {
    /// Reads an 8-bit RGB, RGBA or grey PNG.
    pub fn from_png(path: &Path) -> Result<Self, Error> {
        let bad = |e: String| Error::Launch(format!("{}: {e}", path.display()));
        let file = std::fs::File::open(path)?;
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| bad(e.to_string()))?;
        let (width, height) = (info.width as usize, info.height as usize);
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            other => return Err(bad(format!("unsupported colour type {other:?}"))),
        };
        let mut pixels = Vec::with_capacity(width * height * 3);
        for px in buf[..width * height * channels].chunks_exact(channels) {
            match channels {
                1 | 2 => pixels.extend_from_slice(&[px[0]; 3]),
                _ => pixels.extend_from_slice(&px[..3]),
            }
        }
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// A plain picture of `width`×`height` filled by `f(x, y)`.
    pub fn from_fn(width: usize, height: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Self {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                pixels.extend_from_slice(&f(x, y));
            }
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// `other` scaled to `height` pixels tall (bilinear enough: nearest neighbour on a
    /// 2× or smaller reduction keeps a person recognisable) and drawn with its top-left
    /// corner at (`x`, `y`), clipped to this picture.
    pub fn paste_scaled(&mut self, other: &Rgb, x: i64, y: i64, height: usize) {
        let scale = other.height as f64 / height as f64;
        let width = (other.width as f64 / scale) as usize;
        for dy in 0..height {
            let ty = y + dy as i64;
            if ty < 0 || ty >= self.height as i64 {
                continue;
            }
            let sy = ((dy as f64 + 0.5) * scale) as usize;
            for dx in 0..width {
                let tx = x + dx as i64;
                if tx < 0 || tx >= self.width as i64 {
                    continue;
                }
                let sx = ((dx as f64 + 0.5) * scale) as usize;
                let s = (sy.min(other.height - 1) * other.width + sx.min(other.width - 1)) * 3;
                let t = (ty as usize * self.width + tx as usize) * 3;
                self.pixels[t..t + 3].copy_from_slice(&other.pixels[s..s + 3]);
            }
        }
    }

    /// The `width`×`height` rectangle at (`x`, `y`), clipped to this picture.
    pub fn crop(&self, x: usize, y: usize, width: usize, height: usize) -> Self {
        let x = x.min(self.width);
        let y = y.min(self.height);
        let width = width.min(self.width - x);
        let height = height.min(self.height - y);
        let mut pixels = Vec::with_capacity(width * height * 3);
        for row in y..y + height {
            let start = (row * self.width + x) * 3;
            pixels.extend_from_slice(&self.pixels[start..start + width * 3]);
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// This picture with `f` applied to every pixel (e.g. a lighting change, noise).
    pub fn map(&self, mut f: impl FnMut(usize, usize, [u8; 3]) -> [u8; 3]) -> Self {
        let mut pixels = Vec::with_capacity(self.pixels.len());
        for (i, px) in self.pixels.chunks_exact(3).enumerate() {
            let out = f(i % self.width, i / self.width, [px[0], px[1], px[2]]);
            pixels.extend_from_slice(&out);
        }
        Self {
            width: self.width,
            height: self.height,
            pixels,
        }
    }

    /// Writes this picture as a JPEG of `quality` (1-100).
    pub fn write_jpeg(&self, path: &Path, quality: i32) -> Result<(), Error> {
        let data = crate::jpeg::encode_rgb(&self.pixels, self.width, self.height, quality)?;
        std::fs::write(path, data)?;
        Ok(())
    }
}
