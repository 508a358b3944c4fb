//! Where a derivative's pixels come from: regions map exactly into the reduced images they are made from, small
//! derivatives are as sharp as a Lanczos3 resize of the full image, and each derivative's bytes and the services'
//! values depend only on the source and its own instruction, never on what else a run makes.

use crate::common::*;
use fast_image_resize::{self as fr, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage};
use serde_json::Value;

/// PSNR in dB between two RGB images of the same size.
fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = se / a.as_raw().len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// Lanczos3 from the full decode of `file`: the region `(x, y, w, h)` scaled to `out`.
fn reference(file: &str, region: (u32, u32, u32, u32), out: (u32, u32)) -> RgbImage {
    let src = DynamicImage::ImageRgb8(decode_oriented(fixture(file)).to_rgb8());
    let mut dst = DynamicImage::new_rgb8(out.0, out.1);
    let (x, y, w, h) = region;
    let opts = ResizeOptions::new()
        .crop(x as f64, y as f64, w as f64, h as f64)
        .resize_alg(ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    Resizer::new().resize(&src, &mut dst, &opts).unwrap();
    dst.into_rgb8()
}

/// Runs `instructions` (lossless PNG outputs) on `file` and returns the report of that one source.
fn made(file: &str, instructions: &str, args: &[&str]) -> (Setup, Value) {
    made_from(file, fixture(file), instructions, args)
}

/// Runs `instructions` on the file at `path`, named `file`, and returns the report of that one source.
fn made_from(
    file: &str,
    path: std::path::PathBuf,
    instructions: &str,
    args: &[&str],
) -> (Setup, Value) {
    let s = Setup::new(FULL_CONFIG, instructions, &[(file, path)]);
    let mut all = vec!["-uri", file];
    all.extend_from_slice(args);
    let out = s.run(&all);
    assert_exit(&out, 0);
    let report = stdout_json(&out)[file].clone();
    (s, report)
}

fn output(s: &Setup, report: &Value, label: &str) -> RgbImage {
    s.output(report["uris"][label].as_str().unwrap()).to_rgb8()
}

// 1050 rows are 65 and a half 16-row blocks: a DCT-reduced decode pads the last block row, so mapping regions by
// decoded/full height (263/1050 at 1/4) stretches the picture and moves the bottom by a fraction of a pixel.

#[test]
fn a_bottom_edge_region_matches_the_same_region_made_from_the_full_decode() {
    let (s, r) = made(
        "dune_1680x1050.jpg",
        r#"{"e": {"region": "0,850,1680,200", "size": "420,", "format": "png"}}"#,
        &[],
    );
    let got = output(&s, &r, "e");
    let want = reference("dune_1680x1050.jpg", (0, 850, 1680, 200), (420, 50));
    let db = psnr(&got, &want);
    assert!(
        db >= 44.0,
        "bottom region: {db:.1} dB against Lanczos3 from the full decode"
    );
}

#[test]
fn a_full_downscale_is_not_stretched_or_softened() {
    for (size, out) in [
        ("420,", (420, 263)),
        ("210,", (210, 131)),
        ("!800,600", (800, 500)),
    ] {
        let (s, r) = made(
            "dune_1680x1050.jpg",
            &format!(r#"{{"f": {{"size": "{size}", "format": "png"}}}}"#),
            &[],
        );
        let got = output(&s, &r, "f");
        let want = reference("dune_1680x1050.jpg", (0, 0, 1680, 1050), out);
        let db = psnr(&got, &want);
        assert!(
            db >= 44.0,
            "full/{size}: {db:.1} dB against Lanczos3 from the full decode"
        );
    }
}

// The batch failures `Source cropping option is invalid`: a region ending at the right or bottom edge, mapped into
// a reduced copy of the image, ended a rounding error past it.

#[test]
fn regions_ending_at_the_edge_of_a_reduced_copy_are_made() {
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "dune_1680x1050.jpg",
            r#"{"a": {"region": "11,0,1669,1050", "size": "pct:16.07"},
                "b": {"size": "!300,600"}, "c": {"size": "!150,300"}}"#,
            &[],
        ),
        (
            "crop_641x397.jpg",
            r#"{"a": {"region": "pct:99,99,75,80", "size": "^pct:50"},
                "b": {"size": "^!300,600"}, "c": {"size": "^!150,300"}}"#,
            &["-api", "3"],
        ),
        (
            "crop_641x397.jpg",
            r#"{"a": {"region": "pct:0,99,100,100", "size": "^!108,27", "rotation": "90"},
                "b": {"size": "^!300,600"}, "c": {"size": "^!150,300"}}"#,
            &["-api", "3"],
        ),
    ];
    for (file, instructions, args) in cases {
        let (s, r) = made(file, instructions, args);
        assert!(r.get("errors").is_none(), "{file} {instructions}: {r}");
        for label in ["a", "b", "c"] {
            let [w, h] = [0, 1].map(|i| r["dimensions"][label][i].as_u64().unwrap() as u32);
            let img = output(&s, &r, label);
            assert_eq!(img.dimensions(), (w, h), "{file} {label}");
        }
    }
}

// Deterministic derivatives.

const SFO: &str = include_str!("../../instructions.example.json");
const SUBSET: &str = r#"{"n": {"size": "!320,240", "format": "jpg"},
  "ds": {"size": "full", "quality": "dither", "region": "-1,-1,320,320", "format": "jpg"},
  "s": {"size": "full", "region": "-1,-1,320,320", "format": "jpg"}}"#;

