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
        return Ok(src.crop_imm(left as u32, top as u32, w, h));
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

/// The fixed ladder of reductions of one image: rung 0 is the image, rung k+1 is rung k halved (each side
/// rounded up). A rung's pixels depend only on the image and k, never on which other rungs a run makes, so
/// everything made from a rung is the same whatever else is made.
pub struct Ladder {
    rungs: Vec<DynamicImage>,
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
        rungs.push(base);
        rungs.extend(below);
        Ladder { rungs }
    }

    /// The image and its rungs, full resolution first, to be used up one by one.
    pub fn into_rungs(self) -> Vec<DynamicImage> {
        self.rungs
    }

    /// Rung `k` (the deepest one made when `k` is deeper).
    pub fn rung(&self, k: u8) -> &DynamicImage {
        &self.rungs[usize::from(k).min(self.rungs.len() - 1)]
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

/// A small RGB copy (long side `ANALYSIS_SIZE` at most) for smart crop and the services.
pub fn analysis_copy(src: &DynamicImage) -> Result<RgbImage, PipelineError> {
    let (w, h) = (src.width(), src.height());
    let k = (ANALYSIS_SIZE as f64 / w.max(h) as f64).min(1.0);
    let (aw, ah) = (
        ((w as f64 * k).round() as u32).max(1),
        ((h as f64 * k).round() as u32).max(1),
    );
    // Resize first, in the source's own colour type, so the full frame is never copied.
    let small = crop_resize(src, (0.0, 0.0, w as f64, h as f64), aw, ah)?;
    Ok(small.into_rgb8())
}

/// Render one derivative.
///
/// `src` holds the pixels the request was resolved against, possibly reduced (a ladder rung, which covers exactly
/// the whole image): `full` is the size the request was resolved against, and regions are mapped into `src`
/// proportionally. `analysis` is the small copy
/// of `src` used for smart crops (made here when absent). `transparent` says whether the output format keeps alpha,
/// which decides the background of arbitrary rotations.
pub fn render(
    src: &DynamicImage,
    full: (u32, u32),
    req: &ResolvedRequest,
    analysis: Option<&RgbImage>,
    transparent: bool,
) -> Result<DynamicImage, PipelineError> {
    let sx = src.width() as f64 / full.0.max(1) as f64;
    let sy = src.height() as f64 / full.1.max(1) as f64;
    let (x, y, cw, ch) = match req.region {
        ResolvedRegion::Rect(r) => (r.x as f64, r.y as f64, r.w as f64, r.h as f64),
        ResolvedRegion::Smart { crop_w, crop_h, .. } => {
            let (x, y) = smart_origin(src, full, crop_w, crop_h, analysis)?;
            (x as f64, y as f64, crop_w as f64, crop_h as f64)
        }
    };
    // Snap values that are whole numbers but for float error, so an exact crop stays a plain copy.
    let snap = |v: f64| {
        if (v - v.round()).abs() < 1e-6 {
            v.round()
        } else {
            v
        }
    };
    // A region that ends at the right or bottom edge can map a rounding error past it; the edge is where it ends.
    let (left, top) = (snap(x * sx), snap(y * sy));
    let crop = (
        left,
        top,
        snap((cw * sx).max(1.0)).min(src.width() as f64 - left),
        snap((ch * sy).max(1.0)).min(src.height() as f64 - top),
    );
    let (w, h) = req.size;
    let mut img = crop_resize(src, crop, w, h)?;

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
    src: &DynamicImage,
    full: (u32, u32),
    crop_w: u32,
    crop_h: u32,
    analysis: Option<&RgbImage>,
) -> Result<(u32, u32), PipelineError> {
    let made;
    let a = match analysis {
        Some(a) => a,
        None => {
            made = analysis_copy(src)?;
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
