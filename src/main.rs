//! The thin binary: parse arguments, run the library, map the outcome to an exit status.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match iiif_process::cli::parse(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let settings = match iiif_process::app::Settings::from_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("iiif-process: {:#}", anyhow::Error::from(e));
            return ExitCode::from(2);
        }
    };
    let jsonl = settings.jsonl;
    let outcome = iiif_process::app::run(&settings, &|uri, report| {
        if jsonl {
            // One line per finished source, flushed, so a killed run still leaves every finished line.
            let line = iiif_process::report::json_line(uri, report);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    });
    if !jsonl {
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{}", outcome.report_json()).is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::from(if outcome.failed_sources > 0 { 1 } else { 0 })
}
