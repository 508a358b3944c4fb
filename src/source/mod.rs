//! One source, in a straight line: read -> probe (the header, once) -> plan (every instruction resolved once)
//! -> dry run / skip what exists -> reserve memory -> decode once -> each derivative in parallel (render,
//! encode, write) -> services -> report. Never panics on bad input: every failure lands in the report.

pub mod claims;
pub mod plan;
pub mod render;

use crate::codec::colour::{ColourMode, Profile, Space};
use crate::codec::{self, CodecError, DecodeOptions, MetadataMode};
use crate::naming::SourceUri;
use crate::plan::PlannedSource;
use crate::report::SourceReport;
use crate::run::Budget;
use crate::services;
use crate::settings::{ReportForm, Settings};
use crate::store::Store;
use crate::tiles::{self, Service, TileSet};
use claims::Claims;
use plan::{DerivativeError, SourcePlan};
use render::Inputs;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// A lock on what the tasks of one source collect; a task that panicked left nothing half-written in it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the tasks of one source collected, once they have all ended.
fn collected<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// What a source shares with the others of its run.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub sources: &'a dyn Store,
    pub derivatives: &'a dyn Store,
    /// Where -report files go when not beside the derivatives (`-report-bucket-uri`).
    pub reports: Option<&'a dyn Store>,
    pub claims: &'a Claims,
    pub budget: &'a Budget,
}

/// Why the rungs below the full image could not be made.
#[derive(Debug, thiserror::Error)]
enum LadderError {
    /// A JPEG 2000's level 1, decoded after its full image.
    #[error(transparent)]
    Decode(#[from] CodecError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
}

/// What became of one source.
pub struct Outcome {
    pub report: SourceReport,
    /// Why the whole source failed (every label then carries it): one log line instead of one per label.
    pub failure: Option<String>,
}

impl Outcome {
    fn done(report: SourceReport) -> Outcome {
        Outcome {
            report,
            failure: None,
        }
    }

    /// Every derivative failed for the same reason.
    fn failed(settings: &Settings, msg: String) -> Outcome {
        let mut report = SourceReport::default();
        for ins in &settings.instructions {
            report.errors.insert(ins.label.clone(), msg.clone());
        }
        if settings.tiles.enabled {
            report.errors.insert("tiles".into(), msg.clone());
        }
        Outcome {
            report,
            failure: Some(msg),
        }
    }

