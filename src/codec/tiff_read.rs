//! TIFF sources that the `image` crate refuses, read with the `tiff` crate directly: JPEG-compressed YCbCr (what
//! `vips tiffsave --compression jpeg` and most pyramidal IIIF masters hold, chroma subsampled or not) as RGB, and
//! 32-bit float grey. Every other TIFF (8/16-bit, float RGB, BigTIFF, tiled or in strips) goes through `raster`.
//!
//! A pyramidal TIFF is read from its first page, the full-resolution image, like any other: a smaller page would
//! make a derivative's pixels depend on the resampler that made the pyramid instead of this tool's ladder.

use super::raster::Header;
use super::{check_pixels, CodecError, Orientation};
use image::{DynamicImage, ImageBuffer, Luma, RgbImage};
use rayon::prelude::*;
use std::io::Cursor;
use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::{CompressionMethod, PlanarConfiguration, Tag};
use tiff::ColorType;

/// What this module decodes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// Three 8-bit samples, Y Cb Cr as JPEG stores them (full range, BT.601), upsampled by the JPEG decoder.
    JpegYcbcr,
    /// One 32-bit IEEE float sample a pixel, 0 black to 1 white.
    GrayFloat,
}

impl Own {
    fn bytes_per_pixel(self) -> u8 {
        match self {
            Own::JpegYcbcr => 3,
            Own::GrayFloat => 4,
        }
    }
}

fn error(message: impl std::fmt::Display) -> CodecError {
    CodecError::Decode {
        format: "tiff",
        message: message.to_string(),
    }
}

struct Opened<'a> {
    decoder: Decoder<Cursor<&'a [u8]>>,
    own: Own,
    width: u32,
    height: u32,
}

/// Open the first page when it is one this module decodes; `None` for every other TIFF (and for one the `tiff`
/// crate cannot open, so that `raster` reports it as before).
fn open(bytes: &[u8], max_pixels: u64) -> Result<Option<Opened<'_>>, CodecError> {
    let Ok(decoder) = Decoder::new(Cursor::new(bytes)) else {
        return Ok(None);
    };
    // The whole image is one buffer of at most the pixel limit's worth of samples.
    let limits = {
        let mut l = Limits::default();
        l.decoding_buffer_size =
            usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX);
        l
    };
    let mut decoder = decoder.with_limits(limits);
    let Ok(colour) = decoder.colortype() else {
        return Ok(None);
    };
    let compression = decoder
        .find_tag_unsigned::<u16>(Tag::Compression)
        .ok()
        .flatten()
        .and_then(CompressionMethod::from_u16);
    let sample_format = decoder
        .find_tag_unsigned::<u16>(Tag::SampleFormat)
        .ok()
        .flatten();
    let own = match (colour, compression, sample_format) {
        (ColorType::YCbCr(8), Some(CompressionMethod::ModernJPEG), _) => Own::JpegYcbcr,
        // SampleFormat 3: IEEE floating point.
        (ColorType::Gray(32), _, Some(3)) => Own::GrayFloat,
        _ => return Ok(None),
    };
    let planar = decoder
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .ok()
        .flatten()
        .and_then(PlanarConfiguration::from_u16);
    if own == Own::JpegYcbcr && planar == Some(PlanarConfiguration::Planar) {
        return Err(error(
            "JPEG-compressed YCbCr in separate planes is not supported",
        ));
    }
    let (width, height) = decoder.dimensions().map_err(error)?;
    check_pixels(width, height, max_pixels)?;
    if own == Own::JpegYcbcr {
        check_jpeg_segments(bytes, &mut decoder, height)?;
    }
    Ok(Some(Opened {
        decoder,
        own,
        width,
        height,
    }))
}

/// Each JPEG tile or strip may declare no larger a frame than its tile or strip: the `tiff` crate hands each
/// to a JPEG decoder that would allocate whatever the frame header says (up to 16384 x 16384), beyond the pixel
/// limit the whole image was checked against.
fn check_jpeg_segments(
    bytes: &[u8],
    decoder: &mut Decoder<Cursor<&[u8]>>,
    height: u32,
) -> Result<(), CodecError> {
    let tag = |d: &mut Decoder<Cursor<&[u8]>>, t| d.find_tag_unsigned::<u32>(t).ok().flatten();
    let (offsets, counts, max_w, max_h) = match tag(decoder, Tag::TileWidth) {
        Some(tile_w) => (
            Tag::TileOffsets,
            Tag::TileByteCounts,
            tile_w,
            tag(decoder, Tag::TileLength).unwrap_or(tile_w),
        ),
        None => (
            Tag::StripOffsets,
            Tag::StripByteCounts,
            decoder.dimensions().map_err(error)?.0,
            tag(decoder, Tag::RowsPerStrip)
                .unwrap_or(height)
                .min(height),
        ),
    };
    let vec = |d: &mut Decoder<Cursor<&[u8]>>, t| d.get_tag_u64_vec(t).map_err(error);
    let (offsets, counts) = (vec(decoder, offsets)?, vec(decoder, counts)?);
    for (i, (&at, &len)) in offsets.iter().zip(&counts).enumerate() {
        let segment = usize::try_from(at)
            .ok()
            .zip(usize::try_from(at.saturating_add(len)).ok())
            .and_then(|(a, b)| bytes.get(a..b))
            .ok_or_else(|| error(format!("JPEG segment {i} runs past the end of the file")))?;
        if let Some((w, h)) = jpeg_frame_size(segment) {
            if w > max_w || h > max_h {
                return Err(error(format!(
                    "JPEG segment {i} declares a {w}x{h} frame in a {max_w}x{max_h} tile or strip"
                )));
            }
        }
    }
    Ok(())
}

