//! Storage locations: a directory on disk, or a bucket (and key prefix) of an object store, and the storage URIs
//! that name them (`file://`, `s3://`, `s3blob://`, `gs://`, `azblob://`, `az://`). Pure: nothing here sends a
//! request. Messages never show a URI's query string or credentials.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("{field} {shown:?}: not a storage URI ({reason}); expected one of the schemes {OBJECT_SCHEMES}")]
    NotAUri {
        field: String,
        shown: String,
        reason: String,
    },
    #[error("{field}: storage scheme {scheme:?} is not supported (supported: {OBJECT_SCHEMES})")]
    Scheme { field: String, scheme: String },
    #[error(
        "{field} {shown:?}: credentials do not belong in the config; set them in the environment"
    )]
    Credentials { field: String, shown: String },
    #[error("{field} {shown:?}: the bucket name cannot have a port; give an endpoint with ?endpoint= or the environment")]
    Port { field: String, shown: String },
    #[error("{field} {shown:?}: no bucket name")]
    NoBucket { field: String, shown: String },
    #[error("{field}: {bucket:?} is not a valid bucket name")]
    Bucket { field: String, bucket: String },
    #[error(
        "{field}: key prefix {prefix:?} has an empty, \".\" or \"..\" part or a control character"
    )]
    Prefix { field: String, prefix: String },
}

/// Where bytes live: a directory on disk, or a bucket (and key prefix) of an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Disk(PathBuf),
    Object(ObjectLocation),
}

/// Which object storage service a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Amazon S3 or an S3-compatible service.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage (the bucket is the container).
    Azure,
}

/// A bucket and key prefix. Credentials are never part of it: they come from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    pub cloud: Cloud,
    pub bucket: String,
    /// Prefix of every key, '/'-separated without a leading or trailing '/'; empty for the whole bucket.
    pub prefix: String,
    /// S3 region given in the config; otherwise AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
    pub region: Option<String>,
    /// S3 endpoint given in the config (`?endpoint=`); otherwise AWS_ENDPOINT_URL / AWS_ENDPOINT.
    pub endpoint: Option<String>,
}

impl Cloud {
    /// The URI scheme objects of this service are named with in messages.
    pub fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        }
    }
}

impl fmt::Display for ObjectLocation {
    /// `s3://bucket/prefix`: no region, endpoint or credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.cloud.scheme(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Disk(p) => write!(f, "{}", p.display()),
            Location::Object(o) => o.fmt(f),
        }
    }
}

/// The URI schemes of object stores, as go-iiif (Go Cloud) and object_store spell them.
pub const OBJECT_SCHEMES: &str = "s3, s3blob, gs, azblob, az (or file for a directory)";

/// A URI as it may appear in a message: without its query string (which may hold credentials or a signature)
/// and without any user or password before the host.
pub fn redacted(text: &str) -> String {
    let no_query = text.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or("");
            let path = if path == "/" { "" } else { path };
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_string(),
    }
}

/// Is `scheme` (lower case) one of an object store's?
pub fn is_object_scheme(scheme: &str) -> bool {
    matches!(
        scheme,
        "s3" | "s3blob" | "s3a" | "gs" | "gcs" | "azblob" | "az" | "azure"
    )
}

/// A blob URI: `s3://bucket/prefix?region=…`, `s3blob://bucket?prefix=…&region=…&credentials=…`, `gs://…`,
/// `azblob://container/prefix`, `az://…`. `field` names the config key (or flag) in messages. Query parameters
/// that have no effect are pushed, by name only, onto `ignored`.
pub fn parse_uri(
    text: &str,
    field: &str,
    ignored: &mut Vec<String>,
) -> Result<ObjectLocation, LocationError> {
    let field_s = || field.to_string();
    let url = url::Url::parse(text).map_err(|e| LocationError::NotAUri {
        field: field_s(),
        shown: redacted(text),
        reason: e.to_string(),
    })?;
    let cloud = match url.scheme() {
        "s3" | "s3blob" | "s3a" => Cloud::S3,
        "gs" | "gcs" => Cloud::Gcs,
        "azblob" | "az" | "azure" => Cloud::Azure,
        other => {
            return Err(LocationError::Scheme {
                field: field_s(),
                scheme: other.to_string(),
            })
        }
    };
    let shown = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    );
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LocationError::Credentials {
            field: field_s(),
            shown,
        });
    }
    if url.port().is_some() {
        return Err(LocationError::Port {
            field: field_s(),
            shown,
        });
    }
    let mut segments: Vec<String> = url
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    // go-iiif's documentation writes `s3blob:///bucket?…`: no host, the bucket as the first path segment.
    let bucket = match url.host_str().filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None if !segments.is_empty() => segments.remove(0),
        None => {
            return Err(LocationError::NoBucket {
                field: field_s(),
                shown,
            })
        }
    };
    let mut location = ObjectLocation {
        cloud,
        bucket,
        prefix: String::new(),
        region: None,
        endpoint: None,
    };
    let mut prefix = segments.join("/");
    for (name, value) in url.query_pairs() {
        match (name.as_ref(), cloud) {
            ("prefix", _) => prefix = join_prefix(&prefix, &value),
            ("region", Cloud::S3) if !value.is_empty() => {
                location.region = Some(value.into_owned())
            }
            ("endpoint", Cloud::S3) if !value.is_empty() => {
                location.endpoint = Some(value.into_owned())
            }
            ("credentials", _) if is_environment_label(&value) => {}
            (name, _) => ignored.push(format!("{field}?{name}")),
        }
    }
    location.prefix = clean_prefix(&prefix, field)?;
    check_bucket(&location.bucket, field)?;
    Ok(location)
}

