//! The pure pixel pipeline: a decoded image and a resolved request in, the derivative's pixels out, in the
//! spec's order: region, size, rotation (mirror first), quality. No I/O, no paths.

pub mod dither;
pub mod rotate;
pub mod sharpen;
pub mod smartcrop;

use crate::iiif::{Quality, ResolvedRegion, ResolvedRequest};
use fast_image_resize::{self as fr, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage};

/// Long side of the small copy that smart crop and the services analyse.
pub const ANALYSIS_SIZE: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("resize failed: {0}")]
    Resize(String),
}

/// Crop `(left, top, width, height)` of `src` (fractional, in `src` pixels) and scale it to `w` x `h`.
/// One pass: cropping and resampling together avoid a full-size intermediate copy.
pub fn crop_resize(
    src: &DynamicImage,
    crop: (f64, f64, f64, f64),
    w: u32,
    h: u32,
) -> Result<DynamicImage, PipelineError> {
    let (left, top, cw, ch) = crop;
    let integral = [left, top, cw, ch].iter().all(|v| v.fract() == 0.0);
    if integral && cw as u32 == w && ch as u32 == h {
        return Ok(self::crop(src, left as u32, top as u32, w, h));
    }
    let mut dst = DynamicImage::new(w.max(1), h.max(1), src.color());
    let opts = ResizeOptions::new()
        .crop(left, top, cw, ch)
        .resize_alg(ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    Resizer::new()
        .resize(src, &mut dst, &opts)
        .map_err(|e| PipelineError::Resize(e.to_string()))?;
    Ok(dst)
}

/// `$e`, an expression of the pixel buffer `$b` inside `$img`, wrapped back into the same kind of image (each arm
/// its own pixel type); `$other` for the kinds `image` may add.
macro_rules! per_buffer {
    ($img:expr, $b:ident => $e:expr, $other:expr) => {
        match $img {
            DynamicImage::ImageLuma8($b) => $e.into(),
            DynamicImage::ImageLumaA8($b) => $e.into(),
            DynamicImage::ImageRgb8($b) => $e.into(),
            DynamicImage::ImageRgba8($b) => $e.into(),
            DynamicImage::ImageLuma16($b) => $e.into(),
            DynamicImage::ImageLumaA16($b) => $e.into(),
            DynamicImage::ImageRgb16($b) => $e.into(),
            DynamicImage::ImageRgba16($b) => $e.into(),
            DynamicImage::ImageRgb32F($b) => $e.into(),
            DynamicImage::ImageRgba32F($b) => $e.into(),
            _ => $other,
        }
    };
}

type Buffer<P> = image::ImageBuffer<P, Vec<<P as image::Pixel>::Subpixel>>;

/// The `w` x `h` rectangle of `src` at `(x, y)`, clamped to the image. Row by row: `image`'s `crop_imm` copies
/// pixel by pixel, which was a larger share of making tiles than encoding them.
pub fn crop(src: &DynamicImage, x: u32, y: u32, w: u32, h: u32) -> DynamicImage {
    let (x, y) = (x.min(src.width()), y.min(src.height()));
    let r = (x, y, w.min(src.width() - x), h.min(src.height() - y));
    if r.2 == 0 || r.3 == 0 {
        return DynamicImage::new(r.2, r.3, src.color());
    }
    per_buffer!(src, b => crop_rows(b, r), src.crop_imm(r.0, r.1, r.2, r.3))
}

/// `crop` of one pixel type; the rectangle is inside `src` and not empty.
fn crop_rows<P: image::Pixel>(src: &Buffer<P>, (x, y, w, h): (u32, u32, u32, u32)) -> Buffer<P> {
    let channels = usize::from(P::CHANNEL_COUNT);
    let stride = src.width() as usize * channels;
    let (left, len) = (x as usize * channels, w as usize * channels);
    let mut out = Vec::with_capacity(len * h as usize);
    for row in src
        .as_raw()
        .chunks_exact(stride)
        .skip(y as usize)
        .take(h as usize)
    {
        out.extend_from_slice(&row[left..left + len]);
    }
    Buffer::<P>::from_raw(w, h, out).unwrap_or_else(|| Buffer::<P>::new(w, h))
}

/// Where the full frame lies on a rung that is not a proportional reduction of it (a JPEG 2000 resolution
/// level, whose samples sit on the even pixels of the level above rather than between them): a frame coordinate
/// `x` falls at `x * scale + offset` on the rung, per axis. Such a rung's last column and row are repeated once
/// past `size`, its pixels proper, so that a region ending at the frame's edge, which maps up to half a pixel
/// past it, stays inside the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    pub scale: (f64, f64),
    pub offset: (f64, f64),
    /// The rung's own pixels, without the repeated edge.
    pub size: (u32, u32),
}

