//! Image metadata in file bytes, read and written here once for every codec: the JPEG header walk (frame size,
//! EXIF orientation, ICC profile), the truncation check, EXIF and ICC segments for encoders, and the PNG ICC
//! profile read with a bounded inflate.

use super::{CodecError, Orientation};

/// APP1 payload: 2 length bytes + "Exif\0\0" + TIFF data <= 65535.
pub const MAX_EXIF: usize = 65535 - 2 - 6;
/// ICC profiles are split over at most 255 APP2 segments of 65519 data bytes each.
const ICC_CHUNK: usize = 65535 - 2 - 14;
pub const MAX_ICC: usize = 255 * ICC_CHUNK;
/// A PNG ICC profile inflating to more than this is dropped: real profiles are a few KB (rarely 1 MB), and a
/// small compressed chunk can otherwise claim gigabytes.
pub const MAX_PNG_ICC: usize = 4 << 20;

/// What a JPEG's header says, read once per source; the decoders work from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    /// Colour components in the frame: 1 grey, 3 YCbCr or RGB, 4 CMYK or YCCK.
    pub components: u8,
    /// EXIF Orientation (none when absent or invalid).
    pub orientation: Orientation,
    pub icc: Option<Vec<u8>>,
    /// An Adobe APP14 segment is present: four-component data is stored inverted, as Photoshop writes it.
    pub adobe: bool,
}

fn header_error(message: &str) -> CodecError {
    CodecError::Decode {
        format: "jpeg",
        message: message.into(),
    }
}

/// Walk the marker segments from SOI to the first SOS, without touching the entropy-coded data.
pub fn jpeg_header(bytes: &[u8]) -> Result<JpegHeader, CodecError> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(header_error("no start-of-image marker"));
    }
    let mut frame: Option<(u32, u32, u8)> = None;
    let mut orientation = Orientation::NoTransforms;
    let mut adobe = false;
    // (sequence number, count, data) of each ICC_PROFILE segment.
    let mut icc: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = match bytes.get(at..at + 2) {
            Some([0xFF, m]) => *m,
            Some(_) => return Err(header_error("expected a marker between header segments")),
            None => return Err(header_error("the file ends inside the header")),
        };
        at += 2;
        match marker {
            0x01 | 0xD0..=0xD7 => continue, // standalone markers: no length
            0xD9 => return Err(header_error("end-of-image marker before any scan")),
            0xDA => break,
            _ => {}
        }
        let len = match bytes.get(at..at + 2) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err(header_error("the file ends inside the header")),
        };
        let segment = bytes
            .get(at + 2..at + len.max(2))
            .filter(|_| len >= 2)
            .ok_or_else(|| header_error("a header segment runs past the end of the file"))?;
        at += len;
        match marker {
            // Start of frame, every coding process (C4, C8, CC are tables and a reserved marker).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let [_precision, h0, h1, w0, w1, n, ..] = *segment else {
                    return Err(header_error("short frame header"));
                };
                let (w, h) = (u16::from_be_bytes([w0, w1]), u16::from_be_bytes([h0, h1]));
                if w == 0 || h == 0 {
                    return Err(header_error("frame header has a zero dimension"));
                }
                frame.get_or_insert((u32::from(w), u32::from(h), n));
            }
            0xE1 if segment.len() > 6 && segment.starts_with(b"Exif\0\0") => {
                // The last EXIF segment counts, as in zune-jpeg and image.
                orientation = Orientation::from_exif_chunk(&segment[6..])
                    .unwrap_or(Orientation::NoTransforms);
            }
            0xE2 if segment.len() >= 14 && segment.starts_with(b"ICC_PROFILE\0") => {
                icc.push((segment[12], segment[13], &segment[14..]));
            }
            0xEE if segment.starts_with(b"Adobe") => adobe = true,
            _ => {}
        }
    }
    let (width, height, components) = frame.ok_or_else(|| header_error("no frame header"))?;
    Ok(JpegHeader {
        width,
        height,
        components,
        orientation,
        icc: join_icc(&icc),
        adobe,
    })
}

/// The profile from its APP2 chunks, or none when they do not form one: every chunk must give the same count,
/// and each sequence number from 1 to the count must occur exactly once.
fn join_icc(chunks: &[(u8, u8, &[u8])]) -> Option<Vec<u8>> {
    let n = chunks.len();
    if n == 0 || chunks.iter().any(|&(_, count, _)| usize::from(count) != n) {
        return None;
    }
    let mut ordered: Vec<Option<&[u8]>> = vec![None; n];
    for &(seq, _, data) in chunks {
        let slot = ordered.get_mut(usize::from(seq).checked_sub(1)?)?;
        if slot.replace(data).is_some() {
            return None;
        }
    }
    Some(ordered.into_iter().flatten().flatten().copied().collect())
}

/// A JPEG whose last scan has no end-of-image marker after it was cut short. The decoder would fill the
/// missing part with grey and carry on; a museum derivative must not silently lose the bottom of the picture.
/// (0xFF bytes inside entropy-coded data are always stuffed, so SOS and EOI markers cannot occur there.)
pub fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => !bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => true,
    }
}

