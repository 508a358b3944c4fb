//! Zoomable images: the IIIF Level 0 service made with `-tiles` (tiles, sizes, full/max, info.json) and the
//! canonical copies of `-canonical`, read back as a viewer reads them: paths computed here from info.json as the
//! Image API says, every file decoded and compared with the source. The IIIF validator and OpenSeadragon in
//! headless Chromium check the same output over HTTP; those two need tools that `.ci/run` installs, so they are
//! `#[ignore]`d like the object storage tests.

use crate::common::{self, emulator, Setup};
use image::{DynamicImage, GenericImage, GenericImageView, Rgb, RgbImage};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"{
  "images": {"source": {"name": "Disk", "path": "src"}},
  "derivatives": {"cache": {"name": "Disk", "path": "out"}}
}"#;

/// An instruction set cannot be empty: one small thumbnail beside the tiles.
const THUMB: &str = r#"{"n": {"size": "!100,100"}}"#;

fn info(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("info.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("info.json").display()));
    serde_json::from_str(&text).unwrap()
}

/// Rebuild every level from the tiles a viewer would request, computed from info.json alone, and compare it
/// with the source reduced to that level; check each `sizes` entry and `full/max`.
fn check_service(service: &Path, source: &DynamicImage, v3: bool) -> usize {
    let info = info(service);
    let (w, h) = (source.width(), source.height());
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(w.into()), Some(h.into()))
    );
    let tiles = &info["tiles"][0];
    let t = tiles["width"].as_u64().unwrap() as u32;
    let factors: Vec<u32> = tiles["scaleFactors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap() as u32)
        .collect();
    // Down to one tile for the whole image.
    let last = *factors.last().unwrap();
    assert!(
        w.div_ceil(last) <= t && h.div_ceil(last) <= t,
        "{factors:?}"
    );
    assert!(
        factors.len() == 1 || w.div_ceil(last / 2) > t || h.div_ceil(last / 2) > t,
        "{factors:?}"
    );
    let mut files = 0;
    for &s in &factors {
        let (lw, lh) = (w.div_ceil(s), h.div_ceil(s));
        let mut level = RgbImage::new(lw, lh);
        let step = t * s;
        for y in (0..h).step_by(step as usize) {
            for x in (0..w).step_by(step as usize) {
                let (rw, rh) = (step.min(w - x), step.min(h - y));
                let (sw, sh) = (rw.div_ceil(s), rh.div_ceil(s));
                let region = if (x, y, rw, rh) == (0, 0, w, h) {
                    "full".to_string()
                } else {
                    format!("{x},{y},{rw},{rh}")
                };
                let size = match (v3, (sw, sh) == (w, h)) {
                    (true, true) => "max".to_string(),
                    (false, true) => "full".to_string(),
                    (true, false) => format!("{sw},{sh}"),
                    (false, false) => format!("{sw},"),
                };
                let tile = common::decode(service.join(format!("{region}/{size}/0/default.jpg")))
                    .to_rgb8();
                assert_eq!(tile.dimensions(), (sw, sh), "{region}/{size}");
                level.copy_from(&tile, x / s, y / s).unwrap();
                files += 1;
            }
        }
        let want = source
            .resize_exact(lw, lh, image::imageops::FilterType::Lanczos3)
            .to_rgb8();
        let diff = common::mean_abs_diff(&want, &level);
        assert!(
            diff < 8.0,
            "scale factor {s}: mean difference {diff} from the source"
        );
    }
    let full = common::decode(service.join(format!(
        "full/{}/0/default.jpg",
        if v3 { "max" } else { "full" }
    )));
    assert_eq!(full.dimensions(), (w, h));
    assert!(common::mean_abs_diff(&source.to_rgb8(), &full.to_rgb8()) < 3.0);
    let sizes = info["sizes"].as_array().unwrap();
    assert!(!sizes.is_empty());
    for sz in sizes {
        let (sw, sh) = (
            sz["width"].as_u64().unwrap() as u32,
            sz["height"].as_u64().unwrap() as u32,
        );
        let size = if v3 {
            format!("{sw},{sh}")
        } else {
            format!("{sw},")
        };
        let img = common::decode(service.join(format!("full/{size}/0/default.jpg")));
        assert_eq!(img.dimensions(), (sw, sh), "sizes entry {sw}x{sh}");
        files += 1;
    }
    files
}

