//! One derivative's bytes, from the decoded source and its own plan: a byte copy, or pixels through the pipeline
//! and an encoder. Chooses what to call; the image math is the pipeline's.

use super::plan::{Derivative, DerivativeError};
use crate::codec::colour::Profile;
use crate::codec::{self, EncodeOptions, Orientation};
use crate::pipeline::{self, Ladder, Rung};
use image::RgbImage;

/// What the derivatives of one source are made from, besides their pixels: the file and how to encode.
pub struct Inputs<'a> {
    /// The source file, for byte copies.
    pub bytes: &'a [u8],
    /// What derivatives carry of the source's metadata.
    pub metadata: &'a codec::Carried,
    /// Byte copies are re-muxed with only `metadata` (else they are the file as it is).
    pub remux: bool,
    pub orientation: Orientation,
    /// The source's ICC profile, for derivatives that carry it ([`Derivative::tagged`]).
    pub icc: Option<&'a [u8]>,
    /// The source's profile when the pixels were left in its colours (`-colour keep`): derivatives that do not
    /// carry it are converted to sRGB after rendering. Known once the source is decoded.
    pub profile: Option<&'a Profile>,
    pub jpeg_quality: u8,
    pub webp_quality: codec::WebpQuality,
}

/// The decoded pixels the derivatives of one source are rendered from.
pub struct Pixels {
    /// The decoded pixels, upright, and the rungs below them that the derivatives need.
    pub upright: Ladder,
    /// The pixels as stored and their rungs, when a rotation `-1` derivative needs them.
    pub stored: Option<Ladder>,
    /// The small copy for smart crops and services, from a rung fixed by the source's size, so services do not
    /// depend on which derivatives a run makes; when they need it.
    pub analysis: Option<RgbImage>,
}

impl Pixels {
    /// The image derivative `d` is made from, and the analysis copy when its region is a smart crop.
    pub fn of(&self, d: &Derivative) -> (&Rung, Option<&RgbImage>) {
        let src = match (&self.stored, d.from_stored) {
            (Some(stored), true) => stored.rung(d.rung),
            _ => self.upright.rung(d.rung),
        };
        let analysis = self.analysis.as_ref().filter(|_| needs_analysis(d));
        (src, analysis)
    }
}

/// Whether derivative `d` finds its region on the analysis copy (a smart crop of the upright image).
pub fn needs_analysis(d: &Derivative) -> bool {
    !d.from_stored && matches!(d.resolved.region, crate::iiif::ResolvedRegion::Smart { .. })
}

/// The bytes of byte copy `d` ([`Derivative::copy`]): no pixel is needed, so this may run while the source decodes.
pub fn copy(d: &Derivative, inputs: &Inputs) -> Result<Vec<u8>, DerivativeError> {
    if inputs.remux {
        // The compressed image data as stored, its descriptive metadata replaced.
        return Ok(codec::remux(
            inputs.bytes,
            d.format,
            inputs.metadata,
            inputs.orientation,
        )?);
    }
    // Lossless and nearly free: the stored file already is this derivative.
    Ok(inputs.bytes.to_vec())
}

/// The encoded bytes of derivative `d`, made from `src` (the ladder rung it names, of the frame it names) and,
/// for a smart crop, the analysis copy.
pub fn pixels(
    d: &Derivative,
    src: &Rung,
    analysis: Option<&RgbImage>,
    inputs: &Inputs,
) -> Result<Vec<u8>, DerivativeError> {
    let mut pixels = pipeline::render(src, d.frame, &d.resolved, analysis, d.format.has_alpha())?;
    if let Some(p) = inputs.profile.filter(|_| !d.tagged) {
        // Pixels a profile cannot describe (a grey rendering of an RGB source) stay as they are.
        let _ = p.to_srgb(&mut pixels);
    }
    let opts = EncodeOptions {
        jpeg_quality: inputs.jpeg_quality,
        // go-iiif's rotation -1 keeps the pixels as stored, so the JPEG keeps the tag that turns them upright.
        exif_orientation: (!d.resolved.auto_orient
            && inputs.orientation != Orientation::NoTransforms
            && d.format == codec::Format::Jpeg)
            .then_some(inputs.orientation),
        icc: inputs.icc.filter(|_| d.tagged),
        webp_quality: inputs.webp_quality,
        metadata: Some(inputs.metadata),
    };
    Ok(codec::encode(&pixels, d.format, &opts)?)
}
