//! The plan: which sources a run processes. `-uri` values, manifest lines and S3 event keys, directories and
//! bucket prefixes expanded into the files below them, the source root checked, shards taken. Every name given
//! or listed is accounted for: a source to process, or that source's own error. Only what makes the whole run
//! meaningless (an unreadable manifest, no sources, two rewrites to one file) stops it.

pub mod s3event;
pub mod shard;

use crate::cli::Args;
use crate::naming::{NamingError, SourceUri};
use crate::settings::instructions::Instruction;
use crate::settings::Settings;
use crate::store::{Location, Store, StoreError, StoreOptions};
use shard::{Shard, ShardError, ShardSpec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What stops the run before any image is read (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read {what} {name}: {source}")]
    Read {
        what: &'static str,
        name: String,
        source: std::io::Error,
    },
    /// A manifest or event object in a bucket that could not be read.
    #[error("cannot read the {what}: {source}")]
    Fetch {
        what: &'static str,
        source: crate::store::StoreError,
    },
    #[error(transparent)]
    Event(#[from] s3event::EventError),
    #[error("-manifest - and -s3-event - cannot both read standard input")]
    BothStdin,
    #[error("no sources: give -uri URI, URIs after the flags, -manifest FILE or -s3-event FILE")]
    NoSources,
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(
        "source {given:?}: rewrite:// writes one file, {target}, but the instructions make {count} derivatives \
         ({labels}); use instructions with one entry, or file:// or idsecret:// for several"
    )]
    RewriteMany {
        given: String,
        target: String,
        count: usize,
        labels: String,
    },
    #[error("sources {first:?} and {second:?} would both be written at {target}")]
    RewriteClash {
        first: String,
        second: String,
        target: String,
    },
    /// A name given on the command line that cannot be a source: a usage error, like a mistyped flag.
    #[error(transparent)]
    Given(SourceProblem),
}

/// Why one named source cannot be processed; it becomes that source's error in the report.
#[derive(Debug, thiserror::Error)]
pub enum SourceProblem {
    #[error(transparent)]
    Name(#[from] NamingError),
    #[error(
        "source {given:?} is the source root itself (images.source); -uri names files or directories relative \
         to it, e.g. -uri IMG_0084.JPG"
    )]
    IsRoot { given: String },
    #[error("source {given:?} is outside the source root {root}")]
    OutsideRoot { given: String, root: String },
    #[error("source {given:?} is an absolute path, but the source root is {root}: give a key relative to it")]
    AbsoluteInBucket { given: String, root: String },
    #[error("source {given:?} names a directory; only plain paths can name directories")]
    SchemeDirectory { given: String },
    #[error(
        "source {given:?} is not under the source root {root}; -uri is relative to images.source, and \
         {given:?} exists relative to the current directory: give {suggestion:?}"
    )]
    RelativeToCwd {
        given: String,
        root: String,
        suggestion: String,
    },
    #[error(
        "source {given:?} is not under the source root {root}; -uri is relative to images.source (the file \
         exists relative to the current directory, which is outside it)"
    )]
    CwdOutsideRoot { given: String, root: String },
    #[error("source {given:?}: {source}")]
    List { given: String, source: StoreError },
}

/// One source of the run.
#[derive(Debug)]
pub struct PlannedSource {
    /// The name as given or listed: the report's key.
    pub given: String,
    pub uri: Result<SourceUri, SourceProblem>,
    /// Found by listing a directory or prefix: a file that is not an image is skipped (and reported), not failed.
    pub listed: bool,
}

/// The sources of a run, and lines for the log.
#[derive(Debug, Default)]
pub struct Plan {
    pub sources: Vec<PlannedSource>,
    /// Lines for the log once the run starts (what sharding kept, events ignored, a directory left out, …).
    pub notices: Vec<String>,
}

