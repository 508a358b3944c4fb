//! go-iiif's `config.json`: where sources are read from, where derivatives go, which extras to compute.
//!
//! Unknown or unused go-iiif keys are accepted and reported once as a warning, so existing configs work unchanged.

use crate::codec::colour::{ColourMode, UnknownColourMode};
use crate::codec::{MetadataMode, UnknownMetadataMode};
use crate::codec::{WebpQuality, WebpQualityError};
use crate::services::palette::{Extruder, NamedPalette};
use crate::store::location::{
    check_bucket, clean_prefix, file_uri, is_environment_label, is_harmless_file_option,
    join_prefix, parse_uri,
};
use crate::store::{Cloud, Location, LocationError, ObjectLocation};
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
    #[error("config {path}: {problem}")]
    Invalid {
        path: PathBuf,
        problem: ConfigProblem,
    },
}

/// What is wrong inside a config that parses as JSON.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error("the config must be a JSON object")]
    NotAnObject,
    /// A key holds a value of the wrong type (serde's message names it).
    #[error("{0}")]
    Shape(serde_json::Error),
    #[error("missing images.source (where source images are read from)")]
    MissingSource,
    #[error("missing derivatives.cache (where derivatives are written)")]
    MissingCache,
    #[error(
        "profile.services.enable: unknown service {0:?} (known: palette, blurhash, imagehash)"
    )]
    UnknownService(String),
    #[error("palette extruder {0:?} is not supported (supported: vibrant, marekm4, quant)")]
    Extruder(String),
    #[error("palette.palettes: unknown palette {0:?} (supported: crayola, css3, css4)")]
    Palette(String),
    #[error("palette.grid {0:?} is not supported (supported: euclidian)")]
    Grid(String),
    #[error("{key}: missing path")]
    MissingPath { key: &'static str },
    #[error(
        "{key}.name {name:?}: this kind of storage is not supported (supported: Disk, S3, Blob)"
    )]
    Storage { key: &'static str, name: String },
    #[error("{key}: an S3 entry needs \"path\": the bucket name")]
    S3Bucket { key: &'static str },
    #[error("{key}.path: an S3 entry's path is a bucket name; give URIs as \"uri\"")]
    S3PathIsUri { key: &'static str },
    #[error("derivatives.colour: {0}")]
    Colour(UnknownColourMode),
    #[error("derivatives.metadata: {0}")]
    Metadata(UnknownMetadataMode),
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("derivatives.webp_quality: {0}")]
    WebpQuality(#[from] WebpQualityError),
}

/// Settings for go-iiif's palette service.
#[derive(Debug, Clone, PartialEq)]
pub struct PaletteSettings {
    /// Each extruder with the number of colours asked of it, in configuration order.
    pub(crate) extruders: Vec<(Extruder, usize)>,
    /// Named palettes for each swatch's `closest` colours, in configuration order.
    pub(crate) palettes: Vec<NamedPalette>,
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
    /// go-iiif's `features.enable.<param>`: features go-iiif leaves off until named (all are on here).
    pub enabled: BTreeMap<String, Vec<String>>,
    /// Decode limit: sources with more pixels are refused before allocating.
    pub max_pixels: Option<u64>,
    /// Output limit: derivatives with more pixels are refused before allocating.
    pub max_output_pixels: Option<u64>,
    /// `derivatives.webp_quality`: how WebP derivatives are compressed (`-webp-quality` wins).
    pub webp_quality: Option<WebpQuality>,
    /// The Cache-Control of objects written to an object store.
    pub cache_control: Option<String>,
    /// `derivatives.colour`: `srgb` or `keep` (`-colour`).
    pub colour: Option<ColourMode>,
    /// `derivatives.tiles`: iiif-process's own, the IIIF Level 0 service (`-tiles` and its flags win).
    pub tiles: TilesConfig,
    /// `derivatives.metadata`: `none`, `rights` or `all` (`-metadata`).
    pub metadata: Option<MetadataMode>,
    /// Keys accepted for compatibility but not used (one warning at start).
    pub ignored_keys: Vec<String>,
}

/// `derivatives.tiles`, as written; checked with the flags in [`crate::settings`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TilesConfig {
    pub enable: Option<bool>,
    pub canonical: Option<bool>,
    pub api: Option<String>,
    pub tile_size: Option<u64>,
    pub base_url: Option<String>,
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
    /// iiif-process's own: the limit on a derivative's pixels (`-max-output-pixels`).
    max_output_pixels: Option<u64>,
    /// iiif-process's own: `-webp-quality`, a number or "lossless".
    webp_quality: Option<Value>,
    /// iiif-process's own: the Cache-Control of objects written (`-cache-control`).
    cache_control: Option<String>,
    /// iiif-process's own: colour management (`-colour`).
    colour: Option<String>,
    /// iiif-process's own: the IIIF Level 0 service (`-tiles`).
    tiles: Option<TilesConfig>,
    /// iiif-process's own: which metadata derivatives carry (`-metadata`).
    metadata: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawStore {
    name: Option<String>,
    path: Option<String>,
    uri: Option<String>,
    max_pixels: Option<u64>,
    /// go-iiif's `S3` entries: key prefix, region and a credentials label.
    prefix: Option<String>,
    region: Option<String>,
    credentials: Option<String>,
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
    enable: BTreeMap<String, Value>,
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
        // go-colours looks a URI up by its scheme alone.
        let n = n.split_once("://").map_or(n, |(scheme, _)| scheme);
        n.trim().to_ascii_lowercase()
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
    "palette_service",
    "blurhash_service",
    "imagehash",
    "imagehash_service",
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// As [`Config::load`], with the flags' replacements of images.source and derivatives.cache.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse_with(&text, path, base, overrides)
    }

    /// Parse config text; relative paths resolve against `base` (the config file's directory).
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, base, &Overrides::default())
    }

    /// As [`Config::parse`], with images.source and derivatives.cache replaced by the flags' URIs.
    pub fn parse_with(
        text: &str,
        path: &Path,
        base: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let json_err = |e: serde_json::Error| ConfigError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let mut value: Value = serde_json::from_str(text).map_err(json_err)?;
        overrides.apply(&mut value);
        let invalid = |problem: ConfigProblem| ConfigError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let Value::Object(top) = &value else {
            return Err(invalid(ConfigProblem::NotAnObject));
        };
        let mut ignored_keys: Vec<String> = top
            .keys()
            .filter(|k| !USED_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| invalid(ConfigProblem::Shape(e)))?;

        let source_raw = raw
            .images
            .source
            .ok_or_else(|| invalid(ConfigProblem::MissingSource))?;
        if top.get("images").and_then(|i| i.get("cache")).is_some() {
            ignored_keys.push("images.cache".into());
        }
        let max_pixels = source_raw.max_pixels;
        let source =
            location(&source_raw, "images.source", base, &mut ignored_keys).map_err(invalid)?;
        let cache_raw = raw
            .derivatives
            .cache
            .take()
            .ok_or_else(|| invalid(ConfigProblem::MissingCache))?;
        let derivatives =
            location(&cache_raw, "derivatives.cache", base, &mut ignored_keys).map_err(invalid)?;

        let services = raw
            .profile
            .and_then(|p| p.services)
            .map(|s| s.enable)
            .unwrap_or_default()
            .into_iter()
            .map(|s| service_name(&s).ok_or_else(|| invalid(ConfigProblem::UnknownService(s))))
            .collect::<Result<Vec<_>, _>>()?;
        // As go-iiif, a palette section is only looked at when the service runs.
        let palette =
            match palette_settings(raw.palette_service.or(raw.palette).unwrap_or_default()) {
                Ok(p) => p,
                Err(e) if services.iter().any(|s| s == "palette") => return Err(invalid(e)),
                Err(_) => palette_settings(RawPalette::default()).map_err(invalid)?,
            };
        // go-iiif's bundled defaults: 8x8 components on an image fitted within 200 px.
        let b = raw.blurhash_service.or(raw.blurhash).unwrap_or_default();
        let blurhash = BlurhashSettings {
            x: b.x.unwrap_or(8).clamp(1, 9),
            y: b.y.unwrap_or(8).clamp(1, 9),
            size: b.size.unwrap_or(200).clamp(1, 1024),
        };

        let webp_quality = match &raw.derivatives.webp_quality {
            None => None,
            Some(v) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                Some(text.parse::<WebpQuality>().map_err(|e| invalid(e.into()))?)
            }
        };
        let colour = match raw.derivatives.colour.as_deref() {
            None => None,
            Some(c) => Some(
                c.parse::<ColourMode>()
                    .map_err(|e| invalid(ConfigProblem::Colour(e)))?,
            ),
        };
        let metadata = match raw.derivatives.metadata.as_deref() {
            None => None,
            Some(m) => Some(
                m.parse::<MetadataMode>()
                    .map_err(|e| invalid(ConfigProblem::Metadata(e)))?,
            ),
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
            enabled: names_by_param(&features.enable),
            max_pixels,
            max_output_pixels: raw.derivatives.max_output_pixels.filter(|&n| n > 0),
            webp_quality,
            cache_control: raw.derivatives.cache_control,
            colour,
            tiles: raw.derivatives.tiles.unwrap_or_default(),
            metadata,
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

/// go-iiif v8's `-config-images-source-uri` and `-config-derivatives-cache-uri`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub images_source_uri: Option<String>,
    pub derivatives_cache_uri: Option<String>,
}

