//! A local S3 emulator for the object storage tests: the Python `moto` server (`pip install 'moto[server]'`),
//! started by each test on a free loopback port and killed when dropped.
//!
//! The tests that need it are `#[ignore]`d, so that a plain `cargo test` shows them as ignored rather than
//! passing without running; `cargo test -- --include-ignored` runs them (as `.ci/run` does), and then a missing
//! `moto_server` is a failure, not a skip.
//!
//! The test's own S3 client is `object_store`'s, configured explicitly (never from the environment), so what
//! the tests check does not go through the code under test. The stores under test are built as the binary
//! builds them, from the environment: [`Moto::store`] sets the dummy credentials in this process's environment.

use iiif_process::store::{Cloud, ObjectLocation, ObjectStore as Store, StoreOptions};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Dummy credentials: moto accepts any. The secret is distinctive so tests can check it is never printed.
pub const ACCESS_KEY: &str = "AKIAMOTOTESTING";
pub const SECRET_KEY: &str = "moto-secret-never-printed";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    child: Child,
    port: u16,
    pub endpoint: String,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    /// Where the access log stood at [`Moto::start_recording`].
    mark: std::cell::Cell<usize>,
}

/// One object as listed: key, ETag and last-modified time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub key: String,
    pub e_tag: Option<String>,
    pub last_modified: String,
    pub size: u64,
}

/// The reason on every test that needs a moto server.
pub const IGNORED: &str = "needs moto_server on PATH (pip install 'moto[server]')";

/// Start a moto server on a free loopback port; panics without `moto_server` on PATH.
pub fn start() -> Moto {
    start_with(&[])
}

/// As [`start`], with `env` added to the server's environment (moto's own settings, such as
/// `MOTO_SIMPLE_BATCH_FAIL_AFTER`).
pub fn start_with(env: &[(&str, &str)]) -> Moto {
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("no free loopback port")
            .port();
        if let Some(moto) = start_on(port, env) {
            return moto;
        }
    }
    panic!("moto_server did not start");
}

/// Start a moto server on `port`; `None` if it did not come up (the port was taken).
fn start_on(port: u16, env: &[(&str, &str)]) -> Option<Moto> {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
    let spawned = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "moto_server is not on PATH (pip install 'moto[server]'); the object storage tests need it"
        ),
        Err(e) => panic!("cannot start moto_server: {e}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut moto = Moto {
        child,
        port,
        endpoint: format!("http://127.0.0.1:{port}"),
        dir,
        rt,
        mark: Default::default(),
    };
    if moto.wait_ready(Duration::from_secs(60)) {
        return Some(moto);
    }
    eprintln!(
        "moto_server on port {port} did not come up:\n{}",
        moto.log()
    );
    None
}

/// The dummy credentials, set once in this process's environment: the stores
/// under test read their credentials from there, as the binary's do.
fn with_test_credentials() {
    static SET: std::sync::Once = std::sync::Once::new();
    // Set once, before any store of these tests is built, and never changed; child processes get theirs from
    // `s3_env`, which replaces every AWS_ variable.
    SET.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::remove_var("AWS_SESSION_TOKEN");
    });
}

