//! Decoding (with limits and EXIF orientation) and encoding. Knows formats and bytes, nothing of IIIF requests.

#[cfg(feature = "turbojpeg")]
pub mod jpeg_turbo;

#[cfg(not(any(feature = "turbojpeg", feature = "pure-rust")))]
compile_error!("build with the default `turbojpeg` feature or with `--no-default-features --features pure-rust`");

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;

/// EXIF orientation: how the stored pixels must be turned to be upright.
pub use image::metadata::Orientation;

/// The default decode limit in tests; the run's comes from its settings.
#[cfg(test)]
const DEFAULT_MAX_PIXELS: u64 = 250_000_000;

/// A file format this tool reads and writes, known from a file's bytes or asked for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
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
        }
    }

    /// Whether the format keeps an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty file")]
    Empty,
    #[error("not a supported image (jpg, png, webp, gif, tif)")]
    UnknownFormat,
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
    #[error("cannot encode {format}: {message}")]
    Encode {
        format: &'static str,
        message: String,
    },
}

/// A decoded source: 8-bit pixels in the stored orientation.
pub struct Decoded {
    pub image: DynamicImage,
    pub format: Format,
    /// EXIF Orientation (none when absent or invalid).
    pub orientation: Orientation,
    pub icc: Option<Vec<u8>>,
}

/// How to decode a source.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Refuse images with more pixels, before any pixel buffer is allocated.
    pub max_pixels: u64,
    /// Decode at a reduced scale when the format allows it and the result still has at least this many pixels
    /// per side (stored orientation); `None` for full size.
    pub min: Option<(u32, u32)>,
    /// Accept damaged data (a decoder's warning about corrupt entropy-coded data) instead of failing.
    pub accept_damaged: bool,
}

/// Decode once, as `opts` says.
pub fn decode_with(bytes: &[u8], opts: &DecodeOptions) -> Result<Decoded, CodecError> {
    match opts.min {
        Some(min) => decode_at_least(bytes, opts.max_pixels, min),
        None => decode(bytes, opts.max_pixels),
    }
}

/// The source format, from the bytes (never the file name).
pub fn sniff(bytes: &[u8]) -> Result<Format, CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Empty);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(Format::Jpeg),
        Ok(ImageFormat::Png) => Ok(Format::Png),
        Ok(ImageFormat::WebP) => Ok(Format::Webp),
        Ok(ImageFormat::Gif) => Ok(Format::Gif),
        Ok(ImageFormat::Tiff) => Ok(Format::Tiff),
        _ => Err(CodecError::UnknownFormat),
    }
}

fn image_format(f: Format) -> ImageFormat {
    match f {
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
        Format::Tiff => ImageFormat::Tiff,
        Format::Jpeg => ImageFormat::Jpeg,
    }
}

/// What the header says, without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// Open a decoder on the header, refusing images over `max_pixels` before any pixel buffer is allocated.
fn open(bytes: &[u8], max_pixels: u64) -> Result<(Box<dyn ImageDecoder + '_>, Probe), CodecError> {
    let format = sniff(bytes)?;
    let name = format.name();
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut limits = image::Limits::default();
    // image's own allocation cap is 512 MiB; ours is the pixel limit, checked below.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(name, e))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let probe = Probe {
        format,
        width,
        height,
        orientation,
        bytes_per_pixel: decoder.color_type().bytes_per_pixel(),
    };
    Ok((Box::new(decoder), probe))
}

fn decode_error(format: &'static str, e: image::ImageError) -> CodecError {
    CodecError::Decode {
        format,
        message: e.to_string(),
    }
}

/// Read the header only: format, stored dimensions, orientation.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Probe, CodecError> {
    if sniff(bytes)? != Format::Jpeg {
        return open(bytes, max_pixels).map(|(_, p)| p);
    }
    // zune directly: image's JPEG wrapper copies the whole file just to read its header.
    let d = zune_headers(bytes).map_err(|e| CodecError::Decode {
        format: "jpeg",
        message: e.to_string(),
    })?;
    let (w, h) = d.dimensions().ok_or_else(|| CodecError::Decode {
        format: "jpeg",
        message: "no frame header".into(),
    })?;
    let (width, height) = (w as u32, h as u32);
    check_pixels(width, height, max_pixels)?;
    // CMYK is decoded as four channels, then converted.
    let channels = d
        .input_colorspace()
        .map_or(3, |c| c.num_components().max(3));
    Ok(Probe {
        format: Format::Jpeg,
        width,
        height,
        orientation: zune_orientation(&d),
        bytes_per_pixel: channels as u8,
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

/// A JPEG whose last scan has no end-of-image marker after it was cut short. The decoder would fill the
/// missing part with grey and carry on; a museum derivative must not silently lose the bottom of the picture.
/// (0xFF bytes inside entropy-coded data are always stuffed, so SOS and EOI markers cannot occur there.)
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => !bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => true,
    }
}

