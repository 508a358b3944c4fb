//! Decoding (with limits and EXIF orientation) and encoding. Knows formats and bytes, nothing of IIIF requests.
//!
//! A source is read in two steps: [`probe`] reads the header once (format, dimensions, orientation and, for
//! JPEG, everything the decoder needs), and [`decode_with`] takes that probe. JPEG goes through the one
//! interface in `jpeg` (libjpeg-turbo or pure Rust, chosen there by feature), everything else through `raster`.

pub mod colour;
mod gif;
mod jp2;
mod jpeg;
#[cfg(not(feature = "turbojpeg"))]
mod jpeg_rust;
#[cfg(feature = "turbojpeg")]
mod jpeg_turbo;
mod metadata;
mod raster;
#[cfg(test)]
mod tests;
mod tiff;
mod tiff_read;
mod webp;

#[cfg(not(any(feature = "turbojpeg", feature = "pure-rust")))]
compile_error!("build with the default `turbojpeg` feature or with `--no-default-features --features pure-rust`");

use image::{DynamicImage, ImageFormat};

pub use metadata::{can_remux, remux, Carried, MetadataMode, UnknownMetadataMode};
pub use webp::{WebpQuality, WebpQualityError};

/// EXIF orientation: how the stored pixels must be turned to be upright.
pub use image::metadata::Orientation;

/// A file format this tool reads and writes, known from a file's bytes or asked for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    /// JPEG 2000, as a JP2 file or a bare codestream: read, never written.
    Jp2,
}

impl Format {
    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
            Format::Jp2 => "jp2",
        }
    }

    /// Whether the format keeps an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }

    /// The format a derivative in the source's own format is written in: JPEG 2000 sources give JPEG.
    pub fn written_as(self) -> Format {
        match self {
            Format::Jp2 => Format::Jpeg,
            f => f,
        }
    }

    /// Whether the format can carry an ICC profile.
    pub fn holds_icc(self) -> bool {
        !matches!(self, Format::Gif)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty file")]
    Empty,
    #[error("not a supported image (jpg, png, webp, gif, tif, jp2)")]
    UnknownFormat,
    /// An image format recognised by its signature that this tool does not decode.
    #[error("{0} is not a supported image format (jpg, png, webp, gif, tif)")]
    Unsupported(&'static str),
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("cannot decode {format}: {message}")]
    Decode {
        format: &'static str,
        message: String,
    },
    #[error(
        "damaged {format}: {message} (the image would have visible defects; -accept-damaged decodes it \
         anyway)"
    )]
    Damaged {
        format: &'static str,
        message: String,
    },
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory { what: &'static str, bytes: usize },
    #[error("cannot encode {format}: {message}")]
    Encode {
        format: &'static str,
        message: String,
    },
}

/// A decoded source: 8-bit pixels in the stored orientation.
pub struct Decoded {
    pub image: DynamicImage,
    /// EXIF Orientation (none when absent or invalid).
    pub orientation: Orientation,
    /// The profile asked for could not be applied: the pixels are as stored (CMYK by the naive formula).
    pub colour_warning: Option<colour::ColourError>,
}

/// How to decode a source.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions<'a> {
    /// Refuse images with more pixels, before any pixel buffer is allocated.
    pub max_pixels: u64,
    /// Accept damaged data (a decoder's warning about corrupt entropy-coded data) instead of failing.
    pub accept_damaged: bool,
    /// Convert the pixels from this profile (the source's own) to sRGB right after decoding, at the decoded
    /// depth, before anything is reduced to 8 bits.
    pub to_srgb: Option<&'a colour::Profile>,
    /// The resolution level to decode, below the full image ([`levels`]): a JPEG 2000 source's own reduction.
    /// 0 (the full image) for every other format.
    pub level: u8,
}

/// The resolution levels below the full image a source's decode can give ([`DecodeOptions::level`]): a JPEG 2000
/// file's wavelet levels; 0 for every other format.
pub fn levels(probe: &Probe) -> u8 {
    probe.header.jp2.as_ref().map_or(0, |h| h.levels)
}

/// The source format, from the bytes (never the file name).
pub fn sniff(bytes: &[u8]) -> Result<Format, CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Empty);
    }
    if jp2::sniff(bytes) {
        return Ok(Format::Jp2);
    }
    // BigTIFF (version 43): `image` does not know its signature, but its TIFF decoder reads it.
    if bytes.starts_with(b"II\x2B\0") || bytes.starts_with(b"MM\0\x2B") {
        return Ok(Format::Tiff);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(Format::Jpeg),
        Ok(ImageFormat::Png) => Ok(Format::Png),
        Ok(ImageFormat::WebP) => Ok(Format::Webp),
        Ok(ImageFormat::Gif) => Ok(Format::Gif),
        Ok(ImageFormat::Tiff) => Ok(Format::Tiff),
        Ok(ImageFormat::Avif) => Err(CodecError::Unsupported("AVIF")),
        _ => Err(CodecError::UnknownFormat),
    }
}

