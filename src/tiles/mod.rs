//! Zoomable images: a IIIF Level 0 static image service per source, from the same decode as its derivatives.
//!
//! Every file is at the canonical path a viewer asks for (tiles, `full/max`, each `sizes` entry), so any web
//! server or bucket serves the service as it is; info.json is written last, so its presence means the set is
//! complete. Levels are made each from the one above, the source's halving ladder reused where the
//! derivatives already made it, and each level is dropped once the next is made: besides the decode, at most two
//! levels are alive. Tiles are encoded in parallel.

pub mod pyramid;

use crate::codec::{self, EncodeOptions};
use crate::iiif::{self, canonical, ApiVersion, Quality, ResolvedRequest};
use crate::pipeline::{self, PipelineError};
use crate::store::{Store, StoreError};
use image::DynamicImage;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use pyramid::Pyramid;
use rayon::prelude::*;
use std::collections::HashSet;
use std::str::FromStr;

/// The default tile size: libvips' and most viewers' choice.
pub const DEFAULT_TILE_SIZE: u32 = 512;
/// The longest `-tiles-base-url` accepted.
const MAX_BASE_URL: usize = 2048;

/// Which Image API versions the service is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Apis {
    #[default]
    V3,
    V2,
    /// 3.0 at the service's root, 2.1 in its `v2/` (one info.json per id).
    Both,
}

impl Apis {
    fn versions(self) -> &'static [ApiVersion] {
        match self {
            Apis::V3 => &[ApiVersion::V3],
            Apis::V2 => &[ApiVersion::V2],
            Apis::Both => &[ApiVersion::V3, ApiVersion::V2],
        }
    }
}

/// A tiles setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("{field} {value:?}: use 3, 2 or both")]
    Api { field: &'static str, value: String },
    #[error(
        "{field} {value}: a tile size is {} to {} pixels",
        pyramid::MIN_TILE_SIZE,
        pyramid::MAX_TILE_SIZE
    )]
    TileSize { field: &'static str, value: u64 },
    #[error("{field} {value:?}: a base URL is printable ASCII without spaces, at most {MAX_BASE_URL} characters")]
    BaseUrl { field: &'static str, value: String },
}

impl FromStr for Apis {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Apis, OptionError> {
        match s {
            "3" => Ok(Apis::V3),
            "2" => Ok(Apis::V2),
            "both" => Ok(Apis::Both),
            _ => Err(OptionError::Api {
                field: "-tiles-api",
                value: s.to_string(),
            }),
        }
    }
}

/// What a run makes besides the instruction set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-tiles`: a Level 0 service per source.
    pub enabled: bool,
    /// `-canonical`: each derivative also at its canonical path in the service.
    pub canonical: bool,
    pub apis: Apis,
    pub tile_size: u32,
    /// Prefixed to the service's path below the derivatives root to make its `id`; none: the path alone.
    pub base_url: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            enabled: false,
            canonical: false,
            apis: Apis::V3,
            tile_size: DEFAULT_TILE_SIZE,
            base_url: None,
        }
    }
}

