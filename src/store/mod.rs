//! Where bytes come from and go to: a directory on disk or a bucket of an object store, behind one [`Store`]
//! trait, chosen once per location by [`open`]. Knows nothing of images or settings.

pub mod disk;
pub mod location;
pub mod object;

pub use disk::DiskStore;
pub use location::{Cloud, Location, LocationError, ObjectLocation};
pub use object::ObjectStore;

use std::fmt;

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

/// The store for `location`: a directory, or one client for a bucket. Building an object store's client sends
/// no request; it fails only when the config and the environment do not make a usable client.
pub fn open(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        Location::Disk(p) => Box::new(DiskStore::new(p)),
        Location::Object(o) => Box::new(ObjectStore::new(o)?),
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
