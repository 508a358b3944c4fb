//! The geometry of a Level 0 tile pyramid and its info.json: pure, no pixels, no I/O.
//!
//! Level k is the upright image at scale factor 2^k, `ceil(width / 2^k)` x `ceil(height / 2^k)`: exactly the
//! size of rung k of the source's halving ladder, so each level is made from the one above and its tiles'
//! dimensions are the ones the IIIF spec computes from their regions (`ceil(region / scale factor)`).

use crate::iiif::canonical;
use crate::iiif::region::Rect;
use crate::iiif::ApiVersion;
use serde_json::{json, Value};

/// The smallest and largest tile sizes accepted: a smaller tile multiplies the files (and the list of them
/// kept per level) without helping any viewer; a larger one is not a tile.
pub const MIN_TILE_SIZE: u32 = 64;
pub const MAX_TILE_SIZE: u32 = 4096;

/// How many halvings below the level that fits in one tile are also written whole and listed in `sizes`, for
/// thumbnails, while their long side is at least [`MIN_SIZE`].
const EXTRA_SIZES: u8 = 2;
const MIN_SIZE: u32 = 32;

/// One image file of the pyramid: a tile, or a whole level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The pixels of the level it is cut from (level pixels).
    pub crop: Rect,
    /// Its paths below the service's root, one per Image API version written.
    pub paths: Vec<String>,
}

/// The pyramid of an image of `width` x `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pyramid {
    pub width: u32,
    pub height: u32,
    pub tile: u32,
    /// Levels with tiles: 0 (full resolution) down to the first that fits in one tile.
    pub tiled: u8,
    /// All levels made: the tiled ones and the smaller ones written whole for `sizes`.
    pub levels: u8,
}

impl Pyramid {
    pub fn new(width: u32, height: u32, tile: u32) -> Pyramid {
        let tile = tile.clamp(MIN_TILE_SIZE, MAX_TILE_SIZE);
        let mut tiled = 1u8;
        while {
            let (w, h) = level_dims(width, height, tiled - 1);
            w > tile || h > tile
        } {
            tiled += 1;
        }
        let mut levels = tiled;
        while levels < tiled + EXTRA_SIZES && {
            let (w, h) = level_dims(width, height, levels);
            w.max(h) >= MIN_SIZE && w.min(h) >= 1
        } {
            levels += 1;
        }
        Pyramid {
            width,
            height,
            tile,
            tiled,
            levels,
        }
    }

    /// The dimensions of level `k`.
    pub fn dims(&self, k: u8) -> (u32, u32) {
        level_dims(self.width, self.height, k)
    }

    /// `scaleFactors`: 1, 2, 4, ... down to the level that fits in one tile.
    pub fn scale_factors(&self) -> Vec<u64> {
        (0..self.tiled).map(|k| 1u64 << k).collect()
    }

    /// The levels written whole, smallest first: the `sizes` of info.json (the full size is `max`).
    pub fn sizes(&self) -> Vec<(u32, u32)> {
        (self.tiled - 1..self.levels)
            .rev()
            .map(|k| self.dims(k))
            .collect()
    }

