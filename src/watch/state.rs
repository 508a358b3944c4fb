//! What a watch has already processed, kept in a small JSON-lines file so a restart does not redo it: one line
//! per processed version (the file's key, size, modification time and SHA-1 of its bytes), and one line when a
//! file is removed. The last line of a key wins. Lines are appended after a source's report is out, so a crash
//! can at worst make a restart process a version again, never lose one.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// A line longer than this is not one this tool wrote (keys are file paths).
const MAX_LINE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the watch state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the watch state file {path}, line {line}, is longer than {} KiB: not a file iiif-process wrote \
         (give another -watch-state file, or remove this one to process every file again)",
        MAX_LINE / 1024
    )]
    LongLine { path: PathBuf, line: usize },
    #[error(
        "cannot write the watch state file {path}: {source} (give a writable place with -watch-state FILE)"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What identifies one version of a file. Size and modification time are the fast check at startup; the bytes'
/// SHA-1 decides when they differ, so a file touched or copied again unchanged is not processed twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i64,
}

impl Stat {
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        let mtime_ns = match meta.modified() {
            Ok(t) => match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
            },
            Err(_) => 0,
        };
        Stat {
            size: meta.len(),
            mtime_ns,
        }
    }
}

/// One processed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub stat: Stat,
    pub sha1: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

/// The processed versions, and the file they are appended to.
pub struct State {
    path: PathBuf,
    done: HashMap<String, Version>,
    file: Option<std::fs::File>,
}

impl State {
    /// Read the state file at `path` (missing: nothing done yet). Lines that do not parse, such as a last line
    /// cut short by a crash, are left out and counted.
    pub fn load(path: &Path) -> Result<(State, usize), StateError> {
        let mut done = HashMap::new();
        let mut unreadable = 0;
        match std::fs::File::open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateError::Read {
                    path: path.into(),
                    source,
                })
            }
            Ok(f) => {
                let mut reader = std::io::BufReader::new(f);
                let mut buf = Vec::new();
                for n in 1.. {
                    buf.clear();
                    let read = reader
                        .by_ref()
                        .take(MAX_LINE)
                        .read_until(b'\n', &mut buf)
                        .map_err(|source| StateError::Read {
                            path: path.into(),
                            source,
                        })?;
                    if read == 0 {
                        break;
                    }
                    if read as u64 == MAX_LINE && buf.last() != Some(&b'\n') {
                        return Err(StateError::LongLine {
                            path: path.into(),
                            line: n,
                        });
                    }
                    match serde_json::from_slice::<Line>(&buf) {
                        Ok(l) => apply(&mut done, l),
                        Err(_) => unreadable += 1,
                    }
                }
            }
        }
        let state = State {
            path: path.to_path_buf(),
            done,
            file: None,
        };
        Ok((state, unreadable))
    }

    /// The version of `key` processed last, if any.
    pub fn get(&self, key: &str) -> Option<&Version> {
        self.done.get(key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.done.len()
    }

    /// Keep only the keys `keep` holds, rewrite the file with what is left (atomically: a temporary file
    /// renamed over it) and open it for appending.
    pub fn compact(&mut self, keep: &dyn Fn(&str) -> bool) -> Result<(), StateError> {
        self.done.retain(|k, _| keep(k));
        let write_err = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        let mut text = String::new();
        let mut keys: Vec<&String> = self.done.keys().collect();
        keys.sort();
        for key in keys {
            text.push_str(&line_of(key, Some(&self.done[key])));
            text.push('\n');
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self
            .path
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                write_err(e)
            })?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(write_err)?;
        self.file = Some(file);
        Ok(())
    }

    /// Note that `version` of `key` has been processed.
    pub fn record(&mut self, key: &str, version: Version) -> Result<(), StateError> {
        self.append(&line_of(key, Some(&version)))?;
        self.done.insert(key.to_string(), version);
        Ok(())
    }

    /// Forget `key` (its file was removed): a file put there later is new.
    pub fn forget(&mut self, key: &str) -> Result<(), StateError> {
        if self.done.remove(key).is_some() {
            self.append(&line_of(key, None))?;
        }
        Ok(())
    }

    fn append(&mut self, line: &str) -> Result<(), StateError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        // One write of the whole line, so a crash leaves at most one cut line (which `load` skips).
        file.write_all(format!("{line}\n").as_bytes())
            .map_err(|source| StateError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

fn apply(done: &mut HashMap<String, Version>, l: Line) {
    match (l.removed, l.size, l.mtime_ns, l.sha1) {
        (false, Some(size), Some(mtime_ns), Some(sha1)) => {
            done.insert(
                l.key,
                Version {
                    stat: Stat { size, mtime_ns },
                    sha1,
                },
            );
        }
        _ => {
            done.remove(&l.key);
        }
    }
}

fn line_of(key: &str, version: Option<&Version>) -> String {
    let line = Line {
        key: key.to_string(),
        size: version.map(|v| v.stat.size),
        mtime_ns: version.map(|v| v.stat.mtime_ns),
        sha1: version.map(|v| v.sha1.clone()),
        removed: version.is_none(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(size: u64, sha1: &str) -> Version {
        Version {
            stat: Stat {
                size,
                mtime_ns: 1_700_000_000_123_456_789,
            },
            sha1: sha1.into(),
        }
    }

    #[test]
    fn the_last_line_of_a_key_wins_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let (mut s, bad) = State::load(&path).unwrap();
        assert_eq!((s.len(), bad), (0, 0));
        s.compact(&|_| true).unwrap();
        s.record("a.jpg", v(1, "aa")).unwrap();
        s.record("b.jpg", v(2, "bb")).unwrap();
        s.record("a.jpg", v(3, "cc")).unwrap();
        s.forget("b.jpg").unwrap();
        s.record("c/d.jpg", v(4, "dd")).unwrap();
        drop(s);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"key":"e.jpg","size":5,"mti"#).unwrap();
        let (s, bad) = State::load(&path).unwrap();
        assert_eq!(bad, 1);
        assert_eq!(s.get("a.jpg"), Some(&v(3, "cc")));
        assert_eq!(s.get("b.jpg"), None);
        assert_eq!(s.get("c/d.jpg"), Some(&v(4, "dd")));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn compaction_keeps_what_is_asked_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let (mut s, _) = State::load(&path).unwrap();
        s.compact(&|_| true).unwrap();
        s.record("a.jpg", v(1, "aa")).unwrap();
        s.record("gone.jpg", v(2, "bb")).unwrap();
        drop(s);
        let (mut s, _) = State::load(&path).unwrap();
        s.compact(&|k| k != "gone.jpg").unwrap();
        s.record("new.jpg", v(3, "cc")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let (s, bad) = State::load(&path).unwrap();
        assert_eq!((s.len(), bad), (2, 0));
        assert!(s.get("gone.jpg").is_none() && s.get("new.jpg").is_some());
    }

    #[test]
    fn a_line_without_end_is_refused_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        std::fs::write(&path, vec![b'x'; MAX_LINE as usize + 10]).unwrap();
        assert!(matches!(
            State::load(&path),
            Err(StateError::LongLine { line: 1, .. })
        ));
    }
}