/// Insert an APP1 Exif segment (`exif`: the TIFF bytes), `extra` segments ((marker, payload), each at most
/// 65533 bytes: XMP, IPTC) and the APP2 ICC_PROFILE segments into an encoder's output, after SOI and the JFIF
/// APP0 (the order libjpeg's jpeg_write_marker would give).
pub fn insert_jpeg_segments(
    jpeg: Vec<u8>,
    exif: Option<&[u8]>,
    extra: &[(u8, Vec<u8>)],
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, CodecError> {
    let fail = |message: String| CodecError::Encode {
        format: "jpeg",
        message,
    };
    if exif.is_none() && icc.is_none() && extra.is_empty() {
        return Ok(jpeg);
    }
    if let Some((_, p)) = extra.iter().find(|(_, p)| p.len() > MAX_SEGMENT) {
        return Err(fail(format!(
            "a segment of {} bytes does not fit (max {MAX_SEGMENT})",
            p.len()
        )));
    }
    if let Some(e) = exif.filter(|e| e.len() > MAX_EXIF) {
        return Err(fail(format!(
            "EXIF block of {} bytes does not fit one APP1 segment (max {MAX_EXIF})",
            e.len()
        )));
    }
    if let Some(p) = icc.filter(|p| p.is_empty() || p.len() > MAX_ICC) {
        return Err(fail(format!(
            "ICC profile of {} bytes is empty or over {MAX_ICC} bytes",
            p.len()
        )));
    }
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Err(fail("encoder output does not start with SOI".into()));
    }
    let mut at = 2;
    if jpeg[2..4] == [0xFF, 0xE0] {
        let len = jpeg
            .get(4..6)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or_else(|| fail("short APP0".into()))?;
        at = 4 + len;
        if at > jpeg.len() {
            return Err(fail("APP0 runs past the end".into()));
        }
    }
    let more = exif.map_or(0, |e| e.len() + 10)
        + extra.iter().map(|(_, p)| p.len() + 4).sum::<usize>()
        + icc.map_or(0, |p| p.len() + 18 * p.len().div_ceil(ICC_CHUNK));
    let mut out = Vec::with_capacity(jpeg.len() + more);
    out.extend_from_slice(&jpeg[..at]);
    let mut segment = |marker: u8, parts: &[&[u8]]| {
        let len: usize = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        out.extend_from_slice(&[0xFF, marker]);
        // Sizes were checked against MAX_EXIF / ICC_CHUNK, so len <= 65535.
        out.extend_from_slice(&(len as u16).to_be_bytes());
        for p in parts {
            out.extend_from_slice(p);
        }
    };
    if let Some(e) = exif {
        segment(0xE1, &[b"Exif\0\0", e]);
    }
    for (marker, p) in extra {
        segment(*marker, &[p.as_slice()]);
    }
    if let Some(p) = icc {
        let n = p.len().div_ceil(ICC_CHUNK);
        for (i, chunk) in p.chunks(ICC_CHUNK).enumerate() {
            // n <= 255 because p.len() <= MAX_ICC.
            segment(0xE2, &[b"ICC_PROFILE\0", &[(i + 1) as u8, n as u8], chunk]);
        }
    }
    out.extend_from_slice(&jpeg[at..]);
    Ok(out)
}

/// Where a PNG's iCCP chunk lies: the whole chunk, length to CRC. The png crate inflates iCCP with no cap
/// but the whole image's memory limit, so decoders are given the file without this chunk, and the profile
/// comes from [`png_icc`].
pub fn png_iccp_chunk(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut at = 8; // the signature
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let end = at.checked_add(12)?.checked_add(len)?;
        if kind == b"IDAT" || kind == b"IEND" || end > bytes.len() {
            return None; // iCCP must come before the image data
        }
        if kind == b"iCCP" {
            return Some(at..end);
        }
        at = end;
    }
    None
}

/// The profile in a PNG's iCCP chunk (`chunk` from [`png_iccp_chunk`]), inflated to at most `cap` bytes: none when
/// it is corrupt or larger.
pub fn png_icc(bytes: &[u8], chunk: std::ops::Range<usize>, cap: usize) -> Option<Vec<u8>> {
    let data = bytes.get(chunk.start + 8..chunk.end.checked_sub(4)?)?;
    // Profile name (1 to 79 bytes), NUL, compression method 0, zlib stream.
    let nul = data.iter().position(|&b| b == 0)?;
    if !(1..80).contains(&nul) || data.get(nul + 1) != Some(&0) {
        return None;
    }
    fdeflate::decompress_to_vec_bounded(&data[nul + 2..], cap).ok()
}

/// The ICC profile of a classic TIFF's first IFD (tag 34675), BYTE or UNDEFINED as the TIFF/ICC spec has it
/// (the `tiff` crate reads only BYTE); none when absent, malformed or over `cap` bytes.
pub fn tiff_icc(bytes: &[u8], cap: usize) -> Option<Vec<u8>> {
    let big = match bytes.get(..4)? {
        b"MM\0\x2a" => true,
        b"II\x2a\0" => false,
        _ => return None, // BigTIFF and anything else
    };
    let u16_at = |at: usize| -> Option<usize> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }))
    };
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
        .ok()
    };
    let ifd = u32_at(4)?;
    let entries = u16_at(ifd)?;
    (0..entries).find_map(|i| {
        let at = ifd + 2 + 12 * i;
        if u16_at(at)? != 34675 || !matches!(u16_at(at + 2)?, 1 | 7) {
            return None;
        }
        let len = u32_at(at + 4)?;
        if len > cap {
            return None;
        }
        let start = if len <= 4 { at + 8 } else { u32_at(at + 8)? };
        Some(bytes.get(start..start.checked_add(len)?)?.to_vec())
    })
}

// Rights and other descriptive metadata: what a source's derivatives carry of its EXIF, XMP and IPTC.

/// Which of a source's descriptive metadata its derivatives carry (`-metadata`, `derivatives.metadata`). What
/// display needs is never dropped: the ICC profile follows `-colour`, and the EXIF Orientation of pixels kept as
/// stored (rotation `-1`) is written whatever the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataMode {
    /// Nothing else.
    None,
    /// EXIF Copyright and Artist, XMP dc:rights and IPTC CopyrightNotice, each where the format holds it.
    #[default]
    Rights,
    /// The source's EXIF, XMP and IPTC blocks as they are; byte copies stay byte copies.
    All,
}

