//! go-iiif v8's palette service (several go-colours extruders, palettes, grid), its v6-v8 configs and instruction
//! sets run as go-iiif ships them, and `-report-html`.

use crate::common::{assert_exit, decode, fixture, root, stderr, stdout_json, Setup};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// go-colours 0.12.2's output on `tests/fixtures/rgb.png`, made by `tests/fixtures/go-colours/palette-expect.go`
/// (run inside a go-colours checkout at that version, as its comment says): every extruder at count 5, each colour
/// with its closest crayola, css3 and css4 colour.
fn go_colours_expected() -> Value {
    let path = fixture("go-colours/rgb.png.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["rgb.png"].clone()
}

#[test]
fn every_extruder_matches_go_colours_on_the_same_pixels() {
    // rgb.png is 160x120, under the 256-pixel analysis copy, so the services see exactly go-colours' pixels.
    let config = r#"{
      "profile": {"services": {"enable": ["palette"]}},
      "palette_service": {
        "extruders": [{"uri": "vibrant://", "count": 5}, {"uri": "marekm4://", "count": 5}, {"uri": "quant://", "count": 5}],
        "grid": {"uri": "euclidian://"},
        "palettes": [{"uri": "crayola://"}, {"uri": "css3://"}, {"uri": "css4://"}]
      },
      "images": {"source": {"uri": "file:///SRC"}},
      "derivatives": {"cache": {"name": "Disk", "path": "out"}}
    }"#;
    let s = Setup::new(
        "{}",
        r#"{"t": {"size": "!32,32", "format": "png"}}"#,
        &[("rgb.png", fixture("rgb.png"))],
    );
    let config = config.replace("/SRC", &s.path("src").display().to_string());
    std::fs::write(s.path("config.json"), config).unwrap();
    let out = s.run(&["-uri", "rgb.png"]);
    assert_exit(&out, 0);
    let got = stdout_json(&out)["rgb.png"]["palette"].clone();
    let want = go_colours_expected();
    let mut expected: Vec<Value> = Vec::new();
    for extruder in ["vibrant", "marekm4", "quant"] {
        let list = want[extruder].as_array().unwrap();
        assert!(!list.is_empty(), "{extruder}: no expected colours");
        expected.extend(list.iter().cloned());
    }
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&expected) {
        assert_eq!(g["hex"], w["hex"], "got {g}\nwant {w}");
        assert_eq!(g["reference"], w["reference"], "got {g}\nwant {w}");
        assert_eq!(g["closest"], w["closest"], "got {g}\nwant {w}");
        // go-colours names a swatch by its hex; this tool's report (2019 flags) names it after its first closest.
        assert_eq!(w["name"], w["hex"]);
        assert_eq!(g["name"], w["closest"][0]["name"]);
    }
}

#[test]
fn unknown_extruders_palettes_and_grids_are_refused_by_name() {
    for (section, want) in [
        (
            r#"{"extruders": [{"uri": "hex://", "count": 5}]}"#,
            "\"hex\"",
        ),
        (
            r#"{"extruders": [{"uri": "quant://"}], "palettes": [{"uri": "pantone://"}]}"#,
            "\"pantone\"",
        ),
        (
            r#"{"extruders": [{"uri": "quant://"}], "grid": {"uri": "manhattan://"}}"#,
            "\"manhattan\"",
        ),
    ] {
        let config = format!(
            r#"{{"profile": {{"services": {{"enable": ["palette"]}}}}, "palette_service": {section},
                "images": {{"source": {{"path": "src"}}}}, "derivatives": {{"cache": {{"path": "out"}}}}}}"#
        );
        let s = Setup::new(
            &config,
            r#"{"t": {"size": "!32,32"}}"#,
            &[("rgb.png", fixture("rgb.png"))],
        );
        let out = s.run(&["-uri", "rgb.png"]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(want), "{want}: {}", stderr(&out));
    }
}

/// A folder holding one of go-iiif's configs and instruction sets as go-iiif ships them, with `photo.jpg` where the
/// config's images.source points.
fn go_iiif_setup(version: &str, config: &str, instructions: &str) -> Setup {
    let s = Setup::new("{}", "{}", &[]);
    let from = root().join("tests/go-iiif").join(version);
    std::fs::copy(from.join(config), s.path("config.json")).unwrap();
    std::fs::copy(from.join(instructions), s.path("instructions.json")).unwrap();
    s
}

/// Every label of the instruction set is in the report with a file on disk of the reported size.
fn assert_derivatives(s: &Setup, cache: &Path, report: &Value, instructions: &str) {
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path(instructions)).unwrap()).unwrap();
    let labels = labels.as_object().unwrap();
    assert!(!labels.is_empty());
    assert!(report.get("errors").is_none(), "{report:#}");
    for label in labels.keys() {
        let path = report["uris"][label]
            .as_str()
            .unwrap_or_else(|| panic!("{label} missing: {report:#}"));
        let img = decode(cache.join(path));
        let dims = &report["dimensions"][label];
        assert_eq!(
            [Value::from(img.width()), Value::from(img.height())],
            [dims[0].clone(), dims[1].clone()],
            "{label}"
        );
    }
}

