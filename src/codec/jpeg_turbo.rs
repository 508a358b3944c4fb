//! JPEG decode with DCT-domain downscaling, and encode with EXIF / ICC segments, on libjpeg-turbo through the
//! `turbojpeg` crate (which builds the bundled libjpeg-turbo with cmake and nasm). The fastest JPEG path: used
//! whenever the crate is built with its default `turbojpeg` feature.

use image::{DynamicImage, GrayImage, RgbImage};
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    #[error("JPEG is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    /// Includes libjpeg warnings (corrupt or truncated entropy data): TurboJPEG reports them as failures.
    #[error("cannot decode jpeg: {0}")]
    Decode(String),
    #[error("cannot encode jpeg: {0}")]
    Encode(String),
    #[error("cannot encode jpeg: pixel format {0:?} is not Rgb8 or Luma8")]
    UnsupportedColor(image::ColorType),
    #[error("cannot encode jpeg: quality {0} is not in 1..=100")]
    BadQuality(u8),
    #[error("cannot encode jpeg: EXIF block of {0} bytes does not fit one APP1 segment (max {MAX_EXIF})")]
    ExifTooLarge(usize),
    #[error("cannot encode jpeg: ICC profile of {0} bytes is empty or over {MAX_ICC} bytes")]
    BadIcc(usize),
}

/// Progressive JPEGs from real encoders have at most a few dozen scans; thousands of tiny scans are a
/// known way to make a small file cost minutes of CPU. Refuse beyond this.
const MAX_SCANS: u32 = 500;
/// APP1 payload: 2 length bytes + "Exif\0\0" + TIFF data <= 65535.
pub const MAX_EXIF: usize = 65535 - 2 - 6;
/// ICC profiles are split over at most 255 APP2 segments of 65519 data bytes each.
const ICC_CHUNK: usize = 65535 - 2 - 14;
pub const MAX_ICC: usize = 255 * ICC_CHUNK;

fn dec_err(e: turbojpeg::Error) -> JpegError {
    JpegError::Decode(e.to_string())
}

fn enc_err(e: turbojpeg::Error) -> JpegError {
    JpegError::Encode(e.to_string())
}

