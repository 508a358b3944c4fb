//! Orchestration: validated settings, the plan of sources, parallel work and error collection. No image math.

use crate::cli::Args;
use crate::codec::{self, EncodeOptions};
use crate::config::{Config, ConfigError, Location};
use crate::iiif::{ApiVersion, Format, Quality, ResolvedRegion, ResolvedRequest, Rotation};
use crate::instructions::{self, Instruction, InstructionsError};
use crate::naming::{NamingError, SourceUri};
use crate::pipeline;
use crate::report::{self, SourceReport};
use crate::s3event;
use crate::services;
use crate::shard::{Shard, ShardError, ShardSpec};
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
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("{0}")]
    Invalid(String),
}

/// Everything a run needs, validated.
pub struct Settings {
    pub config: Config,
    pub instructions: Vec<Instruction>,
    pub sources: Vec<PlannedSource>,
    pub api: ApiVersion,
    pub jpeg_quality: u8,
    pub max_pixels: u64,
    pub jobs: usize,
    pub report_file: Option<String>,
    pub quiet: bool,
    pub jsonl: bool,
    pub progress: bool,
    pub skip_existing: bool,
    pub dry_run: bool,
    /// Lines for the log once the run starts (what sharding kept, events ignored, …).
    pub notices: Vec<String>,
}

/// One source to process.
#[derive(Debug, Clone)]
pub struct PlannedSource {
    pub uri: SourceUri,
    /// Found by walking a directory: a file that is not an image by content is skipped, not an error.
    pub from_dir: bool,
}

impl Settings {
    pub fn from_args(args: &Args) -> Result<Settings, SettingsError> {
        let api = if args.api == "3" {
            ApiVersion::V3
        } else {
            ApiVersion::V2
        };
        let config = Config::load(&args.config)?;
        for loc in [&config.source, &config.derivatives] {
            crate::objstore::check(loc).map_err(SettingsError::Invalid)?;
        }
        let instructions = instructions::load(&args.instructions, api)?;
        check_features(
            &config,
            &instructions,
            &args.instructions.display().to_string(),
        )?;
        let mut notices = Vec::new();
        let mut given = args.all_uris();
        if let Some(m) = &args.manifest {
            given.extend(read_manifest(m)?);
        }
        if let Some(e) = &args.s3_event {
            if e == "-" && args.manifest.as_deref() == Some("-") {
                return Err(SettingsError::Invalid(
                    "-manifest - and -s3-event - cannot both read standard input".into(),
                ));
            }
            given.extend(read_s3_event(e, &config.source, &mut notices)?);
        } else if given.is_empty() {
            return Err(SettingsError::Invalid(
                "no sources: give -uri URI, URIs after the flags, -manifest FILE or -s3-event FILE"
                    .into(),
            ));
        }
        let shard = match args
            .shard
            .as_deref()
            .map(str::parse::<ShardSpec>)
            .transpose()?
        {
            None => None,
            Some(ShardSpec::Fixed(s)) => Some(s),
            Some(ShardSpec::Auto) => Some(Shard::from_env(
                &|k| std::env::var(k).ok(),
                args.shard_count,
            )?),
        };
        let uris = given
            .iter()
            .map(|u| u.parse::<SourceUri>())
            .collect::<Result<Vec<_>, _>>()?;
        let uris = uris
            .into_iter()
            .map(|u| inside_source_root(u, &config.source))
            .collect::<Result<Vec<_>, _>>()?;
        check_rewrites(&uris, &instructions)?;
        let mut sources = plan(uris, store_for(&config.source).as_ref())?;
        if let Some(shard) = shard {
            let all = sources.len();
            sources.retain(|s| shard.contains(&s.uri.given));
            notices.push(format!("shard {shard}: {} of {all} sources", sources.len()));
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
            jobs: args
                .jobs
                .map_or_else(|| default_jobs(cores, available_memory()), |j| j as usize),
            report_file: args.report.then(|| args.report_name.clone()),
            quiet: args.quiet,
            jsonl: args.report_format == "jsonl",
            progress: args.progress || std::io::IsTerminal::is_terminal(&std::io::stderr()),
            skip_existing: args.skip_existing,
            dry_run: args.dry_run,
            notices,
        })
    }
}

