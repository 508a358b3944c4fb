//! Colour management: sources with real ICC profiles (Adobe RGB, ProPhoto 16-bit, a gray profile, CMYK FOGRA39
//! Adobe-inverted, a broken profile) against the colour-managed truths made by LittleCMS
//! (`tests/fixtures/colour/`, see the README there), in every output format, by default and with `-colour keep`.

use crate::common::{self, Setup};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use std::path::Path;

const FORMATS: [&str; 5] = ["jpg", "png", "webp", "gif", "tif"];

const CONFIG: &str = r#"{
  "images": {"source": {"name": "Disk", "path": "src"}},
  "derivatives": {"cache": {"name": "Disk", "path": "out"}}
}"#;

/// One full-size derivative per format, labelled by the format.
fn every_format() -> String {
    let entries: Vec<String> = FORMATS
        .iter()
        .map(|f| format!(r#""{f}": {{"size": "full", "format": "{f}"}}"#))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

fn colour_fixture(name: &str) -> std::path::PathBuf {
    common::fixture(&format!("colour/{name}"))
}

fn truth(source: &str) -> RgbImage {
    common::decode(colour_fixture(&format!("truth/{source}.png"))).into_rgb8()
}

/// The derivative of `source` in `format`, its pixels read as sRGB (any embedded profile ignored).
fn output(setup: &Setup, source: &str, format: &str) -> DynamicImage {
    setup.output(&format!("{source}/full/full/0/color.{format}"))
}

/// The ICC profile embedded in an image file, as the `image` crate's decoders read it (TIFF's read here: its
/// decoder skips the tag when typed UNDEFINED, as the TIFF/ICC spec and most writers have it).
fn embedded_icc(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return tiff_icc(&bytes);
    }
    ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .unwrap()
        .into_decoder()
        .unwrap()
        .icc_profile()
        .unwrap()
}

/// Tag 34675 of the first IFD of a classic TIFF.
fn tiff_icc(b: &[u8]) -> Option<Vec<u8>> {
    let le = b[0] == b'I';
    let u16_at = |i: usize| {
        let v = [b[i], b[i + 1]];
        usize::from(if le {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    };
    let u32_at = |i: usize| {
        let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        (if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }) as usize
    };
    let ifd = u32_at(4);
    (0..u16_at(ifd)).find_map(|i| {
        let e = ifd + 2 + 12 * i;
        (u16_at(e) == 34675).then(|| {
            let (len, at) = (u32_at(e + 4), u32_at(e + 8));
            b[at..at + len].to_vec()
        })
    })
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let n = a.as_raw().len() as f64;
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64.powi(2) / (se / n)).log10()
}

/// Mean signed difference per channel, `a - b`: a colour cast (an unconverted wide-gamut source reads washed
/// out, CMYK without its profile too dark) shows here even where palette quantisation dominates the PSNR.
fn bias(a: &RgbImage, b: &RgbImage) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for (p, q) in a.pixels().zip(b.pixels()) {
        for (s, (x, y)) in sum.iter_mut().zip(p.0.iter().zip(q.0)) {
            *s += f64::from(*x) - f64::from(y);
        }
    }
    let n = f64::from(a.width() * a.height());
    sum.map(|s| s / n)
}

/// At least 40 dB from the truth. GIF is a 256-colour palette: a photo quantised scores 34-37 dB against any
/// truth, so a GIF passes on 30 dB and no channel off by more than 1.5 levels on average (an unconverted Adobe
/// RGB source is off by 4 to 10, CMYK without its profile by 16 to 26). A JPEG's `want` is the truth itself
/// encoded by the same run (4:2:0 chroma alone costs a saturated photo 5-6 dB at any quality).
fn assert_matches(out: &RgbImage, want: &RgbImage, format: &str, what: &str) {
    let p = psnr(out, want);
    let b = bias(out, want);
    if format == "gif" {
        assert!(
            p >= 30.0 && b.iter().all(|v| v.abs() <= 1.5),
            "{what}: {p:.1} dB, bias {b:.2?}"
        );
    } else {
        assert!(
            p >= 40.0,
            "{what}: {p:.1} dB against the truth (bias {b:.2?})"
        );
    }
}

const SOURCES: [&str; 7] = [
    "adobergb.jpg",
    "adobergb.png",
    "displayp3.jpg",
    "prophoto16.png",
    "prophoto16.tif",
    "gray.jpg",
    "cmyk_fogra39.jpg",
];

#[test]
fn every_profile_is_converted_to_srgb_in_every_format_and_left_untagged() {
    // Each truth is a source too (plain sRGB): its JPEG is what a right conversion encodes to.
    let truths: Vec<String> = SOURCES.iter().map(|s| format!("truth-{s}.png")).collect();
    let mut files: Vec<(&str, _)> = SOURCES.iter().map(|s| (*s, colour_fixture(s))).collect();
    for (s, t) in SOURCES.iter().zip(&truths) {
        files.push((t, colour_fixture(&format!("truth/{s}.png"))));
    }
    let setup = Setup::new(CONFIG, &every_format(), &files);
    // JPEG at quality 95: at 85 the pure-Rust build's codecs add 1 dB of their own to the comparison. WebP
    // lossless: its lossy default's own loss is tested with the formats.
    let mut args: Vec<&str> = vec!["-jpeg-quality", "95", "-webp-quality", "lossless"];
    for (s, _) in &files {
        args.extend(["-uri", s]);
    }
    let out = setup.run(&args);
    common::assert_exit(&out, 0);
    let report = common::stdout_json(&out);
    for source in SOURCES {
        assert!(
            report[source].get("warnings").is_none(),
            "{source}: {}",
            report[source]
        );
        let want = truth(source);
        let want_jpeg = output(&setup, &format!("truth-{source}.png"), "jpg").into_rgb8();
        for format in FORMATS {
            let what = format!("{source} as {format}");
            let got = output(&setup, source, format).into_rgb8();
            let want = if format == "jpg" { &want_jpeg } else { &want };
            assert_matches(&got, want, format, &what);
            let path = setup.path(&format!("out/{source}/full/full/0/color.{format}"));
            if format != "gif" {
                assert_eq!(
                    embedded_icc(&path),
                    None,
                    "{what}: converted output is untagged"
                );
            }
        }
    }
}

#[test]
fn keep_embeds_the_source_profile_and_leaves_the_pixels_but_gif_is_converted() {
    let sources = [
        "adobergb.jpg",
        "prophoto16.tif",
        "gray.jpg",
        "cmyk_fogra39.jpg",
    ];
    let mut files: Vec<(&str, _)> = sources.iter().map(|s| (*s, colour_fixture(s))).collect();
    files.push(("truth.png", colour_fixture("truth/cmyk_fogra39.jpg.png")));
    let setup = Setup::new(CONFIG, &every_format(), &files);
    let mut args = vec![
        "-colour",
        "keep",
        "-jpeg-quality",
        "100",
        "-webp-quality",
        "lossless",
    ];
    for (s, _) in &files {
        args.extend(["-uri", s]);
    }
    let out = setup.run(&args);
    common::assert_exit(&out, 0);
    for source in sources {
        let src_path = colour_fixture(source);
        let profile = embedded_icc(&src_path).unwrap_or_else(|| panic!("{source} has a profile"));
        let stored = common::decode(&src_path).into_rgb8();
        let want = truth(source);
        for format in FORMATS {
            let what = format!("{source} as {format} with -colour keep");
            let path = setup.path(&format!("out/{source}/full/full/0/color.{format}"));
            let got = output(&setup, source, format).into_rgb8();
            if format == "gif" || source == "cmyk_fogra39.jpg" {
                // No profile can be carried (GIF; CMYK into RGB): converted, untagged.
                let want = if format == "jpg" {
                    output(&setup, "truth.png", "jpg").into_rgb8()
                } else {
                    want.clone()
                };
                assert_matches(&got, &want, format, &what);
                if format != "gif" {
                    assert_eq!(embedded_icc(&path), None, "{what}");
                }
                continue;
            }
            assert!(
                embedded_icc(&path) == Some(profile.clone()),
                "{what}: the source's profile is embedded byte for byte"
            );
            let unconverted = psnr(&got, &stored);
            // JPEG's 4:2:0 chroma keeps it under 40 dB from anything but a JPEG: nearer the stored pixels than
            // the converted ones is what it must be.
            let floor = if format == "jpg" { 0.0 } else { 40.0 };
            assert!(
                unconverted >= floor && unconverted > psnr(&got, &want) + 3.0,
                "{what}: {unconverted:.1} dB from the stored pixels, {:.1} from the truth",
                psnr(&got, &want)
            );
        }
    }
}

#[test]
fn colour_mode_comes_from_the_config_too() {
    let config = CONFIG.replace(
        r#""derivatives": {"#,
        r#""derivatives": {"colour": "keep", "#,
    );
    let setup = Setup::new(
        &config,
        r#"{"p": {"size": "full", "format": "png"}}"#,
        &[("a.jpg", colour_fixture("adobergb.jpg"))],
    );
    common::assert_exit(&setup.run(&["-uri", "a.jpg"]), 0);
    let path = setup.path("out/a.jpg/full/full/0/color.png");
    assert_eq!(
        embedded_icc(&path),
        embedded_icc(&colour_fixture("adobergb.jpg"))
    );

    let bad = CONFIG.replace(
        r#""derivatives": {"#,
        r#""derivatives": {"colour": "cmyk", "#,
    );
    let setup = Setup::new(&bad, "{}", &[]);
    let out = setup.run(&["-uri", "a.jpg"]);
    common::assert_exit(&out, 2);
    assert!(
        common::stderr(&out).contains("derivatives.colour"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn a_broken_profile_is_a_warning_and_the_pixels_are_taken_as_srgb() {
    let setup = Setup::new(
        CONFIG,
        &every_format(),
        &[("broken.jpg", colour_fixture("broken_profile.jpg"))],
    );
    let out = setup.run(&["-uri", "broken.jpg", "-webp-quality", "lossless"]);
    common::assert_exit(&out, 0);
    let report = common::stdout_json(&out);
    let entry = &report["broken.jpg"];
    let warnings = entry["warnings"].as_array().expect("a warnings list");
    assert_eq!(warnings.len(), 1, "{entry}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.contains("ICC profile") && w.contains("sRGB"), "{w}");
    assert_eq!(entry["uris"].as_object().unwrap().len(), FORMATS.len());
    let stored = common::decode(colour_fixture("broken_profile.jpg")).into_rgb8();
    for format in ["png", "webp", "tif"] {
        let got = output(&setup, "broken.jpg", format).into_rgb8();
        assert!(psnr(&got, &stored) >= 40.0, "{format}");
    }
}

#[test]
fn services_see_the_converted_colours() {
    // The same pixels, read through their Adobe RGB profile and as sRGB (the broken copy), and the truth.
    let config = CONFIG.replace(
        r#""images""#,
        r#""profile": {"services": {"enable": ["palette"]}}, "images""#,
    );
    let files = [
        ("adobe.jpg", colour_fixture("adobergb.jpg")),
        ("plain.jpg", colour_fixture("broken_profile.jpg")),
        ("truth.png", colour_fixture("truth/adobergb.jpg.png")),
    ];
    let setup = Setup::new(&config, r#"{"n": {"size": "!64,64"}}"#, &files);
    for keep in [false, true] {
        let mut args = vec![
            "-uri",
            "adobe.jpg",
            "-uri",
            "plain.jpg",
            "-uri",
            "truth.png",
        ];
        if keep {
            args.extend(["-colour", "keep"]);
        }
        let out = setup.run(&args);
        common::assert_exit(&out, 0);
        let report = common::stdout_json(&out);
        let swatches = |uri: &str| -> Vec<[f64; 3]> {
            report[uri]["palette"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let hex = s["hex"].as_str().unwrap().trim_start_matches('#');
                    let v = u32::from_str_radix(hex, 16).unwrap();
                    [(v >> 16) & 255, (v >> 8) & 255, v & 255].map(f64::from)
                })
                .collect()
        };
        // Mean distance from each swatch to the nearest swatch of the truth's palette.
        let distance = |a: &[[f64; 3]], b: &[[f64; 3]]| -> f64 {
            a.iter()
                .map(|p| {
                    b.iter()
                        .map(|q| (0..3).map(|c| (p[c] - q[c]).powi(2)).sum::<f64>().sqrt())
                        .fold(f64::INFINITY, f64::min)
                })
                .sum::<f64>()
                / a.len() as f64
        };
        let t = swatches("truth.png");
        let (converted, plain) = (
            distance(&swatches("adobe.jpg"), &t),
            distance(&swatches("plain.jpg"), &t),
        );
        assert!(
            converted < plain,
            "keep {keep}: palette {converted:.1} from the truth's, unconverted {plain:.1}"
        );
    }
}

#[test]
fn a_converted_source_is_never_copied_byte_for_byte_but_a_kept_one_is() {
    // go-iiif's `o`: full size, stored orientation, the source's own format: a byte copy of an sRGB source.
    let setup = Setup::new(
        CONFIG,
        r#"{"o": {"size": "full", "rotation": "-1", "format": ""}}"#,
        &[("a.jpg", colour_fixture("adobergb.jpg"))],
    );
    let source = std::fs::read(colour_fixture("adobergb.jpg")).unwrap();
    let path = setup.path("out/a.jpg/full/full/-1/color.jpg");
    for (args, copied) in [(&[][..], false), (&["-colour", "keep"][..], true)] {
        let mut all = vec!["-uri", "a.jpg"];
        all.extend_from_slice(args);
        common::assert_exit(&setup.run(&all), 0);
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written == source, copied, "{args:?}");
        if !copied {
            assert_eq!(embedded_icc(&path), None);
            let got = common::decode(&path).into_rgb8();
            // Converted: no colour cast against the truth (the Adobe RGB numbers read as sRGB are 8 levels off).
            let b = bias(&got, &truth("adobergb.jpg"));
            assert!(b.iter().all(|v| v.abs() <= 1.5), "{b:.2?}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}