#[test]
fn go_iiif_documented_example_configs_run_unchanged() {
    for version in ["v6.1.4", "v7.0.3", "v8.1.8"] {
        let s = go_iiif_setup(
            version,
            "docs_config.json.example",
            "docs_instructions.json.example",
        );
        // The examples say `"path": "example/images?metadata=skip"`: gocloud's query option on a Disk path. The
        // folders exist under both readings (with the query taken as part of the name, and without it), so the
        // configs stay byte for byte go-iiif's.
        for dir in ["images", "cache"] {
            std::fs::create_dir_all(s.path("example").join(dir)).unwrap();
            std::os::unix::fs::symlink(dir, s.path("example").join(format!("{dir}?metadata=skip")))
                .unwrap();
        }
        std::fs::copy(fixture("landscape.jpg"), s.path("example/images/photo.jpg")).unwrap();
        let out = s.run(&["-uri", "photo.jpg"]);
        assert_exit(&out, 0);
        let r = stdout_json(&out)["photo.jpg"].clone();
        assert_derivatives(&s, &s.path("example/cache"), &r, "instructions.json");
        let palette = r["palette"].as_array().unwrap();
        let references: Vec<&str> = palette
            .iter()
            .map(|p| p["reference"].as_str().unwrap())
            .collect();
        if version == "v8.1.8" {
            // Two extruders, five colours asked of each, one after the other; crayola and css4 closest.
            let first_marekm4 = references.iter().position(|r| *r == "marekm4").unwrap();
            assert!(first_marekm4 > 0 && first_marekm4 <= 5, "{references:?}");
            assert!(references[..first_marekm4].iter().all(|r| *r == "vibrant"));
            assert!(references[first_marekm4..].iter().all(|r| *r == "marekm4"));
            for p in palette {
                assert_eq!(p["closest"][0]["reference"], "crayola");
                assert_eq!(p["closest"][1]["reference"], "css4");
            }
        } else {
            // v6 and v7 list their palettes under `palette.palette`, which go-iiif does not read: no names.
            assert!(!references.is_empty() && references.iter().all(|r| *r == "vibrant"));
            assert!(palette
                .iter()
                .all(|p| p.get("closest").is_none() && p["name"] == p["hex"]));
        }
        // The services named `*_service` in v8's example are the same three.
        assert_eq!(
            r["blurhash"].as_str().unwrap().len(),
            6 + 2 * 63,
            "{version}"
        );
        assert!(r["imagehash"]["average"]
            .as_str()
            .unwrap()
            .starts_with("a:"));
        assert!(r["imagehash"]["difference"]
            .as_str()
            .unwrap()
            .starts_with("d:"));
    }
}

#[test]
fn go_iiif_defaults_run_with_their_own_instruction_sets() {
    for (version, extruder) in [("v7.0.3", "vibrant"), ("v8.1.8", "marekm4")] {
        let s = go_iiif_setup(
            version,
            "defaults_config.json",
            "defaults_instructions.json",
        );
        // The defaults read from and write to memory (`mem://`), which a command-line run has no use for: only
        // those two locations are changed here; every other key is go-iiif's.
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(s.path("config.json")).unwrap()).unwrap();
        assert_eq!(config["images"]["source"]["uri"], "mem://");
        config["images"]["source"] = serde_json::json!({"name": "Disk", "path": "src"});
        config["derivatives"]["cache"] = serde_json::json!({"name": "Disk", "path": "out"});
        std::fs::write(s.path("config.json"), config.to_string()).unwrap();
        std::fs::create_dir_all(s.path("src")).unwrap();
        std::fs::copy(fixture("landscape.jpg"), s.path("src/photo.jpg")).unwrap();
        let out = s.run(&["-uri", "photo.jpg"]);
        assert_exit(&out, 0);
        let r = stdout_json(&out)["photo.jpg"].clone();
        assert_derivatives(&s, &s.path("out"), &r, "instructions.json");
        let palette = r["palette"].as_array().unwrap();
        assert!(
            !palette.is_empty() && palette.len() <= 5,
            "{version}: {palette:?}"
        );
        for p in palette {
            assert_eq!(p["reference"], extruder, "{version}");
        }
        assert!(r["blurhash"].is_string() && r["imagehash"]["average"].is_string());
    }
}

/// Headless Chromium (Debian's `chromium`), or a clear message.
fn chromium() -> &'static str {
    let ok = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs headless Chromium: install Debian's `chromium` package (.ci/run does)"
    );
    "chromium"
}

fn html_setup() -> Setup {
    let config = r#"{
      "profile": {"services": {"enable": ["palette", "blurhash", "imagehash"]}},
      "palette_service": {"extruders": [{"uri": "marekm4://", "count": 5}], "grid": {"uri": "euclidian://"},
                          "palettes": [{"uri": "crayola://"}, {"uri": "css4://"}]},
      "images": {"source": {"name": "Disk", "path": "src"}},
      "derivatives": {"cache": {"name": "Disk", "path": "out"}}
    }"#;
    let instructions = r#"{
      "b": {"size": "!300,300", "format": "jpg"},
      "s": {"size": "96,", "region": "square", "format": "png"},
      "w": {"size": "!200,200", "format": "webp"}
    }"#;
    Setup::new(
        config,
        instructions,
        &[
            ("a photo.jpg", fixture("landscape.jpg")),
            ("<b>&\"c\".png", fixture("rgb.png")),
        ],
    )
}

