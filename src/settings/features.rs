//! go-iiif's `features`: extension qualities must be enabled by `features.append`, and nothing may use a value
//! that `features.disable` turns off, named by value (`webp`) or by go-iiif's feature name (`rotationArbitrary`).
//! Checked once, before any image is read.
//!
//! go-iiif's level 2 leaves gray, tif, gif and webp off until `features.enable` lists them; here everything this
//! tool can make is on, so `features.enable` only has its names checked (a name go-iiif does not know fails
//! there and here alike) and `features.disable` wins over it, as in go-iiif.

use super::config::Config;
use super::instructions::Instruction;
use crate::iiif::{Format, ImageRequest, Region, Rotation, Size};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(
        "instructions {file}: {label:?}: quality {quality:?} is a go-iiif extension that the config does not \
         enable (add features.append.quality.{extension}, or remove it from features.disable)"
    )]
    NotEnabled {
        file: PathBuf,
        label: String,
        quality: String,
        extension: &'static str,
    },
    #[error(
        "config features.{section}.{param}: {name:?} is not a go-iiif feature of {param} (known: {known}, or \
         a name features.append adds)"
    )]
    Unknown {
        section: String,
        param: String,
        name: String,
        known: String,
    },
    #[error("instructions {file}: {label:?}: {param} {value:?} is disabled by the config's features.disable")]
    Disabled {
        file: PathBuf,
        label: String,
        param: &'static str,
        value: String,
    },
}

/// go-iiif's level 2 features of each parameter (its `compliance/level2.json`).
pub const LEVEL2: &[(&str, &[&str])] = &[
    (
        "region",
        &["full", "regionByPx", "regionByPct", "regionSquare"],
    ),
    (
        "size",
        &[
            "full",
            "max",
            "sizeByW",
            "sizeByH",
            "sizeByPct",
            "sizeByConfinedWh",
            "sizeByDistortedWh",
            "sizeByWh",
        ],
    ),
    (
        "rotation",
        &[
            "none",
            "rotationBy90s",
            "rotationArbitrary",
            "mirroring",
            "noAutoRotate",
        ],
    ),
    ("quality", &["default", "color", "gray", "bitonal"]),
    (
        "format",
        &["jpg", "png", "tif", "gif", "pdf", "jp2", "webp"],
    ),
];

/// The go-iiif feature each of an instruction's region, size and rotation belongs to. `w,h` is `sizeByWh`:
/// go-iiif matches `sizeByDistortedWh` to the same syntax at random, and whether it distorts depends on the
/// source, so disabling that one refuses nothing here.
fn feature_names(req: &ImageRequest) -> [(&'static str, &'static str); 3] {
    let region = match req.region {
        Region::Full => "full",
        Region::Square => "regionSquare",
        // go-iiif's smart crop `-1,-1,w,h` is matched by its regionByPx pattern.
        Region::Pixels { .. } | Region::Smart { .. } => "regionByPx",
        Region::Percent { .. } => "regionByPct",
    };
    let size = match req.size {
        Size::Full => "full",
        Size::Max { .. } => "max",
        Size::Width { .. } => "sizeByW",
        Size::Height { .. } => "sizeByH",
        Size::Percent { .. } => "sizeByPct",
        Size::BestFit { .. } => "sizeByConfinedWh",
        Size::Exact { .. } => "sizeByWh",
    };
    let rotation = match req.rotation {
        Rotation::NoAutoRotate => "noAutoRotate",
        Rotation::Degrees { mirror: true, .. } => "mirroring",
        Rotation::Degrees { degrees: 0.0, .. } => "none",
        Rotation::Degrees { degrees, .. } if degrees % 90.0 == 0.0 => "rotationBy90s",
        Rotation::Degrees { .. } => "rotationArbitrary",
    };
    [("region", region), ("size", size), ("rotation", rotation)]
}