impl Plan {
    /// Gather the sources named by `args`, listing directories and prefixes through `source_store`.
    pub fn build(
        args: &Args,
        settings: &Settings,
        source_store: &dyn Store,
    ) -> Result<Plan, PlanError> {
        let config = &settings.config;
        let mut notices = Vec::new();
        let mut given = args.all_uris();
        let on_command_line = given.len();
        if let Some(m) = &args.manifest {
            given.extend(read_manifest(m, &settings.store_options)?);
        }
        if let Some(e) = &args.s3_event {
            if e == "-" && args.manifest.as_deref() == Some("-") {
                return Err(PlanError::BothStdin);
            }
            given.extend(read_s3_event(
                e,
                &config.source,
                &settings.store_options,
                &mut notices,
            )?);
        } else if given.is_empty() {
            return Err(PlanError::NoSources);
        }
        let shard = match args
            .shard
            .as_deref()
            .map(str::parse::<ShardSpec>)
            .transpose()?
        {
            None => None,
            Some(ShardSpec::Fixed(s)) => Some(s),
            Some(ShardSpec::Auto) => Some(Shard::from_env(
                &|k| std::env::var(k).ok(),
                args.shard_count,
            )?),
        };
        let mut uris = source_uris(given, &config.source);
        // Names from the command line are the user's to fix at once; those from a manifest, an event or a
        // listing are each their own source's error, and the others run.
        if let Some(i) = uris[..on_command_line].iter().position(|(_, u)| u.is_err()) {
            if let Err(problem) = uris.swap_remove(i).1 {
                return Err(PlanError::Given(problem));
            }
        }
        let mut sources = checked_and_expanded(uris, settings, source_store, &mut notices)?;
        if let Some(shard) = shard {
            let all = sources.len();
            sources.retain(|s| shard.contains(&s.given));
            notices.push(format!("shard {shard}: {} of {all} sources", sources.len()));
        }
        Ok(Plan { sources, notices })
    }

    /// The objects created in an object storage event (`text`, its JSON, read from `name`), planned as
    /// `-s3-event` plans them: for a caller that receives events itself (a serverless function). A name that
    /// cannot be a source is that source's error, not the plan's.
    pub fn from_event(
        text: &str,
        name: &str,
        settings: &Settings,
        source_store: &dyn Store,
    ) -> Result<Plan, PlanError> {
        let mut notices = Vec::new();
        let given = event_sources(text, name, &settings.config.source, &mut notices)?;
        let uris = source_uris(given, &settings.config.source);
        let sources = checked_and_expanded(uris, settings, source_store, &mut notices)?;
        Ok(Plan { sources, notices })
    }
}

/// Each name given or read, with its source URI or the reason it cannot be one.
fn source_uris(
    given: Vec<String>,
    source: &Location,
) -> Vec<(String, Result<SourceUri, SourceProblem>)> {
    given
        .into_iter()
        .map(|g| {
            let uri = g
                .parse::<SourceUri>()
                .map_err(SourceProblem::from)
                .and_then(|u| inside_source_root(u, source));
            (g, uri)
        })
        .collect()
}

/// The sources, rewrites checked, directories expanded (less the derivatives inside the source root).
fn checked_and_expanded(
    uris: Vec<(String, Result<SourceUri, SourceProblem>)>,
    settings: &Settings,
    source_store: &dyn Store,
    notices: &mut Vec<String>,
) -> Result<Vec<PlannedSource>, PlanError> {
    let config = &settings.config;
    check_rewrites(&uris, &settings.instructions)?;
    let excluded = excluded_prefix(&config.source, &config.derivatives);
    if let Some(p) = &excluded {
        notices.push(format!(
            "the derivatives ({}) lie inside the source root: {p}/ is left out of listings",
            config.derivatives
        ));
    }
    Ok(expand(uris, source_store, excluded.as_deref()))
}

