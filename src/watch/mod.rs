//! `-mode fsnotify`: watch the source folder and process each image put there once it is completely written,
//! once per version, until SIGINT or SIGTERM.
//!
//! One thread follows the folder (notify's events, a scan at startup and after the event queue overflowed) and
//! decides when a file is complete ([`settle`]); `jobs` threads take complete files from a queue of `jobs`
//! places, read each once, check that it did not change while read, and process it as a run does, under the
//! same memory budget. What was processed is recorded in a state file ([`state`]) after its report is out, so
//! a restart takes only what is new or changed.

mod settle;
mod state;

use crate::cli::Args;
use crate::naming::SourceUri;
use crate::plan::{PlannedSource, SourceProblem};
use crate::progress::Log;
use crate::report::SourceReport;
use crate::run::Budget;
use crate::settings::Settings;
use crate::source::{claims::Claims, Context};
use crate::store::{DiskStore, Location, Store, StoreError};
use settle::{Seen, Settle, HAS_CLOSE_WRITE};
use state::{Stat, State, StateError, Version};
use std::collections::{HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The state file's name in the watched folder, when `-watch-state` does not give one. A dot file: listings
/// and the watch itself leave it out.
pub const STATE_NAME: &str = ".iiif-process-watch.jsonl";

/// Events waiting for the watching thread; when full, the watcher waits, and the kernel's own queue (which
/// reports an overflow, answered with a full scan) takes the rest.
const EVENT_QUEUE: usize = 4096;

/// When a new folder is listed again, and how many such folders are remembered at once (beyond that, a
/// burst of new folders is left to the first listing).
const RELIST_AFTER: Duration = Duration::from_millis(500);
const RELIST_MAX: usize = 10_000;

/// The longest the watching thread sleeps: how soon a signal is noticed.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("-mode fsnotify watches a folder on disk, but images.source is {0}")]
    NotOnDisk(String),
    #[error(
        "-mode fsnotify takes its sources from the folder it watches; {0} cannot be used with it"
    )]
    Conflict(&'static str),
    #[error(
        "-mode fsnotify with -skip-existing: a replaced file must be made again, and the watch's state file \
         already keeps a restart from redoing what is done; leave -skip-existing out"
    )]
    SkipExisting,
    #[error("cannot watch {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {source}{hint}")]
    Watch {
        path: PathBuf,
        source: notify::Error,
        hint: &'static str,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot list {0}")]
    List(StoreError),
    #[error("the watcher of {0} stopped")]
    Stopped(PathBuf),
}

/// What the platform's watch limit needs, when it is what failed.
fn hint(e: &notify::Error) -> &'static str {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            " (the limit on watched folders is reached: raise fs.inotify.max_user_watches, or watch fewer \
             folders with -watch-flat)"
        }
        _ => "",
    }
}

/// Refuse what makes no sense for a watch, before anything starts.
pub fn check_args(args: &Args) -> Result<(), WatchError> {
    let conflicts = [
        (
            !args.all_uris().is_empty(),
            "-uri (or a source after the flags)",
        ),
        (args.manifest.is_some(), "-manifest"),
        (args.s3_event.is_some(), "-s3-event"),
        (args.shard.is_some(), "-shard"),
        (args.dry_run, "-dry-run"),
    ];
    if let Some((_, flag)) = conflicts.iter().find(|(given, _)| *given) {
        return Err(WatchError::Conflict(flag));
    }
    if args.skip_existing {
        return Err(WatchError::SkipExisting);
    }
    Ok(())
}

/// Which paths under the root are sources, and their keys.
struct Filter {
    root: PathBuf,
    recursive: bool,
    /// The derivatives' prefix when they lie inside the source folder.
    excluded: Option<String>,
    state_file: PathBuf,
}

