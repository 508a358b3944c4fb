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

/// A minimal EXIF TIFF block (the APP1 payload after "Exif\0\0") holding only the Orientation tag: big-endian,
/// one IFD entry.
pub fn exif_orientation_tiff(o: Orientation) -> Vec<u8> {
    let mut v = b"MM\0\x2a\0\0\0\x08".to_vec();
    v.extend_from_slice(&[0, 1]); // one entry
    v.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, o.to_exif(), 0, 0]); // Orientation, SHORT, 1, value
    v.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    v
}

/// Insert an APP1 Exif segment (`exif`: the TIFF bytes) and the APP2 ICC_PROFILE segments into an encoder's
/// output, after SOI and the JFIF APP0 (the order libjpeg's jpeg_write_marker would give).
pub fn insert_jpeg_segments(
    jpeg: Vec<u8>,
    exif: Option<&[u8]>,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, CodecError> {
    let fail = |message: String| CodecError::Encode {
        format: "jpeg",
        message,
    };
    if exif.is_none() && icc.is_none() {
        return Ok(jpeg);
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
    let extra = exif.map_or(0, |e| e.len() + 10)
        + icc.map_or(0, |p| p.len() + 18 * p.len().div_ceil(ICC_CHUNK));
    let mut out = Vec::with_capacity(jpeg.len() + extra);
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
        let tiff = exif_orientation_tiff(Orientation::Rotate90);
        let out = insert_jpeg_segments(jpeg, Some(&tiff), Some(&icc)).unwrap();
        let h = jpeg_header(&out).unwrap();
        assert_eq!((h.width, h.height, h.components), (3, 2, 1));
        assert_eq!(h.orientation, Orientation::Rotate90);
        assert_eq!(h.icc, Some(icc));
    }
}
