//! Replays recorded frames as a camera: a directory of JPEG/PNG files (sorted by name)
//! or one MJPEG file (concatenated JPEGs, as `ffmpeg -f mjpeg` or a saved
//! `multipart/x-mixed-replace` stream produce), looped forever at the configured rate.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use turbojpeg::{Decompressor, PixelFormat, Subsamp, YuvImage};

use super::frame::{BufferPool, Frame, I420, rgb_to_i420};
use super::pacer::Pacer;
use super::{CameraError, FrameSource, SourceInfo};
use crate::config::Size;

const POOL_BUFFERS: usize = 4;
/// An MJPEG file is indexed in memory once; beyond this it is refused as not a replay.
const MAX_MJPEG_FILE: u64 = 1 << 30;

enum Frames {
    Files(Vec<PathBuf>),
    Mjpeg {
        file: File,
        ranges: Vec<std::ops::Range<u64>>,
    },
}

impl Frames {
    fn len(&self) -> usize {
        match self {
            Self::Files(f) => f.len(),
            Self::Mjpeg { ranges, .. } => ranges.len(),
        }
    }
}

pub struct ReplaySource {
    path: PathBuf,
    frames: Frames,
    width: u32,
    height: u32,
    fps: u32,
    pool: BufferPool,
    pacer: Pacer,
    decoder: FrameDecoder,
    position: usize,
    seq: u64,
}