#[test]
fn tiles_rebuild_the_image_at_every_level_for_both_apis() {
    let s = Setup::new(
        CONFIG,
        r#"{"b": {"size": "!400,400"}}"#,
        &[("dune.jpg", common::fixture("dune_1680x1050.jpg"))],
    );
    let out = s.run(&[
        "-tiles",
        "-tiles-api",
        "both",
        "-tile-size",
        "256",
        "-tiles-base-url",
        "https://example.org/iiif/",
        "dune.jpg",
    ]);
    common::assert_exit(&out, 0);
    let report = common::stdout_json(&out);
    assert_eq!(
        report["dune.jpg"]["tiles"],
        serde_json::json!(["dune.jpg/info.json", "dune.jpg/v2/info.json"])
    );
    let source = common::decode(common::fixture("dune_1680x1050.jpg"));
    let root = s.path("out/dune.jpg");
    let v3 = info(&root);
    assert_eq!(v3["id"], "https://example.org/iiif/dune.jpg");
    assert_eq!(v3["profile"], "level0");
    assert_eq!(
        v3["tiles"][0]["scaleFactors"],
        serde_json::json!([1, 2, 4, 8])
    );
    let v2 = info(&root.join("v2"));
    assert_eq!(v2["@id"], "https://example.org/iiif/dune.jpg/v2");
    assert!(check_service(&root, &source, true) > 7 * 5);
    assert!(check_service(&root.join("v2"), &source, false) > 7 * 5);
    // The instruction set is made from the same run, where it always is.
    assert_eq!(
        s.output("dune.jpg/full/!400,400/0/color.jpg").dimensions(),
        (400, 250)
    );
}

#[test]
fn an_image_smaller_than_a_tile_is_one_level_and_its_sizes() {
    let s = Setup::new(CONFIG, THUMB, &[("p.png", common::fixture("rgba.png"))]);
    common::assert_exit(&s.run(&["-tiles", "p.png"]), 0);
    let source = common::decode_oriented(common::fixture("rgba.png"));
    let root = s.path("out/p.png");
    assert_eq!(
        info(&root)["tiles"][0]["scaleFactors"],
        serde_json::json!([1])
    );
    // Transparency is flattened on white, as in every JPEG derivative.
    let flat = {
        let mut img = RgbImage::new(source.width(), source.height());
        for (x, y, p) in source.to_rgba8().enumerate_pixels() {
            let a = f32::from(p[3]) / 255.0;
            let c = |v: u8| (f32::from(v) * a + 255.0 * (1.0 - a)).round() as u8;
            img.put_pixel(x, y, Rgb([c(p[0]), c(p[1]), c(p[2])]));
        }
        DynamicImage::ImageRgb8(img)
    };
    check_service(&root, &flat, true);
}

#[test]
fn skip_existing_keeps_a_complete_set_and_completes_a_partial_one() {
    let s = Setup::new(
        CONFIG,
        THUMB,
        &[("dune.jpg", common::fixture("dune_1680x1050.jpg"))],
    );
    common::assert_exit(&s.run(&["-tiles", "dune.jpg"]), 0);
    let tile = s.path("out/dune.jpg/512,512,512,512/512,512/0/default.jpg");
    let good = std::fs::read(&tile).unwrap();
    std::fs::write(&tile, b"stale").unwrap();
    // info.json is there, so the set is complete: nothing is decoded or written.
    common::assert_exit(&s.run(&["-tiles", "-skip-existing", "dune.jpg"]), 0);
    assert_eq!(std::fs::read(&tile).unwrap(), b"stale");
    // Without it (a run stopped before the end), the set is made again.
    std::fs::remove_file(s.path("out/dune.jpg/info.json")).unwrap();
    common::assert_exit(&s.run(&["-tiles", "-skip-existing", "dune.jpg"]), 0);
    assert_eq!(std::fs::read(&tile).unwrap(), good);
    assert!(s.path("out/dune.jpg/info.json").exists());
}

