//! Google Cloud Storage against gcp-storage-emulator (see `common/gcs.rs`), for what it can show: the objects a
//! run writes arrive with the disk run's bytes and their Content-Type, a failed source writes none, and the
//! service account key comes from the environment and is never printed.
//!
//! The emulator answers object_store's XML API PUT without the ETag the client requires, so the client reports
//! each write as failed although the object is stored; the tests pin that, and read the objects back through the
//! JSON API. Nothing that reads through the XML API (GCS sources, listings, `-skip-existing`) can run against
//! it; the README's storage table says so.
//!
//! Each test starts its own emulator; they are ignored unless run with `cargo test -- --include-ignored`.

use crate::common::gcs::{self, Gcs};
use crate::common::*;
use crate::s3::{config_with, decode_bytes, INSTRUCTIONS};
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

const CACHE: &str = r#"{"uri": "gs://derivs/iiif"}"#;

fn run_gcs(setup: &Setup, g: &Gcs, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["-config", setup.path("config.json").to_str().unwrap()])
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
