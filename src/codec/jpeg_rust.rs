//! The `jpeg` interface in pure Rust (`--no-default-features --features pure-rust`): zune-jpeg, jpeg-encoder.

use super::jpeg;
use super::metadata::JpegHeader;
use super::CodecError;
use image::DynamicImage;

/// Decode the full frame with zune-jpeg, strict unless damage is accepted (so a damaged file fails here as it
/// does with libjpeg-turbo).
pub fn decode(
    bytes: &[u8],
    header: &JpegHeader,
    accept_damaged: bool,
) -> Result<DynamicImage, CodecError> {
    jpeg::decode_zune(bytes, header, !accept_damaged)
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
