//! go-iiif's imagehash service: 64-bit average and difference hashes, printed as go-iiif prints them.
//!
//! As corona10/goimagehash computes them: nfnt/resize's Bilinear to 8x8 (average) or 9x8 (difference) with its
//! 8-bit fixed-point weights, grey = 0.299 R + 0.587 G + 0.114 B, and bit 63 for the first pixel (row-major), so
//! the hex reads in pixel order. Printed `a:` / `d:` and 16 lower-case hex digits.

use image::RgbImage;

/// go-iiif's `average` hash, e.g. `a:ffc3810000183cff`.
pub fn average(img: &RgbImage) -> String {
    format!("a:{:016x}", average_bits(img))
}

/// go-iiif's `difference` hash, e.g. `d:...`.
pub fn difference(img: &RgbImage) -> String {
    format!("d:{:016x}", difference_bits(img))
}

/// A bit is set where the pixel is brighter than the mean of all 64.
fn average_bits(img: &RgbImage) -> u64 {
    let Some(grey) = grey_resized(img, 8, 8) else {
        return 0;
    };
    let mean = grey.iter().sum::<f64>() / 64.0;
    grey.iter()
        .enumerate()
        .filter(|&(_, &p)| p > mean)
        .fold(0, |h, (i, _)| h | 1 << (63 - i))
}

/// A bit is set where a pixel is darker than its right-hand neighbour.
fn difference_bits(img: &RgbImage) -> u64 {
    let Some(grey) = grey_resized(img, 9, 8) else {
        return 0;
    };
    let mut h = 0u64;
    for row in 0..8 {
        for col in 0..8 {
            if grey[row * 9 + col] < grey[row * 9 + col + 1] {
                h |= 1 << (63 - (row * 8 + col));
            }
        }
    }
    h
}

/// Row-major grey values of `img` resized to `w` x `h`; None for an empty image (where goimagehash would panic).
fn grey_resized(img: &RgbImage, w: u32, h: u32) -> Option<Vec<f64>> {
    if img.width() == 0 || img.height() == 0 {
        return None;
    }
    let rgb = nfnt_bilinear(img, w, h);
    Some(
        rgb.iter()
            .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .collect(),
    )
}

/// One pass's weights as nfnt's `createWeights8`: for each output index, the first source index and
/// `taps` coefficients in 1/256.
struct Weights {
    taps: usize,
    start: Vec<i64>,
    coeffs: Vec<i32>,
}

fn weights8(out_len: usize, scale: f64) -> Weights {
    // Bilinear has two taps, widened by the downscale factor so every source pixel contributes.
    let taps = 2 * scale.ceil().max(1.0) as usize;
    let factor = (1.0 / scale).min(1.0);
    let mut start = Vec::with_capacity(out_len);
    let mut coeffs = Vec::with_capacity(out_len * taps);
    for y in 0..out_len {
        let interp = scale * (y as f64 + 0.5) - 0.5;
        // Go's int(): truncation toward zero.
        let s = interp as i64 - (taps / 2) as i64 + 1;
        let frac = interp - s as f64;
        start.push(s);
        for i in 0..taps {
            let t = ((frac - i as f64) * factor).abs();
            let k = if t <= 1.0 { 1.0 - t } else { 0.0 };
            // int16(k * 256): truncation.
            coeffs.push((k * 256.0) as i32);
        }
    }
    Weights {
        taps,
        start,
        coeffs,
    }
}

/// Resample one line of pixels with clamped edges and nfnt's truncating integer division.
fn resample_line(line: &[[u8; 3]], w: &Weights, out: &mut Vec<[u8; 3]>) {
    let max = line.len() as i64 - 1;
    for (y, &s) in w.start.iter().enumerate() {
        let mut acc = [0i32; 3];
        let mut sum = 0i32;
        for i in 0..w.taps {
            let c = w.coeffs[y * w.taps + i];
            if c != 0 {
                let p = line[(s + i as i64).clamp(0, max) as usize];
                for k in 0..3 {
                    acc[k] += c * i32::from(p[k]);
                }
                sum += c;
            }
        }
        out.push(acc.map(|a| {
            if sum == 0 {
                0
            } else {
                (a / sum).clamp(0, 255) as u8
            }
        }));
    }
}

