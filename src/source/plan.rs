//! The plan of one source: every instruction resolved once, from the header alone, into what the rest of the
//! source's line reads and never decides again: each derivative's dimensions, path, output format, whether it is
//! a byte copy, how much resolution it needs and which rung of the source's reduction ladder it is made from.
//! The memory a source needs is a method here. Pure: no I/O, no pixels.
//!
//! Every derivative is made from a rung of one fixed ladder: the full decode, then halvings of it
//! ([`pipeline::Ladder`]); for a JPEG 2000, rung 1 is the file's resolution level 1 and the rungs below are
//! halvings of that ([`SourcePlan::decodes`]). Its rung is a function of its own need alone, never of the other
//! derivatives, so its pixels (and the services', made from a rung chosen the same way) do not depend on what
//! else a run makes.

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
    /// It carries the source's ICC profile, its pixels in the source's colours (`-colour keep`, a format that
    /// holds a profile); otherwise its pixels are sRGB and it is untagged.
    pub tagged: bool,
    /// The ladder rung its pixels are made from (0: the full image, k: halved k times).
    pub rung: u8,
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
    /// Stored dimensions.
    pub stored: (u32, u32),
    pub orientation: Orientation,
    /// Bytes per decoded pixel at the source's own depth (e.g. 3 for 8-bit RGB, 8 for 16-bit RGBA).
    pub bytes_per_pixel: u64,
    pub derivatives: Vec<Derivative>,
    /// Instructions that cannot be made from this source, by label.
    pub failed: Vec<(String, DerivativeError)>,
    /// The rung the analysis copy (services, smart crops) is made from.
    pub analysis_rung: u8,
}

/// What a source's decode makes for the derivatives of a run ([`SourcePlan::decodes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decodes {
    /// The full image (rung 0).
    pub full: bool,
    /// A JPEG 2000's resolution level 1, which rung 1 and the halvings below it are made from (else they are
    /// halvings of the full image).
    pub level_one: bool,
    /// The deepest rung of the upright image.
    pub depth: u8,
    /// The deepest rung of the stored image, when a rotation `-1` derivative is made from it.
    pub stored: Option<u8>,
    /// The analysis copy (smart crops, services).
    pub analysis: bool,
}

/// How many times the final Lanczos3 pass at least reduces a rung: as libvips' shrink-on-load leaves a factor
/// of two for its final resize, so that the box-filtered rung's softness and aliasing are filtered away.
pub const HEADROOM: f64 = 2.0;

/// The deepest rung: 1/65536, below any image's need.
pub const LADDER_DEPTH: u8 = 16;

/// The rung for `need` (a fraction of the full resolution): the most halvings that leave at least [`HEADROOM`]
/// times the resolution needed; 0 (the full image) for anything above 1/(2 x HEADROOM) and for upscales.
pub fn rung_for(need: f64) -> u8 {
    let mut k = 0;
    // Powers of two are exact in f64; the tolerance keeps an exact fit (4000 -> 1000) on the smaller rung.
    while k < LADDER_DEPTH && need * HEADROOM * f64::from(1u32 << (k + 1)) <= 1.0 + 1e-9 {
        k += 1;
    }
    k
}