/// An absolute plain path names a file by its place on disk: inside the source root it is taken relative to it,
/// outside it is that source's error. A relative path that is missing under the root but present relative to the
/// current directory gets a hint.
fn inside_source_root(mut uri: SourceUri, source: &Location) -> Result<SourceUri, SourceProblem> {
    if !uri.is_plain() {
        return Ok(uri);
    }
    let root = match source {
        Location::Disk(root) => root,
        Location::Object(o) if uri.given.starts_with('/') => {
            return Err(SourceProblem::AbsoluteInBucket {
                given: uri.given,
                root: o.to_string(),
            })
        }
        Location::Object(_) => return Ok(uri),
    };
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.clone());
    let shown_root = canonical_root.display().to_string();
    if !uri.given.starts_with('/') {
        let given = Path::new(&uri.given);
        if root.join(&uri.origin).exists() || !given.exists() {
            return Ok(uri);
        }
        // The name exists here but not under the root: the user meant a path relative to the current directory.
        let abs = given.canonicalize().unwrap_or_else(|_| given.to_path_buf());
        return Err(match abs.strip_prefix(&canonical_root) {
            Ok(rel) if !rel.as_os_str().is_empty() => SourceProblem::RelativeToCwd {
                given: uri.given,
                root: shown_root,
                suggestion: rel.to_string_lossy().into_owned(),
            },
            _ => SourceProblem::CwdOutsideRoot {
                given: uri.given,
                root: shown_root,
            },
        });
    }
    let given = Path::new(&uri.given);
    let abs = given.canonicalize().unwrap_or_else(|_| given.to_path_buf());
    match abs.strip_prefix(&canonical_root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            uri.origin = rel.to_string_lossy().into_owned();
            Ok(uri)
        }
        Ok(_) => Err(SourceProblem::IsRoot { given: uri.given }),
        Err(_) => Err(SourceProblem::OutsideRoot {
            given: uri.given,
            root: shown_root,
        }),
    }
}

/// The derivatives' key prefix relative to the source root, when the derivatives lie strictly inside it: a listing
/// of the sources must not take last run's derivatives for new masters.
pub(crate) fn excluded_prefix(source: &Location, derivatives: &Location) -> Option<String> {
    match (source, derivatives) {
        (Location::Disk(s), Location::Disk(d)) => {
            let canon = |p: &PathBuf| p.canonicalize().unwrap_or_else(|_| p.clone());
            let rel = canon(d).strip_prefix(canon(s)).ok()?.to_path_buf();
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (!parts.is_empty()).then(|| parts.join("/"))
        }
        (Location::Object(s), Location::Object(d))
            if s.cloud == d.cloud && s.bucket == d.bucket =>
        {
            let rel = if s.prefix.is_empty() {
                d.prefix.as_str()
            } else {
                d.prefix
                    .strip_prefix(s.prefix.as_str())?
                    .strip_prefix('/')?
            };
            (!rel.is_empty()).then(|| rel.to_string())
        }
        _ => None,
    }
}