/// A `file://` URI's folder and its query parameters (Go Cloud's fileblob options such as `metadata=skip`), or
/// `None` when `text` is not one. The path is percent-decoded; `file:///dir` and `file://dir` both name `/dir`
/// and `dir` as written.
pub fn file_uri(text: &str) -> Option<(PathBuf, Vec<String>)> {
    let (scheme, rest) = text.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("file") {
        return None;
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let names = form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    Some((PathBuf::from(path), names))
}

/// fileblob's options that change nothing here: `metadata=skip` (no `.attrs` files, which are never written) and
/// `create_dir` (folders are always made).
pub fn is_harmless_file_option(name: &str) -> bool {
    matches!(name, "metadata" | "create_dir")
}

/// go-iiif's credential labels that mean what this tool always does: take them from the environment (which
/// includes the instance's role).
pub fn is_environment_label(label: &str) -> bool {
    matches!(label, "" | "env:" | "iam:")
}

/// Two key prefixes joined by '/', either possibly empty.
pub fn join_prefix(a: &str, b: &str) -> String {
    [a.trim_matches('/'), b.trim_matches('/')]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// A prefix of '/'-separated parts with no `.`, `..`, empty part or control character.
pub fn clean_prefix(prefix: &str, field: &str) -> Result<String, LocationError> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Ok(String::new());
    }
    if super::Key::new(prefix).is_err() {
        return Err(LocationError::Prefix {
            field: field.to_string(),
            prefix: prefix.to_string(),
        });
    }
    Ok(prefix.to_string())
}

/// Bucket (container) names: letters, digits, '.', '-' and '_', as every service allows some subset of them.
pub fn check_bucket(bucket: &str, field: &str) -> Result<(), LocationError> {
    if bucket.is_empty()
        || !bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(LocationError::Bucket {
            field: field.to_string(),
            bucket: bucket.to_string(),
        });
    }
    Ok(())
}

/// The key, relative to `loc`'s prefix, of the object `key` of `bucket`, when it lies below that prefix.
pub fn key_under(loc: &ObjectLocation, bucket: &str, key: &str) -> Option<String> {
    if bucket != loc.bucket {
        return None;
    }
    let rel = if loc.prefix.is_empty() {
        key
    } else {
        key.strip_prefix(loc.prefix.as_str())?.strip_prefix('/')?
    };
    (!rel.is_empty()).then(|| rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_uris_keep_no_query_or_credentials() {
        assert_eq!(
            redacted("s3://my bucket/x?credentials=SECRET"),
            "s3://my bucket/x"
        );
        assert_eq!(redacted("s3://user:pw@bucket/a#frag"), "s3://bucket/a");
        assert_eq!(redacted("images"), "images");
    }

    #[test]
    fn an_unparsable_uri_is_named_without_its_query() {
        let e = parse_uri(
            "s3://my bucket/x?credentials=SECRET",
            "images.source.uri",
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(
            e.starts_with("images.source.uri \"s3://my bucket/x\""),
            "{e}"
        );
    }

    #[test]
    fn file_uris_lose_their_query() {
        assert_eq!(
            file_uri("file:///srv/my%20images?metadata=skip&create_dir=true"),
            Some((
                PathBuf::from("/srv/my images"),
                vec!["metadata".into(), "create_dir".into()]
            ))
        );
        assert_eq!(file_uri("FILE:///a"), Some((PathBuf::from("/a"), vec![])));
        assert_eq!(file_uri("s3://a/b"), None);
        assert_eq!(file_uri("/a/b"), None);
    }

    #[test]
    fn event_keys_are_taken_relative_to_the_prefix() {
        let loc = |prefix: &str| ObjectLocation {
            cloud: Cloud::S3,
            bucket: "bucket".into(),
            prefix: prefix.into(),
            region: None,
            endpoint: None,
        };
        let under = |prefix: &str, bucket: &str, key: &str| key_under(&loc(prefix), bucket, key);
        assert_eq!(
            under("scans", "bucket", "scans/a/b.jpg").as_deref(),
            Some("a/b.jpg")
        );
        assert_eq!(
            under("", "bucket", "scans/a.jpg").as_deref(),
            Some("scans/a.jpg")
        );
        assert_eq!(under("scans", "bucket", "scans2/a.jpg"), None);
        assert_eq!(
            under("scans", "bucket", "iiif/a.jpg/full/full/0/default.jpg"),
            None
        );
        assert_eq!(under("scans", "other", "scans/a.jpg"), None);
        assert_eq!(under("scans", "bucket", "scans/"), None);
    }
}