/// The IIIF name of a format this tool writes.
pub fn iiif_format(f: codec::Format) -> iiif::Format {
    match f {
        // JPEG 2000 is never written (`output_format` gives JPEG for it).
        codec::Format::Jpeg | codec::Format::Jp2 => iiif::Format::Jpg,
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
        iiif::Format::Source => source.written_as(),
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
            derivatives.push(Derivative {
                rung: if copy {
                    0
                } else {
                    rung_for(scale_need(&resolved))
                },
                label: ins.label.clone(),
                path: path(ins, iiif_format(format)),
                resolved,
                frame,
                from_stored,
                format,
                copy,
                tagged: colour.tagged && format.holds_icc(),
            });
        }
        let long = upright.0.max(upright.1).max(1) as f64;
        SourcePlan {
            analysis_rung: rung_for((pipeline::ANALYSIS_SIZE as f64 / long).min(1.0)),
            stored,
            orientation: probe.orientation,
            bytes_per_pixel: u64::from(probe.bytes_per_pixel.max(1)),
            derivatives,
            failed,
        }
    }

    /// Make everything from the full image: the ladder off (the reference the ladder's quality is measured
    /// against).
    pub fn without_ladder(mut self) -> SourcePlan {
        self.analysis_rung = 0;
        for d in &mut self.derivatives {
            d.rung = 0;
        }
        self
    }

    /// Byte copies only of the formats `keep` accepts; the others are made from the full-size pixels like any
    /// derivative (a copy is always full size, so its rung is already 0).
    pub fn without_copies_unless(mut self, keep: impl Fn(codec::Format) -> bool) -> SourcePlan {
        for d in &mut self.derivatives {
            d.copy &= keep(d.format);
        }
        self
    }

    /// What making `todo` needs: the deepest rung of the upright image, of the stored image (when a rotation `-1`
    /// derivative is made from it), and whether the analysis copy is (for smart crops, or `services`).
    fn ladder_needs(&self, todo: &[usize], services: bool) -> (u8, Option<u8>, bool) {
        let made = || {
            todo.iter()
                .map(|&i| &self.derivatives[i])
                .filter(|d| !d.copy)
        };
        let smart = made()
            .any(|d| !d.from_stored && matches!(d.resolved.region, ResolvedRegion::Smart { .. }));
        let analysis = smart || services;
        let upright = made()
            .filter(|d| !d.from_stored)
            .map(|d| d.rung)
            .chain(analysis.then_some(self.analysis_rung))
            .max()
            .unwrap_or(0);
        let stored = made().filter(|d| d.from_stored).map(|d| d.rung).max();
        (upright, stored, analysis)
    }

    /// What to decode to make `todo` (with the analysis copy when `services`, and a tile pyramid when `tiles`)
    /// from a source whose decode gives `levels` resolution levels below the full image: a JPEG 2000 file is its
    /// own pyramid, so its rung 1, and the halvings below it, are always its level 1, decoded on its own; the
    /// full image is decoded when something needs rung 0. Whichever other derivatives a run makes, each rung's
    /// pixels are the same.
    pub fn decodes(&self, todo: &[usize], levels: u8, services: bool, tiles: bool) -> Decodes {
        let (depth, stored, analysis) = self.ladder_needs(todo, services);
        // A JPEG 2000 has no orientation: there is never a stored ladder beside the upright one.
        let level_one = levels >= 1
            && depth >= 1
            && stored.is_none()
            && self.orientation == Orientation::NoTransforms;
        let rung_zero = todo
            .iter()
            .map(|&i| &self.derivatives[i])
            .any(|d| !d.copy && d.rung == 0);
        Decodes {
            full: !level_one || tiles || rung_zero || (analysis && self.analysis_rung == 0),
            level_one,
            depth,
            stored,
            analysis,
        }
    }

    /// The bytes one source keeps alive at most while making `todo` from `file_len` bytes with `decodes`: each
    /// decoded frame at the source's depth and again at 8 bits, its upright and stored copies, the ladders below
    /// them, and for every derivative its scaled, rotated and encoded images. A JPEG 2000 that decodes both its
    /// full image and its level 1 holds both, and their ladders, at once.
    pub fn memory_need(&self, todo: &[usize], file_len: u64, decodes: Decodes) -> u64 {
        match (decodes.full, decodes.level_one) {
            (true, false) => self.memory_need_at(todo, file_len, 0),
            (false, _) => self.memory_need_at(todo, file_len, 1),
            (true, true) => self
                .memory_need_at(todo, file_len, 0)
                .saturating_add(self.memory_need_at(&[], 0, 1)),
        }
    }

    /// [`SourcePlan::memory_need`] with one frame, decoded at resolution `level` (a quarter of the pixels a level).
    fn memory_need_at(&self, todo: &[usize], file_len: u64, level: u8) -> u64 {
        let pixels = |(w, h): (u32, u32)| w as u64 * h as u64;
        let decoded = pixels(self.stored) >> (2 * u32::from(level.min(16)));
        let any_stored = todo.iter().any(|&i| self.derivatives[i].from_stored);
        // The frame at its own depth; an 8-bit copy when that depth is more (16-bit or float); an upright copy
        // when the EXIF orientation turns it; the stored copy for rotation -1; the ladder's rungs (a third of
        // the frame in all, at most 4 bytes a pixel: 2 bytes a frame pixel, rounded up), and another for the
        // stored copy's.
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
        let stored = if any_stored { 4 + 2 } else { 0 };
        let frames = decoded.saturating_mul(depth + eight_bit + upright + stored + 2);
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
        // 1024 of 4000 px: the 2000 px rung would keep less than twice that, so it is made from the full image.
        assert_eq!((d[0].rung, d[1].rung, d[2].rung), (0, 0, 0));
    }

    #[test]
    fn rotation_minus_one_on_an_oriented_source_uses_the_stored_frame() {
        let set = [
            ins("o", "full", "full", "-1", ""),
            ins("u", "full", "full", "0", ""),
        ];
        let p = plan(&probe(400, 300, Orientation::Rotate90), &set);
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
    fn each_derivative_takes_its_rung_from_its_own_need() {
        // The SFO sizes on the 5640x3172 benchmark photo: each rung keeps at least twice the output's width.
        let set = [
            ins("k", "full", "!2048,1536", "0", "jpg"),
            ins("b", "full", "!1024,768", "0", "jpg"),
            ins("z", "full", "!640,480", "0", "jpg"),
            ins("n", "full", "!320,240", "0", "jpg"),
            ins("s", "-1,-1,320,320", "full", "0", "jpg"),
            ins("up", "full", "pct:150", "0", "jpg"),
        ];
        let p = plan(&probe(5640, 3172, Orientation::NoTransforms), &set);
        let rungs: Vec<u8> = p.derivatives.iter().map(|d| d.rung).collect();
        assert_eq!(rungs, [0, 1, 2, 3, 2, 0]);
        for d in &p.derivatives[..5] {
            let rung_w = 5640f64 / f64::from(1u32 << d.rung);
            let region_w = match d.resolved.region {
                ResolvedRegion::Rect(r) => r.w,
                ResolvedRegion::Smart { crop_w, .. } => crop_w,
            } as f64;
            let shrink = rung_w * region_w / 5640.0 / d.resolved.size.0 as f64;
            assert!(
                (HEADROOM..2.0 * HEADROOM).contains(&shrink),
                "{}: {shrink}",
                d.label
            );
        }
        // 256 px of 5640: 705 px at rung 3 is 2.75 times that.
        assert_eq!(p.analysis_rung, 3);
        // The same derivative alone gets the same rung.
        let alone = plan(&probe(5640, 3172, Orientation::NoTransforms), &set[2..3]);
        assert_eq!(alone.derivatives[0].rung, 2);
        assert_eq!(rung_for(0.25), 1);
        assert_eq!(rung_for(0.2501), 0);
        assert_eq!(rung_for(1e-9), LADDER_DEPTH);
    }

    #[test]
    fn a_jpeg2000_s_rungs_below_the_full_image_come_from_its_level_1() {
        // 4000 px wide: 1024 px is made from the full image (rung 0), 320 px from rung 2.
        let set = [
            ins("big", "full", "1024,", "0", "jpg"),
            ins("small", "full", "320,", "0", "jpg"),
        ];
        let p = plan(&probe(4000, 3000, Orientation::NoTransforms), &set);
        assert_eq!((p.derivatives[0].rung, p.derivatives[1].rung), (0, 2));
        let decodes = |todo: &[usize], levels, services, tiles| {
            let d = p.decodes(todo, levels, services, tiles);
            (d.full, d.level_one)
        };
        // Thumbnails alone: level 1 alone, a quarter of the pixels.
        assert_eq!(decodes(&[1], 5, false, false), (false, true));
        // With a full-size derivative, tiles or an analysis copy of the full image: both.
        assert_eq!(decodes(&[0, 1], 5, false, false), (true, true));
        assert_eq!(decodes(&[1], 5, false, true), (true, true));
        // Nothing below rung 0, or a file without levels (every other format): the full image alone.
        assert_eq!(decodes(&[0], 5, false, false), (true, false));
        assert_eq!(decodes(&[1], 0, false, false), (true, false));
        // The services' analysis copy of a 4000 px image comes from a rung below the full one.
        assert_eq!(decodes(&[1], 5, true, false), (false, true));
        let small = plan(&probe(300, 200, Orientation::NoTransforms), &set[1..]);
        assert_eq!(small.analysis_rung, 0);
        assert!(small.decodes(&[0], 5, true, false).full);
    }

    #[test]
    fn memory_need_grows_with_the_frame_and_the_outputs() {
        let small = [ins("a", "full", "!100,100", "0", "jpg")];
        let big = [ins("a", "full", "full", "0", "png")];
        let p = probe(4000, 3000, Orientation::NoTransforms);
        let (a, b) = (plan(&p, &small), plan(&p, &big));
        let full = Decodes {
            full: true,
            ..Decodes::default()
        };
        assert!(a.memory_need(&[0], 1 << 20, full) < b.memory_need(&[0], 1 << 20, full));
        // A full decode of 12 MP keeps the frame and the full-size output alive.
        assert!(b.memory_need(&[0], 0, full) >= 12_000_000 * 3 + 12_000_000 * 4);
        // A JPEG 2000's level 1 is a quarter of the frame; with the full image too, both are held.
        let one = Decodes {
            level_one: true,
            ..Decodes::default()
        };
        let both = Decodes { full: true, ..one };
        assert!(a.memory_need(&[0], 0, one) < a.memory_need(&[0], 0, full) / 3);
        assert!(a.memory_need(&[0], 0, both) > a.memory_need(&[0], 0, full));
    }
}
