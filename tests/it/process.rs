//! The core: go-iiif CLI and files, every IIIF parameter form, derivatives on disk, the report, errors.

use crate::common::*;
use image::GenericImageView;
use serde_json::Value;

fn dims(report: &Value, uri: &str, label: &str) -> (u32, u32) {
    let d = &report[uri]["dimensions"][label];
    (d[0].as_u64().unwrap() as u32, d[1].as_u64().unwrap() as u32)
}

#[test]
fn readme_example_runs_the_sfo_set() {
    let out_dir = tempdir();
    let config = std::fs::read_to_string(root().join("config.example.json"))
        .unwrap()
        .replace(
            "\"path\": \"examples\"",
            &format!("\"path\": {:?}", root().join("examples")),
        )
        .replace(
            "\"path\": \"out\"",
            &format!("\"path\": {:?}", out_dir.path()),
        );
    let cfg = out_dir.path().join("config.json");
    std::fs::write(&cfg, config).unwrap();
    let out = run(&[
        "-config",
        cfg.to_str().unwrap(),
        "-instructions",
        "instructions.example.json",
        "-uri",
        "source/IMG_0084.JPG",
    ]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let uri = "source/IMG_0084.JPG";
    let src = example(uri);
    let (w, h) = decode(&src).dimensions();
    assert_eq!(dims(&r, uri, "o"), (w, h));
    assert_eq!(dims(&r, uri, "s"), (320, 320));
    assert_eq!(dims(&r, uri, "ds"), (320, 320));
    assert_eq!(
        r[uri]["uris"]["k"],
        "source/IMG_0084.JPG/full/!2048,1536/0/color.jpg"
    );
    assert_eq!(
        r[uri]["uris"]["o"],
        "source/IMG_0084.JPG/full/full/-1/color.jpg"
    );
    for label in ["o", "k", "b", "c", "dc", "z", "n", "s", "ds"] {
        let rel = r[uri]["uris"][label].as_str().unwrap();
        let img = decode(out_dir.path().join(rel));
        assert_eq!(img.dimensions(), dims(&r, uri, label), "{label}");
    }
    // `o` is the stored image itself (full, full, -1, same format), re-muxed with only the rights metadata.
    let o = std::fs::read(
        out_dir
            .path()
            .join("source/IMG_0084.JPG/full/full/-1/color.jpg"),
    )
    .unwrap();
    let source = std::fs::read(&src).unwrap();
    assert_eq!(jpeg_image_data(&o), jpeg_image_data(&source));
    for key in [
        "palette",
        "blurhash",
        "imagehash",
        "origin",
        "origin_uri",
        "origin_fingerprint",
    ] {
        assert!(!r[uri][key].is_null(), "report has {key}");
    }
    assert!(r[uri]["imagehash"]["average"]
        .as_str()
        .unwrap()
        .starts_with("a:"));
    assert!(r[uri]["imagehash"]["difference"]
        .as_str()
        .unwrap()
        .starts_with("d:"));
    assert_eq!(r[uri]["palette"][0]["reference"], "vibrant");
    // Keys sorted as go-iiif prints them.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.find("\"blurhash\"").unwrap() < text.find("\"dimensions\"").unwrap());
}

#[test]
fn go_style_and_double_dash_flags_agree() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}}"#,
        &[("a.jpg", fixture("landscape.jpg"))],
    );
    let a = s.run(&["-uri", "a.jpg"]);
    assert_exit(&a, 0);
    let b = s.run(&["--uri=a.jpg", "--jpeg-quality", "85"]);
    assert_exit(&b, 0);
    assert_eq!(a.stdout, b.stdout);
    // Positional URIs count too.
    assert_exit(&s.run(&["a.jpg"]), 0);
}

