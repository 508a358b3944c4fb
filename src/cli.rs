//! Command-line flags. go-iiif's single-dash long flags (`-config x`, `-config=x`) and the usual `--config x`
//! are both accepted. Nothing here reads files.

use crate::codec::WebpQuality;
use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
    /// go-iiif config file (where sources are read from, where derivatives go, which services run), or a bucket
    /// URI of one (s3://bucket/config.json)
    #[arg(long, value_name = "FILE|URI", conflicts_with_all = ["config_source", "config_name"])]
    pub config: Option<PathBuf>,

    /// Instructions file: a JSON object of label -> {region, size, rotation, quality, format}, or a bucket URI of
    /// one
    #[arg(long, value_name = "FILE|URI", conflicts_with_all = ["instructions_source", "instructions_name"])]
    pub instructions: Option<PathBuf>,

    /// go-iiif v8: the folder or bucket holding the config (file:///dir, s3://bucket/prefix, gs://, azblob://),
    /// or defaults:// for go-iiif's built-in config; defaults:// when neither this nor -config is given
    #[arg(long, value_name = "URI")]
    pub config_source: Option<String>,

    /// go-iiif v8: the config's name in -config-source (default config.json)
    #[arg(long, value_name = "NAME")]
    pub config_name: Option<String>,

    /// go-iiif v8: the folder or bucket holding the instructions, or defaults:// for go-iiif's built-in set;
    /// defaults:// when neither this nor -instructions is given
    #[arg(long, value_name = "URI")]
    pub instructions_source: Option<String>,

    /// go-iiif v8: the instructions' name in -instructions-source (default instructions.json)
    #[arg(long, value_name = "NAME")]
    pub instructions_name: Option<String>,

    /// go-iiif v8: replaces the config's images.source (a file:/// folder, a plain folder or a bucket URI)
    #[arg(long, value_name = "URI")]
    pub config_images_source_uri: Option<String>,

    /// go-iiif v8: replaces the config's derivatives.cache (a file:/// folder, a plain folder or a bucket URI)
    #[arg(long, value_name = "URI")]
    pub config_derivatives_cache_uri: Option<String>,

    /// go-iiif v8: RFC 6570 template of each -report file's name, with the variable sha256_origin (hex SHA-256
    /// of the source's path); default process_{sha256_origin}.json. Using it writes reports in go-iiif v8's form
    #[arg(long, value_name = "TEMPLATE")]
    pub report_template: Option<String>,

    /// go-iiif v8: write the -report files into this folder or bucket, under their names alone, instead of
    /// beside the derivatives. Using it writes reports in go-iiif v8's form
    #[arg(long, value_name = "URI")]
    pub report_bucket_uri: Option<String>,

    /// Log each source as it starts and each file written, on stderr
    #[arg(long)]
    pub verbose: bool,

    /// Source to process, relative to the config's images.source (repeatable)
    #[arg(long = "uri", value_name = "URI")]
    pub uri: Vec<String>,

    /// More sources, as with -uri
    #[arg(value_name = "URI")]
    pub uris: Vec<String>,

    /// Also write each source's report beside its derivatives, as <uri>/<report-name>
    #[arg(long)]
    pub report: bool,

    /// Also write an index.html beside each -report file showing the derivatives, palette and blurhash
    /// (implies -report)
    #[arg(long)]
    pub report_html: bool,

    /// File name of the -report file
    #[arg(long, value_name = "NAME", default_value = "process.json")]
    pub report_name: String,

    /// IIIF Image API semantics: 2 (2.1 as go-iiif speaks it) or 3 (3.0 strictly)
    #[arg(long, value_name = "2|3", default_value = "2", value_parser = ["2", "3"])]
    pub api: String,

    /// JPEG quality of derivatives, 1-100
    #[arg(long, value_name = "N", default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,

    /// WebP derivatives: lossy at quality N (1-100), or `lossless` (default 80, or the config's
    /// derivatives.webp_quality)
    #[arg(long, value_name = "N|lossless")]
    pub webp_quality: Option<WebpQuality>,
    /// srgb: convert every derivative from the source's ICC profile to sRGB (untagged); keep: keep the source's
    /// colours and embed its profile (jpg, png, webp, tif; gif is converted). Default srgb, or the config's
    /// derivatives.colour
    #[arg(long, value_name = "srgb|keep", value_parser = ["srgb", "keep"])]
    pub colour: Option<String>,

    /// Metadata derivatives carry: rights (default: EXIF Copyright and Artist, XMP dc:rights, IPTC
    /// CopyrightNotice), none, or all (the source's EXIF, XMP and IPTC as they are); or the config's
    /// derivatives.metadata
    #[arg(long, value_name = "none|rights|all", value_parser = ["none", "rights", "all"])]
    pub metadata: Option<String>,

    /// Exit with status 1 when a listed file was skipped (not an image), as when a source fails
    #[arg(long)]
    pub strict: bool,

    /// Refuse sources with more pixels than this, before decoding (default 250000000, or the config's
    /// images.source.max_pixels)
    #[arg(long, value_name = "N")]
    pub max_pixels: Option<u64>,

    /// Refuse a derivative whose pixels (after rotation, and any image made on the way to it) would exceed this,
    /// before allocating it; that derivative fails and the run goes on (default 100000000, or the config's
    /// derivatives.max_output_pixels)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_output_pixels: Option<u64>,

    /// Memory for decoded images, e.g. 4G or 512M: each source reserves its decoded size from it before
    /// decoding and waits while it is in use (default: half the available memory, within the cgroup limit)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// Sources processed at once, at most (memory is also bounded by -max-memory); default: the number of cores
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,

    /// Publish derivatives of damaged masters (corrupt JPEG data) instead of failing those sources
    #[arg(long)]
    pub accept_damaged: bool,

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

    /// Object storage: total time a failed request is retried for, with exponential backoff (5xx answers,
    /// refused or dropped connections, timeouts of requests safe to repeat), e.g. 60s, 2m, 500ms; 0 for no retries
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub storage_retry_time: Duration,

    /// Object storage: limit on one attempt of a request, from connecting to the end of the answer (connecting
    /// alone: at most 5s), e.g. 30s
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub storage_timeout: Duration,

    /// Object storage: the Cache-Control header every object written is served with, e.g.
    /// "public, max-age=31536000" (default: derivatives.cache_control in the config, else none)
    #[arg(long, value_name = "VALUE")]
    pub cache_control: Option<String>,
    /// Also make a IIIF Level 0 image service per source, from the same decode: tiles, sizes, full/max and
    /// info.json at their canonical paths in the source's directory of derivatives (or derivatives.tiles.enable)
    #[arg(long)]
    pub tiles: bool,

    /// Image API of the -tiles service: 3, 2 (2.1) or both (3.0 at the root, 2.1 in v2/); default 3, or
    /// derivatives.tiles.api
    #[arg(long, value_name = "3|2|both")]
    pub tiles_api: Option<String>,

    /// Tile width and height in pixels, 64-4096 (default 512, or derivatives.tiles.tile_size)
    #[arg(long, value_name = "N")]
    pub tile_size: Option<u64>,

    /// URL at which the derivatives root is served: info.json ids are this and the service's path (default:
    /// the path alone, relative; or derivatives.tiles.base_url)
    #[arg(long, value_name = "URL")]
    pub tiles_base_url: Option<String>,

    /// Also write each derivative at its canonical IIIF path in the source's image service (default.jpg, w,h
    /// sizes), so the -tiles service answers it (or derivatives.tiles.canonical)
    #[arg(long)]
    pub canonical: bool,

    /// Resize every derivative from the full-resolution image (slow; the reference for measuring quality)
    #[arg(long, hide = true)]
    pub from_full_resolution: bool,

    /// Print the manual page (roff) on stdout and exit
    #[arg(long, exclusive = true)]
    pub man: bool,

    /// Print the completion script of SHELL (bash, zsh, fish, elvish, powershell) on stdout and exit
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,
    /// cli: process the sources given and exit; fsnotify: watch the config's source folder and process each
    /// image put there once it is completely written, until SIGINT or SIGTERM; lambda: see iiif-process-aws
    #[arg(long, value_enum, value_name = "MODE", default_value = "cli")]
    pub mode: Mode,

    /// -mode fsnotify: watch only the source folder itself, not the folders below it
    #[arg(long)]
    pub watch_flat: bool,

    /// -mode fsnotify: how long a file's size and time must stay unchanged before it is taken, where no close
    /// of its writer is reported (files found at startup; systems other than Linux), e.g. 2s, 500ms
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_positive_duration)]
    pub watch_settle: Duration,

    /// -mode fsnotify: the file recording which versions were processed, so a restart takes only what is new
    /// (default: .iiif-process-watch.jsonl in the source folder)
    #[arg(long, value_name = "FILE")]
    pub watch_state: Option<PathBuf>,
}