#[test]
fn report_html_writes_an_escaped_self_contained_page_beside_each_report() {
    let s = html_setup();
    let out = s.run(&[
        "-report-html",
        "-uri",
        "a photo.jpg",
        "-uri",
        "<b>&\"c\".png",
    ]);
    assert_exit(&out, 0);
    let report = stdout_json(&out);
    for (uri, report) in report.as_object().unwrap() {
        // -report-html implies -report: the page goes beside the report file.
        assert!(
            s.path("out").join(uri).join("process.json").is_file(),
            "{uri}"
        );
        let page = std::fs::read_to_string(s.path("out").join(uri).join("index.html")).unwrap();
        assert!(
            !page.contains("<b>") && !page.contains("&\"c\""),
            "unescaped name in\n{page}"
        );
        assert!(
            !page.contains("http:") && !page.contains("https:"),
            "not self-contained:\n{page}"
        );
        assert!(
            page.contains("data:image/png;base64,"),
            "no blurhash placeholder"
        );
        for (label, path) in report["uris"].as_object().unwrap() {
            let file = Path::new(path.as_str().unwrap()).strip_prefix(uri).unwrap();
            assert!(page.contains(&format!(">{label} <code>")), "{label}");
            let src: String = file
                .to_str()
                .unwrap()
                .replace(',', "%2C")
                .replace('!', "%21");
            assert!(page.contains(&format!("src=\"{src}\"")), "{src} in\n{page}");
        }
        for swatch in report["palette"].as_array().unwrap() {
            let hex = swatch["hex"].as_str().unwrap();
            assert!(page.contains(&format!("background-color: {hex}")), "{hex}");
        }
    }
}

#[test]
#[ignore = "needs Debian's chromium (installed by .ci/run)"]
fn report_html_loads_in_headless_chromium_with_every_image() {
    let browser = chromium();
    let s = html_setup();
    let uri = "<b>&\"c\".png";
    let out = s.run(&["-report-html", "-uri", "a photo.jpg", "-uri", uri]);
    assert_exit(&out, 0);
    for uri in ["a photo.jpg", uri] {
        let dir = s.path("out").join(uri);
        // A page of the test's own frames the report's page and lists each image's natural width (file pages may
        // read each other with --allow-file-access-from-files).
        std::fs::write(
            dir.join("check.html"),
            r#"<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><pre id="result">not loaded</pre>
<iframe id="f" src="index.html" width="1200" height="900"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  var d = this.contentDocument;
  var out = [d ? 'images ' + d.images.length : 'no access'];
  if (d) Array.prototype.forEach.call(d.images, function (im) { out.push(im.naturalWidth + ' ' + im.getAttribute('src')); });
  document.getElementById('result').textContent = out.join('\n');
});
</script></body></html>"#,
        )
        .unwrap();
        let url = |name: &str| format!("file://{}", dir.join(name).display()).replace(' ', "%20");
        let run = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--allow-file-access-from-files",
            ])
            .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
            .arg(
                url("check.html")
                    .replace('<', "%3C")
                    .replace('>', "%3E")
                    .replace('"', "%22"),
            )
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&run.stdout);
        let log = String::from_utf8_lossy(&run.stderr);
        let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{uri}: console messages: {console:#?}");
        let result = dom
            .split("<pre id=\"result\">")
            .nth(1)
            .and_then(|r| r.split("</pre>").next())
            .unwrap_or_else(|| panic!("{uri}: no result in\n{dom}\n{log}"));
        let mut lines = result.lines();
        assert_eq!(lines.next(), Some("images 3"), "{uri}: {result}");
        for line in lines {
            let width: u32 = line.split(' ').next().unwrap().parse().unwrap();
            assert!(width > 0, "{uri}: an image did not load: {line}");
        }
        // A screenshot, for a person to look at (the test only checks that one is made and is not blank).
        let shot = dir.join("screenshot.png");
        let run = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,1600",
            ])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(
                url("index.html")
                    .replace('<', "%3C")
                    .replace('>', "%3E")
                    .replace('"', "%22"),
            )
            .output()
            .unwrap();
        assert!(shot.is_file(), "{}", String::from_utf8_lossy(&run.stderr));
        let img = decode(&shot).to_rgb8();
        let first = img.get_pixel(0, 0);
        assert!(img.pixels().any(|p| p != first), "blank screenshot");
        if let Ok(keep) = std::env::var("IIIF_PROCESS_KEEP_SCREENSHOTS") {
            let name = if uri.starts_with('a') {
                "photo.png"
            } else {
                "escaped.png"
            };
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&shot, Path::new(&keep).join(name)).unwrap();
        }
    }
}
