//! One derivative's bytes, from the decoded source and its own plan: a byte copy, or pixels through the pipeline
//! and an encoder. Chooses what to call; the image math is the pipeline's.

use super::plan::{Derivative, DerivativeError, LADDER_DEPTH};
use crate::codec::{self, EncodeOptions, Orientation};
use crate::pipeline::{self, Ladder};
use image::RgbImage;
use std::sync::OnceLock;

/// What the derivatives of one source are made from.
pub struct Inputs<'a> {
    /// The source file, for byte copies.
    pub bytes: &'a [u8],
    /// The decoded pixels, upright, and their reductions.
    pub upright: Ladder,
    /// The pixels as stored and their reductions, made from `upright` the first time a rotation `-1` derivative
    /// needs them.
    pub stored: OnceLock<Ladder>,
    /// The small copy for smart crops and services, made at most once, from `upright`'s rung `analysis_rung`.
    pub analysis: OnceLock<Option<RgbImage>>,
    pub analysis_rung: u8,
    pub orientation: Orientation,
    pub icc: Option<&'a [u8]>,
    pub jpeg_quality: u8,
}

impl Inputs<'_> {
    /// The analysis copy; from a rung fixed by the source's size, so services do not depend on which derivatives
    /// a run makes.
    pub fn analysis(&self) -> Option<&RgbImage> {
        self.analysis
            .get_or_init(|| {
                let rung = self.upright.rung(self.analysis_rung).ok()?;
                pipeline::analysis_copy(rung).ok()
            })
            .as_ref()
    }

    fn stored(&self) -> &Ladder {
        self.stored.get_or_init(|| {
            let image = codec::orient(
                self.upright.base().clone(),
                codec::inverse_orientation(self.orientation),
            );
            Ladder::new(image, LADDER_DEPTH)
        })
    }
}

/// The encoded bytes of derivative `d`.
pub fn render(d: &Derivative, inputs: &Inputs) -> Result<Vec<u8>, DerivativeError> {
    if d.copy {
        // Lossless and nearly free: the stored file already is this derivative.
        return Ok(inputs.bytes.to_vec());
    }
    let src = if d.from_stored {
        inputs.stored().rung(d.rung)?
    } else {
        inputs.upright.rung(d.rung)?
    };
    let smart = matches!(d.resolved.region, crate::iiif::ResolvedRegion::Smart { .. });
    let analysis = if smart && !d.from_stored {
        inputs.analysis()
    } else {
        None
    };
    let pixels = pipeline::render(src, d.frame, &d.resolved, analysis, d.format.has_alpha())?;
    let opts = EncodeOptions {
        jpeg_quality: inputs.jpeg_quality,
        // go-iiif's rotation -1 keeps the pixels as stored, so the JPEG keeps the tag that turns them upright.
        exif_orientation: (!d.resolved.auto_orient
            && inputs.orientation != Orientation::NoTransforms
            && d.format == codec::Format::Jpeg)
            .then_some(inputs.orientation),
        icc: inputs.icc,
    };
    Ok(codec::encode(&pixels, d.format, &opts)?)
}