/// What the process does: one batch, or a watched folder. The Lambda function is its own binary.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cli,
    Fsnotify,
    Lambda,
}

/// `-mode lambda` asked of this binary.
#[derive(Debug, thiserror::Error)]
#[error(
    "-mode lambda: the AWS Lambda function is `iiif-process-aws lambda`, a separate binary of this workspace \
     (crates/iiif-process-aws); this binary runs -mode cli and -mode fsnotify"
)]
pub struct LambdaElsewhere;

impl Args {
    /// All source URIs in the order given: -uri values, then positional ones.
    pub fn all_uris(&self) -> Vec<String> {
        self.uri.iter().chain(&self.uris).cloned().collect()
    }

    /// Is this a go-iiif v8 command line (the config named by -config-source, or go-iiif's default, or a v8
    /// report flag)? Its reports then take v8's names and form; a 2019 command line keeps the 2019 output.
    pub fn is_v8(&self) -> bool {
        self.config.is_none() || self.report_template.is_some() || self.report_bucket_uri.is_some()
    }
}

/// Flags that are not read from the environment: they replace the run with other output.
const NOT_FROM_ENV: &[&str] = &["man", "completions"];

/// The variable go-iiif reads a flag from: `IIIF_` and the flag's name in capitals, `-` as `_`
/// (`-config-source`: `IIIF_CONFIG_SOURCE`).
pub fn env_name(flag: &str) -> String {
    format!("IIIF_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// The command with every long flag also read from its `IIIF_` variable (the command line wins).
pub fn command() -> clap::Command {
    Args::command().mut_args(|a| match a.get_long() {
        Some(l) if !NOT_FROM_ENV.contains(&l) => {
            let var = env_name(l);
            a.env(var)
        }
        _ => a,
    })
}

/// `-man` and `-completions`: what to print instead of running, generated from the flags themselves.
pub fn generated(args: &Args) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if args.man {
        clap_mangen::Man::new(command()).render(&mut out).ok()?;
        return Some(out);
    }
    let shell = args.completions?;
    clap_complete::generate(shell, &mut command(), "iiif-process", &mut out);
    Some(out)
}

/// Why a `-max-memory` value is not a size.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SizeError {
    #[error("{0:?}: unknown unit {1:?} (use K, M, G or T)")]
    Unit(String, char),
    #[error("{0:?} is not a size (e.g. 4G, 512M, 1073741824)")]
    NotANumber(String),
    #[error("{0:?} is not a usable size")]
    Range(String),
}

