//! Orchestration: validated settings, the plan of sources, parallel work and error collection. No image math.

use crate::cli::Args;
use crate::codec::{self, EncodeOptions};
use crate::config::{Config, ConfigError, Location};
use crate::iiif::{ApiVersion, Format, Quality, ResolvedRegion, ResolvedRequest};
use crate::instructions::{self, Instruction, InstructionsError};
use crate::naming::{NamingError, SourceUri};
use crate::pipeline;
use crate::report::{self, SourceReport};
use crate::services;
use crate::store::{DiskStore, Store};
use image::DynamicImage;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock};

/// Anything that stops the run before any image is read (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Instructions(#[from] InstructionsError),
    #[error(transparent)]
    Uri(#[from] NamingError),
    #[error("{0}")]
    Invalid(String),
}

/// Everything a run needs, validated.
pub struct Settings {
    pub config: Config,
    pub instructions: Vec<Instruction>,
    pub sources: Vec<SourceUri>,
    pub api: ApiVersion,
    pub jpeg_quality: u8,
    pub max_pixels: u64,
    pub jobs: usize,
    pub report_file: Option<String>,
    pub quiet: bool,
}

impl Settings {
    pub fn from_args(args: &Args) -> Result<Settings, SettingsError> {
        let api = if args.api == "3" {
            ApiVersion::V3
        } else {
            ApiVersion::V2
        };
        let config = Config::load(&args.config)?;
        let instructions = instructions::load(&args.instructions, api)?;
        check_features(
            &config,
            &instructions,
            &args.instructions.display().to_string(),
        )?;
        let sources = args
            .all_uris()
            .iter()
            .map(|u| u.parse::<SourceUri>())
            .collect::<Result<Vec<_>, _>>()?;
        if sources.is_empty() {
            return Err(SettingsError::Invalid(
                "no sources: give -uri URI (or URIs after the flags)".into(),
            ));
        }
        if args.report_name.is_empty()
            || args.report_name.contains(['/', '\\'])
            || args.report_name == ".."
        {
            return Err(SettingsError::Invalid(format!(
                "-report-name {:?} must be a plain file name",
                args.report_name
            )));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Settings {
            max_pixels: args
                .max_pixels
                .or(config.max_pixels)
                .unwrap_or(codec::DEFAULT_MAX_PIXELS),
            config,
            instructions,
            sources,
            api,
            jpeg_quality: args.jpeg_quality,
            jobs: args.jobs.map_or(cores, |j| j as usize),
            report_file: args.report.then(|| args.report_name.clone()),
            quiet: args.quiet,
        })
    }
}

/// go-iiif's extension qualities must be enabled by `features.append`, and nothing may use a disabled value.
fn check_features(
    config: &Config,
    instructions: &[Instruction],
    file: &str,
) -> Result<(), SettingsError> {
    for ins in instructions {
        let q = &ins.request.quality;
        if let Some(ext) = q.extension_name() {
            if !config.extension_enabled("quality", ext) {
                return Err(SettingsError::Invalid(format!(
                    "instructions {file}: {:?}: quality {q:?} is a go-iiif extension that the config does not enable \
                     (add features.append.quality.{ext}, or remove it from features.disable)",
                    ins.label,
                    q = q.to_string()
                )));
            }
        } else if config.is_disabled("quality", &q.to_string()) {
            return Err(SettingsError::Invalid(format!(
                "instructions {file}: {:?}: quality {:?} is disabled by the config's features.disable",
                ins.label,
                q.to_string()
            )));
        }
        let f = ins.request.format;
        if f != Format::Source && config.is_disabled("format", f.extension()) {
            return Err(SettingsError::Invalid(format!(
                "instructions {file}: {:?}: format {:?} is disabled by the config's features.disable",
                ins.label,
                f.extension()
            )));
        }
    }
    Ok(())
}

/// The outcome of a run.
pub struct Outcome {
    pub reports: BTreeMap<String, SourceReport>,
    /// Sources with at least one failure.
    pub failed_sources: usize,
}

impl Outcome {
    pub fn report_json(&self) -> String {
        report::to_pretty_json(&self.reports)
    }
}

/// A counting semaphore: bounds how many decoded sources are in memory at once.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

