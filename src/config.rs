//! go-iiif's `config.json`: where sources are read from, where derivatives go, which extras to compute.
//!
//! Unknown or unused go-iiif keys are accepted and reported once as a warning, so existing configs work unchanged.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: line {line}, column {column}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Where bytes live: a directory on disk (the only kind so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Disk(PathBuf),
}

/// Settings for go-iiif's palette service.
#[derive(Debug, Clone, PartialEq)]
pub struct PaletteSettings {
    pub count: usize,
    /// Named palettes for swatch names (`crayola`, `css4`), used when the grid is euclidian.
    pub names: Vec<String>,
    pub grid: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlurhashSettings {
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: Location,
    pub derivatives: Location,
    /// Services named in `profile.services.enable` (palette, blurhash, imagehash).
    pub services: Vec<String>,
    pub palette: PaletteSettings,
    pub blurhash: BlurhashSettings,
    /// go-iiif's `features.append.<param>`: extension values enabled, e.g. quality -> {dither, crisp}.
    pub appended: BTreeMap<String, Vec<String>>,
    /// go-iiif's `features.disable.<param>`: values refused.
    pub disabled: BTreeMap<String, Vec<String>>,
    /// Decode limit: sources with more pixels are refused before allocating.
    pub max_pixels: Option<u64>,
    /// Keys accepted for compatibility but not used (one warning at start).
    pub ignored_keys: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    images: RawImages,
    #[serde(default)]
    derivatives: RawDerivatives,
    #[serde(default)]
    profile: Option<RawProfile>,
    #[serde(default)]
    features: Option<RawFeatures>,
    #[serde(default)]
    palette: Option<RawPalette>,
    #[serde(default)]
    blurhash: Option<RawBlurhash>,
    /// go-iiif v8 spells the service sections `*_service`.
    #[serde(default)]
    palette_service: Option<RawPalette>,
    #[serde(default)]
    blurhash_service: Option<RawBlurhash>,
}

#[derive(Deserialize, Default)]
struct RawImages {
    source: Option<RawStore>,
}

#[derive(Deserialize, Default)]
struct RawDerivatives {
    cache: Option<RawStore>,
}

#[derive(Deserialize, Default)]
struct RawStore {
    name: Option<String>,
    path: Option<String>,
    uri: Option<String>,
    max_pixels: Option<u64>,
}

#[derive(Deserialize, Default)]
struct RawProfile {
    services: Option<RawServices>,
}

#[derive(Deserialize, Default)]
struct RawServices {
    #[serde(default)]
    enable: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawFeatures {
    #[serde(default)]
    append: BTreeMap<String, Value>,
    #[serde(default)]
    disable: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
struct RawPalette {
    extruder: Option<RawNamed>,
    /// v8: a list of extruders.
    #[serde(default)]
    extruders: Vec<RawNamed>,
    grid: Option<RawNamed>,
    #[serde(default)]
    palettes: Vec<RawNamed>,
}

/// `{"name": "vibrant"}` (v6/v7) or `{"uri": "vibrant://"}` (v8), with an optional count.
#[derive(Deserialize, Default)]
struct RawNamed {
    name: Option<String>,
    uri: Option<String>,
    count: Option<usize>,
}

impl RawNamed {
    fn name(&self) -> String {
        let n = self.name.as_deref().or(self.uri.as_deref()).unwrap_or("");
        n.trim_end_matches("://").to_ascii_lowercase()
    }
}

#[derive(Deserialize, Default)]
struct RawBlurhash {
    x: Option<u32>,
    y: Option<u32>,
    size: Option<u32>,
}

/// Top-level keys go-iiif configs carry that this tool reads.
const USED_KEYS: &[&str] = &[
    "images",
    "derivatives",
    "profile",
    "features",
    "palette",
    "blurhash",
    "imagehash",
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parse config text; relative paths resolve against `base` (the config file's directory).
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let json_err = |e: serde_json::Error| ConfigError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let value: Value = serde_json::from_str(text).map_err(json_err)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let Value::Object(top) = &value else {
            return Err(invalid("the config must be a JSON object".into()));
        };
        let mut ignored_keys: Vec<String> = top
            .keys()
            .filter(|k| !USED_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;

        let source_raw = raw.images.source.ok_or_else(|| {
            invalid("missing images.source (where source images are read from)".into())
        })?;
        if top.get("images").and_then(|i| i.get("cache")).is_some() {
            ignored_keys.push("images.cache".into());
        }
        let max_pixels = source_raw.max_pixels;
        let source = location(&source_raw, "images.source", base).map_err(invalid)?;
        let cache_raw = raw.derivatives.cache.ok_or_else(|| {
            invalid("missing derivatives.cache (where derivatives are written)".into())
        })?;
        let derivatives = location(&cache_raw, "derivatives.cache", base).map_err(invalid)?;

        let services = raw
            .profile
            .and_then(|p| p.services)
            .map(|s| s.enable)
            .unwrap_or_default();
        for s in &services {
            if !["palette", "blurhash", "imagehash"].contains(&s.as_str()) {
                return Err(invalid(format!(
                    "profile.services.enable: unknown service {s:?} (known: palette, blurhash, imagehash)"
                )));
            }
        }

        let p = raw.palette_service.or(raw.palette).unwrap_or_default();
        let extruder = p
            .extruder
            .or_else(|| p.extruders.into_iter().next())
            .unwrap_or_default();
        let extruder_name = extruder.name();
        if !extruder_name.is_empty() && extruder_name != "vibrant" {
            return Err(invalid(format!(
                "palette extruder {extruder_name:?} is not supported (supported: vibrant)"
            )));
        }
        let palette = PaletteSettings {
            count: extruder.count.unwrap_or(5).clamp(1, 64),
            names: p.palettes.iter().map(RawNamed::name).collect(),
            grid: p
                .grid
                .map(|g| g.name())
                .unwrap_or_else(|| "euclidian".into()),
        };
        for n in &palette.names {
            if n != "crayola" && n != "css4" {
                return Err(invalid(format!(
                    "palette.palettes: unknown palette {n:?} (supported: crayola, css4)"
                )));
            }
        }
        // go-iiif's bundled defaults: 8x8 components on an image fitted within 200 px.
        let b = raw.blurhash_service.or(raw.blurhash).unwrap_or_default();
        let blurhash = BlurhashSettings {
            x: b.x.unwrap_or(8).clamp(1, 9),
            y: b.y.unwrap_or(8).clamp(1, 9),
            size: b.size.unwrap_or(200).clamp(1, 1024),
        };

        let features = raw.features.unwrap_or_default();
        Ok(Config {
            source,
            derivatives,
            services,
            palette,
            blurhash,
            appended: names_by_param(&features.append),
            disabled: names_by_param(&features.disable),
            max_pixels,
            ignored_keys,
        })
    }

    /// Is the go-iiif extension value `name` of parameter `param` (e.g. quality `dither`) enabled?
    pub fn extension_enabled(&self, param: &str, name: &str) -> bool {
        self.appended
            .get(param)
            .is_some_and(|v| v.iter().any(|n| n == name))
            && !self.is_disabled(param, name)
    }

    /// Is the value `name` of parameter `param` disabled by `features.disable`?
    pub fn is_disabled(&self, param: &str, name: &str) -> bool {
        self.disabled
            .get(param)
            .is_some_and(|v| v.iter().any(|n| n == name))
    }
}

/// go-iiif writes features as `{param: {name: {syntax, supported, ...}}}` or `{param: [name, ...]}`.
fn names_by_param(map: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<String>> {
    map.iter()
        .map(|(param, v)| {
            let names = match v {
                Value::Object(o) => o
                    .iter()
                    .filter(|(_, spec)| {
                        spec.get("supported").and_then(Value::as_bool) != Some(false)
                    })
                    .map(|(k, _)| k.clone())
                    .collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            (param.clone(), names)
        })
        .collect()
}

fn location(raw: &RawStore, key: &str, base: &Path) -> Result<Location, String> {
    let name = raw.name.as_deref().unwrap_or("Disk");
    let path = match (&raw.path, &raw.uri) {
        (Some(p), _) => p.clone(),
        (None, Some(u)) => match u.strip_prefix("file://") {
            Some(p) => p.to_string(),
            None => {
                return Err(format!(
                    "{key}.uri {u:?}: only file:// locations are supported so far"
                ))
            }
        },
        (None, None) => return Err(format!("{key}: missing path")),
    };
    if !(name.eq_ignore_ascii_case("disk") || raw.path.is_none() && raw.uri.is_some()) {
        return Err(format!(
            "{key}.name {name:?}: this kind of storage is not supported yet (supported: Disk)"
        ));
    }
    let p = PathBuf::from(&path);
    Ok(Location::Disk(if p.is_absolute() {
        p
    } else {
        base.join(p)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("config.json"), Path::new("/base"))
    }

    const MIN: &str = r#"{"images":{"source":{"name":"Disk","path":"src"}},"derivatives":{"cache":{"name":"Disk","path":"/out"}}}"#;

    #[test]
    fn minimal_config_resolves_relative_paths_against_the_config_dir() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.source, Location::Disk("/base/src".into()));
        assert_eq!(c.derivatives, Location::Disk("/out".into()));
        assert!(c.services.is_empty());
        assert_eq!(
            c.blurhash,
            BlurhashSettings {
                x: 8,
                y: 8,
                size: 200
            }
        );
    }

    #[test]
    fn go_iiif_example_config_is_accepted_with_unused_keys_listed() {
        let text = r#"{
          "level": {"compliance": "2"},
          "graphics": {"source": {"name": "VIPS"}},
          "profile": {"services": {"enable": ["palette", "blurhash", "imagehash"]}},
          "features": {"enable": {}, "disable": {"format": ["webp"]},
            "append": {"quality": {"dither": {"syntax": "dither", "required": false, "supported": true, "match": "^dither$"}}}},
          "images": {"source": {"name": "Disk", "path": "images"}, "cache": {"name": "Memory", "ttl": 300, "limit": 100}},
          "derivatives": {"cache": {"name": "Disk", "path": "cache"}},
          "palette": {"extruder": {"name": "vibrant", "count": 5}, "grid": {"name": "euclidian"},
                      "palettes": [{"name": "crayola"}, {"name": "css4"}]}
        }"#;
        let c = parse(text).unwrap();
        assert_eq!(c.services, ["palette", "blurhash", "imagehash"]);
        assert!(c.extension_enabled("quality", "dither"));
        assert!(!c.extension_enabled("quality", "crisp"));
        assert!(c.is_disabled("format", "webp"));
        assert_eq!(c.palette.names, ["crayola", "css4"]);
        assert_eq!(c.ignored_keys, ["graphics", "level", "images.cache"]);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = parse("{\n  \"images\": ,\n}").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn unsupported_storage_is_named() {
        let text = MIN.replace(
            r#""name":"Disk","path":"/out""#,
            r#""name":"S3","path":"bucket""#,
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("derivatives.cache") && e.contains("S3"), "{e}");
    }

    #[test]
    fn go_iiif_v8_service_sections_are_read() {
        let text = MIN.replace(
            "}}}",
            r#"}}, "palette_service": {"extruders": [{"uri": "vibrant://", "count": 7}], "grid": {"uri": "euclidian://"},
                 "palettes": [{"uri": "css4://"}]}, "blurhash_service": {"x": 4, "y": 3, "size": 32}}"#,
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.palette.count, 7);
        assert_eq!(c.palette.names, ["css4"]);
        assert_eq!(
            c.blurhash,
            BlurhashSettings {
                x: 4,
                y: 3,
                size: 32
            }
        );
    }

    #[test]
    fn file_uris_are_accepted() {
        let text = r#"{"images":{"source":{"uri":"file:///a"}},"derivatives":{"cache":{"uri":"file:///b"}}}"#;
        let c = parse(text).unwrap();
        assert_eq!(c.source, Location::Disk("/a".into()));
    }
}