/// rewrite:// names one file: refuse, before any work, what would write it twice.
fn check_rewrites(
    uris: &[(String, Result<SourceUri, SourceProblem>)],
    instructions: &[Instruction],
) -> Result<(), PlanError> {
    let mut targets: std::collections::HashMap<&str, &str> = Default::default();
    for uri in uris.iter().filter_map(|(_, u)| u.as_ref().ok()) {
        let Some(target) = uri.fixed_target() else {
            continue;
        };
        if instructions.len() > 1 {
            let labels: Vec<&str> = instructions.iter().map(|i| i.label.as_str()).collect();
            return Err(PlanError::RewriteMany {
                given: uri.given.clone(),
                target: target.to_string(),
                count: labels.len(),
                labels: labels.join(", "),
            });
        }
        if let Some(other) = targets.insert(target, &uri.given) {
            if other != uri.given {
                return Err(PlanError::RewriteClash {
                    first: other.to_string(),
                    second: uri.given.clone(),
                    target: target.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The sources an S3 event notification names, as URIs relative to the source root. Keys must lie under
/// the source location; on disk (a mounted bucket, say) the bucket name is not checked.
fn read_s3_event(
    name: &str,
    source: &Location,
    options: &StoreOptions,
    notices: &mut Vec<String>,
) -> Result<Vec<String>, PlanError> {
    let text = read_text(name, "S3 event", options)?;
    event_sources(&text, name, source, notices)
}

/// The sources an event's text names: its created objects under the source location.
fn event_sources(
    text: &str,
    name: &str,
    source: &Location,
    notices: &mut Vec<String>,
) -> Result<Vec<String>, PlanError> {
    let events = s3event::parse(text, name)?;
    for ignored in &events.ignored {
        notices.push(format!("{name}: not a created object, ignored: {ignored}"));
    }
    let mut uris = Vec::new();
    for obj in events.created {
        match source {
            Location::Disk(_) => uris.push(obj.key),
            // Objects of another bucket, or outside the source prefix (derivatives written to the same bucket,
            // say), are not sources.
            Location::Object(o) => {
                match crate::store::location::key_under(o, &obj.bucket, &obj.key) {
                    Some(key) => uris.push(key),
                    None => notices.push(format!(
                        "{name}: {}://{}/{} is not under the source {o}, ignored",
                        o.cloud.scheme(),
                        obj.bucket,
                        obj.key
                    )),
                }
            }
        }
    }
    Ok(uris)
}

/// A file's text, an object's when `name` is a bucket URI, or standard input for `-`.
fn read_text(name: &str, what: &'static str, options: &StoreOptions) -> Result<String, PlanError> {
    if let Some(read) = crate::store::read_uri(name, what, options) {
        return read
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|source| PlanError::Fetch { what, source });
    }
    if name == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(name)
    }
    .map_err(|source| PlanError::Read {
        what,
        name: name.to_string(),
        source,
    })
}

/// One URI per line; blank lines and `#` comments are ignored. `-` is standard input.
fn read_manifest(name: &str, options: &StoreOptions) -> Result<Vec<String>, PlanError> {
    Ok(read_text(name, "manifest", options)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Expand directories into the files below them (less the derivatives' own prefix) and drop repeated names,
/// keeping the order given.
fn expand(
    uris: Vec<(String, Result<SourceUri, SourceProblem>)>,
    store: &dyn Store,
    excluded: Option<&str>,
) -> Vec<PlannedSource> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |given: String, uri: Result<SourceUri, SourceProblem>, listed: bool| {
        if seen.insert(given.clone()) {
            out.push(PlannedSource { given, uri, listed });
        }
    };
    for (given, uri) in uris {
        let Ok(u) = uri else {
            push(given, uri, false);
            continue;
        };
        match store.list(&u.origin) {
            Err(e) => push(
                given.clone(),
                Err(SourceProblem::List { given, source: e }),
                false,
            ),
            Ok(None) => push(given, Ok(u), false),
            Ok(Some(_)) if !u.is_plain() => push(
                given.clone(),
                Err(SourceProblem::SchemeDirectory { given }),
                false,
            ),
            Ok(Some(keys)) => {
                for key in keys {
                    let inside = |p: &str| key == p || key.starts_with(&format!("{p}/"));
                    if excluded.is_some_and(inside) {
                        continue;
                    }
                    let uri = key.parse::<SourceUri>().map_err(SourceProblem::from);
                    push(key, uri, true);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Cloud, ObjectLocation};

    #[test]
    fn derivatives_inside_the_source_root_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let src = Location::Disk(dir.path().to_path_buf());
        let out = Location::Disk(dir.path().join("out/iiif"));
        assert_eq!(excluded_prefix(&src, &out).as_deref(), Some("out/iiif"));
        assert_eq!(excluded_prefix(&src, &src), None);
        assert_eq!(
            excluded_prefix(&Location::Disk("/a".into()), &Location::Disk("/b".into())),
            None
        );
        let obj = |prefix: &str| {
            Location::Object(ObjectLocation {
                cloud: Cloud::S3,
                bucket: "b".into(),
                prefix: prefix.into(),
                region: None,
                endpoint: None,
            })
        };
        assert_eq!(
            excluded_prefix(&obj("masters"), &obj("masters/iiif")).as_deref(),
            Some("iiif")
        );
        assert_eq!(
            excluded_prefix(&obj(""), &obj("iiif")).as_deref(),
            Some("iiif")
        );
        assert_eq!(excluded_prefix(&obj("masters"), &obj("iiif")), None);
    }

    #[test]
    fn a_bad_name_in_a_listing_is_that_sources_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for name in ["a.jpg", "%2e%2e", "b\\c.jpg"] {
            std::fs::write(dir.path().join("d").join(name), b"x").unwrap();
        }
        let store = crate::store::DiskStore::new(dir.path());
        let uri = "d".parse::<SourceUri>();
        let planned = expand(vec![("d".into(), uri.map_err(Into::into))], &store, None);
        let got: Vec<(&str, bool)> = planned
            .iter()
            .map(|p| (p.given.as_str(), p.uri.is_ok()))
            .collect();
        assert_eq!(
            got,
            [
                ("d/%2e%2e", false),
                ("d/a.jpg", true),
                ("d/b\\c.jpg", false)
            ]
        );
    }
}