/// A store under test for `bucket` (and `prefix`) of the server at `endpoint`, built as the binary builds one.
pub fn store_at(endpoint: &str, bucket: &str, prefix: &str, options: &StoreOptions) -> Store {
    with_test_credentials();
    let loc = ObjectLocation {
        cloud: Cloud::S3,
        bucket: bucket.into(),
        prefix: prefix.into(),
        region: Some(REGION.into()),
        endpoint: Some(endpoint.into()),
    };
    Store::new(&loc, options).unwrap_or_else(|e| panic!("{e}"))
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A store under test for `bucket` (and `prefix`) of this server.
    pub fn store(&self, bucket: &str, prefix: &str, options: &StoreOptions) -> Store {
        store_at(&self.endpoint, bucket, prefix, options)
    }

    /// Stop the server for good: connections to its port are refused from now on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send the server `signal` (STOP or CONT): stopped, it still accepts connections (the kernel does) but
    /// answers none.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn freeze(&self) {
        self.signal("STOP");
    }

    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// The keys of the multipart uploads in progress (begun, neither completed nor aborted) in `bucket`.
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        let (status, body) = self
            .request("GET", &format!("/{bucket}?uploads"))
            .unwrap_or_else(|| panic!("no answer to ListMultipartUploads of {bucket}"));
        assert_eq!(status, 200, "ListMultipartUploads of {bucket}: {body}");
        body.split("<Upload>")
            .skip(1)
            .filter_map(|u| Some(u.split_once("<Key>")?.1.split_once("</Key>")?.0.to_string()))
            .collect()
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited: the port was taken, or moto is broken
            }
            if self.raw("GET", "/moto-api/").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// What the server printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// An unsigned HTTP/1.0 request with no body; the status code, or `None` if the server did not answer.
    fn raw(&self, method: &str, path: &str) -> Option<u16> {
        self.request(method, path).map(|(status, _)| status)
    }

    /// As [`Moto::raw`], with the body of the answer.
    fn request(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    }

    /// A request to one of moto's services other than S3 (SQS, IAM, its own /moto-api/): moto routes by the
    /// service named in the signature, which it does not check. The status and the body of the answer.
    pub fn call(
        &self,
        method: &str,
        target: &str,
        service: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("moto is not answering");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0\r\n",
            self.port,
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut response = Vec::new();
        s.read_to_end(&mut response).unwrap();
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let status = String::from_utf8_lossy(&response[..end])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, response[end + 4..].to_vec())
    }

    /// The Content-Type and Cache-Control of `bucket/key`, as a HEAD request (S3's head-object) shows them.
    pub fn served_as(&self, bucket: &str, key: &str) -> (Option<String>, Option<String>) {
        let b = self.bucket(bucket);
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let got = self
            .rt
            .block_on(b.get_opts(&ObjectPath::from(key), options))
            .unwrap_or_else(|e| panic!("head {bucket}/{key}: {e}"));
        let attribute = |a| got.attributes.get(&a).map(|v| v.to_string());
        (
            attribute(Attribute::ContentType),
            attribute(Attribute::CacheControl),
        )
    }

    pub fn create_bucket(&self, name: &str) {
        assert_eq!(
            self.raw("PUT", &format!("/{name}")),
            Some(200),
            "create bucket {name}"
        );
    }

    /// The test's own client for `bucket`.
    pub fn bucket(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let _guard = self.rt.enter();
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region(REGION)
                .with_access_key_id(ACCESS_KEY)
                .with_secret_access_key(SECRET_KEY)
                .with_bucket_name(bucket)
                .build()
                .unwrap(),
        )
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        let b = self.bucket(bucket);
        self.rt
            .block_on(b.put(&ObjectPath::from(key), PutPayload::from(bytes)))
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e}"));
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let b = self.bucket(bucket);
        match self
            .rt
            .block_on(async { b.get(&ObjectPath::from(key)).await?.bytes().await })
        {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("get {bucket}/{key}: {e}"),
        }
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        let b = self.bucket(bucket);
        self.rt
            .block_on(b.delete(&ObjectPath::from(key)))
            .unwrap_or_else(|e| panic!("delete {bucket}/{key}: {e}"));
    }

    /// Every object in `bucket`, sorted by key.
    pub fn list(&self, bucket: &str) -> Vec<Listed> {
        use futures_util::TryStreamExt;
        let b = self.bucket(bucket);
        let metas = self
            .rt
            .block_on(b.list(None).try_collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("list {bucket}: {e}"));
        let mut listed: Vec<Listed> = metas
            .into_iter()
            .map(|m| Listed {
                key: m.location.to_string(),
                e_tag: m.e_tag,
                last_modified: m.last_modified.to_rfc3339(),
                size: m.size,
            })
            .collect();
        listed.sort();
        listed
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.list(bucket).into_iter().map(|l| l.key).collect()
    }

    /// Record every request the server gets from now on (earlier ones are forgotten).
    pub fn start_recording(&self) {
        self.mark.set(self.log().len());
    }

    /// The requests since [`Moto::start_recording`] as (method, decoded path, query), from the server's access
    /// log (which it writes, a whole line at a time, before it answers).
    pub fn stop_recording(&self) -> Vec<(String, String, String)> {
        let log = self.log();
        without_colours(&log[self.mark.get().min(log.len())..])
            .lines()
            .filter_map(|line| {
                // 127.0.0.1 - - [date] "PUT /bucket/key?query HTTP/1.1" 200 -
                let request = line.split('"').nth(1)?;
                let mut words = request.split(' ');
                let (method, target) = (words.next()?, words.next()?);
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let path = percent_encoding::percent_decode_str(path)
                    .decode_utf8_lossy()
                    .into_owned();
                (!path.starts_with("/moto-api/"))
                    .then(|| (method.to_string(), path, query.to_string()))
            })
            .collect()
    }

    /// Point `cmd` at this server through the usual AWS environment variables, and no others.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        s3_env(cmd, &self.endpoint)
    }
}

/// `text` without ANSI colour sequences (ESC [ ... m), which some versions of the server put in its log.
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The AWS environment of a run against `endpoint`, with dummy credentials; the caller's AWS_* are removed.
pub fn s3_env<'a>(cmd: &'a mut Command, endpoint: &str) -> &'a mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
}