impl Overrides {
    /// Replace the entries in the config's JSON, as go-iiif assigns `uri` (which wins over the rest of the
    /// entry there). A folder without a scheme is taken relative to the working directory, not the config's.
    fn apply(&self, value: &mut Value) {
        let Value::Object(top) = value else { return };
        for (section, key, uri) in [
            ("images", "source", &self.images_source_uri),
            ("derivatives", "cache", &self.derivatives_cache_uri),
        ] {
            let Some(uri) = uri else { continue };
            let entry = if uri.contains("://") {
                serde_json::json!({ "uri": uri })
            } else {
                let p = std::path::absolute(uri).unwrap_or_else(|_| PathBuf::from(uri));
                serde_json::json!({ "name": "Disk", "path": p.to_string_lossy() })
            };
            let section = top
                .entry(section)
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(s) = section {
                // Keys of this tool's own (max_pixels) stay; the storage keys give way to the flag's.
                let mut merged = entry;
                if let (Some(Value::Object(old)), Value::Object(new)) = (s.get(key), &mut merged) {
                    for (k, v) in old {
                        if !["name", "path", "uri", "prefix", "region", "credentials"]
                            .contains(&k.as_str())
                        {
                            new.insert(k.clone(), v.clone());
                        }
                    }
                }
                s.insert(key.to_string(), merged);
            }
        }
    }
}

