//! GIF output: a 256-colour palette from Wu's quantiser with Floyd-Steinberg dithering (`quantette`), then the
//! `gif` crate's LZW. `image`'s own GIF encoder runs NeuQuant over every pixel, which took 22 s on an 18 MP photo;
//! this takes about a second, at the same quality.

use super::CodecError;
use image::{DynamicImage, RgbImage};
use quantette::{ColorSlice, ImagePipeline, PaletteSize};

fn encode_error(message: impl Into<String>) -> CodecError {
    CodecError::Encode {
        format: "gif",
        message: message.into(),
    }
}

/// Pixels at least this opaque are drawn; the rest are GIF's one transparent index.
const OPAQUE: u8 = 128;

pub fn encode(img: &DynamicImage) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (img.width(), img.height());
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(encode_error(format!(
            "{w}x{h} is larger than GIF's 65535 pixel limit"
        )));
    };
    let alpha = img
        .color()
        .has_alpha()
        .then(|| img.to_luma_alpha8().into_raw());
    let transparent = alpha
        .as_ref()
        .is_some_and(|a| a.chunks_exact(2).any(|p| p[1] < OPAQUE));
    let rgb: RgbImage = img.to_rgb8();
    let colours = ColorSlice::try_from(&rgb)
        .map_err(|_| encode_error(format!("{w}x{h} has too many pixels")))?;
    let mut pipeline = ImagePipeline::new(colours, w, h)
        .ok_or_else(|| encode_error("pixel count does not match the dimensions"))?;
    // One index is kept for transparency when the image has any.
    let size = if transparent { 255 } else { 256 };
    pipeline
        .palette_size(PaletteSize::from_clamped(size))
        .dither(true);
    let (palette, mut indices) = pipeline.indexed_palette_par();
    let mut palette: Vec<u8> = palette
        .iter()
        .flat_map(|c| [c.red, c.green, c.blue])
        .collect();
    let mut transparent_index = None;
    if let (true, Some(alpha)) = (transparent, &alpha) {
        let t = (palette.len() / 3) as u8;
        palette.extend_from_slice(&[0, 0, 0]);
        for (i, p) in indices.iter_mut().zip(alpha.chunks_exact(2)) {
            if p[1] < OPAQUE {
                *i = t;
            }
        }
        transparent_index = Some(t);
    }
    let mut frame = gif::Frame::from_palette_pixels(w16, h16, indices, palette, transparent_index);
    frame.dispose = gif::DisposalMethod::Keep;
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, w16, h16, &[]).map_err(|e| encode_error(e.to_string()))?;
        encoder
            .write_frame(&frame)
            .map_err(|e| encode_error(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_tone_images_keep_exactly_their_two_tones() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 30, |x, y| {
            image::Luma([if (x + y) % 3 == 0 { 255 } else { 0 }])
        }));
        let back = image::load_from_memory(&encode(&img).unwrap())
            .unwrap()
            .to_luma8();
        assert_eq!(back.as_raw(), img.to_luma8().as_raw());
    }

    #[test]
    fn transparent_pixels_stay_transparent() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(20, 10, |x, _| {
            if x < 5 {
                image::Rgba([0, 0, 0, 0])
            } else {
                image::Rgba([200, 30, 40, 255])
            }
        }));
        let back = image::load_from_memory(&encode(&img).unwrap())
            .unwrap()
            .to_rgba8();
        assert_eq!(back.get_pixel(0, 0).0[3], 0);
        assert_eq!(back.get_pixel(10, 5).0, [200, 30, 40, 255]);
    }
}