/// An absolute plain path names a file by its place on disk: inside the source root it is taken relative to it,
/// outside it is refused.
fn inside_source_root(mut uri: SourceUri, source: &Location) -> Result<SourceUri, SettingsError> {
    if !(uri.is_plain() && uri.given.starts_with('/')) {
        return Ok(uri);
    }
    let root = match source {
        Location::Disk(root) => root,
        Location::Object(o) => {
            return Err(SettingsError::Invalid(format!(
                "source {:?} is an absolute path, but the source root is {o}: give a key relative to it",
                uri.given
            )))
        }
    };
    let root = root.canonicalize().unwrap_or_else(|_| root.clone());
    let given = std::path::Path::new(&uri.given);
    let abs = given.canonicalize().unwrap_or_else(|_| given.to_path_buf());
    match abs.strip_prefix(&root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            uri.origin = rel.to_string_lossy().into_owned();
            Ok(uri)
        }
        _ => Err(SettingsError::Invalid(format!(
            "source {:?} is outside the source root {}",
            uri.given,
            root.display()
        ))),
    }
}

/// Memory set aside per job by the default `-jobs`: a 24 MP JPEG needs 150 to 230 MB by the README's rule
/// (output plus progressive coefficients), so 1 GiB leaves room for much larger masters.
const MEMORY_PER_JOB: u64 = 1 << 30;

/// The default `-jobs`: one per core, but no more than the available memory holds at `MEMORY_PER_JOB` each.
pub fn default_jobs(cores: usize, available: Option<u64>) -> usize {
    let by_memory = available.map_or(usize::MAX, |m| (m / MEMORY_PER_JOB) as usize);
    cores.min(by_memory).max(1)
}

/// `MemAvailable` from /proc/meminfo, where there is one (Linux; containers see their own limit there only
/// with lxcfs, so a cgroup limit is also read).
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mut available = kib * 1024;
    if let Ok(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory.max") {
        if let Ok(limit) = limit.trim().parse::<u64>() {
            available = available.min(limit);
        }
    }
    Some(available)
}

/// rewrite:// names one file: refuse, before any work, what would write it twice.
fn check_rewrites(uris: &[SourceUri], instructions: &[Instruction]) -> Result<(), SettingsError> {
    let mut targets: std::collections::HashMap<&str, &str> = Default::default();
    for uri in uris {
        let Some(target) = uri.fixed_target() else {
            continue;
        };
        if instructions.len() > 1 {
            let labels: Vec<&str> = instructions.iter().map(|i| i.label.as_str()).collect();
            return Err(SettingsError::Invalid(format!(
                "source {:?}: rewrite:// writes one file, {target}, but the instructions make {} derivatives ({}); \
                 use instructions with one entry, or file:// or idsecret:// for several",
                uri.given,
                labels.len(),
                labels.join(", ")
            )));
        }
        if let Some(other) = targets.insert(target, &uri.given) {
            if other != uri.given {
                return Err(SettingsError::Invalid(format!(
                    "sources {other:?} and {:?} would both be written at {target}",
                    uri.given
                )));
            }
        }
    }
    Ok(())
}

/// The sources an S3 event notification names, as URIs relative to the source root. Keys must lie under
/// the source location; on disk (a mounted bucket, say) the bucket name is not checked.
fn read_s3_event(
    name: &str,
    source: &Location,
    notices: &mut Vec<String>,
) -> Result<Vec<String>, SettingsError> {
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(name)
    }
    .map_err(|e| SettingsError::Invalid(format!("cannot read S3 event {name}: {e}")))?;
    let events = s3event::parse(&text, name).map_err(|e| SettingsError::Invalid(e.to_string()))?;
    for ignored in &events.ignored {
        notices.push(format!("{name}: not a created object, ignored: {ignored}"));
    }
    let mut uris = Vec::new();
    for obj in events.created {
        match source {
            Location::Disk(_) => uris.push(obj.key),
            // Objects of another bucket, or outside the source prefix (derivatives written to the same bucket,
            // say), are not sources.
            Location::Object(o) => match crate::objstore::key_under(o, &obj.bucket, &obj.key) {
                Some(key) => uris.push(key),
                None => notices.push(format!(
                    "{name}: s3://{}/{} is not under the source {o}, ignored",
                    obj.bucket, obj.key
                )),
            },
        }
    }
    Ok(uris)
}

