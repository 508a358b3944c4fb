//! Azure Blob Storage: the S3 tests' end-to-end cases against Azurite (see `common/azurite.rs`): a run from one
//! container to another compared with the same run on disk, `-skip-existing` reruns that write nothing, the
//! Content-Type and Cache-Control of every object, and credentials taken from the environment and never printed.
//!
//! Each test starts its own Azurite; they are ignored unless run with `cargo test -- --include-ignored`.

use crate::common::azurite::{self, Azurite};
use crate::common::*;
use crate::s3::{config_with, decode_bytes, INSTRUCTIONS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

const SOURCE: &str = r#"{"uri": "azblob://masters/scans"}"#;
const CACHE: &str = r#"{"uri": "az://derivs?prefix=iiif&credentials=env:"}"#;

fn command(setup: &Setup, az: &Azurite, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["-config", setup.path("config.json").to_str().unwrap()])
        .args([
            "-instructions",
            setup.path("instructions.json").to_str().unwrap(),
        ])
        .args(args)
        .current_dir(setup.dir.path())
        .stdin(Stdio::null());
    az.env(&mut cmd);
    cmd
}

fn run_azure(setup: &Setup, az: &Azurite, args: &[&str]) -> Output {
    command(setup, az, args).output().unwrap()
}

fn assert_no_secret(out: &Output) {
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(
            !text.contains(azurite::ACCOUNT_KEY),
            "the account key was printed:\n{text}"
        );
    }
}

/// The Content-Type an object written at `key` must be served with.
fn expected_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap() {
        "jpg" => "image/jpeg",
        "png" => "image/png",
        "json" => "application/json",
        other => panic!("unexpected extension {other} of {key}"),
    }
}