/// What the header says, without decoding pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    /// Stored (not oriented) dimensions.
    pub width: u32,
    pub height: u32,
    /// EXIF Orientation (none when absent or invalid).
    pub orientation: Orientation,
    /// Bytes per pixel of the decoder's output at the source's own depth (e.g. 3 for RGB, 8 for 16-bit RGBA),
    /// so memory can be reserved before decoding.
    pub bytes_per_pixel: u8,
    /// What decoding needs from the header, so that it is read once.
    pub header: Header,
}

/// The parsed header facts a decoder takes from [`Probe`] (for JPEG: frame, components, ICC profile). The
/// default knows nothing; [`decode_with`] then reads the header itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    jpeg: Option<metadata::JpegHeader>,
    jp2: Option<jp2::Header>,
}

/// Read the header only: format, stored dimensions, orientation, and what the decoder needs. Refuses images over
/// `max_pixels`.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Probe, CodecError> {
    let format = sniff(bytes)?;
    if format == Format::Jp2 {
        let h = jp2::header(bytes, max_pixels, metadata::MAX_PNG_ICC)?;
        return Ok(Probe {
            format,
            width: h.width,
            height: h.height,
            // JPEG 2000 has no orientation tag.
            orientation: Orientation::NoTransforms,
            bytes_per_pixel: h.bytes_per_pixel(),
            header: Header {
                jp2: Some(h),
                ..Header::default()
            },
        });
    }
    if format != Format::Jpeg {
        let h = match format {
            Format::Tiff => tiff_read::probe(bytes, max_pixels)?,
            _ => None,
        };
        let h = match h {
            Some(h) => h,
            None => raster::probe(bytes, format, max_pixels)?,
        };
        return Ok(Probe {
            format,
            width: h.width,
            height: h.height,
            orientation: h.orientation,
            bytes_per_pixel: h.bytes_per_pixel,
            header: Header::default(),
        });
    }
    let h = metadata::jpeg_header(bytes)?;
    check_pixels(h.width, h.height, max_pixels)?;
    Ok(Probe {
        format,
        width: h.width,
        height: h.height,
        orientation: h.orientation,
        // Grey decodes as one channel but is counted as three, as before; CMYK is decoded as four, then converted.
        bytes_per_pixel: h.components.max(3),
        header: Header {
            jpeg: Some(h),
            ..Header::default()
        },
    })
}