/// nfnt/resize `Resize(w, h, img, Bilinear)` on an 8-bit RGBA image: horizontal pass then vertical pass, each
/// rounded to 8 bits; an image already of the target size is used as is. Returns row-major pixels.
fn nfnt_bilinear(img: &RgbImage, w: u32, h: u32) -> Vec<[u8; 3]> {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let px = |x: usize, y: usize| {
        let p = img.get_pixel(x as u32, y as u32);
        [p[0], p[1], p[2]]
    };
    if (iw, ih) == (w as usize, h as usize) {
        return (0..ih)
            .flat_map(|y| (0..iw).map(move |x| px(x, y)))
            .collect();
    }
    let (w, h) = (w as usize, h as usize);
    let wx = weights8(w, iw as f64 / w as f64);
    let wy = weights8(h, ih as f64 / h as f64);
    // First pass: each source row to `w` columns, stored column-major (nfnt transposes here).
    let mut line = Vec::with_capacity(iw.max(ih));
    let mut rows = Vec::with_capacity(ih * w);
    for y in 0..ih {
        line.clear();
        line.extend((0..iw).map(|x| px(x, y)));
        resample_line(&line, &wx, &mut rows);
    }
    // Second pass: each output column down to `h` rows.
    let mut cols = Vec::with_capacity(w * h);
    for x in 0..w {
        line.clear();
        line.extend((0..ih).map(|y| rows[y * w + x]));
        resample_line(&line, &wy, &mut cols);
    }
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| cols[x * h + y])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn grey(v: u8) -> Rgb<u8> {
        Rgb([v, v, v])
    }

    #[test]
    fn average_of_exact_size_reads_in_pixel_order() {
        // Left half white, right half black, at 8x8 (no resampling): each row is 11110000.
        let img = RgbImage::from_fn(8, 8, |x, _| grey(if x < 4 { 255 } else { 0 }));
        assert_eq!(average(&img), "a:f0f0f0f0f0f0f0f0");
        // Only the top-left pixel bright: the most significant bit.
        let img = RgbImage::from_fn(8, 8, |x, y| grey(if x == 0 && y == 0 { 200 } else { 10 }));
        assert_eq!(average(&img), "a:8000000000000000");
    }

    #[test]
    fn bit_order_agrees_with_python_imagehash() {
        // At exact size no resampling happens and grey levels are exact, so the Python `imagehash` package's
        // average_hash and dhash give the same hex for this pattern (same row-major, most-significant-first order;
        // its dhash tests right > left, the same as left < right here).
        let mk = |w, h| RgbImage::from_fn(w, h, |x, y| grey((((x * 7 + y * 13) % 11) * 23) as u8));
        assert_eq!(average(&mk(8, 8)), "a:5a492da496d24b69");
        assert_eq!(difference(&mk(9, 8)), "d:a492524929249492");
    }

    #[test]
    fn difference_sets_bits_where_brightness_rises() {
        let rising = RgbImage::from_fn(9, 8, |x, _| grey((x * 30) as u8));
        assert_eq!(difference(&rising), "d:ffffffffffffffff");
        let falling = RgbImage::from_fn(9, 8, |x, _| grey(255 - (x * 30) as u8));
        assert_eq!(difference(&falling), "d:0000000000000000");
        // Only the first row's first step rises.
        let img = RgbImage::from_fn(9, 8, |x, y| grey(if x == 1 && y == 0 { 100 } else { 50 }));
        assert_eq!(difference(&img), "d:8000000000000000");
    }

    #[test]
    fn resampling_matches_nfnt_weights() {
        // 16 -> 8 halves: two-tap Bilinear widened to four taps, unnormalised (the sum divides later).
        let w = weights8(8, 2.0);
        assert_eq!(w.taps, 4);
        assert_eq!(&w.coeffs[4..8], &[64, 192, 192, 64]);
        assert_eq!(w.start[1], 1);
        // A flat image stays flat through both passes.
        let flat = RgbImage::from_pixel(37, 23, Rgb([90, 140, 200]));
        assert!(nfnt_bilinear(&flat, 9, 8)
            .iter()
            .all(|p| *p == [90, 140, 200]));
        // Upscaling a single pixel repeats it.
        let one = RgbImage::from_pixel(1, 1, Rgb([7, 8, 9]));
        assert!(nfnt_bilinear(&one, 8, 8).iter().all(|p| *p == [7, 8, 9]));
    }

    #[test]
    fn halves_of_a_larger_image() {
        // 64x64 with the left half white: resampled columns 0..3 stay bright, 4..7 dark.
        let img = RgbImage::from_fn(64, 64, |x, _| grey(if x < 32 { 255 } else { 0 }));
        assert_eq!(average(&img), "a:f0f0f0f0f0f0f0f0");
        // Top half white: the first four rows set.
        let img = RgbImage::from_fn(64, 48, |_, y| grey(if y < 24 { 255 } else { 0 }));
        assert_eq!(average(&img), "a:ffffffff00000000");
        // A horizontal ramp rises everywhere.
        let img = RgbImage::from_fn(90, 40, |x, _| grey((x * 255 / 89) as u8));
        assert_eq!(difference(&img), "d:ffffffffffffffff");
    }

    #[test]
    fn tiny_and_empty_images_do_not_panic() {
        let one = RgbImage::from_pixel(1, 1, Rgb([200, 10, 10]));
        // A flat image's bits hang on float rounding of the mean, as in goimagehash: here the summed mean lands
        // just below the grey value.
        assert_eq!(average(&one), "a:ffffffffffffffff");
        assert_eq!(difference(&one), "d:0000000000000000");
        let empty = RgbImage::new(0, 0);
        assert_eq!(average(&empty), "a:0000000000000000");
        let strip = RgbImage::from_fn(3, 1, |x, _| grey((x * 100) as u8));
        assert_eq!(average(&strip).len(), 18);
        assert_eq!(difference(&strip).len(), 18);
    }
}