/// Decode a JPEG at the largest DCT reduction (1/8, 1/4, 1/2 or 1) whose result is still at least min_w x min_h
/// (in stored orientation); None = full size. Refuse before allocating if the header's width*height > max_pixels.
/// Returns the pixels (Rgb8, or Luma8 for grayscale JPEGs; CMYK converted to RGB) and the full stored dimensions.
pub fn decode_jpeg(
    bytes: &[u8],
    min: Option<(u32, u32)>,
    max_pixels: u64,
) -> Result<(DynamicImage, (u32, u32)), JpegError> {
    let mut dec = Decompressor::new().map_err(dec_err)?;
    let header = dec.read_header(bytes).map_err(dec_err)?;
    let too_big = || {
        JpegError::Decode(format!(
            "dimensions {}x{} out of range",
            header.width, header.height
        ))
    };
    let width = u32::try_from(header.width).map_err(|_| too_big())?;
    let height = u32::try_from(header.height).map_err(|_| too_big())?;
    if width == 0 || height == 0 {
        return Err(too_big());
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(JpegError::TooLarge {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }

    // libjpeg's scaled size is ceil(dim * 1/d). Pick the largest d that still covers `min`.
    let denom = match min {
        None => 1,
        Some((min_w, min_h)) => [8u32, 4, 2]
            .into_iter()
            .find(|d| width.div_ceil(*d) >= min_w && height.div_ceil(*d) >= min_h)
            .unwrap_or(1),
    };
    let factor = ScalingFactor::new(1, denom as usize);
    dec.set_scaling_factor(factor).map_err(dec_err)?;
    dec.set_scan_limit(MAX_SCANS).map_err(dec_err)?;
    let out = header.scaled(factor);

    let format = match header.colorspace {
        Colorspace::Gray => PixelFormat::GRAY,
        Colorspace::CMYK | Colorspace::YCCK => PixelFormat::CMYK,
        _ => PixelFormat::RGB,
    };
    let len = out
        .width
        .checked_mul(out.height)
        .and_then(|n| n.checked_mul(format.size()))
        .ok_or_else(too_big)?;
    let mut image = Image {
        pixels: vec![0u8; len],
        width: out.width,
        pitch: out.width * format.size(),
        height: out.height,
        format,
    };
    dec.decompress(bytes, image.as_deref_mut())
        .map_err(dec_err)?;

    // out.width/height <= header dims, which fit u32 (checked above).
    let (ow, oh) = (out.width as u32, out.height as u32);
    let img = match format {
        PixelFormat::GRAY => {
            GrayImage::from_raw(ow, oh, image.pixels).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::CMYK => {
            RgbImage::from_raw(ow, oh, cmyk_to_rgb(&image.pixels)).map(DynamicImage::ImageRgb8)
        }
        _ => RgbImage::from_raw(ow, oh, image.pixels).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| JpegError::Decode("decoder returned a buffer of the wrong size".into()))?;
    Ok((img, (width, height)))
}

/// libjpeg hands back CMYK as stored. Nearly every CMYK JPEG is Adobe's (APP14), which stores the inks
/// inverted, so the naive conversion on the stored values is R = C*K/255 (what image/zune-jpeg,
/// libvips without a profile, and browsers do).
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let k = u32::from(p[3]);
        for &c in &p[..3] {
            rgb.push(((u32::from(c) * k + 127) / 255) as u8);
        }
    }
    rgb
}

/// Encode Rgb8 or Luma8 at `quality`, optionally embedding an EXIF APP1 (raw TIFF bytes after "Exif\0\0") and an ICC profile.
/// Baseline, standard Huffman tables, 4:2:0 for colour: libjpeg-turbo's fast path (`cjpeg -quality q`).
pub fn encode_jpeg(
    img: &DynamicImage,
    quality: u8,
    exif: Option<&[u8]>,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, JpegError> {
    if !(1..=100).contains(&quality) {
        return Err(JpegError::BadQuality(quality));
    }
    if let Some(e) = exif {
        if e.len() > MAX_EXIF {
            return Err(JpegError::ExifTooLarge(e.len()));
        }
    }
    if let Some(p) = icc {
        if p.is_empty() || p.len() > MAX_ICC {
            return Err(JpegError::BadIcc(p.len()));
        }
    }
    let (pixels, format, subsamp) = match img {
        DynamicImage::ImageRgb8(i) => (i.as_raw().as_slice(), PixelFormat::RGB, Subsamp::Sub2x2),
        DynamicImage::ImageLuma8(i) => (i.as_raw().as_slice(), PixelFormat::GRAY, Subsamp::Gray),
        other => return Err(JpegError::UnsupportedColor(other.color())),
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut c = Compressor::new().map_err(enc_err)?;
    c.set_quality(i32::from(quality)).map_err(enc_err)?;
    c.set_subsamp(subsamp).map_err(enc_err)?;
    let jpeg = c
        .compress_to_vec(Image {
            pixels,
            width: w,
            pitch: w * format.size(),
            height: h,
            format,
        })
        .map_err(enc_err)?;
    if exif.is_none() && icc.is_none() {
        return Ok(jpeg);
    }
    insert_segments(&jpeg, exif, icc)
}

/// Insert APP1 Exif and APP2 ICC_PROFILE segments after SOI and the JFIF APP0 (the order libjpeg's
/// jpeg_write_marker would give).
fn insert_segments(
    jpeg: &[u8],
    exif: Option<&[u8]>,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, JpegError> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Err(JpegError::Encode(
            "encoder output does not start with SOI".into(),
        ));
    }
    let mut at = 2;
    if jpeg[2..4] == [0xFF, 0xE0] {
        let len = jpeg
            .get(4..6)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or_else(|| JpegError::Encode("short APP0".into()))?;
        at = 4 + len;
        if at > jpeg.len() {
            return Err(JpegError::Encode("APP0 runs past the end".into()));
        }
    }
    let extra = exif.map_or(0, |e| e.len() + 10)
        + icc.map_or(0, |p| p.len() + 18 * p.len().div_ceil(ICC_CHUNK));
    let mut out = Vec::with_capacity(jpeg.len() + extra);
    out.extend_from_slice(&jpeg[..at]);
    let mut segment = |marker: u8, parts: &[&[u8]]| {
        let len: usize = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        out.extend_from_slice(&[0xFF, marker]);
        // Sizes were checked against MAX_EXIF / ICC_CHUNK, so len <= 65535.
        out.extend_from_slice(&(len as u16).to_be_bytes());
        for p in parts {
            out.extend_from_slice(p);
        }
    };
    if let Some(e) = exif {
        segment(0xE1, &[b"Exif\0\0", e]);
    }
    if let Some(p) = icc {
        let n = p.len().div_ceil(ICC_CHUNK);
        for (i, chunk) in p.chunks(ICC_CHUNK).enumerate() {
            // n <= 255 because p.len() <= MAX_ICC.
            segment(0xE2, &[b"ICC_PROFILE\0", &[(i + 1) as u8, n as u8], chunk]);
        }
    }
    out.extend_from_slice(&jpeg[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        }))
    }

    #[test]
    fn scaled_decodes_cover_the_minimum() {
        let jpeg = encode_jpeg(&gradient(640, 480), 90, None, None).unwrap();
        for (min, want) in [
            (None, (640, 480)),
            (Some((320, 240)), (320, 240)),
            (Some((321, 10)), (640, 480)),
            (Some((100, 100)), (160, 120)),
            (Some((1, 1)), (80, 60)),
        ] {
            let (img, full) = decode_jpeg(&jpeg, min, u64::MAX).unwrap();
            assert_eq!(full, (640, 480));
            assert_eq!((img.width(), img.height()), want, "{min:?}");
        }
        assert!(matches!(
            decode_jpeg(&jpeg, None, 1000),
            Err(JpegError::TooLarge { .. })
        ));
    }

    #[test]
    fn grey_stays_grey_and_segments_are_written() {
        let grey = DynamicImage::ImageLuma8(GrayImage::from_pixel(16, 8, image::Luma([90])));
        let icc = vec![7u8; 70_000]; // two APP2 chunks
        let tiff = b"MM\0\x2a\0\0\0\x08\0\0";
        let jpeg = encode_jpeg(&grey, 85, Some(tiff), Some(&icc)).unwrap();
        let (img, _) = decode_jpeg(&jpeg, None, u64::MAX).unwrap();
        assert!(matches!(img, DynamicImage::ImageLuma8(_)));
        let mut d = zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(&jpeg[..]));
        d.decode_headers().unwrap();
        assert_eq!(d.icc_profile().unwrap(), icc);
        assert_eq!(&d.exif().unwrap()[..], &tiff[..]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode_jpeg(b"\xFF\xD8\xFF\xE0nonsense", None, u64::MAX).is_err());
        let jpeg = encode_jpeg(&gradient(64, 64), 90, None, None).unwrap();
        assert!(decode_jpeg(&jpeg[..jpeg.len() / 2], None, u64::MAX).is_err());
    }
}