/// Process every source; `on_done` is called as each source finishes (for logs and streaming).
pub fn run(settings: &Settings, on_done: &(dyn Fn(&str, &SourceReport) + Sync)) -> Outcome {
    if !settings.quiet && !settings.config.ignored_keys.is_empty() {
        eprintln!(
            "iiif-process: warning: config keys not used by iiif-process: {}",
            settings.config.ignored_keys.join(", ")
        );
    }
    let source_store = store_for(&settings.config.source);
    let out_store = store_for(&settings.config.derivatives);
    let slots = Slots::new(settings.jobs);
    let results: Vec<(String, SourceReport)> = settings
        .sources
        .par_iter()
        .map(|uri| {
            let report = {
                let _slot = slots.acquire();
                process_source(settings, source_store.as_ref(), out_store.as_ref(), uri)
            };
            on_done(&uri.given, &report);
            (uri.given.clone(), report)
        })
        .collect();
    let failed_sources = results.iter().filter(|(_, r)| !r.errors.is_empty()).count();
    Outcome {
        reports: results.into_iter().collect(),
        failed_sources,
    }
}

fn store_for(loc: &Location) -> Box<dyn Store> {
    match loc {
        Location::Disk(p) => Box::new(DiskStore::new(p)),
    }
}

/// Make every derivative of one source. Never panics on bad input; failures land in the report's `errors`.
pub fn process_source(
    settings: &Settings,
    src: &dyn Store,
    out: &dyn Store,
    uri: &SourceUri,
) -> SourceReport {
    let mut report = SourceReport::default();
    let fail_all = |report: &mut SourceReport, msg: String| {
        for ins in &settings.instructions {
            report.errors.insert(ins.label.clone(), msg.clone());
        }
    };
    let bytes = match src.read(&uri.origin) {
        Ok(b) => b,
        Err(e) => {
            fail_all(&mut report, format!("cannot read source: {e}"));
            return report;
        }
    };
    let fingerprint = sha1_smol::Sha1::from(&bytes).digest().to_string();
    report.origin = Some(uri.origin.clone());
    report.origin_uri = Some(uri.given.clone());
    report.origin_fingerprint = Some(fingerprint.clone());

    let decoded = match codec::decode(&bytes, settings.max_pixels) {
        Ok(d) => d,
        Err(e) => {
            fail_all(&mut report, format!("{}: {e}", src.describe(&uri.origin)));
            return report;
        }
    };
    let source_format = decoded.format;
    let orientation = decoded.orientation;
    let icc = decoded.icc;
    let upright = codec::orient(decoded.image, orientation);
    // The stored pixels are needed only by rotation -1 derivatives that are not byte copies.
    let stored: OnceLock<DynamicImage> = OnceLock::new();
    let stored_image = || {
        stored
            .get_or_init(|| codec::orient(upright.clone(), codec::inverse_orientation(orientation)))
    };
    let analysis: OnceLock<Option<image::RgbImage>> = OnceLock::new();

    let job = Job {
        settings,
        out,
        uri,
        bytes: &bytes,
        fingerprint: &fingerprint,
        source_format,
        orientation,
        icc: icc.as_deref(),
        upright: &upright,
        analysis: &analysis,
    };
    let results: Vec<(String, Result<(String, [u32; 2]), String>)> = settings
        .instructions
        .par_iter()
        .map(|ins| {
            let r = if ins.request.rotation == crate::iiif::Rotation::NoAutoRotate
                && orientation != 1
            {
                job.derive(ins, stored_image())
            } else {
                job.derive(ins, &upright)
            };
            (ins.label.clone(), r)
        })
        .collect();
    for (label, r) in results {
        match r {
            Ok((path, dims)) => {
                report.uris.insert(label.clone(), path);
                report.dimensions.insert(label, dims);
            }
            Err(e) => {
                report.errors.insert(label, e);
            }
        }
    }
    if !settings.config.services.is_empty() {
        add_services(settings, &mut report, job.analysis());
    }
    if let Some(name) = &settings.report_file {
        let key = format!("{}/{}", uri.report_dir(), name);
        let mut one = BTreeMap::new();
        one.insert(uri.given.clone(), &report);
        if let Err(e) = out.write(&key, report::to_pretty_json(&one).as_bytes()) {
            report
                .errors
                .insert("report".into(), format!("cannot write report: {e}"));
        }
    }
    report
}

