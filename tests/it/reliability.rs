//! Runs that must finish: regressions for hangs of earlier run loops.

use crate::common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Twelve derivatives of every source, all small, so that a source's work is many short rayon tasks.
const TWELVE: &str = r#"{
  "a": {"size": "!64,64"}, "b": {"size": "48,"}, "c": {"size": ",40"}, "d": {"size": "32,32"},
  "e": {"size": "pct:5"}, "f": {"size": "!64,64", "format": "png"}, "g": {"size": "!56,56", "quality": "gray"},
  "h": {"region": "square", "size": "40,"}, "i": {"region": "0,0,300,200", "size": "60,"},
  "j": {"region": "pct:25,25,50,50", "size": "!50,50", "format": "png"},
  "k": {"size": "!64,64", "rotation": "90"}, "l": {"region": "-1,-1,64,64", "size": "32,"}
}"#;
const SOURCES: usize = 24;
const LABELS: usize = 12;

/// An earlier run loop took sources on the rayon pool and bounded them with a semaphore: a worker holding a slot,
/// while it waited for its own derivatives' tasks, could pick up another source and block on the semaphore, so
/// its slot never came back and the run hung. The hang depended on scheduling, so each combination of pool size
/// and -jobs runs several times, each under a time limit, and must write everything.
#[test]
fn many_sources_on_a_small_pool_finish() {
    let files: Vec<(String, std::path::PathBuf)> = (0..SOURCES)
        .map(|i| (format!("d/p{i:02}.jpg"), fixture("landscape.jpg")))
        .collect();
    let refs: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let s = Setup::new(FULL_CONFIG, TWELVE, &refs);
    for (threads, jobs) in [("8", "1"), ("4", "2")] {
        for round in 0..4 {
            let _ = std::fs::remove_dir_all(s.path("out")); // absent before the first round
            let mut child = s
                .command(&["-uri", "d", "-jobs", jobs])
                .env("RAYON_NUM_THREADS", threads)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Drain the pipes while waiting, so that a full pipe cannot look like a hang.
            let mut stdout = child.stdout.take().unwrap();
            let mut stderr = child.stderr.take().unwrap();
            let out = std::thread::spawn(move || {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
            });
            let err = std::thread::spawn(move || {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut stderr, &mut v).map(|_| v)
            });
            let deadline = Instant::now() + Duration::from_secs(60);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill(); // it may have exited just now
                    let _ = child.wait();
                    panic!(
                        "RAYON_NUM_THREADS={threads} -jobs {jobs}, round {round}: not finished in 60 s"
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let stdout = out.join().unwrap().unwrap();
            let stderr = String::from_utf8_lossy(&err.join().unwrap().unwrap()).into_owned();
            let what = format!("RAYON_NUM_THREADS={threads} -jobs {jobs}, round {round}");
            assert_eq!(status.code(), Some(0), "{what}: {stderr}");
            let r: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
            assert_eq!(r.as_object().unwrap().len(), SOURCES, "{what}");
            for (name, _) in &files {
                let uris = r[name]["uris"].as_object().unwrap();
                assert_eq!(uris.len(), LABELS, "{what}: {name}");
                for rel in uris.values() {
                    let path = s.path("out").join(rel.as_str().unwrap());
                    assert!(path.is_file(), "{what}: {} not written", path.display());
                }
            }
            assert_eq!(
                count_files(&s.path("out")),
                SOURCES * LABELS,
                "{what}: files under out/"
            );
        }
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}
