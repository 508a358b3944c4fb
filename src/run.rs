//! The run loop: `jobs` plain threads take sources from a shared queue, each making its source's derivatives on
//! the global rayon pool. A source waits for memory from a byte budget before decoding. No lock is ever held
//! across rayon work, and no rayon task ever waits for a source or for memory, so the loop cannot deadlock.
//! A first SIGINT or SIGTERM stops taking new sources; those in flight finish and are reported.

use crate::plan::{Plan, PlannedSource};
use crate::progress::Log;
use crate::report::SourceReport;
use crate::settings::Settings;
use crate::source::{self, claims::Claims, Context};
use crate::store::{self, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "needs about {need_mib} MiB of memory to decode and make its derivatives, more than the whole \
         -max-memory budget of {limit_mib} MiB"
    )]
    TooLarge { need_mib: u64, limit_mib: u64 },
}

/// Bytes of decoded images that may be alive at once, shared by the sources in flight.
pub struct Budget {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Memory held by one source; returned to the budget when dropped.
pub struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Take `bytes`, waiting while other sources hold too much of the budget. A request larger than the whole
    /// budget fails at once. Called only from the run loop's own threads, never from rayon's.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation<'_>, BudgetError> {
        if bytes > self.limit {
            return Err(BudgetError::TooLarge {
                need_mib: bytes.div_ceil(1 << 20),
                limit_mib: self.limit >> 20,
            });
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Ok(Reservation {
            budget: self,
            bytes,
        })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// The signal that stopped the run (0 while none has).
pub type StopFlag = Arc<AtomicUsize>;

/// The glibc tunable that backs malloc's large blocks with transparent huge pages.
const HUGE_PAGES: &str = "glibc.malloc.hugetlb";

/// Start this binary again, once, with malloc's large blocks on transparent huge pages. A run touches each
/// decoded frame page by page once: with 2 MiB pages the kernel takes 512 times fewer page faults for it, which
/// on the benchmark's 17.9 MP hero is a tenth of the wall time. glibc reads the setting only
/// when a process starts, hence the `exec` of `/proc/self/exe`: the same process (pid, open files, arguments)
/// with one more variable. Nothing happens where `GLIBC_TUNABLES` is set at all: a user who tunes malloc keeps
/// exactly that, and the started-again process, which has it, cannot start itself once more (glibc cuts the
/// variable's value short after its first tunable, so "does it name huge pages" is no guard). Nothing happens
/// either where the kernel's THP are off (glibc then asks for nothing) or where the exec fails.
/// Must be called first, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn with_huge_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let Some(arg0) = args.next() else { return };
    // Returns only when the exec failed: the run goes on with the default pages.
    let _ = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", format!("{HUGE_PAGES}=1"))
        .exec();
}

/// Huge pages are asked of glibc's malloc only on Linux.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn with_huge_pages() {}

/// SIGINT and SIGTERM set the returned flag (to the signal's number); a second one ends the process at once
/// with the usual status (130 or 143).
pub fn stop_on_signals() -> StopFlag {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag: StopFlag = Arc::new(AtomicUsize::new(0));
    for sig in [SIGINT, SIGTERM] {
        let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The order matters: the conditional exit is checked before the flag is set by this same signal.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&seen));
        let _ = signal_hook::flag::register(sig, seen);
        let _ = signal_hook::flag::register_usize(sig, Arc::clone(&flag), sig as usize);
    }
    flag
}

/// The outcome of a run.
/// The stores a run reads and writes, opened from its settings.
pub struct Stores {
    pub sources: Box<dyn Store>,
    pub derivatives: Box<dyn Store>,
    /// go-iiif v8's report bucket (`-report-bucket-uri`), when there is one.
    pub reports: Option<Box<dyn Store>>,
}

impl Stores {
    pub fn open(settings: &Settings) -> Result<Stores, StoreError> {
        let open = |location| store::open(location, &settings.store_options);
        Ok(Stores {
            sources: open(&settings.config.source)?,
            derivatives: open(&settings.config.derivatives)?,
            reports: settings.report_bucket().map(open).transpose()?,
        })
    }

    /// Where the reports are: the report bucket, else beside the derivatives.
    pub fn reports(&self) -> &dyn Store {
        self.reports.as_deref().unwrap_or(self.derivatives.as_ref())
    }
}

pub struct RunOutcome {
    pub reports: BTreeMap<String, SourceReport>,
    /// Sources with at least one failure.
    pub failed_sources: usize,
    /// Listed files that are not images.
    pub skipped: usize,
    /// Sources never started because a signal stopped the run.
    pub not_started: usize,
    /// The signal that stopped the run, if one did.
    pub signal: Option<i32>,
    /// `-strict`: skipped files count as failures in the exit status.
    pub strict: bool,
}

