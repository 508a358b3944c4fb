//! `-mode fsnotify`: a watched drop folder. The binary watches a real folder while the tests copy pictures into
//! it slowly (chunked writes with pauses), in a burst, by rename, into new subfolders, overwrite one with another
//! picture, and stop and restart it; every version must be processed exactly once and from its whole bytes.

use crate::common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"{
  "images": {"source": {"name": "Disk", "path": "src"}},
  "derivatives": {"cache": {"name": "Disk", "path": "out"}}
}"#;
const INSTRUCTIONS: &str = r#"{"s": {"size": "!24,24", "format": "png"}}"#;

/// A 40x30 picture of one colour with a little noise (so it takes a few KiB and a cut file cannot decode whole).
fn picture(colour: [u8; 3], seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(40, 30, |_, _| {
        let mut px = [0u8; 3];
        for (c, base) in px.iter_mut().zip(colour) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *c = base.saturating_add((x % 24) as u8).saturating_sub(12);
        }
        image::Rgb(px)
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A colour of its own for file `i`, far from the colour of its replacement (`i + 1000`).
fn colour(i: usize) -> [u8; 3] {
    if i >= 1000 {
        let c = colour(i - 1000);
        return [255 - c[0], 255 - c[1], 255 - c[2]];
    }
    [
        (30 + i * 37 % 100) as u8,
        (40 + i * 91 % 90) as u8,
        (20 + i * 53 % 80) as u8,
    ]
}

fn sha1(bytes: &[u8]) -> String {
    crate::common::sha1_hex(bytes)
}

/// Write `bytes` at `path` in `chunks` pieces through one open file, pausing between them, as a slow copy does.
fn write_slowly(path: &Path, bytes: &[u8], chunks: usize, pause: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    for piece in bytes.chunks(bytes.len().div_ceil(chunks)) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(pause);
    }
}

/// A running watcher: its report lines as they come, and its log.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<String>>,
}

impl Watcher {
    fn start(s: &Setup, extra: &[&str]) -> Watcher {
        let mut args = vec!["-mode", "fsnotify", "-watch-settle", "400ms", "-report"];
        args.extend_from_slice(extra);
        let mut child = s
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(String::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                l.lock().unwrap().push(line.unwrap());
            }
        });
        let g = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let mut g = g.lock().unwrap();
                g.push_str(&line.unwrap());
                g.push('\n');
            }
        });
        let w = Watcher { child, lines, log };
        // Files are put in only once the watch has started ("watching ..." is logged after it has).
        w.wait_for("the watch to start", Duration::from_secs(30), |w| {
            w.log.lock().unwrap().contains("watching ")
        });
        w
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Watcher) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {what}; {} reports so far\n--- log\n{}",
                self.count(),
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, and the exit status and report lines once it has stopped.
    fn stop(mut self) -> (Option<i32>, Vec<String>, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!(
                    "no exit 30s after SIGTERM\n--- log\n{}",
                    self.log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes' readers end with the process.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap().clone();
        let log = self.log.lock().unwrap().clone();
        (status.code(), lines, log)
    }
}

/// One version of a file put in the folder: its key, its colour and the SHA-1 of its bytes.
#[derive(Clone)]
struct Put {
    key: String,
    colour: [u8; 3],
    sha1: String,
}

/// The versions put, shared with writer threads.
type Puts = Arc<Mutex<Vec<Put>>>;

fn make(puts: &Puts, key: &str, i: usize) -> Vec<u8> {
    let bytes = picture(colour(i), i as u32);
    puts.lock().unwrap().push(Put {
        key: key.into(),
        colour: colour(i),
        sha1: sha1(&bytes),
    });
    bytes
}