#[test]
fn canonical_copies_from_the_config_join_the_service_and_its_sizes() {
    let config = r#"{
      "images": {"source": {"name": "Disk", "path": "src"}},
      "derivatives": {"cache": {"name": "Disk", "path": "out"},
                      "tiles": {"enable": true, "canonical": true, "api": "2", "tile_size": 1024}}
    }"#;
    let instructions = r#"{"b": {"size": "!800,600"}, "g": {"size": "300,", "quality": "gray"},
                           "s": {"region": "-1,-1,100,100"}}"#;
    let s = Setup::new(
        config,
        instructions,
        &[("dune.jpg", common::fixture("dune_1680x1050.jpg"))],
    );
    common::assert_exit(&s.run(&["dune.jpg"]), 0);
    let root = s.path("out/dune.jpg");
    // 2.1 canonical forms: `w,` sizes; the derivative's bytes at both names.
    let b = std::fs::read(root.join("full/!800,600/0/color.jpg")).unwrap();
    assert_eq!(
        std::fs::read(root.join("full/800,/0/default.jpg")).unwrap(),
        b
    );
    assert_eq!(
        common::decode(root.join("full/300,/0/gray.jpg")).dimensions(),
        (300, 188)
    );
    // A smart crop has no IIIF form: only its go-iiif name.
    assert!(root.join("-1,-1,100,100/full/0/color.jpg").exists());
    let info = info(&root);
    assert_eq!(info["@context"], "http://iiif.io/api/image/2/context.json");
    assert_eq!(info["tiles"][0]["width"], 1024);
    let sizes: Vec<(u64, u64)> = info["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()))
        .collect();
    assert!(sizes.contains(&(800, 500)), "{sizes:?}");
    // Gray is not the default quality: not a size of the service.
    assert!(!sizes.contains(&(300, 188)), "{sizes:?}");
    check_service(
        &root,
        &common::decode(common::fixture("dune_1680x1050.jpg")),
        false,
    );
}

#[test]
fn bad_tile_settings_stop_the_run_naming_the_value() {
    let s = Setup::new(
        CONFIG,
        THUMB,
        &[("dune.jpg", common::fixture("dune_1680x1050.jpg"))],
    );
    let out = s.run(&["-tiles", "-tile-size", "8", "dune.jpg"]);
    common::assert_exit(&out, 2);
    assert!(
        common::stderr(&out).contains("-tile-size 8"),
        "{}",
        common::stderr(&out)
    );
    let out = s.run(&["-tiles", "-tiles-api", "4", "dune.jpg"]);
    common::assert_exit(&out, 2);
}

