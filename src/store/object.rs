//! Buckets of S3 (and S3-compatible services), Google Cloud Storage and Azure Blob Storage as a [`Store`], through
//! the `object_store` crate.
//!
//! [`Store`] is synchronous and is called from rayon's threads, many at once; `object_store` is async. One small
//! multi-threaded tokio runtime, shared by every object store of the process, drives the requests, and each call
//! blocks its own thread until its request is done.
//!
//! Faults are the client's to absorb, as [`StoreOptions`] says: each attempt of a request is bounded by a timeout
//! (a server that accepts and never answers costs seconds, not minutes), and a failed request is retried with
//! exponential backoff until the retry time is spent. A multipart upload that fails anyway is aborted.
//!
//! Credentials and endpoints come from the environment only (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as the
//! `object_store` builders read them); nothing here prints them.

use super::location::redacted;
use super::{Cloud, Key, ObjectLocation, Store, StoreError, StoreOptions};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientConfigKey, MultipartUpload, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The size of each part of a multipart upload (S3 wants at least 5 MiB).
const PART_SIZE: usize = 16 << 20;
/// Parts of one upload sent at once.
const PARTS_IN_FLIGHT: usize = 4;
/// The longest wait between two attempts of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// The process's I/O runtime: two worker threads drive the sockets; the callers' threads wait in `block_on`.
fn runtime() -> Result<&'static tokio::runtime::Runtime, &'static std::io::Error> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("iiif-process-io")
                .enable_all()
                .build()
        })
        .as_ref()
}

/// The retry policy of `options`: the total time bounds the retries, not their count.
fn retry_config(options: &StoreOptions) -> RetryConfig {
    let retry_time = options.retry_time;
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            // A few attempts fit in a short retry time, and the last one starts near its end.
            max_backoff: (retry_time / 4).clamp(Duration::from_millis(100), MAX_BACKOFF),
            base: 2.0,
        },
        // The count is only a backstop: the retry time runs out first.
        max_retries: if retry_time.is_zero() { 0 } else { 1000 },
        retry_timeout: retry_time,
    }
}

/// `d` as object_store's configuration reads durations.
fn config_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// object_store's reading of a boolean setting.
fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "1" | "true" | "on" | "yes" | "y"
    )
}

