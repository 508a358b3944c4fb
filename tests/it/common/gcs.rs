//! gcp-storage-emulator (PyPI), a Google Cloud Storage emulator, started by each test on a free loopback port,
//! in memory.
//!
//! The emulator implements GCS's JSON API; of the XML API, which object_store's GCS client speaks, it has only
//! a PUT answered without the ETag object_store requires (the object is stored, the client reports a failure),
//! a GET without ETag and Last-Modified, and no HEAD or listing. So the tests write with the binary and read
//! back through the JSON API (the test's own client, below); the README's storage table says what that leaves.

use super::emulator::{self, Emulator};
use serde_json::Value;
use std::process::Command;

/// The private key of the service account the binary is given: distinctive, so tests can check that it is never
/// printed. `disable_oauth` means no token is asked for it, as object_store documents for emulators.
pub const PRIVATE_KEY: &str = "gcs-private-key-never-printed";

/// The reason on every test that needs the emulator.
pub const IGNORED: &str = "needs gcp-storage-emulator on PATH (pip install gcp-storage-emulator)";

pub struct Gcs {
    pub server: Emulator,
}

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

    /// Every object's name in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let listed = self.json("GET", &format!("/storage/v1/b/{bucket}/o"), &[]);
        let mut keys: Vec<String> = listed["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| i["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
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