impl Options {
    /// Validated options; `field` names where each value came from, for messages.
    pub fn new(
        enabled: bool,
        canonical: bool,
        apis: (&'static str, Option<&str>),
        tile_size: (&'static str, Option<u64>),
        base_url: (&'static str, Option<String>),
    ) -> Result<Options, OptionError> {
        let apis = match apis.1 {
            None => Apis::default(),
            Some(v) => v.parse().map_err(|_| OptionError::Api {
                field: apis.0,
                value: v.to_string(),
            })?,
        };
        let size = tile_size.1.unwrap_or(u64::from(DEFAULT_TILE_SIZE));
        if !(u64::from(pyramid::MIN_TILE_SIZE)..=u64::from(pyramid::MAX_TILE_SIZE)).contains(&size)
        {
            return Err(OptionError::TileSize {
                field: tile_size.0,
                value: size,
            });
        }
        if let Some(url) = &base_url.1 {
            if url.is_empty()
                || url.len() > MAX_BASE_URL
                || !url.bytes().all(|b| (b'!'..=b'~').contains(&b))
            {
                return Err(OptionError::BaseUrl {
                    field: base_url.0,
                    value: url.chars().take(MAX_BASE_URL).collect(),
                });
            }
        }
        Ok(Options {
            enabled,
            canonical,
            apis,
            tile_size: size as u32,
            base_url: base_url.1,
        })
    }

    /// The services of a source whose service root (below the derivatives root) is `root`.
    pub fn services(&self, root: &str) -> Vec<Service> {
        self.apis
            .versions()
            .iter()
            .map(|&api| {
                let key = match (self.apis, api) {
                    (Apis::Both, ApiVersion::V2) => format!("{root}/v2"),
                    _ => root.to_string(),
                };
                Service {
                    api,
                    id: service_id(self.base_url.as_deref(), &key),
                    root: key,
                }
            })
            .collect()
    }
}

/// Characters escaped in each path segment of an id: those a URL path cannot hold as they are.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// The `id` of the service at `key`: the base URL and the key's segments, percent-encoded.
fn service_id(base: Option<&str>, key: &str) -> String {
    let path: Vec<String> = key
        .split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    let path = path.join("/");
    match base {
        Some(b) => format!("{}/{path}", b.trim_end_matches('/')),
        None => path,
    }
}

/// One Image API service of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub api: ApiVersion,
    /// Its directory below the derivatives root.
    pub root: String,
    pub id: String,
}

impl Service {
    pub fn info_key(&self) -> String {
        format!("{}/info.json", self.root)
    }
}

/// The keys at which a derivative resolved as `req` on an image of `frame` pixels, written as `format`, is also
/// written in `services` (`-canonical`); none when the request has no IIIF form.
pub fn canonical_keys(
    req: &ResolvedRequest,
    frame: (u32, u32),
    format: iiif::Format,
    services: &[Service],
) -> Vec<String> {
    services
        .iter()
        .filter_map(|s| {
            let path = canonical::path(req, frame, format, s.api)?;
            Some(format!("{}/{path}", s.root))
        })
        .collect()
}

/// Whether such a copy is a `sizes` entry of every service: the whole image, unrotated, in the default quality
/// as JPEG, at the path a viewer asks for a size at.
pub fn is_listed_size(
    req: &ResolvedRequest,
    frame: (u32, u32),
    format: iiif::Format,
    services: &[Service],
) -> bool {
    format == iiif::Format::Jpg
        && req.quality == Quality::Default
        && req.output != frame
        && services.iter().all(|s| {
            canonical::path(req, frame, format, s.api)
                == Some(format!(
                    "full/{}/0/default.jpg",
                    canonical::tile_size(req.output, false, s.api)
                ))
        })
}

/// Why a source's tiles were not all made; the report shows it under `tiles`.
#[derive(Debug, thiserror::Error)]
pub enum TilesError {
    #[error("cannot make level {level} of the tiles: {source}")]
    Level { level: u8, source: PipelineError },
    #[error("cannot encode tile {key}: {source}")]
    Encode {
        key: String,
        source: codec::CodecError,
    },
    #[error("cannot write tile: {0}")]
    Write(#[from] StoreError),
}

/// The tile set of one source.
pub struct TileSet {
    pub pyramid: Pyramid,
    pub services: Vec<Service>,
}

impl TileSet {
    /// The set for an upright image of `width` x `height` with its services at `services`.
    pub fn new(width: u32, height: u32, tile: u32, services: Vec<Service>) -> TileSet {
        TileSet {
            pyramid: Pyramid::new(width, height, tile),
            services,
        }
    }

    /// The bytes making the set keeps alive besides the decode and its ladder (already reserved by the source):
    /// a tile being cut and encoded on each thread, and the encoded full-size image.
    pub fn memory_need(&self, threads: usize) -> u64 {
        let p = &self.pyramid;
        let tile = u64::from(p.tile) * u64::from(p.tile);
        let full = u64::from(p.width) * u64::from(p.height);
        (threads.max(1) as u64)
            .saturating_mul(tile.saturating_mul(4 + 4))
            .saturating_add(full.saturating_mul(3))
    }

    /// Make every file, then the info.json of each service. `rungs` are the image's ladder, full resolution
    /// first (the levels below the last rung are made here, each from the one above); keys in `skip` are
    /// written by someone else (the canonical copies of derivatives); `sizes` are further full-image sizes that
    /// exist for info.json. Returns the number of files written.
    pub fn make(
        &self,
        rungs: Vec<DynamicImage>,
        out: &dyn Store,
        opts: &EncodeOptions,
        skip: &HashSet<String>,
        sizes: &[(u32, u32)],
    ) -> Result<usize, TilesError> {
        let apis: Vec<ApiVersion> = self.services.iter().map(|s| s.api).collect();
        let mut rungs = rungs.into_iter();
        let Some(mut level) = rungs.next() else {
            return Ok(0);
        };
        let mut written = 0;
        for k in 0..self.pyramid.levels {
            let pieces = self.pyramid.pieces(k, &apis);
            written += pieces
                .par_iter()
                .map(|piece| {
                    // A piece has one path per service, or two (`max` and `w,h`) for a lone level 0.
                    let per = (piece.paths.len() / apis.len()).max(1);
                    let keys: Vec<String> = piece
                        .paths
                        .iter()
                        .enumerate()
                        .filter_map(|(i, path)| {
                            let service = self.services.get(i / per)?;
                            Some(format!("{}/{path}", service.root))
                        })
                        .filter(|key| !skip.contains(key))
                        .collect();
                    if keys.is_empty() {
                        return Ok::<usize, TilesError>(0);
                    }
                    let c = piece.crop;
                    let whole = (c.x, c.y, c.w, c.h) == (0, 0, level.width(), level.height());
                    let bytes = if whole {
                        codec::encode(&level, codec::Format::Jpeg, opts)
                    } else {
                        codec::encode(
                            &pipeline::crop(&level, c.x, c.y, c.w, c.h),
                            codec::Format::Jpeg,
                            opts,
                        )
                    }
                    .map_err(|source| TilesError::Encode {
                        key: keys[0].clone(),
                        source,
                    })?;
                    for key in &keys {
                        out.write(key, &bytes)?;
                    }
                    Ok(keys.len())
                })
                .try_reduce(|| 0, |a, b| Ok(a + b))?;
            if k + 1 < self.pyramid.levels {
                // The ladder's next rung when the derivatives made it (the same pixels), else the halving here.
                level = match rungs.next() {
                    Some(r) => r,
                    None => {
                        pipeline::halve(&level, k == 0).map_err(|source| TilesError::Level {
                            level: k + 1,
                            source,
                        })?
                    }
                };
            }
        }
        drop(level);
        for s in &self.services {
            let info = self.pyramid.info_json(&s.id, s.api, sizes);
            out.write(&s.info_key(), info.as_bytes())?;
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_name_their_field() {
        let ok = Options::new(
            true,
            false,
            ("-tiles-api", Some("both")),
            ("-tile-size", Some(256)),
            ("-tiles-base-url", None),
        )
        .unwrap();
        assert_eq!((ok.apis, ok.tile_size), (Apis::Both, 256));
        let e = Options::new(
            true,
            false,
            ("derivatives.tiles.api", Some("4")),
            ("-tile-size", None),
            ("-tiles-base-url", None),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "derivatives.tiles.api \"4\": use 3, 2 or both"
        );
        let e = Options::new(
            true,
            false,
            ("-tiles-api", None),
            ("-tile-size", Some(10)),
            ("-tiles-base-url", None),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "-tile-size 10: a tile size is 64 to 4096 pixels"
        );
        let e = Options::new(
            true,
            false,
            ("-tiles-api", None),
            ("-tile-size", None),
            ("-tiles-base-url", Some("http://a b".into())),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("-tiles-base-url \"http://a b\""),
            "{e}"
        );
    }

    #[test]
    fn ids_join_the_base_url_and_the_encoded_path() {
        let mut o = Options {
            apis: Apis::Both,
            base_url: Some("https://example.org/iiif/".into()),
            ..Options::default()
        };
        let s = o.services("photos/a b#1.jpg");
        assert_eq!(s[0].id, "https://example.org/iiif/photos/a%20b%231.jpg");
        assert_eq!(s[0].info_key(), "photos/a b#1.jpg/info.json");
        assert_eq!(s[1].id, "https://example.org/iiif/photos/a%20b%231.jpg/v2");
        assert_eq!(s[1].api, ApiVersion::V2);
        o.base_url = None;
        o.apis = Apis::V2;
        let s = o.services("x/y.jpg");
        assert_eq!(
            (s.len(), s[0].id.as_str(), s[0].root.as_str()),
            (1, "x/y.jpg", "x/y.jpg")
        );
    }
}