#[test]
fn each_version_once_and_whole_through_slow_copies_a_burst_replacements_and_a_restart() {
    let s = Setup::new(CONFIG, INSTRUCTIONS, &[]);
    let src = s.path("src");
    let puts: Puts = Arc::default();
    // 10 files there before the first start.
    for i in 0..10 {
        let key = format!("early/e{i:03}.png");
        let bytes = make(&puts, &key, i);
        std::fs::create_dir_all(src.join("early")).unwrap();
        std::fs::write(src.join(&key), bytes).unwrap();
    }
    let first = Watcher::start(&s, &["-jobs", "1"]);

    // 40 slow copies, four at a time, each in 4 chunks with pauses.
    let slow: Vec<_> = (0..4)
        .map(|t| {
            let (src, puts) = (src.clone(), Arc::clone(&puts));
            std::thread::spawn(move || {
                for j in 0..10 {
                    let i = 10 + t * 10 + j;
                    let key = format!("slow/s{i:03}.png");
                    let bytes = make(&puts, &key, i);
                    write_slowly(&src.join(&key), &bytes, 4, Duration::from_millis(25));
                }
            })
        })
        .collect();
    for t in slow {
        t.join().unwrap();
    }
    first.wait_for("the first 50 files", Duration::from_secs(60), |w| {
        w.count() >= 50
    });

    // A burst of 100: written in place, renamed in from a dot file, and into folders made on the spot.
    for i in 50..150 {
        let key = match i % 3 {
            0 => format!("burst/b{i:03}.png"),
            1 => format!("burst/new{}/deeper/b{i:03}.png", i % 5),
            _ => format!("b{i:03}.png"),
        };
        let bytes = make(&puts, &key, i);
        let path = src.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if i % 2 == 0 {
            let tmp = path.with_file_name(format!(".b{i:03}.png.tmp"));
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        } else {
            std::fs::write(&path, bytes).unwrap();
        }
    }
    // Slow copies that go on across the stop and the restart.
    let straddling = {
        let (src, puts) = (src.clone(), Arc::clone(&puts));
        std::thread::spawn(move || {
            for i in 150..170 {
                let key = format!("straddle/t{i:03}.png");
                let bytes = make(&puts, &key, i);
                write_slowly(&src.join(&key), &bytes, 4, Duration::from_millis(60));
            }
        })
    };
    // Stopped in the middle of the burst.
    first.wait_for("the burst to start", Duration::from_secs(60), |w| {
        w.count() >= 52
    });
    let (code, first_lines, first_log) = first.stop();
    assert_eq!(code, Some(143), "--- log\n{first_log}");
    assert!(first_log.contains("stopped by signal 15"), "{first_log}");

    // While nobody watches: 30 more files, and one done file replaced by another picture.
    for i in 170..200 {
        let key = format!("offline/o{i:03}.png");
        let bytes = make(&puts, &key, i);
        std::fs::create_dir_all(src.join("offline")).unwrap();
        std::fs::write(src.join(&key), bytes).unwrap();
    }
    let replaced_offline = "early/e003.png";
    let bytes = make(&puts, replaced_offline, 1003);
    std::fs::write(src.join(replaced_offline), bytes).unwrap();

    let second = Watcher::start(&s, &["-jobs", "3"]);
    straddling.join().unwrap();
    // One file replaced, slowly and in place, while watched.
    let replaced_live = "slow/s012.png";
    let bytes = make(&puts, replaced_live, 1012);
    write_slowly(
        &src.join(replaced_live),
        &bytes,
        4,
        Duration::from_millis(60),
    );

    let puts = puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 202, "200 files and 2 replacements");
    let expected = puts.len() - first_lines.len();
    second.wait_for("every version", Duration::from_secs(120), |w| {
        w.count() >= expected
    });
    // The stop came in the middle of the slow copies: some were finished only by the second watcher.
    let straddled = |lines: &[String]| lines.iter().any(|l| l.contains(r#""uri":"straddle/"#));
    assert!(
        straddled(&second.lines.lock().unwrap()),
        "no straddle/ file left to the second watcher"
    );
    // Time for a duplicate to show itself.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, second_lines, second_log) = second.stop();
    assert_eq!(code, Some(143), "--- log\n{second_log}");

    // Every version reported exactly once, from its whole bytes, with its derivative made.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for line in first_lines.iter().chain(&second_lines) {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["errors"], serde_json::json!({}), "{line}");
        assert!(r.get("skipped").is_none(), "{line}");
        let key = r["uri"].as_str().unwrap().to_string();
        let fp = r["origin_fingerprint"].as_str().unwrap().to_string();
        *seen.entry((key, fp)).or_default() += 1;
    }
    for p in &puts {
        assert_eq!(
            seen.remove(&(p.key.clone(), p.sha1.clone())),
            Some(1),
            "{} (sha1 {}) must be reported once\n--- first log\n{first_log}--- second log\n{second_log}",
            p.key,
            p.sha1
        );
    }
    assert!(
        seen.is_empty(),
        "reports of bytes never put whole: {seen:?}"
    );

    // What is on disk is each file's last version: the derivative's colour and the -report file's fingerprint.
    let last: HashMap<&str, &Put> = puts.iter().map(|p| (p.key.as_str(), p)).collect();
    assert_eq!(last.len(), 200);
    for (key, p) in &last {
        let report = s.path("out").join(key).join("process.json");
        let text = std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("{}: {e}", report.display()));
        let r: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r[*key]["origin_fingerprint"], p.sha1.as_str(), "{key}");
        let rel = r[*key]["uris"]["s"].as_str().unwrap();
        let img = s.output(rel).to_rgb8();
        assert_eq!(img.dimensions(), (24, 18), "{key}");
        let n = (img.width() * img.height()) as f64;
        for c in 0..3 {
            let mean = img.pixels().map(|px| px[c] as f64).sum::<f64>() / n;
            assert!(
                (mean - p.colour[c] as f64).abs() < 6.0,
                "{key}: channel {c} is {mean:.1}, the picture's is {}",
                p.colour[c]
            );
        }
    }
    assert!(s.path("src/.iiif-process-watch.jsonl").is_file());
}

#[test]
fn a_flat_watch_leaves_subfolders_alone() {
    let s = Setup::new(CONFIG, INSTRUCTIONS, &[]);
    let src = s.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let w = Watcher::start(&s, &["-watch-flat"]);
    std::fs::write(src.join("sub/below.png"), picture([200, 10, 10], 1)).unwrap();
    std::fs::write(src.join("top.png"), picture([10, 200, 10], 2)).unwrap();
    w.wait_for("top.png", Duration::from_secs(30), |w| w.count() >= 1);
    std::thread::sleep(Duration::from_millis(1000));
    let (code, lines, log) = w.stop();
    assert_eq!(code, Some(143), "{log}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(r#""uri":"top.png""#), "{}", lines[0]);
    assert!(!s.path("out/sub").exists());
}

#[test]
fn a_watch_refuses_named_sources_and_lambda_points_to_its_binary() {
    let s = Setup::new(CONFIG, INSTRUCTIONS, &[]);
    std::fs::create_dir_all(s.path("src")).unwrap();
    let out = s.run(&["-mode", "fsnotify", "-uri", "a.png"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("-mode fsnotify") && err.contains("-uri"),
        "{err}"
    );
    let out = s.run(&["-mode", "lambda"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("iiif-process-aws lambda"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["-mode", "server"]);
    assert_exit(&out, 2);
}