#[test]
fn help_and_version() {
    let h = run(&["--help"]);
    assert_exit(&h, 0);
    let text = String::from_utf8_lossy(&h.stdout);
    for flag in [
        "--config",
        "--instructions",
        "--uri",
        "--report",
        "--report-name",
        "--api",
        "--jpeg-quality",
    ] {
        assert!(text.contains(flag), "help lists {flag}");
    }
    let v = run(&["--version"]);
    assert_exit(&v, 0);
    assert!(String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")));
    assert_exit(&run(&["-h"]), 0);
}

/// Every region, size, rotation, quality and format form on one 600x400 photograph.
#[test]
fn every_parameter_form() {
    let cases: &[(&str, &str, (u32, u32), &str)] = &[
        // label, instruction, expected dims, expected path below the uri
        (
            "r_full",
            r#"{"region": "full"}"#,
            (600, 400),
            "full/full/0/color.jpg",
        ),
        (
            "r_square",
            r#"{"region": "square"}"#,
            (400, 400),
            "square/full/0/color.jpg",
        ),
        (
            "r_px",
            r#"{"region": "100,50,200,100"}"#,
            (200, 100),
            "100,50,200,100/full/0/color.jpg",
        ),
        (
            "r_clip",
            r#"{"region": "500,300,200,200"}"#,
            (100, 100),
            "500,300,200,200/full/0/color.jpg",
        ),
        (
            "r_pct",
            r#"{"region": "pct:25,25,50,50"}"#,
            (300, 200),
            "pct:25,25,50,50/full/0/color.jpg",
        ),
        (
            "s_max",
            r#"{"size": "max"}"#,
            (600, 400),
            "full/max/0/color.jpg",
        ),
        (
            "s_w",
            r#"{"size": "150,"}"#,
            (150, 100),
            "full/150,/0/color.jpg",
        ),
        (
            "s_h",
            r#"{"size": ",100"}"#,
            (150, 100),
            "full/,100/0/color.jpg",
        ),
        (
            "s_pct",
            r#"{"size": "pct:10"}"#,
            (60, 40),
            "full/pct:10/0/color.jpg",
        ),
        (
            "s_wh",
            r#"{"size": "100,100"}"#,
            (100, 100),
            "full/100,100/0/color.jpg",
        ),
        (
            "s_fit",
            r#"{"size": "!100,100"}"#,
            (100, 67),
            "full/!100,100/0/color.jpg",
        ),
        (
            "s_up",
            r#"{"size": "^900,"}"#,
            (900, 600),
            "full/^900,/0/color.jpg",
        ),
        (
            "rot90",
            r#"{"size": "60,", "rotation": "90", "format": "png"}"#,
            (40, 60),
            "full/60,/90/color.png",
        ),
        (
            "rot180m",
            r#"{"size": "60,", "rotation": "!180", "format": "png"}"#,
            (60, 40),
            "full/60,/!180/color.png",
        ),
        (
            "rot45",
            r#"{"size": "60,", "rotation": "45", "format": "png"}"#,
            (71, 71),
            "full/60,/45/color.png",
        ),
        (
            "q_gray",
            r#"{"size": "60,", "quality": "gray"}"#,
            (60, 40),
            "full/60,/0/gray.jpg",
        ),
        (
            "q_bitonal",
            r#"{"size": "60,", "quality": "bitonal", "format": "png"}"#,
            (60, 40),
            "full/60,/0/bitonal.png",
        ),
        (
            "q_color",
            r#"{"size": "60,", "quality": "color"}"#,
            (60, 40),
            "full/60,/0/color.jpg",
        ),
        (
            "f_png",
            r#"{"size": "60,", "format": "png"}"#,
            (60, 40),
            "full/60,/0/color.png",
        ),
        (
            "f_webp",
            r#"{"size": "60,", "format": "webp"}"#,
            (60, 40),
            "full/60,/0/color.webp",
        ),
        (
            "f_gif",
            r#"{"size": "60,", "format": "gif"}"#,
            (60, 40),
            "full/60,/0/color.gif",
        ),
        (
            "f_tif",
            r#"{"size": "60,", "format": "tif"}"#,
            (60, 40),
            "full/60,/0/color.tif",
        ),
    ];
    let instructions = format!(
        "{{{}}}",
        cases
            .iter()
            .map(|(l, i, _, _)| format!("{l:?}: {i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let s = Setup::new(
        FULL_CONFIG,
        &instructions,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", "p.jpg"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    for (label, _, expect, path) in cases {
        assert_eq!(dims(&r, "p.jpg", label), *expect, "{label} reported");
        assert_eq!(
            r["p.jpg"]["uris"][label],
            format!("p.jpg/{path}"),
            "{label} path"
        );
        let img = s.output(&format!("p.jpg/{path}"));
        assert_eq!(img.dimensions(), *expect, "{label} written");
    }

    let src = decode(fixture("landscape.jpg")).to_rgb8();
    // A pixel region is that part of the source.
    let crop = image::imageops::crop_imm(&src, 100, 50, 200, 100).to_image();
    let got = s.output("p.jpg/100,50,200,100/full/0/color.jpg").to_rgb8();
    assert!(mean_abs_diff(&crop, &got) < 3.0);
    // A resized derivative looks like the source scaled.
    let small = s.output("p.jpg/full/150,/0/color.jpg").to_rgb8();
    assert!(mean_abs_diff(&small, &src) < 6.0);
    // Mirror then rotate 180 is a vertical flip.
    let flipped = image::imageops::flip_vertical(&s.output("p.jpg/full/60,/0/color.png").to_rgb8());
    let m = mean_abs_diff(
        &flipped,
        &s.output("p.jpg/full/60,/!180/color.png").to_rgb8(),
    );
    assert!(m < 4.0, "{m}");
    // 90 degrees clockwise: the source's bottom-left corner becomes the top-left.
    let r90 = s.output("p.jpg/full/60,/90/color.png").to_rgb8();
    let png = s.output("p.jpg/full/60,/0/color.png").to_rgb8();
    let rotated = image::imageops::rotate90(&png);
    assert!(mean_abs_diff(&rotated, &r90) < 4.0);
    // Arbitrary angles: transparent corners in png.
    let r45 = s.output("p.jpg/full/60,/45/color.png").to_rgba8();
    assert_eq!(r45.get_pixel(0, 0).0[3], 0);
    assert_eq!(r45.get_pixel(35, 35).0[3], 255);
    // Gray and bitonal.
    let g = s.output("p.jpg/full/60,/0/gray.jpg");
    assert_eq!(g.color().channel_count(), 1);
    let b = s.output("p.jpg/full/60,/0/bitonal.png").to_luma8();
    assert!(b.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
}

#[test]
fn api_3_refuses_full_and_unmarked_upscaling() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"a": {"size": "full"}}"#,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-api", "3", "-uri", "p.jpg"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("\"a\"") && stderr(&out).contains("full"),
        "{}",
        stderr(&out)
    );

    let s = Setup::new(
        FULL_CONFIG,
        r#"{"up": {"size": "900,"}, "ok": {"size": "^900,"}, "max": {"size": "max"}}"#,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-api", "3", "-uri", "p.jpg"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["p.jpg"]["errors"]["up"].as_str().unwrap().contains("^"));
    assert_eq!(dims(&r, "p.jpg", "ok"), (900, 600));
    assert_eq!(dims(&r, "p.jpg", "max"), (600, 400));
    assert!(r["p.jpg"]["uris"]["up"].is_null());
}

#[test]
fn report_file_beside_the_derivatives() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}}"#,
        &[("d/p.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", "d/p.jpg", "-report"]);
    assert_exit(&out, 0);
    let file: Value =
        serde_json::from_slice(&std::fs::read(s.path("out/d/p.jpg/process.json")).unwrap())
            .unwrap();
    assert_eq!(file, stdout_json(&out));
    assert_exit(
        &s.run(&["-uri", "d/p.jpg", "-report", "-report-name", "r.json"]),
        0,
    );
    assert!(s.path("out/d/p.jpg/r.json").is_file());
}

