//! JPEG 2000 sources, as a JP2 file or a bare codestream (J2K), through OpenJPEG (the `jpeg2k` binding, whose
//! `openjpeg-sys` builds the C library from source: no system library is needed).
//!
//! The header is read here, not by OpenJPEG: the codestream's SIZ marker gives the size, the components and
//! their depths, so an image over the pixel limit is refused before OpenJPEG allocates anything, and the JP2
//! `colr` box gives the ICC profile for the colour management. A large tiled image is decoded in strips of whole
//! tile rows. The file is its own pyramid: [`decode`] gives resolution level `k` (the image halved `k` times by
//! the wavelet's low-pass filter, OpenJPEG's `reduce`) as well as the full image, and the header says how many
//! levels every tile holds ([`Header::levels`]).

use super::{check_pixels, CodecError};
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use rayon::prelude::*;

const FORMAT: &str = "jp2";

/// The JP2 signature box, the first 12 bytes of every JP2 file.
const JP2_SIGNATURE: &[u8] = b"\0\0\0\x0CjP  \r\n\x87\n";
/// Rows decoded at once at the least when a tiled image is decoded in strips.
pub const STRIP_ROWS: u32 = 1024;

/// SOC then SIZ: how every codestream begins.
const J2K_START: &[u8] = b"\xFF\x4F\xFF\x51";

/// Whether the bytes are a JP2 file or a JPEG 2000 codestream.
pub fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(JP2_SIGNATURE) || bytes.starts_with(J2K_START)
}

fn error(message: impl Into<String>) -> CodecError {
    CodecError::Decode {
        format: FORMAT,
        message: message.into(),
    }
}

/// What the header says: the reference grid's image area and its components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// The image area's origin on the reference grid (XOsiz, YOsiz), where decode areas are given.
    pub x0: u32,
    pub y0: u32,
    /// For a tiled image taller than one strip: the rows of each strip it is decoded in (whole rows of tiles,
    /// at least [`STRIP_ROWS`]). `None`: decoded whole.
    pub strip_rows: Option<u32>,
    /// For a strip whose tiles line up with the image's left edge too: the columns of each piece it is decoded
    /// in, side by side in parallel (whole columns of tiles, at least [`STRIP_ROWS`]). `None`: the strip whole.
    pub piece_cols: Option<u32>,
    /// Bits per sample of each component (1 to 16; deeper files are refused).
    pub depths: Vec<u8>,
    /// The JP2 `colr` box's ICC profile (method 2 or 3); none for a codestream or an enumerated space.
    pub icc: Option<Vec<u8>>,
    /// The resolution levels below the full image that every tile-component holds (the fewest wavelet
    /// decompositions of any COD or COC marker, in the main header or a tile-part's). 0 when the image area does
    /// not start at the grid's origin: a level's samples then sit on a lattice offset by the origin's parity,
    /// which the ladder does not model.
    pub levels: u8,
}

impl Header {
    /// Bytes a pixel needs at the peak of decoding: OpenJPEG's 32-bit sample of each component (an untiled
    /// file's tile buffer becomes the image's, it is not copied) and the interleaved 8- or 16-bit copy made
    /// from them before they are freed.
    pub fn bytes_per_pixel(&self) -> u8 {
        let sample = if self.depths.iter().any(|&d| d > 8) {
            2
        } else {
            1
        };
        let n = self.depths.len() as u64;
        // The image's samples, and OpenJPEG's 32-bit planes: of the whole image, or of one strip at a time (their
        // share of the image's rows, rounded up), with the strip's pieces' own samples before they are put in place.
        let strip = 4 * n + n * sample;
        let planes = match self.strip_rows {
            None => 4 * n,
            Some(rows) => (strip * u64::from(rows)).div_ceil(u64::from(self.height.max(1))),
        };
        (n * sample + planes.min(strip)) as u8
    }
}