impl Filter {
    /// The key of `path`, or `None` when it is not a source: outside the root, hidden (a dot file, or in a dot
    /// folder), a partial download, below the top level of a flat watch, among the derivatives, the state file.
    fn key(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts = rel
            .components()
            .map(|c| match c {
                Component::Normal(s) => s.to_str(),
                _ => None,
            })
            .collect::<Option<Vec<&str>>>()?;
        if parts.is_empty() || parts.iter().any(|p| hidden_or_partial(p)) {
            return None;
        }
        if !self.recursive && parts.len() > 1 {
            return None;
        }
        if path == self.state_file {
            return None;
        }
        let key = parts.join("/");
        let inside = |p: &String| key == *p || key.starts_with(&format!("{p}/"));
        if self.excluded.as_ref().is_some_and(inside) {
            return None;
        }
        Some(key)
    }
}

/// Names that copy tools and browsers give a file while it is being written, before renaming it into place.
fn hidden_or_partial(name: &str) -> bool {
    const PARTIAL: [&str; 6] = [".part", ".partial", ".crdownload", ".download", ".tmp", "~"];
    name.starts_with('.') || PARTIAL.iter().any(|s| name.ends_with(s))
}

/// The source file a worker has already read, handed to processing so it is not read twice: the bytes checked
/// to be one whole version are the bytes processed.
struct ReadOnce<'a> {
    key: String,
    bytes: Mutex<Option<Vec<u8>>>,
    disk: &'a DiskStore,
}

impl Store for ReadOnce<'_> {
    fn read(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        if key == self.key {
            if let Some(b) = self.bytes.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Ok(b);
            }
        }
        self.disk.read(key)
    }
    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.disk.write(key, bytes)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.disk.exists(key)
    }
    fn describe(&self, key: &str) -> String {
        self.disk.describe(key)
    }
    fn list(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.disk.list(key)
    }
}

/// What a worker did with a file.
enum Taken {
    /// Processed, its report out.
    Processed,
    /// The same bytes as the version processed last.
    Unchanged,
    /// Written to while it was read: looked at again once complete.
    Changed,
    /// Removed before it was read.
    Gone,
    /// Left in the queue because a signal came.
    Left,
}

/// What the workers share.
struct Shared<'a> {
    settings: &'a Settings,
    disk: &'a DiskStore,
    derivatives: &'a dyn Store,
    /// Where `-report` files go when `-report-bucket-uri` names a place of their own.
    reports: Option<&'a dyn Store>,
    claims: Claims,
    budget: Budget,
    state: Mutex<State>,
    log: Log,
    on_done: &'a (dyn Fn(&str, &SourceReport) + Sync),
}

