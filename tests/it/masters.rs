//! Archival masters: JPEG 2000 (JP2 and bare codestreams) and the TIFFs IIIF stacks keep (tiled pyramidal
//! JPEG-in-TIFF, 16-bit BigTIFF, float), compared with libvips' decode of the same files. The masters and libvips'
//! decodes of them (`*.png` beside each) are made by `tests/fixtures/masters/generate.sh`.

use crate::common::*;
use image::DynamicImage;

/// Each master, and the least PSNR (dB) its full-size derivative must keep against libvips' decode: 45 where
/// both decoders must agree exactly (JPEG 2000, lossless or not, is OpenJPEG's in both; the uncompressed and
/// deflated TIFFs), 38 where two JPEG decoders may round and upsample chroma differently. The palette JP2's
/// truth is OpenJPEG's own decoder's (libvips 8.14 aborts on it).
const MASTERS: [(&str, f64); 11] = [
    ("coffee_lossless.jp2", 45.0),
    ("coffee_lossless.j2k", 45.0),
    ("coffee_lossy.jp2", 45.0),
    ("camera_gray.jp2", 45.0),
    ("camera_palette.jp2", 45.0),
    // Decoded in two strips: 1050 rows in 256-row tiles.
    ("dune_column_tiled.jp2", 45.0),
    ("coffee_rgb16.jp2", 45.0),
    ("coffee_rgba.jp2", 45.0),
    ("coffee_pyramid_jpeg.tif", 38.0),
    ("coffee_rgb16_bigtiff.tif", 45.0),
    ("coffee_float.tif", 45.0),
];

fn master(name: &str) -> std::path::PathBuf {
    fixture(&format!("masters/{name}"))
}

/// PSNR over every sample of two images of one size and layout.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = se / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

/// The samples to compare: RGBA when either side has alpha, else RGB.
fn samples(img: &DynamicImage, alpha: bool) -> Vec<u8> {
    if alpha {
        img.to_rgba8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    }
}

#[test]
fn jpeg2000_and_tiff_masters_decode_as_libvips_decodes_them() {
    let files: Vec<(&str, std::path::PathBuf)> =
        MASTERS.iter().map(|(n, _)| (*n, master(n))).collect();
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"p": {"format": "png"}, "n": {"size": "!64,64", "format": "png"}}"#,
        &files,
    );
    let mut args = vec!["-quiet"];
    for (n, _) in MASTERS {
        args.extend(["-uri", n]);
    }
    let out = s.run(&args);
    assert_exit(&out, 0);
    let report = stdout_json(&out);
    for (name, least) in MASTERS {
        let truth = decode(master(&format!("{name}.png")));
        let ours = s.output(&format!("{name}/full/full/0/color.png"));
        assert_eq!(
            (ours.width(), ours.height()),
            (truth.width(), truth.height()),
            "{name}"
        );
        let alpha = truth.color().has_alpha() || ours.color().has_alpha();
        let db = psnr(&samples(&ours, alpha), &samples(&truth, alpha));
        assert!(
            db >= least,
            "{name}: {db:.1} dB from libvips' decode (at least {least})"
        );
        // Grey stays grey, alpha stays alpha.
        assert_eq!(
            ours.color().has_color(),
            truth.color().has_color(),
            "{name}"
        );
        assert_eq!(alpha, truth.color().has_alpha(), "{name}");
        let n = &report[name]["dimensions"]["n"];
        let (w, h) = (truth.width() as f64, truth.height() as f64);
        let scale = (64.0 / w).min(64.0 / h);
        assert_eq!(
            n,
            &serde_json::json!([(w * scale).round() as u32, (h * scale).round() as u32]),
            "{name}"
        );
    }
}