/// The validator's test picture: its 10 x 10 grid of 100 px squares, in the colours its own module checks.
fn validator_picture(python: &Path) -> RgbImage {
    let out = Command::new(python)
        .args(["-c", "import json; from iiif_validator.validator import ValidationInfo; print(json.dumps(ValidationInfo().colorInfo))"])
        .output()
        .expect("cannot run the validator's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The module prints a line of its own when imported: the table is the last line.
    let text = String::from_utf8_lossy(&out.stdout);
    let colours: Vec<Vec<[u8; 3]>> =
        serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap();
    RgbImage::from_fn(1000, 1000, |x, y| {
        Rgb(colours[(x / 100) as usize][(y / 100) as usize])
    })
}

/// A static file server on loopback serving `dir`, as a bucket or web server would.
fn serve(dir: &Path) -> emulator::Emulator {
    let dir = dir.to_string_lossy().into_owned();
    emulator::start(&emulator::Spec {
        program: "python3",
        args: &move |port| {
            let mut args: Vec<String> = ["-m", "http.server", "--bind", "127.0.0.1", "--directory"]
                .map(String::from)
                .to_vec();
            args.extend([dir.clone(), port.to_string()]);
            args
        },
        env: &[],
        install: "python3",
    })
}

#[test]
#[ignore = "needs iiif-validate.py (pip install iiif-validator==1.0.5); .ci/run installs it"]
fn the_iiif_validator_passes_every_level_0_test_for_3_0_and_2_0() {
    let validate = which("iiif-validate.py").unwrap_or_else(|| {
        panic!("iiif-validate.py is not on PATH (pip install iiif-validator==1.0.5)")
    });
    let python = validate.parent().unwrap().join("python");
    let s = Setup::new(CONFIG, THUMB, &[]);
    validator_picture(&python)
        .save(s.path("src/validator.png"))
        .unwrap();
    std::fs::create_dir_all(s.path("out")).unwrap();
    let server = serve(&s.path("out"));
    let base = format!("http://127.0.0.1:{}", server.port);
    common::assert_exit(
        &s.run(&[
            "-tiles",
            "-tiles-api",
            "both",
            "-tiles-base-url",
            &base,
            "validator.png",
        ]),
        0,
    );
    for (version, prefix, identifier) in
        [("3.0", "", "validator.png"), ("2.0", "validator.png", "v2")]
    {
        let out = Command::new(&python)
            .arg(&validate)
            .args([
                "--server",
                format!("127.0.0.1:{}", server.port).as_str(),
                "--identifier",
                identifier,
                "--version",
                version,
                "--level",
                "0",
            ])
            .args(if prefix.is_empty() {
                vec![]
            } else {
                vec!["--prefix", prefix]
            })
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "validator {version}:\n{log}");
        assert!(
            log.contains("PASS") && !log.contains("FAIL"),
            "validator {version}:\n{log}"
        );
        assert!(
            log.contains("test info_json PASS") && log.contains("test id_squares PASS"),
            "{log}"
        );
    }
}

