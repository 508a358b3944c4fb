//! Colour management: a source's embedded ICC profile, read once, and the conversion of its decoded pixels to
//! sRGB with `moxcms`, in place and at the pixels' own depth (16-bit sources at 16 bits), relative colorimetric
//! as libvips does by default. A profile that is sRGB in effect (whatever its name or version) is not applied, so
//! the common sRGB source costs one parse of its profile and no pass over its pixels. A profile that cannot be read
//! or applied is a [`ColourError`]: the caller reports it and takes the pixels as sRGB.

use image::{DynamicImage, ImageBuffer, Pixel, RgbImage};
use moxcms::{CmsError, ColorProfile, DataColorSpace, Layout, RenderingIntent, TransformOptions};
use rayon::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What derivatives do with a source's colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColourMode {
    /// Convert from the source's profile to sRGB, once per source; outputs are untagged sRGB.
    #[default]
    Srgb,
    /// Keep the source's pixels and embed its profile in every format that holds one; the others (GIF) and
    /// CMYK sources are converted.
    Keep,
}

/// A colour mode that is neither `srgb` nor `keep`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a colour mode (srgb or keep)")]
pub struct UnknownColourMode(pub String);

impl std::str::FromStr for ColourMode {
    type Err = UnknownColourMode;
    fn from_str(s: &str) -> Result<Self, UnknownColourMode> {
        match s {
            "srgb" => Ok(ColourMode::Srgb),
            "keep" => Ok(ColourMode::Keep),
            other => Err(UnknownColourMode(other.into())),
        }
    }
}

impl std::fmt::Display for ColourMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColourMode::Srgb => "srgb",
            ColourMode::Keep => "keep",
        })
    }
}

/// Why a source's profile is not applied; its pixels are then taken as sRGB.
#[derive(Debug, thiserror::Error)]
pub enum ColourError {
    #[error("ICC profile of {len} bytes cannot be read ({reason}); colours taken as sRGB")]
    Unreadable { len: usize, reason: CmsFailure },
    #[error(
        "ICC profile {name:?} is for {space} data, which is not supported; colours taken as sRGB"
    )]
    Unsupported { name: String, space: String },
    #[error("ICC profile {name:?} cannot be applied ({reason}); colours taken as sRGB")]
    Transform { name: String, reason: String },
    #[error("ICC profile {name:?} is a {space} profile, but the pixels are {pixels}; colours taken as sRGB")]
    Mismatch {
        name: String,
        space: &'static str,
        pixels: String,
    },
}

/// The colour spaces a source profile may describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Rgb,
    Gray,
    Cmyk,
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Space::Rgb => "RGB",
            Space::Gray => "gray",
            Space::Cmyk => "CMYK",
        }
    }
}

/// A source profile that differs from sRGB and can be applied.
pub struct Profile {
    cms: ColorProfile,
    name: String,
    space: Space,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Profile({:?}, {})", self.name, self.space.name())
    }
}

/// Relative colorimetric, libvips' default: white maps to white, in-gamut colours are kept exactly.
fn options() -> TransformOptions {
    TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    }
}

fn srgb() -> ColorProfile {
    ColorProfile::new_srgb()
}

/// sRGB's gray: the sRGB tone curve on a gray axis, so a gray source stays one channel.
fn srgb_gray() -> ColorProfile {
    let mut gray = ColorProfile::new_gray_with_gamma(2.2);
    gray.gray_trc = srgb().red_trc;
    gray
}

/// The profile's description, for messages.
fn description(p: &ColorProfile) -> String {
    use moxcms::ProfileText;
    let text = match &p.description {
        Some(ProfileText::PlainString(s)) => s.clone(),
        Some(ProfileText::Localizable(v)) => v.first().map(|l| l.value.clone()).unwrap_or_default(),
        Some(ProfileText::Description(d)) => d.ascii_string.clone(),
        None => String::new(),
    };
    let text: String = text
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    if text.is_empty() {
        "(no description)".into()
    } else {
        text
    }
}

/// `f`, with a panic inside the colour library turned into an error: the profile is untrusted input.
fn guarded<T>(f: impl FnOnce() -> Result<T, CmsError>) -> Result<T, CmsFailure> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| CmsFailure::Panicked)?
        .map_err(CmsFailure::Cms)
}

/// Why the colour library gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CmsFailure {
    #[error("{0}")]
    Cms(CmsError),
    #[error("the colour library failed on it")]
    Panicked,
}