    /// A listed file that is not an image: reported as skipped, with the reason.
    fn skipped(msg: String) -> Outcome {
        Outcome {
            report: SourceReport {
                skipped: Some(msg),
                ..Default::default()
            },
            failure: None,
        }
    }
}

/// Make every derivative of one source.
pub fn process(ctx: &Context, planned: &PlannedSource) -> Outcome {
    let settings = ctx.settings;
    let uri = match &planned.uri {
        Ok(u) => u,
        Err(problem) => return Outcome::failed(settings, problem.to_string()),
    };
    let bytes = match ctx.sources.read(&uri.origin) {
        Ok(b) => b,
        Err(e) => return Outcome::failed(settings, format!("cannot read source: {e}")),
    };
    let where_ = ctx.sources.describe(&uri.origin);
    let probe =
        match codec::probe(&bytes, settings.max_pixels) {
            Ok(p) => p,
            Err(
                e @ (CodecError::Empty | CodecError::UnknownFormat | CodecError::Unsupported(_)),
            ) if planned.listed => return Outcome::skipped(format!("{where_}: {e}")),
            Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
        };
    let fingerprint = crate::naming::fingerprint(&bytes);
    // The profile is read once, before planning: whether the pixels will be converted decides byte copies.
    let icc = codec::icc_profile(&bytes, &probe, settings.max_pixels);
    let (profile, colour_warning) = match icc.as_deref().map(Profile::parse) {
        None => (None, None),
        Some(Ok(p)) => (p, None),
        Some(Err(e)) => (None, Some(e)),
    };
    let keep = settings.colour == ColourMode::Keep;
    // CMYK cannot be carried into RGB derivatives: it is converted whatever the mode.
    let cmyk = profile.as_ref().is_some_and(|p| p.space() == Space::Cmyk);
    let on_decode = profile.as_ref().filter(|_| !keep || cmyk);
    let colour = plan::Colour {
        converted: on_decode.is_some(),
        tagged: keep && icc.is_some() && !cmyk,
    };
    let mut plan = SourcePlan::new(
        &probe,
        &settings.instructions,
        settings.api,
        settings.max_output_pixels,
        colour,
        &|ins, format| uri.derivative_path(&ins.label, &ins.request, format, &fingerprint),
    );
    if settings.from_full_resolution {
        plan = plan.without_ladder();
    }
    // A byte copy carries all of the source's metadata; where it may not and the format cannot be re-muxed,
    // the derivative is made from the pixels.
    let metadata = settings.metadata;
    if metadata != MetadataMode::All {
        plan = plan.without_copies_unless(codec::can_remux);
    }

    let v8 = matches!(settings.report_form, ReportForm::V8 { .. });
    // go-iiif v8 names files as URIs; the 2019 form as paths below the derivatives root.
    let shown_path = |path: &str| match v8 {
        true => format!("file:///{path}"),
        false => path.to_string(),
    };
    let mut report = SourceReport {
        origin: Some(uri.origin.clone()),
        origin_uri: Some(match v8 {
            true => uri.v8_origin_uri(),
            false => uri.given.clone(),
        }),
        origin_fingerprint: Some(fingerprint.clone()),
        ..Default::default()
    };
    for (label, e) in &plan.failed {
        report.errors.insert(label.clone(), e.to_string());
    }
    if let Some(e) = &colour_warning {
        report.warnings.push(e.to_string());
    }
    // The IIIF image service: tiles and info.json, and the derivatives' canonical copies, in one directory.
    let options = &settings.tiles;
    let services = if options.enabled || options.canonical {
        options.services(&uri.service_key(&fingerprint))
    } else {
        Vec::new()
    };
    let upright_dims = codec::oriented_dims(probe.width, probe.height, probe.orientation);
    let mut canonical: Vec<Vec<String>> = plan
        .derivatives
        .iter()
        .map(|d| match options.canonical && !d.from_stored {
            true => {
                tiles::canonical_keys(&d.resolved, d.frame, plan::iiif_format(d.format), &services)
            }
            false => Vec::new(),
        })
        .collect();
    let mut tile_set = options.enabled.then(|| {
        TileSet::new(
            upright_dims.0,
            upright_dims.1,
            options.tile_size,
            services.clone(),
        )
    });
    // Two sources of one run must never write the same name (naming schemes can make them meet).
    // A canonical name that is also a go-iiif name (quality `color`, size `max`) is the same image: written once.
    let mut seen: std::collections::HashSet<String> =
        plan.derivatives.iter().map(|d| d.path.clone()).collect();
    for keys in &mut canonical {
        keys.retain(|k| seen.insert(k.clone()) && ctx.claims.claim(k, &uri.given).is_ok());
    }
    if let Some(set) = &tile_set {
        for s in &set.services {
            if let Err(claims::Owner(other)) = ctx.claims.claim(&s.info_key(), &uri.given) {
                let msg = format!(
                    "{} is also written for {other:?} in this run; not overwritten",
                    s.info_key()
                );
                report.errors.insert("tiles".into(), msg);
                tile_set = None;
                break;
            }
        }
    }
    if let Some(set) = &tile_set {
        report.tiles = set.services.iter().map(Service::info_key).collect();
    }
    let mut todo: Vec<usize> = Vec::new();
    for (i, d) in plan.derivatives.iter().enumerate() {
        match ctx.claims.claim(&d.path, &uri.given) {
            Ok(()) => {
                report
                    .dimensions
                    .insert(d.label.clone(), [d.resolved.output.0, d.resolved.output.1]);
                report.uris.insert(d.label.clone(), shown_path(&d.path));
                todo.push(i);
            }
            Err(claims::Owner(other)) => {
                let e = DerivativeError::Claimed {
                    path: d.path.clone(),
                    other,
                };
                report.errors.insert(d.label.clone(), e.to_string());
            }
        }
    }
    let report_key = settings.report_key(uri, &fingerprint).filter(|key| {
        match ctx.claims.claim(key, &uri.given) {
            Ok(()) => true,
            Err(claims::Owner(other)) => {
                report.errors.insert(
                    "report".into(),
                    format!("{key} is also written for {other:?} in this run; not overwritten"),
                );
                false
            }
        }
    });
    let report_store = ctx.reports.unwrap_or(ctx.derivatives);
    if settings.dry_run {
        return Outcome::done(report);
    }

    let mut previous: Option<SourceReport> = None;
    let exists = |key: &str| ctx.derivatives.exists(key).unwrap_or(false);
    let mut tiles_todo = tile_set.is_some();
    if settings.skip_existing {
        previous = report_key
            .as_ref()
            .and_then(|k| report_store.read(k).ok())
            .and_then(|b| crate::report::stored(&b, &uri.given));
        // A master replaced under the same name: everything made from the old one is stale.
        let stale = previous
            .as_ref()
            .is_some_and(|p| p.origin_fingerprint.as_deref() != Some(fingerprint.as_str()));
        if stale {
            previous = None;
        } else {
            // info.json is written last: when it is there, so is the whole set.
            tiles_todo = tile_set
                .as_ref()
                .is_some_and(|set| !set.services.iter().all(|s| exists(&s.info_key())));
            todo.retain(|&i| {
                let d = &plan.derivatives[i];
                let on_disk = match &previous {
                    // The report vouches for what it lists, made from these very bytes.
                    Some(p) if p.dimensions.get(&d.label) == Some(&d.resolved.output.into()) => {
                        exists(&d.path)
                    }
                    // Without one, only a file of the dimensions this master makes is kept.
                    _ => ctx.derivatives.read(&d.path).ok().is_some_and(|b| {
                        codec::probe(&b, settings.max_output_pixels.max(settings.max_pixels))
                            .is_ok_and(|p| has_dimensions(d, (p.width, p.height)))
                    }),
                };
                !on_disk || !canonical[i].iter().all(|k| exists(k))
            });
        }
        let services_known = settings.config.services.is_empty() || previous.is_some();
        if todo.is_empty()
            && !tiles_todo
            && services_known
            && (report_key.is_none() || previous.is_some())
        {
            if let Some(p) = previous {
                report.take_services(p);
            }
            return Outcome::done(report);
        }
    }

    let (copies, mut made_from_pixels): (Vec<usize>, Vec<usize>) =
        todo.iter().partition(|&&i| plan.derivatives[i].copy);
    let services_wanted = !settings.config.services.is_empty() && previous.is_none();
    let decodes = plan.decodes(
        &made_from_pixels,
        codec::levels(&probe),
        services_wanted,
        tiles_todo,
    );
    let plan::Decodes {
        full: needs_full,
        level_one,
        depth,
        stored: stored_depth,
        analysis: analysis_wanted,
    } = decodes;
    // Reserve the memory this source needs before a pixel is decoded; wait while other sources use it.
    let tiles_need = tile_set
        .as_ref()
        .filter(|_| tiles_todo)
        .map_or(0, |set| set.memory_need(rayon::current_num_threads()));
    let need = plan
        .memory_need(&todo, bytes.len() as u64, decodes)
        .saturating_add(tiles_need);
    let _reservation = match ctx.budget.reserve(need) {
        Ok(r) => r,
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    // The full frame (or a JPEG 2000's level 1 when nothing needs it): a DCT-reduced decode would make each
    // derivative's pixels depend on the largest one the run makes. The ladder below it gives the small
    // derivatives their speed.
    let opts = DecodeOptions {
        max_pixels: settings.max_pixels,
        accept_damaged: settings.accept_damaged,
        to_srgb: on_decode,
        level: if needs_full { 0 } else { 1 },
    };
    let carried = codec::Carried::read(&bytes, probe.format, metadata);
    let mut inputs = Inputs {
        bytes: &bytes,
        metadata: &carried,
        remux: metadata != MetadataMode::All,
        orientation: probe.orientation,
        icc: icc.as_deref(),
        profile: None,
        jpeg_quality: settings.jpeg_quality,
        webp_quality: settings.webp_quality,
    };
    // The byte copies need no pixel: they are prepared in the pool while this thread decodes the frame (a single
    // thread for a JPEG), and written only once it has decoded, so a master that cannot be decoded publishes
    // nothing. The work of this source runs in scopes opened here, on the run loop's thread: this thread does
    // the serial part (decode, ladder, services) and rayon's threads the rest, so no pool thread is held by a
    // long serial task.
    let copied = Mutex::new(Vec::with_capacity(copies.len()));
    let decoded = rayon::in_place_scope(|s| {
        for &i in &copies {
            let (copied, inputs, d) = (&copied, &inputs, &plan.derivatives[i]);
            s.spawn(move |_| {
                let made = render::copy(d, inputs);
                lock(copied).push((i, made));
            });
        }
        codec::decode_with(&bytes, &probe, &opts)
    });
    let copied = collected(copied);
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    if let Some(e) = &decoded.colour_warning {
        report.warnings.push(e.to_string());
    }
    // Left unconverted (-colour keep): what derivatives without the profile and the services convert.
    let kept_profile = profile
        .as_ref()
        .filter(|_| on_decode.is_none() && decoded.colour_warning.is_none());
    inputs.profile = kept_profile;
    let base = crate::pipeline::Rung::plain(codec::orient(decoded.image, decoded.orientation));
    let full_place = || crate::pipeline::Place::jp2_level(upright_dims, 1);
    // The costliest first, so that the last one to finish is a small one: by the pixels read, then written.
    made_from_pixels.sort_by_key(|&i| {
        let d = &plan.derivatives[i];
        let out = d.resolved.size.0 as u64 * d.resolved.size.1 as u64;
        (d.rung, std::cmp::Reverse(out))
    });
    let write = |i: usize, made: Result<Vec<u8>, DerivativeError>| {
        let d = &plan.derivatives[i];
        let written = made.and_then(|b| {
            for key in std::iter::once(&d.path).chain(&canonical[i]) {
                ctx.derivatives.write(key, &b)?;
            }
            Ok(())
        });
        written.err().map(|e| (d.label.clone(), e))
    };
    // What needs only the full frame (the copies' writes, the derivatives of rung 0 without a smart crop) is made
    // while the ladder's rungs are halved from it.
    let (early, late): (Vec<usize>, Vec<usize>) = made_from_pixels.iter().partition(|&&i| {
        let d = &plan.derivatives[i];
        d.rung == 0 && !d.from_stored && !render::needs_analysis(d)
    });
    let failures = Mutex::new(Vec::new());
    let (full, ladders) = if needs_full {
        let ladders = rayon::in_place_scope(|s| {
            let (write, failures, inputs, base) = (&write, &failures, &inputs, &base);
            let derivatives = &plan.derivatives;
            for (i, made) in copied {
                s.spawn(move |_| {
                    if let Some(f) = write(i, made) {
                        lock(failures).push(f);
                    }
                });
            }
            for &i in &early {
                s.spawn(move |_| {
                    let made = render::pixels(&derivatives[i], base, None, inputs);
                    if let Some(f) = write(i, made) {
                        lock(failures).push(f);
                    }
                });
            }
            let below = match level_one {
                // The second decode, of level 1, while the full-size derivatives are made.
                true => {
                    let opts = DecodeOptions { level: 1, ..opts };
                    let one = codec::decode_with(&bytes, &probe, &opts)?;
                    crate::pipeline::Ladder::placed_below(one.image, full_place(), depth)?
                }
                false => crate::pipeline::Ladder::below(&base.image, depth)?
                    .into_iter()
                    .map(crate::pipeline::Rung::plain)
                    .collect(),
            };
            let stored = stored_depth
                .map(|depth| {
                    let image = codec::orient(
                        base.image.clone(),
                        codec::inverse_orientation(decoded.orientation),
                    );
                    crate::pipeline::Ladder::new(image, depth)
                })
                .transpose()?;
            Ok::<_, LadderError>((below, stored))
        });
        (Some(base.image), ladders)
    } else {
        // Only level 1 was decoded: nothing needs the full image, so no early derivative or byte copy waits.
        for (i, made) in copied {
            if let Some(f) = write(i, made) {
                lock(&failures).push(f);
            }
        }
        let below = crate::pipeline::Ladder::placed_below(base.image, full_place(), depth)
            .map_err(LadderError::from);
        (None, below.map(|b| (b, None)))
    };
    let (below, stored) = match ladders {
        Ok(l) => l,
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    let upright = crate::pipeline::Ladder::of(full, below);
    let analysis = analysis_wanted
        .then(|| {
            crate::pipeline::analysis_copy(upright.rung(plan.analysis_rung), upright_dims).ok()
        })
        .flatten()
        .map(|small| match kept_profile {
            Some(p) => {
                let mut small = image::DynamicImage::ImageRgb8(small);
                // Services and smart crops see sRGB whatever the mode; the profile was checked when read.
                let _ = p.to_srgb(&mut small);
                small.into_rgb8()
            }
            None => small,
        });
    let pixels = render::Pixels {
        upright,
        stored,
        analysis,
    };
    // The services read only the analysis copy: they run beside the derivatives.
    rayon::in_place_scope(|s| {
        let (write, failures, inputs, pixels) = (&write, &failures, &inputs, &pixels);
        let derivatives = &plan.derivatives;
        for &i in &late {
            s.spawn(move |_| {
                let d = &derivatives[i];
                let (src, analysis) = pixels.of(d);
                if let Some(f) = write(i, render::pixels(d, src, analysis, inputs)) {
                    lock(failures).push(f);
                }
            });
        }
        match previous.take() {
            Some(p) if !settings.config.services.is_empty() => report.take_services(p),
            _ => services::describe(&settings.config, pixels.analysis.as_ref(), &mut report),
        }
    });
    let failures = collected(failures);
    let failed: std::collections::HashSet<&str> =
        failures.iter().map(|(l, _)| l.as_str()).collect();
    let made = |i: &usize| !failed.contains(plan.derivatives[*i].label.as_str());
    // The canonical copies that exist now: the tile set does not write them again, and full-image JPEG ones
    // are listed in its sizes.
    let copies: std::collections::HashSet<String> = (0..plan.derivatives.len())
        .filter(made)
        .flat_map(|i| canonical[i].iter().cloned())
        .collect();
    let listed: Vec<(u32, u32)> = (0..plan.derivatives.len())
        .filter(|i| made(i) && !canonical[*i].is_empty())
        .map(|i| &plan.derivatives[i])
        .filter(|d| {
            tiles::is_listed_size(&d.resolved, d.frame, plan::iiif_format(d.format), &services)
        })
        .map(|d| d.resolved.output)
        .collect();
    for (label, e) in failures {
        report.uris.remove(&label);
        report.dimensions.remove(&label);
        report.errors.insert(label, e.to_string());
    }
    let render::Pixels { upright, .. } = pixels;
    if let Some(set) = tile_set.filter(|_| tiles_todo) {
        let opts = codec::EncodeOptions {
            jpeg_quality: settings.jpeg_quality,
            exif_orientation: None,
            icc: icc.as_deref().filter(|_| colour.tagged),
            webp_quality: settings.webp_quality,
            // Tiles are pieces of the image a viewer assembles: the rights travel with info.json's image, not
            // with each of its thousands of tiles.
            metadata: None,
        };
        if let Err(e) = set.make(
            upright.into_rungs(),
            ctx.derivatives,
            &opts,
            &copies,
            &listed,
        ) {
            report.tiles.clear();
            report.errors.insert("tiles".into(), e.to_string());
        }
    }
    if let Some(key) = report_key {
        write_report(report_store, &key, uri, v8, &mut report);
        if settings.report_html {
            write_report_html(ctx, report_store, &key, uri, &mut report);
        }
    }
    Outcome::done(report)
}

/// Does a file whose header says `stored` hold derivative `d`? A byte copy keeps the source's EXIF orientation,
/// so its header may give the dimensions turned.
fn has_dimensions(d: &plan::Derivative, stored: (u32, u32)) -> bool {
    let (w, h) = d.resolved.output;
    stored == (w, h) || (d.copy && stored == (h, w))
}

/// `-report-html`'s page beside the report. Sources whose reports share a folder (rewrite targets) would share
/// its index.html: the first keeps it, and the others say so in their warnings.
fn write_report_html(
    ctx: &Context,
    out: &dyn Store,
    report_key: &str,
    uri: &SourceUri,
    report: &mut SourceReport,
) {
    let key = crate::report_html::index_key(report_key);
    if let Err(claims::Owner(other)) = ctx.claims.claim(&key, &uri.given) {
        report.warnings.push(format!(
            "{key} shows {other:?} in this run; not overwritten"
        ));
        return;
    }
    let page = crate::report_html::render(&uri.given, report, &key);
    if let Err(e) = out.write(&key, page.as_bytes()) {
        report
            .errors
            .insert("report-html".into(), format!("cannot write {key}: {e}"));
    }
}

/// The source's own report file, written last, so a report on disk means every derivative it names is complete.
/// go-iiif v8's form is the report object alone, compact, as go-iiif writes it.
fn write_report(out: &dyn Store, key: &str, uri: &SourceUri, v8: bool, report: &mut SourceReport) {
    let json = if v8 {
        serde_json::to_value(&*report)
            .map(|v| v.to_string())
            .unwrap_or_default()
    } else {
        let mut one = BTreeMap::new();
        one.insert(uri.given.clone(), &*report);
        crate::report::to_pretty_json(&one)
    };
    if let Err(e) = out.write(key, json.as_bytes()) {
        report
            .errors
            .insert("report".into(), format!("cannot write report: {e}"));
    }
}
