//! The thin binary: arguments, settings, stores, plan, run, report; the outcome becomes the exit status.

use iiif_process::{cli, plan::Plan, report, run, settings::Settings, watch};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    run::with_huge_pages();
    let args = match cli::parse(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some(text) = cli::generated(&args) {
        return ExitCode::from(u8::from(std::io::stdout().write_all(&text).is_err()));
    }
    // Errors print their own causes, once.
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("iiif-process: {e}");
        ExitCode::from(2)
    };
    if args.mode == cli::Mode::Lambda {
        return fail(&cli::LambdaElsewhere);
    }
    let settings = match Settings::from_args(&args) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let run::Stores {
        sources,
        derivatives,
        reports,
    } = match run::Stores::open(&settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if args.mode == cli::Mode::Fsnotify {
        let stop = run::stop_on_signals();
        // A watch has no end to print one object at: a line per source as each finishes, whatever -report-format.
        let emit = |uri: &str, r: &report::SourceReport| {
            let line = report::json_line(uri, r);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        };
        return match watch::run(
            &args,
            &settings,
            derivatives.as_ref(),
            reports.as_deref(),
            &stop,
            &emit,
        ) {
            Ok(code) => ExitCode::from(code),
            Err(e) => fail(&e),
        };
    }
    let plan = match Plan::build(&args, &settings, sources.as_ref()) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let stop = run::stop_on_signals();
    let jsonl = settings.jsonl;
    let outcome = run::run(
        &settings,
        &plan,
        sources.as_ref(),
        derivatives.as_ref(),
        reports.as_deref(),
        &stop,
        &|uri, r| {
            if jsonl {
                // One line per finished source, flushed, so a killed run still leaves every finished line.
                let line = report::json_line(uri, r);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        },
    );
    if !jsonl {
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{}", outcome.report_json()).is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::from(outcome.exit_code())
}
