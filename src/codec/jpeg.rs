//! The one JPEG interface. Two implementations of the same pair of functions, chosen here once by feature:
//! `jpeg_turbo` (libjpeg-turbo, the default) and `jpeg_rust` (zune-jpeg, jpeg-encoder). Each backend provides
//!
//! - `decode(bytes, header, accept_damaged) -> Result<DynamicImage, CodecError>`: the full frame's pixels (Rgb8, or Luma8 for grey; CMYK as stored, four samples in an Rgba8 buffer, or already Rgb8
//!   where the backend can only give RGB), a decoder's warning about corrupt data being
//!   [`CodecError::Damaged`] unless `accept_damaged`;
//! - `encode(image, quality) -> Result<Vec<u8>, CodecError>`: Rgb8 or Luma8 pixels, no metadata.
//!
//! What both share is here or in `metadata`: the header (read once, by `probe`), the truncation check, pixel conversions before encoding, EXIF and ICC segments.

#[cfg(not(feature = "turbojpeg"))]
use super::jpeg_rust as backend;
#[cfg(feature = "turbojpeg")]
use super::jpeg_turbo as backend;

use super::colour::{ColourError, Profile};
use super::metadata::{self, JpegHeader};
use super::CodecError;
use image::{DynamicImage, RgbImage};

/// Decode the full frame (never DCT-reduced: each derivative's pixels must not depend on the run's largest
/// derivative). CMYK comes out as RGB: through `cmyk_profile` when given, else by the
/// naive formula; a profile that cannot be applied is returned beside the pixels.
pub fn decode(
    bytes: &[u8],
    header: &JpegHeader,
    accept_damaged: bool,
    cmyk_profile: Option<&Profile>,
) -> Result<(DynamicImage, Option<ColourError>), CodecError> {
    if metadata::jpeg_is_truncated(bytes) {
        return Err(CodecError::Decode {
            format: "jpeg",
            message: "truncated: the file ends before the image data does".into(),
        });
    }
    let image = backend::decode(bytes, header, accept_damaged)?;
    Ok(match image {
        DynamicImage::ImageRgba8(stored) if header.components == 4 => {
            cmyk_to_rgb(stored, header.adobe, cmyk_profile)
        }
        image if header.components == 4 => {
            let warning = cmyk_profile.map(|p| ColourError::Transform {
                name: p.name().to_string(),
                reason: "this build's decoder gives YCCK data only as RGB".into(),
            });
            (image, warning)
        }
        image => (image, None),
    })
}

/// Four-component pixels as the decoder stored them to RGB. The stored values are ink amounts, inverted when
/// an Adobe APP14 segment says so (as Photoshop writes CMYK and YCCK); the profile, when there is one, converts
/// them, else the naive formula (what browsers and libvips without a profile do).
fn cmyk_to_rgb(
    mut stored: image::RgbaImage,
    adobe: bool,
    profile: Option<&Profile>,
) -> (DynamicImage, Option<ColourError>) {
    if adobe {
        stored.iter_mut().for_each(|v| *v = 255 - *v);
    }
    let (w, h) = stored.dimensions();
    let mut warning = None;
    if let Some(p) = profile {
        match p.cmyk_to_srgb(w, h, stored.as_raw()) {
            Ok(rgb) => return (DynamicImage::ImageRgb8(rgb), None),
            Err(e) => warning = Some(e),
        }
    }
    let naive = RgbImage::from_fn(w, h, |x, y| {
        let [c, m, ye, k] = stored.get_pixel(x, y).0;
        let ink = |v: u8| ((255 - u32::from(v)) * (255 - u32::from(k)) + 127) / 255;
        image::Rgb([ink(c) as u8, ink(m) as u8, ink(ye) as u8])
    });
    (DynamicImage::ImageRgb8(naive), warning)
}

/// The error for data a decoder found corrupt.
pub fn damaged(message: impl std::fmt::Display) -> CodecError {
    CodecError::Damaged {
        format: "jpeg",
        message: message.to_string(),
    }
}

/// Encode with an optional EXIF block (TIFF bytes), other marker segments (XMP, IPTC) and ICC profile. JPEG has no
/// alpha: transparent pixels become white.
pub fn encode(
    img: &DynamicImage,
    quality: u8,
    exif: Option<&[u8]>,
    segments: &[(u8, Vec<u8>)],
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (img.width(), img.height());
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(CodecError::Encode {
            format: "jpeg",
            message: format!("{w}x{h} is larger than JPEG's 65535 pixel limit"),
        });
    }
    let converted;
    let img = match img {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img,
        // Gray stays one component.
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
            converted = DynamicImage::ImageLuma8(
                DynamicImage::ImageRgb8(flatten_on_white(img)).into_luma8(),
            );
            &converted
        }
        i if i.color().has_alpha() => {
            converted = DynamicImage::ImageRgb8(flatten_on_white(i));
            &converted
        }
        i => {
            converted = DynamicImage::ImageRgb8(i.to_rgb8());
            &converted
        }
    };
    let jpeg = backend::encode(img, quality.clamp(1, 100))?;
    metadata::insert_jpeg_segments(jpeg, exif, segments, icc)
}

/// JPEG has no alpha: transparent pixels become white, as on a page.
fn flatten_on_white(img: &DynamicImage) -> image::RgbImage {
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let mix = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

/// Full-size decode with zune-jpeg: the pure-Rust build's decoder, and libjpeg-turbo's fallback for files it
/// refuses for reasons other than damage (and for damaged ones that are accepted). `strict` makes corrupt
/// entropy-coded data an error instead of grey blocks. The pixel buffer zune returns becomes the image without
/// a copy.
pub fn decode_zune(
    bytes: &[u8],
    header: &JpegHeader,
    strict: bool,
) -> Result<DynamicImage, CodecError> {
    use zune_core::colorspace::ColorSpace;
    // YCbCr comes out as RGB, grey stays grey, CMYK as stored; YCCK, which zune converts only to RGB, as RGB.
    let out = match header.components {
        1 => ColorSpace::Luma,
        2 => ColorSpace::LumaA,
        4 if !zune_is_ycck(bytes) => ColorSpace::CMYK,
        _ => ColorSpace::RGB,
    };
    // No size cap of zune's own: ours is the pixel limit, checked by the probe.
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(strict)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(out);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    let data = decoder.decode().map_err(|e| {
        // With strict mode on, an error after the header was read is the entropy-coded data's.
        if strict && decoder.dimensions().is_some() {
            damaged(e)
        } else {
            CodecError::Decode {
                format: "jpeg",
                message: e.to_string(),
            }
        }
    })?;
    let (width, height) = (header.width, header.height);
    let short = || CodecError::Decode {
        format: "jpeg",
        message: "decoder returned fewer pixels than the frame has".into(),
    };
    Ok(match out {
        ColorSpace::Luma => DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
        ColorSpace::LumaA => DynamicImage::ImageLumaA8(
            image::GrayAlphaImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
        ColorSpace::CMYK => DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
        _ => DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
    })
}

/// Whether zune-jpeg reads this four-component file as YCCK (Adobe APP14 transform 2).
fn zune_is_ycck(bytes: &[u8]) -> bool {
    let mut d = zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(bytes));
    d.decode_headers().is_ok()
        && d.input_colorspace() == Some(zune_core::colorspace::ColorSpace::YCCK)
}
