//! One source, in a straight line: read -> probe (the header, once) -> plan (every instruction resolved once)
//! -> dry run / skip what exists -> reserve memory -> decode once -> each derivative in parallel (render,
//! encode, write) -> services -> report. Never panics on bad input: every failure lands in the report.

pub mod claims;
pub mod plan;
pub mod render;

use crate::codec::colour::{ColourMode, Profile, Space};
use crate::codec::{self, CodecError, DecodeOptions};
use crate::naming::SourceUri;
use crate::plan::PlannedSource;
use crate::report::SourceReport;
use crate::run::Budget;
use crate::services;
use crate::settings::Settings;
use crate::store::Store;
use claims::Claims;
use plan::{DerivativeError, SourcePlan};
use rayon::prelude::*;
use render::Inputs;
use std::collections::BTreeMap;

/// What a source shares with the others of its run.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub sources: &'a dyn Store,
    pub derivatives: &'a dyn Store,
    pub claims: &'a Claims,
    pub budget: &'a Budget,
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
    let probe = match codec::probe(&bytes, settings.max_pixels) {
        Ok(p) => p,
        Err(e @ (CodecError::Empty | CodecError::UnknownFormat)) if planned.listed => {
            return Outcome::skipped(format!("{where_}: {e}"))
        }
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    let fingerprint = sha1_smol::Sha1::from(&bytes).digest().to_string();
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

    let mut report = SourceReport {
        origin: Some(uri.origin.clone()),
        origin_uri: Some(uri.given.clone()),
        origin_fingerprint: Some(fingerprint.clone()),
        ..Default::default()
    };
    for (label, e) in &plan.failed {
        report.errors.insert(label.clone(), e.to_string());
    }
    if let Some(e) = &colour_warning {
        report.warnings.push(e.to_string());
    }
    // Two sources of one run must never write the same name (naming schemes can make them meet).
    let mut todo: Vec<usize> = Vec::new();
    for (i, d) in plan.derivatives.iter().enumerate() {
        match ctx.claims.claim(&d.path, &uri.given) {
            Ok(()) => {
                report
                    .dimensions
                    .insert(d.label.clone(), [d.resolved.output.0, d.resolved.output.1]);
                report.uris.insert(d.label.clone(), d.path.clone());
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
    let report_key = settings
        .report_file
        .as_ref()
        .map(|name| uri.report_key(name, &fingerprint))
        .filter(|key| match ctx.claims.claim(key, &uri.given) {
            Ok(()) => true,
            Err(claims::Owner(other)) => {
                report.errors.insert(
                    "report".into(),
                    format!("{key} is also written for {other:?} in this run; not overwritten"),
                );
                false
            }
        });
    if settings.dry_run {
        return Outcome::done(report);
    }

    let mut previous: Option<SourceReport> = None;
    if settings.skip_existing {
        todo.retain(|&i| {
            !ctx.derivatives
                .exists(&plan.derivatives[i].path)
                .unwrap_or(false)
        });
        previous = report_key
            .as_ref()
            .and_then(|k| ctx.derivatives.read(k).ok())
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, SourceReport>>(&b).ok())
            .and_then(|mut m| m.remove(&uri.given));
        let services_known = settings.config.services.is_empty() || previous.is_some();
        if todo.is_empty() && services_known && (report_key.is_none() || previous.is_some()) {
            if let Some(p) = previous {
                report.take_services(p);
            }
            return Outcome::done(report);
        }
    }

    // Reserve the memory this source needs before a pixel is decoded; wait while other sources use it.
    let need = plan.memory_need(&todo, bytes.len() as u64);
    let _reservation = match ctx.budget.reserve(need) {
        Ok(r) => r,
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    // Always the full frame: a DCT-reduced decode would make each derivative's pixels depend on the largest
    // one the run makes. The ladder below it gives the small derivatives their speed.
    let opts = DecodeOptions {
        max_pixels: settings.max_pixels,
        accept_damaged: settings.accept_damaged,
        to_srgb: on_decode,
    };
    let decoded = match codec::decode_with(&bytes, &probe, &opts) {
        Ok(d) => d,
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    if let Some(e) = &decoded.colour_warning {
        report.warnings.push(e.to_string());
    }
    let upright = codec::orient(decoded.image, decoded.orientation);
    let services_wanted = !settings.config.services.is_empty() && previous.is_none();
    let (depth, stored_depth, analysis_wanted) = plan.ladder_needs(&todo, services_wanted);
    let ladders = crate::pipeline::Ladder::new(upright, depth).and_then(|upright| {
        let stored = stored_depth
            .map(|depth| {
                let image = codec::orient(
                    upright.base().clone(),
                    codec::inverse_orientation(decoded.orientation),
                );
                crate::pipeline::Ladder::new(image, depth)
            })
            .transpose()?;
        Ok((upright, stored))
    });
    let (upright, stored) = match ladders {
        Ok(l) => l,
        Err(e) => return Outcome::failed(settings, format!("{where_}: {e}")),
    };
    // Left unconverted (-colour keep): what derivatives without the profile and the services convert.
    let kept_profile = profile
        .as_ref()
        .filter(|_| on_decode.is_none() && decoded.colour_warning.is_none());
    let analysis = analysis_wanted
        .then(|| crate::pipeline::analysis_copy(upright.rung(plan.analysis_rung)).ok())
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
    let inputs = Inputs {
        bytes: &bytes,
        upright,
        stored,
        analysis,
        orientation: decoded.orientation,
        icc: icc.as_deref(),
        profile: kept_profile,
        jpeg_quality: settings.jpeg_quality,
        webp_quality: settings.webp_quality,
    };
    let failures: Vec<(String, DerivativeError)> = todo
        .par_iter()
        .filter_map(|&i| {
            let d = &plan.derivatives[i];
            let made = render::render(d, &inputs)
                .and_then(|b| ctx.derivatives.write(&d.path, &b).map_err(Into::into));
            made.err().map(|e| (d.label.clone(), e))
        })
        .collect();
    for (label, e) in failures {
        report.uris.remove(&label);
        report.dimensions.remove(&label);
        report.errors.insert(label, e.to_string());
    }
    match previous {
        Some(p) if !settings.config.services.is_empty() => report.take_services(p),
        _ => services::describe(&settings.config, inputs.analysis.as_ref(), &mut report),
    }
    if let Some(key) = report_key {
        write_report(ctx.derivatives, &key, uri, &mut report);
        if settings.report_html {
            write_report_html(ctx, &key, uri, &mut report);
        }
    }
    Outcome::done(report)
}

/// `-report-html`'s page beside the report. Sources whose reports share a folder (rewrite targets) would share
/// its index.html: the first keeps it, and the others say so in their warnings.
fn write_report_html(ctx: &Context, report_key: &str, uri: &SourceUri, report: &mut SourceReport) {
    let key = crate::report_html::index_key(report_key);
    if let Err(claims::Owner(other)) = ctx.claims.claim(&key, &uri.given) {
        report.warnings.push(format!(
            "{key} shows {other:?} in this run; not overwritten"
        ));
        return;
    }
    let page = crate::report_html::render(&uri.given, report, &key);
    if let Err(e) = ctx.derivatives.write(&key, page.as_bytes()) {
        report
            .errors
            .insert("report-html".into(), format!("cannot write {key}: {e}"));
    }
}

/// The source's own report file, written last, so a report on disk means every derivative it names is complete.
fn write_report(out: &dyn Store, key: &str, uri: &SourceUri, report: &mut SourceReport) {
    let mut one = BTreeMap::new();
    one.insert(uri.given.clone(), &*report);
    let json = crate::report::to_pretty_json(&one);
    if let Err(e) = out.write(key, json.as_bytes()) {
        report
            .errors
            .insert("report".into(), format!("cannot write report: {e}"));
    }
}
