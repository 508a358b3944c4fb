//! TIFF output through the `tiff` crate's directory encoder: gray or RGB, 8 or 16 bits, alpha declared as such
//! (an ExtraSamples tag, which `image`'s TIFF encoder leaves out), LZW with the horizontal predictor (uncompressed
//! files carry a Predictor tag that libtiff warns about), strips of about 1 MB compressed in parallel.
//!
//! Gray with alpha is written as RGBA with equal colour channels: a two-sample gray TIFF is valid, but the Rust
//! `tiff` decoder (this tool's own, for TIFF sources) and Go's `x/image/tiff` cannot read it.

use super::{Carried, CodecError};
use image::DynamicImage;
use rayon::prelude::*;
use std::io::Cursor;
use tiff::encoder::colortype::{self, ColorType};
use tiff::encoder::{Rational, TiffEncoder, TiffValue};
use tiff::tags::{CompressionMethod, ExtraSamples, Predictor, ResolutionUnit, Tag};

fn encode_error(e: tiff::TiffError) -> CodecError {
    CodecError::Encode {
        format: "tiff",
        message: e.to_string(),
    }
}

/// An ASCII value as EXIF stores it: `tiff`'s `str` refuses bytes beyond ASCII (UTF-8, as exiftool writes a
/// `©`) and the NUL between the two parts of a Copyright, which are kept here as they were.
struct StoredAscii<'a>(&'a [u8]);

impl TiffValue for StoredAscii<'_> {
    const BYTE_LEN: u8 = 1;
    const FIELD_TYPE: tiff::tags::Type = tiff::tags::Type::ASCII;

    fn count(&self) -> usize {
        self.0.len() + 1
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned([self.0, &[0]].concat())
    }
}

fn write<C: ColorType>(
    width: u32,
    height: u32,
    data: &[C::Inner],
    alpha: bool,
    icc: Option<&[u8]>,
    metadata: Option<&Carried>,
) -> Result<Vec<u8>, CodecError>
where
    [C::Inner]: TiffValue,
    C::Inner: Send + Sync,
{
    let row = width as usize * C::BITS_PER_SAMPLE.len();
    let pixels = row * height as usize;
    if row == 0 || height == 0 || data.len() < pixels {
        return Err(CodecError::Encode {
            format: "tiff",
            message: format!("{width}x{height} pixels from {} samples", data.len()),
        });
    }
    // Strips of about 1 MB, as the `tiff` crate cuts them, but compressed side by side: its encoder compresses
    // one strip after another, seconds for a 100 MP image.
    let row_bytes = row * usize::from(<[C::Inner] as TiffValue>::BYTE_LEN);
    let rows_per_strip = 1_000_000usize.div_ceil(row_bytes);
    let compress = |strip: &[C::Inner]| {
        let mut predicted = Vec::with_capacity(strip.len());
        for r in strip.chunks_exact(row) {
            C::horizontal_predict(r, &mut predicted);
        }
        weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(&predicted.as_slice().data())
            .map_err(|e| CodecError::Encode {
                format: "tiff",
                message: format!("LZW: {e}"),
            })
    };
    let mut out = Cursor::new(Vec::new());
    let mut tiff = TiffEncoder::new(&mut out).map_err(encode_error)?;
    let mut dir = tiff.image_directory().map_err(encode_error)?;
    let strips: Vec<&[C::Inner]> = data[..pixels].chunks(row * rows_per_strip).collect();
    let mut offsets: Vec<u32> = Vec::with_capacity(strips.len());
    let mut counts: Vec<u32> = Vec::with_capacity(strips.len());
    let too_large = |_| CodecError::Encode {
        format: "tiff",
        message: "over 4 GiB, the most a classic TIFF addresses".into(),
    };
    // Eight strips a thread at a time, written in order as each batch is done: the compressed copies held at once
    // stay some megabytes a thread, not a second copy of the file.
    for batch in strips.chunks(8 * rayon::current_num_threads().max(1)) {
        let packed = batch
            .par_iter()
            .map(|strip| compress(strip))
            .collect::<Result<Vec<Vec<u8>>, _>>()?;
        for strip in &packed {
            let at = dir.write_data(strip.as_slice()).map_err(encode_error)?;
            offsets.push(u32::try_from(at).map_err(too_large)?);
            counts.push(u32::try_from(strip.len()).map_err(too_large)?);
        }
    }
    let formats: Vec<u16> = C::SAMPLE_FORMAT.iter().map(|f| f.to_u16()).collect();
    let tags = |dir: &mut tiff::encoder::DirectoryEncoder<'_, _, _>| -> tiff::TiffResult<()> {
        dir.write_tag(Tag::ImageWidth, width)?;
        dir.write_tag(Tag::ImageLength, height)?;
        dir.write_tag(Tag::BitsPerSample, C::BITS_PER_SAMPLE)?;
        dir.write_tag(Tag::Compression, CompressionMethod::LZW.to_u16())?;
        dir.write_tag(Tag::Predictor, Predictor::Horizontal.to_u16())?;
        dir.write_tag(Tag::PhotometricInterpretation, C::TIFF_VALUE.to_u16())?;
        dir.write_tag(Tag::SamplesPerPixel, C::BITS_PER_SAMPLE.len() as u16)?;
        dir.write_tag(
            Tag::RowsPerStrip,
            rows_per_strip.min(height as usize) as u32,
        )?;
        dir.write_tag(Tag::StripOffsets, &offsets[..])?;
        dir.write_tag(Tag::StripByteCounts, &counts[..])?;
        dir.write_tag(Tag::SampleFormat, &formats[..])?;
        // Baseline TIFF asks for a resolution: none, as the `tiff` crate writes it.
        dir.write_tag(Tag::XResolution, Rational { n: 1, d: 1 })?;
        dir.write_tag(Tag::YResolution, Rational { n: 1, d: 1 })?;
        dir.write_tag(Tag::ResolutionUnit, ResolutionUnit::None.to_u16())?;
        if alpha {
            // The colour type counts the alpha among its samples; the tag says what that last sample is.
            dir.write_tag(
                Tag::ExtraSamples,
                &[ExtraSamples::UnassociatedAlpha.to_u16()][..],
            )?;
        }
        if let Some(icc) = icc {
            dir.write_tag(Tag::IccProfile, icc)?;
        }
        if let Some(m) = metadata {
            // Copyright and Artist are TIFF's own tags (EXIF took them from TIFF); XMP and IPTC have tags of
            // their own.
            let (copyright, artist) = m.tiff_ascii();
            for (tag, v) in [(Tag::Copyright, copyright), (Tag::Artist, artist)] {
                if let Some(v) = v {
                    dir.write_tag(tag, StoredAscii(&v))?;
                }
            }
            for (tag, v) in [(700, m.xmp()), (33723, m.iptc())] {
                if let Some(v) = v {
                    dir.write_tag(Tag::Unknown(tag), v)?;
                }
            }
        }
        Ok(())
    };
    tags(&mut dir).map_err(encode_error)?;
    dir.finish().map_err(encode_error)?;
    Ok(out.into_inner())
}

