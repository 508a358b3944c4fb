//! go-iiif's instructions file: a JSON object of label -> `{region, size, rotation, quality, format}`.
//!
//! Every instruction is parsed and validated here, before any image is read.

use crate::iiif::{ApiVersion, IiifError, ImageRequest};
use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InstructionsError {
    #[error("cannot read instructions {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("instructions {path}: line {line}, column {column}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("instructions {path}: {label:?}: {source}")]
    Request {
        path: PathBuf,
        label: String,
        source: IiifError,
    },
    #[error("instructions {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One labelled instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub label: String,
    pub request: ImageRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstruction {
    region: Option<Text>,
    size: Option<Text>,
    rotation: Option<Text>,
    quality: Option<Text>,
    format: Option<Text>,
}

/// A parameter value: go-iiif writes strings, but a bare number (`"rotation": 90`) is accepted too.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Text(s)),
            Value::Number(n) => Ok(Text(n.to_string())),
            other => Err(de::Error::custom(format!(
                "expected a string, found {other}"
            ))),
        }
    }
}

/// The labels in file order, refusing duplicates (serde_json would silently keep the last one).
struct Ordered(Vec<(String, RawInstruction)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of label -> {region, size, rotation, quality, format}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out: Vec<(String, RawInstruction)> = Vec::new();
                while let Some(label) = map.next_key::<String>()? {
                    if out.iter().any(|(l, _)| *l == label) {
                        return Err(de::Error::custom(format!("duplicate label {label:?}")));
                    }
                    let raw: RawInstruction = map
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("label {label:?}: {e}")))?;
                    out.push((label, raw));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse instructions text; `path` names the file in messages.
pub fn parse(
    text: &str,
    path: &Path,
    api: ApiVersion,
) -> Result<Vec<Instruction>, InstructionsError> {
    let Ordered(raw) = serde_json::from_str(text).map_err(|e| InstructionsError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if raw.is_empty() {
        return Err(InstructionsError::Invalid {
            path: path.to_path_buf(),
            message: "no instructions".into(),
        });
    }
    raw.into_iter()
        .map(|(label, r)| {
            if label.is_empty() || label.contains(['/', '\\']) || label == "." || label == ".." {
                return Err(InstructionsError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("label {label:?} is not a usable name"),
                });
            }
            let get = |t: Option<Text>, default: &str| {
                t.map(|t| t.0).unwrap_or_else(|| default.to_string())
            };
            let request = ImageRequest::parse(
                &get(r.region, "full"),
                &get(r.size, "full"),
                &get(r.rotation, "0"),
                &get(r.quality, "default"),
                &get(r.format, "jpg"),
            )
            .and_then(|req| req.validate(api).map(|()| req))
            .map_err(|source| InstructionsError::Request {
                path: path.to_path_buf(),
                label: label.clone(),
                source,
            })?;
            Ok(Instruction { label, request })
        })
        .collect()
}

pub fn load(path: &Path, api: ApiVersion) -> Result<Vec<Instruction>, InstructionsError> {
    let text = std::fs::read_to_string(path).map_err(|source| InstructionsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, api)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Instruction>, InstructionsError> {
        parse(text, Path::new("i.json"), ApiVersion::V2)
    }

    #[test]
    fn defaults_are_go_iiifs() {
        let v = p(r#"{"x": {}}"#).unwrap();
        assert_eq!(
            v[0].request,
            ImageRequest::parse("full", "full", "0", "default", "jpg").unwrap()
        );
    }

    #[test]
    fn file_order_is_kept() {
        let v = p(r#"{"b": {"size": "!10,10"}, "a": {"rotation": 90}}"#).unwrap();
        assert_eq!(
            v.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
    }

    #[test]
    fn bad_value_names_label_field_and_value() {
        let e = p(r#"{"thumb": {"size": "!abc"}}"#).unwrap_err().to_string();
        assert!(
            e.contains("thumb") && e.contains("size") && e.contains("!abc"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let e = p(r#"{"t": {"sise": "full"}}"#).unwrap_err().to_string();
        assert!(e.contains("sise") && e.contains("\"t\""), "{e}");
    }

    #[test]
    fn duplicate_label_is_refused() {
        let e = p(r#"{"t": {}, "t": {}}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate label \"t\""), "{e}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = p("{\n\"t\": {\"size\": }\n}").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn full_size_is_refused_under_api_3() {
        assert!(parse(r#"{"t": {}}"#, Path::new("i"), ApiVersion::V3).is_err());
        assert!(parse(r#"{"t": {"size": "max"}}"#, Path::new("i"), ApiVersion::V3).is_ok());
    }
}