impl Profile {
    /// Read `icc`: `None` when it is sRGB in effect (nothing to convert).
    pub fn parse(icc: &[u8]) -> Result<Option<Profile>, ColourError> {
        let cms = guarded(|| ColorProfile::new_from_slice(icc)).map_err(|reason| {
            ColourError::Unreadable {
                len: icc.len(),
                reason,
            }
        })?;
        let name = description(&cms);
        let space = match cms.color_space {
            DataColorSpace::Rgb => Space::Rgb,
            DataColorSpace::Gray => Space::Gray,
            DataColorSpace::Cmyk => Space::Cmyk,
            other => {
                return Err(ColourError::Unsupported {
                    name,
                    space: format!("{other:?}"),
                })
            }
        };
        let profile = Profile { cms, name, space };
        // Building the transform checks that the profile can be applied at all, and its effect on a grid of
        // colours says whether it is sRGB: sRGB under any name, version or curve encoding is left alone.
        let identity = profile
            .is_identity()
            .map_err(|e| profile.transform_error(e))?;
        Ok((!identity).then_some(profile))
    }

    pub fn space(&self) -> Space {
        self.space
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn transform_error(&self, reason: impl std::fmt::Display) -> ColourError {
        ColourError::Transform {
            name: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Whether the profile maps every colour of a 6x6x6 grid (or 16 grays) to within one level of itself.
    fn is_identity(&self) -> Result<bool, CmsFailure> {
        let samples: Vec<u8> = match self.space {
            Space::Cmyk => {
                // Never sRGB; check only that the transform can be built and run.
                let t = guarded(|| {
                    self.cms
                        .create_transform_8bit(Layout::Rgba, &srgb(), Layout::Rgb, options())
                })?;
                let mut out = [0u8; 3];
                guarded(|| t.transform(&[0, 0, 0, 0], &mut out))?;
                return Ok(false);
            }
            Space::Gray => (0..16).map(|v| v * 17).collect(),
            Space::Rgb => {
                let steps = [0u8, 51, 102, 153, 204, 255];
                let mut v = Vec::with_capacity(3 * 216);
                for r in steps {
                    for g in steps {
                        for b in steps {
                            v.extend_from_slice(&[r, g, b]);
                        }
                    }
                }
                v
            }
        };
        let mut out = vec![0u8; samples.len()];
        let layout = if self.space == Space::Gray {
            Layout::Gray
        } else {
            Layout::Rgb
        };
        let dst = self.destination();
        guarded(|| {
            let t = self
                .cms
                .create_transform_8bit(layout, &dst, layout, options())?;
            t.transform(&samples, &mut out)
        })?;
        Ok(samples.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1))
    }

    fn destination(&self) -> ColorProfile {
        match self.space {
            Space::Gray => srgb_gray(),
            _ => srgb(),
        }
    }

    /// Convert `img` to sRGB in place, at its own depth (float images become 16-bit). On an error the pixels
    /// are as they were: every check comes before the first pixel is touched.
    pub fn to_srgb(&self, img: &mut DynamicImage) -> Result<(), ColourError> {
        match self.space {
            Space::Cmyk => return Err(self.mismatch(img)),
            Space::Gray => return self.gray_to_srgb(img),
            Space::Rgb => {}
        }
        match img {
            DynamicImage::ImageRgb8(i) => self.apply8(Layout::Rgb, i),
            DynamicImage::ImageRgba8(i) => self.apply8(Layout::Rgba, i),
            DynamicImage::ImageRgb16(i) => self.apply16(Layout::Rgb, i),
            DynamicImage::ImageRgba16(i) => self.apply16(Layout::Rgba, i),
            DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
                let mut wide = if img.color().has_alpha() {
                    DynamicImage::ImageRgba16(img.to_rgba16())
                } else {
                    DynamicImage::ImageRgb16(img.to_rgb16())
                };
                self.to_srgb(&mut wide)?;
                *img = wide;
                Ok(())
            }
            other => Err(self.mismatch(other)),
        }
    }

    fn mismatch(&self, img: &DynamicImage) -> ColourError {
        ColourError::Mismatch {
            name: self.name.clone(),
            space: self.space.name(),
            pixels: format!("{:?}", img.color()),
        }
    }

    fn apply8<P: Pixel<Subpixel = u8> + Send + Sync>(
        &self,
        layout: Layout,
        img: &mut ImageBuffer<P, Vec<u8>>,
    ) -> Result<(), ColourError> {
        let t = guarded(|| {
            self.cms
                .create_transform_8bit(layout, &srgb(), layout, options())
        })
        .map_err(|e| self.transform_error(e))?;
        let row = img.width() as usize * usize::from(P::CHANNEL_COUNT);
        in_place(&*t, img, row).map_err(|e| self.transform_error(e))
    }

    fn apply16<P: Pixel<Subpixel = u16> + Send + Sync>(
        &self,
        layout: Layout,
        img: &mut ImageBuffer<P, Vec<u16>>,
    ) -> Result<(), ColourError> {
        let t = guarded(|| {
            self.cms
                .create_transform_16bit(layout, &srgb(), layout, options())
        })
        .map_err(|e| self.transform_error(e))?;
        let row = img.width() as usize * usize::from(P::CHANNEL_COUNT);
        in_place(&*t, img, row).map_err(|e| self.transform_error(e))
    }

    /// A gray profile is a tone curve: one lookup table per depth, applied to every colour channel (a gray
    /// source expanded to RGB on the way stays right).
    fn gray_to_srgb(&self, img: &mut DynamicImage) -> Result<(), ColourError> {
        let dst = srgb_gray();
        let lut8 = || -> Result<Vec<u8>, ColourError> {
            let src: Vec<u8> = (0..=255).collect();
            let mut out = vec![0u8; 256];
            guarded(|| {
                let t =
                    self.cms
                        .create_transform_8bit(Layout::Gray, &dst, Layout::Gray, options())?;
                t.transform(&src, &mut out)
            })
            .map_err(|e| self.transform_error(e))?;
            Ok(out)
        };
        let lut16 = || -> Result<Vec<u16>, ColourError> {
            let src: Vec<u16> = (0..=u16::MAX).collect();
            let mut out = vec![0u16; src.len()];
            guarded(|| {
                let t =
                    self.cms
                        .create_transform_16bit(Layout::Gray, &dst, Layout::Gray, options())?;
                t.transform(&src, &mut out)
            })
            .map_err(|e| self.transform_error(e))?;
            Ok(out)
        };
        fn map<P: Pixel + Send + Sync>(
            img: &mut ImageBuffer<P, Vec<P::Subpixel>>,
            lut: &[P::Subpixel],
        ) where
            P::Subpixel: Into<u32> + Send + Sync,
        {
            let alpha = P::HAS_ALPHA;
            let n = usize::from(P::CHANNEL_COUNT);
            img.par_chunks_mut(n).for_each(|px| {
                let colours = if alpha { n - 1 } else { n };
                for c in &mut px[..colours] {
                    *c = lut[(*c).into() as usize];
                }
            });
        }
        match img {
            DynamicImage::ImageLuma8(i) => map(i, &lut8()?),
            DynamicImage::ImageLumaA8(i) => map(i, &lut8()?),
            DynamicImage::ImageRgb8(i) => map(i, &lut8()?),
            DynamicImage::ImageRgba8(i) => map(i, &lut8()?),
            DynamicImage::ImageLuma16(i) => map(i, &lut16()?),
            DynamicImage::ImageLumaA16(i) => map(i, &lut16()?),
            DynamicImage::ImageRgb16(i) => map(i, &lut16()?),
            DynamicImage::ImageRgba16(i) => map(i, &lut16()?),
            other => return Err(self.mismatch(other)),
        }
        Ok(())
    }

    /// CMYK ink amounts (0 = no ink, 4 samples a pixel) to sRGB.
    pub fn cmyk_to_srgb(
        &self,
        width: u32,
        height: u32,
        ink: &[u8],
    ) -> Result<RgbImage, ColourError> {
        if self.space != Space::Cmyk {
            return Err(ColourError::Mismatch {
                name: self.name.clone(),
                space: self.space.name(),
                pixels: "CMYK".into(),
            });
        }
        let t = guarded(|| {
            self.cms
                .create_transform_8bit(Layout::Rgba, &srgb(), Layout::Rgb, options())
        })
        .map_err(|e| self.transform_error(e))?;
        let (w, h) = (width as usize, height as usize);
        let len = w
            .checked_mul(h)
            .and_then(|n| n.checked_mul(3))
            .filter(|_| ink.len() == w * h * 4)
            .ok_or_else(|| self.transform_error("the CMYK buffer does not match its size"))?;
        let mut rgb = Vec::new();
        rgb.try_reserve_exact(len)
            .map_err(|_| self.transform_error(format!("cannot allocate {len} bytes")))?;
        rgb.resize(len, 0);
        guarded(|| {
            rgb.par_chunks_mut(w.max(1) * 3)
                .zip(ink.par_chunks(w.max(1) * 4))
                .try_for_each(|(out, inp)| t.transform(inp, out))
        })
        .map_err(|e| self.transform_error(e))?;
        RgbImage::from_raw(width, height, rgb)
            .ok_or_else(|| self.transform_error("the converted buffer does not match its size"))
    }
}

/// Run `t` over `data` in place, a band of rows at a time: one band's copy is all the extra memory it takes.
fn in_place<T: Copy + Default + Send + Sync>(
    t: &(dyn moxcms::TransformExecutor<T> + Send + Sync),
    data: &mut [T],
    row: usize,
) -> Result<(), CmsFailure> {
    const BAND_SAMPLES: usize = 1 << 16;
    let band = row.max(1) * (BAND_SAMPLES / row.max(1)).max(1);
    guarded(|| {
        data.par_chunks_mut(band)
            .try_for_each_init(Vec::new, |copy: &mut Vec<T>, chunk| {
                copy.clear();
                copy.extend_from_slice(chunk);
                t.transform(copy, chunk)
            })
    })
}

/// `webp` with `icc` in an ICCP chunk (the file made extended, VP8X, when it was simple), whichever encoder
/// wrote it.
pub fn embed_webp(webp: Vec<u8>, icc: &[u8]) -> Result<Vec<u8>, super::CodecError> {
    use img_parts::{webp::WebP, Bytes, ImageICC};
    let fail = |e: img_parts::Error| super::CodecError::Encode {
        format: "webp",
        message: format!("cannot embed the ICC profile: {e}"),
    };
    let mut file = WebP::from_bytes(Bytes::from(webp)).map_err(fail)?;
    file.set_icc_profile(Some(Bytes::copy_from_slice(icc)));
    let mut out = Vec::new();
    file.encoder()
        .write_to(&mut out)
        .map_err(|e| super::CodecError::Encode {
            format: "webp",
            message: format!("cannot embed the ICC profile: {e}"),
        })?;
    Ok(out)
}

/// Whether profile bytes describe the colour space of pixels with `channels` colour channels (alpha not
/// counted): a profile embedded in an image of another kind is refused by colour-managed decoders. Reads the
/// header's colour space field only.
pub fn icc_fits(icc: &[u8], colour_channels: u8) -> bool {
    match icc.get(16..20) {
        Some(b"RGB ") => colour_channels == 3,
        Some(b"GRAY") => colour_channels == 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_under_any_name_is_not_converted_and_garbage_is_an_error() {
        let srgb = srgb().encode().unwrap();
        assert!(Profile::parse(&srgb).unwrap().is_none());
        let adobe = ColorProfile::new_adobe_rgb().encode().unwrap();
        let p = Profile::parse(&adobe).unwrap().unwrap();
        assert_eq!(p.space(), Space::Rgb);
        let e = Profile::parse(&adobe[..100]).unwrap_err();
        assert!(e.to_string().contains("cannot be read"), "{e}");
        let e = Profile::parse(b"not a profile at all").unwrap_err();
        assert!(e.to_string().contains("taken as sRGB"), "{e}");
    }

    #[test]
    fn adobe_rgb_green_is_more_saturated_in_srgb() {
        let adobe = ColorProfile::new_adobe_rgb().encode().unwrap();
        let p = Profile::parse(&adobe).unwrap().unwrap();
        let mut img =
            DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, image::Rgb([64, 160, 64])));
        p.to_srgb(&mut img).unwrap();
        let out = img.into_rgb8();
        let px = out.get_pixel(2, 1).0;
        // Adobe RGB's green primary lies outside sRGB: the same numbers mean a more saturated colour.
        assert!(px[1] > 160 && px[0] < 64, "{px:?}");
    }

    #[test]
    fn profiles_fit_only_their_own_kind_of_pixels() {
        let adobe = ColorProfile::new_adobe_rgb().encode().unwrap();
        assert!(icc_fits(&adobe, 3) && !icc_fits(&adobe, 1));
        assert!(!icc_fits(b"short", 3));
    }
}