impl RunOutcome {
    pub fn report_json(&self) -> String {
        crate::report::to_pretty_json(&self.reports)
    }

    /// The process's exit status: 128 + the signal when stopped by one, 1 when any source failed (or, with
    /// `-strict`, any listed file was skipped), else 0.
    pub fn exit_code(&self) -> u8 {
        match self.signal {
            Some(sig) => (128 + sig) as u8,
            None if self.failed_sources > 0 || (self.strict && self.skipped > 0) => 1,
            None => 0,
        }
    }
}

/// Process every source of `plan`; `on_done` is called as each finished source's report is ready (for
/// streaming).
#[allow(clippy::too_many_arguments)]
pub fn run(
    settings: &Settings,
    plan: &Plan,
    sources: &dyn Store,
    derivatives: &dyn Store,
    reports: Option<&dyn Store>,
    stop: &AtomicUsize,
    on_done: &(dyn Fn(&str, &SourceReport) + Sync),
) -> RunOutcome {
    let log = Log::new(settings, plan.sources.len());
    for notice in &plan.notices {
        log.line(notice);
    }
    if !settings.config.ignored_keys.is_empty() {
        log.line(&format!(
            "warning: config keys not used by iiif-process: {}",
            settings.config.ignored_keys.join(", ")
        ));
    }
    let claims = Claims::default();
    let budget = Budget::new(settings.max_memory);
    let ctx = Context {
        settings,
        sources,
        derivatives,
        reports,
        claims: &claims,
        budget: &budget,
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, SourceReport)>> = Mutex::new(Vec::new());
    let threads = settings.jobs.min(plan.sources.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) != 0 {
                    break;
                }
                let Some(planned) = plan.sources.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    break;
                };
                let report = process_one(&ctx, planned, &log);
                on_done(&planned.given, &report);
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                r.push((planned.given.clone(), report));
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let signal = match stop.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig as i32),
    };
    let skipped = results.iter().filter(|(_, r)| r.skipped.is_some()).count();
    let failed_sources = results.iter().filter(|(_, r)| !r.errors.is_empty()).count();
    let not_started = plan.sources.len() - results.len();
    log.finish();
    if skipped > 0 || failed_sources > 0 || signal.is_some() {
        let mut line = format!(
            "{} of {} sources done, {failed_sources} failed, {skipped} skipped (not images)",
            results.len() - failed_sources - skipped,
            plan.sources.len()
        );
        if let Some(sig) = signal {
            line.push_str(&format!(
                "; stopped by signal {sig}: {not_started} not started"
            ));
        }
        log.line(&line);
    }
    RunOutcome {
        reports: results.into_iter().collect(),
        failed_sources,
        skipped,
        not_started,
        signal,
        strict: settings.strict,
    }
}

/// One source, with its log lines: one line for a source that failed as a whole, one per failed label otherwise.
pub(crate) fn process_one(ctx: &Context, planned: &PlannedSource, log: &Log) -> SourceReport {
    let verbose = ctx.settings.verbose && !ctx.settings.quiet;
    if verbose {
        log.line(&format!("{}: processing", planned.given));
    }
    let outcome = source::process(ctx, planned);
    let report = outcome.report;
    if verbose {
        for (label, uri) in &report.uris {
            let [w, h] = report.dimensions.get(label).copied().unwrap_or_default();
            log.line(&format!("{}: {label}: {uri} ({w}x{h})", planned.given));
        }
    }
    if let Some(reason) = &report.skipped {
        log.line(&format!("skipping {}: {reason}", planned.given));
    } else if let Some(msg) = &outcome.failure {
        log.line(&format!("{}: {msg}", planned.given));
    } else {
        for (label, msg) in &report.errors {
            log.line(&format!("{}: {label}: {msg}", planned.given));
        }
        for msg in &report.warnings {
            log.line(&format!("{}: warning: {msg}", planned.given));
        }
    }
    log.source_done(report.uris.len(), !report.errors.is_empty());
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_admits_what_fits_and_refuses_what_never_can() {
        let b = Budget::new(100);
        let r = b.reserve(60).unwrap();
        assert!(b.reserve(101).is_err());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.reserve(50).map(|r| r.bytes).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "60 + 50 must wait");
            drop(r);
            assert_eq!(waiter.join().unwrap(), 50);
        });
        assert_eq!(*b.used.lock().unwrap(), 0);
    }
}
