//! Per-source services reported beside the derivatives (go-iiif's `palette`, `blurhash`, `imagehash`). Each is
//! computed once per source from a small downscaled copy, never per instruction.

pub mod blurhash;
mod colour_names;
pub mod imagehash;
mod marekm4;
pub mod palette;
mod quant;

use crate::pipeline;
use crate::report::SourceReport;
use crate::settings::config::Config;
use image::{DynamicImage, RgbImage};
use std::collections::BTreeMap;

/// Fill the report's services that the config enables, from the small analysis copy. Report keys are the
/// service names, as go-iiif writes them.
pub fn describe(config: &Config, analysis: Option<&RgbImage>, report: &mut SourceReport) {
    let enabled = |s: &str| config.services.iter().any(|x| x == s);
    let Some(small) = analysis else { return };
    if enabled("palette") {
        let p = &config.palette;
        let mut swatches = palette::extract(small, &p.extruders, &p.palettes);
        if p.grid == "euclidian" {
            // A swatch is named after the nearest colour of the first named palette; `closest` keeps them all.
            for s in &mut swatches {
                if let Some(first) = s.closest.first() {
                    s.name = first.name.clone();
                }
            }
        }
        report.palette = Some(swatches);
    }
    if enabled("blurhash") {
        let b = &config.blurhash;
        // go-iiif fits the image within size x size (never enlarging), then hashes it.
        let ratio =
            (b.size as f64 / small.width() as f64).min(b.size as f64 / small.height() as f64);
        let hashed = if ratio < 1.0 {
            let (w, h) = (
                ((small.width() as f64 * ratio) as u32).max(1),
                ((small.height() as f64 * ratio) as u32).max(1),
            );
            let src = DynamicImage::ImageRgb8(small.clone());
            pipeline::crop_resize(
                &src,
                (0.0, 0.0, small.width() as f64, small.height() as f64),
                w,
                h,
            )
            .map(DynamicImage::into_rgb8)
            .ok()
        } else {
            None
        };
        report.blurhash = Some(blurhash::encode(hashed.as_ref().unwrap_or(small), b.x, b.y));
    }
    if enabled("imagehash") {
        let mut m = BTreeMap::new();
        m.insert("average".to_string(), imagehash::average(small));
        m.insert("difference".to_string(), imagehash::difference(small));
        report.imagehash = Some(m);
    }
}