/// `icc`: a profile to embed (`-colour keep`), already checked to fit the pixels; `metadata`: what the source's
/// metadata gives the derivative.
pub fn encode(
    img: &DynamicImage,
    icc: Option<&[u8]>,
    metadata: Option<&Carried>,
) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (img.width(), img.height());
    match img {
        DynamicImage::ImageLuma8(i) => {
            write::<colortype::Gray8>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgb8(i) => {
            write::<colortype::RGB8>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgba8(i) => {
            write::<colortype::RGBA8>(w, h, i.as_raw(), true, icc, metadata)
        }
        DynamicImage::ImageLumaA8(_) => {
            write::<colortype::RGBA8>(w, h, img.to_rgba8().as_raw(), true, icc, metadata)
        }
        DynamicImage::ImageLuma16(i) => {
            write::<colortype::Gray16>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgb16(i) => {
            write::<colortype::RGB16>(w, h, i.as_raw(), false, icc, metadata)
        }
        DynamicImage::ImageRgba16(i) => {
            write::<colortype::RGBA16>(w, h, i.as_raw(), true, icc, metadata)
        }
        i if i.color().has_alpha() => {
            write::<colortype::RGBA16>(w, h, i.to_rgba16().as_raw(), true, icc, metadata)
        }
        i => write::<colortype::RGB16>(w, h, i.to_rgb16().as_raw(), false, icc, metadata),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_compressed_side_by_side_decode_to_the_pixels() {
        // 2.5 MB of 16-bit RGB and 1.7 MB of RGBA: several strips each, the last one short.
        let rgb16 = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(701, 599, |x, y| {
            image::Rgb([(x * 93) as u16, (y * 109) as u16, ((x ^ y) * 37) as u16])
        }));
        let rgba = DynamicImage::ImageRgba8(image::ImageBuffer::from_fn(703, 601, |x, y| {
            image::Rgba([x as u8, y as u8, (x * y) as u8, (x + y) as u8])
        }));
        let grey = DynamicImage::ImageLuma8(image::ImageBuffer::from_fn(3, 1, |x, _| {
            image::Luma([x as u8 * 100])
        }));
        for (img, want) in [(rgb16, 3), (rgba, 2), (grey, 1)] {
            let bytes = encode(&img, None, None).unwrap();
            let back =
                image::load_from_memory_with_format(&bytes, image::ImageFormat::Tiff).unwrap();
            assert_eq!(back.color(), img.color());
            assert_eq!(back.as_bytes(), img.as_bytes(), "{:?}", img.color());
            let mut dec = tiff::decoder::Decoder::new(Cursor::new(&bytes)).unwrap();
            let strips = dec.strip_count().unwrap();
            let row_bytes = img.as_bytes().len() / img.height() as usize;
            let rows_per_strip = 1_000_000usize.div_ceil(row_bytes);
            assert_eq!(
                strips as usize,
                (img.height() as usize).div_ceil(rows_per_strip)
            );
            assert_eq!(strips, want);
        }
    }
}