/// A metadata mode that is not `none`, `rights` or `all`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a metadata mode (none, rights or all)")]
pub struct UnknownMetadataMode(pub String);

impl std::str::FromStr for MetadataMode {
    type Err = UnknownMetadataMode;
    fn from_str(s: &str) -> Result<Self, UnknownMetadataMode> {
        match s {
            "none" => Ok(MetadataMode::None),
            "rights" => Ok(MetadataMode::Rights),
            "all" => Ok(MetadataMode::All),
            other => Err(UnknownMetadataMode(other.into())),
        }
    }
}

const XMP_ID: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const PHOTOSHOP_ID: &[u8] = b"Photoshop 3.0\0";
/// The most a segment's payload can hold (its length field counts itself).
const MAX_SEGMENT: usize = 65535 - 2;
/// An XMP packet larger than this (outside JPEG, whose segments bound it) is not read: rights take a few hundred
/// bytes, and a crafted file must not make the tool parse or hold megabytes of XML per derivative.
const MAX_XMP: usize = 1 << 20;
const NS_DC: &[u8] = b"http://purl.org/dc/elements/1.1/";
const NS_RDF: &[u8] = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const PNG_XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// What a source's derivatives carry of its metadata, read once per source as the mode says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    /// EXIF Copyright and Artist (IFD0), their ASCII strings as stored.
    copyright: Option<Vec<Vec<u8>>>,
    artist: Option<Vec<Vec<u8>>>,
    /// `all`: the source's whole EXIF block (a TIFF structure).
    exif: Option<Vec<u8>>,
    /// A whole XMP packet: the source's (`all`), or one holding only dc:rights.
    xmp: Option<Vec<u8>>,
    /// IPTC IIM records: the source's (`all`), or the record version and CopyrightNotice.
    iptc: Option<Vec<u8>>,
}

/// The metadata blocks of a source file as stored.
#[derive(Debug, Default)]
struct Blocks {
    exif: Option<Vec<u8>>,
    xmp: Option<Vec<u8>>,
    iptc: Option<Vec<u8>>,
}

impl Carried {
    /// Read what `mode` carries from a source of `format`. Metadata that cannot be read is left out: it never
    /// fails a source.
    pub fn read(bytes: &[u8], format: super::Format, mode: MetadataMode) -> Carried {
        use super::Format;
        if mode == MetadataMode::None {
            return Carried::default();
        }
        let (blocks, tiff_rights) = match format {
            Format::Jpeg => (jpeg_blocks(bytes), None),
            Format::Png => (png_blocks(bytes), None),
            Format::Webp => (webp_blocks(bytes), None),
            Format::Tiff => tiff_blocks(bytes),
            // JPEG 2000 masters: their rights are not read (a derivative never copies their bytes).
            Format::Gif | Format::Jp2 => (Blocks::default(), None),
        };
        let (copyright, artist) = tiff_rights
            .or_else(|| blocks.exif.as_deref().map(exif_rights))
            .unwrap_or_default();
        match mode {
            MetadataMode::All => Carried {
                copyright,
                artist,
                exif: blocks.exif,
                xmp: blocks.xmp,
                iptc: blocks.iptc,
            },
            _ => Carried {
                copyright,
                artist,
                exif: None,
                xmp: blocks
                    .xmp
                    .as_deref()
                    .and_then(xmp_rights)
                    .map(|r| xmp_packet(&r)),
                iptc: blocks.iptc.as_deref().and_then(iptc_rights),
            },
        }
    }

    /// The EXIF block (TIFF bytes) for a derivative whose pixels need `orientation` to be shown upright; none when
    /// there is nothing to write.
    /// Every block fits one JPEG segment: one that would not (from a PNG or WebP source) is left out, but never
    /// the orientation.
    pub fn exif(&self, orientation: Orientation) -> Option<Vec<u8>> {
        if let Some(exif) = self.exif.as_ref().filter(|e| e.len() <= MAX_EXIF) {
            let mut exif = exif.clone();
            set_exif_orientation(&mut exif, orientation);
            return Some(exif);
        }
        let built = self.build_exif(orientation);
        match built {
            Some(b) if b.len() > MAX_EXIF => Carried::default().build_exif(orientation),
            b => b,
        }
    }

    fn build_exif(&self, orientation: Orientation) -> Option<Vec<u8>> {
        if self.copyright.is_none()
            && self.artist.is_none()
            && orientation == Orientation::NoTransforms
        {
            return None;
        }
        use exif::{Field, In, Tag, Value};
        let mut fields = Vec::new();
        if orientation != Orientation::NoTransforms {
            fields.push(Field {
                tag: Tag::Orientation,
                ifd_num: In::PRIMARY,
                value: Value::Short(vec![u16::from(orientation.to_exif())]),
            });
        }
        for (tag, v) in [
            (Tag::Artist, &self.artist),
            (Tag::Copyright, &self.copyright),
        ] {
            if let Some(v) = v {
                fields.push(Field {
                    tag,
                    ifd_num: In::PRIMARY,
                    value: Value::Ascii(v.clone()),
                });
            }
        }
        let mut writer = exif::experimental::Writer::new();
        for f in &fields {
            writer.push_field(f);
        }
        let mut out = std::io::Cursor::new(Vec::new());
        writer.write(&mut out, false).ok()?;
        Some(out.into_inner())
    }

    /// EXIF Copyright and Artist as stored, for formats that keep them as tags of their own (TIFF): the parts
    /// of a two-part Copyright (photographer, editor) joined by a NUL, as EXIF stores them.
    pub fn tiff_ascii(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let join = |v: &Option<Vec<Vec<u8>>>| v.as_ref().map(|parts| parts.join(&0u8));
        (join(&self.copyright), join(&self.artist))
    }