/// Watch until a signal stops it; the exit status (128 + the signal).
pub fn run(
    args: &Args,
    settings: &Settings,
    derivatives: &dyn Store,
    reports: Option<&dyn Store>,
    stop: &AtomicUsize,
    on_done: &(dyn Fn(&str, &SourceReport) + Sync),
) -> Result<u8, WatchError> {
    check_args(args)?;
    let root = match &settings.config.source {
        Location::Disk(root) => root,
        other => return Err(WatchError::NotOnDisk(other.to_string())),
    };
    let root = root.canonicalize().map_err(|source| WatchError::Root {
        path: root.clone(),
        source,
    })?;
    if !root.is_dir() {
        return Err(WatchError::Root {
            path: root,
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
        });
    }
    let state_path = match &args.watch_state {
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        None => root.join(STATE_NAME),
    };
    let filter = Filter {
        root: root.clone(),
        recursive: !args.watch_flat,
        excluded: crate::plan::excluded_prefix(
            &settings.config.source,
            &settings.config.derivatives,
        ),
        state_file: state_path
            .parent()
            .and_then(|d| d.canonicalize().ok())
            .zip(state_path.file_name())
            .map(|(d, n)| d.join(n))
            .unwrap_or_else(|| state_path.clone()),
    };
    let (mut state, unreadable) = State::load(&state_path)?;
    let log = Log::lines_only(settings);
    if unreadable > 0 {
        log.line(&format!(
            "{}: {unreadable} unreadable lines left out (a write cut short)",
            state_path.display()
        ));
    }

    // The watch starts before the scan, so nothing written in between is missed.
    let (events_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
    let mut watcher = notify::recommended_watcher(move |e| {
        let _ = events_tx.send(e);
    })
    .map_err(|source| WatchError::Watch {
        path: root.clone(),
        hint: hint(&source),
        source,
    })?;
    let recursive = if filter.recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    notify::Watcher::watch(&mut watcher, &root, recursive).map_err(|source| WatchError::Watch {
        path: root.clone(),
        hint: hint(&source),
        source,
    })?;

    let disk = DiskStore::new(&root);
    let mut settle = Settle::new(args.watch_settle, HAS_CLOSE_WRITE);
    let found = scan(&disk, &filter, "").map_err(WatchError::List)?;
    let present: HashSet<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    state.compact(&|k| present.contains(k))?;
    let now = Instant::now();
    let mut new = 0;
    for (key, stat) in &found {
        if state.get(key).map(|v| v.stat) != Some(*stat) {
            settle.seen(key, Seen::Found, now);
            new += 1;
        }
    }
    log.line(&format!(
        "watching {}{}: {} files, {new} of them new or changed since last recorded in {}",
        root.display(),
        if filter.recursive {
            " and the folders below it"
        } else {
            ""
        },
        found.len(),
        state_path.display()
    ));
    drop(present);

    let shared = Shared {
        settings,
        disk: &disk,
        derivatives,
        reports,
        claims: Claims::default(),
        budget: Budget::new(settings.max_memory),
        state: Mutex::new(state),
        log,
        on_done,
    };
    let jobs = settings.jobs.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<String>(jobs);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<(String, Taken)>();
    let mut watch = Watching {
        filter: &filter,
        disk: &disk,
        settle,
        shared: &shared,
        taken: HashSet::new(),
        ready: VecDeque::new(),
        relist: Vec::new(),
    };
    let mut stopped = None;
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let done_tx = done_tx.clone();
            let (shared, work_rx) = (&shared, &work_rx);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) != 0 {
                    break;
                }
                let next = work_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok(key) = next else { break };
                let taken = if stop.load(Ordering::SeqCst) != 0 {
                    Taken::Left
                } else {
                    take(shared, &key)
                };
                let _ = done_tx.send((key, taken));
            });
        }
        stopped = watch.follow(&events, &work_tx, &done_rx, stop);
        // Workers finish the source in hand and find the queue closed.
        drop(work_tx);
    });
    drop(done_tx);
    let mut left = watch.ready.len() + watch.settle.len();
    while let Ok((_, taken)) = done_rx.try_recv() {
        left += matches!(taken, Taken::Left) as usize;
    }
    drop(watcher);
    match stopped {
        Some(Ok(sig)) => {
            shared.log.line(&format!(
                "stopped by signal {sig}: the sources in hand were finished; {left} files seen but not yet \
                 taken are taken at the next start"
            ));
            Ok((128 + sig) as u8)
        }
        Some(Err(e)) => Err(e),
        None => Err(WatchError::Stopped(root)),
    }
}

/// The watching thread's own state.
struct Watching<'a> {
    filter: &'a Filter,
    disk: &'a DiskStore,
    settle: Settle,
    shared: &'a Shared<'a>,
    /// Keys queued or being processed: never queued twice at once.
    taken: HashSet<String>,
    /// Complete files waiting for a place in the workers' queue.
    ready: VecDeque<String>,
    /// Folders to list once more, and when: the watcher adds a new folder's watch only after reporting it, so
    /// a file made in it at once may have no event of its own.
    relist: Vec<(String, Instant)>,
}