impl Place {
    /// JPEG 2000 resolution level `k` of a `full`-sized image whose area starts at the grid's origin: sample `j`
    /// is the low-pass filter centred on pixel `j * 2^k` of the full image (ISO 15444-1, annex F), so the centre
    /// of pixel `j` (at `j + 0.5`) is the centre of full pixel `j * 2^k` (at `j * 2^k + 0.5`).
    pub fn jp2_level(full: (u32, u32), k: u8) -> Place {
        let s = 1.0 / f64::from(1u32 << k);
        let o = 0.5 - 0.5 * s;
        Place {
            scale: (s, s),
            offset: (o, o),
            size: (full.0.div_ceil(1 << k), full.1.div_ceil(1 << k)),
        }
    }

    /// The place on a proportional reduction of this rung's pixels to `size`.
    pub fn resized(self, size: (u32, u32)) -> Place {
        let rx = f64::from(size.0) / f64::from(self.size.0.max(1));
        let ry = f64::from(size.1) / f64::from(self.size.1.max(1));
        Place {
            scale: (self.scale.0 * rx, self.scale.1 * ry),
            offset: (self.offset.0 * rx, self.offset.1 * ry),
            size,
        }
    }
}

/// One rung of a ladder: its pixels, and where the frame lies on them when that is not proportional.
pub struct Rung {
    pub image: DynamicImage,
    pub place: Option<Place>,
}

impl Rung {
    /// A proportional reduction of the frame (or the frame itself).
    pub fn plain(image: DynamicImage) -> Rung {
        Rung { image, place: None }
    }

    /// A rung at `place`, its pixels `image` (of `place.size`), the last column and row repeated once.
    pub fn placed(image: DynamicImage, place: Place) -> Rung {
        Rung {
            image: pad_edge(&image),
            place: Some(place),
        }
    }

    /// The pixels proper (without a repeated edge).
    pub fn size(&self) -> (u32, u32) {
        self.place
            .map_or((self.image.width(), self.image.height()), |p| p.size)
    }

    /// Where the `full` frame's rectangle `(x, y, w, h)` lies on this rung.
    fn map(&self, full: (u32, u32), rect: (f64, f64, f64, f64)) -> (f64, f64, f64, f64) {
        let (sx, sy, ox, oy) = match self.place {
            Some(p) => (p.scale.0, p.scale.1, p.offset.0, p.offset.1),
            None => (
                self.image.width() as f64 / full.0.max(1) as f64,
                self.image.height() as f64 / full.1.max(1) as f64,
                0.0,
                0.0,
            ),
        };
        let (x, y, w, h) = rect;
        (x * sx + ox, y * sy + oy, w * sx, h * sy)
    }
}

/// `src` with its last column and row repeated once: the pixels a resampler reads past the edge.
fn pad_edge(src: &DynamicImage) -> DynamicImage {
    if src.width() == 0 || src.height() == 0 {
        return src.clone();
    }
    per_buffer!(src, b => pad_rows(b), src.clone())
}

/// `pad_edge` of one pixel type, row by row: `image`'s `copy_from` goes pixel by pixel, slow on a large rung.
fn pad_rows<P: image::Pixel>(src: &Buffer<P>) -> Buffer<P> {
    let (w, h) = src.dimensions();
    let channels = usize::from(P::CHANNEL_COUNT);
    let stride = w as usize * channels;
    let mut out = Vec::with_capacity((stride + channels) * (h as usize + 1));
    for row in src.as_raw().chunks_exact(stride) {
        out.extend_from_slice(row);
        out.extend_from_slice(&row[stride - channels..]);
    }
    out.extend_from_within(out.len() - (stride + channels)..);
    Buffer::<P>::from_raw(w + 1, h + 1, out).unwrap_or_else(|| Buffer::<P>::new(w + 1, h + 1))
}

