//! When a file in the watched folder is completely written. Where the platform reports a writer closing a file
//! (Linux's close-write), a file written to is taken only after its last writer closed it, and a short quiet
//! time after that; a file moved in is complete at once. Elsewhere, and for files found by a scan rather than
//! seen being written (at startup, after the event queue overflowed, in a folder moved in), a file is taken once
//! its size and modification time have not changed for the settle time.

use super::state::Stat;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Whether this platform's watcher reports a writer closing a file.
pub const HAS_CLOSE_WRITE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// How long a closed file must stay quiet: some writers close and reopen a file to append to it.
pub const CLOSE_QUIET: Duration = Duration::from_millis(150);

/// What the folder said about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Data written (or the file truncated): a writer has it open.
    Written,
    /// A writer closed it, or it was moved in whole.
    Closed,
    /// It exists, with no word of a writer: created, linked, found by a scan, its attributes changed.
    Found,
}

#[derive(Debug)]
struct Pending {
    since: Instant,
    /// Written to since its last close (only where close-write is reported).
    writing: bool,
    closed: bool,
    /// The size and time last looked at, for the stability check.
    stat: Option<Stat>,
}

/// The files seen but not yet taken.
#[derive(Debug)]
pub struct Settle {
    settle: Duration,
    close_write: bool,
    pending: HashMap<String, Pending>,
}

impl Settle {
    pub fn new(settle: Duration, close_write: bool) -> Settle {
        Settle {
            settle,
            close_write,
            pending: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn seen(&mut self, key: &str, what: Seen, now: Instant) {
        let p = self.pending.entry(key.to_string()).or_insert(Pending {
            since: now,
            writing: false,
            closed: false,
            stat: None,
        });
        p.since = now;
        match what {
            Seen::Written => {
                p.writing = self.close_write;
                p.closed = false;
            }
            Seen::Closed => {
                p.writing = false;
                p.closed = self.close_write || p.closed;
            }
            Seen::Found => {}
        }
    }

    pub fn forget(&mut self, key: &str) {
        self.pending.remove(key);
    }

    /// How long until the next file may be due (for the event loop's wait), if any is pending.
    pub fn next_check(&self, now: Instant) -> Option<Duration> {
        self.pending
            .values()
            .filter(|p| !p.writing)
            .map(|p| (p.since + wait(self.settle, p)).saturating_duration_since(now))
            .min()
    }

    /// The files complete now, except those `busy` says are being processed (they stay pending and are looked
    /// at again once free). `stat` looks at a file: `None` when it is gone or not a plain file. Empty files are
    /// left out until written: a writer may have just created one.
    pub fn due(
        &mut self,
        now: Instant,
        busy: &dyn Fn(&str) -> bool,
        stat: &dyn Fn(&str) -> Option<Stat>,
    ) -> Vec<String> {
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for (key, p) in self.pending.iter_mut() {
            if p.writing || now.duration_since(p.since) < wait(self.settle, p) || busy(key) {
                continue;
            }
            let Some(now_stat) = stat(key).filter(|s| s.size > 0) else {
                gone.push(key.clone());
                continue;
            };
            if p.closed || p.stat == Some(now_stat) {
                due.push(key.clone());
            } else {
                // Not known to be closed and changed since last looked at (or never looked at): another
                // settle time from now.
                p.stat = Some(now_stat);
                p.since = now;
            }
        }
        for key in gone.iter().chain(&due) {
            self.pending.remove(key);
        }
        due.sort();
        due
    }
}

/// How long a file must stay quiet before it is looked at.
fn wait(settle: Duration, p: &Pending) -> Duration {
    if p.closed {
        CLOSE_QUIET.min(settle)
    } else {
        settle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const SETTLE: Duration = Duration::from_millis(1000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stat(size: u64) -> Stat {
        Stat { size, mtime_ns: 7 }
    }

    #[test]
    fn with_close_write_a_file_is_taken_only_after_its_writer_closed_it() {
        let t0 = Instant::now();
        let mut s = Settle::new(SETTLE, true);
        let size = Cell::new(10);
        let look = |_: &str| Some(stat(size.get()));
        s.seen("a.jpg", Seen::Found, t0);
        s.seen("a.jpg", Seen::Written, t0 + ms(10));
        // A writer pausing far longer than the settle time: still being written.
        assert!(s.due(t0 + ms(60_000), &|_| false, &look).is_empty());
        assert_eq!(s.next_check(t0), None);
        s.seen("a.jpg", Seen::Closed, t0 + ms(60_000));
        assert!(s.due(t0 + ms(60_050), &|_| false, &look).is_empty());
        assert_eq!(s.due(t0 + ms(60_200), &|_| false, &look), ["a.jpg"]);
        assert!(s.is_empty());
    }

    #[test]
    fn a_reopened_file_waits_for_its_next_close() {
        let t0 = Instant::now();
        let mut s = Settle::new(SETTLE, true);
        let look = |_: &str| Some(stat(10));
        s.seen("a.jpg", Seen::Written, t0);
        s.seen("a.jpg", Seen::Closed, t0 + ms(10));
        s.seen("a.jpg", Seen::Written, t0 + ms(50));
        assert!(s.due(t0 + ms(5_000), &|_| false, &look).is_empty());
        s.seen("a.jpg", Seen::Closed, t0 + ms(5_000));
        assert_eq!(s.due(t0 + ms(5_200), &|_| false, &look), ["a.jpg"]);
    }

    #[test]
    fn without_close_write_a_file_is_taken_once_its_size_is_stable() {
        let t0 = Instant::now();
        let mut s = Settle::new(SETTLE, false);
        let size = Cell::new(10);
        let look = |_: &str| Some(stat(size.get()));
        s.seen("a.jpg", Seen::Written, t0);
        // Close events mean nothing here.
        s.seen("a.jpg", Seen::Closed, t0);
        assert!(s.due(t0 + ms(500), &|_| false, &look).is_empty());
        // First look after the settle time: remembered, not yet taken.
        assert!(s.due(t0 + ms(1_000), &|_| false, &look).is_empty());
        size.set(20);
        assert!(s.due(t0 + ms(2_000), &|_| false, &look).is_empty());
        assert!(s.due(t0 + ms(2_500), &|_| false, &look).is_empty());
        assert_eq!(s.due(t0 + ms(3_000), &|_| false, &look), ["a.jpg"]);
    }

    #[test]
    fn found_files_need_a_stable_size_even_with_close_write() {
        let t0 = Instant::now();
        let mut s = Settle::new(SETTLE, true);
        let look = |_: &str| Some(stat(10));
        s.seen("a.jpg", Seen::Found, t0);
        assert!(s.due(t0 + ms(1_000), &|_| false, &look).is_empty());
        assert_eq!(s.due(t0 + ms(2_000), &|_| false, &look), ["a.jpg"]);
    }

    #[test]
    fn gone_and_empty_files_are_dropped_and_busy_ones_wait() {
        let t0 = Instant::now();
        let mut s = Settle::new(SETTLE, true);
        s.seen("gone.jpg", Seen::Closed, t0);
        s.seen("empty.jpg", Seen::Closed, t0);
        s.seen("busy.jpg", Seen::Closed, t0);
        let look = |k: &str| match k {
            "gone.jpg" => None,
            "empty.jpg" => Some(stat(0)),
            _ => Some(stat(5)),
        };
        assert!(s.due(t0 + ms(200), &|k| k == "busy.jpg", &look).is_empty());
        assert_eq!(s.len(), 1);
        assert_eq!(s.due(t0 + ms(300), &|_| false, &look), ["busy.jpg"]);
    }
}