/// A byte size: a number with an optional K, M, G or T suffix (powers of 1024; `B`, `iB` allowed after it).
fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(SizeError::Unit(s.to_string(), c)),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| SizeError::NotANumber(s.to_string()))?;
    let bytes = n * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(SizeError::Range(s.to_string()));
    }
    Ok(bytes as u64)
}

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration (e.g. 60s, 2m, 500ms, 1h, or plain seconds)")]
    Syntax(String),
    #[error("{0:?}: the duration must be more than zero")]
    Zero(String),
}

/// A duration: a non-negative number with an optional unit, ms, s, m or h (plain numbers are seconds).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), &t[split..]);
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(DurationError::Syntax(s.to_string())),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| DurationError::Syntax(s.to_string()))?;
    // from_secs_f64 panics on what it cannot hold; a week is far beyond any sane storage setting.
    let secs = n * scale;
    if !(0.0..=7.0 * 86400.0).contains(&secs) {
        return Err(DurationError::Syntax(s.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// As [`parse_duration`], more than zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, DurationError> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(DurationError::Zero(s.to_string())),
        d => Ok(d),
    }
}

/// Parse argv (including the program name). Errors are clap's, carrying their own exit status and help text.
pub fn parse<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let matches = command().try_get_matches_from(go_style(argv)?)?;
    <Args as clap::FromArgMatches>::from_arg_matches(&matches)
}

