//! go-iiif v8's command line: -config-source/-config-name, -instructions-source/-instructions-name, defaults://,
//! the -config-*-uri replacements, -report-template and -report-bucket-uri, IIIF_* variables, v8's report form;
//! and -skip-existing with a master replaced under the same name.

use crate::common::*;
use image::GenericImageView;
use serde_json::Value;
use sha2::Digest;
use std::path::Path;
use std::process::{Command, Output};

/// A config in go-iiif v8's shape: stores as `file://` URIs with Go Cloud's `?metadata=skip`.
fn v8_config(dir: &Path) -> String {
    format!(
        r#"{{
  "features": {{"append": {{"quality": {{"dither": {{"syntax": "dither", "supported": true}},
                                       "crisp": {{"syntax": "crisp", "supported": true}}}}}}}},
  "images": {{"source": {{"uri": "file://{src}?metadata=skip"}}}},
  "derivatives": {{"cache": {{"uri": "file://{out}?metadata=skip"}}}}
}}"#,
        src = dir.join("src").display(),
        out = dir.join("out").display()
    )
}

const INSTRUCTIONS: &str =
    r#"{"b": {"size": "!300,300", "format": "jpg"}, "p": {"size": "pct:50", "format": "png"}}"#;

/// The binary run in `dir`, with no IIIF_* variable of the caller's.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("IIIF_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn sha256(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// The 600x400 photograph's derivative `b` (300x200) and `p` (300x200 png) match a resize of the source.
fn assert_derivatives(out_dir: &Path, origin: &str, source: &Path) {
    let src = decode(source).to_rgb8();
    let want = image::imageops::resize(&src, 300, 200, image::imageops::FilterType::Lanczos3);
    for rel in ["full/!300,300/0/color.jpg", "full/pct:50/0/color.png"] {
        let img = decode(out_dir.join(origin).join(rel)).to_rgb8();
        assert_eq!(img.dimensions(), (300, 200), "{rel}");
        let d = mean_abs_diff(&want, &img);
        assert!(d < 4.0, "{rel} differs from the source by {d}");
    }
}

#[test]
fn a_go_iiif_v8_command_line_runs_and_writes_v8_reports() {
    let s = Setup::new("{}", INSTRUCTIONS, &[("a b.jpg", fixture("landscape.jpg"))]);
    let dir = s.dir.path();
    std::fs::write(dir.join("conf.json"), v8_config(dir)).unwrap();
    let out = output(&mut command(
        dir,
        &[
            "-config-source",
            &file_uri(dir),
            "-config-name",
            "conf.json",
            "-instructions-source",
            &file_uri(dir),
            "-instructions-name",
            "instructions.json",
            "-report",
            "a b.jpg",
        ],
    ));
    assert_exit(&out, 0);
    assert_derivatives(&dir.join("out"), "a b.jpg", &fixture("landscape.jpg"));
    // go-iiif v8's report: named by the template from the SHA-256 of the source's path, the object alone.
    let name = format!("process_{}.json", sha256("a b.jpg"));
    let text = std::fs::read_to_string(dir.join("out/a b.jpg").join(&name)).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["origin"], "a b.jpg");
    assert_eq!(report["origin_uri"], "file:///a b.jpg");
    assert_eq!(
        report["uris"]["b"],
        "file:///a b.jpg/full/!300,300/0/color.jpg"
    );
    assert_eq!(report["dimensions"]["p"], serde_json::json!([300, 200]));
    assert!(!dir.join("out/a b.jpg/process.json").exists());
    // The same report on stdout, under the source as given.
    assert_eq!(stdout_json(&out)["a b.jpg"], report);
}

#[test]
fn flags_replace_the_configs_stores_and_reports_go_to_a_bucket_by_template() {
    // A 2019-shaped config whose stores are not there: the flags replace them.
    let s = Setup::new(
        r#"{"images": {"source": {"name": "Disk", "path": "nowhere"}},
            "derivatives": {"cache": {"name": "Disk", "path": "nowhere"}}}"#,
        INSTRUCTIONS,
        &[("a.jpg", fixture("landscape.jpg"))],
    );
    let dir = s.dir.path();
    let out = output(&mut command(
        dir,
        &[
            "-config-source",
            &dir.display().to_string(),
            "-instructions-source",
            &file_uri(dir),
            "-config-images-source-uri",
            &format!("{}?metadata=skip", file_uri(&dir.join("src"))),
            "-config-derivatives-cache-uri",
            "derived",
            "-report",
            "-report-template",
            "reports_{sha256_origin}.json",
            "-report-bucket-uri",
            &file_uri(&dir.join("reports")),
            "a.jpg",
        ],
    ));
    assert_exit(&out, 0);
    assert_derivatives(&dir.join("derived"), "a.jpg", &fixture("landscape.jpg"));
    let name = format!("reports_{}.json", sha256("a.jpg"));
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("reports").join(&name)).unwrap()).unwrap();
    assert_eq!(report["uris"]["p"], "file:///a.jpg/full/pct:50/0/color.png");
    assert!(!dir.join("derived/a.jpg").join(&name).exists());
    assert!(!dir.join("nowhere").exists());
}

