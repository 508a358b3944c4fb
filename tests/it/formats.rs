//! Output formats: every source colour type in every quality and format (read back by ImageMagick, not by this
//! crate's decoders), lossy and lossless WebP, the GIF quantiser, and sizes that compute to 0 px.

use crate::common::{self, Setup, FULL_CONFIG};
use image::{DynamicImage, RgbImage};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// One small photo in each colour type a source can have (see tests/fixtures/README.md).
const COLOUR_SOURCES: [&str; 8] = [
    "colour_l8.png",
    "colour_la8.png",
    "colour_rgb8.png",
    "colour_rgba8.png",
    "colour_l16.png",
    "colour_rgb16.png",
    "colour_rgba16.png",
    "colour_cmyk.jpg",
];
const QUALITIES: [&str; 6] = ["default", "color", "gray", "bitonal", "dither", "crisp"];
const FORMATS: [&str; 5] = ["jpg", "png", "webp", "gif", "tif"];
const ROTATIONS: [u32; 2] = [90, 33];

/// `identify` from ImageMagick: an independent decoder (libjpeg, libpng, libwebp, giflib's reader, libtiff).
/// `scripts/install-build-deps.sh` installs it.
fn identify() -> Command {
    let found = Command::new("identify")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "ImageMagick's `identify` is needed to read the outputs independently: run scripts/install-build-deps.sh \
         (Debian package imagemagick)"
    );
    Command::new("identify")
}

/// The canvas of a clockwise rotation by `degrees`, as IIIF defines it: the bounding box, to the nearest pixel.
fn rotated(w: u32, h: u32, degrees: u32) -> (u32, u32) {
    if degrees % 180 == 90 {
        return (h, w);
    }
    let (s, c) = (degrees as f64).to_radians().sin_cos();
    let (w, h) = (w as f64, h as f64);
    (
        (w * c.abs() + h * s.abs()).round() as u32,
        (w * s.abs() + h * c.abs()).round() as u32,
    )
}

#[test]
fn every_colour_type_in_every_quality_format_and_rotation_decodes_elsewhere() {
    let mut instructions = serde_json::Map::new();
    for q in QUALITIES {
        for f in FORMATS {
            for r in ROTATIONS {
                instructions.insert(
                    format!("{q}-{f}-{r}"),
                    serde_json::json!({"rotation": r.to_string(), "quality": q, "format": f}),
                );
            }
        }
    }
    let files: Vec<(&str, std::path::PathBuf)> = COLOUR_SOURCES
        .iter()
        .map(|n| (*n, common::fixture(n)))
        .collect();
    let s = Setup::new(
        FULL_CONFIG,
        &serde_json::Value::Object(instructions.clone()).to_string(),
        &files,
    );
    let mut args = vec!["-quiet"];
    for n in COLOUR_SOURCES {
        args.extend(["-uri", n]);
    }
    let out = s.run(&args);
    let report = common::stdout_json(&out);
    for n in COLOUR_SOURCES {
        assert!(
            report[n].get("errors").is_none(),
            "{n}: {}",
            serde_json::to_string_pretty(&report[n]["errors"]).unwrap()
        );
    }
    common::assert_exit(&out, 0);

    // Every output, read by one identify process; %[mean] makes it decode all the pixels.
    let mut paths = Vec::new();
    let mut expected = BTreeMap::new();
    for n in COLOUR_SOURCES {
        let (w, h) = (64, 48);
        for (label, _) in &instructions {
            let rel = report[n]["uris"][label]
                .as_str()
                .unwrap_or_else(|| panic!("{n} {label}: no uri"));
            let path = s.path("out").join(rel);
            let r: u32 = label.rsplit('-').next().unwrap().parse().unwrap();
            expected.insert(path.display().to_string(), rotated(w, h, r));
            paths.push(path);
        }
    }
    assert_eq!(paths.len(), 8 * 6 * 5 * 2);
    let read = identify()
        .args(["-regard-warnings", "-format", "%i\t%w\t%h\t%[mean]\n"])
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "identify failed:\n{}",
        common::stderr(&read)
    );
    let text = String::from_utf8_lossy(&read.stdout);
    let mut seen = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let dims = (f[1].parse::<u32>().unwrap(), f[2].parse::<u32>().unwrap());
        let want = expected
            .get(f[0])
            .unwrap_or_else(|| panic!("unexpected line {line}"));
        assert_eq!(dims, *want, "{}", f[0]);
        let mean: f64 = f[3].parse().unwrap();
        assert!(mean > 0.0, "{} decodes to black: {line}", f[0]);
        seen += 1;
    }
    assert_eq!(seen, paths.len(), "{text}");
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let mse = se / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