/// Decode once, refusing images over `max_pixels` before any pixel buffer is allocated.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Decoded, CodecError> {
    if sniff(bytes)? == Format::Jpeg {
        if jpeg_is_truncated(bytes) {
            return Err(CodecError::Decode {
                format: "jpeg",
                message: "truncated: the file ends before the image data does".into(),
            });
        }
        #[cfg(feature = "turbojpeg")]
        if let Some(d) = decode_turbo(bytes, max_pixels, None)? {
            return Ok(d);
        }
        return decode_jpeg(bytes, max_pixels);
    }
    let (mut decoder, probe) = open(bytes, max_pixels)?;
    let icc = decoder.icc_profile().ok().flatten();
    let image =
        DynamicImage::from_decoder(decoder).map_err(|e| decode_error(probe.format.name(), e))?;
    Ok(Decoded {
        image: to_8bit(image),
        format: probe.format,
        orientation: probe.orientation,
        icc,
    })
}

/// JPEG through zune-jpeg directly: image's wrapper copies the file and then the pixels, which at 18 MP
/// would add about 70 MB to the peak. The pixel buffer zune returns becomes the image without a copy.
fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<Decoded, CodecError> {
    use zune_core::colorspace::ColorSpace;
    let err = |e: zune_jpeg::errors::DecodeErrors| CodecError::Decode {
        format: "jpeg",
        message: e.to_string(),
    };
    let mut decoder = zune_headers(bytes).map_err(err)?;
    let (w, h) = decoder.dimensions().ok_or_else(|| CodecError::Decode {
        format: "jpeg",
        message: "no frame header".into(),
    })?;
    let (width, height) = (w as u32, h as u32);
    check_pixels(width, height, max_pixels)?;
    let orientation = zune_orientation(&decoder);
    let icc = decoder.icc_profile();
    let input = decoder.input_colorspace().unwrap_or(ColorSpace::YCbCr);
    // CMYK, YCCK and YCbCr all come out as RGB; grey stays grey.
    let out = match input {
        ColorSpace::Luma => ColorSpace::Luma,
        ColorSpace::LumaA => ColorSpace::LumaA,
        ColorSpace::RGBA => ColorSpace::RGBA,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let data = decoder.decode().map_err(err)?;
    let short = || CodecError::Decode {
        format: "jpeg",
        message: "decoder returned fewer pixels than the frame has".into(),
    };
    let image = match out {
        ColorSpace::Luma => DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
        ColorSpace::LumaA => DynamicImage::ImageLumaA8(
            image::GrayAlphaImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
        ColorSpace::RGBA => DynamicImage::ImageRgba8(
            image::RgbaImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
        _ => DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(width, height, data).ok_or_else(short)?,
        ),
    };
    Ok(Decoded {
        image,
        format: Format::Jpeg,
        orientation,
        icc,
    })
}

/// Decode at a reduced scale when the format allows it and a smaller image still has at least `min` pixels
/// per side (stored orientation): JPEG's IDCT can produce 1/2, 1/4 or 1/8 of the frame directly, which skips
/// most of the colour conversion and the full-size pixel buffer. Anything else decodes at full size.
pub fn decode_at_least(
    bytes: &[u8],
    max_pixels: u64,
    min: (u32, u32),
) -> Result<Decoded, CodecError> {
    if sniff(bytes)? != Format::Jpeg || jpeg_is_truncated(bytes) {
        return decode(bytes, max_pixels);
    }
    #[cfg(feature = "turbojpeg")]
    if let Some(d) = decode_turbo(bytes, max_pixels, Some(min))? {
        return Ok(d);
    }
    #[cfg(feature = "pure-rust")]
    if let Some(scaled) = decode_jpeg_scaled(bytes, max_pixels, min)? {
        return Ok(scaled);
    }
    decode(bytes, max_pixels)
}

/// libjpeg-turbo, at the smallest DCT scale that still covers `min` (full size for `None`). `None` when it refuses
/// the file (it treats libjpeg's warnings as errors): the pure-Rust decoders are more forgiving, and report the
/// error if there is one.
#[cfg(feature = "turbojpeg")]
fn decode_turbo(
    bytes: &[u8],
    max_pixels: u64,
    min: Option<(u32, u32)>,
) -> Result<Option<Decoded>, CodecError> {
    match jpeg_turbo::decode_jpeg(bytes, min, max_pixels) {
        Ok((image, _)) => {
            let (orientation, icc) = jpeg_metadata(bytes);
            Ok(Some(Decoded {
                image,
                format: Format::Jpeg,
                orientation,
                icc,
            }))
        }
        Err(jpeg_turbo::JpegError::TooLarge {
            width,
            height,
            pixels,
            limit,
        }) => Err(CodecError::TooLarge {
            width,
            height,
            pixels,
            limit,
        }),
        Err(_) => Ok(None),
    }
}

type ZuneDecoder<'a> = zune_jpeg::JpegDecoder<zune_core::bytestream::ZCursor<&'a [u8]>>;

/// A zune-jpeg decoder with the headers read: frame size, EXIF and ICC without any pixels. Lenient, as image's
/// own wrapper is, and with no size cap of its own (ours is the pixel limit).
fn zune_headers(bytes: &[u8]) -> Result<ZuneDecoder<'_>, zune_jpeg::errors::DecodeErrors> {
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    decoder.decode_headers()?;
    Ok(decoder)
}

/// EXIF orientation (none when absent or invalid).
fn zune_orientation(decoder: &ZuneDecoder<'_>) -> Orientation {
    decoder
        .exif()
        .and_then(|e| Orientation::from_exif_chunk(e))
        .unwrap_or(Orientation::NoTransforms)
}

/// EXIF orientation (1 when absent) and ICC profile of a JPEG, from its header segments.
fn jpeg_metadata(bytes: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    match zune_headers(bytes) {
        Ok(d) => (zune_orientation(&d), d.icc_profile()),
        Err(_) => (Orientation::NoTransforms, None),
    }
}

/// `None` when a reduced decode is not possible (no smaller scale is large enough, or a colour model that the
/// scaling decoder does not convert, such as CMYK); the caller then decodes at full size.
#[cfg(feature = "pure-rust")]
fn decode_jpeg_scaled(
    bytes: &[u8],
    max_pixels: u64,
    min: (u32, u32),
) -> Result<Option<Decoded>, CodecError> {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    if d.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = d.info() else {
        return Ok(None);
    };
    let (width, height) = (info.width as u32, info.height as u32);
    check_pixels(width, height, max_pixels)?;
    if min.0.saturating_mul(2) > width
        || min.1.saturating_mul(2) > height
        || !matches!(
            info.pixel_format,
            jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
        )
    {
        return Ok(None);
    }
    // Ask with the frame's own aspect, so one scale satisfies both sides.
    let k = (min.0 as f64 / width as f64).max(min.1 as f64 / height as f64);
    let req = |v: u32| ((v as f64 * k).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
    let Ok((w, h)) = d.scale(req(width), req(height)) else {
        return Ok(None);
    };
    let (w, h) = (w as u32, h as u32);
    if w < min.0 || h < min.1 {
        return Ok(None);
    }
    let Ok(data) = d.decode() else {
        // The full-size decoder is more forgiving, and it reports the error if there is one.
        return Ok(None);
    };
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(w, h, data).map(DynamicImage::ImageLuma8)
        }
        _ => image::RgbImage::from_raw(w, h, data).map(DynamicImage::ImageRgb8),
    };
    let (orientation, icc) = jpeg_metadata(bytes);
    Ok(image.map(|image| Decoded {
        image,
        format: Format::Jpeg,
        orientation,
        icc,
    }))
}