/// An object_store error's message with the query string cut from every URL in it: multipart requests carry
/// upload ids there, and presigned or SAS-style URLs their signatures.
fn message(e: &object_store::Error) -> String {
    e.to_string()
        .split(' ')
        .map(|word| {
            if word.starts_with("http://") || word.starts_with("https://") {
                redacted(word)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A client for the bucket of `loc`, configured from the environment, then from `loc` and `options`.
fn client(
    loc: &ObjectLocation,
    options: &StoreOptions,
) -> Result<Arc<dyn object_store::ObjectStore>, StoreError> {
    let open_error = |message: String| StoreError::Open {
        location: loc.to_string(),
        message,
    };
    // Some builders look for a runtime when they are built.
    let _guard = runtime()
        .map_err(|e| open_error(format!("cannot start the I/O runtime: {e}")))?
        .enter();
    // Set key by key rather than with a whole `ClientOptions`, which would drop what the environment set
    // (AWS_ALLOW_HTTP, proxies, certificates).
    let timeouts = [
        (ClientConfigKey::Timeout, options.timeout),
        (
            ClientConfigKey::ConnectTimeout,
            options.connect_timeout.min(options.timeout),
        ),
    ];
    let retry = retry_config(options);
    let built: object_store::Result<Arc<dyn object_store::ObjectStore>> = match loc.cloud {
        Cloud::S3 => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(&loc.bucket)
                .with_retry(retry);
            for (key, d) in timeouts {
                b = b.with_config(AmazonS3ConfigKey::Client(key), config_duration(d));
            }
            if let Some(region) = &loc.region {
                b = b.with_region(region);
            }
            if let Some(endpoint) = &loc.endpoint {
                b = b.with_endpoint(endpoint);
            }
            let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
            let allow_http = b
                .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                .is_some_and(|v| truthy(&v));
            if let Some(endpoint) = endpoint {
                if endpoint
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
                    && !allow_http
                {
                    return Err(StoreError::PlainHttp {
                        location: loc.to_string(),
                        endpoint: redacted(&endpoint),
                    });
                }
            }
            b.build().map(|s| Arc::new(s) as _)
        }
        Cloud::Gcs => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&loc.bucket)
                .with_retry(retry);
            for (key, d) in timeouts {
                b = b.with_config(GoogleConfigKey::Client(key), config_duration(d));
            }
            b.build().map(|s| Arc::new(s) as _)
        }
        Cloud::Azure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(&loc.bucket)
                .with_retry(retry);
            for (key, d) in timeouts {
                b = b.with_config(AzureConfigKey::Client(key), config_duration(d));
            }
            // Go Cloud's names for the account and its key, when object_store's own are not set.
            let set = |name: &str| std::env::var_os(name).is_some();
            if !set("AZURE_STORAGE_ACCOUNT_NAME") {
                if let Ok(account) = std::env::var("AZURE_STORAGE_ACCOUNT") {
                    b = b.with_account(account);
                }
            }
            if !set("AZURE_STORAGE_ACCOUNT_KEY") && !set("AZURE_STORAGE_ACCESS_KEY") {
                if let Ok(key) = std::env::var("AZURE_STORAGE_KEY") {
                    b = b.with_access_key(key);
                }
            }
            b.build().map(|s| Arc::new(s) as _)
        }
    };
    built.map_err(|e| open_error(message(&e)))
}

/// The Content-Type of an object: images by their signature, so a `rewrite://` target whose extension is not
/// its format is still served as what it is; the rest (reports, pages) by the key's extension. `None` leaves
/// the service's default.
pub fn content_type(key: &str, bytes: &[u8]) -> Option<&'static str> {
    const IMAGES: [&str; 5] = [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/tiff",
    ];
    if let Some(t) = infer::get(bytes).map(|t| t.mime_type()) {
        if let Some(&t) = IMAGES.iter().find(|&&i| i == t) {
            return Some(t);
        }
    }
    let name = key.rsplit('/').next().unwrap_or(key);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        _ => return None,
    })
}

/// How a write failed.
enum WriteError {
    Failed(object_store::Error),
    /// A multipart upload failed and could not be aborted.
    Abandoned {
        failed: object_store::Error,
        abort: object_store::Error,
    },
}

impl From<object_store::Error> for WriteError {
    fn from(e: object_store::Error) -> WriteError {
        WriteError::Failed(e)
    }
}

/// Upload `bytes` in parts of [`PART_SIZE`], a few at once; on any failure (an error answer, a refused
/// connection or a timeout, once retries are spent) abort the upload, so that its parts do not stay in the
/// bucket. Only a process killed mid-upload, or an abort that fails too, leaves one behind.
async fn write_multipart(
    client: &dyn object_store::ObjectStore,
    path: &ObjectPath,
    bytes: &[u8],
    attributes: Attributes,
) -> Result<(), WriteError> {
    let options = PutMultipartOptions {
        attributes,
        ..PutMultipartOptions::default()
    };
    let mut upload = client.put_multipart_opts(path, options).await?;
    let sent: object_store::Result<()> = async {
        // Parts are copied only as they are sent, so at most PARTS_IN_FLIGHT copies are alive; on the first
        // failure the stream is dropped, which cancels the parts still in flight.
        let mut parts = futures_util::stream::iter(bytes.chunks(PART_SIZE))
            .map(|part| upload.put_part(PutPayload::from(part.to_vec())))
            .buffer_unordered(PARTS_IN_FLIGHT);
        while let Some(done) = parts.next().await {
            done?;
        }
        Ok(())
    }
    .await;
    let failed = match sent {
        Ok(()) => match upload.complete().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        },
        Err(e) => e,
    };
    // The abort is a request of its own, with its own retries: a server back within the retry time gets it. Parts
    // left behind are billed until a lifecycle rule removes them, so the abort is worth a second round.
    let mut abort = upload.abort().await;
    if abort.is_err() {
        abort = upload.abort().await;
    }
    match abort {
        // No such upload: an earlier attempt, answered too late, removed it.
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Err(WriteError::Failed(failed)),
        Err(abort) => Err(WriteError::Abandoned { failed, abort }),
    }
}

