//! go-iiif's extensions: EXIF orientation, rotation -1, dither, crisp, smart crop, format "", services.

use crate::common::*;
use image::GenericImageView;
use serde_json::Value;

fn oriented_files() -> Vec<(String, std::path::PathBuf)> {
    (1..=8)
        .map(|o| (format!("o{o}.jpg"), fixture(&format!("oriented_{o}.jpg"))))
        .collect()
}

#[test]
fn every_orientation_comes_out_upright() {
    let files = oriented_files();
    let refs: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"up": {"format": "png"}, "crop": {"region": "0,0,80,48", "format": "png"}}"#,
        &refs,
    );
    let uris: Vec<String> = (1..=8).map(|o| format!("o{o}.jpg")).collect();
    let mut args: Vec<&str> = Vec::new();
    for u in &uris {
        args.extend(["-uri", u.as_str()]);
    }
    let out = s.run(&args);
    assert_exit(&out, 0);
    let upright = decode_oriented(fixture("oriented_1.jpg")).to_rgb8();
    assert_eq!(upright.dimensions(), (160, 96));
    let corner = image::imageops::crop_imm(&upright, 0, 0, 80, 48).to_image();
    for u in &uris {
        let img = s.output(&format!("{u}/full/full/0/color.png")).to_rgb8();
        assert_eq!(img.dimensions(), (160, 96), "{u}");
        let d = mean_abs_diff(&upright, &img);
        assert!(d < 3.0, "{u}: differs from the upright photo by {d}");
        // Regions are in upright coordinates.
        let c = s
            .output(&format!("{u}/0,0,80,48/full/0/color.png"))
            .to_rgb8();
        assert!(mean_abs_diff(&corner, &c) < 3.0, "{u} region");
    }
}

#[test]
fn rotation_minus_one_keeps_the_stored_pixels_and_the_tag() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"o": {"size": "full", "format": "", "rotation": "-1"},
            "half": {"size": "pct:50", "rotation": "-1", "format": "jpg"},
            "png": {"rotation": "-1", "format": "png"}}"#,
        &[("six.jpg", fixture("oriented_6.jpg"))],
    );
    let out = s.run(&["-uri", "six.jpg"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let stored = decode(fixture("oriented_6.jpg"));
    assert_eq!(stored.dimensions(), (96, 160));
    assert_eq!(
        r["six.jpg"]["dimensions"]["o"],
        serde_json::json!([96, 160])
    );
    assert_eq!(
        r["six.jpg"]["dimensions"]["half"],
        serde_json::json!([48, 80])
    );
    // `o` is the stored image re-muxed (its compressed data untouched); the re-encoded half-size JPEG carries
    // Orientation 6 so viewers still show it upright.
    let o = std::fs::read(s.path("out/six.jpg/full/full/-1/color.jpg")).unwrap();
    let source = std::fs::read(fixture("oriented_6.jpg")).unwrap();
    assert_eq!(jpeg_image_data(&o), jpeg_image_data(&source));
    let half = s.path("out/six.jpg/full/pct:50/-1/color.jpg");
    assert_eq!(decode(&half).dimensions(), (48, 80));
    assert_eq!(decode_oriented(&half).dimensions(), (80, 48));
    let png = s.output("six.jpg/full/full/-1/color.png").to_rgb8();
    assert!(mean_abs_diff(&stored.to_rgb8(), &png) < 2.0);
}

#[test]
fn dither_is_black_and_white() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"dc": {"size": "!300,300", "quality": "dither", "format": "jpg"},
            "dp": {"size": "!300,300", "quality": "dither", "format": "png"}}"#,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", "p.jpg"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert_eq!(r["p.jpg"]["uris"]["dc"], "p.jpg/full/!300,300/0/dither.jpg");
    let png = s.output("p.jpg/full/!300,300/0/dither.png").to_luma8();
    assert!(png.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
    let white = png.pixels().filter(|p| p.0[0] == 255).count();
    assert!(
        white > 1000 && white < png.len() - 1000,
        "a halftone, not a flat image"
    );
    // JPEG blurs the dots a little, but the picture stays black and white.
    let jpg = s.output("p.jpg/full/!300,300/0/dither.jpg");
    assert_eq!(jpg.color().channel_count(), 1);
    let jpg = jpg.to_luma8();
    let extreme = jpg.pixels().filter(|p| p.0[0] < 64 || p.0[0] > 192).count();
    assert!(extreme as f64 > 0.85 * jpg.len() as f64);
}

#[test]
fn crisp_sharpens_and_is_named_in_the_path() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"plain": {"size": "200,", "format": "png"}, "crisp": {"size": "200,", "quality": "crisp", "format": "png"},
            "strong": {"size": "200,", "quality": "crisp:3.0,2.0,0.0", "format": "png"}}"#,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", "p.jpg"]);
    assert_exit(&out, 0);
    let plain = s.output("p.jpg/full/200,/0/color.png").to_luma8();
    let crisp = s.output("p.jpg/full/200,/0/crisp.png").to_luma8();
    let strong = s.output("p.jpg/full/200,/0/crisp:3,2,0.png").to_luma8();
    // Sharpening raises local contrast: the sum of neighbour differences grows.
    let energy = |i: &image::GrayImage| -> u64 {
        i.enumerate_pixels()
            .filter(|(x, _, _)| *x + 1 < i.width())
            .map(|(x, y, p)| p.0[0].abs_diff(i.get_pixel(x + 1, y).0[0]) as u64)
            .sum()
    };
    assert!(energy(&crisp) > energy(&plain));
    assert!(energy(&strong) > energy(&crisp));
}