impl ReplaySource {
    pub fn open(path: &Path, fps: u32) -> Result<Self, CameraError> {
        let io = |source| CameraError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let frames = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image_name(p))
                .collect();
            files.sort();
            Frames::Files(files)
        } else {
            if meta.len() > MAX_MJPEG_FILE {
                return Err(CameraError::Replay {
                    path: path.to_owned(),
                    problem: format!(
                        "is {} bytes; replay files must be under {MAX_MJPEG_FILE} bytes",
                        meta.len()
                    ),
                });
            }
            let data = std::fs::read(path).map_err(io)?;
            let ranges = split_mjpeg(&data)
                .into_iter()
                .map(|r| r.start as u64..r.end as u64)
                .collect();
            Frames::Mjpeg {
                file: File::open(path).map_err(io)?,
                ranges,
            }
        };
        if frames.len() == 0 {
            return Err(CameraError::Replay {
                path: path.to_owned(),
                problem: "holds no frames; give a directory of .jpg/.jpeg/.png files or an \
                          MJPEG file"
                    .into(),
            });
        }

        let mut source = Self {
            path: path.to_owned(),
            frames,
            width: 0,
            height: 0,
            fps,
            pool: BufferPool::new(0, 0),
            pacer: Pacer::new(fps),
            decoder: FrameDecoder::new()?,
            position: 0,
            seq: 0,
        };
        // The first frame fixes the size of the whole replay.
        let (name, data) = source.read(0)?;
        let size = source
            .decoder
            .size(&data)
            .map_err(|problem| CameraError::Replay {
                path: name,
                problem,
            })?;
        source.width = size.width;
        source.height = size.height;
        source.pool = BufferPool::new(I420::len_for(size.width, size.height), POOL_BUFFERS);
        Ok(source)
    }

    fn read(&self, index: usize) -> Result<(PathBuf, Vec<u8>), CameraError> {
        match &self.frames {
            Frames::Files(files) => {
                let p = &files[index];
                let data = std::fs::read(p).map_err(|source| CameraError::Io {
                    path: p.clone(),
                    source,
                })?;
                Ok((p.clone(), data))
            }
            Frames::Mjpeg { file, ranges } => {
                let r = &ranges[index];
                let mut data = vec![0; (r.end - r.start) as usize];
                file.read_exact_at(&mut data, r.start)
                    .map_err(|source| CameraError::Io {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok((self.path.join(format!("#{index}")), data))
            }
        }
    }
}

impl FrameSource for ReplaySource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "replay",
            width: self.width,
            height: self.height,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
        self.pacer.wait();
        let index = self.position;
        self.position = (self.position + 1) % self.frames.len();
        let Some(buf) = self.pool.take() else {
            return Ok(None);
        };
        let (name, data) = self.read(index)?;
        let mut image = I420::new(self.width, self.height, buf);
        if let Err(problem) = self.decoder.decode(&data, &mut image) {
            // libjpeg-turbo can keep state from a failed image; start the next clean.
            self.decoder = FrameDecoder::new()?;
            return Err(CameraError::Replay {
                path: name,
                problem,
            });
        }
        let frame = Frame {
            seq: self.seq,
            captured: Instant::now(),
            wall: SystemTime::now(),
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

fn is_image_name(p: &Path) -> bool {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
}

/// Decodes JPEG and PNG into I420 of a fixed size, reusing its scratch buffers.
struct FrameDecoder {
    jpeg: Decompressor,
    rgb: Vec<u8>,
}

impl FrameDecoder {
    fn new() -> Result<Self, CameraError> {
        Ok(Self {
            jpeg: Decompressor::new().map_err(|e| CameraError::Codec(e.to_string()))?,
            rgb: Vec::new(),
        })
    }

    /// The even size frames decoded from `data` will have (odd edges are cropped).
    fn size(&mut self, data: &[u8]) -> Result<Size, String> {
        let (w, h) = if is_png(data) {
            let reader = png::Decoder::new(data)
                .read_info()
                .map_err(|e| format!("is not a readable PNG: {e}"))?;
            (reader.info().width as usize, reader.info().height as usize)
        } else {
            let header = self
                .jpeg
                .read_header(data)
                .map_err(|e| format!("is not a readable JPEG: {e}"))?;
            (header.width, header.height)
        };
        let size = Size {
            width: (w as u32) & !1,
            height: (h as u32) & !1,
        };
        let ok = |v: u32| (Size::MIN..=Size::MAX).contains(&v);
        if !ok(size.width) || !ok(size.height) {
            return Err(format!(
                "is {w}x{h}; replay frames must be from {min}x{min} to {max}x{max}",
                min = Size::MIN,
                max = Size::MAX
            ));
        }
        Ok(size)
    }

    fn decode(&mut self, data: &[u8], dst: &mut I420) -> Result<(), String> {
        let size = self.size(data)?;
        if (size.width, size.height) != (dst.width(), dst.height()) {
            return Err(format!(
                "is {size} but the replay's first frame is {}x{}; all frames must share one size",
                dst.width(),
                dst.height()
            ));
        }
        if is_png(data) {
            let width = self.decode_png_rgb(data)?;
            rgb_to_i420(&self.rgb, width, dst);
            return Ok(());
        }
        let header = self
            .jpeg
            .read_header(data)
            .map_err(|e| format!("is not a readable JPEG: {e}"))?;
        let exact = header.width == dst.width() as usize && header.height == dst.height() as usize;
        if exact && header.subsamp == Subsamp::Sub2x2 {
            // Already 4:2:0: decode straight into the frame, no colour conversion.
            let (width, height) = (header.width, header.height);
            let out = YuvImage {
                pixels: &mut dst.planes_mut_flat()[..],
                width,
                align: 1,
                height,
                subsamp: Subsamp::Sub2x2,
            };
            return self
                .jpeg
                .decompress_to_yuv(data, out)
                .map_err(|e| format!("could not be decoded: {e}"));
        }
        let pitch = header.width * 3;
        self.rgb.resize(pitch * header.height, 0);
        let out = turbojpeg::Image {
            pixels: &mut self.rgb[..],
            width: header.width,
            pitch,
            height: header.height,
            format: PixelFormat::RGB,
        };
        self.jpeg
            .decompress(data, out)
            .map_err(|e| format!("could not be decoded: {e}"))?;
        rgb_to_i420(&self.rgb, header.width, dst);
        Ok(())
    }

    /// Decodes a PNG of any colour type into `self.rgb`; returns its width.
    fn decode_png_rgb(&mut self, data: &[u8]) -> Result<usize, String> {
        decode_png_rgb(data, &mut self.rgb).map(|(w, _)| w)
    }
}

/// Decodes a PNG of any 8-bit colour type into packed RGB in `rgb` (grey repeated into
/// R, G and B, alpha dropped); returns its width and height.
pub fn decode_png_rgb(data: &[u8], rgb: &mut Vec<u8>) -> Result<(usize, usize), String> {
    let mut decoder = png::Decoder::new(data);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("is not a readable PNG: {e}"))?;
    let mut raw = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut raw)
        .map_err(|e| format!("could not be decoded: {e}"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("has an unexpanded palette".into()),
    };
    rgb.clear();
    rgb.reserve(w * h * 3);
    for row in raw[..info.buffer_size()].chunks_exact(info.line_size) {
        for px in row[..w * channels].chunks_exact(channels) {
            match channels {
                1 | 2 => rgb.extend_from_slice(&[px[0]; 3]),
                _ => rgb.extend_from_slice(&px[..3]),
            }
        }
    }
    Ok((w, h))
}

fn is_png(data: &[u8]) -> bool {
    data.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// Finds the JPEG images in an MJPEG byte stream. Walks each image's marker segments
/// up to the scan so that an `FFD9` inside an embedded EXIF thumbnail is not taken for
/// the end of the frame; anything between images (multipart headers) is skipped.
pub fn split_mjpeg(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Some(start) = find(data, pos, &[0xFF, 0xD8, 0xFF]) {
        match jpeg_end(data, start) {
            Some(end) => {
                frames.push(start..end);
                pos = end;
            }
            None => break, // a truncated last frame (a recording cut short) is dropped
        }
    }
    frames
}

fn find(data: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    data.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// End (exclusive) of the JPEG starting at `start`, or `None` if it is truncated.
fn jpeg_end(data: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 2;
    loop {
        // Marker segments: FF xx LEN_HI LEN_LO ...
        while *data.get(i)? == 0xFF && *data.get(i + 1)? == 0xFF {
            i += 1; // fill bytes
        }
        if *data.get(i)? != 0xFF {
            return None;
        }
        let marker = *data.get(i + 1)?;
        match marker {
            0xD9 => return Some(i + 2),
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let len = u16::from_be_bytes([*data.get(i + 2)?, *data.get(i + 3)?]) as usize;
                if len < 2 {
                    return None;
                }
                i += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data: FF is always followed by 00 or a restart
                    // marker, so the next other marker ends the scan.
                    loop {
                        let ff = find(data, i, &[0xFF])?;
                        let next = *data.get(ff + 1)?;
                        if next == 0x00 || (0xD0..=0xD7).contains(&next) || next == 0xFF {
                            i = ff + 1;
                            continue;
                        }
                        i = ff;
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: usize, height: usize, shade: u8) -> Vec<u8> {
        let rgb = vec![shade; width * height * 3];
        let img = turbojpeg::Image {
            pixels: &rgb[..],
            width,
            pitch: width * 3,
            height,
            format: PixelFormat::RGB,
        };
        turbojpeg::compress(img, 90, Subsamp::Sub2x2)
            .unwrap()
            .to_vec()
    }

    fn png(width: u32, height: u32, shade: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer
            .write_image_data(&vec![shade; (width * height) as usize])
            .unwrap();
        writer.finish().unwrap();
        out
    }

    fn luma_of(frame: &Frame) -> u8 {
        frame.image.planes()[0][0]
    }

    #[test]
    fn splits_concatenated_and_multipart_mjpeg() {
        let (a, b) = (jpeg(32, 16, 10), jpeg(32, 16, 200));
        let mut stream = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"\r\n--frame\r\n\r\n");
        stream.extend_from_slice(&b);
        stream.extend_from_slice(&b[..b.len() / 2]); // truncated tail
        let ranges = split_mjpeg(&stream);
        assert_eq!(ranges.len(), 2);
        assert_eq!(&stream[ranges[0].clone()], &a[..]);
        assert_eq!(&stream[ranges[1].clone()], &b[..]);
    }

    #[test]
    fn garbage_is_not_a_frame() {
        assert!(split_mjpeg(b"").is_empty());
        assert!(split_mjpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]).is_empty());
        assert!(split_mjpeg(&[0xFF; 100]).is_empty());
    }

    #[test]
    fn replays_a_directory_in_name_order_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), png(64, 48, 200)).unwrap();
        std::fs::write(dir.path().join("a.jpg"), jpeg(64, 48, 30)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
        let mut src = ReplaySource::open(dir.path(), 200).unwrap();
        assert_eq!((src.info().width, src.info().height), (64, 48));
        let shades: Vec<u8> = (0..4)
            .map(|_| luma_of(&src.next_frame().unwrap().unwrap()))
            .collect();
        assert!(shades[0] < 60 && shades[1] > 160, "{shades:?}");
        assert_eq!((shades[0], shades[1]), (shades[2], shades[3]), "loops");
    }

    #[test]
    fn replays_an_mjpeg_file_with_odd_and_non_420_frames() {
        let dir = tempfile::tempdir().unwrap();
        // 4:4:4 and odd-sized frames take the RGB path and are cropped to even sizes.
        let rgb = vec![128u8; 33 * 17 * 3];
        let img = turbojpeg::Image {
            pixels: &rgb[..],
            width: 33,
            pitch: 99,
            height: 17,
            format: PixelFormat::RGB,
        };
        let odd = turbojpeg::compress(img, 90, Subsamp::None)
            .unwrap()
            .to_vec();
        let path = dir.path().join("clip.mjpg");
        std::fs::write(&path, [odd.clone(), odd].concat()).unwrap();
        let mut src = ReplaySource::open(&path, 200).unwrap();
        assert_eq!((src.info().width, src.info().height), (32, 16));
        let f = src.next_frame().unwrap().unwrap();
        assert!((120..=136).contains(&luma_of(&f)));
    }

    #[test]
    fn a_frame_of_another_size_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.jpg"), jpeg(64, 48, 30)).unwrap();
        std::fs::write(dir.path().join("2.jpg"), jpeg(32, 32, 30)).unwrap();
        std::fs::write(dir.path().join("3.jpg"), b"\xFF\xD8\xFFtruncated").unwrap();
        let mut src = ReplaySource::open(dir.path(), 200).unwrap();
        assert!(src.next_frame().unwrap().is_some());
        let e = src.next_frame().unwrap_err().to_string();
        assert!(e.contains("2.jpg") && e.contains("share one size"), "{e}");
        let e = src.next_frame().unwrap_err().to_string();
        assert!(e.contains("3.jpg"), "{e}");
        assert!(
            src.next_frame().unwrap().is_some(),
            "loops back to a good frame"
        );
    }

    #[test]
    fn empty_or_missing_replays_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let e = ReplaySource::open(dir.path(), 10)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no frames"), "{e}");
        let e = ReplaySource::open(&dir.path().join("nope"), 10)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
