//! JPEG with libjpeg-turbo (SIMD on x86 and NEON on the Pi's Cortex-A53).

use bytes::Bytes;
use turbojpeg::{Compressor, Subsamp, YuvPlanesImage};

use super::{EncodeError, Encoder, Packet};
use crate::camera::Frame;

pub struct TurboJpeg {
    compressor: Compressor,
    /// Reused output buffer: the encoded frame is copied out at its exact size, so a
    /// frame held by a slow client pins only its own bytes, not a worst-case buffer.
    scratch: Vec<u8>,
}

impl TurboJpeg {
    /// `quality` is 1–100, as in every JPEG tool.
    pub fn new(quality: u8) -> Result<Self, EncodeError> {
        let fail = |e: turbojpeg::Error| EncodeError::Failed {
            encoder: "turbojpeg",
            message: e.to_string(),
        };
        let mut compressor = Compressor::new().map_err(fail)?;
        compressor.set_quality(i32::from(quality)).map_err(fail)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(fail)?;
        Ok(Self {
            compressor,
            scratch: Vec::new(),
        })
    }
}

impl Encoder for TurboJpeg {
    fn name(&self) -> &'static str {
        "turbojpeg"
    }

    fn encode(&mut self, frame: &Frame) -> Result<Packet, EncodeError> {
        let fail = |e: turbojpeg::Error| EncodeError::Failed {
            encoder: "turbojpeg",
            message: e.to_string(),
        };
        let (w, h) = (frame.image.width() as usize, frame.image.height() as usize);
        let [y, u, v] = frame.image.planes();
        let image = YuvPlanesImage {
            y_plane: y,
            u_plane: u,
            v_plane: v,
            width: w,
            y_stride: w,
            u_stride: w / 2,
            v_stride: w / 2,
            height: h,
            subsamp: Subsamp::Sub2x2,
        };
        let max = self.compressor.buf_len(w, h).map_err(fail)?;
        if self.scratch.len() < max {
            self.scratch.resize(max, 0);
        }
        let len = self
            .compressor
            .compress_yuv_planes_to_slice(&image, &mut self.scratch)
            .map_err(fail)?;
        Ok(Packet {
            seq: frame.seq,
            captured: frame.captured,
            wall: frame.wall,
            keyframe: true,
            data: Bytes::copy_from_slice(&self.scratch[..len]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::synthetic::SyntheticSource;
    use crate::camera::{FrameSource, frame};

    #[test]
    fn encodes_a_decodable_jpeg_of_the_frame_size() {
        let mut src = SyntheticSource::new(320, 240, 1000, 1);
        let f = src.next_frame().unwrap().unwrap();
        let mut enc = TurboJpeg::new(80).unwrap();
        let p = enc.encode(&f).unwrap();
        assert!(p.data.starts_with(&[0xFF, 0xD8]) && p.data.ends_with(&[0xFF, 0xD9]));
        let header = turbojpeg::read_header(&p.data).unwrap();
        assert_eq!((header.width, header.height), (320, 240));
        assert_eq!(p.seq, f.seq);
    }

    #[test]
    fn quality_changes_the_size() {
        let mut src = SyntheticSource::new(640, 480, 1000, 1);
        let f = src.next_frame().unwrap().unwrap();
        let low = TurboJpeg::new(20).unwrap().encode(&f).unwrap().data.len();
        let high = TurboJpeg::new(95).unwrap().encode(&f).unwrap().data.len();
        assert!(high > low * 2, "q95 {high} bytes vs q20 {low} bytes");
    }

    #[test]
    fn decoded_picture_matches_the_source() {
        let pool = frame::BufferPool::new(frame::I420::len_for(64, 64), 1);
        let mut img = frame::I420::new(64, 64, pool.take().unwrap());
        img.planes_mut()[0].fill(200);
        img.planes_mut()[1].fill(128);
        img.planes_mut()[2].fill(128);
        let f = Frame {
            seq: 0,
            captured: std::time::Instant::now(),
            wall: std::time::SystemTime::now(),
            image: img,
        };
        let p = TurboJpeg::new(90).unwrap().encode(&f).unwrap();
        let yuv = turbojpeg::decompress_to_yuv(&p.data).unwrap();
        let mean = yuv.pixels[..64 * 64].iter().map(|&v| v as u32).sum::<u32>() / 4096;
        assert!((198..=202).contains(&mean), "mean luma {mean}");
    }
}