/// One URI per line; blank lines and `#` comments are ignored. `-` is standard input.
fn read_manifest(name: &str) -> Result<Vec<String>, SettingsError> {
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(name)
    }
    .map_err(|e| SettingsError::Invalid(format!("cannot read manifest {name}: {e}")))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Expand directories into the image files below them and drop repeated URIs, keeping the order given.
fn plan(uris: Vec<SourceUri>, store: &dyn Store) -> Result<Vec<PlannedSource>, SettingsError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for uri in uris {
        let listed = store
            .list(&uri.origin)
            .map_err(|e| SettingsError::Invalid(format!("source {:?}: {e}", uri.given)))?;
        match listed {
            Some(keys) => {
                if !uri.is_plain() {
                    return Err(SettingsError::Invalid(format!(
                        "source {:?} names a directory; only plain paths can name directories",
                        uri.given
                    )));
                }
                for key in keys {
                    let uri: SourceUri = key.parse()?;
                    if seen.insert(uri.given.clone()) {
                        out.push(PlannedSource {
                            uri,
                            from_dir: true,
                        });
                    }
                }
            }
            None => {
                if seen.insert(uri.given.clone()) {
                    out.push(PlannedSource {
                        uri,
                        from_dir: false,
                    });
                }
            }
        }
    }
    Ok(out)
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

/// The names written in this run, each with the source URI that owns it.
#[derive(Default)]
pub struct Claims(Mutex<std::collections::HashMap<String, String>>);

impl Claims {
    /// Take `key` for `uri`; the owner's URI when another source has it already.
    pub fn claim(&self, key: &str, uri: &str) -> Result<(), String> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(owner) if owner != uri => Err(owner.clone()),
            Some(_) => Ok(()),
            None => {
                map.insert(key.to_string(), uri.to_string());
                Ok(())
            }
        }
    }
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

/// Process every source; `on_done` is called as each finished source's report is ready (for streaming).
pub fn run(settings: &Settings, on_done: &(dyn Fn(&str, &SourceReport) + Sync)) -> Outcome {
    let log = Log::new(settings);
    for notice in &settings.notices {
        log.line(notice);
    }
    if !settings.config.ignored_keys.is_empty() {
        log.line(&format!(
            "warning: config keys not used by iiif-process: {}",
            settings.config.ignored_keys.join(", ")
        ));
    }
    let source_store = store_for(&settings.config.source);
    let out_store = store_for(&settings.config.derivatives);
    let slots = Slots::new(settings.jobs);
    let claims = Claims::default();
    let results: Vec<(String, SourceReport)> = settings
        .sources
        .par_iter()
        .filter_map(|planned| {
            let outcome = {
                let _slot = slots.acquire();
                process_source(
                    settings,
                    source_store.as_ref(),
                    out_store.as_ref(),
                    &planned.uri,
                    &claims,
                )
            };
            let report = match outcome {
                SourceOutcome::NotAnImage(msg) if planned.from_dir => {
                    log.line(&format!("skipping {}: {msg}", planned.uri.given));
                    log.source_done(0, false);
                    return None;
                }
                SourceOutcome::NotAnImage(msg) => failed_report(settings, msg),
                SourceOutcome::Done(r) => r,
            };
            for (label, msg) in &report.errors {
                log.line(&format!("{}: {label}: {msg}", planned.uri.given));
            }
            log.source_done(report.uris.len(), !report.errors.is_empty());
            on_done(&planned.uri.given, &report);
            Some((planned.uri.given.clone(), report))
        })
        .collect();
    log.finish();
    let failed_sources = results.iter().filter(|(_, r)| !r.errors.is_empty()).count();
    Outcome {
        reports: results.into_iter().collect(),
        failed_sources,
    }
}

/// Log lines and the progress bar on stderr, which must not tear each other.
struct Log {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    /// `-progress` on a pipe or file (a log, cron, a container): a plain line per finished source.
    plain: Option<(std::time::Instant, usize)>,
    done: std::sync::atomic::AtomicUsize,
    derivatives: std::sync::atomic::AtomicUsize,
    failures: std::sync::atomic::AtomicUsize,
}

