//! Settings: every knob of a run, validated before any image is read. Reads the config and instructions files
//! (or objects, when they are given as bucket URIs) and the machine's available memory; plans no sources (that is
//! [`crate::plan`]).

pub mod config;
pub mod features;
pub mod instructions;

use crate::cli::Args;
use crate::codec::colour::ColourMode;
use crate::codec::WebpQuality;
use crate::iiif::ApiVersion;
use crate::store::{self, StoreOptions};
use config::{Config, ConfigError};
use features::FeatureError;
use instructions::{Instruction, InstructionsError};
use std::path::{Path, PathBuf};

/// The default decode limit: 250 megapixels, far above any camera and far below what would exhaust memory
/// (one 250 MP RGB frame is 750 MB).
pub const DEFAULT_MAX_PIXELS: u64 = 250_000_000;

/// The default limit on a derivative's pixels (and on every image made on the way to it): 100 MP, larger than
/// any web or print derivative, small enough (400 MB as RGBA) that an absurd request fails fast instead of
/// exhausting memory.
pub const DEFAULT_MAX_OUTPUT_PIXELS: u64 = 100_000_000;

/// The memory budget when neither the flag nor the environment says: half of what is available, so that the
/// encoders' buffers, the allocator's slack and the rest of the machine keep the other half.
const MEMORY_SHARE: f64 = 0.5;

