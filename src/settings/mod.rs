//! Settings: every knob of a run, validated before any image is read. Reads the config and instructions files
//! (or objects, when they are given as bucket URIs) and the machine's available memory; plans no sources (that is
//! [`crate::plan`]).

pub mod config;
pub mod features;
pub mod instructions;
pub mod sources;

use crate::cli::Args;
use crate::codec::colour::ColourMode;
use crate::codec::{MetadataMode, WebpQuality};
use crate::iiif::ApiVersion;
use crate::naming::{NamingError, ReportTemplate, DEFAULT_REPORT_TEMPLATE};
use crate::store::Location;
use crate::store::StoreOptions;
use config::{Config, ConfigError, Overrides};
use features::FeatureError;
use instructions::{Instruction, InstructionsError};
use sources::{Kind, Named, Origin, SourceError};
use std::path::Path;

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
    #[error(transparent)]
    Tiles(#[from] crate::tiles::OptionError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    ReportTemplate(#[from] NamingError),
    #[error(transparent)]
    ReportBucket(crate::store::LocationError),
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

/// How -report files are named and written, and how the report speaks of files.
#[derive(Debug, Clone)]
pub enum ReportForm {
    /// The 2019 command line: `{uri: report}` files named by -report-name; paths relative to the derivatives.
    Classic,
    /// A go-iiif v8 command line: one report object per file, named by -report-template, in -report-bucket-uri
    /// or beside the derivatives; `origin_uri` and `uris` as `file:///…`.
    V8 {
        template: ReportTemplate,
        bucket: Option<Location>,
    },
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
    /// Which of a source's metadata its derivatives carry (`-metadata`, `derivatives.metadata`).
    pub metadata: MetadataMode,
    /// Skipped files (not images) make the exit status 1 (`-strict`).
    pub strict: bool,
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
    pub report_form: ReportForm,
    /// `-report-html`: an index.html beside each report file.
    pub report_html: bool,
    pub quiet: bool,
    /// A line per source started and per file written.
    pub verbose: bool,
    pub jsonl: bool,
    pub progress: bool,
    pub skip_existing: bool,
    pub dry_run: bool,
    /// Publish derivatives of masters whose JPEG data is damaged.
    pub accept_damaged: bool,
    /// Retries and timeouts of the object stores.
    pub store_options: StoreOptions,
    /// The IIIF Level 0 service and canonical copies (`-tiles`, `-canonical`, `derivatives.tiles`).
    pub tiles: crate::tiles::Options,
    /// Every derivative resized from the full-resolution image, no reduction ladder (slow; the reference that
    /// `bench/run.sh quality` measures the ladder against).
    pub from_full_resolution: bool,
}

impl Settings {
    /// `-report-bucket-uri`: where -report files go instead of beside the derivatives.
    pub fn report_bucket(&self) -> Option<&Location> {
        match &self.report_form {
            ReportForm::V8 {
                bucket: Some(b), ..
            } => Some(b),
            _ => None,
        }
    }

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
        let overrides = Overrides {
            images_source_uri: args.config_images_source_uri.clone(),
            derivatives_cache_uri: args.config_derivatives_cache_uri.clone(),
        };
        let config_named = Named {
            file: args.config.as_deref(),
            source: args.config_source.as_deref(),
            name: args.config_name.as_deref(),
        };
        let config = match sources::locate(Kind::Config, &config_named, &fetch_options)? {
            Origin::File(path) => Config::load_with(&path, &overrides)?,
            // Relative paths in a config from a bucket resolve against the working directory.
            Origin::Text { text, shown } => {
                Config::parse_with(&text, &shown, Path::new("."), &overrides)?
            }
        };
        let instructions_named = Named {
            file: args.instructions.as_deref(),
            source: args.instructions_source.as_deref(),
            name: args.instructions_name.as_deref(),
        };
        let (instructions, instructions_shown) =
            match sources::locate(Kind::Instructions, &instructions_named, &fetch_options)? {
                Origin::File(path) => (instructions::load(&path, api)?, path),
                Origin::Text { text, shown } => (instructions::parse(&text, &shown, api)?, shown),
            };
        let report_form = if args.is_v8() {
            let template = args
                .report_template
                .as_deref()
                .unwrap_or(DEFAULT_REPORT_TEMPLATE);
            let bucket = match &args.report_bucket_uri {
                None => None,
                Some(uri) => Some(
                    config::location_from_flag(uri, "-report-bucket-uri")
                        .map_err(SettingsError::ReportBucket)?,
                ),
            };
            ReportForm::V8 {
                template: ReportTemplate::new(template)?,
                bucket,
            }
        } else {
            ReportForm::Classic
        };
        features::check(&config, &instructions, &instructions_shown)?;
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
        let tc = &config.tiles;
        let tiles = crate::tiles::Options::new(
            args.tiles || tc.enable == Some(true),
            args.canonical || tc.canonical == Some(true),
            match &args.tiles_api {
                Some(v) => ("-tiles-api", Some(v.as_str())),
                None => ("derivatives.tiles.api", tc.api.as_deref()),
            },
            match args.tile_size {
                Some(v) => ("-tile-size", Some(v)),
                None => ("derivatives.tiles.tile_size", tc.tile_size),
            },
            match &args.tiles_base_url {
                Some(v) => ("-tiles-base-url", Some(v.clone())),
                None => ("derivatives.tiles.base_url", tc.base_url.clone()),
            },
        )?;
        let metadata = match args.metadata.as_deref() {
            Some(m) => m.parse::<MetadataMode>().unwrap_or_default(),
            None => config.metadata.unwrap_or_default(),
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
            metadata,
            strict: args.strict,
            jobs: args.jobs.map_or(cores, |j| j as usize).max(1),
            report_file: (args.report || args.report_html).then(|| args.report_name.clone()),
            report_form,
            report_html: args.report_html,
            quiet: args.quiet,
            verbose: args.verbose,
            jsonl: args.report_format == "jsonl",
            progress: args.progress || std::io::IsTerminal::is_terminal(&std::io::stderr()),
            skip_existing: args.skip_existing,
            dry_run: args.dry_run,
            accept_damaged: args.accept_damaged,
            from_full_resolution: args.from_full_resolution,
            tiles,
            store_options: StoreOptions {
                retry_time: args.storage_retry_time,
                timeout: args.storage_timeout,
                cache_control,
                ..StoreOptions::default()
            },
        })
    }

    /// Where the `-report` file for `uri` goes (`fingerprint`: its source's, for idsecret names), relative to the
    /// report bucket when there is one, else to the derivatives; `None` without `-report`.
    pub fn report_key(&self, uri: &crate::naming::SourceUri, fingerprint: &str) -> Option<String> {
        let name = self.report_file.as_ref()?;
        Some(match &self.report_form {
            ReportForm::Classic => uri.report_key(name, fingerprint),
            ReportForm::V8 { template, bucket } => {
                let key = uri.report_key(&template.name(&uri.origin), fingerprint);
                match bucket {
                    // As go-iiif: a report bucket holds the reports under their names alone.
                    Some(_) => key.rsplit('/').next().unwrap_or_default().to_string(),
                    None => key,
                }
            }
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