fn size_of(s: &Setup, rel: &str) -> u64 {
    std::fs::metadata(s.path("out").join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .len()
}

/// One run of the landscape photo at full size as png and webp with `args` added; the webp's size and pixels.
fn webp_run(config: &str, args: &[&str]) -> (u64, RgbImage, RgbImage) {
    let s = Setup::new(
        config,
        r#"{"w": {"format": "webp"}, "p": {"format": "png"}}"#,
        &[("a.jpg", common::fixture("landscape.jpg"))],
    );
    let mut all = vec!["-quiet", "-uri", "a.jpg"];
    all.extend(args);
    common::assert_exit(&s.run(&all), 0);
    let webp = "a.jpg/full/full/0/color.webp";
    (
        size_of(&s, webp),
        s.output(webp).to_rgb8(),
        s.output("a.jpg/full/full/0/color.png").to_rgb8(),
    )
}

#[test]
fn webp_is_lossy_at_quality_80_by_default_and_lossless_on_request() {
    let (lossy, pixels, png) = webp_run(FULL_CONFIG, &[]);
    let (lossless, exact, png_again) = webp_run(FULL_CONFIG, &["-webp-quality", "lossless"]);
    assert_eq!(png, png_again);
    assert_eq!(exact, png, "lossless WebP has the PNG's pixels");
    assert!(
        lossy * 3 < lossless,
        "lossy {lossy} bytes is not much smaller than lossless {lossless}"
    );
    let db = psnr(&pixels, &png);
    assert!(db >= 35.0, "lossy WebP is {db:.1} dB from the PNG");

    let (q50, low, _) = webp_run(FULL_CONFIG, &["-webp-quality", "50"]);
    let (q95, high, _) = webp_run(FULL_CONFIG, &["-webp-quality", "95"]);
    assert!(
        q50 < lossy && lossy < q95,
        "sizes at 50, 80, 95: {q50} {lossy} {q95}"
    );
    assert!(psnr(&low, &png) < db && db < psnr(&high, &png));

    // The config key, and the flag over it.
    let config = FULL_CONFIG.replace(
        r#""cache": {"name": "Disk", "path": "out"}"#,
        r#""cache": {"name": "Disk", "path": "out"}, "webp_quality": "lossless""#,
    );
    assert_ne!(config, FULL_CONFIG);
    assert_eq!(webp_run(&config, &[]).0, lossless);
    assert_eq!(webp_run(&config, &["-webp-quality", "80"]).0, lossy);
}

#[test]
fn a_bad_webp_quality_is_a_usage_or_config_error() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"w": {"format": "webp"}}"#,
        &[("a.jpg", common::fixture("landscape.jpg"))],
    );
    for q in ["0", "101", "best"] {
        let out = s.run(&["-uri", "a.jpg", "-webp-quality", q]);
        common::assert_exit(&out, 2);
        assert!(common::stderr(&out).contains(q), "{}", common::stderr(&out));
    }
    let bad = Setup::new(
        &FULL_CONFIG.replace(
            r#""cache": {"name": "Disk", "path": "out"}"#,
            r#""cache": {"name": "Disk", "path": "out"}, "webp_quality": 0"#,
        ),
        r#"{"w": {"format": "webp"}}"#,
        &[("a.jpg", common::fixture("landscape.jpg"))],
    );
    let out = bad.run(&["-uri", "a.jpg"]);
    common::assert_exit(&out, 2);
    assert!(
        common::stderr(&out).contains("derivatives.webp_quality"),
        "{}",
        common::stderr(&out)
    );
}

/// Runs `cmd` to the end and returns its exit status and the CPU seconds (user + system, all threads) it used,
/// which unlike wall time hardly depends on what else the machine is doing.
// The child is reaped by wait4, which also gives its rusage; std's wait would not.
#[allow(clippy::zombie_processes)]
fn cpu_seconds(mut cmd: Command) -> (i32, f64) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill; `pid` is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        libc::WEXITSTATUS(status),
        secs(usage.ru_utime) + secs(usage.ru_stime),
    )
}

