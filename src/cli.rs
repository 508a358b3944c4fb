//! Command-line flags. go-iiif's single-dash long flags (`-config x`, `-config=x`) and the usual `--config x`
//! are both accepted. Nothing here reads files.

use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "iiif-process",
    version,
    about = "Turn master images into IIIF Image API derivatives and print a JSON report (go-iiif compatible).",
    after_help = "Flags may be written go-style with one dash (-config config.json) or with two (--config config.json).\n\
                  Exit status: 0 everything done, 1 some sources or derivatives failed (the others were made),\n\
                  2 usage, config or instructions error (nothing processed)."
)]
pub struct Args {
    /// go-iiif config file (where sources are read from, where derivatives go, which services run)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Instructions file: a JSON object of label -> {region, size, rotation, quality, format}
    #[arg(long, value_name = "FILE")]
    pub instructions: PathBuf,

    /// Source to process, relative to the config's images.source (repeatable)
    #[arg(long = "uri", value_name = "URI")]
    pub uri: Vec<String>,

    /// More sources, as with -uri
    #[arg(value_name = "URI")]
    pub uris: Vec<String>,

    /// Also write each source's report beside its derivatives, as <uri>/<report-name>
    #[arg(long)]
    pub report: bool,

    /// File name of the -report file
    #[arg(long, value_name = "NAME", default_value = "process.json")]
    pub report_name: String,

    /// IIIF Image API semantics: 2 (2.1 as go-iiif speaks it) or 3 (3.0 strictly)
    #[arg(long, value_name = "2|3", default_value = "2", value_parser = ["2", "3"])]
    pub api: String,

    /// JPEG quality of derivatives, 1-100
    #[arg(long, value_name = "N", default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,

    /// Refuse sources with more pixels than this, before decoding (default 250000000, or the config's
    /// images.source.max_pixels)
    #[arg(long, value_name = "N")]
    pub max_pixels: Option<u64>,

    /// Sources processed at once (each holds one decoded image in memory); default: the number of cores, at most one
    /// per GiB of available memory
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,

    /// No log lines on stderr (errors are still in the report)
    #[arg(long)]
    pub quiet: bool,

    /// Read more sources from FILE, one URI per line (blank lines and # comments ignored); - reads stdin
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<String>,

    /// json: one JSON object at the end, as go-iiif prints it; jsonl: one line per source as each finishes
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = ["json", "jsonl"])]
    pub report_format: String,

    /// Show a progress bar on stderr even when it is not a terminal
    #[arg(long)]
    pub progress: bool,

    /// Skip derivatives that already exist; skip a source entirely (without decoding) when all of its derivatives
    /// and its -report file exist
    #[arg(long)]
    pub skip_existing: bool,

    /// Print the report of what would be written, reading only image headers; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Process only shard I of N of the sources (0 <= I < N, by a stable hash of each source URI), or `auto`:
    /// the index and count of this task in a Kubernetes, AWS Batch, Slurm or Cloud Run array job
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,

    /// Number of tasks for -shard auto, where the environment does not say (Kubernetes indexed Jobs)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_count: Option<u64>,

    /// Process the objects created in an S3 event notification (S3/SQS/SNS/EventBridge JSON); - reads stdin
    #[arg(long = "s3-event", value_name = "FILE")]
    pub s3_event: Option<String>,
}

impl Args {
    /// All source URIs in the order given: -uri values, then positional ones.
    pub fn all_uris(&self) -> Vec<String> {
        self.uri.iter().chain(&self.uris).cloned().collect()
    }
}

/// Parse argv (including the program name). Errors are clap's, carrying their own exit status and help text.
pub fn parse<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    Args::try_parse_from(go_style(argv))
}

/// Rewrite go-style `-name` / `-name=value` to `--name` when `name` is one of our long flags.
fn go_style(argv: Vec<OsString>) -> Vec<OsString> {
    let cmd = Args::command();
    let longs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .chain(["help".to_string(), "version".to_string()])
        .collect();
    let mut out = Vec::with_capacity(argv.len());
    let mut rest_positional = false;
    for (i, arg) in argv.into_iter().enumerate() {
        let s = arg.to_string_lossy();
        if i == 0 || rest_positional {
            out.push(arg);
            continue;
        }
        if s == "--" {
            rest_positional = true;
            out.push(arg);
            continue;
        }
        if let Some(body) = s.strip_prefix('-').filter(|b| !b.starts_with('-')) {
            let name = body.split('=').next().unwrap_or("");
            if name.len() > 1 && longs.iter().any(|l| l == name) {
                out.push(OsString::from(format!("-{s}")));
                continue;
            }
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_and_gnu_style_are_the_same() {
        let a = parse([
            "p",
            "-config",
            "c.json",
            "-instructions=i.json",
            "-uri",
            "a.jpg",
            "-uri",
            "b.jpg",
            "c.jpg",
        ])
        .unwrap();
        let b = parse([
            "p",
            "--config",
            "c.json",
            "--instructions",
            "i.json",
            "--uri=a.jpg",
            "--uri",
            "b.jpg",
            "c.jpg",
        ])
        .unwrap();
        assert_eq!(a.all_uris(), ["a.jpg", "b.jpg", "c.jpg"]);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn dash_values_are_not_mangled() {
        let a = parse([
            "p",
            "-config",
            "c",
            "-instructions",
            "i",
            "-jpeg-quality",
            "70",
            "-report",
            "-report-name",
            "r.json",
        ])
        .unwrap();
        assert_eq!(a.jpeg_quality, 70);
        assert!(a.report);
        assert_eq!(a.report_name, "r.json");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse(["p", "-config", "c", "-instructions", "i", "-api", "4"]).is_err());
        assert!(parse([
            "p",
            "-config",
            "c",
            "-instructions",
            "i",
            "-jpeg-quality",
            "0"
        ])
        .is_err());
        assert!(parse(["p", "-instructions", "i"]).is_err());
    }
}