fn add_services(
    settings: &Settings,
    report: &mut SourceReport,
    analysis: Option<&image::RgbImage>,
) {
    let enabled = |s: &str| settings.config.services.iter().any(|x| x == s);
    if settings.config.services.is_empty() {
        return;
    }
    let Some(small) = analysis else { return };
    if enabled("palette") {
        let names = if settings.config.palette.grid == "euclidian" {
            match settings.config.palette.names.first().map(String::as_str) {
                Some("crayola") => Some(services::palette::NamedPalette::Crayola),
                Some("css4") => Some(services::palette::NamedPalette::Css4),
                _ => None,
            }
        } else {
            None
        };
        report.palette = Some(services::palette::vibrant(
            small,
            settings.config.palette.count,
            names,
        ));
    }
    if enabled("blurhash") {
        let b = &settings.config.blurhash;
        let img = image::imageops::thumbnail(
            small,
            b.size.min(small.width()),
            b.size.min(small.height()),
        );
        report.blurhash = Some(services::blurhash::encode(&img, b.x, b.y));
    }
    if enabled("imagehash") {
        let mut m = BTreeMap::new();
        m.insert("avg".to_string(), services::imagehash::average(small));
        m.insert("diff".to_string(), services::imagehash::difference(small));
        report.imagehash = Some(m);
    }
}

/// The per-source context shared by its derivatives.
struct Job<'a> {
    settings: &'a Settings,
    out: &'a dyn Store,
    uri: &'a SourceUri,
    bytes: &'a [u8],
    fingerprint: &'a str,
    source_format: Format,
    orientation: u8,
    icc: Option<&'a [u8]>,
    upright: &'a DynamicImage,
    /// The small copy of the upright image for smart crops and services, made at most once.
    analysis: &'a OnceLock<Option<image::RgbImage>>,
}

impl Job<'_> {
    /// Make, encode and write one derivative; returns its path and dimensions, or a message naming the label.
    fn analysis(&self) -> Option<&image::RgbImage> {
        self.analysis
            .get_or_init(|| pipeline::analysis_copy(self.upright).ok())
            .as_ref()
    }

    fn derive(&self, ins: &Instruction, img: &DynamicImage) -> Result<(String, [u32; 2]), String> {
        let req = &ins.request;
        let dims = (img.width(), img.height());
        let resolved = req
            .resolve(dims.0, dims.1, self.settings.api)
            .map_err(|e| e.to_string())?;
        let format = req.format.resolve(Some(self.source_format));
        let path = self
            .uri
            .derivative_path(&ins.label, req, format, self.fingerprint)
            .map_err(|e| e.to_string())?;
        let bytes = if self.is_identity(&resolved, dims, format) {
            // Lossless and nearly free: the stored file already is this derivative.
            self.bytes.to_vec()
        } else {
            let transparent = matches!(
                format,
                Format::Png | Format::Webp | Format::Gif | Format::Tif
            );
            let smart_on_upright = matches!(resolved.region, ResolvedRegion::Smart { .. })
                && std::ptr::eq(img, self.upright);
            let a = if smart_on_upright {
                self.analysis()
            } else {
                None
            };
            let pixels = pipeline::render(img, dims, &resolved, a, transparent)
                .map_err(|e| e.to_string())?;
            let opts = EncodeOptions {
                jpeg_quality: self.settings.jpeg_quality,
                exif_orientation: (!resolved.auto_orient
                    && self.orientation != 1
                    && format == Format::Jpg)
                    .then_some(self.orientation),
                icc: self.icc,
            };
            codec::encode(&pixels, format, &opts).map_err(|e| e.to_string())?
        };
        self.out
            .write(&path, &bytes)
            .map_err(|e| format!("cannot write derivative: {e}"))?;
        Ok((path, [resolved.output.0, resolved.output.1]))
    }

    /// The derivative would be the stored file itself: full region at full size, no rotation or mirror, colour,
    /// same format, and either no orientation to apply or rotation `-1`.
    fn is_identity(&self, r: &ResolvedRequest, dims: (u32, u32), format: Format) -> bool {
        let full = matches!(r.region, ResolvedRegion::Rect(rect) if rect.x == 0 && rect.y == 0 && (rect.w, rect.h) == dims);
        full && r.size == dims
            && r.degrees == 0.0
            && !r.mirror
            && matches!(r.quality, Quality::Default | Quality::Color)
            && format == self.source_format
            && (!r.auto_orient || self.orientation == 1)
    }
}