/// Read the header; refuse images over `max_pixels`, and what the decode cannot turn into pixels (more than four
/// components, subsampled components, samples deeper than 16 bits).
pub fn header(bytes: &[u8], max_pixels: u64, icc_cap: usize) -> Result<Header, CodecError> {
    let (codestream, icc, palette) = if bytes.starts_with(J2K_START) {
        (bytes, None, None)
    } else {
        boxes(bytes, icc_cap)?
    };
    let siz = codestream
        .get(4..)
        .filter(|_| codestream.starts_with(J2K_START))
        .ok_or_else(|| error("the codestream does not begin with SOC and SIZ markers"))?;
    let u16_at = |at: usize| {
        siz.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        siz.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let short = || error("the SIZ marker is cut short");
    // Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, four tile fields, Csiz, then three bytes a component.
    let (x1, y1, x0, y0) = (
        u32_at(4).ok_or_else(short)?,
        u32_at(8).ok_or_else(short)?,
        u32_at(12).ok_or_else(short)?,
        u32_at(16).ok_or_else(short)?,
    );
    let (width, height) = match (x1.checked_sub(x0), y1.checked_sub(y0)) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(error(format!("empty image area {x0},{y0} to {x1},{y1}"))),
    };
    check_pixels(width, height, max_pixels)?;
    // Tiles of YTsiz rows, the first starting at YTOsiz: strips of whole tile rows when the tiles line up with the
    // image's top and there is more than one strip.
    let (tile_h, tile_y0) = (u32_at(24).ok_or_else(short)?, u32_at(32).ok_or_else(short)?);
    let strip_rows = (tile_h > 0 && tile_y0 == 0 && y0 % tile_h == 0)
        .then(|| tile_h.saturating_mul(STRIP_ROWS.div_ceil(tile_h)))
        .filter(|&rows| rows < height);
    // The same across: OpenJPEG's own threads share out little more than the code-blocks of one tile at a time,
    // where tiles decoded side by side keep every core busy (a 100 MP JP2 in 1024 px tiles: 40% less time).
    let (tile_w, tile_x0) = (u32_at(20).ok_or_else(short)?, u32_at(28).ok_or_else(short)?);
    let piece_cols = (strip_rows.is_some() && tile_w > 0 && tile_x0 == 0 && x0 % tile_w == 0)
        .then(|| tile_w.saturating_mul(STRIP_ROWS.div_ceil(tile_w)))
        .filter(|&cols| cols < width);
    let components = u16_at(36).ok_or_else(short)?;
    if !(1..=4).contains(&components) {
        return Err(error(format!(
            "{components} components (1 to 4 are supported: grey, grey and alpha, RGB, RGBA)"
        )));
    }
    let mut depths: Vec<u8> = Vec::with_capacity(4);
    for c in 0..usize::from(components) {
        let at = 38 + 3 * c;
        let spec = siz.get(at..at + 3).ok_or_else(short)?;
        let depth = (spec[0] & 0x7F) + 1;
        if depth > 16 {
            return Err(error(format!(
                "component {c} has {depth} bits a sample (at most 16 are supported)"
            )));
        }
        if (spec[1], spec[2]) != (1, 1) {
            return Err(error(format!(
                "component {c} is subsampled {}x{} (only full-resolution components are supported)",
                spec[1], spec[2]
            )));
        }
        depths.push(depth);
    }
    // A palette (pclr) maps the one index component to its columns, which OpenJPEG gives as the components.
    if let Some(columns) = palette {
        if components != 1 {
            return Err(error(format!(
                "a palette over {components} components (a palette over one index component is supported)"
            )));
        }
        if !(1..=4).contains(&columns.len()) || columns.iter().any(|&d| d > 16) {
            return Err(error(format!(
                "a palette of {} columns of {:?} bits (1 to 4 columns of at most 16 bits are supported)",
                columns.len(),
                columns
            )));
        }
        depths = columns;
    }
    let levels = if (x0, y0) == (0, 0) {
        decompositions(codestream)
    } else {
        0
    };
    Ok(Header {
        width,
        height,
        x0,
        y0,
        strip_rows,
        piece_cols,
        depths,
        icc,
        levels,
    })
}

