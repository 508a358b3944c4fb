//! Rotation by any angle, clockwise, on a canvas enlarged to the rotated image's bounding box.

use crate::iiif::rotation::rotated_dims;
use image::{DynamicImage, Rgba, RgbaImage};

/// Rotate clockwise by `degrees` in [0, 360). Multiples of 90 are exact pixel moves. Other angles give a canvas of
/// `rotated_dims`, sampled bilinearly, with the uncovered corners transparent when `transparent` (the output gets
/// an alpha channel) and white otherwise. Gray stays gray.
pub fn rotate(img: &DynamicImage, degrees: f64, transparent: bool) -> DynamicImage {
    let d = degrees.rem_euclid(360.0);
    if d == 0.0 {
        return img.clone();
    } else if d == 90.0 {
        return img.rotate90();
    } else if d == 180.0 {
        return img.rotate180();
    } else if d == 270.0 {
        return img.rotate270();
    }
    let src = img.to_rgba8();
    let (sw, sh) = src.dimensions();
    let (dw, dh) = rotated_dims(sw, sh, d);
    let (sin, cos) = d.to_radians().sin_cos();
    let (scx, scy) = (sw as f64 / 2.0, sh as f64 / 2.0);
    let (dcx, dcy) = (dw as f64 / 2.0, dh as f64 / 2.0);
    // Premultiplied bilinear sampling, so transparent outside pixels do not darken the edges.
    let sample = |x: f64, y: f64| -> [f64; 4] {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let mut acc = [0.0; 4];
        for (dx, dy, wgt) in [
            (0.0, 0.0, (1.0 - fx) * (1.0 - fy)),
            (1.0, 0.0, fx * (1.0 - fy)),
            (0.0, 1.0, (1.0 - fx) * fy),
            (1.0, 1.0, fx * fy),
        ] {
            let (px, py) = (x0 + dx, y0 + dy);
            if wgt == 0.0 || px < 0.0 || py < 0.0 || px >= sw as f64 || py >= sh as f64 {
                continue;
            }
            let p = src.get_pixel(px as u32, py as u32).0;
            let a = p[3] as f64 / 255.0 * wgt;
            for c in 0..3 {
                acc[c] += p[c] as f64 * a;
            }
            acc[3] += a;
        }
        acc
    };
    let mut out = RgbaImage::new(dw, dh);
    for (x, y, px) in out.enumerate_pixels_mut() {
        // Inverse of a clockwise turn (y points down), about the pixel centres.
        let (ox, oy) = (x as f64 + 0.5 - dcx, y as f64 + 0.5 - dcy);
        let sx = ox * cos + oy * sin + scx - 0.5;
        let sy = -ox * sin + oy * cos + scy - 0.5;
        let [r, g, b, a] = sample(sx, sy);
        *px = if transparent {
            if a > 0.0 {
                Rgba([
                    (r / a).round().clamp(0.0, 255.0) as u8,
                    (g / a).round().clamp(0.0, 255.0) as u8,
                    (b / a).round().clamp(0.0, 255.0) as u8,
                    (a * 255.0).round().clamp(0.0, 255.0) as u8,
                ])
            } else {
                Rgba([0, 0, 0, 0])
            }
        } else {
            // Composite over white.
            let white = (1.0 - a) * 255.0;
            Rgba([
                (r + white).round().clamp(0.0, 255.0) as u8,
                (g + white).round().clamp(0.0, 255.0) as u8,
                (b + white).round().clamp(0.0, 255.0) as u8,
                255,
            ])
        };
    }
    let gray = matches!(
        img,
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_)
    );
    let out = DynamicImage::ImageRgba8(out);
    match (gray, transparent) {
        (true, true) => DynamicImage::ImageLumaA8(out.to_luma_alpha8()),
        (true, false) => DynamicImage::ImageLuma8(out.to_luma8()),
        (false, true) => out,
        (false, false) => DynamicImage::ImageRgb8(out.to_rgb8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([200, 0, 0])))
    }

    #[test]
    fn quarter_turns_move_pixels_exactly() {
        let mut img = image::RgbImage::new(3, 2);
        img.put_pixel(0, 0, image::Rgb([255, 255, 255]));
        let r = rotate(&DynamicImage::ImageRgb8(img), 90.0, false).to_rgb8();
        assert_eq!(r.dimensions(), (2, 3));
        // Clockwise: the top-left corner goes to the top-right.
        assert_eq!(r.get_pixel(1, 0).0, [255, 255, 255]);
    }

    #[test]
    fn arbitrary_angles_enlarge_the_canvas() {
        let r = rotate(&red(300, 200), 45.0, true);
        assert_eq!((r.width(), r.height()), rotated_dims(300, 200, 45.0));
        let rgba = r.to_rgba8();
        assert_eq!(rgba.get_pixel(0, 0).0[3], 0, "corner transparent");
        let c = rgba.get_pixel(r.width() / 2, r.height() / 2).0;
        assert_eq!(c, [200, 0, 0, 255], "centre keeps the image");

        let w = rotate(&red(300, 200), 30.0, false);
        assert!(!w.color().has_alpha());
        assert_eq!(
            w.to_rgb8().get_pixel(0, 0).0,
            [255, 255, 255],
            "corner white"
        );
    }

    #[test]
    fn gray_stays_gray() {
        let g = DynamicImage::ImageLuma8(image::GrayImage::new(10, 10));
        assert!(matches!(
            rotate(&g, 10.0, false),
            DynamicImage::ImageLuma8(_)
        ));
        assert!(matches!(
            rotate(&g, 10.0, true),
            DynamicImage::ImageLumaA8(_)
        ));
    }
}
