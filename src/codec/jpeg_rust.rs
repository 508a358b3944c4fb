//! The `jpeg` interface in pure Rust (`--no-default-features --features pure-rust`): zune-jpeg at full size,
//! jpeg-decoder for DCT-scaled decodes, jpeg-encoder.

use super::jpeg;
use super::metadata::JpegHeader;
use super::CodecError;
use image::DynamicImage;

/// Decode at 1/`denom` of the frame. jpeg-decoder scales only grey and YCbCr/RGB frames; anything else, and any
/// file it refuses, is decoded by zune-jpeg at full size (strict unless damage is accepted, so a damaged file
/// fails here as it does with libjpeg-turbo).
pub fn decode(
    bytes: &[u8],
    header: &JpegHeader,
    denom: u32,
    accept_damaged: bool,
) -> Result<DynamicImage, CodecError> {
    if denom > 1 && matches!(header.components, 1 | 3) {
        if let Some(image) = decode_scaled(bytes, header, denom) {
            return Ok(image);
        }
    }
    jpeg::decode_zune(bytes, header, !accept_damaged)
}

/// `None` when jpeg-decoder cannot give the pixels at this scale.
fn decode_scaled(bytes: &[u8], header: &JpegHeader, denom: u32) -> Option<DynamicImage> {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    // jpeg-decoder picks the smallest scale covering either side; asking for exactly 1/denom of both gives it.
    let side = |v: u32| u16::try_from(v.div_ceil(denom)).ok();
    let (w, h) = d.scale(side(header.width)?, side(header.height)?).ok()?;
    let (w, h) = (u32::from(w), u32::from(h));
    let format = d.info()?.pixel_format;
    let data = d.decode().ok()?;
    match format {
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(w, h, data).map(DynamicImage::ImageLuma8)
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            image::RgbImage::from_raw(w, h, data).map(DynamicImage::ImageRgb8)
        }
        _ => None,
    }
}

/// Encode Rgb8 or Luma8 at `quality` (1 to 100).
pub fn encode(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, CodecError> {
    let err = |e: jpeg_encoder::EncodingError| CodecError::Encode {
        format: "jpeg",
        message: e.to_string(),
    };
    // The caller checked both sides against JPEG's 65535 limit.
    let (w, h) = (img.width() as u16, img.height() as u16);
    let (pixels, color) = match img {
        DynamicImage::ImageLuma8(g) => (g.as_raw(), jpeg_encoder::ColorType::Luma),
        DynamicImage::ImageRgb8(rgb) => (rgb.as_raw(), jpeg_encoder::ColorType::Rgb),
        other => {
            return Err(CodecError::Encode {
                format: "jpeg",
                message: format!("pixel format {:?} is not Rgb8 or Luma8", other.color()),
            })
        }
    };
    // A guess at the output size, reserved fallibly: input sizes drive it.
    let want = (w as usize * h as usize) / 4 + 1024;
    let mut out = Vec::new();
    out.try_reserve_exact(want)
        .map_err(|_| CodecError::OutOfMemory {
            what: "jpeg output",
            bytes: want,
        })?;
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(pixels, w, h, color)
        .map_err(err)?;
    Ok(out)
}