/// A bucket and key prefix. Keys given to the [`Store`] methods are relative to the prefix.
pub struct ObjectStore {
    client: Arc<dyn object_store::ObjectStore>,
    /// `s3://bucket/prefix`, for messages.
    base: String,
    prefix: String,
    multipart_threshold: usize,
    cache_control: Option<String>,
}

impl ObjectStore {
    /// One client for the bucket, configured from the environment, `loc` and `options`; sends no request.
    pub fn new(loc: &ObjectLocation, options: &StoreOptions) -> Result<ObjectStore, StoreError> {
        Ok(ObjectStore {
            client: client(loc, options)?,
            base: loc.to_string(),
            prefix: loc.prefix.clone(),
            multipart_threshold: options.multipart_threshold,
            cache_control: options.cache_control.clone(),
        })
    }

    /// The object path of `key`: the prefix, then the key's parts.
    fn path(&self, key: &str) -> Result<ObjectPath, StoreError> {
        // The empty key is the whole bucket (below the prefix), for listing.
        let key = key.trim_matches('/');
        let full = match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, Key::parse(key)?),
        };
        if !key.is_empty() {
            Key::parse(key)?;
        }
        Ok(ObjectPath::from(full))
    }

    /// The headers an object written at `key` is served with: its Content-Type (see [`content_type`]) and the
    /// configured Cache-Control. Without them, S3 serves `binary/octet-stream` and browsers download derivatives
    /// instead of showing them.
    fn attributes(&self, key: &str, bytes: &[u8]) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(t) = content_type(key, bytes) {
            attributes.insert(Attribute::ContentType, t.into());
        }
        if let Some(c) = &self.cache_control {
            attributes.insert(Attribute::CacheControl, c.clone().into());
        }
        attributes
    }

    /// Run `f` to completion on the I/O runtime, blocking this thread.
    fn block_on<F: Future>(&self, key: &str, f: F) -> Result<F::Output, StoreError> {
        let rt = runtime().map_err(|e| StoreError::Remote {
            path: self.describe(key),
            message: format!("cannot start the I/O runtime: {e}"),
        })?;
        Ok(rt.block_on(f))
    }

    fn error(&self, key: &str, e: object_store::Error) -> StoreError {
        let path = self.describe(key);
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound { path },
            e => StoreError::Remote {
                path,
                message: message(&e),
            },
        }
    }
}

impl Store for ObjectStore {
    /// One GET, the whole object in memory.
    fn read(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        let client = &self.client;
        self.block_on(key, async { client.get(&path).await?.bytes().await })?
            .map(Vec::from)
            .map_err(|e| self.error(key, e))
    }