    pub fn xmp(&self) -> Option<&[u8]> {
        self.xmp.as_deref()
    }

    pub fn iptc(&self) -> Option<&[u8]> {
        self.iptc.as_deref()
    }

    /// The APP1 (XMP) and APP13 (IPTC) segments for a JPEG, as (marker, payload); a block too large for one
    /// segment is left out (extended XMP is not written).
    pub fn jpeg_segments(&self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some(x) = &self.xmp {
            if XMP_ID.len() + x.len() <= MAX_SEGMENT {
                out.push((0xE1, [XMP_ID, x].concat()));
            }
        }
        if let Some(i) = &self.iptc {
            let mut p = PHOTOSHOP_ID.to_vec();
            // One image resource: "8BIM", id 0x0404 (IPTC-NAA), an empty name padded to even, size, data padded.
            p.extend_from_slice(b"8BIM\x04\x04\0\0");
            p.extend_from_slice(&(i.len() as u32).to_be_bytes());
            p.extend_from_slice(i);
            if i.len() % 2 == 1 {
                p.push(0);
            }
            if p.len() <= MAX_SEGMENT {
                out.push((0xED, p));
            }
        }
        out
    }
}

fn payload<'a>(bytes: &'a [u8], range: &std::ops::Range<usize>) -> &'a [u8] {
    bytes.get(range.clone()).unwrap_or_default()
}

/// A JPEG's marker segments before its first scan, as (marker, whole segment, payload), and where that scan's
/// SOS marker starts; none when the header cannot be walked.
#[allow(clippy::type_complexity)]
fn jpeg_layout(
    bytes: &[u8],
) -> Option<(
    Vec<(u8, std::ops::Range<usize>, std::ops::Range<usize>)>,
    usize,
)> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return None;
    }
    let mut segments = Vec::new();
    let mut at = 2;
    loop {
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = match bytes.get(at..at + 2)? {
            [0xFF, m] => *m,
            _ => return None,
        };
        let start = at;
        at += 2;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xDA => return Some((segments, start)),
            0xD9 => return None,
            _ => {}
        }
        let l = bytes.get(at..at + 2)?;
        let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
        let end = at
            .checked_add(len)
            .filter(|&e| len >= 2 && e <= bytes.len())?;
        segments.push((marker, start..end, at + 2..end));
        at = end;
    }
}

/// Where the image data starting at `scan` (its first SOS marker) ends: just after the EOI marker, or the end of
/// the file when there is none. Whatever follows EOI (another image that MPF points to, a maker's trailer) is
/// not this image's.
fn jpeg_image_end(bytes: &[u8], scan: usize) -> usize {
    let mut at = scan;
    while let Some(i) = bytes
        .get(at..)
        .and_then(|b| b.iter().position(|&x| x == 0xFF))
    {
        let p = at + i;
        match bytes.get(p + 1) {
            None => break,
            // Stuffed bytes, restart markers and fill bytes inside entropy-coded data.
            Some(0x00 | 0x01 | 0xD0..=0xD7) => at = p + 2,
            Some(0xFF) => at = p + 1,
            Some(0xD9) => return p + 2,
            // A marker segment between scans (SOS, DHT, DQT, DRI, DNL, …): skip its length.
            Some(_) => match bytes.get(p + 2..p + 4) {
                Some(l) => at = p + 2 + usize::from(u16::from_be_bytes([l[0], l[1]])).max(2),
                None => break,
            },
        }
    }
    bytes.len()
}

fn jpeg_blocks(bytes: &[u8]) -> Blocks {
    let mut blocks = Blocks::default();
    let Some((segments, _)) = jpeg_layout(bytes) else {
        return blocks;
    };
    for (marker, _, range) in &segments {
        let p = payload(bytes, range);
        match marker {
            // The last EXIF segment counts, as for the orientation.
            0xE1 if p.starts_with(b"Exif\0\0") => blocks.exif = Some(p[6..].to_vec()),
            0xE1 if p.starts_with(XMP_ID) && blocks.xmp.is_none() => {
                blocks.xmp = Some(p[XMP_ID.len()..].to_vec())
            }
            0xED if p.starts_with(PHOTOSHOP_ID) && blocks.iptc.is_none() => {
                blocks.iptc = photoshop_iptc(&p[PHOTOSHOP_ID.len()..]).map(<[u8]>::to_vec)
            }
            _ => {}
        }
    }
    blocks
}

/// The IPTC-NAA resource (0x0404) among Photoshop image resources.
fn photoshop_iptc(mut p: &[u8]) -> Option<&[u8]> {
    while p.len() >= 12 && p.starts_with(b"8BIM") {
        let id = u16::from_be_bytes([p[4], p[5]]);
        // A Pascal string padded to an even length (the length byte included).
        let name = (usize::from(p[6]) + 2) & !1;
        let at = 6 + name;
        let size = p.get(at..at + 4)?;
        let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let data = p.get(at + 4..(at + 4).checked_add(size)?)?;
        if id == 0x0404 {
            return Some(data);
        }
        p = p.get(at + 4 + ((size + 1) & !1)..).unwrap_or_default();
    }
    None
}

