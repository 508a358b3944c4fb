//! WebP output through libwebp (the `webp` crate, whose C library cargo builds from source): lossy at a quality
//! by default, lossless on request, as libvips' `webpsave` does with the same settings.

use super::CodecError;
use image::DynamicImage;
use std::fmt;
use std::str::FromStr;

/// How WebP derivatives are compressed: `-webp-quality N` (1-100) or `lossless`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebpQuality {
    Lossy(u8),
    Lossless,
}

impl Default for WebpQuality {
    /// libvips' and cwebp's usual 75-80 range; 80 keeps photographs free of visible artefacts.
    fn default() -> Self {
        WebpQuality::Lossy(80)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WebP quality {0:?}: expected a number from 1 to 100, or `lossless`")]
pub struct WebpQualityError(pub String);

impl FromStr for WebpQuality {
    type Err = WebpQualityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "lossless" {
            return Ok(WebpQuality::Lossless);
        }
        match s.parse::<u8>() {
            Ok(q @ 1..=100) => Ok(WebpQuality::Lossy(q)),
            _ => Err(WebpQualityError(s.to_string())),
        }
    }
}

impl fmt::Display for WebpQuality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebpQuality::Lossy(q) => write!(f, "{q}"),
            WebpQuality::Lossless => f.write_str("lossless"),
        }
    }
}

fn encode_error(message: impl Into<String>) -> CodecError {
    CodecError::Encode {
        format: "webp",
        message: message.into(),
    }
}

/// libwebp's limit on either side.
const MAX_SIDE: u32 = 16383;

pub fn encode(img: &DynamicImage, quality: WebpQuality) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (img.width(), img.height());
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(encode_error(format!(
            "{w}x{h} is larger than WebP's {MAX_SIDE} pixel limit"
        )));
    }
    // libwebp takes 8-bit RGB(A) only; gray is stored as RGB (WebP has no gray mode) and keeps looking gray.
    let converted;
    let (raw, layout): (&[u8], _) = match img {
        DynamicImage::ImageRgb8(i) => (i.as_raw(), webp::PixelLayout::Rgb),
        DynamicImage::ImageRgba8(i) => (i.as_raw(), webp::PixelLayout::Rgba),
        i if i.color().has_alpha() => {
            converted = i.to_rgba8().into_raw();
            (&converted, webp::PixelLayout::Rgba)
        }
        i => {
            converted = i.to_rgb8().into_raw();
            (&converted, webp::PixelLayout::Rgb)
        }
    };
    let mut config = webp::WebPConfig::new().map_err(|()| encode_error("libwebp: bad version"))?;
    match quality {
        WebpQuality::Lossy(q) => {
            config.lossless = 0;
            config.quality = f32::from(q);
            config.alpha_compression = 1;
        }
        WebpQuality::Lossless => {
            config.lossless = 1;
            // libvips' default effort for lossless (libwebp's quality doubles as effort there).
            config.quality = 75.0;
            config.alpha_compression = 0;
        }
    }
    let memory = webp::Encoder::new(raw, layout, w, h)
        .encode_advanced(&config)
        .map_err(|e| encode_error(format!("libwebp: {e:?}")))?;
    Ok(memory.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_parses_and_prints_back() {
        for s in ["1", "80", "100", "lossless"] {
            assert_eq!(s.parse::<WebpQuality>().unwrap().to_string(), s);
        }
        for s in ["0", "101", "", "Lossless", "80.5", "-1"] {
            assert!(s.parse::<WebpQuality>().is_err(), "{s:?}");
        }
        assert_eq!(WebpQuality::default(), WebpQuality::Lossy(80));
    }

    #[test]
    fn lossy_is_smaller_than_lossless_and_both_decode() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
        }));
        let lossy = encode(&img, WebpQuality::Lossy(50)).unwrap();
        let lossless = encode(&img, WebpQuality::Lossless).unwrap();
        assert!(
            lossy.len() < lossless.len(),
            "{} {}",
            lossy.len(),
            lossless.len()
        );
        let back = image::load_from_memory(&lossless).unwrap().to_rgb8();
        assert_eq!(back.as_raw(), img.to_rgb8().as_raw());
        let la = DynamicImage::ImageLumaA8(image::GrayAlphaImage::new(5, 4));
        let out = image::load_from_memory(&encode(&la, WebpQuality::Lossy(80)).unwrap()).unwrap();
        assert_eq!((out.width(), out.height()), (5, 4));
        assert!(out.color().has_alpha());
    }
}
