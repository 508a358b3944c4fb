//! go-iiif's blurhash service (buckket/go-blurhash, the standard BlurHash encoding).
//!
//! go-iiif first fits the source into `size` x `size` (nfnt Lanczos3 thumbnail, never enlarging); the caller
//! does that. Components outside 1..=9 are clamped, where go-blurhash returns an error.

use image::RgbImage;
use std::f64::consts::PI;
use std::sync::OnceLock;

const BASE83: &[u8; 83] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/// The blurhash of `img` with `x` by `y` components (go-iiif first resizes to `size` px; the caller does that).
pub fn encode(img: &RgbImage, x: u32, y: u32) -> String {
    let xc = x.clamp(1, 9) as usize;
    let yc = y.clamp(1, 9) as usize;
    let factors = basis_factors(img, xc, yc);

    let mut out = String::with_capacity(4 + 2 * xc * yc);
    push_base83(&mut out, ((xc - 1) + (yc - 1) * 9) as u32, 1);

    let ac = &factors[1..];
    let (quantised_max, max_value) = if ac.is_empty() {
        (0, 1.0)
    } else {
        let actual = ac.iter().flatten().fold(0.0f64, |m, v| v.abs().max(m));
        let q = (actual * 166.0 - 0.5).floor().clamp(0.0, 82.0) as u32;
        (q, (f64::from(q) + 1.0) / 166.0)
    };
    push_base83(&mut out, quantised_max, 1);

    let [r, g, b] = factors[0];
    push_base83(
        &mut out,
        (linear_to_srgb(r) << 16) + (linear_to_srgb(g) << 8) + linear_to_srgb(b),
        4,
    );

    for f in ac {
        let quant = |v: f64| {
            (sign_pow(v / max_value, 0.5) * 9.0 + 9.5)
                .floor()
                .clamp(0.0, 18.0) as u32
        };
        push_base83(
            &mut out,
            quant(f[0]) * 19 * 19 + quant(f[1]) * 19 + quant(f[2]),
            2,
        );
    }
    out
}

/// The DCT-like factors, component (0,0) first then x fastest, accumulated per pixel in go-blurhash's order so
/// rounding at quantisation edges agrees with it.
fn basis_factors(img: &RgbImage, xc: usize, yc: usize) -> Vec<[f64; 3]> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut factors = vec![[0.0f64; 3]; xc * yc];
    if w == 0 || h == 0 {
        return factors;
    }
    let cos_table = |n: usize, len: usize| -> Vec<Vec<f64>> {
        (0..n)
            .map(|c| {
                (0..len)
                    .map(|i| (PI * c as f64 * i as f64 / len as f64).cos())
                    .collect()
            })
            .collect()
    };
    let xv = cos_table(xc, w);
    let yv = cos_table(yc, h);
    let lin = srgb_to_linear_table();
    let area = (w * h) as f64;
    let (dc_scale, ac_scale) = (1.0 / area, 2.0 / area);
    for (px, py, p) in img.enumerate_pixels() {
        let (px, py) = (px as usize, py as usize);
        let l = [lin[p[0] as usize], lin[p[1] as usize], lin[p[2] as usize]];
        for j in 0..yc {
            for i in 0..xc {
                let scale = if i == 0 && j == 0 { dc_scale } else { ac_scale };
                let basis = xv[i][px] * yv[j][py];
                let f = &mut factors[i + j * xc];
                for c in 0..3 {
                    f[c] += l[c] * basis * scale;
                }
            }
        }
    }
    factors
}

fn srgb_to_linear_table() -> &'static [f64; 256] {
    static TABLE: OnceLock<[f64; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let v = i as f64 / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        })
    })
}

fn linear_to_srgb(value: f64) -> u32 {
    let v = value.clamp(0.0, 1.0);
    if v <= 0.0031308 {
        (v * 12.92 * 255.0 + 0.5) as u32
    } else {
        ((1.055 * v.powf(1.0 / 2.4) - 0.055) * 255.0 + 0.5) as u32
    }
}

fn sign_pow(v: f64, exp: f64) -> f64 {
    v.abs().powf(exp).copysign(v)
}

fn push_base83(out: &mut String, value: u32, len: u32) {
    for i in (0..len).rev() {
        let digit = (value / 83u32.pow(i)) % 83;
        out.push(BASE83[digit as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A smooth, asymmetric test picture: red rising to the right, green downwards, blue on a diagonal wave.
    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let r = (x * 255 / w.max(2).saturating_sub(1).max(1)).min(255) as u8;
            let g = (y * 255 / h.max(2).saturating_sub(1).max(1)).min(255) as u8;
            let b = (((x + 2 * y) as f64 / 7.0).sin() * 100.0 + 128.0) as u8;
            Rgb([r, g, b])
        })
    }

    #[test]
    fn black_image_matches_go_blurhash() {
        // go-blurhash's own test: an empty (all-zero) 100x100 image at 4x3.
        let img = RgbImage::new(100, 100);
        assert_eq!(encode(&img, 4, 3), "L00000fQfQfQfQfQfQfQfQfQfQfQ");
    }

    #[test]
    fn matches_reference_encoder() {
        // Vectors from the reference Python `blurhash` package on the same generated pictures.
        assert_eq!(encode(&gradient(64, 48), 4, 3), REF_64X48_4X3);
        assert_eq!(encode(&gradient(200, 133), 8, 8), REF_200X133_8X8);
        assert_eq!(encode(&gradient(31, 77), 1, 1), REF_31X77_1X1);
    }

    #[test]
    fn length_and_size_flag() {
        let img = gradient(20, 10);
        for (x, y) in [(1, 1), (4, 3), (9, 9), (8, 8)] {
            let h = encode(&img, x, y);
            assert_eq!(h.len(), 4 + 2 * (x * y) as usize);
            let flag = BASE83.iter().position(|&c| c == h.as_bytes()[0]).unwrap() as u32;
            assert_eq!(flag, (x - 1) + (y - 1) * 9);
        }
        // Out-of-range components are clamped rather than refused.
        assert_eq!(encode(&img, 0, 12), encode(&img, 1, 9));
    }

    #[test]
    fn tiny_images_do_not_panic() {
        let one = RgbImage::from_pixel(1, 1, Rgb([200, 100, 50]));
        assert_eq!(encode(&one, 4, 3).len(), 28);
        assert_eq!(encode(&RgbImage::new(0, 0), 4, 3).len(), 28);
    }

    const REF_64X48_4X3: &str = "L$HVC*2Y$7Shl|ayjsfAgefjfTfl";
    const REF_200X133_8X8: &str = ":%HV9v2Y$5Sgo1W;jtbHhpazfQf7fQf7fQf7gcfQfQfQfQfQfQfQi~a|fQfQfQfQfQfRf%fQfQfQfQfQfQfQjIa|fQfQfQfQfQfRfjfQfQfQfQfQfQfQjba|fQfQfQfQfQfR";
    const REF_31X77_1X1: &str = "00HeqL";
}
