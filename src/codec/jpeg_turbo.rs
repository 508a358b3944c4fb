//! The `jpeg` interface on libjpeg-turbo: decode with DCT-domain downscaling, and encode, through the
//! `turbojpeg` crate (which builds the bundled libjpeg-turbo with cmake and nasm). The fastest JPEG path: used
//! whenever the crate is built with its default `turbojpeg` feature.

use super::jpeg::{self, damaged};
use super::metadata::JpegHeader;
use super::CodecError;
use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, Subsamp};

/// Progressive JPEGs from real encoders have at most a few dozen scans; thousands of tiny scans are a
/// known way to make a small file cost minutes of CPU. Refuse beyond this.
const MAX_SCANS: u32 = 500;

fn enc_err(e: turbojpeg::Error) -> CodecError {
    CodecError::Encode {
        format: "jpeg",
        message: e.to_string(),
    }
}

/// libjpeg's warnings about the entropy-coded data (JWRN_HIT_MARKER, JWRN_EXTRANEOUS_DATA, JWRN_HUFF_BAD_CODE,
/// JWRN_JPEG_EOF, ...). TurboJPEG reports them as failures, with only the message to tell them apart.
fn is_corrupt_data(e: &turbojpeg::Error) -> bool {
    let message = e.to_string();
    message.contains("Corrupt JPEG data") || message.contains("Premature end of JPEG file")
}

/// Decode the full frame. A file libjpeg-turbo refuses for another reason than damage goes to
/// zune-jpeg, which reads some files libjpeg does not; damaged data accepted by the caller is decoded by
/// zune-jpeg too, leniently, at full size.
pub fn decode(
    bytes: &[u8],
    header: &JpegHeader,
    accept_damaged: bool,
) -> Result<DynamicImage, CodecError> {
    match decode_turbo(bytes, header) {
        Ok(image) => Ok(image),
        Err(Refused::Fatal(e)) => Err(e),
        Err(Refused::Turbo(e)) if is_corrupt_data(&e) && !accept_damaged => Err(damaged(e)),
        Err(Refused::Turbo(_)) => jpeg::decode_zune(bytes, header, !accept_damaged),
    }
}

/// Why libjpeg-turbo gave no pixels: an error of ours that no other decoder would avoid, or its own.
enum Refused {
    Fatal(CodecError),
    Turbo(turbojpeg::Error),
}

fn decode_turbo(bytes: &[u8], header: &JpegHeader) -> Result<DynamicImage, Refused> {
    let mut dec = Decompressor::new().map_err(Refused::Turbo)?;
    dec.set_scan_limit(MAX_SCANS).map_err(Refused::Turbo)?;
    let format = match header.components {
        1 => PixelFormat::GRAY,
        4 => PixelFormat::CMYK,
        _ => PixelFormat::RGB,
    };
    let (width, height) = (header.width as usize, header.height as usize);
    // Sizes come from the header (at most 65535 a side, under the pixel limit): checked arithmetic and a
    // fallible reservation, so that a failure is an error for this source and not an abort.
    let len = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(format.size()))
        .ok_or_else(|| Refused::Fatal(out_of_memory(usize::MAX)))?;
    let mut pixels = Vec::new();
    pixels
        .try_reserve_exact(len)
        .map_err(|_| Refused::Fatal(out_of_memory(len)))?;
    pixels.resize(len, 0);
    let mut image = Image {
        pixels,
        width,
        pitch: width * format.size(),
        height,
        format,
    };
    dec.decompress(bytes, image.as_deref_mut())
        .map_err(Refused::Turbo)?;
    let (ow, oh) = (width as u32, height as u32);
    match format {
        PixelFormat::GRAY => {
            GrayImage::from_raw(ow, oh, image.pixels).map(DynamicImage::ImageLuma8)
        }
        // As stored; `jpeg::decode` converts it.
        PixelFormat::CMYK => {
            RgbaImage::from_raw(ow, oh, image.pixels).map(DynamicImage::ImageRgba8)
        }
        _ => RgbImage::from_raw(ow, oh, image.pixels).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| {
        Refused::Fatal(CodecError::Decode {
            format: "jpeg",
            message: "decoder returned a buffer of the wrong size".into(),
        })
    })
}

fn out_of_memory(bytes: usize) -> CodecError {
    CodecError::OutOfMemory {
        what: "jpeg pixels",
        bytes,
    }
}

/// Encode Rgb8 or Luma8 at `quality` (1 to 100). Baseline, standard Huffman tables, 4:2:0 for colour:
/// libjpeg-turbo's fast path (`cjpeg -quality q`).
pub fn encode(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, CodecError> {
    let (pixels, format, subsamp) = match img {
        DynamicImage::ImageRgb8(i) => (i.as_raw().as_slice(), PixelFormat::RGB, Subsamp::Sub2x2),
        DynamicImage::ImageLuma8(i) => (i.as_raw().as_slice(), PixelFormat::GRAY, Subsamp::Gray),
        other => {
            return Err(CodecError::Encode {
                format: "jpeg",
                message: format!("pixel format {:?} is not Rgb8 or Luma8", other.color()),
            })
        }
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut c = Compressor::new().map_err(enc_err)?;
    c.set_quality(i32::from(quality)).map_err(enc_err)?;
    c.set_subsamp(subsamp).map_err(enc_err)?;
    c.compress_to_vec(Image {
        pixels,
        width: w,
        pitch: w * format.size(),
        height: h,
        format,
    })
    .map_err(enc_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::metadata::jpeg_header;

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        }))
    }

    #[test]
    fn grey_stays_grey() {
        let grey = DynamicImage::ImageLuma8(GrayImage::from_pixel(16, 8, image::Luma([90])));
        let jpeg = encode(&grey, 85).unwrap();
        let img = decode(&jpeg, &jpeg_header(&jpeg).unwrap(), false).unwrap();
        assert!(matches!(img, DynamicImage::ImageLuma8(_)));
    }

    #[test]
    fn garbage_is_an_error() {
        let jpeg = encode(&gradient(64, 64), 90).unwrap();
        let header = jpeg_header(&jpeg).unwrap();
        assert!(decode(b"\xFF\xD8\xFF\xE0nonsense", &header, false).is_err());
        assert!(decode(&jpeg[..jpeg.len() / 2], &header, false).is_err());
    }
}
