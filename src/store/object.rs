//! Buckets of S3 (and S3-compatible services), Google Cloud Storage and Azure Blob Storage as a [`Store`], through
//! the `object_store` crate.
//!
//! [`Store`] is synchronous and is called from rayon's threads, many at once; `object_store` is async. One small
//! multi-threaded tokio runtime, shared by every object store of the process, drives the requests, and each call
//! blocks its own thread until its request is done.
//!
//! Credentials and endpoints come from the environment only (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as the
//! `object_store` builders read them); nothing here prints them.

use super::{Cloud, Key, ObjectLocation, Store, StoreError};
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use std::future::Future;
use std::sync::{Arc, OnceLock};

/// Bodies larger than this are written as multipart uploads; smaller ones with one PUT.
pub const MULTIPART_THRESHOLD: usize = 64 << 20;
/// The size of each part of a multipart upload (S3 wants at least 5 MiB).
const PART_SIZE: usize = 16 << 20;
/// Parts of one upload sent at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The process's I/O runtime: two worker threads drive the sockets; the callers' threads wait in `block_on`.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("iiif-process-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A client for the bucket of `loc`, configured from the environment, then from `loc`.
pub fn client(loc: &ObjectLocation) -> Result<Arc<dyn object_store::ObjectStore>, String> {
    // Some builders look for a runtime when they are built.
    let _guard = runtime()?.enter();
    let built: object_store::Result<Arc<dyn object_store::ObjectStore>> = match loc.cloud {
        Cloud::S3 => {
            let mut b =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&loc.bucket);
            if let Some(region) = &loc.region {
                b = b.with_region(region);
            }
            if let Some(endpoint) = &loc.endpoint {
                b = b.with_endpoint(endpoint);
            }
            b.build().map(|s| Arc::new(s) as _)
        }
        Cloud::Gcs => object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&loc.bucket)
            .build()
            .map(|s| Arc::new(s) as _),
        Cloud::Azure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(&loc.bucket);
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
    built.map_err(|e| e.to_string())
}

/// A bucket and key prefix. Keys given to the [`Store`] methods are relative to the prefix.
pub struct ObjectStore {
    client: Arc<dyn object_store::ObjectStore>,
    /// `s3://bucket/prefix`, for messages.
    base: String,
    prefix: String,
    multipart_threshold: usize,
}

impl ObjectStore {
    /// One client for the bucket, configured from the environment and `loc`; sends no request.
    pub fn new(loc: &ObjectLocation) -> Result<ObjectStore, StoreError> {
        let client = client(loc).map_err(|message| StoreError::Open {
            location: loc.to_string(),
            message,
        })?;
        Ok(ObjectStore {
            client,
            base: loc.to_string(),
            prefix: loc.prefix.clone(),
            multipart_threshold: MULTIPART_THRESHOLD,
        })
    }

    /// A store over a client built elsewhere (tests build one with explicit settings).
    pub fn from_client(
        client: Arc<dyn object_store::ObjectStore>,
        loc: &ObjectLocation,
    ) -> ObjectStore {
        ObjectStore {
            client,
            base: loc.to_string(),
            prefix: loc.prefix.clone(),
            multipart_threshold: MULTIPART_THRESHOLD,
        }
    }

    /// Write bodies larger than `bytes` as multipart uploads (for tests; the default is [`MULTIPART_THRESHOLD`]).
    pub fn with_multipart_threshold(mut self, bytes: usize) -> ObjectStore {
        self.multipart_threshold = bytes;
        self
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

    /// Run `f` to completion on the I/O runtime, blocking this thread.
    fn block_on<F: Future>(&self, key: &str, f: F) -> Result<F::Output, StoreError> {
        let rt = runtime().map_err(|message| StoreError::Remote {
            path: self.describe(key),
            message,
        })?;
        Ok(rt.block_on(f))
    }

    fn error(&self, key: &str, e: object_store::Error) -> StoreError {
        let path = self.describe(key);
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound { path },
            e => StoreError::Remote {
                path,
                message: e.to_string(),
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
        let client = &self.client;
        let threshold = self.multipart_threshold;
        let done = self.block_on(key, async {
            if bytes.len() <= threshold {
                return client
                    .put(&path, PutPayload::from(bytes.to_vec()))
                    .await
                    .map(drop);
            }
            let mut upload =
                WriteMultipart::new_with_chunk_size(client.put_multipart(&path).await?, PART_SIZE);
            for part in bytes.chunks(PART_SIZE) {
                if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = upload.abort().await;
                    return Err(e);
                }
                upload.write(part);
            }
            // Completes the upload, or aborts it (removing the parts sent) on failure.
            upload.finish().await.map(drop)
        })?;
        done.map_err(|e| match e {
            // A PUT finds no object to replace, only no bucket.
            object_store::Error::NotFound { .. } => StoreError::Remote {
                path: self.describe(key),
                message: "the bucket does not exist".into(),
            },
            e => self.error(key, e),
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
        ObjectStore::new(&ObjectLocation {
            cloud: Cloud::S3,
            bucket: "bucket".into(),
            prefix: prefix.into(),
            region: Some("us-east-1".into()),
            endpoint: Some("http://127.0.0.1:9".into()),
        })
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
            let e = ObjectStore::new(&loc)
                .err()
                .expect("no account")
                .to_string();
            assert!(e.starts_with("cannot open az://c: "), "{e}");
        }
    }
}