/// Rewrite go-style `-name` / `-name=value` to `--name` when `name` is one of our long flags. A single-dash word
/// that is not one (a typo, or a go-iiif flag this tool does not have) is an error that names the whole flag and
/// the nearest one, rather than clap's reading of it as a cluster of short flags.
fn go_style(argv: Vec<OsString>) -> Result<Vec<OsString>, clap::Error> {
    go_style_for(&Args::command(), argv)
}

/// [`go_style`] for the flags of `cmd` (another binary's command line in the go-iiif manner). A flag whose value
/// must follow `=` (`-wait=false`) never takes the next word as its value.
pub fn go_style_for(
    cmd: &clap::Command,
    argv: Vec<OsString>,
) -> Result<Vec<OsString>, clap::Error> {
    let longs: Vec<(String, bool)> = cmd
        .get_arguments()
        .filter_map(|a| {
            a.get_long().map(|l| {
                (
                    l.to_string(),
                    a.get_action().takes_values() && !a.is_require_equals_set(),
                )
            })
        })
        .chain([("help".to_string(), false), ("version".to_string(), false)])
        .collect();
    let mut out = Vec::with_capacity(argv.len());
    let mut rest_positional = false;
    let mut value_next = false;
    for (i, arg) in argv.into_iter().enumerate() {
        let s = arg.to_string_lossy().into_owned();
        if i == 0 || rest_positional || std::mem::take(&mut value_next) {
            out.push(arg);
            continue;
        }
        if s == "--" {
            rest_positional = true;
            out.push(arg);
            continue;
        }
        let (dashes, body) = match s.strip_prefix("--") {
            Some(b) => (2, b),
            None => (1, s.strip_prefix('-').unwrap_or("")),
        };
        if body.is_empty() {
            out.push(arg);
            continue;
        }
        let name = body.split('=').next().unwrap_or("");
        match longs.iter().find(|(l, _)| l == name) {
            Some((_, takes)) => {
                value_next = *takes && !body.contains('=');
                out.push(if dashes == 1 {
                    OsString::from(format!("-{s}"))
                } else {
                    arg
                });
            }
            // `-1` and the like are values, and `-h`/`-V` clap's short flags.
            None if dashes == 1
                && name.len() > 1
                && !name.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                let nearest = longs
                    .iter()
                    .map(|(l, _)| (strsim::levenshtein(l, name), l))
                    .min()
                    .filter(|(d, l)| *d <= 2.max(l.len() / 3));
                let hint = match nearest {
                    Some((_, l)) => format!(" (did you mean -{l}?)"),
                    None => " (see -help)".to_string(),
                };
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::UnknownArgument,
                    format!("unknown flag -{name}{hint}\n"),
                ));
            }
            None => out.push(arg),
        }
    }
    Ok(out)
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
    fn a_single_dash_typo_names_the_flag_and_the_nearest() {
        let e = parse(["p", "-confg", "c", "-instructions", "i"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(
            e.to_string().trim_end(),
            "error: unknown flag -confg (did you mean -config?)"
        );
        let e = parse([
            "p",
            "-config",
            "c",
            "-instructions",
            "i",
            "-no-such-flag",
            "x",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown flag -no-such-flag"), "{e}");
        // Values are not taken for flags, nor negative numbers.
        let a = parse(["p", "-config", "confg", "-instructions", "i", "-jobs=2"]).unwrap();
        assert_eq!(a.config.as_deref().and_then(|c| c.to_str()), Some("confg"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("4X").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("60s"), Ok(ms(60_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1.5"), Ok(ms(1500)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "-1s", "10x", "1e400", "nan", "9999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_positive_duration("0s").is_err());
        let a = parse(["p", "-config", "c", "-instructions", "i"]).unwrap();
        assert_eq!(
            (a.storage_retry_time, a.storage_timeout),
            (ms(60_000), ms(30_000))
        );
        let a = parse([
            "p",
            "-config",
            "c",
            "-instructions",
            "i",
            "-storage-retry-time",
            "2m",
            "-storage-timeout=500ms",
        ])
        .unwrap();
        assert_eq!(
            (a.storage_retry_time, a.storage_timeout),
            (ms(120_000), ms(500))
        );
        assert!(parse([
            "p",
            "-config",
            "c",
            "-instructions",
            "i",
            "-storage-timeout",
            "0"
        ])
        .is_err());
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
        // A 2019 config with a v8 config name is a contradiction, not a guess.
        assert!(parse(["p", "-config", "c", "-config-name", "x.json"]).is_err());
        assert!(parse([
            "p",
            "-instructions",
            "i",
            "-instructions-source",
            "file:///x"
        ])
        .is_err());
    }

    #[test]
    fn go_iiif_v8_flags() {
        let a = parse([
            "p",
            "-config-source",
            "file:///etc/iiif",
            "-config-name=c.json",
            "-instructions-source",
            "defaults://",
            "-config-images-source-uri",
            "file:///masters?metadata=skip",
            "-config-derivatives-cache-uri",
            "s3://bucket/iiif",
            "-report",
            "-report-template",
            "{sha256_origin}.json",
            "-report-bucket-uri",
            "file:///reports",
            "-verbose",
            "a.jpg",
        ])
        .unwrap();
        assert_eq!(a.config_source.as_deref(), Some("file:///etc/iiif"));
        assert_eq!(a.config_name.as_deref(), Some("c.json"));
        assert_eq!(a.instructions_source.as_deref(), Some("defaults://"));
        assert_eq!(
            a.config_images_source_uri.as_deref(),
            Some("file:///masters?metadata=skip")
        );
        assert_eq!(
            a.config_derivatives_cache_uri.as_deref(),
            Some("s3://bucket/iiif")
        );
        assert_eq!(a.report_template.as_deref(), Some("{sha256_origin}.json"));
        assert_eq!(a.report_bucket_uri.as_deref(), Some("file:///reports"));
        assert!(a.verbose && a.report && a.is_v8());
        assert_eq!(a.all_uris(), ["a.jpg"]);
        // go-iiif's bare command line: its built-in config and instructions.
        let a = parse(["p", "a.jpg"]).unwrap();
        assert!(a.config.is_none() && a.config_source.is_none() && a.is_v8());
        let a = parse(["p", "-config", "c", "-instructions", "i"]).unwrap();
        assert!(!a.is_v8());
    }

    #[test]
    fn env_names_are_go_iiifs() {
        assert_eq!(env_name("config-source"), "IIIF_CONFIG_SOURCE");
        assert_eq!(env_name("report-template"), "IIIF_REPORT_TEMPLATE");
        let cmd = command();
        let env_of = |long: &str| {
            cmd.get_arguments()
                .find(|a| a.get_long() == Some(long))
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
        };
        assert_eq!(env_of("verbose").as_deref(), Some("IIIF_VERBOSE"));
        assert_eq!(env_of("jobs").as_deref(), Some("IIIF_JOBS"));
        assert_eq!(env_of("man"), None);
    }

    #[test]
    fn man_page_and_completions_come_from_the_flags() {
        let a = parse(["p", "-man"]).unwrap();
        let man = String::from_utf8(generated(&a).unwrap()).unwrap();
        assert!(
            man.contains(".TH iiif-process") && man.contains("config\\-source"),
            "{man}"
        );
        let a = parse(["p", "-completions", "bash"]).unwrap();
        let bash = String::from_utf8(generated(&a).unwrap()).unwrap();
        assert!(bash.contains("--config-source") && bash.contains("--report-template"));
        assert!(parse(["p", "-man", "-jobs", "2"]).is_err());
        assert!(generated(&parse(["p", "a.jpg"]).unwrap()).is_none());
    }
}