/// A PNG's eXIf and XMP, from a walk over its chunks (no copy of the file).
fn png_blocks(bytes: &[u8]) -> Blocks {
    let mut blocks = Blocks::default();
    let mut at = 8; // the signature
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(data) = at
            .checked_add(8 + len)
            .and_then(|end| bytes.get(at + 8..end))
        else {
            break;
        };
        match &head[4..8] {
            b"eXIf" if blocks.exif.is_none() => blocks.exif = Some(data.to_vec()),
            b"iTXt" if blocks.xmp.is_none() => blocks.xmp = png_itxt_xmp(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    blocks
}

/// The XMP packet of a PNG iTXt chunk with Adobe's keyword: keyword, NUL, compression flag and method, language,
/// NUL, translated keyword, NUL, text (inflated to at most [`MAX_XMP`] bytes when compressed).
fn png_itxt_xmp(c: &[u8]) -> Option<Vec<u8>> {
    let rest = c.strip_prefix(PNG_XMP_KEYWORD)?.strip_prefix(b"\0")?;
    let (&compressed, rest) = rest.split_first()?;
    let rest = rest.get(1..)?;
    let lang = rest.iter().position(|&b| b == 0)?;
    let rest = &rest[lang + 1..];
    let translated = rest.iter().position(|&b| b == 0)?;
    let text = &rest[translated + 1..];
    match compressed {
        0 => (text.len() <= MAX_XMP).then(|| text.to_vec()),
        _ => fdeflate::decompress_to_vec_bounded(text, MAX_XMP).ok(),
    }
}

fn png_itxt(xmp: &[u8]) -> Vec<u8> {
    [PNG_XMP_KEYWORD, b"\0\0\0\0\0", xmp].concat()
}

/// A WebP's EXIF and XMP chunks, from a walk over its RIFF chunks (no copy of the file).
fn webp_blocks(bytes: &[u8]) -> Blocks {
    let mut blocks = Blocks::default();
    if bytes.get(..4) != Some(&b"RIFF"[..]) || bytes.get(8..12) != Some(&b"WEBP"[..]) {
        return blocks;
    }
    let mut at = 12;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let Some(data) = at
            .checked_add(8 + len)
            .and_then(|end| bytes.get(at + 8..end))
        else {
            break;
        };
        match &head[..4] {
            // Some writers put the APP1 identifier before the TIFF data.
            b"EXIF" => blocks.exif = Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data).to_vec()),
            b"XMP " if data.len() <= MAX_XMP => blocks.xmp = Some(data.to_vec()),
            _ => {}
        }
        // Chunks are padded to an even size.
        at += 8 + len + (len & 1);
    }
    blocks
}

/// A TIFF's own Copyright and Artist tags and its XMP (tag 700), from the first IFD.
#[allow(clippy::type_complexity)]
fn tiff_blocks(bytes: &[u8]) -> (Blocks, Option<(Option<Vec<Vec<u8>>>, Option<Vec<Vec<u8>>>)>) {
    use tiff::tags::Tag;
    let mut blocks = Blocks::default();
    let Ok(mut d) = tiff::decoder::Decoder::new(std::io::Cursor::new(bytes)) else {
        return (blocks, None);
    };
    let mut ascii = |tag: Tag| {
        d.get_tag_ascii_string(tag)
            .ok()
            .map(|s| s.split('\0').map(|p| p.as_bytes().to_vec()).collect())
    };
    let rights = (ascii(Tag::Copyright), ascii(Tag::Artist));
    blocks.xmp = d
        .find_tag(Tag::Unknown(700))
        .ok()
        .flatten()
        .and_then(|v| v.into_u8_vec().ok())
        .filter(|x| x.len() <= MAX_XMP);
    (blocks, Some(rights))
}

/// A field's ASCII parts, as EXIF stores them (Copyright: photographer's, then editor's).
type AsciiParts = Option<Vec<Vec<u8>>>;

/// EXIF Copyright and Artist of IFD0.
fn exif_rights(tiff: &[u8]) -> (AsciiParts, AsciiParts) {
    let Ok(exif) = exif::Reader::new().read_raw(tiff.to_vec()) else {
        return (None, None);
    };
    let ascii = |tag| match exif.get_field(tag, exif::In::PRIMARY).map(|f| &f.value) {
        Some(exif::Value::Ascii(parts)) if parts.iter().any(|p| !p.is_empty()) => {
            Some(parts.clone())
        }
        _ => None,
    };
    (ascii(exif::Tag::Copyright), ascii(exif::Tag::Artist))
}

/// Set the Orientation of an EXIF block's IFD0 in place (1 where `o` needs no turn); a block without the tag is
/// left as it is.
fn set_exif_orientation(tiff: &mut [u8], o: Orientation) {
    let big = match tiff.get(..4) {
        Some(b"MM\0\x2a") => true,
        Some(b"II\x2a\0") => false,
        _ => return,
    };
    let u16_at = |t: &[u8], at: usize| -> Option<u16> {
        let b: [u8; 2] = t.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let Some(ifd) = tiff
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| {
            let v = if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            v as usize
        })
    else {
        return;
    };
    let Some(n) = u16_at(tiff, ifd) else { return };
    for i in 0..usize::from(n) {
        let at = ifd + 2 + 12 * i;
        // Orientation, SHORT: the value sits in the first two bytes of the value field.
        if u16_at(tiff, at) == Some(0x0112) && u16_at(tiff, at + 2) == Some(3) {
            let v = u16::from(o.to_exif());
            let b = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            if let Some(slot) = tiff.get_mut(at + 8..at + 10) {
                slot.copy_from_slice(&b);
            }
            return;
        }
    }
}