/// The pipeline works on 8-bit pixels; 16-bit and float sources are reduced once here.
fn to_8bit(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => img,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(img.to_luma8()),
        DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLumaA8(img.to_luma_alpha8()),
        i if i.color().has_alpha() => DynamicImage::ImageRgba8(i.to_rgba8()),
        i => DynamicImage::ImageRgb8(i.to_rgb8()),
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
    /// The source's ICC profile, carried into formats that hold one (jpg, png) so colours stay right.
    pub icc: Option<&'a [u8]>,
}

pub fn encode(
    img: &DynamicImage,
    format: Format,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, CodecError> {
    match format {
        Format::Jpeg => encode_jpeg(img, opts),
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
        Format::Webp | Format::Gif | Format::Tiff => {
            // webp and gif encoders take RGB(A) only.
            let img = match (format, img) {
                (Format::Gif, i) => DynamicImage::ImageRgba8(i.to_rgba8()),
                (Format::Webp, i) if i.color().has_alpha() => {
                    DynamicImage::ImageRgba8(i.to_rgba8())
                }
                (Format::Webp, i) => DynamicImage::ImageRgb8(i.to_rgb8()),
                (_, i) => i.clone(),
            };
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, image_format(format))
                .map_err(|e| CodecError::Encode {
                    format: format.name(),
                    message: e.to_string(),
                })?;
            Ok(out.into_inner())
        }
    }
}

