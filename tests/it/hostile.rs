//! Bad input gets a clear error naming the source, and nothing else is lost; unusual but valid images work.

use crate::common::*;
use image::GenericImageView;

const ONE: &str = r#"{"n": {"size": "!64,64"}}"#;

/// Runs `bad` beside a good photo: the bad one fails with `words` in its error (stderr and report), the good one
/// is still made, and the exit status is 1.
fn fails_alone(name: &str, file: std::path::PathBuf, words: &[&str]) {
    let s = Setup::new(
        FULL_CONFIG,
        ONE,
        &[(name, file), ("good.jpg", fixture("landscape.jpg"))],
    );
    let out = s.run(&["-uri", name, "-uri", "good.jpg"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    let msg = r[name]["errors"]["n"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no error in {r}"));
    let err = stderr(&out);
    assert!(err.contains(name), "stderr names {name}: {err}");
    for w in words {
        assert!(msg.contains(w), "{name}: {msg:?} should say {w:?}");
    }
    assert!(r[name]["uris"].as_object().is_none_or(|m| m.is_empty()));
    assert_eq!(
        r["good.jpg"]["dimensions"]["n"],
        serde_json::json!([64, 43])
    );
    assert!(s.path("out/good.jpg/full/!64,64/0/color.jpg").is_file());
}

#[test]
fn zero_byte_file() {
    fails_alone("empty.jpg", hostile("empty.jpg"), &["empty"]);
}

#[test]
fn truncated_jpeg() {
    fails_alone("truncated.jpg", hostile("truncated.jpg"), &["truncated"]);
}

#[test]
fn truncated_png() {
    fails_alone("truncated.png", hostile("truncated.png"), &["png"]);
}

#[test]
fn random_bytes_named_jpg() {
    fails_alone(
        "random.jpg",
        hostile("random.jpg"),
        &["not a supported image"],
    );
}

#[test]
fn text_file() {
    fails_alone("text.jpg", hostile("text.jpg"), &["not a supported image"]);
}

#[test]
fn header_bombs_are_refused_before_allocating() {
    fails_alone("huge.png", hostile("huge.png"), &["100000x100000", "limit"]);
    fails_alone("huge.jpg", hostile("huge.jpg"), &["65000x65000", "limit"]);
}

#[test]
fn pixel_limit_is_configurable() {
    let s = Setup::new(FULL_CONFIG, ONE, &[("p.jpg", fixture("landscape.jpg"))]);
    let out = s.run(&["-uri", "p.jpg", "-max-pixels", "100000"]);
    assert_exit(&out, 1);
    assert!(stdout_json(&out)["p.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("limit of 100000"));
    let config = FULL_CONFIG.replace(r#""path": "src"}"#, r#""path": "src", "max_pixels": 1000}"#);
    let s = Setup::new(&config, ONE, &[("p.jpg", fixture("landscape.jpg"))]);
    assert_exit(&s.run(&["-uri", "p.jpg"]), 1);
}

#[test]
fn missing_source() {
    let s = Setup::new(FULL_CONFIG, ONE, &[("good.jpg", fixture("landscape.jpg"))]);
    let out = s.run(&["-uri", "nope/missing.jpg", "-uri", "good.jpg"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["nope/missing.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("not found"));
    assert!(r["good.jpg"]["uris"]["n"].is_string());
}

#[test]
fn unreadable_source() {
    // A link that points at itself cannot be read, even by root.
    let s = Setup::new(FULL_CONFIG, ONE, &[("good.jpg", fixture("landscape.jpg"))]);
    std::os::unix::fs::symlink("loop.jpg", s.path("src/loop.jpg")).unwrap();
    let out = s.run(&["-uri", "loop.jpg", "-uri", "good.jpg"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["loop.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("cannot read source"));
    assert!(r["good.jpg"]["uris"]["n"].is_string());
}

#[test]
fn output_directory_not_writable() {
    // A file where a directory must go: creating it fails, whoever runs the test.
    let s = Setup::new(
        FULL_CONFIG,
        ONE,
        &[
            ("a.jpg", fixture("landscape.jpg")),
            ("b.jpg", fixture("portrait.jpg")),
        ],
    );
    std::fs::create_dir_all(s.path("out")).unwrap();
    std::fs::write(s.path("out/a.jpg"), b"in the way").unwrap();
    let out = s.run(&["-uri", "a.jpg", "-uri", "b.jpg"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["a.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("cannot write derivative"));
    assert!(s.path("out/b.jpg/full/!64,64/0/color.jpg").is_file());
}

#[test]
fn escaping_the_source_root_is_refused_before_work() {
    let s = Setup::new(FULL_CONFIG, ONE, &[("good.jpg", fixture("landscape.jpg"))]);
    let outside = fixture("landscape.jpg");
    for bad in [
        "../good.jpg",
        "a/../../good.jpg",
        "%2e%2e/good.jpg",
        "%2E%2e/x.jpg",
        outside.to_str().unwrap(),
    ] {
        let out = s.run(&["-uri", "good.jpg", "-uri", bad]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(bad), "{bad}: {}", stderr(&out));
        assert!(!s.path("out").exists(), "nothing processed for {bad}");
    }
    // An absolute path inside the root is fine.
    let inside = s.path("src/good.jpg");
    let out = s.run(&["-uri", inside.to_str().unwrap()]);
    assert_exit(&out, 0);
    // A manifest line is checked the same way, but it is that source's error: the others run.
    std::fs::write(s.path("m.txt"), "good.jpg\n../x.jpg\n").unwrap();
    let out = s.run(&["-manifest", s.path("m.txt").to_str().unwrap()]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["good.jpg"]["errors"].is_null(), "{r}");
    assert!(r["../x.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("below the source root"));
}

#[test]
fn odd_names_in_a_directory_are_their_own_errors() {
    let s = Setup::new(
        FULL_CONFIG,
        ONE,
        &[
            ("d/good.jpg", fixture("landscape.jpg")),
            ("d/%2e%2e", fixture("landscape.jpg")),
            ("d/back\\slash.jpg", fixture("landscape.jpg")),
        ],
    );
    let out = s.run(&["-uri", "d"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["d/good.jpg"]["uris"]["n"].is_string(), "{r}");
    for odd in ["d/%2e%2e", "d/back\\slash.jpg"] {
        assert!(r[odd]["errors"]["n"].is_string(), "{odd}: {r}");
        assert!(r[odd]["uris"].as_object().unwrap().is_empty(), "{odd}: {r}");
    }
    // One line on stderr per failed source, not one per label.
    let lines = stderr(&out);
    let about = |name: &str| lines.lines().filter(|l| l.contains(name)).count();
    assert_eq!(about("d/%2e%2e"), 1, "{lines}");
}

#[test]
fn symlinks_do_not_lead_out_of_the_source_root() {
    let s = Setup::new(
        FULL_CONFIG,
        ONE,
        &[("d/good.jpg", fixture("landscape.jpg"))],
    );
    std::os::unix::fs::symlink(fixture("portrait.jpg"), s.path("src/d/outside.jpg")).unwrap();
    let out = s.run(&["-uri", "d/outside.jpg"]);
    assert_exit(&out, 1);
    assert!(stdout_json(&out)["d/outside.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .contains("escapes"));
    // Walking the directory leaves the link out.
    let out = s.run(&["-uri", "d"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert!(r["d/good.jpg"].is_object());
    assert!(r["d/outside.jpg"].is_null());
}

#[test]
fn unusual_but_valid_images_work() {
    let files = [
        ("gray.jpg", fixture("gray.jpg"), 1usize),
        ("rgba.png", fixture("rgba.png"), 4),
        ("rgb16.png", fixture("rgb16.png"), 3),
        ("cmyk.jpg", fixture("cmyk.jpg"), 3),
        ("progressive.jpg", fixture("progressive.jpg"), 3),
        ("one.png", hostile("one.png"), 3),
        ("panorama.jpg", hostile("panorama.jpg"), 3),
        ("rgb.png", fixture("rgb.png"), 3),
    ];
    let copies: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p, _)| (*n, p.clone())).collect();
    let mut gray_alpha = image::GrayAlphaImage::new(40, 30);
    gray_alpha
        .pixels_mut()
        .enumerate()
        .for_each(|(i, p)| p.0 = [(i % 256) as u8, 128]);
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64", "format": "png"}, "o": {"format": ""}, "s": {"region": "-1,-1,32,32", "format": "jpg"}}"#,
        &copies,
    );
    gray_alpha.save(s.path("src/graya.png")).unwrap();
    let mut args = vec!["-uri", "graya.png"];
    for (n, _, _) in &files {
        args.extend(["-uri", n]);
    }
    let out = s.run(&args);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    for (n, path, channels) in &files {
        let (w, h) = decode(path).dimensions();
        let n_out = s.output(&format!("{n}/full/!64,64/0/color.png"));
        let n_dims = n_out.dimensions();
        assert!(
            n_dims.0 <= 64
                && n_dims.1 <= 64
                && (n_dims.0 == 64 || n_dims.1 == 64 || (w, h) == (1, 1)),
            "{n}: {n_dims:?}"
        );
        // Gray stays gray and alpha stays alpha; everything else (CMYK included) comes out as RGB.
        assert_eq!(
            usize::from(n_out.color().channel_count()),
            *channels,
            "{n}: {:?}",
            n_out.color()
        );
        assert_eq!(r[*n]["dimensions"]["s"], serde_json::json!([32, 32]), "{n}");
    }
    // CMYK comes out in the right colours (mean around (148, 92, 83), not inverted).
    let cmyk = s.output("cmyk.jpg/full/!64,64/0/color.png").to_rgb8();
    let mean =
        |c: usize| cmyk.pixels().map(|p| p.0[c] as f64).sum::<f64>() / (cmyk.len() / 3) as f64;
    assert!(
        mean(0) > mean(2) + 30.0,
        "CMYK decoded with inverted colours"
    );
    assert!(s
        .output("rgba.png/full/!64,64/0/color.png")
        .color()
        .has_alpha());
    assert_eq!(
        r["panorama.jpg"]["dimensions"]["n"],
        serde_json::json!([64, 1])
    );
}

#[test]
fn damaged_jpeg_fails_unless_accepted() {
    // A real photo with 16 bytes cut out of its scan data: libjpeg-turbo and zune-jpeg both find it corrupt.
    fails_alone(
        "damaged.jpg",
        hostile("damaged.jpg"),
        &["damaged jpeg", "-accept-damaged"],
    );
    let s = Setup::new(FULL_CONFIG, ONE, &[("damaged.jpg", hostile("damaged.jpg"))]);
    let out = s.run(&["-uri", "damaged.jpg", "-accept-damaged"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout_json(&out)["damaged.jpg"]["dimensions"]["n"],
        serde_json::json!([64, 43])
    );
    assert!(s.path("out/damaged.jpg/full/!64,64/0/color.jpg").is_file());
}

/// A PNG whose iCCP chunk is a small deflate stream of `icc_len` zero bytes (correct CRCs).
fn png_with_icc_bomb(icc_len: usize) -> Vec<u8> {
    let png = std::fs::read(fixture("rgb.png")).unwrap();
    let mut data = b"bomb\0\0".to_vec();
    data.extend(fdeflate::compress_to_vec(&vec![0u8; icc_len]));
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"iCCP");
    chunk.extend_from_slice(&data);
    let mut crc = !0u32;
    for &b in &chunk[4..] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    chunk.extend_from_slice(&(!crc).to_be_bytes());
    // After the signature (8 bytes) and IHDR (25 bytes).
    [&png[..33], &chunk[..], &png[33..]].concat()
}

#[test]
fn png_icc_bomb_decodes_in_little_memory() {
    // 256 MiB of profile from 1.3 MB: the png crate alone would inflate all of it.
    let dir = tempdir();
    let file = dir.path().join("bomb.png");
    std::fs::write(&file, png_with_icc_bomb(256 << 20)).unwrap();
    let s = Setup::new(FULL_CONFIG, ONE, &[("bomb.png", file)]);
    let time = std::path::Path::new("/usr/bin/time");
    let out = if time.is_file() {
        // Peak resident memory in KB, on stderr's last line.
        let inner = s.command(&["-uri", "bomb.png"]);
        let mut cmd = std::process::Command::new(time);
        cmd.arg("-f")
            .arg("%M")
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(s.dir.path());
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        let peak_kb: u64 = err.lines().last().unwrap().trim().parse().unwrap();
        assert!(peak_kb < 200_000, "peak {peak_kb} KB:\n{err}");
        out
    } else {
        s.run(&["-uri", "bomb.png"])
    };
    assert_exit(&out, 0);
    assert!(s.path("out/bomb.png/full/!64,64/0/color.jpg").is_file());
}

/// Mutations from a seeded generator (proptest's, a dev-dependency already): the same files on every run and
/// machine.
struct Dice(proptest::test_runner::TestRng);

impl Dice {
    fn new(seed: u64) -> Dice {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Dice(proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &bytes,
        ))
    }

    fn next(&mut self) -> u64 {
        proptest::prelude::Rng::next_u64(&mut self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `bytes` damaged one of the ways files are: bits flipped, bytes set to edge values (anywhere, or among the
/// headers), cut short, random bytes inserted, a run duplicated, a run zeroed.
fn mutate(bytes: &[u8], dice: &mut Dice) -> Vec<u8> {
    let mut d = bytes.to_vec();
    match dice.below(7) {
        0 => {
            for _ in 0..=dice.below(8) {
                let i = dice.below(d.len());
                d[i] ^= 1 << dice.below(8);
            }
        }
        kind @ (1 | 2) => {
            let span = if kind == 1 {
                d.len()
            } else {
                d.len().min(2048)
            };
            for _ in 0..=dice.below(8) {
                let i = dice.below(span);
                d[i] = [0, 0xFF, 0x7F, 0x80, 1, dice.next() as u8][dice.below(6)];
            }
        }
        3 => d.truncate(dice.below(d.len())),
        4 => {
            let at = dice.below(d.len());
            let noise: Vec<u8> = (0..=dice.below(64)).map(|_| dice.next() as u8).collect();
            d.splice(at..at, noise);
        }
        5 => {
            let from = dice.below(d.len());
            let to = (from + 1 + dice.below(4096)).min(d.len());
            let run = d[from..to].to_vec();
            let at = dice.below(d.len());
            d.splice(at..at, run);
        }
        _ => {
            let at = dice.below(d.len());
            let end = (at + 1 + dice.below(512)).min(d.len());
            d[at..end].fill(0);
        }
    }
    d
}

#[test]
fn damaged_files_of_every_format_are_each_their_own_error() {
    // Every decoder the binary has: baseline and progressive JPEG (with EXIF orientation, CMYK, an ICC profile),
    // PNG, WebP, GIF, TIFF (JPEG in tiles, a pyramid; BigTIFF 16-bit), JPEG 2000 (tiled in pieces, lossless, a
    // palette, a bare codestream). Bad input must be that file's error: no panic, no abort, no hang, no other
    // file's loss.
    let small = decode(fixture("landscape.jpg")).thumbnail(96, 96);
    let dir = tempdir();
    let mut seeds: Vec<(String, Vec<u8>)> = [
        "progressive.jpg",
        "oriented_6.jpg",
        "colour/cmyk_fogra39.jpg",
        "colour/adobergb.jpg",
        "rgba.png",
        "colour_rgb16.png",
        "masters/coffee_pyramid_jpeg.tif",
        "masters/coffee_rgb16_bigtiff.tif",
        "masters/dune_tiled.jp2",
        "masters/coffee_lossless.jp2",
        "masters/camera_palette.jp2",
        "masters/coffee_lossless.j2k",
    ]
    .iter()
    .map(|name| (name.to_string(), std::fs::read(fixture(name)).unwrap()))
    .collect();
    for (name, format) in [
        ("small.webp", image::ImageFormat::WebP),
        ("small.gif", image::ImageFormat::Gif),
    ] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        small.write_to(&mut bytes, format).unwrap();
        seeds.push((name.to_string(), bytes.into_inner()));
    }
    // More with DAMAGED_PER_FILE=N (and another sequence with DAMAGED_SEED=N): a longer search for crashes.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut dice = Dice::new(env("DAMAGED_SEED", 0));
    let mut files = Vec::new();
    for (name, bytes) in &seeds {
        let ext = name.rsplit('.').next().unwrap();
        for i in 0..env("DAMAGED_PER_FILE", 16) {
            let file = format!(
                "{}-{i}.{ext}",
                name.replace('/', "-").split('.').next().unwrap()
            );
            std::fs::write(dir.path().join(&file), mutate(bytes, &mut dice)).unwrap();
            files.push((file.clone(), dir.path().join(&file)));
        }
    }
    let named: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!64,64"}, "s": {"region": "-1,-1,32,32", "size": "full"},
            "g": {"size": "48,", "rotation": "90", "quality": "gray", "format": "png"},
            "d": {"size": "!40,40", "quality": "dither", "rotation": "-1"}}"#,
        &named,
    );
    let mut args = vec!["-tiles", "-tile-size", "64", "-max-memory", "256M"];
    for (name, _) in &files {
        args.extend(["-uri", name.as_str()]);
    }
    // A hang fails the test rather than stalling it; the memory stays within the budget.
    let limit = std::time::Duration::from_millis(60_000 + 100 * files.len() as u64);
    let (r, err, code, peak) = crate::limits::run_measured(s.command(&args), limit);
    assert!(matches!(code, Some(0 | 1)), "exit status {code:?}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(peak < (256 + 64) << 20, "peak RSS {} MiB", peak >> 20);
    // Each file is in the report, made or with its error.
    for (name, _) in &files {
        let entry = &r[name.as_str()];
        let made = entry["uris"].as_object().is_some_and(|m| !m.is_empty());
        let failed = entry["errors"].as_object().is_some_and(|m| !m.is_empty());
        assert!(made || failed, "{name}: {entry}");
    }
}