#[test]
#[ignore = "needs azurite-blob on PATH (npm install azurite)"]
fn a_run_from_azure_to_azure_matches_the_same_run_on_disk() {
    let az = azurite::start();
    az.create_container("masters");
    az.create_container("derivs");
    let files = [
        ("coll/IMG_0084.JPG", example("source/IMG_0084.JPG")),
        ("coll/sub/portrait.jpg", fixture("portrait.jpg")),
        ("coll/sub/bad.jpg", hostile("truncated.jpg")),
        ("coll/.hidden.jpg", fixture("landscape.jpg")),
    ];
    for (name, path) in &files {
        az.put(
            "masters",
            &format!("scans/{name}"),
            std::fs::read(path).unwrap(),
        );
    }
    let disk = Setup::new(FULL_CONFIG, INSTRUCTIONS, &files);
    let disk_out = disk.run(&["-uri", "coll", "-report"]);
    assert_exit(&disk_out, 1);
    let s = Setup::new(&config_with(SOURCE, CACHE), INSTRUCTIONS, &[]);
    let cache_control = "public, max-age=31536000, immutable";
    let out = run_azure(
        &s,
        &az,
        &["-uri", "coll", "-report", "-cache-control", cache_control],
    );
    assert_exit(&out, 1);
    assert_no_secret(&out);

    let (dr, ar) = (stdout_json(&disk_out), stdout_json(&out));
    let sources: Vec<&String> = ar.as_object().unwrap().keys().collect();
    assert_eq!(
        sources,
        [
            "coll/IMG_0084.JPG",
            "coll/sub/bad.jpg",
            "coll/sub/portrait.jpg"
        ],
        "a directory-style prefix lists every blob below it, hidden ones left out"
    );
    for uri in &sources {
        let (d, a) = (&dr[uri.as_str()], &ar[uri.as_str()]);
        for key in [
            "dimensions",
            "uris",
            "palette",
            "blurhash",
            "imagehash",
            "origin_fingerprint",
        ] {
            assert_eq!(d[key], a[key], "{uri}: {key}");
        }
    }
    let bad = ar["coll/sub/bad.jpg"]["errors"]["b"].as_str().unwrap();
    assert!(bad.contains("az://masters/scans/coll/sub/bad.jpg"), "{bad}");

    // Every derivative is in the container with the disk run's pixels, and is served as what it is.
    let mut expected = BTreeSet::new();
    for uri in ["coll/IMG_0084.JPG", "coll/sub/portrait.jpg"] {
        for (label, rel) in ar[uri]["uris"].as_object().unwrap() {
            let rel = rel.as_str().unwrap();
            let key = format!("iiif/{rel}");
            let bytes = az
                .get("derivs", &key)
                .unwrap_or_else(|| panic!("{uri} {label}: no blob {key}"));
            let (from_azure, on_disk) = (decode_bytes(&bytes), disk.output(rel));
            assert!(
                from_azure.as_bytes() == on_disk.as_bytes(),
                "{rel}: the pixels differ from the disk run's"
            );
            expected.insert(key);
        }
        let key = format!("iiif/{uri}/process.json");
        let report: Value = serde_json::from_slice(&az.get("derivs", &key).unwrap()).unwrap();
        let on_disk: Value = serde_json::from_slice(
            &std::fs::read(disk.path(&format!("out/{uri}/process.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report, on_disk, "{key}");
        expected.insert(key);
    }
    // Nothing else: the failed source left no blob at all, and the source container is untouched.
    let written: BTreeSet<String> = az.keys("derivs").into_iter().collect();
    assert_eq!(written, expected);
    assert_eq!(az.keys("masters").len(), files.len());
    for key in &written {
        assert_eq!(
            az.served_as("derivs", key),
            (
                Some(expected_type(key).to_string()),
                Some(cache_control.to_string())
            ),
            "{key}"
        );
    }

    // One source named by its key, and a missing one.
    let out = run_azure(
        &s,
        &az,
        &["-uri", "coll/sub/portrait.jpg", "-uri", "coll/missing.jpg"],
    );
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert_eq!(
        r["coll/sub/portrait.jpg"]["uris"],
        ar["coll/sub/portrait.jpg"]["uris"]
    );
    let e = r["coll/missing.jpg"]["errors"]["b"].as_str().unwrap();
    assert!(
        e.contains("az://masters/scans/coll/missing.jpg") && e.contains("not found"),
        "{e}"
    );
}

#[test]
#[ignore = "needs azurite-blob on PATH (npm install azurite)"]
fn skip_existing_against_azure_heads_every_derivative_and_writes_nothing() {
    let az = azurite::start();
    az.create_container("masters");
    az.create_container("derivs");
    az.put(
        "masters",
        "scans/a.jpg",
        std::fs::read(fixture("landscape.jpg")).unwrap(),
    );
    az.put(
        "masters",
        "scans/b.jpg",
        std::fs::read(fixture("portrait.jpg")).unwrap(),
    );
    let s = Setup::new(&config_with(SOURCE, CACHE), INSTRUCTIONS, &[]);
    let args = [
        "-uri",
        "a.jpg",
        "-uri",
        "b.jpg",
        "-report",
        "-skip-existing",
    ];
    let first = run_azure(&s, &az, &args);
    assert_exit(&first, 0);
    let report = stdout_json(&first);
    let contents = || -> Vec<_> {
        az.list("derivs")
            .into_iter()
            .map(|l| (l.key, l.e_tag, l.size, l.last_modified))
            .collect()
    };
    let before = contents();
    assert_eq!(before.len(), 2 * 6, "five derivatives and a report each");
    for (key, ..) in &before {
        assert_eq!(
            az.served_as("derivs", key).0.as_deref(),
            Some(expected_type(key)),
            "{key}"
        );
    }

    az.server.start_recording();
    let again = run_azure(&s, &az, &args);
    let requests = az.server.requests();
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
            let path = format!(
                "/{}/derivs/iiif/{}",
                azurite::ACCOUNT,
                rel.as_str().unwrap()
            );
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
    az.server.start_recording();
    az.delete("derivs", &format!("iiif/{lost}"));
    // Azurite logs a request after answering it: the delete's line must not be counted as the run's.
    assert!(az.server.requests().iter().any(|(m, _, _)| m == "POST"));
    az.server.start_recording();
    let third = run_azure(&s, &az, &args);
    let requests = az.server.requests();
    assert_exit(&third, 0);
    let puts: Vec<&str> = requests
        .iter()
        .filter(|(method, _, _)| method != "GET" && method != "HEAD")
        .map(|(method, p, q)| {
            assert_eq!(method, "PUT", "{p}?{q}: {requests:?}");
            p.as_str()
        })
        .collect();
    let account = azurite::ACCOUNT;
    assert_eq!(
        puts,
        [
            format!("/{account}/derivs/iiif/{lost}"),
            format!("/{account}/derivs/iiif/b.jpg/process.json")
        ]
    );
    assert_eq!(az.keys("derivs").len(), before.len());
}

#[test]
#[ignore = "needs azurite-blob on PATH (npm install azurite)"]
fn credentials_come_from_the_environment_and_are_never_printed() {
    let az = azurite::start();
    az.create_container("derivs");
    let s = Setup::new(
        &config_with(r#"{"name": "Disk", "path": "src"}"#, CACHE),
        INSTRUCTIONS,
        &[("a.jpg", fixture("landscape.jpg"))],
    );
    // go-iiif's (Go Cloud's) names for the account and its key are read too.
    let mut cmd = command(&s, &az, &["-uri", "a.jpg"]);
    cmd.env_remove("AZURE_STORAGE_ACCOUNT_NAME")
        .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
        .env("AZURE_STORAGE_ACCOUNT", azurite::ACCOUNT)
        .env("AZURE_STORAGE_KEY", azurite::ACCOUNT_KEY);
    let out = cmd.output().unwrap();
    assert_exit(&out, 0);
    assert_no_secret(&out);
    let written = az.keys("derivs");
    assert_eq!(written.len(), 5);
    for key in &written {
        assert_eq!(
            az.served_as("derivs", key),
            (Some(expected_type(key).to_string()), None),
            "{key}: no Cache-Control unless one is asked for"
        );
    }

    // A wrong key is refused by the service: each derivative fails naming its blob, and neither key is printed.
    let wrong = "d3Jvbmcta2V5LW5ldmVyLXByaW50ZWQ=";
    let mut cmd = command(
        &s,
        &az,
        &[
            "-uri",
            "a.jpg",
            "-storage-retry-time",
            "0",
            "-skip-existing",
        ],
    );
    cmd.env("AZURE_STORAGE_ACCOUNT_KEY", wrong);
    let out = cmd.output().unwrap();
    assert_exit(&out, 1);
    assert_no_secret(&out);
    let r = stdout_json(&out);
    let errors = r["a.jpg"]["errors"].as_object().unwrap();
    assert_eq!(errors.len(), 5, "{r}");
    for e in errors.values() {
        let e = e.as_str().unwrap();
        assert!(e.contains("az://derivs/iiif/a.jpg/"), "{e}");
        assert!(!e.contains(wrong), "{e}");
    }
    assert!(!stderr(&out).contains(wrong), "{}", stderr(&out));
}

#[test]
#[ignore = "needs azurite-blob on PATH (npm install azurite)"]
fn event_grid_blob_created_names_sources_below_the_source_prefix() {
    let az = azurite::start();
    az.create_container("masters");
    az.create_container("derivs");
    az.put(
        "masters",
        "scans/new photo.jpg",
        std::fs::read(fixture("landscape.jpg")).unwrap(),
    );
    // As an Event Grid webhook receives them: the subscription's validation, then blob events.
    let event = |kind: &str, container: &str, blob: &str| {
        serde_json::json!({
            "topic": "/subscriptions/0000/resourceGroups/museum/providers/Microsoft.Storage/storageAccounts/iiiftest",
            "subject": format!("/blobServices/default/containers/{container}/blobs/{blob}"),
            "eventType": kind, "eventTime": "2026-11-25T12:00:00Z", "id": "831e1650", "dataVersion": "",
            "data": {"api": "PutBlob", "blobType": "BlockBlob", "contentType": "image/jpeg",
                "url": format!("http://127.0.0.1/iiiftest/{container}/{blob}")}})
    };
    let events = serde_json::json!([
        {"id": "2d1781af", "topic": "/subscriptions/0000", "subject": "", "data": {"validationCode": "512d38b6"},
         "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2026-11-25T12:00:00Z"},
        event("Microsoft.Storage.BlobCreated", "masters", "scans/new photo.jpg"),
        event("Microsoft.Storage.BlobCreated", "masters", "elsewhere/x.jpg"),
        event("Microsoft.Storage.BlobCreated", "other", "scans/y.jpg"),
        event("Microsoft.Storage.BlobDeleted", "masters", "scans/old.jpg"),
    ]);
    let s = Setup::new(&config_with(SOURCE, CACHE), INSTRUCTIONS, &[]);
    std::fs::write(s.path("events.json"), events.to_string()).unwrap();
    let out = run_azure(&s, &az, &["-s3-event", "events.json"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let sources: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(sources, ["new photo.jpg"]);
    let err = stderr(&out);
    assert!(
        err.contains("az://masters/elsewhere/x.jpg is not under the source az://masters/scans")
            && err.contains("az://other/scans/y.jpg")
            && err.contains("Microsoft.Storage.BlobDeleted masters/scans/old.jpg"),
        "{err}"
    );
    assert!(az
        .get("derivs", "iiif/new photo.jpg/full/!256,256/0/color.jpg")
        .is_some());
}