#[test]
fn disabled_and_missing_extensions_are_refused_before_work() {
    let config = FULL_CONFIG.replace(
        r#""append""#,
        r#""disable": {"quality": ["crisp"], "format": ["webp"]}, "append""#,
    );
    for (instructions, word) in [
        (r#"{"c": {"quality": "crisp"}}"#, "crisp"),
        (r#"{"w": {"format": "webp"}}"#, "webp"),
    ] {
        let s = Setup::new(
            &config,
            instructions,
            &[("p.jpg", fixture("landscape.jpg"))],
        );
        let out = s.run(&["-uri", "p.jpg"]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(word));
    }
}

#[test]
fn smart_crop_finds_the_subject() {
    // subject.jpg: 600x300, flat gray, the subject in x 416..=575, y 64..=223.
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"s": {"size": "full", "region": "-1,-1,300,300", "format": "png"},
            "small": {"size": "full", "region": "-1,-1,100,100", "format": "png"},
            "wide": {"size": "full", "region": "-1,-1,200,50", "format": "png"}}"#,
        &[("subject.jpg", fixture("subject.jpg"))],
    );
    let out = s.run(&["-uri", "subject.jpg"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert_eq!(
        r["subject.jpg"]["uris"]["s"],
        "subject.jpg/-1,-1,300,300/full/0/color.png"
    );
    assert_eq!(
        r["subject.jpg"]["dimensions"]["small"],
        serde_json::json!([100, 100])
    );
    assert_eq!(
        r["subject.jpg"]["dimensions"]["wide"],
        serde_json::json!([200, 50])
    );
    let src = decode(fixture("subject.jpg")).to_rgb8();
    let crop = s
        .output("subject.jpg/-1,-1,300,300/full/0/color.png")
        .to_rgb8();
    assert_eq!(crop.dimensions(), (300, 300));
    // Where in the source is the crop? The best-matching offset must include the whole subject.
    let best = (0..=300u32)
        .min_by(|&a, &b| {
            let d = |x| {
                mean_abs_diff(
                    &image::imageops::crop_imm(&src, x, 0, 300, 300).to_image(),
                    &crop,
                )
            };
            d(a).partial_cmp(&d(b)).unwrap()
        })
        .unwrap();
    assert!(
        (276..=300).contains(&best),
        "crop at x={best} cuts the subject"
    );
    // The 100x100 crop is the same window scaled down, not a 100x100 patch at full resolution.
    let small = s
        .output("subject.jpg/-1,-1,100,100/full/0/color.png")
        .to_rgb8();
    let d = mean_abs_diff(&small, &crop);
    assert!(d < 6.0, "{d}");
}

#[test]
fn empty_format_keeps_the_source_format() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"o": {"format": ""}, "t": {"size": "50,", "format": ""}}"#,
        &[
            ("a.png", fixture("rgba.png")),
            ("b.jpg", fixture("landscape.jpg")),
        ],
    );
    let out = s.run(&["-uri", "a.png", "-uri", "b.jpg"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert_eq!(r["a.png"]["uris"]["t"], "a.png/full/50,/0/color.png");
    assert_eq!(r["b.jpg"]["uris"]["t"], "b.jpg/full/50,/0/color.jpg");
    // Transparency survives in the png.
    assert!(s.output("a.png/full/50,/0/color.png").color().has_alpha());
}

#[test]
fn services_are_computed_once_and_reported_as_go_iiif_does() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}}"#,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", "p.jpg"]);
    assert_exit(&out, 0);
    let r: Value = stdout_json(&out)["p.jpg"].clone();
    // The fingerprint is the sha1 of the source bytes, in lowercase hex (idsecret's derived secrets hang on it).
    let bytes = std::fs::read(fixture("landscape.jpg")).unwrap();
    let sha = crate::common::sha1_hex(&bytes);
    assert_eq!(sha.len(), 40);
    assert_eq!(r["origin_fingerprint"], sha.as_str());
    assert_eq!(r["origin"], "p.jpg");
    assert_eq!(r["origin_uri"], "p.jpg");
    let palette = r["palette"].as_array().unwrap();
    assert!(!palette.is_empty() && palette.len() <= 5);
    for sw in palette {
        assert!(sw["hex"].as_str().unwrap().starts_with('#'));
        assert_eq!(sw["reference"], "vibrant");
        // Named after the nearest crayola colour; css4's nearest is listed too.
        assert_eq!(sw["name"], sw["closest"][0]["name"]);
        assert_eq!(sw["closest"][1]["reference"], "css4");
    }
    // blurhash: 8x8 components (go-iiif's default) is 6 + 2*63 = 132 characters.
    assert_eq!(r["blurhash"].as_str().unwrap().len(), 6 + 2 * 63);
    let again = stdout_json(&s.run(&["-uri", "p.jpg"]))["p.jpg"].clone();
    assert_eq!(again, r, "deterministic");
}