#[test]
fn flags_come_from_iiif_variables_and_the_command_line_wins() {
    let s = Setup::new("{}", INSTRUCTIONS, &[("a.jpg", fixture("landscape.jpg"))]);
    let dir = s.dir.path();
    std::fs::write(dir.join("config.json"), v8_config(dir)).unwrap();
    let out = output(
        command(dir, &["-config-derivatives-cache-uri", "flag", "a.jpg"])
            .env("IIIF_CONFIG_SOURCE", file_uri(dir))
            .env("IIIF_INSTRUCTIONS_SOURCE", file_uri(dir))
            .env("IIIF_CONFIG_DERIVATIVES_CACHE_URI", "variable")
            .env("IIIF_REPORT", "true")
            .env("IIIF_REPORT_TEMPLATE", "r.json"),
    );
    assert_exit(&out, 0);
    assert_derivatives(&dir.join("flag"), "a.jpg", &fixture("landscape.jpg"));
    assert!(dir.join("flag/a.jpg/r.json").exists());
    assert!(!dir.join("variable").exists());
    // A variable's bad value is refused as the flag's would be.
    let out = output(
        command(dir, &["a.jpg"])
            .env("IIIF_CONFIG_SOURCE", file_uri(dir))
            .env("IIIF_INSTRUCTIONS_SOURCE", file_uri(dir))
            .env("IIIF_JOBS", "zero"),
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("zero"), "{}", stderr(&out));
}

#[test]
fn go_iiifs_default_instructions_are_built_in() {
    let s = Setup::new(
        FULL_CONFIG,
        "{}",
        &[("d.jpg", fixture("dune_1680x1050.jpg"))],
    );
    let dir = s.dir.path();
    let out = output(&mut command(
        dir,
        &[
            "-config-source",
            &file_uri(dir),
            "-instructions-source",
            "defaults://",
            "-instructions-name",
            "not-read.json",
            "d.jpg",
        ],
    ));
    assert_exit(&out, 0);
    let json = stdout_json(&out);
    let r = &json["d.jpg"];
    let want = [
        ("o", [1680, 1050]),
        ("b", [1024, 640]),
        ("c", [800, 500]),
        ("dc", [800, 500]),
        ("z", [640, 400]),
        ("n", [320, 200]),
        ("s", [320, 320]),
        ("ds", [320, 320]),
    ];
    for (label, dims) in want {
        assert_eq!(r["dimensions"][label], serde_json::json!(dims), "{label}");
    }
    let labels: Vec<&String> = r["uris"].as_object().unwrap().keys().collect();
    assert_eq!(
        labels,
        ["b", "c", "dc", "ds", "k", "n", "o", "s", "z"],
        "{r}"
    );
    for label in labels {
        let uri = r["uris"][label].as_str().unwrap();
        let img = decode(dir.join("out").join(uri.strip_prefix("file:///").unwrap()));
        assert_eq!(
            serde_json::json!([img.width(), img.height()]),
            r["dimensions"][label],
            "{label}"
        );
    }
    // go-iiif's "s" is crisp:2.0,0.5,0.025: this tool's path names the quality without its parameters.
    assert!(
        r["uris"]["s"].as_str().unwrap().ends_with("/crisp.jpg"),
        "{r}"
    );
}

#[test]
fn go_iiifs_default_config_runs_with_the_store_flags() {
    let s = Setup::new("{}", "{}", &[("d.jpg", fixture("dune_1680x1050.jpg"))]);
    let dir = s.dir.path();
    let out = output(&mut command(
        dir,
        &[
            "-config-images-source-uri",
            &file_uri(&dir.join("src")),
            "-config-derivatives-cache-uri",
            &file_uri(&dir.join("out")),
            "d.jpg",
        ],
    ));
    assert_exit(&out, 0);
    let json = stdout_json(&out);
    let r = &json["d.jpg"];
    assert_eq!(r["dimensions"]["b"], serde_json::json!([1024, 640]));
    assert!(
        r["palette"].as_array().is_some_and(|p| !p.is_empty()),
        "{r}"
    );
}