/// The frame size a JPEG stream's SOF marker declares (width, height), read from the markers before its scan.
fn jpeg_frame_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2; // after SOI
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        match marker {
            // SOF0..SOF15, less DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let sof = jpeg.get(at + 4..at + 9)?;
                let h = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
                let w = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
                return Some((w, h));
            }
            // Start of scan: no frame header before it.
            0xDA => return None,
            _ => at += 2 + len,
        }
    }
    None
}

/// The header of a TIFF this module decodes; `None` for the others.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Option<Header>, CodecError> {
    let Some(mut o) = open(bytes, max_pixels)? else {
        return Ok(None);
    };
    let orientation = o
        .decoder
        .find_tag_unsigned::<u8>(Tag::Orientation)
        .ok()
        .flatten()
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Some(Header {
        width: o.width,
        height: o.height,
        orientation,
        bytes_per_pixel: o.own.bytes_per_pixel(),
    }))
}

/// The pixels of a TIFF this module decodes (RGB 8-bit, or grey 16-bit for float); `None` for the others.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Option<DynamicImage>, CodecError> {
    let Some(mut o) = open(bytes, max_pixels)? else {
        return Ok(None);
    };
    let (w, h) = (o.width, o.height);
    let samples = w as usize * h as usize;
    let short = || error("the decoder returned fewer samples than the image has");
    let image = match (o.own, o.decoder.read_image().map_err(error)?) {
        (Own::JpegYcbcr, DecodingResult::U8(mut v)) => {
            v.truncate(samples * 3);
            ycbcr_to_rgb(&mut v);
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, v).ok_or_else(short)?)
        }
        (Own::GrayFloat, DecodingResult::F32(v)) => {
            let v: Vec<u16> = v
                .par_iter()
                .take(samples)
                .map(|&s| (s.clamp(0.0, 1.0) * 65535.0).round() as u16)
                .collect();
            let gray: ImageBuffer<Luma<u16>, Vec<u16>> =
                ImageBuffer::from_raw(w, h, v).ok_or_else(short)?;
            DynamicImage::ImageLuma16(gray)
        }
        (own, _) => return Err(error(format!("unexpected sample type for {own:?}"))),
    };
    Ok(Some(image))
}

/// JPEG's YCbCr to RGB in place (JFIF: full range, BT.601 coefficients), what libjpeg gives libtiff for these
/// files; `ReferenceBlackWhite` does not apply to JPEG-compressed data.
fn ycbcr_to_rgb(v: &mut [u8]) {
    v.par_chunks_exact_mut(3).for_each(|p| {
        let (y, cb, cr) = (
            f32::from(p[0]),
            f32::from(p[1]) - 128.0,
            f32::from(p[2]) - 128.0,
        );
        let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        p[0] = c(y + 1.402 * cr);
        p[1] = c(y - 0.344_136 * cb - 0.714_136 * cr);
        p[2] = c(y + 1.772 * cb);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_size_is_read_from_the_sof_marker_after_other_segments() {
        // SOI, a DQT of 4 bytes, SOF0 of a 300x200 frame, SOS.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00,
            0xC8, 0x01, 0x2C, 0x03, 0xFF, 0xDA,
        ];
        assert_eq!(jpeg_frame_size(&jpeg), Some((300, 200)));
        assert_eq!(jpeg_frame_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_frame_size(&[0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8]), None);
    }

    #[test]
    fn ycbcr_neutral_is_grey_and_primaries_come_out_as_jfif_defines_them() {
        let mut v = vec![128, 128, 128, 76, 85, 255, 0, 128, 128, 255, 128, 128];
        ycbcr_to_rgb(&mut v);
        assert_eq!(&v[..3], &[128, 128, 128]);
        // Pure red in JFIF: Y 76, Cb 85, Cr 255.
        assert!(v[3] >= 253 && v[4] <= 2 && v[5] <= 2, "{:?}", &v[3..6]);
        assert_eq!(&v[6..], &[0, 0, 0, 255, 255, 255]);
    }
}
