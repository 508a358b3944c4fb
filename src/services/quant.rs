//! go-colours' `quant` extruder: soniakeys/quant 1.0's `mean.Quantizer(count).Palette`.
//!
//! Mean cut: the pixel list is split cluster by cluster, in two stages. Until half the clusters exist, the most
//! populous cluster is cut halfway between its mean and the end of its longer tail, in its widest channel; after
//! that the cluster with the largest population times colour volume is cut at its mean. Channels are Go's 16-bit
//! values (8-bit x 257) throughout, and each cluster reports its truncated 8-bit mean, in cluster order.

use image::RgbImage;

/// One cluster: a range of the shared pixel list, with its statistics.
#[derive(Clone, Copy, Debug, Default)]
struct Cluster {
    start: usize,
    end: usize,
    widest: usize,
    min: u32,
    max: u32,
    volume: u64,
    priority: u64,
}

/// Go's `int(uint64(p) * (volume >> 16) >> 29)`: the second stage's priority.
fn late_priority(priority: u64, volume: u64) -> u64 {
    priority.wrapping_mul(volume >> 16) >> 29
}

/// The palette of `img` in cluster order, at most `count` colours (fewer when clusters cannot be split).
pub fn colours(img: &RgbImage, count: usize) -> Vec<[u8; 3]> {
    if count == 0 || img.width() == 0 || img.height() == 0 {
        // Go divides by the empty cluster's size here and panics; no colours is the answer that cannot break.
        return Vec::new();
    }
    let mut px: Vec<[u32; 3]> = img
        .pixels()
        .map(|p| p.0.map(|c| u32::from(c) * 0x101))
        .collect();
    let mut cs = vec![Cluster::default(); count];
    cs[0].end = px.len();
    if count > 1 {
        cluster(&mut px, &mut cs);
    }
    cs.iter()
        .map(|c| {
            let part = &px[c.start..c.end];
            let n = (part.len() as u64) << 8;
            let mut sum = [0u64; 3];
            for p in part {
                for (s, v) in sum.iter_mut().zip(p) {
                    *s += u64::from(*v);
                }
            }
            sum.map(|s| (s / n.max(1)) as u8)
        })
        .collect()
}

fn cluster(px: &mut [[u32; 3]], cs: &mut Vec<Cluster>) {
    let half = cs.len() / 2;
    let mut cx = 0;
    set_priority(px, &mut cs[cx], cx < half);
    loop {
        let mut sx = None;
        let mut max_p = 0;
        for (x, c) in cs.iter().enumerate().take(cx + 1) {
            if c.max > c.min && c.priority > max_p {
                max_p = c.priority;
                sx = Some(x);
            }
        }
        let Some(sx) = sx else {
            cs.truncate(cx + 1);
            return;
        };
        let m = cut_value(px, &cs[sx], cx < half);
        cx += 1;
        let (kept, moved) = split(px, &cs[sx], m);
        cs[sx].end = kept;
        cs[cx].start = kept;
        cs[cx].end = moved;
        if cx == cs.len() - 1 {
            return;
        }
        if cx == half {
            for c in &mut cs[..cx] {
                c.priority = late_priority(c.priority, c.volume);
            }
        }
        set_priority(px, &mut cs[sx], cx < half);
        // Go computes the new cluster's statistics at the top of its loop, after the one above.
        set_priority(px, &mut cs[cx], cx < half);
    }
}

fn set_priority(px: &[[u32; 3]], c: &mut Cluster, early: bool) {
    let mut min = [u32::MAX; 3];
    let mut max = [0u32; 3];
    for p in &px[c.start..c.end] {
        for ((lo, hi), v) in min.iter_mut().zip(max.iter_mut()).zip(p) {
            *lo = (*lo).min(*v);
            *hi = (*hi).max(*v);
        }
    }
    let range = |k: usize| max[k].wrapping_sub(min[k]);
    // Green unless red, then blue, is strictly wider.
    let mut w = 1;
    if range(0) > range(w) {
        w = 0;
    }
    if range(2) > range(w) {
        w = 2;
    }
    c.widest = w;
    c.min = min[w];
    c.max = max[w];
    c.volume = u64::from(range(0))
        .wrapping_mul(u64::from(range(1)))
        .wrapping_mul(u64::from(range(2)));
    c.priority = (c.end - c.start) as u64;
    if !early {
        c.priority = late_priority(c.priority, c.volume);
    }
}

fn cut_value(px: &[[u32; 3]], c: &Cluster, early: bool) -> u32 {
    let part = &px[c.start..c.end];
    let sum: u64 = part.iter().map(|p| u64::from(p[c.widest])).sum();
    let mean = (sum / part.len().max(1) as u64) as u32;
    if !early {
        mean
    } else if c.max - mean > mean - c.min {
        (mean + c.max) / 2
    } else {
        (mean + c.min) / 2
    }
}

/// Partition the cluster's pixels in place exactly as Go does (swapping from the end), so the next cut sees the
/// same order. Returns where the moved part starts and the cluster's end.
fn split(px: &mut [[u32; 3]], c: &Cluster, m: u32) -> (usize, usize) {
    let part = &mut px[c.start..c.end];
    let mut i = 0usize;
    let mut remaining = part.len();
    while remaining > 0 {
        let v = part[i][c.widest];
        if v < m || (m == c.min && v == m) {
            i += 1;
        } else {
            part.swap(i, i + remaining - 1);
        }
        remaining -= 1;
    }
    (c.start + i, c.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn one_colour_asked_is_the_mean() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 101, 3])
            }
        });
        // (0 + 255*257) / 2 / 256 = 127.99… truncates to 127.
        assert_eq!(colours(&img, 1), [[127, 50, 1]]);
    }

    #[test]
    fn distinct_colours_as_go_colours_gives_them() {
        // Three bands; the values are go-colours 0.12.2's quant extruder on the same image.
        let img = RgbImage::from_fn(30, 10, |x, _| match x / 10 {
            0 => Rgb([250, 0, 0]),
            1 => Rgb([0, 250, 0]),
            _ => Rgb([0, 0, 250]),
        });
        // At 3, the second cut comes in the second stage, where red and blue together have no colour volume
        // (no green range), so they stay one cluster: their mean.
        assert_eq!(colours(&img, 3), [[125, 0, 125], [0, 250, 0]]);
        assert_eq!(colours(&img, 4), [[0, 0, 250], [0, 250, 0], [250, 0, 0]]);
        // More colours than the image has: the clusters stop when none can be split.
        assert_eq!(colours(&img, 8), [[0, 0, 250], [0, 250, 0], [250, 0, 0]]);
    }

    #[test]
    fn flat_and_empty_images() {
        let flat = RgbImage::from_pixel(5, 5, Rgb([9, 8, 7]));
        assert_eq!(colours(&flat, 5), [[9, 8, 7]]);
        assert!(colours(&RgbImage::new(0, 0), 5).is_empty());
        assert!(colours(&flat, 0).is_empty());
    }
}
