//! go-iiif's `dither` quality: an Atkinson error-diffusion halftone.

use image::GrayImage;

/// Atkinson-dither a grayscale image: every output pixel is 0 or 255.
///
/// Atkinson passes on 6/8 of the error (1/8 to each of six neighbours), which keeps highlights and shadows clean
/// as the classic Macintosh halftone does. Errors accumulate in i16 rows (go-atkinson wraps around in u8, which
/// speckles bright areas; this does not).
pub fn atkinson(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = GrayImage::new(img.width(), img.height());
    if w == 0 || h == 0 {
        return out;
    }
    // Three rolling rows of pending error, padded by 2 on the right for x+1 and x+2.
    let mut rows = [vec![0i16; w + 3], vec![0i16; w + 3], vec![0i16; w + 3]];
    let src = img.as_raw();
    let dst: &mut [u8] = &mut out;
    for y in 0..h {
        let [cur, next, after] = &mut rows;
        for x in 0..w {
            let v = src[y * w + x] as i16 + cur[x + 1];
            let m: i16 = if v >= 128 { 255 } else { 0 };
            dst[y * w + x] = m as u8;
            let e = (v - m) / 8;
            cur[x + 2] += e;
            cur[x + 3] += e;
            next[x] += e;
            next[x + 1] += e;
            next[x + 2] += e;
            after[x + 1] += e;
        }
        rows.rotate_left(1);
        rows[2].iter_mut().for_each(|v| *v = 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_black_and_white_and_keeps_brightness() {
        for level in [0u8, 64, 128, 192, 255] {
            let img = GrayImage::from_pixel(64, 64, image::Luma([level]));
            let d = atkinson(&img);
            assert!(d.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
            let white = d.pixels().filter(|p| p.0[0] == 255).count() as f64 / (64.0 * 64.0);
            // Atkinson drops 1/4 of the error, so mid-tones drift a little towards the extremes.
            assert!(
                (white - level as f64 / 255.0).abs() < 0.12,
                "level {level}: {white}"
            );
        }
    }

    #[test]
    fn tiny_images() {
        assert_eq!(atkinson(&GrayImage::new(1, 1)).dimensions(), (1, 1));
        assert_eq!(atkinson(&GrayImage::new(0, 0)).dimensions(), (0, 0));
    }
}
