//! Log lines and the progress bar on stderr. `-quiet` silences both; the report is never affected.

use crate::settings::Settings;

/// Log lines and the progress bar on stderr, which must not tear each other.
pub struct Log {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    /// `-progress` on a pipe or file (a log, cron, a container): a plain line per finished source.
    plain: Option<(std::time::Instant, usize)>,
    done: std::sync::atomic::AtomicUsize,
    derivatives: std::sync::atomic::AtomicUsize,
    failures: std::sync::atomic::AtomicUsize,
}

impl Log {
    pub fn new(settings: &Settings, total: usize) -> Log {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (settings.progress && terminal && !settings.quiet).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} sources, {msg}, ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message("0 derivatives");
            bar
        });
        Log {
            quiet: settings.quiet,
            bar,
            plain: (settings.progress && !terminal && !settings.quiet)
                .then(|| (std::time::Instant::now(), total)),
            done: Default::default(),
            derivatives: Default::default(),
            failures: Default::default(),
        }
    }

    /// Log lines only, for a run whose number of sources is not known in advance (a watch).
    pub fn lines_only(settings: &Settings) -> Log {
        Log {
            quiet: settings.quiet,
            bar: None,
            plain: None,
            done: Default::default(),
            derivatives: Default::default(),
            failures: Default::default(),
        }
    }

    pub fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("iiif-process: {msg}")),
            None => eprintln!("iiif-process: {msg}"),
        }
    }

    pub fn source_done(&self, derivatives: usize, failed: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let d = self.derivatives.fetch_add(derivatives, Relaxed) + derivatives;
        let f = self.failures.fetch_add(failed as usize, Relaxed) + failed as usize;
        if let Some(bar) = &self.bar {
            let secs = bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{d} derivatives ({:.1}/s), {f} failed",
                d as f64 / secs
            ));
            bar.inc(1);
        }
        let n = self.done.fetch_add(1, Relaxed) + 1;
        if let Some((start, total)) = self.plain {
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            let eta = secs / n as f64 * total.saturating_sub(n) as f64;
            eprintln!(
                "iiif-process: {n}/{total} sources, {d} derivatives ({:.1}/s), {f} failed, ETA {eta:.0}s",
                d as f64 / secs
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