#[test]
fn a_large_gif_costs_about_what_the_same_png_costs() {
    // 4.7 MP from the example photograph: NeuQuant over every pixel (the previous quantiser) spent about 6 s of CPU
    // on it; Wu's quantiser with dithering spends well under one.
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"g": {"size": "^2744,", "format": "gif"}, "p": {"size": "^2744,", "format": "png"},
            "dg": {"size": "800,", "quality": "dither", "format": "gif"},
            "dp": {"size": "800,", "quality": "dither", "format": "png"}}"#,
        &[("a.jpg", common::example("source/IMG_0084.JPG"))],
    );
    let one = |label: &str| {
        let only = s.path(&format!("only-{label}.json"));
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.path("instructions.json")).unwrap())
                .unwrap();
        std::fs::write(
            &only,
            serde_json::json!({ label: all[label].clone() }).to_string(),
        )
        .unwrap();
        let mut cmd = Command::new(common::bin());
        cmd.arg("-config")
            .arg(s.path("config.json"))
            .arg("-instructions")
            .arg(&only)
            .args(["-quiet", "-uri", "a.jpg"])
            .current_dir(s.path(""));
        let (code, cpu) = cpu_seconds(cmd);
        assert_eq!(code, 0, "{label}");
        cpu
    };
    let png = one("p");
    let gif = one("g");
    assert!(
        gif <= 3.0 * png + 1.0,
        "GIF took {gif:.2} s of CPU, the same PNG {png:.2} s"
    );

    let g = s.output("a.jpg/full/^2744,/0/color.gif").to_rgb8();
    let p = s.output("a.jpg/full/^2744,/0/color.png").to_rgb8();
    assert_eq!(g.dimensions(), (2744, 1715));
    let db = psnr(&g, &p);
    assert!(db >= 30.0, "GIF is {db:.1} dB from the PNG");

    // The dither quality is black and white: GIF keeps exactly those pixels.
    common::assert_exit(&s.run(&["-quiet", "-uri", "a.jpg"]), 0);
    let dg = s.output("a.jpg/full/800,/0/dither.gif").to_luma8();
    let dp = s.output("a.jpg/full/800,/0/dither.png").to_luma8();
    assert!(dp.pixels().all(|v| v.0[0] == 0 || v.0[0] == 255));
    assert_eq!(dg, dp);
}

#[test]
fn a_size_of_0_px_is_that_derivatives_error_under_both_apis() {
    // A 600x100 strip scaled to 1 px wide is 1/6 px high.
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"zero": {"region": "0,0,600,100", "size": "1,"},
            "zero-pct": {"size": "pct:0.1"},
            "ok": {"region": "0,0,600,100", "size": "6,"}}"#,
        &[("a.jpg", common::fixture("landscape.jpg"))],
    );
    for api in ["2", "3"] {
        let out = s.run(&["-quiet", "-api", api, "-uri", "a.jpg"]);
        common::assert_exit(&out, 1);
        let report = common::stdout_json(&out);
        let errors = &report["a.jpg"]["errors"];
        for label in ["zero", "zero-pct"] {
            let e = errors[label].as_str().unwrap_or_default();
            assert!(e.contains("0 px"), "-api {api} {label}: {errors}");
        }
        assert!(errors.get("ok").is_none(), "{errors}");
        assert_eq!(
            report["a.jpg"]["dimensions"]["ok"],
            serde_json::json!([6, 1])
        );
        assert!(!s.path("out/a.jpg/0,0,600,100/1,/0/color.jpg").exists());
    }
}

/// Gray with alpha: TIFF as RGBA with equal channels (readable everywhere), JPEG flattened to plain gray.
#[test]
fn gray_with_alpha_is_written_in_every_format() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"t": {"format": "tif"}, "j": {"format": "jpg"}, "p": {"format": "png"}}"#,
        &[("la.png", common::fixture("colour_la8.png"))],
    );
    common::assert_exit(&s.run(&["-quiet", "-uri", "la.png"]), 0);
    let t = s.output("la.png/full/full/0/color.tif").to_rgba8();
    let p = s.output("la.png/full/full/0/color.png").to_luma_alpha8();
    assert_eq!(t.dimensions(), p.dimensions());
    for (a, b) in t.pixels().zip(p.pixels()) {
        assert_eq!(a.0, [b.0[0], b.0[0], b.0[0], b.0[1]]);
    }
    let j = s.output("la.png/full/full/0/color.jpg");
    assert!(matches!(j, DynamicImage::ImageLuma8(_)), "{:?}", j.color());
    // Transparent corners are white, as on a page.
    assert!(j.to_luma8().get_pixel(0, 0).0[0] > 240);
}