/// The fixed ladder of reductions of one image: rung 0 is the image, rung k+1 is rung k halved (each side
/// rounded up). A rung's pixels depend only on the image and k, never on which other rungs a run makes, so
/// everything made from a rung is the same whatever else is made. A ladder may start below rung 0 (a JPEG 2000
/// source of which no derivative needs the full image).
pub struct Ladder {
    /// The rung `rungs[0]` is.
    first: u8,
    rungs: Vec<Rung>,
}

impl Ladder {
    /// The image and its rungs down to `depth`, made now, before any derivative's work begins: a rung made on
    /// demand inside the pool could have its maker steal a task that waits for that same rung.
    pub fn new(base: DynamicImage, depth: u8) -> Result<Ladder, PipelineError> {
        let below = Ladder::below(&base, depth)?;
        Ok(Ladder::from_rungs(base, below))
    }

    /// The rungs 1 to `depth` of `base`, while others may read `base` itself.
    pub fn below(base: &DynamicImage, depth: u8) -> Result<Vec<DynamicImage>, PipelineError> {
        let mut rungs: Vec<DynamicImage> = Vec::with_capacity(usize::from(depth));
        for k in 1..=depth {
            let next = halve(rungs.last().unwrap_or(base), k == 1)?;
            rungs.push(next);
        }
        Ok(rungs)
    }

    /// The ladder of `base` and the rungs [`Ladder::below`] made of it.
    pub fn from_rungs(base: DynamicImage, below: Vec<DynamicImage>) -> Ladder {
        let mut rungs = Vec::with_capacity(below.len() + 1);
        rungs.push(Rung::plain(base));
        rungs.extend(below.into_iter().map(Rung::plain));
        Ladder { first: 0, rungs }
    }

    /// Rungs 1 to `depth` when rung 1 is not a halving of rung 0 but `one`, at `place` (a JPEG 2000 resolution
    /// level): the rungs below it are Lanczos3 halvings of its pixels, each placed where the frame lies on it.
    pub fn placed_below(
        one: DynamicImage,
        place: Place,
        depth: u8,
    ) -> Result<Vec<Rung>, PipelineError> {
        let mut rungs = Vec::with_capacity(usize::from(depth));
        let (mut image, mut place) = (one, place);
        for k in 1..=depth.max(1) {
            let next = (k < depth).then(|| halve(&image, false)).transpose()?;
            rungs.push(Rung::placed(image, place));
            match next {
                Some(n) => {
                    place = place.resized((n.width(), n.height()));
                    image = n;
                }
                None => break,
            }
        }
        Ok(rungs)
    }

    /// The ladder of `full` (rung 0, when something needs it) and `below` (rungs 1, 2, ...).
    pub fn of(full: Option<DynamicImage>, below: Vec<Rung>) -> Ladder {
        let first = if full.is_some() { 0 } else { 1 };
        let rungs = full.map(Rung::plain).into_iter().chain(below).collect();
        Ladder { first, rungs }
    }

    /// The image and the rungs that are proportional reductions of it, full resolution first, to be used up one
    /// by one (none when the ladder does not hold the full image).
    pub fn into_rungs(self) -> Vec<DynamicImage> {
        if self.first != 0 {
            return Vec::new();
        }
        self.rungs
            .into_iter()
            .take_while(|r| r.place.is_none())
            .map(|r| r.image)
            .collect()
    }

    /// Rung `k` (the deepest one made when `k` is deeper; the first one made when `k` is above it, which the
    /// caller's plan never asks for).
    pub fn rung(&self, k: u8) -> &Rung {
        let i = usize::from(k.saturating_sub(self.first));
        &self.rungs[i.min(self.rungs.len() - 1)]
    }
}

/// Half the size (sides rounded up). The first halving, of the full frame and the costliest, is the 2x2 mean
/// (libvips' shrink); the others are Lanczos3: boxes compound into a blur the final pass cannot undo (three of
/// them: 40.8 dB against Lanczos3 from the full image), where one box and Lanczos3 halvings keep every downscale
/// of the benchmark corpus above 46 dB.
pub(crate) fn halve(src: &DynamicImage, first: bool) -> Result<DynamicImage, PipelineError> {
    let (w, h) = (src.width(), src.height());
    let mut dst = DynamicImage::new(w.div_ceil(2), h.div_ceil(2), src.color());
    let filter = if first {
        fr::FilterType::Box
    } else {
        fr::FilterType::Lanczos3
    };
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    Resizer::new()
        .resize(src, &mut dst, &opts)
        .map_err(|e| PipelineError::Resize(e.to_string()))?;
    Ok(dst)
}

