//! The codec as its callers use it: probe, then decode with the probe; encode.

use super::*;

/// The default decode limit in tests; the run's comes from its settings.
const DEFAULT_MAX_PIXELS: u64 = 250_000_000;

fn opts(accept_damaged: bool) -> DecodeOptions<'static> {
    DecodeOptions {
        max_pixels: DEFAULT_MAX_PIXELS,
        accept_damaged,
        to_srgb: None,
        level: 0,
    }
}

fn decode_as(bytes: &[u8], max_pixels: u64, o: DecodeOptions) -> Result<Decoded, CodecError> {
    let p = probe(bytes, max_pixels)?;
    decode_with(bytes, &p, &DecodeOptions { max_pixels, ..o })
}

fn decode(bytes: &[u8], max_pixels: u64) -> Result<Decoded, CodecError> {
    decode_as(bytes, max_pixels, opts(false))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn jpeg_decode_keeps_orientation_grey_and_converts_cmyk() {
    let d = decode(&fixture("oriented_6.jpg"), DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(d.orientation, Orientation::Rotate90);
    let g = decode(&fixture("gray.jpg"), DEFAULT_MAX_PIXELS).unwrap();
    assert!(matches!(g.image, DynamicImage::ImageLuma8(_)));
    let c = decode(&fixture("cmyk.jpg"), DEFAULT_MAX_PIXELS).unwrap();
    assert!(matches!(c.image, DynamicImage::ImageRgb8(_)));
    assert_eq!((c.image.width(), c.image.height()), (200, 150));
    let p = decode(&fixture("progressive.jpg"), DEFAULT_MAX_PIXELS).unwrap();
    assert!(p.image.width() > 0 && p.image.height() > 0);
}

#[test]
fn orientation_written_into_jpeg_reads_back() {
    let img = DynamicImage::ImageRgb8(image::RgbImage::new(8, 4));
    for o in 1..=8 {
        let opts = EncodeOptions {
            jpeg_quality: 85,
            exif_orientation: Orientation::from_exif(o),
            icc: None,
            ..Default::default()
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
        assert_eq!(sniff(&bytes).unwrap(), f);
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

fn hostile(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/hostile/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn damaged_jpeg_fails_unless_accepted() {
    // A real photo with 16 bytes cut out of its scan data: both decoders find the damage.
    let bytes = hostile("damaged.jpg");
    match decode_as(&bytes, DEFAULT_MAX_PIXELS, opts(false)) {
        Err(e @ CodecError::Damaged { .. }) => {
            assert!(e.to_string().contains("-accept-damaged"), "{e}")
        }
        Err(e) => panic!("not reported as damage: {e}"),
        Ok(_) => panic!("damaged JPEG decoded without complaint"),
    }
    let d = decode_as(&bytes, DEFAULT_MAX_PIXELS, opts(true)).unwrap();
    assert!(d.image.width() >= 64 && d.image.height() >= 43);
}

/// A PNG whose iCCP chunk inflates to `icc_len` zero bytes, with correct CRCs.
fn png_with_icc(icc_len: usize) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(4, 3, image::Rgb([9, 8, 7])));
    let png = encode(&img, Format::Png, &EncodeOptions::default()).unwrap();
    let mut data = b"bomb\0\0".to_vec();
    data.extend(fdeflate::compress_to_vec(&vec![0u8; icc_len]));
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"iCCP");
    chunk.extend_from_slice(&data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    // After the signature (8 bytes) and IHDR (25 bytes).
    [&png[..33], &chunk[..], &png[33..]].concat()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn png_icc_profile_is_inflated_with_a_cap() {
    let small = png_with_icc(3000);
    let p = probe(&small, DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(
        icc_profile(&small, &p, DEFAULT_MAX_PIXELS),
        Some(vec![0; 3000])
    );
    // 64 MiB from about 330 KB: over the cap, so the profile is dropped and the pixels still decode.
    let bomb = png_with_icc(64 << 20);
    assert!(bomb.len() < 400_000, "{}", bomb.len());
    let chunk = metadata::png_iccp_chunk(&bomb).unwrap();
    assert_eq!(
        metadata::png_icc(&bomb, chunk.clone(), 64 << 20).map(|p| p.len()),
        Some(64 << 20)
    );
    assert_eq!(metadata::png_icc(&bomb, chunk, metadata::MAX_PNG_ICC), None);
    let p = probe(&bomb, DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(icc_profile(&bomb, &p, DEFAULT_MAX_PIXELS), None);
    let d = decode(&bomb, DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(d.image.to_rgb8().get_pixel(3, 2).0, [9, 8, 7]);
}