#[test]
fn a_config_source_that_is_not_a_folder_or_bucket_is_a_usage_error() {
    let dir = tempdir();
    let out = output(&mut command(
        dir.path(),
        &[
            "-config-source",
            "mem://",
            "-instructions-source",
            "defaults://",
            "a.jpg",
        ],
    ));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("-config-source \"mem://\""),
        "{}",
        stderr(&out)
    );
    let out = output(&mut command(
        dir.path(),
        &["-config", "c.json", "-config-name", "x.json", "a.jpg"],
    ));
    assert_exit(&out, 2);
}

#[test]
fn man_page_and_completions_are_generated() {
    let out = run_ok(&["-man"]);
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH iiif-process"),
        "{man}"
    );
    assert!(man.contains(r"\-\-report\-template"), "{man}");
    // The bash script loads and registers its completion.
    let out = run_ok(&["-completions", "bash"]);
    let script = String::from_utf8(out.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!("{script}\ncomplete -p iiif-process"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("iiif-process"));
}

/// Replace the master under the same name and rerun with -skip-existing: what was made from the old one is
/// remade, and the report describes what is on disk.
fn replaced_master_is_noticed(extra: &[&str]) {
    let s = Setup::new(
        r#"{"images": {"source": {"name": "Disk", "path": "src"}},
            "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
        r#"{"b": {"size": "!300,300", "format": "jpg"}}"#,
        &[("m.jpg", fixture("landscape.jpg"))],
    );
    let mut args = vec!["-skip-existing", "-uri", "m.jpg"];
    args.extend(extra);
    let out = s.run(&args);
    assert_exit(&out, 0);
    assert_eq!(
        s.output("m.jpg/full/!300,300/0/color.jpg").dimensions(),
        (300, 200)
    );
    std::fs::copy(fixture("dune_1680x1050.jpg"), s.path("src/m.jpg")).unwrap();
    let out = s.run(&args);
    assert_exit(&out, 0);
    let json = stdout_json(&out);
    let r = &json["m.jpg"];
    assert_eq!(r["dimensions"]["b"], serde_json::json!([300, 188]), "{r}");
    let img = s.output("m.jpg/full/!300,300/0/color.jpg").to_rgb8();
    assert_eq!(img.dimensions(), (300, 188));
    let src = decode(fixture("dune_1680x1050.jpg")).to_rgb8();
    let want = image::imageops::resize(&src, 300, 188, image::imageops::FilterType::Lanczos3);
    // A JPEG of the new master differs from the image crate's resize of it by about 6 levels (the ladder's box
    // halving, quality 85); the old master's picture is tens of levels away.
    let diff = mean_abs_diff(&want, &img);
    assert!(diff < 10.0, "mean difference {diff} from the new master");
    if extra.contains(&"-report") {
        let stored: Value =
            serde_json::from_slice(&std::fs::read(s.path("out/m.jpg/process.json")).unwrap())
                .unwrap();
        assert_eq!(
            stored["m.jpg"]["dimensions"]["b"],
            serde_json::json!([300, 188])
        );
    }
    // Unchanged since: nothing is rewritten.
    let before = std::fs::metadata(s.path("out/m.jpg/full/!300,300/0/color.jpg"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_exit(&s.run(&args), 0);
    let after = std::fs::metadata(s.path("out/m.jpg/full/!300,300/0/color.jpg"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn skip_existing_remakes_what_a_replaced_master_made_with_a_report() {
    replaced_master_is_noticed(&["-report"]);
}

#[test]
fn skip_existing_remakes_what_a_replaced_master_made_without_a_report() {
    replaced_master_is_noticed(&[]);
}

#[test]
fn uri_dot_is_every_image_of_the_source_folder() {
    let s = Setup::new(
        r#"{"images": {"source": {"name": "Disk", "path": "src"}},
            "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
        r#"{"b": {"size": "!300,300", "format": "jpg"}}"#,
        &[
            ("a.jpg", fixture("landscape.jpg")),
            ("sub/p.jpg", fixture("portrait.jpg")),
        ],
    );
    let out = s.run(&["-uri", "."]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert_eq!(r.as_object().unwrap().len(), 2, "{r}");
    assert_eq!(
        s.output("a.jpg/full/!300,300/0/color.jpg").dimensions(),
        (300, 200)
    );
    assert_eq!(
        s.output("sub/p.jpg/full/!300,300/0/color.jpg").dimensions(),
        (225, 300)
    );
}