/// A small RGB copy (long side `ANALYSIS_SIZE` at most) of the `full` frame, from `src`, for smart crop and the
/// services.
pub fn analysis_copy(src: &Rung, full: (u32, u32)) -> Result<RgbImage, PipelineError> {
    let (w, h) = src.size();
    let k = (ANALYSIS_SIZE as f64 / w.max(h) as f64).min(1.0);
    let (aw, ah) = (
        ((w as f64 * k).round() as u32).max(1),
        ((h as f64 * k).round() as u32).max(1),
    );
    // Resize first, in the source's own colour type, so the full frame is never copied.
    let crop = src.map(full, (0.0, 0.0, full.0 as f64, full.1 as f64));
    let small = crop_resize(&src.image, clamp_crop(crop, &src.image), aw, ah)?;
    Ok(small.into_rgb8())
}

/// Snap values that are whole numbers but for float error, so an exact crop stays a plain copy.
fn snap(v: f64) -> f64 {
    if (v - v.round()).abs() < 1e-6 {
        v.round()
    } else {
        v
    }
}

/// A crop inside `src`: a region that ends at the right or bottom edge can map a rounding error past it; the
/// edge is where it ends.
fn clamp_crop(crop: (f64, f64, f64, f64), src: &DynamicImage) -> (f64, f64, f64, f64) {
    let (left, top) = (snap(crop.0), snap(crop.1));
    (
        left,
        top,
        snap(crop.2.max(1.0)).min(src.width() as f64 - left),
        snap(crop.3.max(1.0)).min(src.height() as f64 - top),
    )
}

/// Render one derivative.
///
/// `src` holds the pixels the request was resolved against, possibly reduced (a ladder rung, which covers exactly
/// the whole image): `full` is the size the request was resolved against, and regions are mapped into `src`
/// proportionally, or where its [`Place`] puts them. `analysis` is the small copy
/// of `src` used for smart crops (made here when absent). `transparent` says whether the output format keeps alpha,
/// which decides the background of arbitrary rotations.
pub fn render(
    src: &Rung,
    full: (u32, u32),
    req: &ResolvedRequest,
    analysis: Option<&RgbImage>,
    transparent: bool,
) -> Result<DynamicImage, PipelineError> {
    let (x, y, cw, ch) = match req.region {
        ResolvedRegion::Rect(r) => (r.x as f64, r.y as f64, r.w as f64, r.h as f64),
        ResolvedRegion::Smart { crop_w, crop_h, .. } => {
            let (x, y) = smart_origin(src, full, crop_w, crop_h, analysis)?;
            (x as f64, y as f64, crop_w as f64, crop_h as f64)
        }
    };
    let crop = clamp_crop(src.map(full, (x, y, cw, ch)), &src.image);
    let (w, h) = req.size;
    let mut img = crop_resize(&src.image, crop, w, h)?;

    if req.mirror {
        img = img.fliph();
    }
    // Quarter turns are exact pixel moves inside `rotate`; other angles enlarge the canvas.
    if req.degrees != 0.0 {
        img = rotate::rotate(&img, req.degrees, transparent);
    }

    Ok(match req.quality {
        Quality::Default | Quality::Color => img,
        Quality::Gray => {
            if img.color().has_alpha() {
                DynamicImage::ImageLumaA8(img.to_luma_alpha8())
            } else {
                DynamicImage::ImageLuma8(img.to_luma8())
            }
        }
        Quality::Bitonal => {
            let mut g = img.to_luma8();
            g.pixels_mut()
                .for_each(|p| p.0[0] = if p.0[0] >= 128 { 255 } else { 0 });
            DynamicImage::ImageLuma8(g)
        }
        Quality::Dither => DynamicImage::ImageLuma8(dither::atkinson(&img.to_luma8())),
        Quality::Crisp(c) => sharpen::crisp(&img, &c),
    })
}