/// The dc:rights alternatives of an XMP packet: (xml:lang, text), in order; none when it has none or is not
/// well-formed.
fn xmp_rights(xmp: &[u8]) -> Option<Vec<(String, String)>> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult::Bound;
    use quick_xml::reader::NsReader;
    let text = std::str::from_utf8(xmp).ok()?;
    let mut reader = NsReader::from_str(text);
    let mut out = Vec::new();
    // Depth inside dc:rights (0: outside), and the item being read.
    let mut depth = 0usize;
    let mut item: Option<(String, String)> = None;
    loop {
        match reader.read_resolved_event().ok()? {
            (Bound(ns), Event::Start(e))
                if depth == 0 && ns.as_ref() == NS_DC && e.local_name().as_ref() == b"rights" =>
            {
                depth = 1
            }
            (ns, Event::Start(e)) if depth > 0 => {
                depth += 1;
                if matches!(ns, Bound(n) if n.as_ref() == NS_RDF)
                    && e.local_name().as_ref() == b"li"
                {
                    let lang = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"xml:lang")
                        .and_then(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .ok()
                                .map(|v| v.into_owned())
                        })
                        .unwrap_or_else(|| "x-default".into());
                    item = Some((lang, String::new()));
                }
            }
            (_, Event::Text(t)) if depth > 0 => {
                if let Some((_, s)) = item.as_mut() {
                    s.push_str(&t.decode().ok()?);
                }
            }
            (_, Event::CData(t)) if depth > 0 => {
                if let Some((_, s)) = item.as_mut() {
                    s.push_str(&t.decode().ok()?);
                }
            }
            (_, Event::GeneralRef(r)) if depth > 0 => {
                let c = match r.resolve_char_ref().ok()? {
                    Some(c) => c,
                    None => match &*r {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        _ => return None,
                    },
                };
                if let Some((_, s)) = item.as_mut() {
                    s.push(c);
                }
            }
            (_, Event::End(_)) if depth > 0 => {
                depth -= 1;
                if let Some(done) = item.take().filter(|_| depth > 0) {
                    out.push(done);
                } else if depth == 0 {
                    break;
                }
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

/// An XMP packet holding only dc:rights.
fn xmp_packet(rights: &[(String, String)]) -> Vec<u8> {
    use quick_xml::escape::escape;
    let mut items = String::new();
    for (lang, text) in rights {
        items.push_str(&format!(
            "<rdf:li xml:lang=\"{}\">{}</rdf:li>",
            escape(lang.as_str()),
            escape(text.as_str())
        ));
    }
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
         <dc:rights><rdf:Alt>{items}</rdf:Alt></dc:rights>\
         </rdf:Description></rdf:RDF></x:xmpmeta>\
         <?xpacket end=\"r\"?>"
    )
    .into_bytes()
}

/// IIM records holding the record version and the source's CopyrightNotice (2:116), with its coded character
/// set (1:90) so that the text reads as it did; none when it has no CopyrightNotice.
fn iptc_rights(iim: &[u8]) -> Option<Vec<u8>> {
    let (mut charset, mut notice) = (None, None);
    let mut at = 0;
    // Each dataset: 0x1C, record, dataset, a 2-byte length (the extended form, top bit set, is for large
    // binary data and ends the walk).
    while let Some(&[0x1C, record, dataset, l0, l1]) = iim.get(at..at + 5) {
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len & 0x8000 != 0 {
            break;
        }
        let Some(data) = iim.get(at + 5..at + 5 + len) else {
            break;
        };
        match (record, dataset) {
            (1, 90) => charset = charset.or(Some(data)),
            (2, 116) => notice = notice.or(Some(data)),
            _ => {}
        }
        at += 5 + len;
    }
    let notice = notice.filter(|n| !n.is_empty())?;
    let mut out = Vec::new();
    let mut put = |record: u8, dataset: u8, data: &[u8]| {
        out.extend_from_slice(&[0x1C, record, dataset]);
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    };
    if let Some(c) = charset {
        put(1, 90, c);
    }
    put(2, 0, &[0, 4]);
    put(2, 116, notice);
    Some(out)
}

/// Whether a byte copy of this format can be re-muxed with only the carried metadata; other formats are made
/// from the pixels instead when metadata is to be left out.
pub fn can_remux(format: super::Format) -> bool {
    use super::Format;
    matches!(format, Format::Jpeg | Format::Png | Format::Webp)
}

fn remux_error(format: &'static str, message: impl std::fmt::Display) -> CodecError {
    CodecError::Encode {
        format,
        message: format!("cannot rewrite the metadata: {message}"),
    }
}

/// A byte copy of a source file with its descriptive metadata replaced by `carried`: the compressed image data,
/// its tables and the colour information (ICC profile, Adobe transform, PNG colour chunks) are kept byte for
/// byte; `orientation` is the EXIF Orientation the stored pixels need.
pub fn remux(
    bytes: &[u8],
    format: super::Format,
    carried: &Carried,
    orientation: Orientation,
) -> Result<Vec<u8>, CodecError> {
    use super::Format;
    let exif = carried.exif(orientation);
    match format {
        Format::Jpeg => {
            let (segments, scan) =
                jpeg_layout(bytes).ok_or_else(|| remux_error("jpeg", "unreadable header"))?;
            let end = jpeg_image_end(bytes, scan);
            let kept = segments.iter().filter(|(marker, _, range)| {
                let p = payload(bytes, range);
                match marker {
                    0xE0 => p.starts_with(b"JFIF\0"),
                    0xE2 => p.starts_with(b"ICC_PROFILE\0"),
                    0xEE => p.starts_with(b"Adobe"),
                    // Every other APPn and comments are descriptive; tables and frame headers are the image.
                    0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
                    _ => true,
                }
            });
            let mut out = b"\xFF\xD8".to_vec();
            for (_, whole, _) in kept {
                out.extend_from_slice(payload(bytes, whole));
            }
            out.extend_from_slice(&bytes[scan..end]);
            insert_jpeg_segments(out, exif.as_deref(), &carried.jpeg_segments(), None)
        }
        Format::Png => png_with(bytes, exif.as_deref(), carried.xmp(), true),
        Format::Webp => webp_with(bytes, exif.as_deref(), carried.xmp(), true),
        Format::Tiff | Format::Gif | Format::Jp2 => Ok(bytes.to_vec()),
    }
}