impl Watching<'_> {
    /// Follow the folder until a signal (`Some(Ok(signal))`), a failure of the watcher (`None` when its channel
    /// closed), or an error that stops the watch.
    fn follow(
        &mut self,
        events: &mpsc::Receiver<notify::Result<notify::Event>>,
        work: &mpsc::SyncSender<String>,
        done: &mpsc::Receiver<(String, Taken)>,
        stop: &AtomicUsize,
    ) -> Option<Result<i32, WatchError>> {
        loop {
            let sig = stop.load(Ordering::SeqCst);
            if sig != 0 {
                return Some(Ok(sig as i32));
            }
            while let Ok((key, taken)) = done.try_recv() {
                self.taken.remove(&key);
                if matches!(taken, Taken::Changed) {
                    self.settle.seen(&key, Seen::Found, Instant::now());
                }
            }
            while let Some(key) = self.ready.pop_front() {
                match work.try_send(key) {
                    Ok(()) => {}
                    Err(TrySendError::Full(key)) => {
                        self.ready.push_front(key);
                        break;
                    }
                    Err(TrySendError::Disconnected(_)) => return None,
                }
            }
            let wait = self
                .settle
                .next_check(Instant::now())
                .map_or(TICK, |d| d.min(TICK))
                .max(Duration::from_millis(5));
            match events.recv_timeout(wait) {
                Ok(e) => self.event(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
            while let Ok(e) = events.try_recv() {
                self.event(e);
            }
            let now = Instant::now();
            let (relist, later): (Vec<_>, Vec<_>) =
                self.relist.drain(..).partition(|(_, at)| *at <= now);
            self.relist = later;
            for (dir, _) in relist {
                self.rescan(&dir);
            }
            let taken = &self.taken;
            let root = &self.filter.root;
            let due = self
                .settle
                .due(Instant::now(), &|k| taken.contains(k), &|k| {
                    std::fs::metadata(root.join(k))
                        .ok()
                        .filter(|m| m.is_file())
                        .map(|m| Stat::of(&m))
                });
            for key in due {
                self.taken.insert(key.clone());
                self.ready.push_back(key);
            }
        }
    }

    fn event(&mut self, e: notify::Result<notify::Event>) {
        use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
        let e = match e {
            Ok(e) => e,
            Err(e) => {
                self.shared.log.line(&format!(
                    "watch: {e}{}; looking at every file again",
                    hint(&e)
                ));
                return self.rescan("");
            }
        };
        if e.need_rescan() {
            self.shared.log.line(
                "watch: events were lost (more changes than the queue holds); looking at every file again",
            );
            self.rescan("");
        }
        let now = Instant::now();
        let seen = match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Seen::Closed),
            EventKind::Access(_) => return,
            EventKind::Modify(ModifyKind::Data(_)) | EventKind::Modify(ModifyKind::Any) => {
                Some(Seen::Written)
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => None,
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Some(Seen::Closed),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let Some(from) = e.paths.first() {
                    self.gone(from);
                }
                for to in e.paths.iter().skip(1) {
                    self.arrived(to, Seen::Closed, now);
                }
                return;
            }
            _ => Some(Seen::Found),
        };
        for path in &e.paths {
            match seen {
                None => self.gone(path),
                // Data and close events are a file's own; the others may be a folder's.
                Some(s @ (Seen::Written | Seen::Closed))
                    if !matches!(e.kind, EventKind::Modify(ModifyKind::Name(_))) =>
                {
                    if let Some(key) = self.filter.key(path) {
                        self.settle.seen(&key, s, now);
                    }
                }
                Some(s) => self.arrived(path, s, now),
            }
        }
    }

    /// A path that appeared or changed: a file, or a folder (created or moved in) whose files are looked at.
    fn arrived(&mut self, path: &Path, seen: Seen, now: Instant) {
        let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        if is_dir {
            if self.filter.recursive {
                if let Some(key) = self.filter.key(path) {
                    self.rescan(&key);
                    if self.relist.len() < RELIST_MAX {
                        self.relist.push((key, now + RELIST_AFTER));
                    }
                }
            }
        } else if let Some(key) = self.filter.key(path) {
            self.settle.seen(&key, seen, now);
        }
    }

    /// A path removed or moved away: a file there later is a new one.
    fn gone(&mut self, path: &Path) {
        let Some(key) = self.filter.key(path) else {
            return;
        };
        self.settle.forget(&key);
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = state.forget(&key) {
            self.shared.log.line(&e.to_string());
        }
    }

    /// Look at every file below the folder `dir_key` ("" for the root) that is not recorded as processed as it
    /// is now: the ones whose events may have been missed.
    fn rescan(&mut self, dir_key: &str) {
        let found = match scan(self.disk, self.filter, dir_key) {
            Ok(f) => f,
            Err(e) => {
                self.shared.log.line(&format!("cannot list: {e}"));
                return;
            }
        };
        let now = Instant::now();
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        for (key, stat) in found {
            if state.get(&key).map(|v| v.stat) != Some(stat) {
                self.settle.seen(&key, Seen::Found, now);
            }
        }
    }
}

