//! Where bytes come from and go to: a directory on disk or a bucket of an object store, behind one [`Store`]
//! trait, chosen once per location by [`open`]. Knows nothing of images or settings.

pub mod disk;
pub mod location;
pub mod object;

pub use disk::DiskStore;
pub use location::{Cloud, Location, LocationError, ObjectLocation};
pub use object::ObjectStore;

use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: escapes the store's root")]
    Escapes { path: String },
    #[error("{path}: is a directory")]
    IsDir { path: String },
    /// A key that cannot name a file or an object.
    #[error("{key:?}: {reason}")]
    BadKey { key: String, reason: KeyError },
    /// A request to an object store failed (after the client's retries).
    #[error("{path}: {message}")]
    Remote { path: String, message: String },
    /// A multipart upload failed, and so did the request that would have removed its parts: they stay in the
    /// bucket (invisible, but billed) until a lifecycle rule removes them.
    #[error(
        "{path}: {message}; the incomplete multipart upload could not be aborted either: {abort}"
    )]
    Abandoned {
        path: String,
        message: String,
        abort: String,
    },
    /// An S3 endpoint of plain http while AWS_ALLOW_HTTP is not true: the client would refuse every request with
    /// nothing better than "builder error", so it is refused when the store is opened, saying why.
    #[error("cannot open {location}: the endpoint {endpoint} is plain http; set AWS_ALLOW_HTTP=true to allow unencrypted requests, or use https")]
    PlainHttp { location: String, endpoint: String },
    /// The client for an object store could not be built from the config and the environment.
    #[error("cannot open {location}: {message}")]
    Open { location: String, message: String },
}

/// Why a string is not a [`Key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a key part is empty, \".\" or \"..\"")]
    Part,
    #[error("a key cannot hold a backslash")]
    Backslash,
    #[error("a key cannot hold a control character")]
    Control,
}

/// A safe relative key: '/'-separated parts, none empty, `.` or `..`, with no backslash or control character
/// (a leading '/' is dropped). The one rule for every store and every name this tool writes, so a key that a
/// directory accepts a bucket accepts too, and no key can leave its root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    pub fn new(text: &str) -> Result<Key, KeyError> {
        let key = text.trim_start_matches('/');
        if key.contains('\\') {
            return Err(KeyError::Backslash);
        }
        if key.chars().any(char::is_control) {
            return Err(KeyError::Control);
        }
        if key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(KeyError::Part);
        }
        Ok(Key(key.to_string()))
    }

    /// As [`Key::new`], with the key named in the error.
    pub fn parse(text: &str) -> Result<Key, StoreError> {
        Key::new(text).map_err(|reason| StoreError::BadKey {
            key: text.to_string(),
            reason,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A place holding files under '/'-separated relative keys.
pub trait Store: Send + Sync {
    fn read(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Write all of `bytes` at `key`, atomically: readers see the old file, no file, or all of the new one.
    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// A human-readable location for messages.
    fn describe(&self, key: &str) -> String;
    /// When `key` names a directory (a prefix), the keys of every file below it, sorted; otherwise `None`.
    /// An empty key lists the whole store.
    fn list(&self, key: &str) -> Result<Option<Vec<String>>, StoreError>;
}

/// Total time one request to an object store is retried for, by default.
pub const DEFAULT_RETRY_TIME: Duration = Duration::from_secs(60);
/// Limit on one attempt of a request, by default: long enough for a 16 MiB part on a slow link, short enough
/// that a server which accepts and never answers costs seconds, not minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit on connecting: a reachable server answers a TCP handshake in well under a second.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies larger than this are written as multipart uploads, by default; smaller ones with one PUT.
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 64 << 20;

/// How an object store's client behaves under faults, and how it writes large bodies. Directories ignore it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Total time a failed request is retried for (exponential backoff with jitter) before it fails: 5xx answers,
    /// refused or dropped connections, and timed-out requests that are safe to repeat.
    pub retry_time: Duration,
    /// Limit on one attempt of a request, from connecting to the end of the response.
    pub timeout: Duration,
    /// Limit on connecting (at most `timeout`).
    pub connect_timeout: Duration,
    /// Bodies larger than this are written as multipart uploads.
    pub multipart_threshold: usize,
    /// The Cache-Control every object written is served with; `None` leaves the service's default.
    pub cache_control: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            retry_time: DEFAULT_RETRY_TIME,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            cache_control: None,
        }
    }
}

/// The bytes of the object that a storage URI names (`s3://bucket/conf/config.json`, `gs://…`, `az://…`), read
/// with one GET; `None` when `text` is not such a URI (a file name). `what` names it in messages.
pub fn read_uri(
    text: &str,
    what: &str,
    options: &StoreOptions,
) -> Option<Result<Vec<u8>, StoreError>> {
    let scheme = text.split_once("://")?.0.to_ascii_lowercase();
    if !location::is_object_scheme(&scheme) {
        return None;
    }
    let open_error = |message: String| StoreError::Open {
        location: location::redacted(text),
        message,
    };
    Some((|| {
        let mut loc = location::parse_uri(text, what, &mut Vec::new())
            .map_err(|e| open_error(e.to_string()))?;
        let (dir, name) = match loc.prefix.rsplit_once('/') {
            Some((dir, name)) => (dir.to_string(), name.to_string()),
            None => (String::new(), loc.prefix.clone()),
        };
        if name.is_empty() {
            return Err(open_error(format!("{what}: names a bucket, not an object")));
        }
        loc.prefix = dir;
        ObjectStore::new(&loc, options)?.read(&name)
    })())
}

/// The store for `location`: a directory, or one client for a bucket. Building an object store's client sends
/// no request; it fails only when the config and the environment do not make a usable client.
pub fn open(location: &Location, options: &StoreOptions) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        Location::Disk(p) => Box::new(DiskStore::new(p)),
        Location::Object(o) => Box::new(ObjectStore::new(o, options)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_keys() {
        assert_eq!(Key::new("/a/b.jpg").unwrap().as_str(), "a/b.jpg");
        for (k, e) in [
            ("../x", KeyError::Part),
            ("a/../../x", KeyError::Part),
            ("a//b", KeyError::Part),
            ("a/./b", KeyError::Part),
            ("", KeyError::Part),
            ("a/", KeyError::Part),
            ("a\\..\\x", KeyError::Backslash),
            ("a/\u{7}b", KeyError::Control),
        ] {
            assert_eq!(Key::new(k), Err(e), "{k:?}");
        }
    }
}