/// A name in `features.enable` or `features.disable` that is neither one of go-iiif's level 2 features of that
/// parameter nor one `features.append` adds: go-iiif refuses such a config, and so does this tool.
pub fn unknown_feature(config: &Config) -> Option<(String, String, String)> {
    for (section, map) in [("enable", &config.enabled), ("disable", &config.disabled)] {
        for (param, names) in map {
            let known = LEVEL2.iter().find(|(p, _)| p == param).map(|(_, n)| *n);
            for name in names {
                let appended = config.appended.get(param).is_some_and(|a| a.contains(name));
                if !appended && !known.is_some_and(|k| k.contains(&name.as_str())) {
                    return Some((section.to_string(), param.clone(), name.clone()));
                }
            }
        }
    }
    None
}

pub fn check(
    config: &Config,
    instructions: &[Instruction],
    file: &std::path::Path,
) -> Result<(), FeatureError> {
    if let Some((section, param, name)) = unknown_feature(config) {
        let known = LEVEL2.iter().find(|(p, _)| *p == param).map_or(
            "none, as go-iiif has no such parameter".to_string(),
            |(_, n)| n.join(", "),
        );
        return Err(FeatureError::Unknown {
            section,
            param,
            name,
            known,
        });
    }
    for ins in instructions {
        let q = &ins.request.quality;
        if let Some(extension) = q.extension_name() {
            if !config.extension_enabled("quality", extension) {
                return Err(FeatureError::NotEnabled {
                    file: file.to_path_buf(),
                    label: ins.label.clone(),
                    quality: q.to_string(),
                    extension,
                });
            }
        } else if config.is_disabled("quality", &q.to_string()) {
            return Err(FeatureError::Disabled {
                file: file.to_path_buf(),
                label: ins.label.clone(),
                param: "quality",
                value: q.to_string(),
            });
        }
        for (param, name) in feature_names(&ins.request) {
            if config.is_disabled(param, name) {
                return Err(FeatureError::Disabled {
                    file: file.to_path_buf(),
                    label: ins.label.clone(),
                    param,
                    value: name.to_string(),
                });
            }
        }
        let f = ins.request.format;
        if f != Format::Source && config.is_disabled("format", f.extension()) {
            return Err(FeatureError::Disabled {
                file: file.to_path_buf(),
                label: ins.label.clone(),
                param: "format",
                value: f.extension().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(features: &str) -> Config {
        let text = format!(
            r#"{{"images":{{"source":{{"path":"s"}}}},"derivatives":{{"cache":{{"path":"d"}}}},"features":{features}}}"#
        );
        Config::parse(&text, Path::new("c.json"), Path::new("/")).unwrap()
    }

    fn ins(region: &str, size: &str, rotation: &str) -> Vec<Instruction> {
        vec![Instruction {
            label: "x".into(),
            request: ImageRequest::parse(region, size, rotation, "default", "jpg").unwrap(),
        }]
    }

    #[test]
    fn disabled_go_iiif_features_are_refused_by_name() {
        let c = config(
            r#"{"disable": {"rotation": ["rotationArbitrary"], "region": ["regionSquare"], "size": ["max"]}}"#,
        );
        let ok = |i: Vec<Instruction>| check(&c, &i, Path::new("i.json"));
        assert!(ok(ins("full", "!800,600", "90")).is_ok());
        assert!(ok(ins("-1,-1,320,320", "full", "0")).is_ok());
        let e = ok(ins("full", "full", "22.5")).unwrap_err().to_string();
        assert!(
            e.contains("rotation \"rotationArbitrary\" is disabled"),
            "{e}"
        );
        assert!(ok(ins("square", "full", "0")).is_err());
        assert!(ok(ins("full", "max", "0")).is_err());
    }

    #[test]
    fn enable_and_disable_names_are_go_iiifs() {
        let c = config(
            r#"{"enable": {"size": ["max"], "format": ["webp", "tif", "gif"], "rotation": ["noAutoRotate"]}}"#,
        );
        assert_eq!(unknown_feature(&c), None);
        let c = config(r#"{"enable": {"format": ["heic"]}}"#);
        assert_eq!(
            unknown_feature(&c),
            Some(("enable".into(), "format".into(), "heic".into()))
        );
        let c = config(
            r#"{"disable": {"quality": ["crisp"]}, "append": {"quality": {"crisp": {"syntax": "crisp"}}}}"#,
        );
        assert_eq!(unknown_feature(&c), None);
    }
}