impl Log {
    fn new(settings: &Settings) -> Log {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (settings.progress && terminal && !settings.quiet).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(settings.sources.len() as u64),
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
                .then(|| (std::time::Instant::now(), settings.sources.len())),
            done: Default::default(),
            derivatives: Default::default(),
            failures: Default::default(),
        }
    }

    fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("iiif-process: {msg}")),
            None => eprintln!("iiif-process: {msg}"),
        }
    }

    fn source_done(&self, derivatives: usize, failed: bool) {
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

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// A report in which every derivative failed for the same reason.
fn failed_report(settings: &Settings, msg: String) -> SourceReport {
    let mut report = SourceReport::default();
    for ins in &settings.instructions {
        report.errors.insert(ins.label.clone(), msg.clone());
    }
    report
}

/// What became of one source.
pub enum SourceOutcome {
    Done(SourceReport),
    /// The file is not an image by its content (or is empty).
    NotAnImage(String),
}

fn store_for(loc: &Location) -> Box<dyn Store> {
    match loc {
        Location::Disk(p) => Box::new(DiskStore::new(p)),
        Location::Object(o) => Box::new(crate::objstore::ObjectStore::new(o)),
    }
}

/// Make every derivative of one source. Never panics on bad input; failures land in the report's `errors`.
pub fn process_source(
    settings: &Settings,
    src: &dyn Store,
    out: &dyn Store,
    uri: &SourceUri,
    claims: &Claims,
) -> SourceOutcome {
    let bytes = match src.read(&uri.origin) {
        Ok(b) => b,
        Err(e) => {
            return SourceOutcome::Done(failed_report(settings, format!("cannot read source: {e}")))
        }
    };
    let where_ = src.describe(&uri.origin);
    let probe = match codec::probe(&bytes, settings.max_pixels) {
        Ok(p) => p,
        Err(e @ (codec::CodecError::Empty | codec::CodecError::UnknownFormat)) => {
            return SourceOutcome::NotAnImage(format!("{where_}: {e}"))
        }
        Err(e) => return SourceOutcome::Done(failed_report(settings, format!("{where_}: {e}"))),
    };
    let fingerprint = sha1_smol::Sha1::from(&bytes).digest().to_string();
    let mut report = SourceReport {
        origin: Some(uri.origin.clone()),
        origin_uri: Some(uri.given.clone()),
        origin_fingerprint: Some(fingerprint.clone()),
        ..Default::default()
    };

    // Everything knowable from the header: each derivative's path and dimensions.
    let upright_dims = codec::oriented_dims(probe.width, probe.height, probe.orientation);
    let mut todo: Vec<(&Instruction, String)> = Vec::new();
    for ins in &settings.instructions {
        let req = &ins.request;
        let dims = if req.rotation == Rotation::NoAutoRotate {
            (probe.width, probe.height)
        } else {
            upright_dims
        };
        let format = req.format.resolve(Some(probe.format));
        let planned = req
            .resolve(dims.0, dims.1, settings.api)
            .map_err(|e| e.to_string())
            .map(|r| {
                let path = uri.derivative_path(&ins.label, req, format, &fingerprint);
                (path, r.output)
            });
        match planned {
            Ok((path, (w, h))) => {
                report.dimensions.insert(ins.label.clone(), [w, h]);
                report.uris.insert(ins.label.clone(), path.clone());
                todo.push((ins, path));
            }
            Err(e) => {
                report.errors.insert(ins.label.clone(), e);
            }
        }
    }
    let report_key = settings
        .report_file
        .as_ref()
        .map(|name| uri.report_key(name, &fingerprint));
    // Two sources of one run must never write the same name (naming schemes can make them meet).
    todo.retain(|(ins, path)| match claims.claim(path, &uri.given) {
        Ok(()) => true,
        Err(other) => {
            report.uris.remove(&ins.label);
            report.dimensions.remove(&ins.label);
            report.errors.insert(
                ins.label.clone(),
                format!("{path} is also the name of a derivative of {other:?} in this run; not overwritten"),
            );
            false
        }
    });
    let report_key = report_key.filter(|key| match claims.claim(key, &uri.given) {
        Ok(()) => true,
        Err(other) => {
            report.errors.insert(
                "report".into(),
                format!("{key} is also written for {other:?} in this run; not overwritten"),
            );
            false
        }
    });
    if settings.dry_run {
        return SourceOutcome::Done(report);
    }

    let mut previous: Option<SourceReport> = None;
    if settings.skip_existing {
        todo.retain(|(_, path)| !out.exists(path).unwrap_or(false));
        previous = report_key
            .as_ref()
            .and_then(|k| out.read(k).ok())
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, SourceReport>>(&b).ok())
            .and_then(|mut m| m.remove(&uri.given));
        let services_known = settings.config.services.is_empty() || previous.is_some();
        if todo.is_empty() && services_known && (report_key.is_none() || previous.is_some()) {
            if let Some(p) = previous {
                report.palette = p.palette;
                report.blurhash = p.blurhash;
                report.imagehash = p.imagehash;
            }
            return SourceOutcome::Done(report);
        }
    }

    let stored_dims = (probe.width, probe.height);
    let need = resolution_need(
        settings,
        upright_dims,
        stored_dims,
        probe.format,
        probe.orientation,
    );
    let decoded = if need <= 0.5 {
        // Every derivative needs at most half the resolution: let the decoder skip the rest.
        let at_least = |d: u32| ((d as f64 * need).ceil() as u32).clamp(1, d);
        let min = (at_least(stored_dims.0), at_least(stored_dims.1));
        codec::decode_at_least(&bytes, settings.max_pixels, min)
    } else {
        codec::decode(&bytes, settings.max_pixels)
    };
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => return SourceOutcome::Done(failed_report(settings, format!("{where_}: {e}"))),
    };
    let orientation = decoded.orientation;
    let icc = decoded.icc;
    // Possibly smaller than `upright_dims` (a reduced decode); requests are resolved against `upright_dims`.
    let upright = codec::orient(decoded.image, orientation);
    // The stored pixels are needed only by rotation -1 derivatives that are not byte copies.
    let stored: OnceLock<DynamicImage> = OnceLock::new();
    let intermediate = intermediate(
        settings,
        &todo,
        &upright,
        upright_dims,
        probe.format,
        orientation,
    );
    let analysis: OnceLock<Option<image::RgbImage>> = OnceLock::new();
    let job = Job {
        settings,
        out,
        bytes: &bytes,
        source_format: probe.format,
        orientation,
        icc: icc.as_deref(),
        upright: &upright,
        intermediate: intermediate.as_ref(),
        analysis: &analysis,
    };
    let failures: Vec<(String, String)> = todo
        .par_iter()
        .filter_map(|(ins, path)| {
            let r = if ins.request.rotation == Rotation::NoAutoRotate && orientation != 1 {
                let img = stored.get_or_init(|| {
                    codec::orient(upright.clone(), codec::inverse_orientation(orientation))
                });
                job.derive(ins, img, stored_dims, false, path)
            } else {
                job.derive(ins, &upright, upright_dims, true, path)
            };
            r.err().map(|e| (ins.label.clone(), e))
        })
        .collect();
    for (label, e) in failures {
        report.uris.remove(&label);
        report.dimensions.remove(&label);
        report.errors.insert(label, e);
    }
    match previous {
        Some(p) if !settings.config.services.is_empty() => {
            report.palette = p.palette;
            report.blurhash = p.blurhash;
            report.imagehash = p.imagehash;
        }
        _ => add_services(settings, &mut report, job.analysis()),
    }
    if let Some(key) = report_key {
        let mut one = BTreeMap::new();
        one.insert(uri.given.clone(), &report);
        // Written last, so a report on disk means every derivative it names is complete.
        if let Err(e) = out.write(&key, report::to_pretty_json(&one).as_bytes()) {
            report
                .errors
                .insert("report".into(), format!("cannot write report: {e}"));
        }
    }
    SourceOutcome::Done(report)
}