fn encode_jpeg(img: &DynamicImage, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (img.width(), img.height());
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(CodecError::Encode {
            format: "jpeg",
            message: format!("{w}x{h} is larger than JPEG's 65535 pixel limit"),
        });
    }
    #[cfg(feature = "turbojpeg")]
    return encode_jpeg_turbo(img, opts);
    #[cfg(not(feature = "turbojpeg"))]
    encode_jpeg_rust(img, opts, w as u16, h as u16)
}

#[cfg(feature = "turbojpeg")]
fn encode_jpeg_turbo(img: &DynamicImage, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    let converted;
    let img = match img {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img,
        i if i.color().has_alpha() => {
            converted = DynamicImage::ImageRgb8(flatten_on_white(i));
            &converted
        }
        i => {
            converted = DynamicImage::ImageRgb8(i.to_rgb8());
            &converted
        }
    };
    let exif = opts
        .exif_orientation
        .map(|o| exif_orientation_segment(o.to_exif()));
    // The segment starts with "Exif\0\0"; the encoder takes the TIFF bytes after it.
    let tiff = exif.as_deref().map(|e| &e[6..]);
    jpeg_turbo::encode_jpeg(img, opts.jpeg_quality.clamp(1, 100), tiff, opts.icc).map_err(|e| {
        CodecError::Encode {
            format: "jpeg",
            message: e.to_string(),
        }
    })
}

