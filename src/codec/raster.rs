//! PNG, WebP, GIF and TIFF through the `image` crate's decoders, with the pixel limit as their allocation cap
//! and the PNG ICC profile read with a bounded inflate.

use super::metadata::{self, MAX_PNG_ICC};
use super::{check_pixels, CodecError, Format, Orientation};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::{BufRead, Read, Seek, SeekFrom};

/// The `image` crate's name for a format; none for those it cannot read (JPEG 2000 has its own module).
pub fn image_format(f: Format) -> Option<ImageFormat> {
    match f {
        Format::Png => Some(ImageFormat::Png),
        Format::Webp => Some(ImageFormat::WebP),
        Format::Gif => Some(ImageFormat::Gif),
        Format::Tiff => Some(ImageFormat::Tiff),
        Format::Jpeg => Some(ImageFormat::Jpeg),
        Format::Jp2 => None,
    }
}

/// What a raster header says.
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    pub bytes_per_pixel: u8,
}

/// Open a decoder on the header, refusing images over `max_pixels` before any pixel buffer is allocated.
fn open(
    bytes: &[u8],
    format: Format,
    max_pixels: u64,
) -> Result<(Box<dyn ImageDecoder + '_>, Header), CodecError> {
    // The png crate would inflate iCCP up to the whole memory limit (gigabytes): it never sees that chunk.
    let skip = match format {
        Format::Png => metadata::png_iccp_chunk(bytes),
        _ => None,
    };
    let image_format = image_format(format).ok_or(CodecError::Decode {
        format: format.name(),
        message: "no raster decoder for it".into(),
    })?;
    let mut reader = ImageReader::with_format(Spliced::new(bytes, skip), image_format);
    let mut limits = image::Limits::default();
    // image's own allocation cap is 512 MiB; ours is the pixel limit, checked below.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(format, e))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, max_pixels)?;
    let header = Header {
        width,
        height,
        orientation: decoder.orientation().unwrap_or(Orientation::NoTransforms),
        bytes_per_pixel: decoder.color_type().bytes_per_pixel(),
    };
    Ok((Box::new(decoder), header))
}

fn decode_error(format: Format, e: image::ImageError) -> CodecError {
    CodecError::Decode {
        format: format.name(),
        message: e.to_string(),
    }
}

pub fn probe(bytes: &[u8], format: Format, max_pixels: u64) -> Result<Header, CodecError> {
    open(bytes, format, max_pixels).map(|(_, header)| header)
}

/// The pixels at the file's own depth.
pub fn decode(bytes: &[u8], format: Format, max_pixels: u64) -> Result<DynamicImage, CodecError> {
    let (decoder, _) = open(bytes, format, max_pixels)?;
    DynamicImage::from_decoder(decoder).map_err(|e| decode_error(format, e))
}

/// The embedded ICC profile; none when absent, unreadable or over a few MB (a PNG's inflated with that cap).
pub fn icc(bytes: &[u8], format: Format, max_pixels: u64) -> Option<Vec<u8>> {
    match format {
        Format::Png => metadata::png_iccp_chunk(bytes)
            .and_then(|chunk| metadata::png_icc(bytes, chunk, MAX_PNG_ICC)),
        Format::Tiff => metadata::tiff_icc(bytes, MAX_PNG_ICC),
        _ => open(bytes, format, max_pixels)
            .ok()?
            .0
            .icc_profile()
            .ok()
            .flatten()
            .filter(|p| p.len() <= MAX_PNG_ICC),
    }
}

/// The pipeline works on 8-bit pixels; 16-bit and float sources are reduced once, after colour conversion.
pub fn to_8bit(img: DynamicImage) -> DynamicImage {
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

/// The file's bytes with one range left out, read as one stream without copying the file.
struct Spliced<'a> {
    head: &'a [u8],
    tail: &'a [u8],
    pos: u64,
}

impl<'a> Spliced<'a> {
    fn new(bytes: &'a [u8], skip: Option<std::ops::Range<usize>>) -> Spliced<'a> {
        let (head, tail) = match skip {
            Some(r) => (&bytes[..r.start], &bytes[r.end..]),
            None => (bytes, &bytes[bytes.len()..]),
        };
        Spliced { head, tail, pos: 0 }
    }

    fn len(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64
    }
}

impl BufRead for Spliced<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let pos = usize::try_from(self.pos).unwrap_or(usize::MAX);
        Ok(match pos.checked_sub(self.head.len()) {
            None => &self.head[pos..],
            Some(p) => self.tail.get(p..).unwrap_or(&[]),
        })
    }

    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
    }
}

impl Read for Spliced<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Seek for Spliced<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}