/// The fewest wavelet decomposition levels of any COD or COC marker segment, in the main header and in every
/// tile-part header (which may override them per tile); 0 when there is none. Walks the marker segments by their
/// lengths and the tile-parts by theirs (Psot), never the compressed data. A codestream cut short gives what was
/// read before the cut: decoding it says what is missing.
fn decompositions(codestream: &[u8]) -> u8 {
    let u16_at = |at: usize| {
        codestream
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut fewest: Option<u8> = None;
    let mut seen = |nl: Option<&u8>| {
        if let Some(&nl) = nl {
            fewest = Some(fewest.map_or(nl, |f| f.min(nl)));
        }
    };
    let mut at = 2; // past SOC
    let mut tile_end: Option<usize> = None;
    while let Some(marker) = u16_at(at) {
        match marker {
            // EOC: the end.
            0xFFD9 => break,
            // SOD: the tile-part's data follows, up to the end its SOT gave.
            0xFF93 => match tile_end.take() {
                Some(end) if end > at => {
                    at = end;
                    continue;
                }
                // Psot 0: the last tile-part runs to EOC; no header follows it.
                _ => break,
            },
            _ => {}
        }
        let Some(len) = u16_at(at + 2).map(usize::from).filter(|&l| l >= 2) else {
            break;
        };
        let Some(segment) = codestream.get(at + 4..at + 2 + len) else {
            break;
        };
        match marker {
            // SOT: Isot (2), Psot (4), TPsot, TNsot. Psot counts from the SOT marker.
            0xFF90 => {
                tile_end = segment
                    .get(2..6)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .filter(|&psot| psot > 0)
                    .map(|psot| at + psot);
            }
            // COD: Scod, progression, layers (2), MCT, then the decomposition levels.
            0xFF52 => seen(segment.get(5)),
            // COC: Ccoc (one byte for fewer than 257 components, and there are at most 4), Scoc, then the
            // decomposition levels.
            0xFF53 => seen(segment.get(2)),
            _ => {}
        }
        at += 2 + len;
    }
    fewest.unwrap_or(0)
}

/// A JP2 file's codestream (the `jp2c` box), the ICC profile of its first `colr` box if that holds one of at
/// most `icc_cap` bytes, and the bit depth of each column of its palette (`pclr`), if it has one.
type Boxes<'a> = (&'a [u8], Option<Vec<u8>>, Option<Vec<u8>>);

fn boxes(bytes: &[u8], icc_cap: usize) -> Result<Boxes<'_>, CodecError> {
    let mut icc = None;
    let mut palette = None;
    let mut colr_seen = false;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (kind, content, next) = jp2_box(rest)?;
        match kind {
            b"jp2h" => {
                let mut inner = content;
                while !inner.is_empty() {
                    let (kind, content, next) = jp2_box(inner)?;
                    // The first colour specification is the one a reader uses (ISO 15444-1, I.5.3.3).
                    if kind == b"colr" && !colr_seen {
                        colr_seen = true;
                        icc = content
                            .split_first()
                            .filter(|(method, _)| matches!(method, 2 | 3))
                            .and_then(|(_, rest)| rest.get(2..))
                            .filter(|p| !p.is_empty() && p.len() <= icc_cap)
                            .map(<[u8]>::to_vec);
                    }
                    if kind == b"pclr" {
                        // NE (2 bytes), NPC (1), then each column's depth byte: bits less one, 0x80 if signed.
                        let columns = content
                            .get(2)
                            .and_then(|&n| content.get(3..3 + usize::from(n)))
                            .ok_or_else(|| error("the palette (pclr) box is cut short"))?;
                        palette = Some(columns.iter().map(|b| (b & 0x7F) + 1).collect());
                    }
                    inner = next;
                }
            }
            b"jp2c" => return Ok((content, icc, palette)),
            _ => {}
        }
        rest = next;
    }
    Err(error("no codestream (jp2c box) in the file"))
}

/// A box's type, its content and what follows it.
type JpBox<'a> = (&'a [u8; 4], &'a [u8], &'a [u8]);

/// One box: its type, its content and what follows it.
fn jp2_box(bytes: &[u8]) -> Result<JpBox<'_>, CodecError> {
    let cut = || error("a box runs past the end of the file");
    let head = bytes.get(..8).ok_or_else(cut)?;
    let kind: &[u8; 4] = head[4..8].try_into().map_err(|_| cut())?;
    let (start, len) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        // To the end of the file.
        0 => (8, bytes.len()),
        // The length in the next eight bytes.
        1 => {
            let l = bytes.get(8..16).ok_or_else(cut)?;
            let l = u64::from_be_bytes(l.try_into().map_err(|_| cut())?);
            (16, usize::try_from(l).map_err(|_| cut())?)
        }
        l => (8, l as usize),
    };
    if len < start {
        return Err(error(format!(
            "box {:?} declares {len} bytes, less than its header",
            String::from_utf8_lossy(kind)
        )));
    }
    let content = bytes.get(start..len).ok_or_else(cut)?;
    Ok((kind, content, &bytes[len..]))
}