fn bytes(s: &Setup, report: &Value, label: &str) -> Vec<u8> {
    std::fs::read(s.path("out").join(report["uris"][label].as_str().unwrap())).unwrap()
}

#[test]
fn derivatives_and_services_do_not_depend_on_the_rest_of_the_set() {
    for file in ["dune_1680x1050.jpg", "landscape.jpg", "oriented_6.jpg"] {
        let (full, rf) = made(file, SFO, &[]);
        let (sub, rs) = made(file, SUBSET, &[]);
        for label in ["n", "s", "ds"] {
            assert!(
                bytes(&full, &rf, label) == bytes(&sub, &rs, label),
                "{file} {label}: different bytes with the whole SFO set and with three of its labels"
            );
        }
        for service in ["imagehash", "blurhash", "palette"] {
            assert!(rf[service].is_object() || rf[service].is_string() || rf[service].is_array());
            assert_eq!(rf[service], rs[service], "{file} {service}");
        }
    }
}

#[test]
fn a_skip_existing_rerun_remakes_a_derivative_with_the_same_bytes() {
    let file = "dune_1680x1050.jpg";
    let (s, r) = made(file, SFO, &[]);
    let labels = ["z", "ds", "n"];
    let first: Vec<Vec<u8>> = labels.iter().map(|l| bytes(&s, &r, l)).collect();
    for label in labels {
        std::fs::remove_file(s.path("out").join(r["uris"][label].as_str().unwrap())).unwrap();
    }
    let out = s.run(&["-uri", file, "-skip-existing"]);
    assert_exit(&out, 0);
    for (label, before) in labels.iter().zip(&first) {
        assert!(
            &bytes(&s, &r, label) == before,
            "{label} remade with other bytes"
        );
    }
}

// JPEG 2000 masters: the file is its own pyramid. Rung 1, and the halvings below it, are the file's resolution
// level 1, decoded on its own; the full image only when something needs it.

const JP2: &str = "dune_tiled.jp2";

/// Runs `instructions` on the 1680x1050 tiled JPEG 2000 master and returns the report of that one source.
fn made_jp2(instructions: &str, args: &[&str]) -> (Setup, Value) {
    made_from(JP2, fixture(&format!("masters/{JP2}")), instructions, args)
}

#[test]
fn a_jpeg2000_s_derivatives_from_its_level_1_match_lanczos3_from_its_full_decode() {
    // Each is made from level 1 or a halving of it (the 1680 px image needs less than a quarter of itself for
    // each), and lands where Lanczos3 from the full image puts it: the level's samples sit on the even pixels
    // of the full image, not between them, so an unplaced level would be a quarter of a pixel off.
    let set = r#"{
        "a": {"size": "400,", "format": "png"},
        "b": {"size": "210,", "format": "png"},
        "c": {"size": "!400,300", "format": "png"},
        "d": {"region": "0,850,1680,200", "size": "400,", "format": "png"},
        "e": {"region": "1280,0,400,1050", "size": ",250", "format": "png"},
        "f": {"region": "600,300,800,600", "size": "200,", "rotation": "90", "format": "png"}
    }"#;
    let (s, r) = made_jp2(set, &[]);
    let (full, rf) = made_jp2(set, &["-from-full-resolution"]);
    for label in ["a", "b", "c", "d", "e", "f"] {
        let (got, want) = (output(&s, &r, label), output(&full, &rf, label));
        let db = psnr(&got, &want);
        assert!(
            db >= 45.0,
            "{label}: {db:.1} dB against Lanczos3 from the full decode"
        );
    }
}

#[test]
fn a_jpeg2000_s_small_derivatives_are_the_same_whatever_else_the_run_makes() {
    // The SFO set needs the full image (`o`, the smart crops); three thumbnails alone do not, and decode only
    // level 1. Their bytes, and the services', are the same either way.
    let small = r#"{"n": {"size": "!320,240", "format": "jpg"},
      "z": {"size": "!640,480", "format": "jpg"},
      "b": {"size": "!1024,768", "format": "jpg"}}"#;
    let (all, ra) = made_jp2(SFO, &[]);
    let (sub, rs) = made_jp2(small, &[]);
    for label in ["n", "z", "b"] {
        assert!(
            bytes(&all, &ra, label) == bytes(&sub, &rs, label),
            "{label}: different bytes with the whole SFO set and with three thumbnails"
        );
    }
    for service in ["imagehash", "blurhash", "palette"] {
        assert!(!ra[service].is_null(), "{service}: {ra}");
        assert_eq!(ra[service], rs[service], "{service}");
    }
}

#[test]
fn a_jpeg2000_s_thumbnails_need_only_the_memory_of_its_level_1() {
    // The full decode of the 1.8 MP master needs about 30 MiB (the 8-bit image and OpenJPEG's 32-bit planes);
    // its level 1 a quarter of that. Under a 16 MiB budget the thumbnails are made; a full-size copy is refused.
    let (_, r) = made_jp2(
        r#"{"n": {"size": "!320,240", "format": "jpg"}}"#,
        &["-max-memory", "16M"],
    );
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(r["dimensions"]["n"], serde_json::json!([320, 200]));
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!320,240", "format": "jpg"}, "f": {"size": "full", "format": "jpg"}}"#,
        &[(JP2, fixture(&format!("masters/{JP2}")))],
    );
    let out = s.run(&["-uri", JP2, "-max-memory", "16M"]);
    let report = stdout_json(&out);
    let error = report[JP2]["errors"]["f"].as_str().unwrap_or_default();
    assert!(error.contains("MiB"), "{report}");
}