    /// Every file of level `k`, each at its canonical path for each of `apis`.
    pub fn pieces(&self, k: u8, apis: &[ApiVersion]) -> Vec<Piece> {
        let (lw, lh) = self.dims(k);
        let scale = 1u64 << k;
        let whole = |api: ApiVersion| {
            format!(
                "full/{}/0/default.jpg",
                canonical::tile_size((lw, lh), k == 0, api)
            )
        };
        if k + 1 >= self.tiled {
            return vec![Piece {
                crop: Rect {
                    x: 0,
                    y: 0,
                    w: lw,
                    h: lh,
                },
                // An image within one tile lists its full size in `sizes` too, which clients ask for as `w,h`.
                paths: apis
                    .iter()
                    .flat_map(|&a| {
                        let sized = format!(
                            "full/{}/0/default.jpg",
                            canonical::tile_size((lw, lh), false, a)
                        );
                        std::iter::once(whole(a)).chain((k == 0).then_some(sized))
                    })
                    .collect(),
            }];
        }
        let t = self.tile;
        let mut pieces = Vec::with_capacity((lw.div_ceil(t) * lh.div_ceil(t)) as usize + 1);
        // The full image at full size, `full/max`, beside the tiles of level 0.
        if k == 0 {
            pieces.push(Piece {
                crop: Rect {
                    x: 0,
                    y: 0,
                    w: lw,
                    h: lh,
                },
                paths: apis.iter().map(|&a| whole(a)).collect(),
            });
        }
        for ty in 0..lh.div_ceil(t) {
            for tx in 0..lw.div_ceil(t) {
                let crop = Rect {
                    x: tx * t,
                    y: ty * t,
                    w: t.min(lw - tx * t),
                    h: t.min(lh - ty * t),
                };
                // The region in full-resolution pixels; the last column and row end at the image's edge.
                let rx = u64::from(crop.x) * scale;
                let ry = u64::from(crop.y) * scale;
                let region = Rect {
                    x: rx as u32,
                    y: ry as u32,
                    w: (u64::from(t) * scale).min(u64::from(self.width) - rx) as u32,
                    h: (u64::from(t) * scale).min(u64::from(self.height) - ry) as u32,
                };
                let paths = apis
                    .iter()
                    .map(|&api| {
                        format!(
                            "{}/{}/0/default.jpg",
                            canonical::region(region, (self.width, self.height)),
                            canonical::tile_size((crop.w, crop.h), false, api)
                        )
                    })
                    .collect();
                pieces.push(Piece { crop, paths });
            }
        }
        pieces
    }

    /// The info.json of the service `id` for `api`; `extra_sizes` are more full-image sizes that exist (the
    /// canonical copies of derivatives).
    pub fn info_json(&self, id: &str, api: ApiVersion, extra_sizes: &[(u32, u32)]) -> String {
        let mut sizes = self.sizes();
        sizes.extend(extra_sizes.iter().copied().filter(|&(w, h)| {
            w > 0
                && h > 0
                && w <= self.width
                && h <= self.height
                && (w, h) != (self.width, self.height)
        }));
        sizes.sort_unstable();
        sizes.dedup();
        let sizes: Vec<Value> = sizes
            .into_iter()
            .map(|(w, h)| json!({"width": w, "height": h}))
            .collect();
        let tiles = json!([{
            "width": self.tile,
            "height": self.tile,
            "scaleFactors": self.scale_factors(),
        }]);
        let info = match api {
            ApiVersion::V3 => json!({
                "@context": "http://iiif.io/api/image/3/context.json",
                "id": id,
                "type": "ImageService3",
                "protocol": "http://iiif.io/api/image",
                "profile": "level0",
                "width": self.width,
                "height": self.height,
                "sizes": sizes,
                "tiles": tiles,
            }),
            ApiVersion::V2 => json!({
                "@context": "http://iiif.io/api/image/2/context.json",
                "@id": id,
                "protocol": "http://iiif.io/api/image",
                "profile": ["http://iiif.io/api/image/2/level0.json"],
                "width": self.width,
                "height": self.height,
                "sizes": sizes,
                "tiles": tiles,
            }),
        };
        serde_json::to_string_pretty(&info).unwrap_or_default()
    }
}