/// The source files below `dir_key`, with their sizes and times.
fn scan(
    disk: &DiskStore,
    filter: &Filter,
    dir_key: &str,
) -> Result<Vec<(String, Stat)>, StoreError> {
    let keys = disk.list(dir_key)?.unwrap_or_default();
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let path = filter.root.join(&key);
            let key = filter.key(&path)?;
            let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
            Some((key, Stat::of(&meta)))
        })
        .collect())
}

/// Read `key` once, check it is one whole version and a new one, and process it.
fn take(shared: &Shared, key: &str) -> Taken {
    let path = shared.disk.root().join(key);
    let stat_now = || {
        std::fs::metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| Stat::of(&m))
    };
    let Some(before) = stat_now() else {
        return Taken::Gone;
    };
    let (bytes, version) = match shared.disk.read(key) {
        Ok(bytes) => {
            // A writer that reopened the file while it was read changes its time or size: those bytes may mix two
            // versions, and the writer's own events bring the file back once it is complete.
            if stat_now() != Some(before) || bytes.len() as u64 != before.size {
                shared.log.line(&format!(
                    "{key}: written to while it was read; taken again once complete"
                ));
                return Taken::Changed;
            }
            let sha1 = crate::naming::fingerprint(&bytes);
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(done) = state.get(key).filter(|v| v.sha1 == sha1) {
                if done.stat != before {
                    let v = Version { stat: before, sha1 };
                    if let Err(e) = state.record(key, v) {
                        shared.log.line(&e.to_string());
                    }
                }
                return Taken::Unchanged;
            }
            (Some(bytes), Some(Version { stat: before, sha1 }))
        }
        Err(StoreError::NotFound { .. }) => return Taken::Gone,
        // Processing reads it again and reports why it cannot.
        Err(_) => (None, None),
    };
    let planned = PlannedSource {
        given: key.to_string(),
        uri: key.parse::<SourceUri>().map_err(SourceProblem::from),
        listed: true,
    };
    let one = ReadOnce {
        key: planned
            .uri
            .as_ref()
            .map_or(String::new(), |u| u.origin.clone()),
        bytes: Mutex::new(bytes),
        disk: shared.disk,
    };
    let ctx = Context {
        settings: shared.settings,
        sources: &one,
        derivatives: shared.derivatives,
        reports: shared.reports,
        claims: &shared.claims,
        budget: &shared.budget,
    };
    let report = crate::run::process_one(&ctx, &planned, &shared.log);
    (shared.on_done)(key, &report);
    if let Some(v) = version {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = state.record(key, v) {
            shared.log.line(&e.to_string());
        }
    }
    Taken::Processed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_partial_nested_and_derivative_paths_are_not_sources() {
        let f = Filter {
            root: "/srv/drop".into(),
            recursive: true,
            excluded: Some("out/iiif".into()),
            state_file: "/srv/drop/state.jsonl".into(),
        };
        let key = |p: &str| f.key(Path::new(p));
        assert_eq!(key("/srv/drop/a.jpg").as_deref(), Some("a.jpg"));
        assert_eq!(key("/srv/drop/x/y/a.tif").as_deref(), Some("x/y/a.tif"));
        assert_eq!(key("/srv/drop/out/a.jpg").as_deref(), Some("out/a.jpg"));
        for not in [
            "/srv/drop",
            "/srv/other/a.jpg",
            "/srv/drop/.a.jpg.Xy12",
            "/srv/drop/.git/a.jpg",
            "/srv/drop/a.jpg.part",
            "/srv/drop/a.jpg.crdownload",
            "/srv/drop/a.jpg~",
            "/srv/drop/out/iiif/a.jpg/full/full/0/default.jpg",
            "/srv/drop/state.jsonl",
        ] {
            assert_eq!(key(not), None, "{not}");
        }
        let flat = Filter {
            recursive: false,
            ..f
        };
        assert_eq!(
            flat.key(Path::new("/srv/drop/a.jpg")).as_deref(),
            Some("a.jpg")
        );
        assert_eq!(flat.key(Path::new("/srv/drop/x/a.jpg")), None);
    }
}