/// Chunks a re-muxed PNG keeps: the image, its colour and transparency, its pixel size, its animation.
const PNG_KEPT: [&[u8; 4]; 16] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

/// `png` with an eXIf chunk and an XMP iTXt chunk before its image data; `strip`: only [`PNG_KEPT`] chunks stay.
pub fn png_with(
    png: &[u8],
    exif: Option<&[u8]>,
    xmp: Option<&[u8]>,
    strip: bool,
) -> Result<Vec<u8>, CodecError> {
    use img_parts::{png::Png, png::PngChunk, Bytes};
    if !strip && exif.is_none() && xmp.is_none() {
        return Ok(png.to_vec());
    }
    let mut file =
        Png::from_bytes(Bytes::copy_from_slice(png)).map_err(|e| remux_error("png", e))?;
    let chunks = file.chunks_mut();
    if strip {
        chunks.retain(|c| PNG_KEPT.contains(&&c.kind()));
    }
    let at = chunks
        .iter()
        .position(|c| &c.kind() == b"IDAT")
        .ok_or_else(|| remux_error("png", "no image data"))?;
    if let Some(x) = xmp {
        chunks.insert(at, PngChunk::new(*b"iTXt", Bytes::from(png_itxt(x))));
    }
    if let Some(e) = exif {
        chunks.insert(at, PngChunk::new(*b"eXIf", Bytes::copy_from_slice(e)));
    }
    let mut out = Vec::with_capacity(png.len() + 1024);
    file.encoder()
        .write_to(&mut out)
        .map_err(|e| remux_error("png", e))?;
    Ok(out)
}