/// go-iiif's services, from the small analysis copy. Report keys are the service names, as go-iiif writes them.
fn add_services(
    settings: &Settings,
    report: &mut SourceReport,
    analysis: Option<&image::RgbImage>,
) {
    let enabled = |s: &str| settings.config.services.iter().any(|x| x == s);
    let Some(small) = analysis else { return };
    if enabled("palette") {
        use services::palette::{vibrant_with_palettes, NamedPalette};
        let p = &settings.config.palette;
        let palettes: Vec<NamedPalette> = p
            .names
            .iter()
            .filter_map(|n| NamedPalette::from_name(n))
            .collect();
        let mut swatches = vibrant_with_palettes(small, p.count, &palettes);
        if p.grid == "euclidian" {
            // A swatch is named after the nearest colour of the first named palette; `closest` keeps them all.
            for s in &mut swatches {
                if let Some(first) = s.closest.first() {
                    s.name = first.name.clone();
                }
            }
        }
        report.palette = Some(swatches);
    }
    if enabled("blurhash") {
        let b = &settings.config.blurhash;
        // go-iiif fits the image within size x size (never enlarging), then hashes it.
        let ratio =
            (b.size as f64 / small.width() as f64).min(b.size as f64 / small.height() as f64);
        let hashed = if ratio < 1.0 {
            let (w, h) = (
                ((small.width() as f64 * ratio) as u32).max(1),
                ((small.height() as f64 * ratio) as u32).max(1),
            );
            let src = DynamicImage::ImageRgb8(small.clone());
            pipeline::crop_resize(
                &src,
                (0.0, 0.0, small.width() as f64, small.height() as f64),
                w,
                h,
            )
            .map(DynamicImage::into_rgb8)
            .ok()
        } else {
            None
        };
        report.blurhash = Some(services::blurhash::encode(
            hashed.as_ref().unwrap_or(small),
            b.x,
            b.y,
        ));
    }
    if enabled("imagehash") {
        let mut m = BTreeMap::new();
        m.insert("average".to_string(), services::imagehash::average(small));
        m.insert(
            "difference".to_string(),
            services::imagehash::difference(small),
        );
        report.imagehash = Some(m);
    }
}

