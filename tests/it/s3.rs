//! Object storage: sources and derivatives in S3 buckets of a local moto server, compared with the same run on
//! disk; -skip-existing against S3; the store's own guarantees (HEAD for exists, multipart, many threads); and
//! faults: a server gone, frozen, or back within the retry time, and a multipart upload that fails.
//!
//! Each test that needs it starts its own moto server (see `common/moto.rs`); those tests are ignored unless
//! run with `cargo test -- --include-ignored` (as `.ci/run` does).

use crate::common::moto;
use crate::common::relay::Relay;
use crate::common::*;
use iiif_process::store::{Store, StoreError, StoreOptions};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const INSTRUCTIONS: &str = r#"{
  "o": {"size": "full", "format": "", "rotation": "-1"},
  "b": {"size": "!256,256"},
  "sq": {"region": "square", "size": "64,", "format": "png"},
  "g": {"size": "!128,128", "quality": "gray"},
  "d": {"size": "!96,96", "quality": "dither", "format": "png"}
}"#;

/// [`FULL_CONFIG`] with other images.source and derivatives.cache entries.
pub(crate) fn config_with(source: &str, cache: &str) -> String {
    let c = FULL_CONFIG
        .replace(r#"{"name": "Disk", "path": "src"}"#, source)
        .replace(r#"{"name": "Disk", "path": "out"}"#, cache);
    assert_ne!(c, FULL_CONFIG);
    c
}

const S3_SOURCE: &str = r#"{"uri": "s3://masters/scans?region=us-east-1"}"#;
const S3_CACHE: &str =
    r#"{"uri": "s3blob://derivs?prefix=iiif&region=us-east-1&credentials=env:"}"#;

/// The binary with `setup`'s config and instructions against `endpoint`.
fn s3_command(setup: &Setup, endpoint: &str, args: &[&str]) -> Command {
    let config = setup.path("config.json");
    let instructions = setup.path("instructions.json");
    let mut cmd = Command::new(bin());
    cmd.args(["-config", config.to_str().unwrap()])
        .args(["-instructions", instructions.to_str().unwrap()])
        .args(args)
        .current_dir(setup.dir.path())
        .stdin(Stdio::null());
    moto::s3_env(&mut cmd, endpoint);
    cmd
}

/// Run the binary with `setup`'s config and instructions against `endpoint`.
fn run_s3(setup: &Setup, endpoint: &str, args: &[&str]) -> Output {
    s3_command(setup, endpoint, args).output().unwrap()
}

/// A run of the binary in the background.
struct Running {
    pid: u32,
    started: Instant,
    done: std::sync::mpsc::Receiver<std::io::Result<Output>>,
}

fn spawn_s3(setup: &Setup, endpoint: &str, args: &[&str]) -> Running {
    let child = s3_command(setup, endpoint, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, done) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    Running {
        pid,
        started: Instant::now(),
        done,
    }
}

impl Running {
    /// Its output and how long it ran; killed, and the test failed, when it runs past `limit`.
    fn wait(self, limit: Duration) -> (Output, Duration) {
        match self.done.recv_timeout(limit) {
            Ok(out) => (out.unwrap(), self.started.elapsed()),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.pid.to_string()])
                    .status();
                panic!("the run took more than {limit:?}");
            }
        }
    }
}

fn assert_no_secret(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(
            !text.contains(moto::SECRET_KEY),
            "the secret key was printed:\n{text}"
        );
    }
}

