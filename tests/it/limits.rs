//! Limits a run keeps whatever it is given: derivative sizes, memory, signals, and where writes may go.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The SFO set of the README plus requests whose output would need gigabytes.
const ABSURD: &str = r#"{
  "o":  {"size": "full", "format": "", "rotation": "-1"},
  "b":  {"size": "!1024,768", "format": "jpg"},
  "n":  {"size": "!320,240", "format": "jpg"},
  "s":  {"size": "full", "region": "-1,-1,320,320", "format": "jpg"},
  "huge": {"size": "100000000,100000000"},
  "pct": {"size": "pct:100000"},
  "wide": {"size": "65535,65535"},
  "smart": {"region": "-1,-1,100000,100000"},
  "turned": {"size": "65535,1", "rotation": "45"}
}"#;

/// The peak resident set of a running process, from its /proc status, in bytes (0 once it has exited).
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Wait for `child` at most `limit`, killing it (and failing) past that; its exit status and peak RSS in bytes.
/// The peak is read from /proc while it runs (the high-water mark only grows, so the last reading before exit is
/// its peak but for the last few milliseconds): wait4's ru_maxrss would also count the test process itself,
/// whose memory a spawned child inherits in that figure.
fn wait_bounded(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, u64) {
    let start = Instant::now();
    let mut peak = 0;
    loop {
        peak = peak.max(vm_hwm(child.id()));
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("iiif-process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Run to completion under a time limit; stdout, stderr, exit status and peak RSS in bytes.
pub(crate) fn run_measured(mut cmd: Command, limit: Duration) -> (Value, String, Option<i32>, u64) {
    let dir = tempdir();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let (status, peak) = wait_bounded(&mut child, limit);
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\n--- stderr\n{stderr}"));
    (json, stderr, status.code(), peak)
}

#[test]
fn absurd_sizes_fail_their_derivative_and_the_run_goes_on() {
    let s = Setup::new(
        FULL_CONFIG,
        ABSURD,
        &[
            ("a.jpg", fixture("landscape.jpg")),
            ("b.jpg", fixture("portrait.jpg")),
            ("c.png", fixture("rgb.png")),
        ],
    );
    let start = Instant::now();
    let (r, err, code, peak) = run_measured(
        s.command(&["-uri", "a.jpg", "-uri", "b.jpg", "-uri", "c.png"]),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(peak < 1 << 30, "peak RSS {peak} bytes");
    for src in ["a.jpg", "b.jpg", "c.png"] {
        let uris = r[src]["uris"].as_object().unwrap();
        let mut made: Vec<&str> = uris.keys().map(String::as_str).collect();
        made.sort();
        assert_eq!(made, ["b", "n", "o", "s"], "{src}: {r}");
        for path in uris.values() {
            assert!(s.path("out").join(path.as_str().unwrap()).is_file());
        }
        for label in ["huge", "pct", "wide", "smart", "turned"] {
            let e = r[src]["errors"][label].as_str().unwrap_or_default();
            assert!(
                e.contains("over the limit of 100000000 (-max-output-pixels)"),
                "{src} {label}: {e}"
            );
        }
    }
    // The limit is a knob: a flag, or the config's derivatives.max_output_pixels.
    let out = s.run(&["-uri", "a.jpg", "-max-output-pixels", "100000"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["a.jpg"]["errors"]["b"].is_string(), "{r}");
    assert!(r["a.jpg"]["uris"]["n"].is_string(), "{r}");
    let config = FULL_CONFIG.replace(
        r#""cache": {"name": "Disk", "path": "out"}"#,
        r#""cache": {"name": "Disk", "path": "out"}, "max_output_pixels": 100000"#,
    );
    std::fs::write(s.path("config.json"), config).unwrap();
    let r = stdout_json(&s.run(&["-uri", "a.jpg"]));
    assert!(r["a.jpg"]["errors"]["b"]
        .as_str()
        .unwrap()
        .contains("limit of 100000 "));
}

/// A PNG of `w` x `h` of one colour: a few kilobytes on disk, `w * h * 3` bytes decoded.
fn flat_png(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 120, 40]));
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        file,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Sub,
    );
    image::ImageEncoder::write_image(enc, img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
}

#[test]
fn memory_is_bounded_by_bytes_not_by_a_count_of_sources() {
    let s = Setup::new(
        r#"{"images": {"source": {"name": "Disk", "path": "src"}},
            "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
        r#"{"b": {"size": "!200,200"}, "p": {"size": "!100,100", "format": "png"}}"#,
        &[],
    );
    for i in 0..4 {
        flat_png(&s.path(&format!("src/big/{i}.png")), 5000, 5000);
    }
    let size = std::fs::metadata(s.path("src/big/0.png")).unwrap().len();
    assert!(
        size < 1 << 20,
        "{size} bytes: small files that decode to 75 MB each"
    );
    // Each source reserves about 25 MP x 4 bytes (the 75 MB frame and its intermediate): the budget admits one
    // at a time, where -jobs 4 alone would decode all four at once (about 350 MB).
    let budget: u64 = 150 << 20;
    let (r, err, code, peak) = run_measured(
        s.command(&["-uri", "big", "-jobs", "4", "-max-memory", "150M"]),
        Duration::from_secs(180),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(r.as_object().unwrap().len(), 4);
    assert!(
        peak < budget + (64 << 20),
        "peak RSS {} MiB over the {} MiB budget",
        peak >> 20,
        budget >> 20
    );
    // A source that cannot fit the whole budget alone fails at once, naming both figures.
    let (r, err, code, peak) = run_measured(
        s.command(&["-uri", "big/0.png", "-max-memory", "64M"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{err}");
    let e = r["big/0.png"]["errors"]["b"].as_str().unwrap();
    assert!(
        e.contains("MiB of memory") && e.contains("-max-memory budget of 64 MiB"),
        "{e}"
    );
    assert!(peak < 64 << 20, "nothing was decoded: {} MiB", peak >> 20);
}

#[test]
fn sigterm_stops_taking_sources_and_reports_what_finished() {
    let files: Vec<(String, std::path::PathBuf)> = (0..40)
        .map(|i| (format!("d/{i:02}.jpg"), example("source/IMG_0084.JPG")))
        .collect();
    let named: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"a": {"size": "full", "rotation": "33", "format": "png"},
            "b": {"size": "!800,800", "quality": "dither"}, "c": {"size": "full", "format": "png"}}"#,
        &named,
    );
    let dir = tempdir();
    let err_path = dir.path().join("stderr");
    let mut child = s
        .command(&["-uri", "d", "-jobs", "1", "-progress"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // Once the first source is done (a progress line), ask the run to stop.
    let start = Instant::now();
    while !std::fs::read_to_string(&err_path)
        .unwrap()
        .contains("1/40 sources")
    {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let done = r.as_object().unwrap();
    assert!(
        !done.is_empty() && done.len() < 40,
        "{} reported",
        done.len()
    );
    for (uri, report) in done {
        assert!(report["errors"].is_null(), "{uri}: {report}");
        for path in report["uris"].as_object().unwrap().values() {
            assert!(s.path("out").join(path.as_str().unwrap()).is_file());
        }
    }
    assert!(err.contains("stopped by signal 15"), "{err}");
    let temps: Vec<_> = walkdir(&s.path("out"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_link_among_the_derivatives_is_not_followed_out_of_them() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!100,100"}}"#,
        &[("a.jpg", fixture("landscape.jpg"))],
    );
    let outside = tempdir();
    std::fs::create_dir_all(s.path("out")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.path("out/a.jpg")).unwrap();
    let out = s.run(&["-uri", "a.jpg"]);
    assert_exit(&out, 1);
    let e = stdout_json(&out)["a.jpg"]["errors"]["n"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(e.contains("escapes the store's root"), "{e}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn derivatives_inside_the_source_root_are_not_taken_for_sources() {
    let config = r#"{"images": {"source": {"name": "Disk", "path": "src"}},
                     "derivatives": {"cache": {"name": "Disk", "path": "src/coll/iiif"}}}"#;
    let s = Setup::new(
        config,
        r#"{"n": {"size": "!100,100"}}"#,
        &[("coll/a.jpg", fixture("landscape.jpg"))],
    );
    for run in 0..2 {
        let out = s.run(&["-uri", "coll"]);
        assert_exit(&out, 0);
        let r = stdout_json(&out);
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["coll/a.jpg"], "run {run}: {r}");
    }
    assert!(s
        .path("src/coll/iiif/coll/a.jpg/full/!100,100/0/color.jpg")
        .is_file());
}

#[test]
fn a_report_name_that_cannot_be_a_file_is_refused_before_work() {
    let s = Setup::new(
        FULL_CONFIG,
        r#"{"n": {"size": "!100,100"}}"#,
        &[("a.jpg", fixture("landscape.jpg"))],
    );
    for name in [".", "..", "a/b.json", ""] {
        let out = s.run(&["-uri", "a.jpg", "-report", "-report-name", name]);
        assert_exit(&out, 2);
        assert_eq!(
            stderr(&out),
            format!("iiif-process: -report-name {name:?} must be a plain file name\n")
        );
        assert!(!s.path("out").exists());
    }
}
