//! TIFF output through the `tiff` crate: gray or RGB, 8 or 16 bits, alpha declared as such (an ExtraSamples
//! tag, which `image`'s TIFF encoder leaves out), LZW with the horizontal predictor (uncompressed files carry a
//! Predictor tag that libtiff warns about).
//!
//! Gray with alpha is written as RGBA with equal colour channels: a two-sample gray TIFF is valid, but the Rust
//! `tiff` decoder (this tool's own, for TIFF sources) and Go's `x/image/tiff` cannot read it.

use super::{Carried, CodecError};
use image::DynamicImage;
use std::io::Cursor;
use tiff::encoder::colortype::{self, ColorType};
use tiff::encoder::{Compression, Predictor, TiffEncoder, TiffValue};
use tiff::tags::{ExtraSamples, Tag};

fn encode_error(e: tiff::TiffError) -> CodecError {
    CodecError::Encode {
        format: "tiff",
        message: e.to_string(),
    }
}

/// An ASCII value as EXIF stores it: `tiff`'s `str` refuses bytes beyond ASCII (UTF-8, as exiftool writes a
/// `©`) and the NUL between the two parts of a Copyright, which are kept here as they were.
struct StoredAscii<'a>(&'a [u8]);

impl TiffValue for StoredAscii<'_> {
    const BYTE_LEN: u8 = 1;
    const FIELD_TYPE: tiff::tags::Type = tiff::tags::Type::ASCII;

    fn count(&self) -> usize {
        self.0.len() + 1
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned([self.0, &[0]].concat())
    }
}

fn write<C: ColorType>(
    width: u32,
    height: u32,
    data: &[C::Inner],
    alpha: bool,
    icc: Option<&[u8]>,
    metadata: Option<&Carried>,
) -> Result<Vec<u8>, CodecError>
where
    [C::Inner]: TiffValue,
{
    let mut out = Cursor::new(Vec::new());
    let mut tiff = TiffEncoder::new(&mut out)
        .map_err(encode_error)?
        .with_compression(Compression::Lzw)
        .with_predictor(Predictor::Horizontal);
    let mut image = tiff.new_image::<C>(width, height).map_err(encode_error)?;
    if alpha {
        // The colour type counts the alpha among its samples; the tag says what that last sample is.
        image
            .encoder()
            .write_tag(
                Tag::ExtraSamples,
                &[ExtraSamples::UnassociatedAlpha.to_u16()][..],
            )
            .map_err(encode_error)?;
    }
    if let Some(icc) = icc {
        image
            .encoder()
            .write_tag(Tag::IccProfile, icc)
            .map_err(encode_error)?;
    }
    if let Some(m) = metadata {
        // Copyright and Artist are TIFF's own tags (EXIF took them from TIFF); XMP and IPTC have tags of their own.
        let (copyright, artist) = m.tiff_ascii();
        let enc = image.encoder();
        for (tag, v) in [(Tag::Copyright, copyright), (Tag::Artist, artist)] {
            if let Some(v) = v {
                enc.write_tag(tag, StoredAscii(&v)).map_err(encode_error)?;
            }
        }
        for (tag, v) in [(700, m.xmp()), (33723, m.iptc())] {
            if let Some(v) = v {
                enc.write_tag(Tag::Unknown(tag), v).map_err(encode_error)?;
            }
        }
    }
    image.write_data(data).map_err(encode_error)?;
    Ok(out.into_inner())
}

/// `icc`: a profile to embed (`-colour keep`), already checked to fit the pixels; `metadata`: what the source's
/// metadata gives the derivative.
pub fn encode(
    img: &DynamicImage,
    icc: Option<&[u8]>,
    metadata: Option<&Carried>,
) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (img.width(), img.height());
    match img {
        DynamicImage::ImageLuma8(i) => {
            write::<colortype::Gray8>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgb8(i) => {
            write::<colortype::RGB8>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgba8(i) => {
            write::<colortype::RGBA8>(w, h, i.as_raw(), true, icc, metadata)
        }
        DynamicImage::ImageLumaA8(_) => {
            write::<colortype::RGBA8>(w, h, img.to_rgba8().as_raw(), true, icc, metadata)
        }
        DynamicImage::ImageLuma16(i) => {
            write::<colortype::Gray16>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgb16(i) => {
            write::<colortype::RGB16>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgba16(i) => {
            write::<colortype::RGBA16>(w, h, i.as_raw(), true, icc, metadata)
        }
        i if i.color().has_alpha() => {
            write::<colortype::RGBA16>(w, h, i.to_rgba16().as_raw(), true, icc, metadata)
        }
        i => write::<colortype::RGB16>(w, h, i.to_rgb16().as_raw(), false, icc, metadata),
    }
}
