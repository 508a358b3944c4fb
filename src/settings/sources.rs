//! Where the config and the instructions are read from: a file or a bucket object (`-config`, `-instructions`),
//! a folder or bucket and a name in it (go-iiif v8's `-config-source` + `-config-name`), or go-iiif's built-in
//! set (`defaults://`, also what go-iiif reads when nothing is named).

use super::SettingsError;
use crate::store::{self, location, Key, StoreOptions};
use std::path::{Path, PathBuf};

/// go-iiif's name for its built-in config and instructions.
pub const DEFAULTS: &str = "defaults://";

/// The two files, and what tells them apart in flags and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Config,
    Instructions,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Instructions => "instructions",
        }
    }

    /// go-iiif's default name in a folder or bucket.
    fn default_name(self) -> &'static str {
        match self {
            Kind::Config => "config.json",
            Kind::Instructions => "instructions.json",
        }
    }

    /// go-iiif v8.1.8's `defaults/` file, embedded.
    fn builtin(self) -> &'static str {
        match self {
            Kind::Config => include_str!("defaults/config.json"),
            Kind::Instructions => include_str!("defaults/instructions.json"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("-{what}-name {name:?}: a name inside -{what}-source, without an empty, \".\" or \"..\" part")]
    Name { what: &'static str, name: String },
    #[error(
        "-{what}-source {shown:?}: not a folder or bucket (file:///dir, a plain folder, s3://, s3blob://, gs://, \
         azblob://, or defaults://)"
    )]
    Scheme { what: &'static str, shown: String },
}

/// Where the text is.
#[derive(Debug, PartialEq)]
pub enum Origin {
    /// A file on disk: relative paths in a config resolve against its folder.
    File(PathBuf),
    /// Text already read (a bucket object, or the built-in set), shown under `shown` in messages; relative paths
    /// in it resolve against the working directory.
    Text { text: String, shown: PathBuf },
}

/// The flags that name one of the two files.
pub struct Named<'a> {
    pub file: Option<&'a Path>,
    pub source: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Find (and, for a bucket or the built-in set, read) the config or the instructions.
pub fn locate(kind: Kind, named: &Named, options: &StoreOptions) -> Result<Origin, SettingsError> {
    let what = kind.what();
    let fetch = |uri: &str| -> Option<Result<Origin, SettingsError>> {
        Some(
            store::read_uri(uri, what, options)?
                .map(|bytes| Origin::Text {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    shown: PathBuf::from(location::redacted(uri)),
                })
                .map_err(|source| SettingsError::Fetch { what, source }),
        )
    };
    if let Some(file) = named.file {
        let text = file.to_string_lossy();
        if let Some(fetched) = fetch(&text) {
            return fetched;
        }
        return Ok(Origin::File(match location::file_uri(&text) {
            Some((path, _)) => path,
            None => file.to_path_buf(),
        }));
    }
    let source = named.source.unwrap_or(DEFAULTS).trim();
    if source.eq_ignore_ascii_case(DEFAULTS) {
        // As go-iiif: the name is not used with the built-in set.
        return Ok(Origin::Text {
            text: kind.builtin().to_string(),
            shown: PathBuf::from(format!("{DEFAULTS}{}", kind.default_name())),
        });
    }
    let name = named.name.unwrap_or(kind.default_name());
    let name = Key::new(name)
        .map_err(|_| SourceError::Name {
            what,
            name: name.to_string(),
        })?
        .as_str()
        .to_string();
    if let Some((dir, _)) = location::file_uri(source) {
        return Ok(Origin::File(dir.join(name)));
    }
    if !source.contains("://") {
        return Ok(Origin::File(Path::new(source).join(name)));
    }
    // The name goes on the bucket URI's path, before its query (`s3://b/prefix?region=r`).
    let (path, query) = match source.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (source, String::new()),
    };
    let uri = format!("{}/{name}{query}", path.trim_end_matches('/'));
    fetch(&uri).unwrap_or_else(|| {
        Err(SourceError::Scheme {
            what,
            shown: location::redacted(source),
        }
        .into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kind: Kind, file: Option<&str>, source: Option<&str>, name: Option<&str>) -> Origin {
        let named = Named {
            file: file.map(Path::new),
            source,
            name,
        };
        locate(kind, &named, &StoreOptions::default()).unwrap()
    }

    #[test]
    fn folders_files_and_defaults() {
        let file = |p: &str| Origin::File(PathBuf::from(p));
        assert_eq!(at(Kind::Config, Some("c.json"), None, None), file("c.json"));
        assert_eq!(
            at(Kind::Config, Some("file:///etc/c.json"), None, None),
            file("/etc/c.json")
        );
        assert_eq!(
            at(Kind::Config, None, Some("file:///etc/iiif/"), None),
            file("/etc/iiif/config.json")
        );
        assert_eq!(
            at(
                Kind::Instructions,
                None,
                Some("file:///etc/iiif?metadata=skip"),
                Some("i.json")
            ),
            file("/etc/iiif/i.json")
        );
        assert_eq!(
            at(Kind::Instructions, None, Some("conf"), None),
            file("conf/instructions.json")
        );
        let Origin::Text { text, shown } = at(Kind::Instructions, None, None, Some("ignored"))
        else {
            panic!("the built-in set")
        };
        assert!(text.contains("crisp:2.0,0.5,0.025"), "{text}");
        assert_eq!(shown, Path::new("defaults://instructions.json"));
        assert!(matches!(
            at(Kind::Config, None, Some("defaults://"), None),
            Origin::Text { .. }
        ));
    }

    #[test]
    fn bad_names_and_schemes_are_refused() {
        let named = |source: &'static str, name: &'static str| Named {
            file: None,
            source: Some(source),
            name: Some(name),
        };
        let o = StoreOptions::default();
        let e = locate(Kind::Config, &named("file:///x", "../c.json"), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-config-name \"../c.json\""), "{e}");
        let e = locate(Kind::Instructions, &named("mem://", "i.json"), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-instructions-source \"mem://\""), "{e}");
    }
}