#[test]
fn settings_errors_exit_2_naming_the_problem() {
    let files = [("p.jpg", fixture("landscape.jpg"))];
    let cases: &[(&str, &str, &[&str])] = &[
        (
            FULL_CONFIG,
            r#"{"thumb": {"size": "!abc"}}"#,
            &["thumb", "size", "!abc"],
        ),
        (
            FULL_CONFIG,
            r#"{"thumb": {"sise": "full"}}"#,
            &["thumb", "sise"],
        ),
        (
            FULL_CONFIG,
            r#"{"t": {}, "t": {}}"#,
            &["duplicate", "\"t\""],
        ),
        (
            FULL_CONFIG,
            "{\n  \"t\": {\"size\": }\n}",
            &["instructions", "line 2"],
        ),
        (
            "{\n \"images\": ,\n}",
            r#"{"t": {}}"#,
            &["config", "line 2"],
        ),
        (
            r#"{"images": {"source": {"name": "Memory", "path": "b"}}, "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
            r#"{"t": {}}"#,
            &["images.source", "Memory", "not supported"],
        ),
        (
            r#"{"images": {"source": {"name": "Disk", "path": "src"}}, "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
            r#"{"d": {"quality": "dither"}}"#,
            &["\"d\"", "dither", "features.append.quality.dither"],
        ),
        (
            FULL_CONFIG,
            r#"{"t": {"format": "jp2"}}"#,
            &["\"t\"", "jp2"],
        ),
    ];
    for (config, instructions, words) in cases {
        let s = Setup::new(config, instructions, &files);
        let out = s.run(&["-uri", "p.jpg"]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        for w in *words {
            assert!(err.contains(w), "{err:?} should name {w:?}");
        }
        assert!(out.stdout.is_empty());
        assert!(!s.path("out").exists(), "nothing processed");
    }
    // Usage errors.
    assert_exit(&run(&["-config", "x.json"]), 2);
    assert_exit(
        &run(&[
            "-config",
            "x",
            "-instructions",
            "y",
            "-jpeg-quality",
            "0",
            "a",
        ]),
        2,
    );
}

#[test]
fn one_bad_source_does_not_stop_the_others() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}}"#,
        &[("good.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", "missing.jpg", "-uri", "good.jpg"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["missing.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("not found"));
    assert_eq!(dims(&r, "good.jpg", "n"), (64, 43));
    assert!(stderr(&out).contains("missing.jpg"));
}

#[test]
fn jpeg_quality_changes_the_encoding() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"k": {"size": "!300,300"}}"#,
        &[("p.jpg", fixture("landscape.jpg"))],
    );
    assert_exit(&s.run(&["-uri", "p.jpg", "-jpeg-quality", "30"]), 0);
    let low = std::fs::metadata(s.path("out/p.jpg/full/!300,300/0/color.jpg"))
        .unwrap()
        .len();
    assert_exit(&s.run(&["-uri", "p.jpg", "-jpeg-quality", "95"]), 0);
    let high = std::fs::metadata(s.path("out/p.jpg/full/!300,300/0/color.jpg"))
        .unwrap()
        .len();
    assert!(high > low * 2, "{low} vs {high}");
}