/// A service as `profile.services.enable` names it: `palette`, `blurhash`, `imagehash`, also as go-iiif v8's
/// documented example config writes them (`palette_service`, …, which go-iiif itself then fails to find).
fn service_name(name: &str) -> Option<String> {
    let name = name.trim();
    let name = name.strip_suffix("_service").unwrap_or(name);
    ["palette", "blurhash", "imagehash"]
        .contains(&name)
        .then(|| name.to_string())
}

/// v6/v7 `palette` (`extruder`, `grid`, `palettes` by `name`) or v8 `palette_service` (`extruders`, by `uri`).
fn palette_settings(p: RawPalette) -> Result<PaletteSettings, ConfigProblem> {
    let named: Vec<RawNamed> = p.extruder.into_iter().chain(p.extruders).collect();
    let mut extruders = Vec::with_capacity(named.len());
    for e in &named {
        let name = e.name();
        let extruder = if name.is_empty() {
            Extruder::Vibrant
        } else {
            Extruder::from_name(&name).ok_or(ConfigProblem::Extruder(name))?
        };
        // Up to 64 colours: more would not be a palette, and quant's clusters are allocated up front.
        extruders.push((extruder, e.count.unwrap_or(5).clamp(1, 64)));
    }
    // go-iiif keeps one count per extruder kind, the last one configured.
    let last: Vec<usize> = extruders
        .iter()
        .map(|(e, count)| {
            extruders
                .iter()
                .rev()
                .find(|(x, _)| x == e)
                .map_or(*count, |&(_, c)| c)
        })
        .collect();
    for (e, count) in extruders.iter_mut().zip(last) {
        e.1 = count;
    }
    if extruders.is_empty() {
        extruders.push((Extruder::Vibrant, 5));
    }
    let palettes = p
        .palettes
        .iter()
        .map(|n| {
            let name = n.name();
            NamedPalette::from_name(&name).ok_or(ConfigProblem::Palette(name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let grid = p
        .grid
        .map(|g| g.name())
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| "euclidian".into());
    if grid != "euclidian" {
        return Err(ConfigProblem::Grid(grid));
    }
    Ok(PaletteSettings {
        extruders,
        palettes,
        grid,
    })
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

/// `images.source` or `derivatives.cache`. Accepted shapes (go-iiif's, old and new):
/// - `{"name": "Disk", "path": "dir"}` and `{"uri": "file:///dir"}`: a directory, relative to the config's;
/// - `{"uri": "s3://bucket/prefix?region=…"}`, also `s3blob://`, `gs://`, `azblob://`, `az://`, and the same URIs
///   as `{"name": "Blob", "path": "…"}`;
/// - `{"name": "S3", "path": "bucket", "prefix": "…", "region": "…", "credentials": "…"}`.
///
/// Credentials always come from the environment; a credentials label other than `env:` or `iam:` is listed in
/// `ignored` (by key, never by value).
fn location(
    raw: &RawStore,
    key: &'static str,
    base: &Path,
    ignored: &mut Vec<String>,
) -> Result<Location, ConfigProblem> {
    let name = raw.name.as_deref().unwrap_or("");
    if name.eq_ignore_ascii_case("s3") {
        return s3_entry(raw, key, ignored).map(Location::Object);
    }
    let disk = name.is_empty() || name.eq_ignore_ascii_case("disk");
    let blob = name.eq_ignore_ascii_case("blob");
    let (field, text) = match (&raw.path, &raw.uri) {
        (Some(p), _) => ("path", p.as_str()),
        (None, Some(u)) => ("uri", u.as_str()),
        (None, None) => return Err(ConfigProblem::MissingPath { key }),
    };
    if field == "path" && !(disk || blob) {
        return Err(ConfigProblem::Storage {
            key,
            name: name.to_string(),
        });
    }
    // A Disk path, or a path with no scheme, is a directory; anything else is read as a URI.
    let path = if field == "path" && (name.eq_ignore_ascii_case("disk") || !text.contains("://")) {
        PathBuf::from(text)
    } else if let Some((p, options)) = file_uri(text) {
        // Go Cloud's options ride in the query (`file:///dir?metadata=skip`): never part of the path.
        ignored.extend(
            options
                .iter()
                .filter(|o| !is_harmless_file_option(o))
                .map(|o| format!("{key}.{field}?{o}")),
        );
        p
    } else {
        return Ok(Location::Object(parse_uri(
            text,
            &format!("{key}.{field}"),
            ignored,
        )?));
    };
    Ok(Location::Disk(if path.is_absolute() {
        path
    } else {
        base.join(path)
    }))
}

/// A folder or bucket named by a flag (`-report-bucket-uri`): `file:///dir`, a plain folder (relative to the
/// working directory) or a bucket URI. Query parameters that change nothing are accepted silently.
pub fn location_from_flag(uri: &str, flag: &'static str) -> Result<Location, LocationError> {
    if let Some((path, _)) = file_uri(uri) {
        return Ok(Location::Disk(path));
    }
    if !uri.contains("://") {
        return Ok(Location::Disk(PathBuf::from(uri)));
    }
    Ok(Location::Object(parse_uri(uri, flag, &mut Vec::new())?))
}

/// go-iiif's `{"name": "S3", "path": "bucket", "prefix": …, "region": …, "credentials": …}`.
fn s3_entry(
    raw: &RawStore,
    key: &'static str,
    ignored: &mut Vec<String>,
) -> Result<ObjectLocation, ConfigProblem> {
    let path = raw
        .path
        .as_deref()
        .filter(|p| !p.trim_matches('/').is_empty())
        .ok_or(ConfigProblem::S3Bucket { key })?;
    if path.contains("://") {
        return Err(ConfigProblem::S3PathIsUri { key });
    }
    let path = path.trim_matches('/');
    let (bucket, in_path) = path.split_once('/').unwrap_or((path, ""));
    let prefix = join_prefix(in_path, raw.prefix.as_deref().unwrap_or(""));
    if raw
        .credentials
        .as_deref()
        .is_some_and(|c| !is_environment_label(c))
    {
        ignored.push(format!("{key}.credentials"));
    }
    if raw.uri.is_some() {
        ignored.push(format!("{key}.uri"));
    }
    let location = ObjectLocation {
        cloud: Cloud::S3,
        bucket: bucket.to_string(),
        prefix: clean_prefix(&prefix, key)?,
        region: raw.region.clone().filter(|r| !r.is_empty()),
        endpoint: None,
    };
    check_bucket(&location.bucket, key)?;
    Ok(location)
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
        assert_eq!(
            c.palette.palettes,
            [NamedPalette::Crayola, NamedPalette::Css4]
        );
        assert_eq!(c.palette.extruders, [(Extruder::Vibrant, 5)]);
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
            r#""name":"Memory","path":"x""#,
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("derivatives.cache") && e.contains("Memory"),
            "{e}"
        );
    }

    /// The config with `source` as images.source and `cache` as derivatives.cache.
    fn with_stores(source: &str, cache: &str) -> Result<Config, ConfigError> {
        parse(&format!(
            r#"{{"images":{{"source":{source}}},"derivatives":{{"cache":{cache}}}}}"#
        ))
    }

    fn object(cloud: Cloud, bucket: &str, prefix: &str, region: Option<&str>) -> Location {
        Location::Object(ObjectLocation {
            cloud,
            bucket: bucket.into(),
            prefix: prefix.into(),
            region: region.map(str::to_string),
            endpoint: None,
        })
    }

    #[test]
    fn s3_uris_name_a_bucket_a_prefix_and_a_region() {
        let c = with_stores(
            r#"{"uri":"s3://masters/2024/scans?region=eu-west-1"}"#,
            r#"{"uri":"s3blob://derivs?region=us-west-2&prefix=iiif/&credentials=iam:"}"#,
        )
        .unwrap();
        assert_eq!(
            c.source,
            object(Cloud::S3, "masters", "2024/scans", Some("eu-west-1"))
        );
        assert_eq!(
            c.derivatives,
            object(Cloud::S3, "derivs", "iiif", Some("us-west-2"))
        );
        assert!(c.ignored_keys.is_empty(), "{:?}", c.ignored_keys);
        let Location::Object(o) = &c.source else {
            unreachable!()
        };
        assert_eq!(o.to_string(), "s3://masters/2024/scans");
    }

    #[test]
    fn go_iiif_documented_s3blob_form_with_three_slashes() {
        let c = with_stores(
            r#"{"uri":"s3blob:///bucket-name?region=us-east-1&credentials=iam:"}"#,
            r#"{"uri":"s3:///bucket-name/derivatives?endpoint=http://127.0.0.1:9000"}"#,
        )
        .unwrap();
        assert_eq!(
            c.source,
            object(Cloud::S3, "bucket-name", "", Some("us-east-1"))
        );
        let Location::Object(o) = &c.derivatives else {
            unreachable!()
        };
        assert_eq!(
            (o.bucket.as_str(), o.prefix.as_str()),
            ("bucket-name", "derivatives")
        );
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn gcs_and_azure_uris() {
        let c = with_stores(
            r#"{"uri":"gs://bucket/a/b"}"#,
            r#"{"uri":"azblob://container/iiif"}"#,
        )
        .unwrap();
        assert_eq!(c.source, object(Cloud::Gcs, "bucket", "a/b", None));
        assert_eq!(
            c.derivatives,
            object(Cloud::Azure, "container", "iiif", None)
        );
        let c = with_stores(
            r#"{"uri":"az://container"}"#,
            r#"{"uri":"gs://b?prefix=x%20y"}"#,
        )
        .unwrap();
        assert_eq!(c.source, object(Cloud::Azure, "container", "", None));
        assert_eq!(c.derivatives, object(Cloud::Gcs, "b", "x y", None));
    }

    #[test]
    fn go_iiif_blob_and_s3_entries() {
        let c = with_stores(
            r#"{"name":"Blob","path":"s3://bucket?region=us-east-1&prefix=masters"}"#,
            r#"{"name":"S3","path":"cache.bucket","prefix":"iiif/","region":"us-east-2","credentials":"default"}"#,
        )
        .unwrap();
        assert_eq!(
            c.source,
            object(Cloud::S3, "bucket", "masters", Some("us-east-1"))
        );
        assert_eq!(
            c.derivatives,
            object(Cloud::S3, "cache.bucket", "iiif", Some("us-east-2"))
        );
        // A profile name cannot be honoured: the key (never the value) is reported as unused.
        assert_eq!(c.ignored_keys, ["derivatives.cache.credentials"]);
        let c = with_stores(
            r#"{"name":"S3","path":"bucket/sub","prefix":"p","credentials":"env:"}"#,
            r#"{"name":"Blob","path":"file:///out"}"#,
        )
        .unwrap();
        assert_eq!(c.source, object(Cloud::S3, "bucket", "sub/p", None));
        assert_eq!(c.derivatives, Location::Disk("/out".into()));
        assert!(c.ignored_keys.is_empty());
    }

    #[test]
    fn unused_uri_parameters_are_reported_by_name_only() {
        let c = with_stores(
            r#"{"uri":"s3blob://b?region=r&credentials=/home/me/.aws/credentials:me&acl=public-read"}"#,
            r#"{"uri":"gs://b?region=x"}"#,
        )
        .unwrap();
        assert_eq!(
            c.ignored_keys,
            [
                "images.source.uri?credentials",
                "images.source.uri?acl",
                "derivatives.cache.uri?region"
            ]
        );
    }

    #[test]
    fn bad_object_locations_are_refused_clearly() {
        let disk = r#"{"path":"/out"}"#;
        let cases = [
            (r#"{"uri":"s3://"}"#, "no bucket name"),
            (r#"{"uri":"s3:///"}"#, "no bucket name"),
            (r#"{"uri":"ftp://host/x"}"#, "\"ftp\" is not supported"),
            (r#"{"uri":"images"}"#, "not a storage URI"),
            (
                r#"{"uri":"s3://user:hunter2@bucket/x"}"#,
                "credentials do not belong",
            ),
            (r#"{"uri":"s3://bucket:9000/x"}"#, "cannot have a port"),
            (r#"{"uri":"s3://bucket?prefix=../x"}"#, "key prefix"),
            (r#"{"uri":"gs://bucket/a/%00/b"}"#, "key prefix"),
            (r#"{"uri":"s3://bu%24ket/x"}"#, "not a valid bucket name"),
            (r#"{"name":"S3"}"#, "needs \"path\""),
            (r#"{"name":"S3","path":"s3://bucket"}"#, "bucket name"),
            (r#"{"name":"S3","path":"/"}"#, "needs \"path\""),
        ];
        for (source, want) in cases {
            let e = with_stores(source, disk).unwrap_err().to_string();
            assert!(
                e.contains("images.source") && e.contains(want),
                "{source}: {e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn go_iiif_v8_service_sections_are_read() {
        let text = MIN.replace(
            "}}}",
            r#"}}, "palette_service": {"extruders": [{"uri": "vibrant://", "count": 7}], "grid": {"uri": "euclidian://"},
                 "palettes": [{"uri": "css4://"}]}, "blurhash_service": {"x": 4, "y": 3, "size": 32}}"#,
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.palette.extruders, [(Extruder::Vibrant, 7)]);
        assert_eq!(c.palette.palettes, [NamedPalette::Css4]);
        assert_eq!(
            c.blurhash,
            BlurhashSettings {
                x: 4,
                y: 3,
                size: 32
            }
        );
    }

    /// MIN with `extra` top-level keys.
    fn with_keys(extra: &str) -> Result<Config, ConfigError> {
        parse(&MIN.replace("}}}", &format!("}}}}, {extra}}}")))
    }

    #[test]
    fn go_iiif_v8_extruders_palettes_and_service_names() {
        let c = with_keys(
            r#""profile": {"services": {"enable": ["palette_service", "blurhash_service", "imagehash_service"]}},
               "palette_service": {"extruders": [{"uri": "vibrant://", "count": 5}, {"uri": "marekm4://", "count": 3},
                                                 {"uri": "quant://?x=1", "count": 500}],
                                   "grid": {"uri": "euclidian://"},
                                   "palettes": [{"uri": "crayola://"}, {"uri": "css3://"}, {"uri": "css4://"}]},
               "imagehash_service": {}"#,
        )
        .unwrap();
        assert_eq!(c.services, ["palette", "blurhash", "imagehash"]);
        assert_eq!(
            c.palette.extruders,
            [
                (Extruder::Vibrant, 5),
                (Extruder::Marekm4, 3),
                (Extruder::Quant, 64)
            ]
        );
        assert_eq!(
            c.palette.palettes,
            [
                NamedPalette::Crayola,
                NamedPalette::Css3,
                NamedPalette::Css4
            ]
        );
        assert!(c.ignored_keys.is_empty(), "{:?}", c.ignored_keys);
        // go-iiif keys counts by extruder: the same extruder twice runs twice, both with the last count.
        let c = with_keys(
            r#""palette_service": {"extruders": [{"uri": "quant://", "count": 2}, {"uri": "quant://", "count": 7}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.palette.extruders,
            [(Extruder::Quant, 7), (Extruder::Quant, 7)]
        );
    }

    #[test]
    fn bad_palette_sections_fail_only_when_the_service_runs() {
        let bad = [
            (r#"{"extruders": [{"uri": "hex://"}]}"#, "extruder \"hex\""),
            (
                r#"{"palettes": [{"uri": "pantone://"}]}"#,
                "palette \"pantone\"",
            ),
            (r#"{"grid": {"uri": "manhattan://"}}"#, "grid \"manhattan\""),
        ];
        for (section, want) in bad {
            let e = with_keys(&format!(
                r#""profile": {{"services": {{"enable": ["palette"]}}}}, "palette_service": {section}"#
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(want), "{e}");
            let c = with_keys(&format!(
                r#""profile": {{"services": {{"enable": ["blurhash"]}}}}, "palette_service": {section}"#
            ))
            .unwrap();
            assert_eq!(c.services, ["blurhash"]);
        }
        let e = with_keys(r#""profile": {"services": {"enable": ["colours_service"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"colours_service\""), "{e}");
    }

    #[test]
    fn file_uris_are_accepted() {
        let text = r#"{"images":{"source":{"uri":"file:///a"}},"derivatives":{"cache":{"uri":"file:///b"}}}"#;
        let c = parse(text).unwrap();
        assert_eq!(c.source, Location::Disk("/a".into()));
    }

    #[test]
    fn go_cloud_options_are_not_part_of_the_path() {
        let c = with_stores(
            r#"{"uri":"file:///srv/images?metadata=skip"}"#,
            r#"{"uri":"file:///srv/iiif%20out?metadata=skip&create_dir=true&base_url=x"}"#,
        )
        .unwrap();
        assert_eq!(c.source, Location::Disk("/srv/images".into()));
        assert_eq!(c.derivatives, Location::Disk("/srv/iiif out".into()));
        assert_eq!(c.ignored_keys, ["derivatives.cache.uri?base_url"]);
    }

    #[test]
    fn flags_replace_the_source_and_cache() {
        let over = Overrides {
            images_source_uri: Some("s3://masters/scans".into()),
            derivatives_cache_uri: Some("file:///out?metadata=skip".into()),
        };
        // go-iiif's defaults name mem:// stores, which only the flags make usable.
        let text = include_str!("defaults/config.json").replace("marekm4://", "vibrant://");
        let c = Config::parse_with(
            &text,
            Path::new("defaults://config.json"),
            Path::new("."),
            &over,
        )
        .unwrap();
        assert_eq!(c.source, object(Cloud::S3, "masters", "scans", None));
        assert_eq!(c.derivatives, Location::Disk("/out".into()));
        // A v6 entry's name and path give way too, and a plain folder is taken as one.
        let over = Overrides {
            images_source_uri: Some("/srv/in".into()),
            derivatives_cache_uri: None,
        };
        let c = Config::parse_with(MIN, Path::new("c.json"), Path::new("/base"), &over).unwrap();
        assert_eq!(c.source, Location::Disk("/srv/in".into()));
        assert_eq!(c.derivatives, Location::Disk("/out".into()));
    }
}
