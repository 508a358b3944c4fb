//! go-iiif's `crisp` quality: sharpen after resize.

use crate::iiif::Crisp;
use image::DynamicImage;

/// go-iiif's crisp: an unsharp mask (Gaussian of sigma `radius`, strength `amount`), then a median filter of
/// `median` radius. go-iiif's default median radius, 0.025, is below half a pixel and so leaves pixels alone;
/// a median radius r >= 0.5 uses a (2*round(r)+1)-pixel square window.
pub fn crisp(img: &DynamicImage, settings: &Crisp) -> DynamicImage {
    let original = img.to_rgba8();
    let blurred = if settings.radius > 0.0 {
        image::imageops::blur(&original, settings.radius as f32)
    } else {
        original.clone()
    };
    let amount = settings.amount as f32;
    let mut sharp = original.clone();
    for (o, (s, b)) in sharp
        .pixels_mut()
        .zip(original.pixels().zip(blurred.pixels()))
    {
        for c in 0..3 {
            let v = s.0[c] as f32 + amount * (s.0[c] as f32 - b.0[c] as f32);
            o.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    let r = settings.median.round() as u32;
    if r >= 1 {
        sharp = median(&sharp, r);
    }
    let out = DynamicImage::ImageRgba8(sharp);
    match img {
        DynamicImage::ImageLuma8(_) => DynamicImage::ImageLuma8(out.to_luma8()),
        DynamicImage::ImageLumaA8(_) => DynamicImage::ImageLumaA8(out.to_luma_alpha8()),
        DynamicImage::ImageRgb8(_) => DynamicImage::ImageRgb8(out.to_rgb8()),
        _ => out,
    }
}

fn median(img: &image::RgbaImage, r: u32) -> image::RgbaImage {
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    let mut window: Vec<u8> = Vec::with_capacity(((2 * r + 1) * (2 * r + 1)) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                window.clear();
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        window.push(img.get_pixel(xx, yy).0[c]);
                    }
                }
                let mid = window.len() / 2;
                out.get_pixel_mut(x, y).0[c] = *window.select_nth_unstable(mid).1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharpening_raises_edge_contrast() {
        // A soft step from 80 to 170.
        let img = image::GrayImage::from_fn(40, 10, |x, _| {
            image::Luma([(80 + (x.min(30).saturating_sub(10)) * 9 / 2) as u8])
        });
        let img = DynamicImage::ImageLuma8(img);
        let out = crisp(&img, &Crisp::default()).to_luma8();
        let spread = |i: &image::GrayImage| {
            let (mut lo, mut hi) = (255u8, 0u8);
            i.pixels().for_each(|p| {
                lo = lo.min(p.0[0]);
                hi = hi.max(p.0[0]);
            });
            hi - lo
        };
        assert!(
            spread(&out) > spread(&img.to_luma8()),
            "unsharp mask overshoots at the edge"
        );
        assert_eq!(out.dimensions(), (40, 10));
    }

    #[test]
    fn median_removes_a_speck() {
        let mut img = image::RgbaImage::from_pixel(9, 9, image::Rgba([100, 100, 100, 255]));
        img.put_pixel(4, 4, image::Rgba([255, 255, 255, 255]));
        assert_eq!(median(&img, 1).get_pixel(4, 4).0[0], 100);
    }
}