#[test]
#[ignore = "needs chromium, and openseadragon and playwright-core from npm on NODE_PATH; .ci/run installs them"]
fn openseadragon_shows_every_tile_zoomed_in() {
    let chromium = which("chromium")
        .unwrap_or_else(|| panic!("chromium is not on PATH (apt-get install chromium)"));
    let node_path = std::env::var("NODE_PATH").unwrap_or_default();
    let osd = std::env::split_paths(&node_path)
        .map(|p| p.join("openseadragon/build/openseadragon/openseadragon.min.js"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("openseadragon is not on NODE_PATH (npm install openseadragon@6.1.1 playwright-core@1.65.1)"));
    let s = Setup::new(
        CONFIG,
        THUMB,
        &[("dune.jpg", common::fixture("dune_1680x1050.jpg"))],
    );
    std::fs::create_dir_all(s.path("out")).unwrap();
    let server = serve(&s.path("out"));
    let base = format!("http://127.0.0.1:{}", server.port);
    common::assert_exit(
        &s.run(&[
            "-tiles",
            "-tile-size",
            "256",
            "-tiles-base-url",
            &base,
            "dune.jpg",
        ]),
        0,
    );
    std::fs::copy(&osd, s.path("out/openseadragon.min.js")).unwrap();
    // The page background is magenta, a colour the photograph does not have: a tile that does not load shows it.
    std::fs::write(s.path("out/viewer.html"), VIEWER_PAGE).unwrap();
    let shot = s.path("shot.png");
    std::fs::write(s.path("drive.js"), DRIVER).unwrap();
    let out = Command::new("node")
        .arg(s.path("drive.js"))
        .arg(format!("{base}/viewer.html"))
        .arg(&chromium)
        .arg(&shot)
        .env("NODE_PATH", &node_path)
        .output()
        .expect("cannot run node");
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let result: Value =
        serde_json::from_str(log.lines().find(|l| l.starts_with('{')).unwrap_or("{}")).unwrap();
    assert_eq!(result["failed"], 0, "{log}");
    assert!(result["loaded"].as_u64().unwrap_or(0) >= 4, "{log}");
    // Kept for a look after the run.
    std::fs::copy(
        &shot,
        std::env::temp_dir().join("iiif-process-openseadragon.png"),
    )
    .ok();
    // Zoomed in 4x on the middle, the picture covers the whole viewer: no pixel may be the background.
    let png = common::decode(&shot).to_rgb8();
    assert_eq!(png.dimensions(), (800, 600));
    let magenta = png
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 60 && p[2] > 200)
        .count();
    assert_eq!(
        magenta,
        0,
        "{magenta} background pixels in {}",
        shot.display()
    );
    // And it is a picture, not one flat colour (a viewer that drew nothing on a white page).
    let first = png.get_pixel(0, 0);
    assert!(png.pixels().filter(|p| p != &first).count() > 800 * 600 / 2);
    std::fs::copy(
        &shot,
        std::env::temp_dir().join("iiif-process-openseadragon.png"),
    )
    .ok();
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

const VIEWER_PAGE: &str = r#"<!doctype html>
<html><head><style>html, body { margin: 0; background: #ff00ff; } #v { width: 800px; height: 600px; }</style>
<script src="openseadragon.min.js"></script></head>
<body><div id="v"></div><script>
  window.stats = {loaded: 0, failed: 0};
  const viewer = OpenSeadragon({id: "v", tileSources: "dune.jpg/info.json", showNavigationControl: false,
                                animationTime: 0, blendTime: 0, immediateRender: false, imageLoaderLimit: 8});
  viewer.addHandler("tile-loaded", () => window.stats.loaded++);
  viewer.addHandler("tile-load-failed", () => window.stats.failed++);
  window.zoomed = new Promise(done => viewer.addHandler("open", () => {
    const item = viewer.world.getItemAt(0);
    const wait = () => new Promise(r => { if (item.getFullyLoaded()) r(); else item.addOnceHandler("fully-loaded-change", () => r()); });
    wait().then(() => {
      viewer.viewport.zoomTo(4, viewer.viewport.getCenter(), true);
      viewer.viewport.applyConstraints(true);
      setTimeout(() => wait().then(() => setTimeout(done, 300)), 100);
    });
  }));
</script></body></html>
"#;

const DRIVER: &str = r##"
const { chromium } = require("playwright-core");
(async () => {
  const [url, executablePath, shot] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  page.on("console", m => console.error("page:", m.text()));
  await page.goto(url);
  await page.evaluate(() => window.zoomed);
  const stats = await page.evaluate(() => window.stats);
  await page.locator("#v").screenshot({ path: shot });
  console.log(JSON.stringify(stats));
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
"##;

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn tiles_go_to_a_bucket_with_their_content_types_and_skip_existing_sends_no_upload() {
    use crate::common::moto;
    let m = moto::start();
    m.create_bucket("derivs");
    let config = crate::s3::config_with(
        r#"{"name": "Disk", "path": "src"}"#,
        r#"{"uri": "s3blob://derivs?prefix=iiif&region=us-east-1&credentials=env:"}"#,
    );
    let s = Setup::new(
        &config,
        THUMB,
        &[("dune.jpg", common::fixture("dune_1680x1050.jpg"))],
    );
    let run = |extra: &[&str]| {
        let mut cmd = s.command(&["-tiles", "-uri", "dune.jpg"]);
        cmd.args(extra).stdin(std::process::Stdio::null());
        moto::s3_env(&mut cmd, &m.endpoint).output().unwrap()
    };
    common::assert_exit(&run(&[]), 0);
    let keys = m.keys("derivs");
    // 4 x 3 + 2 x 2 + 1 tiles, full/max, the 2 sizes below the last level, info.json and the thumbnail.
    assert_eq!(keys.len(), 12 + 4 + 1 + 1 + 2 + 1 + 1, "{keys:?}");
    assert_eq!(
        m.served_as("derivs", "iiif/dune.jpg/info.json")
            .0
            .as_deref(),
        Some("application/json")
    );
    assert_eq!(
        m.served_as(
            "derivs",
            "iiif/dune.jpg/512,512,512,512/512,512/0/default.jpg"
        )
        .0
        .as_deref(),
        Some("image/jpeg")
    );
    m.start_recording();
    common::assert_exit(&run(&["-skip-existing"]), 0);
    let requests = m.stop_recording();
    assert!(
        requests.iter().all(|(method, _, _)| method != "PUT"),
        "{requests:?}"
    );
}