#[test]
fn reduced_decodes_match_full_decodes() {
    // Alone, the small sizes let the decoder work at half or quarter scale; with a full-size derivative in the
    // same run the frame is decoded at full size. Both must give the same pictures.
    let small = r#"{"b": {"size": "!250,250"}, "c": {"region": "100,50,400,300", "size": "100,"},
                    "s": {"region": "-1,-1,64,64"}, "r": {"size": "!120,120", "rotation": "90"}}"#;
    let both = r#"{"b": {"size": "!250,250"}, "c": {"region": "100,50,400,300", "size": "100,"},
                   "s": {"region": "-1,-1,64,64"}, "r": {"size": "!120,120", "rotation": "90"},
                   "f": {"size": "max", "format": "png"}}"#;
    let files = [
        ("l.jpg", fixture("landscape.jpg")),
        ("o.jpg", fixture("oriented_6.jpg")),
    ];
    let a = Setup::new(FULL_CONFIG, small, &files);
    let b = Setup::new(FULL_CONFIG, both, &files);
    for uri in ["l.jpg", "o.jpg"] {
        let ra = a.run(&["-uri", uri]);
        let rb = b.run(&["-uri", uri]);
        assert_exit(&ra, 0);
        assert_exit(&rb, 0);
        let (ja, jb) = (stdout_json(&ra), stdout_json(&rb));
        for label in ["b", "c", "s", "r"] {
            assert_eq!(
                ja[uri]["dimensions"][label], jb[uri]["dimensions"][label],
                "{uri} {label}"
            );
            let path = ja[uri]["uris"][label].as_str().unwrap();
            let (pa, pb) = (a.output(path).to_rgb8(), b.output(path).to_rgb8());
            assert_eq!(pa.dimensions(), pb.dimensions(), "{uri} {label}");
            let d = mean_abs_diff(&pa, &pb);
            assert!(d < 4.0, "{uri} {label}: mean difference {d}");
        }
    }
}