#[test]
fn a_jpeg2000_master_in_its_own_format_is_written_as_jpeg() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"o": {"size": "full", "format": ""}}"#,
        &[("a.jp2", master("coffee_lossless.jp2"))],
    );
    let out = s.run(&["-quiet", "-uri", "a.jp2"]);
    assert_exit(&out, 0);
    let report = stdout_json(&out);
    let uri = report["a.jp2"]["uris"]["o"].as_str().unwrap_or_default();
    assert!(uri.ends_with(".jpg"), "{report}");
    let path = s.path("out").join(uri.trim_start_matches('/'));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(b"\xFF\xD8"), "{uri} is not a JPEG");
    let truth = decode(master("coffee_lossless.jp2.png")).to_rgb8();
    let db = psnr(decode(&path).to_rgb8().as_raw(), truth.as_raw());
    assert!(db >= 30.0, "{db:.1} dB");
}

/// `bad` beside a good master: it fails with `words` in its error, the good one is still made, exit status 1.
fn fails_alone(name: &str, bad: &[u8], words: &[&str], args: &[&str]) {
    let dir = tempdir();
    let bad_path = dir.path().join(name);
    std::fs::write(&bad_path, bad).unwrap();
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}}"#,
        &[(name, bad_path), ("good.png", fixture("colour_rgb8.png"))],
    );
    let mut all = vec!["-quiet", "-uri", name, "-uri", "good.png"];
    all.extend(args);
    let out = s.run(&all);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    let msg = r[name]["errors"]["n"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no error in {r}"));
    for w in words {
        assert!(msg.contains(w), "{name}: {msg:?} should say {w:?}");
    }
    assert_eq!(
        r["good.png"]["dimensions"]["n"],
        serde_json::json!([64, 48])
    );
}

#[test]
fn a_jpeg2000_codestream_cut_in_its_header_is_that_source_s_error() {
    let cs = std::fs::read(master("coffee_lossless.j2k")).unwrap();
    fails_alone("cut.j2k", &cs[..60], &["jp2", "truncated"], &[]);
}

#[test]
fn a_jpeg2000_file_cut_in_its_image_data_is_that_source_s_error() {
    // A bare codestream cut at two thirds, and a JP2 whose codestream box runs to the end of the file (length 0,
    // so no box length shows the cut) cut at nine tenths: what is there would decode, blurred or grey.
    let cs = std::fs::read(master("coffee_lossless.j2k")).unwrap();
    fails_alone("cut.j2k", &cs[..cs.len() * 2 / 3], &["truncated"], &[]);
    let mut jp2 = std::fs::read(master("coffee_lossless.jp2")).unwrap();
    let at = jp2.windows(4).position(|w| w == b"jp2c").unwrap() - 4;
    jp2[at..at + 4].copy_from_slice(&[0; 4]);
    let whole = jp2.clone();
    fails_alone("cut.jp2", &jp2[..jp2.len() * 9 / 10], &["truncated"], &[]);
    // The same file whole decodes: the length 0 is not what fails it.
    fails_alone("cut.j2k", &cs[..60], &["jp2"], &[]);
    let dir = tempdir();
    let path = dir.path().join("whole.jp2");
    std::fs::write(&path, &whole).unwrap();
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}}"#,
        &[("whole.jp2", path)],
    );
    assert_exit(&s.run(&["-quiet", "-uri", "whole.jp2"]), 0);
}

#[test]
fn a_jpeg_tile_in_a_tiff_declaring_a_huge_frame_is_refused_before_it_is_decoded() {
    // Every tile's frame header (SOF0) says 16000x16000: a JPEG decoder would allocate 768 MB for each.
    let mut tif = std::fs::read(master("coffee_pyramid_jpeg.tif")).unwrap();
    let sofs: Vec<usize> = tif
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0xFF, 0xC0])
        .map(|(i, _)| i)
        .collect();
    assert!(!sofs.is_empty());
    for at in sofs {
        tif[at + 5..at + 9].copy_from_slice(&[0x3E, 0x80, 0x3E, 0x80]);
    }
    fails_alone(
        "huge_tile.tif",
        &tif,
        &["declares a 16000x16000 frame in a 64x64 tile"],
        &[],
    );
}

#[test]
fn a_jpeg2000_master_over_the_pixel_limit_is_refused() {
    let whole = std::fs::read(master("coffee_lossless.jp2")).unwrap();
    // 160x112 = 17,920 pixels.
    fails_alone(
        "big.jp2",
        &whole,
        &["17920 pixels"],
        &["-max-pixels", "10000"],
    );
}
