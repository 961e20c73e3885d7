//! Decoding what the device sends, and making frames for replay tests.

use crate::Error;

/// A decoded image, RGB with three bytes a pixel.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Decoded {
    /// The average colour, for telling test frames apart.
    pub fn mean_rgb(&self) -> [f64; 3] {
        let mut sum = [0u64; 3];
        for px in self.rgb.chunks_exact(3) {
            for (s, v) in sum.iter_mut().zip(px) {
                *s += u64::from(*v);
            }
        }
        let n = (self.rgb.len() / 3).max(1) as f64;
        sum.map(|s| s as f64 / n)
    }
}

/// Decodes a whole JPEG. Beyond what libjpeg-turbo checks, the data must start with
/// SOI and end with EOI: libjpeg-turbo only warns about a truncated image and pads it
/// with grey, which would hide a frame cut short on the wire.
pub fn decode(data: &[u8]) -> Result<Decoded, Error> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(Error::Jpeg(format!(
            "does not start with SOI ({} bytes)",
            data.len()
        )));
    }
    if !data.ends_with(&[0xFF, 0xD9]) {
        return Err(Error::Jpeg(format!(
            "does not end with EOI ({} bytes)",
            data.len()
        )));
    }
    let image = turbojpeg::decompress(data, turbojpeg::PixelFormat::RGB)
        .map_err(|e| Error::Jpeg(e.to_string()))?;
    Ok(Decoded {
        width: image.width,
        height: image.height,
        rgb: image.pixels,
    })
}

/// Encodes RGB pixels (three bytes a pixel, no padding) as a 4:2:0 JPEG.
pub fn encode_rgb(rgb: &[u8], width: usize, height: usize, quality: i32) -> Result<Vec<u8>, Error> {
    if rgb.len() != width * height * 3 {
        return Err(Error::Jpeg(format!(
            "{} bytes are not a {width}x{height} RGB image",
            rgb.len()
        )));
    }
    let image = turbojpeg::Image {
        pixels: rgb,
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    let jpeg = turbojpeg::compress(image, quality, turbojpeg::Subsamp::Sub2x2)
        .map_err(|e| Error::Jpeg(e.to_string()))?;
    Ok(jpeg.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_size_and_colour() {
        let rgb: Vec<u8> = [200u8, 40, 40].repeat(64 * 48);
        let jpeg = encode_rgb(&rgb, 64, 48, 90).expect("encodes");
        let image = decode(&jpeg).expect("decodes");
        assert_eq!((image.width, image.height), (64, 48));
        let [r, g, b] = image.mean_rgb();
        assert!((r - 200.0).abs() < 8.0 && (g - 40.0).abs() < 8.0 && (b - 40.0).abs() < 8.0);
    }

    #[test]
    fn truncated_jpegs_are_refused() {
        let jpeg = encode_rgb(&[0u8; 16 * 16 * 3], 16, 16, 90).expect("encodes");
        assert!(decode(&jpeg[..jpeg.len() - 10]).is_err());
        assert!(decode(&jpeg[2..]).is_err());
    }
}