/// The per-source context shared by its derivatives.
struct Job<'a> {
    settings: &'a Settings,
    out: &'a dyn Store,
    bytes: &'a [u8],
    source_format: Format,
    orientation: u8,
    icc: Option<&'a [u8]>,
    upright: &'a DynamicImage,
    /// A downscaled copy of `upright` that the smaller derivatives are made from.
    intermediate: Option<&'a Intermediate>,
    /// The small copy of the upright image for smart crops and services, made at most once.
    analysis: &'a OnceLock<Option<image::RgbImage>>,
}

/// The upright image resized once to the largest size that several derivatives need, so that each of them
/// resamples a few megapixels instead of the full frame.
struct Intermediate {
    image: DynamicImage,
    /// Its scale relative to the full image.
    scale: f64,
}

/// How much of the full image's resolution a derivative needs: output size over region size.
fn scale_need(r: &ResolvedRequest) -> f64 {
    let (cw, ch) = match r.region {
        ResolvedRegion::Rect(rect) => (rect.w, rect.h),
        ResolvedRegion::Smart { crop_w, crop_h, .. } => (crop_w, crop_h),
    };
    (r.size.0 as f64 / cw.max(1) as f64).max(r.size.1 as f64 / ch.max(1) as f64)
}

/// The least fraction of the full resolution that every derivative (and the analysis copy) needs;
/// byte copies need no pixels. Above 1 when something is upscaled.
fn resolution_need(
    settings: &Settings,
    upright_dims: (u32, u32),
    stored_dims: (u32, u32),
    source_format: Format,
    orientation: u8,
) -> f64 {
    let long = upright_dims.0.max(upright_dims.1).max(1) as f64;
    let analysis = (pipeline::ANALYSIS_SIZE as f64 / long).min(1.0);
    // Every instruction, not only those still to make: the decode scale decides the analysis copy, so services
    // (and smart crops) come out the same whether a run makes all derivatives or a rerun only the missing ones.
    settings
        .instructions
        .iter()
        .filter_map(|ins| {
            let dims = if ins.request.rotation == Rotation::NoAutoRotate {
                stored_dims
            } else {
                upright_dims
            };
            let r = ins.request.resolve(dims.0, dims.1, settings.api).ok()?;
            let format = ins.request.format.resolve(Some(source_format));
            (!is_identity(&r, dims, format, source_format, orientation)).then(|| scale_need(&r))
        })
        .fold(analysis, f64::max)
}

