//! The plan of one source: every instruction resolved once, from the header alone, into what the rest of the
//! source's line reads and never decides again: each derivative's dimensions, path, output format, whether it is
//! a byte copy, which pixels it is made from, and how much resolution it needs. The decode scale, the shared
//! intermediate and the memory a source needs are methods here. Pure: no I/O, no pixels.

use crate::codec::{self, Orientation, Probe};
use crate::iiif::{
    self, ApiVersion, IiifError, Quality, ResolvedRegion, ResolvedRequest, Rotation,
};
use crate::pipeline;
use crate::settings::instructions::Instruction;

/// Why one derivative cannot be made; the report shows it under the derivative's label.
#[derive(Debug, thiserror::Error)]
pub enum DerivativeError {
    #[error(transparent)]
    Request(#[from] IiifError),
    #[error(
        "{what} would be {width}x{height} = {pixels} pixels, over the limit of {limit} \
         (-max-output-pixels)"
    )]
    TooLarge {
        what: &'static str,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("{path} is also the name of a derivative of {other:?} in this run; not overwritten")]
    Claimed { path: String, other: String },
    #[error(transparent)]
    Render(#[from] pipeline::PipelineError),
    #[error(transparent)]
    Encode(#[from] codec::CodecError),
    #[error("cannot write derivative: {0}")]
    Write(#[from] crate::store::StoreError),
}

/// One derivative, decided.
#[derive(Debug, Clone)]
pub struct Derivative {
    pub label: String,
    pub resolved: ResolvedRequest,
    /// The dimensions the request was resolved against: the upright image's, or the stored one's for
    /// [`Derivative::from_stored`].
    pub frame: (u32, u32),
    /// go-iiif's rotation `-1` on a source with an EXIF orientation: made from the pixels as stored.
    pub from_stored: bool,
    /// The format written.
    pub format: codec::Format,
    /// Where it is written, relative to the derivatives root.
    pub path: String,
    /// The derivative is the stored file itself: its bytes are copied, no pixel is decoded for it.
    pub copy: bool,
    /// The fraction of the full resolution it needs (output size over region size); 0 for a copy.
    pub need: f64,
    /// It carries the source's ICC profile, its pixels in the source's colours (`-colour keep`, a format that
    /// holds a profile); otherwise its pixels are sRGB and it is untagged.
    pub tagged: bool,
}

/// What colour management does to a source, known from its profile before decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Colour {
    /// The decoded pixels are converted to sRGB from the source's profile: no derivative is a byte copy.
    pub converted: bool,
    /// Derivatives in formats that hold a profile carry the source's (`-colour keep`).
    pub tagged: bool,
}

/// Every instruction of one source, resolved.
#[derive(Debug)]
pub struct SourcePlan {
    pub format: codec::Format,
    /// Stored and upright (EXIF-oriented) dimensions.
    pub stored: (u32, u32),
    pub upright: (u32, u32),
    pub orientation: Orientation,
    /// Bytes per decoded pixel at the source's own depth (e.g. 3 for 8-bit RGB, 8 for 16-bit RGBA).
    pub bytes_per_pixel: u64,
    pub derivatives: Vec<Derivative>,
    /// Instructions that cannot be made from this source, by label.
    pub failed: Vec<(String, DerivativeError)>,
}

/// The IIIF name of a format this tool writes.
pub fn iiif_format(f: codec::Format) -> iiif::Format {
    match f {
        codec::Format::Jpeg => iiif::Format::Jpg,
        codec::Format::Png => iiif::Format::Png,
        codec::Format::Webp => iiif::Format::Webp,
        codec::Format::Gif => iiif::Format::Gif,
        codec::Format::Tiff => iiif::Format::Tif,
    }
}

/// The format to write for a requested one: go-iiif's `""` is the source's own.
pub fn output_format(requested: iiif::Format, source: codec::Format) -> codec::Format {
    match requested {
        iiif::Format::Jpg => codec::Format::Jpeg,
        iiif::Format::Png => codec::Format::Png,
        iiif::Format::Webp => codec::Format::Webp,
        iiif::Format::Gif => codec::Format::Gif,
        iiif::Format::Tif => codec::Format::Tiff,
        iiif::Format::Source => source,
    }
}

/// How much of the full image's resolution a derivative needs: output size over region size.
fn scale_need(r: &ResolvedRequest) -> f64 {
    let (cw, ch) = match r.region {
        ResolvedRegion::Rect(rect) => (rect.w, rect.h),
        ResolvedRegion::Smart { crop_w, crop_h, .. } => (crop_w, crop_h),
    };
    (r.size.0 as f64 / cw.max(1) as f64).max(r.size.1 as f64 / ch.max(1) as f64)
}

/// Refuse an image of `w` x `h` over `limit` pixels.
fn check_pixels(what: &'static str, (w, h): (u32, u32), limit: u64) -> Result<(), DerivativeError> {
    let pixels = w as u64 * h as u64;
    if pixels > limit {
        return Err(DerivativeError::TooLarge {
            what,
            width: w,
            height: h,
            pixels,
            limit,
        });
    }
    Ok(())
}

impl SourcePlan {
    /// Resolve every instruction against the header. `path` names a derivative from its instruction and the
    /// IIIF format written (the naming scheme's decision).
    pub fn new(
        probe: &Probe,
        instructions: &[Instruction],
        api: ApiVersion,
        max_output_pixels: u64,
        colour: Colour,
        path: &dyn Fn(&Instruction, iiif::Format) -> String,
    ) -> SourcePlan {
        let stored = (probe.width, probe.height);
        let upright = codec::oriented_dims(probe.width, probe.height, probe.orientation);
        let mut derivatives = Vec::new();
        let mut failed = Vec::new();
        for ins in instructions {
            let req = &ins.request;
            let from_stored = req.rotation == Rotation::NoAutoRotate
                && probe.orientation != Orientation::NoTransforms;
            let frame = if req.rotation == Rotation::NoAutoRotate {
                stored
            } else {
                upright
            };
            let format = output_format(req.format, probe.format);
            let resolved = req
                .resolve(frame.0, frame.1, api)
                .map_err(DerivativeError::from)
                .and_then(|r| {
                    // Every image the pipeline makes for it is at most the size or the output (rotation
                    // enlarges the canvas); the region is within the source, already bounded by -max-pixels.
                    check_pixels("the scaled region", r.size, max_output_pixels)?;
                    check_pixels("the derivative", r.output, max_output_pixels)?;
                    Ok(r)
                });
            let resolved = match resolved {
                Ok(r) => r,
                Err(e) => {
                    failed.push((ins.label.clone(), e));
                    continue;
                }
            };
            let full = matches!(resolved.region, ResolvedRegion::Rect(rect)
                if rect.x == 0 && rect.y == 0 && (rect.w, rect.h) == frame);
            let copy = full
                && resolved.size == frame
                && resolved.degrees == 0.0
                && !resolved.mirror
                && matches!(resolved.quality, Quality::Default | Quality::Color)
                && format == probe.format
                && !colour.converted
                && (!resolved.auto_orient || probe.orientation == Orientation::NoTransforms);
            let need = if copy { 0.0 } else { scale_need(&resolved) };
            derivatives.push(Derivative {
                label: ins.label.clone(),
                path: path(ins, iiif_format(format)),
                resolved,
                frame,
                from_stored,
                format,
                copy,
                need,
                tagged: colour.tagged && format.holds_icc(),
            });
        }
        SourcePlan {
            format: probe.format,
            stored,
            upright,
            orientation: probe.orientation,
            bytes_per_pixel: u64::from(probe.bytes_per_pixel.max(1)),
            derivatives,
            failed,
        }
    }

    /// The least fraction of the full resolution that every derivative (and the analysis copy for services and
    /// smart crops) needs; above 1 when something is upscaled. From every derivative, not only those still to
    /// make, so the decode scale, and with it the services, come out the same on a rerun that makes only the
    /// missing ones.
    pub fn decode_need(&self) -> f64 {
        let long = self.upright.0.max(self.upright.1).max(1) as f64;
        let analysis = (pipeline::ANALYSIS_SIZE as f64 / long).min(1.0);
        self.derivatives
            .iter()
            .filter(|d| !d.copy)
            .map(|d| d.need)
            .fold(analysis, f64::max)
    }

    /// The smallest stored dimensions a reduced decode may produce, or `None` for a full decode: when every
    /// derivative needs at most half the resolution, the decoder may skip the rest.
    pub fn decode_min(&self) -> Option<(u32, u32)> {
        let need = self.decode_need();
        (need <= 0.5).then(|| {
            let at_least = |d: u32| ((d as f64 * need).ceil() as u32).clamp(1, d);
            (at_least(self.stored.0), at_least(self.stored.1))
        })
    }

    /// The shared intermediate worth making for the derivatives `todo` (indices into `derivatives`): when at least
    /// two upright derivatives need at most half the resolution, one resize to the largest of them serves them
    /// all; Lanczos from at least the target size keeps their quality. `decoded` is the upright size actually
    /// decoded. Returns the intermediate's size and its scale relative to the full upright image.
    pub fn intermediate(&self, todo: &[usize], decoded: (u32, u32)) -> Option<((u32, u32), f64)> {
        let needs: Vec<f64> = todo
            .iter()
            .map(|&i| &self.derivatives[i])
            .filter(|d| !d.from_stored && !d.copy && d.need <= 0.5)
            .map(|d| d.need)
            .collect();
        let scale = needs.iter().cloned().fold(0.0, f64::max);
        if needs.len() < 2 || scale <= 0.0 {
            return None;
        }
        let (w, h) = (
            ((self.upright.0 as f64 * scale).round() as u32).max(1),
            ((self.upright.1 as f64 * scale).round() as u32).max(1),
        );
        if w as u64 * 4 > decoded.0 as u64 * 3 {
            return None; // a reduced decode is already close to that size
        }
        Some(((w, h), scale))
    }

    /// Whether derivative `d` is made from the intermediate of `scale`.
    pub fn uses_intermediate(d: &Derivative, scale: f64) -> bool {
        !d.from_stored && !d.copy && d.need <= scale * (1.0 + 1e-9)
    }

    /// The bytes one source keeps alive at most while making `todo` from `file_len` bytes: the decoded frame (at
    /// the reduced scale when one applies) at the source's depth and again at 8 bits, its upright and stored
    /// copies, the intermediate, and for every derivative its scaled, rotated and encoded images.
    pub fn memory_need(&self, todo: &[usize], file_len: u64) -> u64 {
        let pixels = |(w, h): (u32, u32)| w as u64 * h as u64;
        let decoded = match self.decode_min() {
            // A reduced (DCT-scaled) JPEG decode is at least the minimum and at most twice it per side; other
            // formats decode at full size.
            Some(min) if self.format == codec::Format::Jpeg => {
                pixels(min).saturating_mul(4).min(pixels(self.stored))
            }
            _ => pixels(self.stored),
        };
        let any_stored = todo.iter().any(|&i| self.derivatives[i].from_stored);
        // The frame at its own depth; an 8-bit copy when that depth is more (16-bit or float); an upright copy
        // when the EXIF orientation turns it; the stored copy for rotation -1; the intermediate (at most a
        // quarter of the frame at 4 bytes a pixel).
        let depth = self.bytes_per_pixel;
        let eight_bit = match depth {
            1 | 3 | 4 => 0,
            2 => 1,
            _ => 4,
        };
        let upright = if self.orientation == Orientation::NoTransforms {
            0
        } else {
            4
        };
        let stored = if any_stored { 4 } else { 0 };
        let frames = decoded.saturating_mul(depth + eight_bit + upright + stored + 1);
        let outputs: u64 = todo
            .iter()
            .map(|&i| &self.derivatives[i])
            .filter(|d| !d.copy)
            .map(|d| (pixels(d.resolved.size) + 2 * pixels(d.resolved.output)).saturating_mul(4))
            .sum();
        file_len
            .saturating_mul(2)
            .saturating_add(frames)
            .saturating_add(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iiif::ImageRequest;

    fn ins(label: &str, region: &str, size: &str, rotation: &str, format: &str) -> Instruction {
        Instruction {
            label: label.into(),
            request: ImageRequest::parse(region, size, rotation, "default", format).unwrap(),
        }
    }

    fn probe(w: u32, h: u32, o: Orientation) -> Probe {
        Probe {
            format: codec::Format::Jpeg,
            width: w,
            height: h,
            orientation: o,
            bytes_per_pixel: 3,
            header: Default::default(),
        }
    }

    fn plan(p: &Probe, set: &[Instruction]) -> SourcePlan {
        SourcePlan::new(
            p,
            set,
            ApiVersion::V2,
            100_000_000,
            Colour::default(),
            &|i, f| format!("{}/{}", i.label, i.request.path(f)),
        )
    }

    #[test]
    fn each_instruction_is_resolved_once_with_its_path_and_copy_flag() {
        let set = [
            ins("o", "full", "full", "-1", ""),
            ins("b", "full", "!1024,768", "0", "jpg"),
            ins("p", "full", "full", "0", "png"),
        ];
        let p = plan(&probe(4000, 3000, Orientation::NoTransforms), &set);
        let d = &p.derivatives;
        assert_eq!(d.len(), 3);
        assert!(d[0].copy && !d[1].copy && !d[2].copy);
        assert_eq!(d[0].path, "o/full/full/-1/color.jpg");
        assert_eq!(d[1].resolved.output, (1024, 768));
        assert_eq!(d[2].format, codec::Format::Png);
        assert!((d[1].need - 0.256).abs() < 1e-9);
    }

    #[test]
    fn rotation_minus_one_on_an_oriented_source_uses_the_stored_frame() {
        let set = [
            ins("o", "full", "full", "-1", ""),
            ins("u", "full", "full", "0", ""),
        ];
        let p = plan(&probe(400, 300, Orientation::Rotate90), &set);
        assert_eq!(p.upright, (300, 400));
        let (o, u) = (&p.derivatives[0], &p.derivatives[1]);
        assert!(o.from_stored && o.copy && o.frame == (400, 300));
        assert!(!u.from_stored && !u.copy && u.resolved.output == (300, 400));
    }

    #[test]
    fn absurd_sizes_fail_their_derivative_before_anything_is_allocated() {
        let set = [
            ins("huge", "full", "100000000,100000000", "0", "jpg"),
            ins("pct", "full", "pct:100000", "0", "jpg"),
            ins("smart", "-1,-1,100000,100000", "full", "0", "jpg"),
            ins("turned", "full", "65535,1", "45", "jpg"),
            ins("fine", "full", "!100,100", "0", "jpg"),
        ];
        let p = plan(&probe(4000, 3000, Orientation::NoTransforms), &set);
        let failed: Vec<&str> = p.failed.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(failed, ["huge", "pct", "smart", "turned"]);
        assert_eq!(p.derivatives.len(), 1);
        let msg = p.failed[3].1.to_string();
        assert!(
            msg.starts_with("the derivative would be 46341x46341"),
            "{msg}"
        );
    }

    #[test]
    fn decode_scale_and_intermediate_follow_the_needs() {
        let set = [
            ins("a", "full", "!1000,1000", "0", "jpg"),
            ins("b", "full", "!500,500", "0", "jpg"),
            ins("c", "full", "!250,250", "0", "jpg"),
        ];
        let p = plan(&probe(4000, 3000, Orientation::NoTransforms), &set);
        assert!((p.decode_need() - 0.25).abs() < 1e-9);
        assert_eq!(p.decode_min(), Some((1000, 750)));
        // Decoded at 1/2 (2000x1500): one intermediate at 1/4 serves all three.
        let (size, scale) = p.intermediate(&[0, 1, 2], (2000, 1500)).unwrap();
        assert_eq!(size, (1000, 750));
        assert!(p
            .derivatives
            .iter()
            .all(|d| SourcePlan::uses_intermediate(d, scale)));
        // Decoded at 1/4 already: no intermediate.
        assert_eq!(p.intermediate(&[0, 1, 2], (1000, 750)), None);
        assert_eq!(p.intermediate(&[2], (2000, 1500)), None);
    }

    #[test]
    fn only_a_jpeg_is_counted_at_its_reduced_scale() {
        let set = [ins("a", "full", "!100,100", "0", "jpg")];
        let jpeg = probe(4000, 3000, Orientation::NoTransforms);
        let png = Probe {
            format: codec::Format::Png,
            ..jpeg.clone()
        };
        let (j, p) = (plan(&jpeg, &set), plan(&png, &set));
        assert!(j.memory_need(&[0], 0) < 12_000_000);
        assert!(p.memory_need(&[0], 0) >= 12_000_000 * 4);
    }

    #[test]
    fn memory_need_grows_with_the_frame_and_the_outputs() {
        let small = [ins("a", "full", "!100,100", "0", "jpg")];
        let big = [ins("a", "full", "full", "0", "png")];
        let p = probe(4000, 3000, Orientation::NoTransforms);
        let (a, b) = (plan(&p, &small), plan(&p, &big));
        assert!(a.memory_need(&[0], 1 << 20) < b.memory_need(&[0], 1 << 20));
        // A full decode of 12 MP keeps the frame and the full-size output alive.
        assert!(b.memory_need(&[0], 0) >= 12_000_000 * 3 + 12_000_000 * 4);
    }
}
