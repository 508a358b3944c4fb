//! go-iiif's `features`: extension qualities must be enabled by `features.append`, and nothing may use a value
//! that `features.disable` turns off. Checked once, before any image is read.

use super::config::Config;
use super::instructions::Instruction;
use crate::iiif::Format;
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
    #[error("instructions {file}: {label:?}: {param} {value:?} is disabled by the config's features.disable")]
    Disabled {
        file: PathBuf,
        label: String,
        param: &'static str,
        value: String,
    },
}

pub fn check(
    config: &Config,
    instructions: &[Instruction],
    file: &std::path::Path,
) -> Result<(), FeatureError> {
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