/// Refuse an image over the pixel limit, before any pixel buffer exists.
fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), CodecError> {
    let pixels = width as u64 * height as u64;
    if pixels > max_pixels {
        return Err(CodecError::TooLarge {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    Ok(())
}

/// Decode once, as `opts` says, from the header facts in `probe` (of these same bytes). A JPEG decodes at a
/// reduced scale when `opts.min` allows it (its IDCT can produce 1/2, 1/4 or 1/8 of the frame directly, which
/// skips most of the colour conversion and the full-size pixel buffer); anything else decodes at full size.
pub fn decode_with(
    bytes: &[u8],
    probe: &Probe,
    opts: &DecodeOptions,
) -> Result<Decoded, CodecError> {
    check_pixels(probe.width, probe.height, opts.max_pixels)?;
    let (image, cmyk_warning) = if probe.format == Format::Jpeg {
        let read;
        let header = match &probe.header.jpeg {
            Some(h) => h,
            None => {
                read = metadata::jpeg_header(bytes)?;
                &read
            }
        };
        let cmyk = opts.to_srgb.filter(|p| p.space() == colour::Space::Cmyk);
        jpeg::decode(bytes, header, opts.accept_damaged, cmyk)?
    } else if probe.format == Format::Jp2 {
        let read;
        let header = match &probe.header.jp2 {
            Some(h) => h,
            None => {
                read = jp2::header(bytes, opts.max_pixels, metadata::MAX_PNG_ICC)?;
                &read
            }
        };
        (
            jp2::decode(bytes, header, !opts.accept_damaged, opts.level)?,
            None,
        )
    } else if opts.level > 0 {
        return Err(CodecError::Decode {
            format: probe.format.name(),
            message: format!("no resolution level {} to decode", opts.level),
        });
    } else {
        let own = match probe.format {
            Format::Tiff => tiff_read::decode(bytes, opts.max_pixels)?,
            _ => None,
        };
        match own {
            Some(image) => (image, None),
            None => (raster::decode(bytes, probe.format, opts.max_pixels)?, None),
        }
    };
    let mut image = image;
    let colour_warning = match opts.to_srgb {
        // A failed conversion leaves the pixels as they were, taken as sRGB.
        Some(p) if p.space() != colour::Space::Cmyk => p.to_srgb(&mut image).err(),
        _ => cmyk_warning,
    };
    Ok(Decoded {
        image: raster::to_8bit(image),
        orientation: probe.orientation,
        colour_warning,
    })
}

/// The source's embedded ICC profile, from the header facts in `probe` (of these same bytes); none when it
/// has none or it cannot be read. Bounded: a JPEG's by its segments, any other's to a few MB.
pub fn icc_profile(bytes: &[u8], probe: &Probe, max_pixels: u64) -> Option<Vec<u8>> {
    match &probe.header.jpeg {
        Some(h) => h.icc.clone(),
        None if probe.format == Format::Jpeg => metadata::jpeg_header(bytes).ok()?.icc,
        None if probe.format == Format::Jp2 => match &probe.header.jp2 {
            Some(h) => h.icc.clone(),
            None => {
                jp2::header(bytes, max_pixels, metadata::MAX_PNG_ICC)
                    .ok()?
                    .icc
            }
        },
        None => raster::icc(bytes, probe.format, max_pixels),
    }
}

/// Apply EXIF orientation `o` so that the pixels are upright.
pub fn orient(mut img: DynamicImage, o: Orientation) -> DynamicImage {
    if o != Orientation::NoTransforms {
        img.apply_orientation(o);
    }
    img
}

/// The orientation that undoes `o`: transposes and flips are their own inverse, the two quarter turns swap.
pub fn inverse_orientation(o: Orientation) -> Orientation {
    match o {
        Orientation::Rotate90 => Orientation::Rotate270,
        Orientation::Rotate270 => Orientation::Rotate90,
        o => o,
    }
}

/// Stored dimensions -> upright dimensions under EXIF orientation `o`.
pub fn oriented_dims(width: u32, height: u32, o: Orientation) -> (u32, u32) {
    if o.to_exif() >= 5 {
        (height, width)
    } else {
        (width, height)
    }
}

/// How to encode a derivative.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions<'a> {
    pub jpeg_quality: u8,
    /// Write this EXIF Orientation into the output (go-iiif's rotation `-1` keeps the source's tag).
    pub exif_orientation: Option<Orientation>,
    /// An ICC profile to embed (`-colour keep`): written into JPEG, PNG, WebP and TIFF when it describes the
    /// pixels' colour space (an RGB profile in a grey derivative would be refused by colour-managed readers).
    pub icc: Option<&'a [u8]>,
    pub webp_quality: WebpQuality,
    /// The source's metadata this derivative carries (`-metadata`), where its format holds it.
    pub metadata: Option<&'a Carried>,
}

pub fn encode(
    img: &DynamicImage,
    format: Format,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, CodecError> {
    let colour_channels = if img.color().has_color() { 3 } else { 1 };
    let icc = opts
        .icc
        .filter(|p| format.holds_icc() && colour::icc_fits(p, colour_channels));
    let opts = &EncodeOptions {
        icc,
        ..opts.clone()
    };
    let bytes = encode_pixels(img, format, opts)?;
    let bytes = match (format, icc) {
        (Format::Webp, Some(p)) => colour::embed_webp(bytes, p)?,
        _ => bytes,
    };
    // Only JPEG derivatives keep pixels as stored with an Orientation tag; the others are written upright.
    let carried = match opts.metadata {
        Some(c) if c != &Carried::default() => c,
        _ => return Ok(bytes),
    };
    let exif = || carried.exif(Orientation::NoTransforms);
    match format {
        Format::Png => metadata::png_with(&bytes, exif().as_deref(), carried.xmp(), false),
        Format::Webp => metadata::webp_with(&bytes, exif().as_deref(), carried.xmp(), false),
        _ => Ok(bytes),
    }
}

fn encode_pixels(
    img: &DynamicImage,
    format: Format,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, CodecError> {
    match format {
        Format::Jpeg => {
            let none = Carried::default();
            let carried = opts.metadata.unwrap_or(&none);
            let exif = carried.exif(opts.exif_orientation.unwrap_or(Orientation::NoTransforms));
            let segments = carried.jpeg_segments();
            jpeg::encode(img, opts.jpeg_quality, exif.as_deref(), &segments, opts.icc)
        }
        Format::Png => {
            let mut out = Vec::new();
            let mut enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            if let Some(icc) = opts.icc {
                // A profile the encoder refuses only costs colour accuracy, not the derivative.
                let _ = image::ImageEncoder::set_icc_profile(&mut enc, icc.to_vec());
            }
            img.write_with_encoder(enc)
                .map_err(|e| CodecError::Encode {
                    format: "png",
                    message: e.to_string(),
                })?;
            Ok(out)
        }
        Format::Webp => webp::encode(img, opts.webp_quality),
        Format::Gif => gif::encode(img),
        Format::Tiff => tiff::encode(img, opts.icc, opts.metadata),
        Format::Jp2 => Err(CodecError::Encode {
            format: "jp2",
            message: "JPEG 2000 is read, not written".into(),
        }),
    }
}