#[cfg(not(feature = "turbojpeg"))]
fn encode_jpeg_rust(
    img: &DynamicImage,
    opts: &EncodeOptions,
    w: u16,
    h: u16,
) -> Result<Vec<u8>, CodecError> {
    let err = |e: jpeg_encoder::EncodingError| CodecError::Encode {
        format: "jpeg",
        message: e.to_string(),
    };
    let mut out = Vec::with_capacity((w as usize * h as usize) / 4 + 1024);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, opts.jpeg_quality.clamp(1, 100));
    if let Some(o) = opts.exif_orientation {
        enc.add_app_segment(1, exif_orientation_segment(o.to_exif()))
            .map_err(err)?;
    }
    if let Some(icc) = opts.icc {
        enc.add_icc_profile(icc).map_err(err)?;
    }
    match img {
        DynamicImage::ImageLuma8(g) => enc
            .encode(g.as_raw(), w, h, jpeg_encoder::ColorType::Luma)
            .map_err(err)?,
        DynamicImage::ImageRgb8(rgb) => enc
            .encode(rgb.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(err)?,
        i if i.color().has_alpha() => {
            let rgb = flatten_on_white(i);
            enc.encode(rgb.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(err)?
        }
        i => enc
            .encode(i.to_rgb8().as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(err)?,
    }
    Ok(out)
}

/// JPEG has no alpha: transparent pixels become white, as on a page.
fn flatten_on_white(img: &DynamicImage) -> image::RgbImage {
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let mix = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

/// A minimal EXIF APP1 payload holding only the Orientation tag (big-endian TIFF, one IFD entry).
fn exif_orientation_segment(o: u8) -> Vec<u8> {
    let mut v = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    v.extend_from_slice(&[0, 1]); // one entry
    v.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, o, 0, 0]); // Orientation, SHORT, count 1, value
    v.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn reduced_jpeg_decode_is_the_smallest_dct_scale_that_is_large_enough() {
        let bytes = fixture("landscape.jpg"); // 600x400
        for (min, want) in [
            ((300, 200), (300, 200)),
            ((200, 100), (300, 200)),
            ((150, 100), (150, 100)),
            ((60, 40), (75, 50)),
            ((301, 10), (600, 400)),
        ] {
            let d = decode_at_least(&bytes, DEFAULT_MAX_PIXELS, min).unwrap();
            assert_eq!((d.image.width(), d.image.height()), want, "{min:?}");
        }
        // A half-size decode looks like the full decode halved.
        let full = decode(&bytes, DEFAULT_MAX_PIXELS).unwrap().image.to_rgb8();
        let half = decode_at_least(&bytes, DEFAULT_MAX_PIXELS, (300, 200))
            .unwrap()
            .image
            .to_rgb8();
        let halved =
            image::imageops::resize(&full, 300, 200, image::imageops::FilterType::Triangle);
        let diff: f64 = halved
            .as_raw()
            .iter()
            .zip(half.as_raw())
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / half.as_raw().len() as f64;
        assert!(diff < 4.0, "mean difference {diff}");
    }

    #[test]
    fn reduced_decode_keeps_orientation_grey_and_falls_back_for_cmyk() {
        let d = decode_at_least(&fixture("oriented_6.jpg"), DEFAULT_MAX_PIXELS, (40, 70)).unwrap();
        assert_eq!(d.orientation, Orientation::Rotate90);
        assert_eq!((d.image.width(), d.image.height()), (48, 80));
        let g = decode_at_least(&fixture("gray.jpg"), DEFAULT_MAX_PIXELS, (50, 30)).unwrap();
        assert!(matches!(g.image, DynamicImage::ImageLuma8(_)));
        assert_eq!((g.image.width(), g.image.height()), (50, 38));
        // libjpeg-turbo scales CMYK too; the pure-Rust scaling decoder does not, so that falls back to full size.
        let c = decode_at_least(&fixture("cmyk.jpg"), DEFAULT_MAX_PIXELS, (50, 30)).unwrap();
        let want = if cfg!(feature = "turbojpeg") {
            (50, 38)
        } else {
            (200, 150)
        };
        assert_eq!((c.image.width(), c.image.height()), want);
        let full = decode(&fixture("cmyk.jpg"), DEFAULT_MAX_PIXELS)
            .unwrap()
            .image
            .to_rgb8();
        let halved =
            image::imageops::resize(&full, want.0, want.1, image::imageops::FilterType::Triangle);
        let diff: f64 = halved
            .as_raw()
            .iter()
            .zip(c.image.to_rgb8().as_raw())
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / halved.as_raw().len() as f64;
        assert!(diff < 6.0, "CMYK colours differ: {diff}");
        assert!(matches!(c.image, DynamicImage::ImageRgb8(_)));
        let p = decode_at_least(&fixture("progressive.jpg"), DEFAULT_MAX_PIXELS, (50, 30)).unwrap();
        assert_eq!((p.image.width(), p.image.height()), (50, 38));
    }

    #[test]
    fn orientation_written_into_jpeg_reads_back() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(8, 4));
        for o in 1..=8 {
            let opts = EncodeOptions {
                jpeg_quality: 85,
                exif_orientation: Orientation::from_exif(o),
                icc: None,
            };
            let bytes = encode(&img, Format::Jpeg, &opts).unwrap();
            let d = decode(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(d.orientation.to_exif(), o);
            assert_eq!((d.image.width(), d.image.height()), (8, 4));
        }
    }

    #[test]
    fn every_format_round_trips() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            5,
            3,
            image::Rgba([10, 200, 30, 255]),
        ));
        for f in [
            Format::Jpeg,
            Format::Png,
            Format::Webp,
            Format::Gif,
            Format::Tiff,
        ] {
            let opts = EncodeOptions {
                jpeg_quality: 90,
                ..Default::default()
            };
            let bytes = encode(&img, f, &opts).unwrap();
            let d = decode(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(d.format, f);
            assert_eq!((d.image.width(), d.image.height()), (5, 3));
        }
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(100, 100));
        let bytes = encode(&img, Format::Png, &EncodeOptions::default()).unwrap();
        assert!(matches!(
            decode(&bytes, 9_999),
            Err(CodecError::TooLarge { pixels: 10_000, .. })
        ));
    }

    #[test]
    fn truncated_jpeg_is_an_error() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([x as u8, y as u8, 7])
        }));
        let bytes = encode(
            &img,
            Format::Jpeg,
            &EncodeOptions {
                jpeg_quality: 90,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(decode(&bytes, DEFAULT_MAX_PIXELS).is_ok());
        let cut = &bytes[..bytes.len() * 3 / 4];
        assert!(matches!(
            decode(cut, DEFAULT_MAX_PIXELS),
            Err(CodecError::Decode { .. })
        ));
    }

    #[test]
    fn inverse_orientation_undoes() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(3, 2, |x, y| {
            image::Rgb([x as u8, y as u8, 0])
        }));
        for o in 1..=8 {
            let o = Orientation::from_exif(o).unwrap();
            let back = orient(orient(img.clone(), o), inverse_orientation(o));
            assert_eq!(back, img, "orientation {o:?}");
        }
    }
}
