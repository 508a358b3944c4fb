//! go-iiif's smart crop (`-1,-1,W,H`): the most interesting window of a given size, in the spirit of smartcrop.js
//! (edges, skin tones, saturation). Callers pass a small analysis copy, never the full frame.

use image::RgbImage;

/// How much each feature counts, after smartcrop.js's weights (detail 0.2, skin 1.8, saturation 0.3), rescaled
/// because our detail measure is per pixel in [0, 1].
const DETAIL_WEIGHT: f32 = 1.0;
const SKIN_WEIGHT: f32 = 1.8;
const SATURATION_WEIGHT: f32 = 0.6;

/// The per-pixel interest map: luma edges, skin-like colour, and saturation of mid-bright pixels.
fn interest(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let luma: Vec<f32> = img
        .pixels()
        .map(|p| (0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32) / 255.0)
        .collect();
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let l = luma[i];
            // Laplacian with clamped borders.
            let at = |xx: usize, yy: usize| luma[yy * w + xx];
            let lap = 4.0 * l
                - at(x.saturating_sub(1), y)
                - at((x + 1).min(w - 1), y)
                - at(x, y.saturating_sub(1))
                - at(x, (y + 1).min(h - 1));
            let detail = lap.abs().min(1.0);

            let [r, g, b] = img.as_raw()[i * 3..i * 3 + 3] else {
                continue;
            };
            let (r, g, b) = (r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
            // Skin: closeness of the normalised colour to smartcrop.js's skin colour (0.78, 0.57, 0.44).
            let mag = (r * r + g * g + b * b).sqrt().max(1e-6);
            let d =
                ((r / mag - 0.78).powi(2) + (g / mag - 0.57).powi(2) + (b / mag - 0.44).powi(2))
                    .sqrt();
            let skin = if (0.2..=1.0).contains(&l) {
                (1.0 - d / 0.3).max(0.0)
            } else {
                0.0
            };
            let (mx, mn) = (r.max(g).max(b), r.min(g).min(b));
            let sat = if mx > 0.0 { (mx - mn) / mx } else { 0.0 };
            let saturation = if (0.05..=0.9).contains(&l) && sat > 0.4 {
                sat
            } else {
                0.0
            };
            out[i] = DETAIL_WEIGHT * detail + SKIN_WEIGHT * skin + SATURATION_WEIGHT * saturation;
        }
    }
    out
}

/// The top-left corner of the most interesting `crop_w` x `crop_h` window of `img`
/// (`crop_w <= img.width()`, `crop_h <= img.height()`; larger crops are clamped).
///
/// Windows are scored by the interest they hold, found with a summed-area table, over every position on a one
/// pixel grid; a window that holds its interest away from its own border wins ties, as smartcrop.js's
/// importance falloff does.
pub fn best_crop(img: &RgbImage, crop_w: u32, crop_h: u32) -> (u32, u32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (cw, ch) = (
        (crop_w as usize).clamp(1, w.max(1)),
        (crop_h as usize).clamp(1, h.max(1)),
    );
    if w == 0 || h == 0 || (cw == w && ch == h) {
        return (0, 0);
    }
    let map = interest(img);
    // Summed-area table with a zero row and column.
    let mut sat = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += map[y * w + x] as f64;
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    let sum = |x: usize, y: usize, ww: usize, hh: usize| {
        sat[(y + hh) * (w + 1) + x + ww] - sat[y * (w + 1) + x + ww] - sat[(y + hh) * (w + 1) + x]
            + sat[y * (w + 1) + x]
    };
    // The inner window: interest there counts twice, so subjects end up inside the crop rather than on its edge.
    let (mx, my) = (cw / 8, ch / 8);
    let mut best = (f64::MIN, 0usize, 0usize);
    for y in 0..=h - ch {
        for x in 0..=w - cw {
            let score = sum(x, y, cw, ch) + sum(x + mx, y + my, cw - 2 * mx, ch - 2 * my);
            if score > best.0 {
                best = (score, x, y);
            }
        }
    }
    (best.1 as u32, best.2 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat gray field with a textured orange subject at (sx, sy) of size s.
    fn scene(w: u32, h: u32, sx: u32, sy: u32, s: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if x >= sx && x < sx + s && y >= sy && y < sy + s {
                let t = ((x + y) % 4 * 30) as u8;
                image::Rgb([230 - t, 120 + t / 2, 40])
            } else {
                image::Rgb([60, 60, 60])
            }
        })
    }

    fn contains(pos: (u32, u32), cw: u32, ch: u32, sx: u32, sy: u32, s: u32) -> bool {
        pos.0 <= sx && pos.1 <= sy && pos.0 + cw >= sx + s && pos.1 + ch >= sy + s
    }

    #[test]
    fn finds_the_subject_anywhere() {
        for (sx, sy) in [(10, 40), (200, 40), (110, 5), (110, 80)] {
            let img = scene(256, 128, sx, sy, 40);
            let pos = best_crop(&img, 128, 128);
            assert!(
                contains(pos, 128, 128, sx, sy, 40),
                "subject at {sx},{sy}: crop at {pos:?}"
            );
        }
        for (sx, sy) in [(40, 10), (40, 200)] {
            let img = scene(128, 256, sx, sy, 40);
            let pos = best_crop(&img, 128, 100);
            assert!(
                contains(pos, 128, 100, sx, sy, 40),
                "subject at {sx},{sy}: crop at {pos:?}"
            );
        }
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        let img = RgbImage::new(1, 1);
        assert_eq!(best_crop(&img, 1, 1), (0, 0));
        assert_eq!(best_crop(&img, 5, 5), (0, 0));
        assert_eq!(best_crop(&RgbImage::new(0, 0), 1, 1), (0, 0));
        assert!(best_crop(&RgbImage::new(10, 10), 0, 0).0 <= 9);
    }
}
