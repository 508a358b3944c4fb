//! go-colours' `marekm4` extruder: marekm4/color-extractor 1.2.1's `ExtractColors`.
//!
//! Pixels (every `width / 224`-th column and `height / 224`-th row, truncated, at least every one) fall into eight
//! buckets by the top bit of each channel; each bucket's mean colour is reported, most populous first, leaving out
//! buckets with 1% of the samples or fewer. The sums are of whole numbers, so they are exact whatever the order.

use image::RgbImage;

/// The samples taken along one axis are at most this many, give or take the truncation of the step.
const DOWN_SIZE_TO: f64 = 224.0;
/// A bucket needs more than this share of the samples to be reported.
const SMALL_BUCKET: f64 = 0.01;

/// The bucket colours of `img`, most populous first, at most `limit` of them.
pub fn colours(img: &RgbImage, limit: usize) -> Vec<[u8; 3]> {
    let (w, h) = img.dimensions();
    // Go's int(math.Max(w / 224, 1)): truncation.
    let step = |len: u32| (f64::from(len) / DOWN_SIZE_TO).max(1.0) as usize;
    let (step_x, step_y) = (step(w), step(h));
    // [sum r, sum g, sum b, count] per bucket, indexed r-bit, g-bit, b-bit.
    let mut buckets = [[0.0f64; 4]; 8];
    let mut total = 0.0f64;
    for x in (0..w).step_by(step_x) {
        for y in (0..h).step_by(step_y) {
            let p = img.get_pixel(x, y).0;
            let b = &mut buckets[usize::from(p[0] >> 7) << 2
                | usize::from(p[1] >> 7) << 1
                | usize::from(p[2] >> 7)];
            for (sum, v) in b.iter_mut().zip(p) {
                *sum += f64::from(v);
            }
            b[3] += 1.0;
            total += 1.0;
        }
    }
    let mut averages: Vec<[f64; 4]> = buckets
        .iter()
        .filter(|b| b[3] > 0.0)
        .map(|b| [b[0] / b[3], b[1] / b[3], b[2] / b[3], b[3]])
        .collect();
    // Go sorts these (at most eight) with an insertion sort, which keeps equal counts in bucket order: stable.
    averages.sort_by(|a, b| b[3].total_cmp(&a[3]));
    averages
        .iter()
        .filter(|a| a[3] / total > SMALL_BUCKET)
        .take(limit)
        // math.Round: halves away from zero, as f64::round.
        .map(|a| [a[0], a[1], a[2]].map(|v| v.round() as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn buckets_average_and_order_by_population() {
        // Three quarters dark red-ish in two shades, one quarter light blue.
        let img = RgbImage::from_fn(8, 8, |x, y| match (x < 6, y % 2) {
            (true, 0) => Rgb([200, 10, 20]),
            (true, _) => Rgb([201, 11, 20]),
            _ => Rgb([10, 20, 250]),
        });
        // (200 + 201) / 2 = 200.5 rounds away from zero.
        assert_eq!(colours(&img, 5), [[201, 11, 20], [10, 20, 250]]);
        assert_eq!(colours(&img, 1), [[201, 11, 20]]);
        assert!(colours(&img, 0).is_empty());
    }

    #[test]
    fn equal_buckets_keep_bucket_order_and_small_ones_are_dropped() {
        // Two equal halves: the bucket with the lower index (black-ish before white-ish) comes first.
        let img = RgbImage::from_fn(
            10,
            10,
            |x, _| if x < 5 { Rgb([255; 3]) } else { Rgb([0; 3]) },
        );
        assert_eq!(colours(&img, 5), [[0; 3], [255; 3]]);
        // One pixel in 100 is exactly 1%: not more than the threshold, so left out.
        let img = RgbImage::from_fn(10, 10, |x, y| {
            if (x, y) == (0, 0) {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        assert_eq!(colours(&img, 5), [[0, 0, 255]]);
    }

    #[test]
    fn large_images_are_sampled_with_a_step() {
        // 448 wide: every second column. Odd columns are red and never sampled.
        let img = RgbImage::from_fn(448, 3, |x, _| {
            if x % 2 == 1 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 255, 0])
            }
        });
        assert_eq!(colours(&img, 5), [[0, 255, 0]]);
    }

    #[test]
    fn empty_images_give_nothing() {
        assert!(colours(&RgbImage::new(0, 0), 5).is_empty());
        assert!(colours(&RgbImage::new(0, 7), 5).is_empty());
    }
}