/// `webp` with EXIF and XMP chunks after its image data (the file made extended when it was simple);
/// `strip`: only the image, alpha, animation and ICC chunks stay.
pub fn webp_with(
    webp: &[u8],
    exif: Option<&[u8]>,
    xmp: Option<&[u8]>,
    strip: bool,
) -> Result<Vec<u8>, CodecError> {
    use img_parts::riff::{RiffChunk, RiffContent};
    use img_parts::{webp::WebP, Bytes, ImageEXIF};
    if !strip && exif.is_none() && xmp.is_none() {
        return Ok(webp.to_vec());
    }
    let mut file =
        WebP::from_bytes(Bytes::copy_from_slice(webp)).map_err(|e| remux_error("webp", e))?;
    if strip {
        file.chunks_mut().retain(|c| {
            matches!(
                &c.id(),
                b"VP8X" | b"VP8 " | b"VP8L" | b"ALPH" | b"ANIM" | b"ANMF" | b"ICCP"
            )
        });
    }
    file.remove_chunks_by_id(*b"XMP ");
    if let Some(x) = xmp {
        file.chunks_mut().push(RiffChunk::new(
            *b"XMP ",
            RiffContent::Data(Bytes::copy_from_slice(x)),
        ));
    }
    // Also makes the file extended (VP8X) when other chunks than the image are present, and sets its EXIF flag.
    file.set_exif(exif.map(Bytes::copy_from_slice));
    // img-parts keeps the XMP flag of an existing VP8X as it was.
    const XMP_FLAG: u8 = 0b0000_0100;
    if let Some(vp8x) = file.chunks_mut().iter_mut().find(|c| &c.id() == b"VP8X") {
        if let RiffContent::Data(d) = vp8x.content_mut() {
            if let Some(&flags) = d.first() {
                let mut v = d.to_vec();
                v[0] = if xmp.is_some() {
                    flags | XMP_FLAG
                } else {
                    flags & !XMP_FLAG
                };
                *d = Bytes::from(v);
            }
        }
    }
    let mut out = Vec::with_capacity(webp.len() + 1024);
    file.encoder()
        .write_to(&mut out)
        .map_err(|e| remux_error("webp", e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icc_chunks_join_in_sequence_order_or_not_at_all() {
        let (a, b): (&[u8], &[u8]) = (b"ab", b"cd");
        assert_eq!(join_icc(&[(2, 2, b), (1, 2, a)]), Some(b"abcd".to_vec()));
        assert_eq!(join_icc(&[(1, 2, a), (1, 2, b)]), None); // duplicate
        assert_eq!(join_icc(&[(0, 1, a)]), None); // sequence numbers start at 1
        assert_eq!(join_icc(&[(1, 3, a), (2, 3, b)]), None); // one missing
    }

    #[test]
    fn segments_written_are_read_back() {
        let jpeg =
            b"\xFF\xD8\xFF\xC0\0\x0B\x08\0\x02\0\x03\x01\x01\x11\0\xFF\xDA\0\x02\xFF\xD9".to_vec();
        let icc = vec![7u8; 70_000]; // two APP2 chunks
        let tiff = Carried::default().exif(Orientation::Rotate90).unwrap();
        let out = insert_jpeg_segments(jpeg, Some(&tiff), &[], Some(&icc)).unwrap();
        let h = jpeg_header(&out).unwrap();
        assert_eq!((h.width, h.height, h.components), (3, 2, 1));
        assert_eq!(h.orientation, Orientation::Rotate90);
        assert_eq!(h.icc, Some(icc));
    }
}

#[cfg(test)]
mod rights_tests {
    use super::*;

    #[test]
    fn xmp_rights_are_read_whatever_the_prefix_and_written_escaped() {
        let xmp = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
            <rdf:Description xmlns:d="http://purl.org/dc/elements/1.1/" xmlns:p="http://ns.adobe.com/photoshop/1.0/">
            <p:Credit>not this</p:Credit>
            <d:rights><rdf:Alt><rdf:li xml:lang="x-default">&#169; A &amp; B &lt;1&gt;</rdf:li>
            <rdf:li xml:lang="fr">droits</rdf:li></rdf:Alt></d:rights>
            <d:creator><rdf:Seq><rdf:li>not this either</rdf:li></rdf:Seq></d:creator>
            </rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let rights = xmp_rights(xmp).unwrap();
        assert_eq!(
            rights,
            [
                ("x-default".to_string(), "© A & B <1>".to_string()),
                ("fr".to_string(), "droits".to_string())
            ]
        );
        // What is written reads back the same.
        assert_eq!(xmp_rights(&xmp_packet(&rights)).unwrap(), rights);
        assert_eq!(xmp_rights(b"<a>no rights</a>"), None);
        assert_eq!(xmp_rights(b"<not xml"), None);
    }

    #[test]
    fn iptc_keeps_the_copyright_notice_and_its_character_set_only() {
        let mut iim = Vec::new();
        let datasets: [(u8, u8, &[u8]); 3] = [
            (1, 90, b"\x1B%G"),
            (2, 80, b"By-line"),
            (2, 116, "© Museum".as_bytes()),
        ];
        for (r, d, v) in datasets {
            iim.extend_from_slice(&[0x1C, r, d, 0, v.len() as u8]);
            iim.extend_from_slice(v);
        }
        let out = iptc_rights(&iim).unwrap();
        let mut want =
            b"\x1C\x01\x5A\x00\x03\x1B%G\x1C\x02\x00\x00\x02\x00\x04\x1C\x02\x74\x00\x09".to_vec();
        want.extend_from_slice("© Museum".as_bytes());
        assert_eq!(out, want);
        assert_eq!(iptc_rights(&iim[..20]), None); // cut before the notice
                                                   // Wrapped for JPEG as Photoshop does, and found again there.
        let carried = Carried {
            iptc: Some(out.clone()),
            ..Default::default()
        };
        let segments = carried.jpeg_segments();
        let (marker, app13) = &segments[0];
        assert_eq!(*marker, 0xED);
        assert_eq!(photoshop_iptc(&app13[PHOTOSHOP_ID.len()..]), Some(&out[..]));
    }

    #[test]
    fn exif_rights_are_written_and_read_back_and_orientation_is_patched() {
        let carried = Carried {
            copyright: Some(vec![b"Photographer".to_vec(), b"Editor".to_vec()]),
            artist: Some(vec![b"A. Person".to_vec()]),
            ..Default::default()
        };
        let mut tiff = carried.exif(Orientation::Rotate90).unwrap();
        assert_eq!(
            exif_rights(&tiff),
            (carried.copyright.clone(), carried.artist.clone())
        );
        assert_eq!(
            Orientation::from_exif_chunk(&tiff),
            Some(Orientation::Rotate90)
        );
        set_exif_orientation(&mut tiff, Orientation::NoTransforms);
        assert_eq!(
            Orientation::from_exif_chunk(&tiff),
            Some(Orientation::NoTransforms)
        );
        assert_eq!(Carried::default().exif(Orientation::NoTransforms), None);
        let (c, a) = carried.tiff_ascii();
        assert_eq!(
            (c.as_deref(), a.as_deref()),
            (Some(&b"Photographer\0Editor"[..]), Some(&b"A. Person"[..]))
        );
    }

    #[test]
    fn a_jpeg_image_ends_at_its_eoi_whatever_follows() {
        // SOS header, entropy data with a stuffed byte and a restart marker, EOI, then a trailer.
        let jpeg = b"\xFF\xD8\xFF\xDA\x00\x03\x01\x12\xFF\x00\x34\xFF\xD0\x56\xFF\xD9TRAILER";
        assert_eq!(jpeg_image_end(jpeg, 2), jpeg.len() - 7);
        assert_eq!(jpeg_image_end(&jpeg[..12], 2), 12);
    }

    #[test]
    fn png_and_webp_are_remuxed_with_only_what_is_carried() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            4,
            3,
            image::Rgb([9, 8, 7]),
        ));
        let carried = Carried {
            artist: Some(vec![b"A".to_vec()]),
            xmp: Some(xmp_packet(&[("x-default".into(), "R".into())])),
            ..Default::default()
        };
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let tagged = png_with(
            &png,
            Some(&b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0"[..]),
            Some(&b"<old/>"[..]),
            false,
        )
        .unwrap();
        let out = remux(
            &tagged,
            super::super::Format::Png,
            &carried,
            Orientation::NoTransforms,
        )
        .unwrap();
        let b = png_blocks(&out);
        assert_eq!(exif_rights(b.exif.as_deref().unwrap()).1, carried.artist);
        assert_eq!(b.xmp.as_deref(), carried.xmp());
        assert_eq!(
            image::load_from_memory(&out).unwrap().to_rgb8(),
            img.to_rgb8()
        );

        let webp = super::super::webp::encode(&img, super::super::WebpQuality::Lossless).unwrap();
        let tagged = webp_with(&webp, None, Some(&b"<old/>"[..]), false).unwrap();
        let out = remux(
            &tagged,
            super::super::Format::Webp,
            &carried,
            Orientation::NoTransforms,
        )
        .unwrap();
        let b = webp_blocks(&out);
        assert_eq!(exif_rights(b.exif.as_deref().unwrap()).1, carried.artist);
        assert_eq!(b.xmp.as_deref(), carried.xmp());
        assert_eq!(
            image::load_from_memory(&out).unwrap().to_rgb8(),
            img.to_rgb8()
        );
        let none = remux(
            &tagged,
            super::super::Format::Webp,
            &Carried::default(),
            Orientation::NoTransforms,
        )
        .unwrap();
        let b = webp_blocks(&none);
        assert!(b.exif.is_none() && b.xmp.is_none());
        // Without the extra chunks the VP8X header says no XMP.
        assert!(none.len() < tagged.len());
    }
}