/// Top-left of the smart crop in `full` coordinates, found on the small analysis copy.
fn smart_origin(
    src: &Rung,
    full: (u32, u32),
    crop_w: u32,
    crop_h: u32,
    analysis: Option<&RgbImage>,
) -> Result<(u32, u32), PipelineError> {
    let made;
    let a = match analysis {
        Some(a) => a,
        None => {
            made = analysis_copy(src, full)?;
            &made
        }
    };
    let k = a.width() as f64 / full.0.max(1) as f64;
    let aw = ((crop_w as f64 * k).round() as u32).clamp(1, a.width());
    let ah = ((crop_h as f64 * k).round() as u32).clamp(1, a.height());
    let (ax, ay) = smartcrop::best_crop(a, aw, ah);
    let x = ((ax as f64 / k).round() as u32).min(full.0.saturating_sub(crop_w));
    let y = ((ay as f64 / k).round() as u32).min(full.1.saturating_sub(crop_h));
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_copies_the_rectangle_of_every_pixel_type() {
        let rgb = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8, y as u8, (x * y) as u8]));
        let images = [
            DynamicImage::ImageRgb8(rgb.clone()),
            DynamicImage::ImageLuma16(DynamicImage::ImageRgb8(rgb).into_luma16()),
            DynamicImage::ImageRgba32F(
                DynamicImage::ImageRgb8(RgbImage::from_fn(7, 5, |x, y| {
                    image::Rgb([x as u8, y as u8, 9])
                }))
                .into_rgba32f(),
            ),
        ];
        for img in &images {
            // Inside, along the right and bottom edges, and past them (clamped, as `crop_imm` does).
            for (x, y, w, h) in [
                (1, 2, 3, 2),
                (4, 0, 3, 5),
                (0, 4, 7, 1),
                (5, 3, 9, 9),
                (0, 0, 7, 5),
            ] {
                let got = crop(img, x, y, w, h);
                let want = img.crop_imm(x, y, w, h);
                assert_eq!((got.width(), got.height()), (want.width(), want.height()));
                assert_eq!(
                    got.as_bytes(),
                    want.as_bytes(),
                    "{:?} at {x},{y} {w}x{h}",
                    img.color()
                );
            }
        }
    }

    #[test]
    fn a_jpeg2000_level_is_placed_on_the_even_pixels_of_the_full_image() {
        // Level 1 of a 9x5 image: 5x3 samples, sample j centred on full pixel 2j.
        let p = Place::jp2_level((9, 5), 1);
        assert_eq!(p.size, (5, 3));
        let centre = |j: f64| (j + 0.5 - p.offset.0) / p.scale.0;
        assert_eq!((centre(0.0), centre(2.0)), (0.5, 4.5));
        // Level 2: sample j centred on full pixel 4j.
        let q = Place::jp2_level((9, 5), 2);
        assert_eq!((2.5 - q.offset.0) / q.scale.0, 8.5);
        // A halving of level 1 to 3x2 keeps the frame where it was on level 1, proportionally.
        let h = p.resized((3, 2));
        assert_eq!(h.size, (3, 2));
        assert!((h.scale.0 - 0.5 * 3.0 / 5.0).abs() < 1e-12);
        assert!((h.offset.1 - 0.25 * 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_placed_rung_repeats_its_last_column_and_row() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(3, 2, |x, y| {
            image::Luma([(10 * y + x) as u8])
        }));
        let rung = Rung::placed(img, Place::jp2_level((6, 4), 1));
        assert_eq!(rung.size(), (3, 2));
        let g = rung.image.to_luma8();
        assert_eq!(g.dimensions(), (4, 3));
        let rows: Vec<Vec<u8>> = g.rows().map(|r| r.map(|p| p.0[0]).collect()).collect();
        assert_eq!(
            rows,
            [vec![0, 1, 2, 2], vec![10, 11, 12, 12], vec![10, 11, 12, 12]]
        );
        // The whole frame maps inside the padded pixels, from a quarter pixel in.
        let (x, y, w, h) = rung.map((6, 4), (0.0, 0.0, 6.0, 4.0));
        assert_eq!((x, y, w, h), (0.25, 0.25, 3.0, 2.0));
        assert!(x + w <= 4.0 && y + h <= 3.0);
    }

    #[test]
    fn the_edge_is_repeated_whole_pixels_of_every_channel() {
        let img = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(3, 2, |x, y| {
            image::Rgb([x as u16, 100 * y as u16, 1000 + x as u16 + 10 * y as u16])
        }));
        let padded = pad_edge(&img).to_rgb16();
        let src = img.to_rgb16();
        assert_eq!(padded.dimensions(), (4, 3));
        for (x, y, p) in padded.enumerate_pixels() {
            assert_eq!(p, src.get_pixel(x.min(2), y.min(1)), "at {x},{y}");
        }
    }
}