/// Decode resolution level `level` (0: the full image; `k`: each side halved `k` times, rounded up, by the
/// wavelet's own low-pass filter; at most [`Header::levels`]); `strict` refuses a truncated codestream instead of
/// decoding what is there. A tiled image with [`Header::strip_rows`] is decoded a strip of whole tile rows at a
/// time (an OpenJPEG decode area), so that OpenJPEG's 32-bit planes never exist for the whole image, only the 8-
/// or 16-bit result does.
pub fn decode(
    bytes: &[u8],
    header: &Header,
    strict: bool,
    level: u8,
) -> Result<DynamicImage, CodecError> {
    if level > header.levels {
        return Err(error(format!(
            "resolution level {level} asked of an image with {} below its full resolution",
            header.levels
        )));
    }
    // The rows and columns of level `level` between grid positions `a` and `b` (the origin is 0 when level > 0).
    let reduced = |a: u32, b: u32| b.div_ceil(1 << level) - a.div_ceil(1 << level);
    let (w, h) = (reduced(0, header.width), reduced(0, header.height));
    let n = header.depths.len();
    let len = (w as usize)
        .checked_mul(h as usize)
        .and_then(|p| p.checked_mul(n))
        .ok_or_else(|| error("the image is too large to address"))?;
    let mut out = Samples::zeroed(header, len)?;
    let failed = |e: jpeg2k::error::Error| {
        error(format!(
            "OpenJPEG could not decode it ({e}): the file is damaged or truncated"
        ))
    };
    // jpeg2k's in-memory stream answers OpenJPEG's skip with the new offset instead of the bytes skipped, which
    // breaks every decode area that skips tiles; OpenJPEG's own file stream skips correctly. So strips read a
    // copy of the file in the temporary directory (the compressed bytes: a fraction of the planes it spares).
    let spooled = match header.strip_rows {
        Some(rows) => spool(bytes).map(|file| (file, rows)),
        None => None,
    };
    match spooled {
        Some((file, rows)) => {
            // Each piece's columns, from the image's left edge.
            let cols = header.piece_cols.unwrap_or(header.width);
            let pieces: Vec<(u32, u32)> = (0..header.width)
                .step_by(cols as usize)
                .map(|left| (left, (left + cols).min(header.width)))
                .collect();
            let full_h = header.height;
            let mut top = 0;
            while top < full_h {
                let rows = rows.min(full_h - top);
                // Each piece's samples on their own (OpenJPEG's image stays on its thread), then into place.
                let decoded = pieces
                    .par_iter()
                    .map(|&(left, right)| {
                        let area = jpeg2k::DecodeArea::new(
                            header.x0 + left,
                            header.y0 + top,
                            header.x0 + right,
                            header.y0 + top + rows,
                        );
                        let params = jpeg2k::DecodeParameters::new()
                            .strict(strict)
                            .reduce(u32::from(level))
                            .decode_area(Some(area));
                        let image =
                            jpeg2k::Image::from_file_with(file.path(), params).map_err(failed)?;
                        let (pw, ph) = (reduced(left, right), reduced(top, top + rows));
                        let mut samples = Samples::zeroed(header, pw as usize * ph as usize * n)?;
                        fill(&image, &mut samples, pw, ph, n)?;
                        Ok::<_, CodecError>(samples)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for (&(left, right), samples) in pieces.iter().zip(&decoded) {
                    let piece = Piece {
                        left: reduced(0, left),
                        top: reduced(0, top),
                        width: reduced(left, right),
                        rows: reduced(top, top + rows),
                    };
                    out.paste(samples, w, piece, n);
                }
                top += rows;
            }
        }
        None => {
            let params = jpeg2k::DecodeParameters::new()
                .strict(strict)
                .reduce(u32::from(level));
            let image = jpeg2k::Image::from_bytes_with(bytes, params).map_err(failed)?;
            fill(&image, &mut out, w, h, n)?;
        }
    }
    let wrong = || error("the pixel buffer has the wrong size");
    // The alpha channel is the last component (a cdef box that moves it elsewhere is applied by OpenJPEG).
    Ok(match (out, n) {
        (Samples::U8(v), 1) => DynamicImage::ImageLuma8(
            ImageBuffer::<Luma<u8>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (Samples::U16(v), 1) => DynamicImage::ImageLuma16(
            ImageBuffer::<Luma<u16>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (Samples::U8(v), 2) => DynamicImage::ImageLumaA8(
            ImageBuffer::<LumaA<u8>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (Samples::U16(v), 2) => DynamicImage::ImageLumaA16(
            ImageBuffer::<LumaA<u16>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (Samples::U8(v), 3) => {
            DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, v).ok_or_else(wrong)?)
        }
        (Samples::U16(v), 3) => DynamicImage::ImageRgb16(
            ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (Samples::U8(v), 4) => DynamicImage::ImageRgba8(
            ImageBuffer::<Rgba<u8>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (Samples::U16(v), 4) => DynamicImage::ImageRgba16(
            ImageBuffer::<Rgba<u16>, _>::from_raw(w, h, v).ok_or_else(wrong)?,
        ),
        (_, n) => return Err(error(format!("{n} components"))),
    })
}

/// The bytes in a file of the temporary directory, removed when dropped; `None` (decode whole) when it cannot
/// be written.
fn spool(bytes: &[u8]) -> Option<tempfile::NamedTempFile> {
    use std::io::Write;
    // jpeg2k tells a file's format by its extension.
    let suffix = if bytes.starts_with(J2K_START) {
        ".j2k"
    } else {
        ".jp2"
    };
    let mut file = tempfile::Builder::new()
        .prefix("iiif-process-")
        .suffix(suffix)
        .tempfile()
        .ok()?;
    file.write_all(bytes).ok()?;
    file.flush().ok()?;
    Some(file)
}

/// A rectangle of the decoded image, in its pixels.
#[derive(Debug, Clone, Copy)]
struct Piece {
    left: u32,
    top: u32,
    width: u32,
    rows: u32,
}

/// `image`, a `w` x `h` area as OpenJPEG decoded it, into `out`, which holds that area alone.
fn fill(
    image: &jpeg2k::Image,
    out: &mut Samples,
    w: u32,
    h: u32,
    n: usize,
) -> Result<(), CodecError> {
    let comps = image.components();
    if comps.len() != n || comps.iter().any(|c| (c.width(), c.height()) != (w, h)) {
        return Err(error(format!(
            "OpenJPEG decoded {} components where the header has {n}, or not of {w}x{h} pixels",
            comps.len()
        )));
    }
    let space = image.color_space();
    use jpeg2k::ColorSpace;
    if matches!(space, ColorSpace::CMYK | ColorSpace::EYCC) {
        return Err(error(format!(
            "colour space {space:?} is not supported (grey, RGB and sYCC are)"
        )));
    }
    let ycc = matches!(space, ColorSpace::SYCC);
    let planes: Vec<Plane> = comps
        .iter()
        .map(|c| Plane {
            data: c.data(),
            depth: c.precision().clamp(1, 16),
            signed: c.is_signed(),
        })
        .collect();
    let len = w as usize * h as usize;
    if planes.iter().any(|p| p.data.len() < len) {
        return Err(error("OpenJPEG returned fewer samples than the image has"));
    }
    match out {
        Samples::U8(v) if v.len() == len * n => interleave(v, w, &planes, ycc),
        Samples::U16(v) if v.len() == len * n => interleave(v, w, &planes, ycc),
        _ => return Err(error("the pixel buffer has the wrong size")),
    }
    Ok(())
}

/// The decoded image's interleaved samples, 8 or 16 bits.
enum Samples {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

impl Samples {
    /// `len` zeroed samples of the depth the image is decoded to.
    fn zeroed(header: &Header, len: usize) -> Result<Samples, CodecError> {
        Ok(if header.depths.iter().any(|&d| d > 8) {
            Samples::U16(reserve(len)?)
        } else {
            Samples::U8(reserve(len)?)
        })
    }

    /// `from`, the samples of `piece` alone, copied into its place in these (rows of `w` pixels of `n` samples).
    fn paste(&mut self, from: &Samples, w: u32, piece: Piece, n: usize) {
        fn rows<S: Copy>(to: &mut [S], from: &[S], w: u32, p: Piece, n: usize) {
            let (stride, len) = (w as usize * n, p.width as usize * n);
            let at = p.top as usize * stride + p.left as usize * n;
            if len == 0 {
                return;
            }
            for (y, row) in from.chunks_exact(len).take(p.rows as usize).enumerate() {
                let start = at + y * stride;
                to[start..start + len].copy_from_slice(row);
            }
        }
        match (self, from) {
            (Samples::U8(to), Samples::U8(from)) => rows(to, from, w, piece, n),
            (Samples::U16(to), Samples::U16(from)) => rows(to, from, w, piece, n),
            // Both are made by `zeroed` for the same header.
            _ => {}
        }
    }
}

/// A zeroed buffer of `len` samples, or the error that says how much could not be had.
fn reserve<S: Sample>(len: usize) -> Result<Vec<S>, CodecError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| CodecError::OutOfMemory {
            what: "the decoded JPEG 2000 image",
            bytes: len * std::mem::size_of::<S>(),
        })?;
    out.resize(len, S::DEFAULT_MIN_VALUE);
    Ok(out)
}

/// One decoded component: OpenJPEG's 32-bit samples of `depth` bits.
struct Plane<'a> {
    data: &'a [i32],
    depth: u32,
    signed: bool,
}

impl Plane<'_> {
    /// The sample at `i` as a fraction of full scale, 0 to 1 (signed samples centred on 0.5).
    fn unit(&self, i: usize) -> f32 {
        let max = ((1u32 << self.depth) - 1) as f32;
        let offset = if self.signed {
            (1u32 << (self.depth - 1)) as f32
        } else {
            0.0
        };
        ((self.data[i] as f32 + offset) / max).clamp(0.0, 1.0)
    }
}

/// A sample type of the output image, from a 0 to 1 value, or from an integer of its own depth.
trait Sample: image::Primitive + Send + Sync {
    const DEPTH: u32;
    fn from_unit(v: f32) -> Self;
    fn from_int(v: i32) -> Self;
}

impl Sample for u8 {
    const DEPTH: u32 = 8;
    fn from_unit(v: f32) -> u8 {
        (v * 255.0).round() as u8
    }
    fn from_int(v: i32) -> u8 {
        v.clamp(0, 255) as u8
    }
}

impl Sample for u16 {
    const DEPTH: u32 = 16;
    fn from_unit(v: f32) -> u16 {
        (v * 65535.0).round() as u16
    }
    fn from_int(v: i32) -> u16 {
        v.clamp(0, 65535) as u16
    }
}

/// The planes interleaved into `out` (rows of `w` pixels), row by row in parallel; `ycc` converts the first
/// three components from sYCC to RGB (ITU-R BT.601 full range, as OpenJPEG's own tools do).
fn interleave<S: Sample>(out: &mut [S], w: u32, planes: &[Plane], ycc: bool) {
    let n = planes.len();
    let w = w as usize;
    let rows = out.par_chunks_mut(w * n).enumerate();
    // Samples as deep as the output's are the output's (signed ones shifted up by half the range): the same
    // values as through the fractions below, without a float and a call to `roundf` for every sample.
    if !ycc && planes.iter().all(|p| p.depth == S::DEPTH) {
        let offsets: Vec<i32> = planes
            .iter()
            .map(|p| if p.signed { 1 << (p.depth - 1) } else { 0 })
            .collect();
        rows.for_each(|(y, line)| {
            let at = y * w;
            for (c, (p, offset)) in planes.iter().zip(&offsets).enumerate() {
                let row = &p.data[at..at + w];
                for (px, &v) in line.chunks_exact_mut(n).zip(row) {
                    px[c] = S::from_int(v.saturating_add(*offset));
                }
            }
        });
        return;
    }
    rows.for_each(|(y, line)| {
        for (x, px) in line.chunks_exact_mut(n).enumerate() {
            let i = y * w + x;
            let mut v = [0f32; 4];
            for (c, p) in planes.iter().enumerate() {
                v[c] = p.unit(i);
            }
            if ycc && n >= 3 {
                let (y_, cb, cr) = (v[0], v[1] - 0.5, v[2] - 0.5);
                v[0] = (y_ + 1.402 * cr).clamp(0.0, 1.0);
                v[1] = (y_ - 0.344_136 * cb - 0.714_136 * cr).clamp(0.0, 1.0);
                v[2] = (y_ + 1.772 * cb).clamp(0.0, 1.0);
            }
            for (s, v) in px.iter_mut().zip(v) {
                *s = S::from_unit(v);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plane interleaved as one row of `S`, and each sample through the fractions.
    fn both_ways<S: Sample + std::fmt::Debug>(plane: &Plane) -> (Vec<S>, Vec<S>) {
        let len = plane.data.len();
        let mut fast = vec![S::DEFAULT_MIN_VALUE; len];
        interleave(&mut fast, len as u32, std::slice::from_ref(plane), false);
        let slow = (0..len).map(|i| S::from_unit(plane.unit(i))).collect();
        (fast, slow)
    }

    #[test]
    fn samples_as_deep_as_the_output_are_copied_as_the_fractions_would_round_them() {
        let data: Vec<i32> = (-70_000..70_000)
            .step_by(7)
            .chain([-1, 0, 255, 256, 65535, 65536])
            .collect();
        for signed in [false, true] {
            let plane = |depth| Plane {
                data: &data,
                depth,
                signed,
            };
            let (fast, slow) = both_ways::<u8>(&plane(8));
            assert_eq!(fast, slow, "8 bits, signed {signed}");
            let (fast, slow) = both_ways::<u16>(&plane(16));
            assert_eq!(fast, slow, "16 bits, signed {signed}");
        }
    }

    /// A SIZ marker for a `w`x`h` image with the given (Ssiz, XRsiz, YRsiz) components.
    fn codestream(w: u32, h: u32, comps: &[(u8, u8, u8)]) -> Vec<u8> {
        let mut s = J2K_START.to_vec();
        s.extend((38 + 3 * comps.len() as u16).to_be_bytes());
        s.extend(0u16.to_be_bytes());
        for v in [w, h, 0, 0, w, h, 0, 0] {
            s.extend(v.to_be_bytes());
        }
        s.extend((comps.len() as u16).to_be_bytes());
        for &(d, x, y) in comps {
            s.extend([d, x, y]);
        }
        s
    }

    fn jp2(boxes: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut f = JP2_SIGNATURE.to_vec();
        for (kind, content) in boxes {
            f.extend((8 + content.len() as u32).to_be_bytes());
            f.extend(*kind);
            f.extend(content);
        }
        f
    }

    #[test]
    fn header_reads_size_depths_and_the_first_colr_profile() {
        let cs = codestream(300, 200, &[(7, 1, 1), (7, 1, 1), (15, 1, 1)]);
        let h = header(&cs, 1 << 30, 1 << 20).unwrap();
        assert_eq!(
            (h.width, h.height, h.depths.clone()),
            (300, 200, vec![8, 8, 16])
        );
        assert_eq!(h.icc, None);

        let colr = |method: u8, body: &[u8]| {
            let mut c = vec![method, 0, 0];
            c.extend(body);
            c
        };
        let mut jp2h = Vec::new();
        for c in [colr(2, b"PROFILE"), colr(1, &16u32.to_be_bytes())] {
            jp2h.extend((8 + c.len() as u32).to_be_bytes());
            jp2h.extend(b"colr");
            jp2h.extend(c);
        }
        let file = jp2(&[(b"ftyp", b"jp2 ".to_vec()), (b"jp2h", jp2h), (b"jp2c", cs)]);
        assert!(sniff(&file));
        let h = header(&file, 1 << 30, 1 << 20).unwrap();
        assert_eq!(h.icc.as_deref(), Some(&b"PROFILE"[..]));
        // A profile over the cap is not read.
        assert_eq!(header(&file, 1 << 30, 4).unwrap().icc, None);
    }

    /// A master of `tests/fixtures/masters` and its header.
    fn master(name: &str) -> (Vec<u8>, Header) {
        let path = format!(
            "{}/tests/fixtures/masters/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let h = header(&bytes, 1 << 30, 0).unwrap();
        (bytes, h)
    }

    /// Level `level` decoded in the header's strips and decoded whole.
    fn in_strips_and_whole(bytes: &[u8], h: &Header, level: u8) -> (DynamicImage, DynamicImage) {
        let strips = decode(bytes, h, true, level).unwrap();
        let whole = Header {
            strip_rows: None,
            ..h.clone()
        };
        (strips, decode(bytes, &whole, true, level).unwrap())
    }

    #[test]
    fn a_tall_tiled_image_decodes_in_strips_to_the_same_pixels_as_whole() {
        let (bytes, h) = master("dune_column_tiled.jp2");
        // 1050 rows in 256-row tiles: strips of four tile rows.
        assert_eq!((h.width, h.height, h.strip_rows), (96, 1050, Some(1024)));
        let (strips, whole) = in_strips_and_whole(&bytes, &h, 0);
        assert_eq!(strips.as_bytes(), whole.as_bytes());
        // The memory a pixel needs: 3 bytes of RGB, and OpenJPEG's 12 of planes for an eighth of the rows.
        let tall = Header {
            height: 8192,
            ..h.clone()
        };
        assert_eq!(tall.bytes_per_pixel(), 3 + 2);
        assert_eq!(
            Header {
                strip_rows: None,
                ..tall
            }
            .bytes_per_pixel(),
            3 + 12
        );
    }

    #[test]
    fn level_1_is_half_the_image_decoded_in_strips_as_whole() {
        let (bytes, h) = master("dune_tiled.jp2");
        // opj_compress' six resolutions: five levels below the full image; 512 px tiles, so strips of 1024 rows,
        // each decoded in two pieces side by side, of 1024 columns and of 656.
        assert_eq!(
            (h.levels, h.strip_rows, h.piece_cols),
            (5, Some(1024), Some(1024))
        );
        let (pieces, whole) = in_strips_and_whole(&bytes, &h, 0);
        assert_eq!(pieces.as_bytes(), whole.as_bytes());
        let (one, whole) = in_strips_and_whole(&bytes, &h, 1);
        assert_eq!((one.width(), one.height()), (840, 525));
        assert_eq!(one.as_bytes(), whole.as_bytes());
        let five = decode(&bytes, &h, true, 5).unwrap();
        assert_eq!((five.width(), five.height()), (53, 33));
        assert!(decode(&bytes, &h, true, 6).is_err());
    }

    #[test]
    fn levels_are_the_fewest_of_every_cod_and_coc_in_main_and_tile_part_headers() {
        let segment = |marker: u16, body: &[u8]| {
            let mut m = marker.to_be_bytes().to_vec();
            m.extend((body.len() as u16 + 2).to_be_bytes());
            m.extend(body);
            m
        };
        // COD: Scod, progression, layers (2), MCT, then 5 levels; COC for component 0: Ccoc, Scoc, 3 levels.
        let cod = segment(0xFF52, &[0, 0, 0, 1, 0, 5, 4, 4, 0, 0]);
        let coc = segment(0xFF53, &[0, 0, 3, 4, 4, 0, 0]);
        let mut cs = codestream(64, 64, &[(7, 1, 1)]);
        cs.extend(&cod);
        let main_only = cs.clone();
        // One tile-part whose header lowers component 0 to 3 levels, then its data, then EOC.
        let data = [0u8; 7];
        let psot = (12 + coc.len() + 2 + data.len()) as u32;
        let mut sot = vec![0, 0];
        sot.extend(psot.to_be_bytes());
        sot.extend([0, 1]);
        cs.extend(segment(0xFF90, &sot));
        cs.extend(&coc);
        cs.extend([0xFF, 0x93]);
        cs.extend(data);
        cs.extend([0xFF, 0xD9]);
        assert_eq!(header(&main_only, 1 << 30, 0).unwrap().levels, 5);
        assert_eq!(header(&cs, 1 << 30, 0).unwrap().levels, 3);
        // Cut inside the tile-part's COC: what was read before the cut; the decode says what is missing.
        let cut = &cs[..cs.len() - data.len() - 6];
        assert_eq!(header(cut, 1 << 30, 0).unwrap().levels, 5);
        // An image area away from the grid's origin: no levels.
        let mut moved = cs.clone();
        moved[16..20].copy_from_slice(&1u32.to_be_bytes());
        moved[8..12].copy_from_slice(&65u32.to_be_bytes());
        assert_eq!(header(&moved, 1 << 30, 0).unwrap().levels, 0);
    }

    #[test]
    fn header_refuses_what_the_decode_cannot_give_before_any_pixel_is_allocated() {
        let big = codestream(100_000, 100_000, &[(7, 1, 1)]);
        assert!(matches!(
            header(&big, 1 << 30, 0),
            Err(CodecError::TooLarge { .. })
        ));
        let sub = codestream(10, 10, &[(7, 1, 1), (7, 2, 2), (7, 2, 2)]);
        assert!(header(&sub, 1 << 30, 0)
            .unwrap_err()
            .to_string()
            .contains("subsampled"));
        let deep = codestream(10, 10, &[(31, 1, 1)]);
        assert!(header(&deep, 1 << 30, 0).is_err());
        let five = codestream(10, 10, &[(7, 1, 1); 5]);
        assert!(header(&five, 1 << 30, 0).is_err());
        let cut = &codestream(10, 10, &[(7, 1, 1)])[..20];
        assert!(header(cut, 1 << 30, 0).is_err());
        // A box longer than the file, and a JP2 without a codestream.
        let mut long = jp2(&[(b"ftyp", b"jp2 ".to_vec())]);
        long[12..16].copy_from_slice(&1000u32.to_be_bytes());
        assert!(header(&long, 1 << 30, 0).is_err());
        assert!(header(&jp2(&[(b"ftyp", b"jp2 ".to_vec())]), 1 << 30, 0).is_err());
    }
}
