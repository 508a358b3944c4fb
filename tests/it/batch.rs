//! Batch runs: directories, manifests, jsonl streaming, reruns with -skip-existing, -dry-run, crashes.

use crate::common::*;
use std::process::{Command, Stdio};

const SET: &str = r#"{"n": {"size": "!64,64"}, "s": {"region": "-1,-1,32,32", "quality": "dither", "format": "png"}}"#;

fn photo_dir() -> Setup {
    Setup::new(
        FULL_CONFIG,
        SET,
        &[
            ("coll/a.jpg", fixture("landscape.jpg")),
            ("coll/sub/b.jpg", fixture("portrait.jpg")),
            ("coll/sub/c.png", fixture("rgb.png")),
            ("coll/notes.txt", root().join("tests/hostile/text.jpg")),
            ("coll/README", root().join("tests/fixtures/README.md")),
        ],
    )
}

#[test]
fn a_directory_means_every_image_below_it() {
    let s = photo_dir();
    let out = s.run(&["-uri", "coll"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    // Every listed file is accounted for: the images processed, the others reported as skipped.
    assert_eq!(
        keys,
        [
            "coll/README",
            "coll/a.jpg",
            "coll/notes.txt",
            "coll/sub/b.jpg",
            "coll/sub/c.png"
        ]
    );
    for skipped in ["coll/README", "coll/notes.txt"] {
        let why = r[skipped]["skipped"].as_str().unwrap_or_default();
        assert!(why.contains("not a supported image"), "{skipped}: {why}");
        assert_eq!(r[skipped]["uris"], serde_json::json!({}));
    }
    for made in ["coll/a.jpg", "coll/sub/b.jpg", "coll/sub/c.png"] {
        assert!(r[made].get("skipped").is_none(), "{made}");
    }
    assert!(stderr(&out).contains("skipping coll/notes.txt"));
    assert!(
        stderr(&out).contains("3 of 5 sources done, 0 failed, 2 skipped (not images)"),
        "{}",
        stderr(&out)
    );
    assert!(s
        .path("out/coll/sub/c.png/-1,-1,32,32/full/0/dither.png")
        .is_file());
}

#[test]
fn manifest_from_stdin_with_comments() {
    let s = photo_dir();
    let out = s.run_stdin(
        &["-manifest", "-"],
        "# the collection\ncoll/a.jpg\n\n  coll/sub/b.jpg  \ncoll/a.jpg\n",
    );
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert_eq!(
        r.as_object().unwrap().len(),
        2,
        "repeated lines are processed once"
    );
    // From a file too.
    std::fs::write(s.path("m.txt"), "coll/sub/c.png\n").unwrap();
    let out = s.run(&["-manifest", s.path("m.txt").to_str().unwrap()]);
    assert_exit(&out, 0);
    assert!(stdout_json(&out)["coll/sub/c.png"].is_object());
}

#[test]
fn jsonl_streams_one_line_per_source() {
    let s = photo_dir();
    let out = s.run(&[
        "-uri",
        "coll",
        "-uri",
        "missing.jpg",
        "-report-format",
        "jsonl",
    ]);
    assert_exit(&out, 1);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Three images, two skipped files of the directory, one missing file.
    assert_eq!(lines.len(), 6);
    let mut uris: Vec<&str> = lines.iter().map(|l| l["uri"].as_str().unwrap()).collect();
    uris.sort();
    assert_eq!(
        uris,
        [
            "coll/README",
            "coll/a.jpg",
            "coll/notes.txt",
            "coll/sub/b.jpg",
            "coll/sub/c.png",
            "missing.jpg"
        ]
    );
    for l in &lines {
        for key in ["dimensions", "uris", "errors"] {
            assert!(l[key].is_object(), "{key} in {l}");
        }
    }
}

#[test]
fn dry_run_reads_headers_only_and_writes_nothing() {
    let s = photo_dir();
    let out = s.run(&["-uri", "coll", "-dry-run", "-report"]);
    assert_exit(&out, 0);
    let dry = stdout_json(&out);
    assert!(!s.path("out").exists(), "nothing written");
    let real = s.run(&["-uri", "coll"]);
    assert_exit(&real, 0);
    let real = stdout_json(&real);
    for uri in ["coll/a.jpg", "coll/sub/b.jpg"] {
        // Not two empty reports agreeing: the dry run names both derivatives.
        assert_eq!(
            dry[uri]["uris"].as_object().map(|m| m.len()),
            Some(2),
            "{uri}: {dry}"
        );
        assert_eq!(dry[uri]["uris"], real[uri]["uris"]);
        assert_eq!(dry[uri]["dimensions"], real[uri]["dimensions"]);
    }
}

#[test]
fn skip_existing_skips_what_is_done_and_completes_the_rest() {
    let s = photo_dir();
    let first = s.run(&["-uri", "coll", "-report"]);
    assert_exit(&first, 0);
    let report = s.path("out/coll/a.jpg/process.json");
    let n = s.path("out/coll/a.jpg/full/!64,64/0/color.jpg");
    let before = std::fs::metadata(&n).unwrap().modified().unwrap();

    // Everything exists: same report, nothing rewritten.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = s.run(&["-uri", "coll", "-report", "-skip-existing"]);
    assert_exit(&again, 0);
    assert_eq!(stdout_json(&again), stdout_json(&first));
    assert_eq!(std::fs::metadata(&n).unwrap().modified().unwrap(), before);
    assert!(report.is_file());

    // One derivative lost: only it is made again.
    let s_path = s.path("out/coll/a.jpg/-1,-1,32,32/full/0/dither.png");
    std::fs::remove_file(&s_path).unwrap();
    let fix = s.run(&["-uri", "coll", "-report", "-skip-existing"]);
    assert_exit(&fix, 0);
    assert!(s_path.is_file());
    assert_eq!(std::fs::metadata(&n).unwrap().modified().unwrap(), before);
    assert_eq!(stdout_json(&fix), stdout_json(&first));
}

#[test]
fn killed_runs_leave_no_partial_files_and_a_rerun_completes() {
    // A bigger job, so that kill -9 lands mid-run: many derivatives of several photos.
    let mut files = Vec::new();
    for i in 0..6 {
        files.push((
            format!("k/p{i}.jpg"),
            fixture(if i % 2 == 0 {
                "landscape.jpg"
            } else {
                "portrait.jpg"
            }),
        ));
    }
    let refs: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let instructions = format!(
        "{{{}}}",
        (0..20)
            .map(|i| format!(
                "\"l{i}\": {{\"size\": \"{},\", \"rotation\": \"{}\"}}",
                100 + i * 20,
                i * 7
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let s = Setup::new(FULL_CONFIG, &instructions, &refs);
    let config = s.path("config.json");
    let ins = s.path("instructions.json");
    let reference = {
        let t = tempdir();
        let c = std::fs::read_to_string(&config)
            .unwrap()
            .replace(
                "\"path\": \"out\"",
                &format!("\"path\": {:?}", t.path().join("ref")),
            )
            .replace(
                "\"path\": \"src\"",
                &format!("\"path\": {:?}", s.path("src")),
            );
        std::fs::write(t.path().join("c.json"), c).unwrap();
        let out = Command::new(bin())
            .args([
                "-config",
                t.path().join("c.json").to_str().unwrap(),
                "-instructions",
                ins.to_str().unwrap(),
            ])
            .args(["-uri", "k", "-report"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        stdout_json(&out)
    };
    for delay_ms in [15u64, 40, 80, 150] {
        let _ = std::fs::remove_dir_all(s.path("out"));
        let mut child = Command::new(bin())
            .args([
                "-config",
                config.to_str().unwrap(),
                "-instructions",
                ins.to_str().unwrap(),
                "-uri",
                "k",
                "-report",
            ])
            .current_dir(s.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Every file at a final name decodes completely.
        for entry in walk(&s.path("out")) {
            let name = entry.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // temporaries
            }
            if name.ends_with(".json") {
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(&entry).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
            } else {
                image::open(&entry)
                    .unwrap_or_else(|e| panic!("partial file {}: {e}", entry.display()));
            }
        }
        let rerun = s.run(&["-uri", "k", "-report", "-skip-existing"]);
        assert_exit(&rerun, 0);
        assert_eq!(
            stdout_json(&rerun),
            reference,
            "rerun after a kill at {delay_ms} ms completes the job"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn progress_bar_only_when_asked_or_on_a_terminal() {
    let s = photo_dir();
    let quiet = s.run(&["-uri", "coll"]);
    assert!(
        !stderr(&quiet).contains(" derivatives ("),
        "no bar on a pipe"
    );
    let bar = s.run(&["-uri", "coll", "-progress"]);
    assert_exit(&bar, 0);
    assert!(
        stderr(&bar).contains("5/5 sources, 6 derivatives"),
        "{}",
        stderr(&bar)
    );
    let silent = s.run(&["-uri", "coll", "-uri", "missing.jpg", "-quiet"]);
    assert_exit(&silent, 1);
    assert!(stderr(&silent).is_empty());
}

/// Kills the child when a test fails while it runs, so that a binary blocked on a FIFO does not outlive the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill(); // it may have exited already: nothing to do then
        let _ = self.0.wait();
    }
}

/// Opens `fifo` for writing if, and only if, some process has it open for reading (a reader blocked in its
/// open counts): without a reader the non-blocking open fails with ENXIO.
fn open_if_read(fifo: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
    {
        Ok(f) => Some(f),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => None,
        Err(e) => panic!("{}: {e}", fifo.display()),
    }
}

/// Writes all of `bytes` into a FIFO opened non-blocking, waiting while the pipe is full, then closes it.
fn feed(mut f: std::fs::File, bytes: &[u8], deadline: std::time::Instant) {
    use std::io::Write;
    let mut done = 0;
    while done < bytes.len() {
        match f.write(&bytes[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the reader stopped reading"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => panic!("feeding a source: {e}"),
        }
    }
}

#[test]
fn jobs_bounds_sources_in_flight() {
    use std::time::{Duration, Instant};
    // Each source is a FIFO: the binary's read of one blocks until the test writes it, so the FIFOs that have a
    // reader are exactly the sources the binary has started and not yet read. Only after looking at all of them
    // does the test feed those, so a run that starts more than -jobs sources at once is seen doing it.
    let jpeg = std::fs::read(fixture("landscape.jpg")).unwrap();
    const SOURCES: usize = 6;
    for jobs in [1usize, 2, 4] {
        let s = Setup::new(FULL_CONFIG, r#"{"n": {"size": "!64,64"}}"#, &[]);
        let mut fifos: Vec<(String, std::path::PathBuf)> = Vec::new();
        let mut args = vec!["-jobs".to_string(), jobs.to_string()];
        for i in 0..SOURCES {
            let name = format!("f{i}.jpg");
            let path = s.path("src").join(&name);
            let made = Command::new("mkfifo").arg(&path).status().unwrap();
            assert!(made.success(), "mkfifo {}", path.display());
            args.extend(["-uri".to_string(), name.clone()]);
            fifos.push((name, path));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = KillOnDrop(
            s.command(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut most = 0;
        let mut fed = [false; SOURCES];
        while fed.contains(&false) {
            assert!(
                Instant::now() < deadline,
                "-jobs {jobs}: sources not read in time: {fed:?}"
            );
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "-jobs {jobs}: exited before reading every source: {fed:?}"
            );
            let mut open: Vec<(usize, std::fs::File)> = Vec::new();
            let look = |open: &mut Vec<(usize, std::fs::File)>| {
                for (i, (_, path)) in fifos.iter().enumerate() {
                    if !fed[i] && !open.iter().any(|(j, _)| *j == i) {
                        if let Some(f) = open_if_read(path) {
                            open.push((i, f));
                        }
                    }
                }
            };
            look(&mut open);
            if open.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            // Give the other threads time to reach a source too, then look again. At the start every thread
            // takes one, so wait for all of them (a loaded machine may be slow to run them).
            let first = most == 0;
            let since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(10));
                look(&mut open);
                let waited = since.elapsed();
                if waited >= Duration::from_millis(200)
                    && (!first || open.len() >= jobs || waited >= Duration::from_secs(5))
                {
                    break;
                }
            }
            let names: Vec<&str> = open.iter().map(|(i, _)| fifos[*i].0.as_str()).collect();
            assert!(
                open.len() <= jobs,
                "-jobs {jobs}: {} sources read at once: {names:?}",
                open.len()
            );
            most = most.max(open.len());
            for (i, f) in open {
                // Closing after the last byte ends the reader's file; the binary never opens a source twice.
                feed(f, &jpeg, deadline);
                fed[i] = true;
            }
        }
        // Every thread started a source at once: the bound was reached, so a looser one would have been seen.
        assert_eq!(most, jobs.min(SOURCES), "-jobs {jobs}");
        while child.0.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "-jobs {jobs}: the run did not finish"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut stdout = Vec::new();
        std::io::Read::read_to_end(child.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        assert!(
            child.0.try_wait().unwrap().unwrap().success(),
            "-jobs {jobs}"
        );
        let r: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        for (name, _) in &fifos {
            assert_eq!(
                r[name]["dimensions"]["n"],
                serde_json::json!([64, 43]),
                "{name}: {r}"
            );
        }
    }
    let s = photo_dir();
    assert_exit(&s.run(&["-uri", "coll", "-jobs", "0"]), 2);
}

/// The environment of the running binary `pid` once it holds `want` (the binary starts itself again with
/// its malloc setting, so the first look may come before that), or the last one seen.
fn environment_with(pid: u32, want: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let env = std::fs::read(format!("/proc/{pid}/environ"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
            .unwrap_or_default();
        if env.lines().any(|l| l == want) || std::time::Instant::now() > deadline {
            return env;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn the_binary_runs_with_huge_pages_asked_of_malloc_unless_told_otherwise() {
    // A FIFO source holds the run at its read, where the process's environment can be looked at.
    let cases = [
        (None, "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"),
        // A user who tunes malloc keeps exactly that.
        (
            Some("glibc.malloc.arena_max=2"),
            "GLIBC_TUNABLES=glibc.malloc.arena_max=2",
        ),
        (
            Some("glibc.malloc.hugetlb=0"),
            "GLIBC_TUNABLES=glibc.malloc.hugetlb=0",
        ),
    ];
    for (given, want) in cases {
        let s = Setup::new(FULL_CONFIG, r#"{"n": {"size": "!64,64"}}"#, &[]);
        let fifo = s.path("src").join("f.jpg");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let mut cmd = s.command(&["-uri", "f.jpg"]);
        cmd.env_remove("GLIBC_TUNABLES");
        if let Some(v) = given {
            cmd.env("GLIBC_TUNABLES", v);
        }
        let child = KillOnDrop(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let env = environment_with(child.0.id(), want);
        let tunables: Vec<&str> = env
            .lines()
            .filter(|l| l.starts_with("GLIBC_TUNABLES="))
            .collect();
        assert_eq!(tunables, [want], "GLIBC_TUNABLES given {given:?}");
        // The same process goes on to make the derivative once its source arrives.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let f = loop {
            if let Some(f) = open_if_read(&fifo) {
                break f;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the source was not read"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        feed(
            f,
            &std::fs::read(fixture("landscape.jpg")).unwrap(),
            deadline,
        );
        let mut child = child;
        let mut report = String::new();
        use std::io::Read;
        child
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut report)
            .unwrap();
        assert!(child.0.wait().unwrap().success(), "{report}");
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(
            report["f.jpg"]["dimensions"]["n"],
            serde_json::json!([64, 43])
        );
    }
}