    /// One PUT (a multipart upload above the threshold): readers see the old object or the whole new one.
    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let client = self.client.as_ref();
        let attributes = self.attributes(key, bytes);
        let done = self.block_on(key, async {
            if bytes.len() <= self.multipart_threshold {
                let options = PutOptions {
                    attributes,
                    ..PutOptions::default()
                };
                client
                    .put_opts(&path, PutPayload::from(bytes.to_vec()), options)
                    .await
                    .map(drop)
                    .map_err(WriteError::Failed)
            } else {
                write_multipart(client, &path, bytes, attributes).await
            }
        })?;
        // A PUT finds no object to replace, only no bucket.
        let error = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => "the bucket does not exist".to_string(),
            e => message(&e),
        };
        done.map_err(|e| match e {
            WriteError::Failed(e) => StoreError::Remote {
                path: self.describe(key),
                message: error(e),
            },
            WriteError::Abandoned { failed, abort } => StoreError::Abandoned {
                path: self.describe(key),
                message: error(failed),
                abort: message(&abort),
            },
        })
    }

    /// A HEAD request: nothing is downloaded.
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        let client = &self.client;
        match self.block_on(key, client.head(&path))? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn describe(&self, key: &str) -> String {
        let key = key.trim_start_matches('/');
        if key.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{key}", self.base)
        }
    }

    /// `key` names a "directory" when no object has exactly that key and some have it as a prefix (followed by
    /// '/'). Objects whose last part starts with '.' are left out, as hidden files are on disk.
    fn list(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        let path = self.path(key)?;
        let client = &self.client;
        // An object at `key` is a file, even when other keys continue below it (derivatives written beside
        // their source when the source and the cache share a prefix).
        if !key.trim_matches('/').is_empty() {
            match self.block_on(key, client.head(&path))? {
                Ok(_) => return Ok(None),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(key, e)),
            }
        }
        let listed = self
            .block_on(key, client.list(Some(&path)).try_collect::<Vec<_>>())?
            .map_err(|e| self.error(key, e))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut keys: Vec<String> = listed
            .iter()
            .filter_map(|meta| meta.location.as_ref().strip_prefix(strip.as_str()))
            .filter(|k| !k.rsplit('/').next().unwrap_or("").starts_with('.'))
            .map(str::to_string)
            .collect();
        keys.sort();
        Ok((!keys.is_empty()).then_some(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(prefix: &str) -> ObjectStore {
        ObjectStore::new(
            &ObjectLocation {
                cloud: Cloud::S3,
                bucket: "bucket".into(),
                prefix: prefix.into(),
                region: Some("us-east-1".into()),
                endpoint: Some("https://127.0.0.1:9".into()),
            },
            &StoreOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn keys_are_placed_below_the_prefix_and_described_without_secrets() {
        let s = s3("masters/2024");
        assert_eq!(s.path("a/b.jpg").unwrap().as_ref(), "masters/2024/a/b.jpg");
        assert_eq!(s.path("/a.jpg").unwrap().as_ref(), "masters/2024/a.jpg");
        assert_eq!(s.describe("a/b.jpg"), "s3://bucket/masters/2024/a/b.jpg");
        assert_eq!(s3("").path("a.jpg").unwrap().as_ref(), "a.jpg");
        assert_eq!(s3("").describe("a.jpg"), "s3://bucket/a.jpg");
    }

    #[test]
    fn refuses_keys_that_are_not_plain_parts() {
        let s = s3("p");
        for k in ["../x", "a/../../x", "a\\..\\x"] {
            assert!(matches!(s.path(k), Err(StoreError::BadKey { .. })), "{k}");
        }
        for k in ["a//b", "a/./b", "a/\u{7}b"] {
            assert!(matches!(s.path(k), Err(StoreError::BadKey { .. })), "{k}");
        }
    }

    #[test]
    fn a_store_that_cannot_be_opened_says_why() {
        let loc = ObjectLocation {
            cloud: Cloud::Azure,
            bucket: "c".into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
        };
        // Without an account name in the environment, Azure's builder refuses.
        if std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_none()
            && std::env::var_os("AZURE_STORAGE_ACCOUNT").is_none()
        {
            let e = ObjectStore::new(&loc, &StoreOptions::default())
                .err()
                .expect("no account")
                .to_string();
            assert!(e.starts_with("cannot open az://c: "), "{e}");
        }
    }

    #[test]
    fn a_plain_http_endpoint_needs_aws_allow_http() {
        let loc = ObjectLocation {
            cloud: Cloud::S3,
            bucket: "b".into(),
            prefix: "p".into(),
            region: Some("us-east-1".into()),
            endpoint: Some("HTTP://user:pw@127.0.0.1:9/?token=x".into()),
        };
        // The environment could allow it; then there is nothing to refuse.
        if std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| truthy(&v)) {
            return;
        }
        match ObjectStore::new(&loc, &StoreOptions::default()) {
            Err(e @ StoreError::PlainHttp { .. }) => assert_eq!(
                e.to_string(),
                "cannot open s3://b/p: the endpoint HTTP://127.0.0.1:9 is plain http; \
                 set AWS_ALLOW_HTTP=true to allow unencrypted requests, or use https"
            ),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a plain http endpoint was accepted"),
        }
    }

    #[test]
    fn messages_show_no_query_string_or_user_info() {
        assert_eq!(
            redacted("https://u:p@host:9/b/k?uploadId=1&partNumber=2"),
            "https://host:9/b/k"
        );
        assert_eq!(redacted("http://host"), "http://host");
        let e = object_store::Error::Generic {
            store: "S3",
            source:
                "Error performing PUT http://127.0.0.1:9/b/k?partNumber=1&uploadId=xyz in 1s - boom"
                    .into(),
        };
        let m = message(&e);
        assert!(m.contains("PUT http://127.0.0.1:9/b/k in 1s - boom"), "{m}");
        assert!(!m.contains("uploadId"), "{m}");
    }

    #[test]
    fn objects_are_typed_by_signature_then_by_extension() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0];
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let webp = b"RIFF\x10\0\0\0WEBPVP8L";
        for (key, bytes, want) in [
            ("a/full/max/0/default.jpg", &jpeg[..], Some("image/jpeg")),
            ("a/full/max/0/default.png", &png[..], Some("image/png")),
            ("a/full/max/0/default.webp", &webp[..], Some("image/webp")),
            (
                "a/full/max/0/default.gif",
                &b"GIF89a\x01\0\x01\0"[..],
                Some("image/gif"),
            ),
            (
                "a/full/max/0/default.tif",
                &b"II*\0\x08\0\0\0"[..],
                Some("image/tiff"),
            ),
            (
                "a/full/max/0/default.tif",
                &b"MM\0*\0\0\0\x08"[..],
                Some("image/tiff"),
            ),
            // A rewrite:// target named .jpg holding a PNG is served as the PNG it is.
            ("pub/picture.jpg", &png[..], Some("image/png")),
            (
                "a/process.json",
                &b"{\"a\": 1}"[..],
                Some("application/json"),
            ),
            (
                "123/4/1234_s3cret_process.JSON",
                &b"{}"[..],
                Some("application/json"),
            ),
            (
                "gallery/index.html",
                &b"<!doctype html>"[..],
                Some("text/html"),
            ),
            ("a.jpeg", &b""[..], Some("image/jpeg")),
            ("notes.txt", &b"plain"[..], None),
            ("no-extension", &jpeg[..], Some("image/jpeg")),
            ("archive.bin", &b"PK\x03\x04"[..], None),
        ] {
            assert_eq!(content_type(key, bytes), want, "{key}");
        }
    }

    #[test]
    fn retries_are_bounded_by_time() {
        let r = retry_config(&StoreOptions {
            retry_time: Duration::from_secs(2),
            ..StoreOptions::default()
        });
        assert_eq!(r.retry_timeout, Duration::from_secs(2));
        assert_eq!(r.backoff.max_backoff, Duration::from_millis(500));
        assert!(r.max_retries >= 100);
        let r = retry_config(&StoreOptions::default());
        assert_eq!(r.retry_timeout, Duration::from_secs(60));
        assert_eq!(r.backoff.max_backoff, MAX_BACKOFF);
        let r = retry_config(&StoreOptions {
            retry_time: Duration::ZERO,
            ..StoreOptions::default()
        });
        assert_eq!(r.max_retries, 0);
    }
}