pub(crate) fn decode_bytes(bytes: &[u8]) -> image::DynamicImage {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .decode()
        .unwrap()
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn a_run_from_s3_to_s3_matches_the_same_run_on_disk() {
    let m = moto::start();
    m.create_bucket("masters");
    m.create_bucket("derivs");
    let files = [
        ("coll/IMG_0084.JPG", example("source/IMG_0084.JPG")),
        ("coll/IMG_0107.JPG", example("source/IMG_0107.JPG")),
        ("coll/sub/bad.jpg", hostile("truncated.jpg")),
        ("coll/.hidden.jpg", fixture("landscape.jpg")),
    ];
    for (name, path) in &files {
        m.put(
            "masters",
            &format!("scans/{name}"),
            std::fs::read(path).unwrap(),
        );
    }
    let disk = Setup::new(FULL_CONFIG, INSTRUCTIONS, &files);
    let disk_out = disk.run(&["-uri", "coll", "-report"]);
    assert_exit(&disk_out, 1);
    let s3 = Setup::new(&config_with(S3_SOURCE, S3_CACHE), INSTRUCTIONS, &[]);
    let s3_out = run_s3(&s3, &m.endpoint, &["-uri", "coll", "-report"]);
    assert_exit(&s3_out, 1);
    assert_no_secret(&s3_out);

    let (dr, sr) = (stdout_json(&disk_out), stdout_json(&s3_out));
    let sources: Vec<&String> = sr.as_object().unwrap().keys().collect();
    assert_eq!(
        sources,
        ["coll/IMG_0084.JPG", "coll/IMG_0107.JPG", "coll/sub/bad.jpg"],
        "a directory prefix lists every object below it, hidden ones left out"
    );
    for uri in &sources {
        let (d, s) = (&dr[uri.as_str()], &sr[uri.as_str()]);
        for key in [
            "dimensions",
            "uris",
            "palette",
            "blurhash",
            "imagehash",
            "origin",
            "origin_uri",
            "origin_fingerprint",
        ] {
            assert_eq!(d[key], s[key], "{uri}: {key}");
        }
        let labels = |v: &Value| {
            v["errors"]
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(labels(d), labels(s), "{uri}: errors");
    }
    let bad = &sr["coll/sub/bad.jpg"]["errors"]["b"];
    assert!(
        bad.as_str()
            .unwrap()
            .contains("s3://masters/scans/coll/sub/bad.jpg"),
        "{bad}"
    );

    // Every derivative is in the bucket, with the pixels of the one on disk.
    let mut expected = BTreeSet::new();
    for uri in ["coll/IMG_0084.JPG", "coll/IMG_0107.JPG"] {
        for (label, rel) in sr[uri]["uris"].as_object().unwrap() {
            let rel = rel.as_str().unwrap();
            let bytes = m
                .get("derivs", &format!("iiif/{rel}"))
                .unwrap_or_else(|| panic!("{uri} {label}: no object iiif/{rel}"));
            let from_s3 = decode_bytes(&bytes);
            let on_disk = disk.output(rel);
            assert_eq!(
                (from_s3.width(), from_s3.height()),
                (on_disk.width(), on_disk.height()),
                "{rel}"
            );
            let d = &sr[uri]["dimensions"][label];
            assert_eq!(
                [from_s3.width() as u64, from_s3.height() as u64],
                [d[0].as_u64().unwrap(), d[1].as_u64().unwrap()],
                "{rel}"
            );
            assert!(
                from_s3.as_bytes() == on_disk.as_bytes(),
                "{rel}: the pixels differ from the disk run's"
            );
            expected.insert(format!("iiif/{rel}"));
        }
        // The report file, written last, says what the disk run's says.
        let key = format!("iiif/{uri}/process.json");
        let report: Value = serde_json::from_slice(&m.get("derivs", &key).unwrap()).unwrap();
        let on_disk: Value = serde_json::from_slice(
            &std::fs::read(disk.path(&format!("out/{uri}/process.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report, on_disk, "{key}");
        expected.insert(key);
    }
    // Nothing else: the failed source left no object at all, and the source bucket is untouched.
    let written: BTreeSet<String> = m.keys("derivs").into_iter().collect();
    assert_eq!(written, expected);
    assert!(!written
        .iter()
        .any(|k| k.starts_with("iiif/coll/sub/bad.jpg")));
    assert_eq!(m.keys("masters").len(), files.len());

    // One source named by its key, and a missing one.
    let out = run_s3(
        &s3,
        &m.endpoint,
        &["-uri", "coll/IMG_0107.JPG", "-uri", "coll/missing.jpg"],
    );
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert_eq!(
        r["coll/IMG_0107.JPG"]["uris"],
        sr["coll/IMG_0107.JPG"]["uris"]
    );
    let e = r["coll/missing.jpg"]["errors"]["b"].as_str().unwrap();
    assert!(
        e.contains("s3://masters/scans/coll/missing.jpg") && e.contains("not found"),
        "{e}"
    );
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn skip_existing_against_s3_heads_every_derivative_and_writes_nothing() {
    let m = moto::start();
    m.create_bucket("masters");
    m.create_bucket("derivs");
    m.put(
        "masters",
        "scans/a.jpg",
        std::fs::read(fixture("landscape.jpg")).unwrap(),
    );
    m.put(
        "masters",
        "scans/b.jpg",
        std::fs::read(fixture("portrait.jpg")).unwrap(),
    );
    let s = Setup::new(&config_with(S3_SOURCE, S3_CACHE), INSTRUCTIONS, &[]);
    let args = [
        "-uri",
        "a.jpg",
        "-uri",
        "b.jpg",
        "-report",
        "-skip-existing",
    ];
    let first = run_s3(&s, &m.endpoint, &args);
    assert_exit(&first, 0);
    let report = stdout_json(&first);
    // Keys, ETags and sizes (moto's LastModified in listings is not stable to the second).
    let contents = || -> Vec<_> {
        m.list("derivs")
            .into_iter()
            .map(|l| (l.key, l.e_tag, l.size))
            .collect()
    };
    let before = contents();
    assert_eq!(
        before.len(),
        2 * 6,
        "five derivatives and a report for each source"
    );

    m.start_recording();
    let again = run_s3(&s, &m.endpoint, &args);
    let requests = m.stop_recording();
    assert_exit(&again, 0);
    assert_eq!(stdout_json(&again), report);
    assert_no_secret(&again);
    assert_eq!(contents(), before, "nothing was rewritten");
    let writes: Vec<_> = requests
        .iter()
        .filter(|(method, _, _)| method != "GET" && method != "HEAD")
        .collect();
    assert!(writes.is_empty(), "{writes:?}\n{requests:?}");
    for uri in ["a.jpg", "b.jpg"] {
        for rel in report[uri]["uris"].as_object().unwrap().values() {
            let path = format!("/derivs/iiif/{}", rel.as_str().unwrap());
            assert!(
                requests.iter().any(|(m, p, _)| m == "HEAD" && *p == path),
                "no HEAD of {path}: {requests:?}"
            );
            assert!(
                !requests.iter().any(|(m, p, _)| m == "GET" && *p == path),
                "{path} was downloaded"
            );
        }
    }

    // A derivative that went missing is made again, alone, and the report after it.
    let lost = report["b.jpg"]["uris"]["sq"].as_str().unwrap().to_string();
    m.delete("derivs", &format!("iiif/{lost}"));
    m.start_recording();
    let third = run_s3(&s, &m.endpoint, &args);
    let requests = m.stop_recording();
    assert_exit(&third, 0);
    let puts: Vec<&str> = requests
        .iter()
        .filter(|(method, _, _)| method != "GET" && method != "HEAD")
        .map(|(method, p, _)| {
            assert_eq!(method, "PUT");
            p.as_str()
        })
        .collect();
    assert_eq!(
        puts,
        [
            format!("/derivs/iiif/{lost}"),
            "/derivs/iiif/b.jpg/process.json".to_string()
        ]
    );
    assert_eq!(m.keys("derivs").len(), before.len());
}

#[test]
fn absolute_paths_are_refused_for_an_object_store_source() {
    // No request is made: the endpoint is never contacted.
    let s = Setup::new(&config_with(S3_SOURCE, S3_CACHE), INSTRUCTIONS, &[]);
    let abs = s.path("src/x.jpg");
    let out = run_s3(&s, "http://127.0.0.1:9", &["-uri", abs.to_str().unwrap()]);
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert!(
        e.contains("absolute path") && e.contains("s3://masters/scans"),
        "{e}"
    );
}

#[test]
fn azure_without_an_account_is_a_config_error() {
    let s = Setup::new(
        &config_with(r#"{"uri": "azblob://container/masters"}"#, S3_CACHE),
        INSTRUCTIONS,
        &[],
    );
    let config = s.path("config.json");
    let instructions = s.path("instructions.json");
    let mut cmd = Command::new(bin());
    cmd.args(["-config", config.to_str().unwrap()]).args([
        "-instructions",
        instructions.to_str().unwrap(),
        "-uri",
        "a.jpg",
    ]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AZURE_") {
            cmd.env_remove(k);
        }
    }
    // Nothing is contacted: the config is refused before any request.
    let out = moto::s3_env(&mut cmd, "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("cannot open az://container/masters"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn the_store_from_many_rayon_threads_at_once() {
    let m = moto::start();
    m.create_bucket("lib");
    let store = m.store("lib", "pre/fix", &StoreOptions::default());
    let body = |i: usize| format!("object {i} ").repeat(i * 37 + 1).into_bytes();
    (0..64usize).into_par_iter().for_each(|i| {
        let key = format!("many/{:02}/o.bin", i);
        assert!(!store.exists(&key).unwrap());
        store.write(&key, &body(i)).unwrap();
        assert!(store.exists(&key).unwrap());
        assert_eq!(store.read(&key).unwrap(), body(i));
    });
    let listed = store.list("many").unwrap().unwrap();
    assert_eq!(listed.len(), 64);
    assert_eq!(listed[0], "many/00/o.bin");
    assert!(listed.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        store.list("many/00/o.bin").unwrap(),
        None,
        "an object is not a directory"
    );
    assert_eq!(store.list("nothing").unwrap(), None);
    assert!(m.keys("lib").iter().all(|k| k.starts_with("pre/fix/many/")));
    match store.read("many/missing.bin") {
        Err(StoreError::NotFound { path }) => assert_eq!(path, "s3://lib/pre/fix/many/missing.bin"),
        other => panic!("{other:?}"),
    }
    // An object whose key continues below it is still a file.
    store.write("both", b"file").unwrap();
    store.write("both/below", b"x").unwrap();
    assert_eq!(store.list("both").unwrap(), None);
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn large_bodies_are_multipart_uploads() {
    let m = moto::start();
    m.create_bucket("big");
    let store = m.store(
        "big",
        "",
        &StoreOptions {
            multipart_threshold: 5 << 20,
            ..StoreOptions::default()
        },
    );
    let body: Vec<u8> = (0..(37u32 << 20) / 4)
        .flat_map(|i| i.to_le_bytes())
        .collect();
    m.start_recording();
    store.write("large.tif", &body).unwrap();
    store.write("small.jpg", b"small").unwrap();
    let requests = m.stop_recording();
    let uploads = requests
        .iter()
        .filter(|(method, p, q)| {
            method == "POST" && p == "/big/large.tif" && q.starts_with("uploads")
        })
        .count();
    let parts = requests
        .iter()
        .filter(|(method, p, q)| {
            method == "PUT" && p == "/big/large.tif" && q.contains("partNumber")
        })
        .count();
    assert_eq!((uploads, parts), (1, 3), "{requests:?}");
    assert!(requests
        .iter()
        .any(|(method, p, q)| method == "PUT" && p == "/big/small.jpg" && q.is_empty()));
    assert!(store.read("large.tif").unwrap() == body);
    assert_eq!(m.get("big", "small.jpg").unwrap(), b"small");
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn s3_event_names_sources_below_the_source_prefix() {
    let m = moto::start();
    m.create_bucket("masters");
    m.create_bucket("derivs");
    m.put(
        "masters",
        "scans/new photo.jpg",
        std::fs::read(fixture("landscape.jpg")).unwrap(),
    );
    let record = |bucket: &str, key: &str| {
        serde_json::json!({"eventName": "ObjectCreated:Put", "eventSource": "aws:s3",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}})
    };
    let event = serde_json::json!({"Records": [
        record("masters", "scans/new+photo.jpg"),
        record("masters", "elsewhere/x.jpg"),
        record("other", "scans/y.jpg"),
    ]});
    let s = Setup::new(&config_with(S3_SOURCE, S3_CACHE), INSTRUCTIONS, &[]);
    std::fs::write(s.path("event.json"), event.to_string()).unwrap();
    let out = run_s3(&s, &m.endpoint, &["-s3-event", "event.json"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let sources: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(sources, ["new photo.jpg"]);
    let err = stderr(&out);
    assert!(
        err.contains("s3://masters/elsewhere/x.jpg is not under the source s3://masters/scans")
            && err.contains("s3://other/scans/y.jpg"),
        "{err}"
    );
    assert!(m
        .get("derivs", "iiif/new photo.jpg/full/!256,256/0/color.jpg")
        .is_some());
}

/// A disk source with `files` and the derivatives in the S3 bucket `derivs`.
fn disk_to_s3(files: &[(&str, std::path::PathBuf)]) -> Setup {
    Setup::new(
        &config_with(r#"{"name": "Disk", "path": "src"}"#, S3_CACHE),
        INSTRUCTIONS,
        files,
    )
}

/// Retries and timeouts of seconds, so that each fault costs seconds.
fn short(retry_ms: u64, timeout_ms: u64) -> StoreOptions {
    StoreOptions {
        retry_time: Duration::from_millis(retry_ms),
        timeout: Duration::from_millis(timeout_ms),
        connect_timeout: Duration::from_millis(timeout_ms),
        ..StoreOptions::default()
    }
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn a_server_gone_fails_each_derivative_after_the_retry_time() {
    let mut m = moto::start();
    m.create_bucket("derivs");
    let s = disk_to_s3(&[
        ("a.jpg", fixture("landscape.jpg")),
        ("b.jpg", fixture("portrait.jpg")),
    ]);
    m.kill();
    let args = [
        "-uri",
        "a.jpg",
        "-uri",
        "b.jpg",
        "-storage-retry-time",
        "1s",
        "-storage-timeout",
        "2s",
    ];
    let (out, took) = spawn_s3(&s, &m.endpoint, &args).wait(Duration::from_secs(60));
    assert_exit(&out, 1);
    assert_no_secret(&out);
    let r = stdout_json(&out);
    for uri in ["a.jpg", "b.jpg"] {
        let errors = r[uri]["errors"].as_object().unwrap();
        assert_eq!(errors.len(), 5, "every derivative failed: {}", r[uri]);
        for (label, e) in errors {
            let e = e.as_str().unwrap();
            // Named by its object, and retried (a refused connection is otherwise given up at once).
            assert!(
                e.contains(&format!("s3://derivs/iiif/{uri}/")) && e.contains(" retries"),
                "{uri} {label}: {e}"
            );
        }
    }
    // Refused connections fail at once, so only the retries make the run last the retry time; and each
    // derivative gives up after about that long, not minutes.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn a_frozen_server_fails_a_request_within_about_the_timeout() {
    let m = moto::start();
    m.create_bucket("lib");
    m.put("lib", "k.bin", b"body".to_vec());
    let store = m.store("lib", "", &short(500, 1000));
    assert_eq!(store.read("k.bin").unwrap(), b"body");
    // Stopped, the server's port still accepts connections (the kernel does), but nothing answers.
    m.freeze();
    let started = Instant::now();
    let read = store.read("k.bin");
    let took = started.elapsed();
    m.thaw();
    match read {
        Err(StoreError::Remote { path, .. }) => assert_eq!(path, "s3://lib/k.bin"),
        other => panic!("{other:?}"),
    }
    assert!(
        took >= Duration::from_secs(1),
        "it failed before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    // Thawed, the server answers again.
    assert_eq!(m.get("lib", "k.bin").unwrap(), b"body");
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn a_server_back_within_the_retry_time_lets_the_run_succeed() {
    let m = moto::start();
    m.create_bucket("derivs");
    // The relay's port is the server's address for the run; stopped, it refuses connections.
    let mut relay = Relay::start(m.port());
    let s = disk_to_s3(&[("a.jpg", fixture("landscape.jpg"))]);
    relay.stop();
    let run = spawn_s3(
        &s,
        &relay.endpoint(),
        &[
            "-uri",
            "a.jpg",
            "-storage-retry-time",
            "30s",
            "-storage-timeout",
            "5s",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    relay.restart();
    let (out, took) = run.wait(Duration::from_secs(60));
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert!(r["a.jpg"]["errors"].is_null(), "{}", r["a.jpg"]);
    let written = m.keys("derivs");
    assert_eq!(written.len(), 5, "{written:?}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn a_failed_multipart_upload_is_aborted() {
    let m = moto::start();
    m.create_bucket("big");
    let store = m.store(
        "big",
        "",
        &StoreOptions {
            multipart_threshold: 5 << 20,
            ..short(3000, 1000)
        },
    );
    // Five parts, four at once: the upload takes a while after it has begun.
    let body = vec![7u8; 80 << 20];
    m.start_recording();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let written = store.write("large.tif", &body);
        let _ = tx.send((written, started.elapsed()));
    });
    // Freeze the server once it has begun the upload, before its parts are in.
    let began = Instant::now();
    while !m
        .stop_recording()
        .iter()
        .any(|(method, p, q)| method == "POST" && p == "/big/large.tif" && q.starts_with("uploads"))
    {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the upload did not begin"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The server logs a request before its answer is out: freezing it at once could keep the upload's id from the
    // client, and an upload the client does not know of cannot be aborted (only a lifecycle rule removes it).
    // Parts of 16 MiB take far longer than this to go in.
    std::thread::sleep(Duration::from_millis(30));
    m.freeze();
    let frozen = Instant::now();
    // Each part's attempts time out (1 s) until its retry time (3 s) is spent, by about 4.75 s; then the abort is
    // sent, and retried for at least twice the retry time. Thawed in between, the server gets the abort.
    std::thread::sleep(Duration::from_millis(6500));
    m.thaw();
    let (written, took) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the write did not end within 30 s of the thaw");
    match written {
        Err(StoreError::Remote { path, message }) => {
            assert_eq!(path, "s3://big/large.tif");
            assert!(!message.contains("uploadId"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        frozen.elapsed() < Duration::from_secs(20),
        "{took:?} {:?}",
        frozen.elapsed()
    );
    let mut uploads = m.uploads("big");
    for _ in 0..50 {
        if uploads.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        uploads = m.uploads("big");
    }
    assert!(
        uploads.is_empty(),
        "incomplete uploads left: {uploads:?}\nrequests: {:?}",
        m.stop_recording()
    );
    assert_eq!(m.get("big", "large.tif"), None);
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn every_object_is_served_with_its_content_type_and_the_cache_control() {
    let m = moto::start();
    m.create_bucket("derivs");
    let instructions = r#"{
      "j": {"size": "!64,64", "format": "jpg"},
      "p": {"size": "!64,64", "format": "png"},
      "w": {"size": "!64,64", "format": "webp"},
      "g": {"size": "!64,64", "format": "gif"},
      "t": {"size": "!64,64", "format": "tif"}
    }"#;
    // The config key, and the flag that wins over it.
    let config = config_with(r#"{"name": "Disk", "path": "src"}"#, S3_CACHE).replace(
        r#""derivatives": {"#,
        r#""derivatives": {"cache_control": "public, max-age=600", "#,
    );
    let s = Setup::new(&config, instructions, &[("a.png", fixture("rgba.png"))]);
    let expected = [
        ("j", "image/jpeg"),
        ("p", "image/png"),
        ("w", "image/webp"),
        ("g", "image/gif"),
        ("t", "image/tiff"),
    ];
    for (args, cache_control) in [
        (&["-uri", "a.png", "-report"][..], "public, max-age=600"),
        (
            &["-uri", "a.png", "-report", "-cache-control", "no-cache"][..],
            "no-cache",
        ),
    ] {
        let out = run_s3(&s, &m.endpoint, args);
        assert_exit(&out, 0);
        let r = stdout_json(&out);
        let mut keys: Vec<String> = expected
            .iter()
            .map(|(label, _)| format!("iiif/{}", r["a.png"]["uris"][label].as_str().unwrap()))
            .collect();
        keys.push("iiif/a.png/process.json".into());
        assert_eq!(m.keys("derivs").len(), keys.len());
        let types = expected.iter().map(|(_, t)| *t).chain(["application/json"]);
        for (key, content_type) in keys.iter().zip(types) {
            assert_eq!(
                m.served_as("derivs", key),
                (
                    Some(content_type.to_string()),
                    Some(cache_control.to_string())
                ),
                "{key}"
            );
        }
    }
}

#[test]
fn a_bad_cache_control_is_a_settings_error() {
    let s = disk_to_s3(&[("a.jpg", fixture("landscape.jpg"))]);
    let out = run_s3(
        &s,
        "http://127.0.0.1:9",
        &[
            "-uri",
            "a.jpg",
            "-cache-control",
            "max-age=1\r\nx-amz-acl: public-read",
        ],
    );
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert!(
        e.contains("-cache-control") && e.contains("printable ASCII"),
        "{e}"
    );
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn config_instructions_and_manifest_are_read_from_a_bucket() {
    let m = moto::start();
    for bucket in ["conf", "masters", "derivs"] {
        m.create_bucket(bucket);
    }
    m.put(
        "masters",
        "scans/a.jpg",
        std::fs::read(fixture("landscape.jpg")).unwrap(),
    );
    m.put(
        "conf",
        "iiif/config.json",
        config_with(S3_SOURCE, S3_CACHE).into_bytes(),
    );
    m.put(
        "conf",
        "iiif/instructions.json",
        INSTRUCTIONS.as_bytes().to_vec(),
    );
    m.put("conf", "iiif/manifest.txt", b"# today\na.jpg\n".to_vec());
    let dir = tempdir();
    let run = |config: &str| {
        let mut cmd = Command::new(bin());
        cmd.args(["-config", config])
            .args(["-instructions", "s3://conf/iiif/instructions.json"])
            .args(["-manifest", "s3://conf/iiif/manifest.txt"])
            .current_dir(dir.path())
            .stdin(Stdio::null());
        moto::s3_env(&mut cmd, &m.endpoint).output().unwrap()
    };
    let out = run("s3://conf/iiif/config.json");
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let sources: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(sources, ["a.jpg"]);
    assert_eq!(m.keys("derivs").len(), 5);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was written to the working directory"
    );

    // A missing object stops the run before any work, naming it.
    let out = run("s3://conf/iiif/missing.json");
    assert_exit(&out, 2);
    assert_no_secret(&out);
    let e = stderr(&out);
    assert!(
        e.contains("cannot read the config: s3://conf/iiif/missing.json: not found"),
        "{e}"
    );
}