/// Anything that stops the run before any image is read (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Instructions(#[from] InstructionsError),
    #[error(transparent)]
    Feature(#[from] FeatureError),
    /// A config or instructions object in a bucket that could not be read.
    #[error("cannot read the {what}: {source}")]
    Fetch {
        what: &'static str,
        source: crate::store::StoreError,
    },
    #[error("-report-name {0:?} must be a plain file name")]
    ReportName(String),
    #[error("{field} {value:?}: a Cache-Control value is printable ASCII, 1 to {MAX_CACHE_CONTROL} characters")]
    CacheControl { field: &'static str, value: String },
}

/// The longest Cache-Control accepted; real ones are a few dozen characters.
const MAX_CACHE_CONTROL: usize = 1024;

/// The Cache-Control of the flag, else of the config: one header value, so printable ASCII (a control character
/// would end the header, and services refuse other bytes).
fn cache_control(args: &Args, config: &Config) -> Result<Option<String>, SettingsError> {
    let (field, value) = match (&args.cache_control, &config.cache_control) {
        (Some(v), _) => ("-cache-control", v),
        (None, Some(v)) => ("derivatives.cache_control", v),
        (None, None) => return Ok(None),
    };
    if value.is_empty()
        || value.len() > MAX_CACHE_CONTROL
        || !value.bytes().all(|b| (b' '..=b'~').contains(&b))
    {
        return Err(SettingsError::CacheControl {
            field,
            value: value.chars().take(MAX_CACHE_CONTROL).collect(),
        });
    }
    Ok(Some(value.clone()))
}

/// Everything a run needs to know, validated.
pub struct Settings {
    pub config: Config,
    pub instructions: Vec<Instruction>,
    pub api: ApiVersion,
    pub jpeg_quality: u8,
    pub webp_quality: WebpQuality,
    /// Convert to sRGB or keep the source's colours and profile (`-colour`, `derivatives.colour`).
    pub colour: ColourMode,
    /// Sources with more pixels are refused before decoding.
    pub max_pixels: u64,
    /// Derivatives (and intermediate images) with more pixels are refused before allocating.
    pub max_output_pixels: u64,
    /// Bytes of decoded images that may be alive at once.
    pub max_memory: u64,
    /// Sources in flight at once, at most.
    pub jobs: usize,
    /// `-report`: the file name each source's report is written under.
    pub report_file: Option<String>,
    /// `-report-html`: an index.html beside each report file.
    pub report_html: bool,
    pub quiet: bool,
    pub jsonl: bool,
    pub progress: bool,
    pub skip_existing: bool,
    pub dry_run: bool,
    /// Publish derivatives of masters whose JPEG data is damaged.
    pub accept_damaged: bool,
    /// Retries and timeouts of the object stores.
    pub store_options: StoreOptions,
    /// Every derivative resized from the full-resolution image, no reduction ladder (slow; the reference that
    /// `bench/run.sh quality` measures the ladder against).
    pub from_full_resolution: bool,
}

impl Settings {
    pub fn from_args(args: &Args) -> Result<Settings, SettingsError> {
        let api = if args.api == "3" {
            ApiVersion::V3
        } else {
            ApiVersion::V2
        };
        // The retries and timeouts of the flags, for a config or instructions read from a bucket.
        let fetch_options = StoreOptions {
            retry_time: args.storage_retry_time,
            timeout: args.storage_timeout,
            ..StoreOptions::default()
        };
        let fetch = |path: &Path, what: &'static str| {
            let text = path.to_str()?;
            Some(
                store::read_uri(text, what, &fetch_options)?
                    .map(|bytes| {
                        let shown = PathBuf::from(store::location::redacted(text));
                        (String::from_utf8_lossy(&bytes).into_owned(), shown)
                    })
                    .map_err(|source| SettingsError::Fetch { what, source }),
            )
        };
        let config = match fetch(&args.config, "config") {
            // Relative paths in a config from a bucket resolve against the working directory.
            Some(fetched) => {
                let (text, shown) = fetched?;
                Config::parse(&text, &shown, Path::new("."))?
            }
            None => Config::load(&args.config)?,
        };
        let instructions = match fetch(&args.instructions, "instructions") {
            Some(fetched) => {
                let (text, shown) = fetched?;
                instructions::parse(&text, &shown, api)?
            }
            None => instructions::load(&args.instructions, api)?,
        };
        features::check(&config, &instructions, &args.instructions)?;
        let name = &args.report_name;
        if name.is_empty()
            || name.contains(['/', '\\'])
            || name == "."
            || name == ".."
            || name.chars().any(char::is_control)
        {
            return Err(SettingsError::ReportName(name.clone()));
        }
        let webp_quality = args
            .webp_quality
            .or(config.webp_quality)
            .unwrap_or_default();
        let cache_control = cache_control(args, &config)?;
        let colour = match args.colour.as_deref() {
            Some("keep") => ColourMode::Keep,
            Some(_) => ColourMode::Srgb,
            None => config.colour.unwrap_or_default(),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Settings {
            max_pixels: args
                .max_pixels
                .or(config.max_pixels)
                .unwrap_or(DEFAULT_MAX_PIXELS),
            max_output_pixels: args
                .max_output_pixels
                .or(config.max_output_pixels)
                .unwrap_or(DEFAULT_MAX_OUTPUT_PIXELS),
            max_memory: args
                .max_memory
                .unwrap_or_else(|| default_memory(available_memory())),
            config,
            instructions,
            api,
            jpeg_quality: args.jpeg_quality,
            webp_quality,
            colour,
            jobs: args.jobs.map_or(cores, |j| j as usize).max(1),
            report_file: (args.report || args.report_html).then(|| args.report_name.clone()),
            report_html: args.report_html,
            quiet: args.quiet,
            jsonl: args.report_format == "jsonl",
            progress: args.progress || std::io::IsTerminal::is_terminal(&std::io::stderr()),
            skip_existing: args.skip_existing,
            dry_run: args.dry_run,
            accept_damaged: args.accept_damaged,
            from_full_resolution: args.from_full_resolution,
            store_options: StoreOptions {
                retry_time: args.storage_retry_time,
                timeout: args.storage_timeout,
                cache_control,
                ..StoreOptions::default()
            },
        })
    }
}

/// The default `-max-memory`: a share of the available memory; 2 GiB where it cannot be read.
pub fn default_memory(available: Option<u64>) -> u64 {
    available.map_or(2 << 30, |m| {
        ((m as f64 * MEMORY_SHARE) as u64).max(64 << 20)
    })
}

/// `MemAvailable` from /proc/meminfo, within the cgroup's limit less its usage (containers see their own limit
/// in /proc/meminfo only with lxcfs). `None` where neither can be read.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let host = meminfo.as_deref().and_then(|m| {
        let kib: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    });
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let cgroup =
        read("memory.max").map(|limit| limit.saturating_sub(read("memory.current").unwrap_or(0)));
    match (host, cgroup) {
        (Some(h), Some(c)) => Some(h.min(c)),
        (h, c) => h.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_memory_is_a_share_of_what_is_available() {
        let gib = 1u64 << 30;
        assert_eq!(default_memory(Some(8 * gib)), 4 * gib);
        assert_eq!(default_memory(Some(1 << 20)), 64 << 20);
        assert_eq!(default_memory(None), 2 * gib);
    }
}