/// `ceil(w / 2^k)` x `ceil(h / 2^k)`.
fn level_dims(w: u32, h: u32, k: u8) -> (u32, u32) {
    let s = 1u64 << k.min(40);
    (
        u64::from(w).div_ceil(s) as u32,
        u64::from(h).div_ceil(s) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApiVersion::{V2, V3};

    #[test]
    fn levels_go_down_to_one_tile_and_sizes_below_it() {
        // The benchmark's hero: 5640x3172 in 512 px tiles.
        let p = Pyramid::new(5640, 3172, 512);
        assert_eq!(p.scale_factors(), [1, 2, 4, 8, 16]);
        assert_eq!(p.dims(4), (353, 199));
        assert_eq!(p.sizes(), [(89, 50), (177, 100), (353, 199)]);
        // An image smaller than a tile: one level, the full image.
        let small = Pyramid::new(300, 200, 512);
        assert_eq!(small.scale_factors(), [1]);
        assert_eq!(small.sizes(), [(75, 50), (150, 100), (300, 200)]);
        assert_eq!(
            small.pieces(0, &[V3])[0].paths,
            ["full/max/0/default.jpg", "full/300,200/0/default.jpg"]
        );
        // A strip keeps its one-pixel side.
        let strip = Pyramid::new(5000, 1, 512);
        assert_eq!(strip.dims(4), (313, 1));
    }

    #[test]
    fn tiles_have_the_specs_regions_and_sizes() {
        let p = Pyramid::new(5640, 3172, 512);
        let level0 = p.pieces(0, &[V3, V2]);
        // full/max first, then 12 x 7 tiles.
        assert_eq!(level0.len(), 1 + 12 * 7);
        assert_eq!(
            level0[0].paths,
            ["full/max/0/default.jpg", "full/full/0/default.jpg"]
        );
        assert_eq!(
            level0[1].paths,
            [
                "0,0,512,512/512,512/0/default.jpg",
                "0,0,512,512/512,/0/default.jpg"
            ]
        );
        let last = level0.last().unwrap();
        assert_eq!(
            last.crop,
            Rect {
                x: 5632,
                y: 3072,
                w: 8,
                h: 100
            }
        );
        assert_eq!(last.paths[0], "5632,3072,8,100/8,100/0/default.jpg");
        // Level 2 (scale 4): 1410x793, tiles cover 2048 full-resolution pixels; the edge one is rounded up.
        let level2 = p.pieces(2, &[V3]);
        assert_eq!(level2.len(), 3 * 2);
        assert_eq!(level2[2].paths[0], "4096,0,1544,2048/386,512/0/default.jpg");
        assert_eq!(
            level2[5].paths[0],
            "4096,2048,1544,1124/386,281/0/default.jpg"
        );
        // The level in one tile is the whole image: region full, as a sizes entry.
        assert_eq!(p.pieces(4, &[V3])[0].paths, ["full/353,199/0/default.jpg"]);
        assert_eq!(p.pieces(4, &[V2])[0].paths, ["full/353,/0/default.jpg"]);
    }

    #[test]
    fn every_tile_size_is_its_region_over_the_scale_factor_rounded_up() {
        for (w, h, t) in [
            (5640, 3172, 512),
            (1000, 1000, 256),
            (1025, 513, 64),
            (7, 9000, 100),
        ] {
            let p = Pyramid::new(w, h, t);
            for k in 0..p.tiled {
                let s = 1u64 << k;
                let mut covered = 0u64;
                for piece in p
                    .pieces(k, &[V3])
                    .iter()
                    .filter(|p| !p.paths[0].starts_with("full/"))
                {
                    let nums: Vec<u64> = piece.paths[0]
                        .split(['/', ','])
                        .take(6)
                        .map(|n| n.parse().unwrap())
                        .collect();
                    assert_eq!(nums[4], nums[2].div_ceil(s), "{w}x{h} {}", piece.paths[0]);
                    assert_eq!(nums[5], nums[3].div_ceil(s), "{w}x{h} {}", piece.paths[0]);
                    assert_eq!(
                        (nums[4], nums[5]),
                        (piece.crop.w.into(), piece.crop.h.into())
                    );
                    covered += nums[2] * nums[3];
                }
                if p.tiled > 1 && k + 1 < p.tiled {
                    assert_eq!(covered, u64::from(w) * u64::from(h), "{w}x{h} level {k}");
                }
            }
        }
    }

    #[test]
    fn info_json_for_both_apis() {
        let p = Pyramid::new(1000, 600, 256);
        let v3: Value =
            serde_json::from_str(&p.info_json("https://x.org/iiif/a", V3, &[(500, 300)])).unwrap();
        assert_eq!(v3["id"], "https://x.org/iiif/a");
        assert_eq!(v3["type"], "ImageService3");
        assert_eq!(v3["profile"], "level0");
        assert_eq!(
            (v3["width"].as_u64(), v3["height"].as_u64()),
            (Some(1000), Some(600))
        );
        assert_eq!(v3["tiles"][0]["scaleFactors"], json!([1, 2, 4]));
        let widths: Vec<u64> = v3["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["width"].as_u64().unwrap())
            .collect();
        assert_eq!(widths, [63, 125, 250, 500]);
        let v2: Value = serde_json::from_str(&p.info_json("a", V2, &[])).unwrap();
        assert_eq!(v2["@id"], "a");
        assert_eq!(v2["profile"][0], "http://iiif.io/api/image/2/level0.json");
    }
}