/// The intermediate worth making: when at least two derivatives need at most half the resolution, one resize to
/// the largest of them serves them all. Lanczos from at least the target size keeps their quality.
fn intermediate(
    settings: &Settings,
    todo: &[(&Instruction, String)],
    upright: &DynamicImage,
    full: (u32, u32),
    source_format: Format,
    orientation: u8,
) -> Option<Intermediate> {
    let needs: Vec<f64> = todo
        .iter()
        .filter(|(ins, _)| ins.request.rotation != Rotation::NoAutoRotate || orientation == 1)
        .filter_map(|(ins, _)| {
            let r = ins.request.resolve(full.0, full.1, settings.api).ok()?;
            let format = ins.request.format.resolve(Some(source_format));
            (!is_identity(&r, full, format, source_format, orientation)).then(|| scale_need(&r))
        })
        .filter(|&n| n <= 0.5)
        .collect();
    let scale = needs.iter().cloned().fold(0.0, f64::max);
    if needs.len() < 2 || scale <= 0.0 {
        return None;
    }
    let (w, h) = (
        ((full.0 as f64 * scale).round() as u32).max(1),
        ((full.1 as f64 * scale).round() as u32).max(1),
    );
    let (uw, uh) = (upright.width(), upright.height());
    if w * 4 > uw * 3 {
        return None; // a reduced decode is already close to that size
    }
    let image = pipeline::crop_resize(upright, (0.0, 0.0, uw as f64, uh as f64), w, h).ok()?;
    Some(Intermediate { image, scale })
}

/// The derivative would be the stored file itself: full region at full size, no rotation or mirror, colour,
/// same format, and either no orientation to apply or rotation `-1`.
fn is_identity(
    r: &ResolvedRequest,
    dims: (u32, u32),
    format: Format,
    source_format: Format,
    orientation: u8,
) -> bool {
    let full = matches!(r.region, ResolvedRegion::Rect(rect) if rect.x == 0 && rect.y == 0 && (rect.w, rect.h) == dims);
    full && r.size == dims
        && r.degrees == 0.0
        && !r.mirror
        && matches!(r.quality, Quality::Default | Quality::Color)
        && format == source_format
        && (!r.auto_orient || orientation == 1)
}

impl Job<'_> {
    fn analysis(&self) -> Option<&image::RgbImage> {
        // Always from the full upright image, so services do not depend on which derivatives a run makes.
        self.analysis
            .get_or_init(|| pipeline::analysis_copy(self.upright).ok())
            .as_ref()
    }

    /// Make, encode and write one derivative at `path` from `img` (`upright` says whether it is the upright
    /// image, which the intermediate and analysis copies are made from); the error is a message for the report.
    fn derive(
        &self,
        ins: &Instruction,
        img: &DynamicImage,
        dims: (u32, u32),
        upright: bool,
        path: &str,
    ) -> Result<(), String> {
        let req = &ins.request;
        let resolved = req
            .resolve(dims.0, dims.1, self.settings.api)
            .map_err(|e| e.to_string())?;
        let format = req.format.resolve(Some(self.source_format));
        let src = match self.intermediate {
            Some(i) if upright && scale_need(&resolved) <= i.scale * (1.0 + 1e-9) => &i.image,
            _ => img,
        };
        let bytes = if is_identity(
            &resolved,
            dims,
            format,
            self.source_format,
            self.orientation,
        ) {
            // Lossless and nearly free: the stored file already is this derivative.
            self.bytes.to_vec()
        } else {
            let transparent = matches!(
                format,
                Format::Png | Format::Webp | Format::Gif | Format::Tif
            );
            let smart = matches!(resolved.region, ResolvedRegion::Smart { .. });
            let a = if smart && upright {
                self.analysis()
            } else {
                None
            };
            let pixels = pipeline::render(src, dims, &resolved, a, transparent)
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
            .write(path, &bytes)
            .map_err(|e| format!("cannot write derivative: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_jobs_follow_cores_and_memory() {
        let gib = 1u64 << 30;
        assert_eq!(default_jobs(8, Some(64 * gib)), 8);
        assert_eq!(default_jobs(8, Some(3 * gib + 5)), 3);
        assert_eq!(default_jobs(8, Some(gib / 2)), 1);
        assert_eq!(default_jobs(2, None), 2);
        assert_eq!(default_jobs(0, None), 1);
    }
}
