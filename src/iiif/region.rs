//! The region parameter: `full`, `square`, `x,y,w,h`, `pct:x,y,w,h`, and go-iiif's smart crop `-1,-1,W,H`.

use super::parse::{float, fmt_float, syntax, uint};
use super::IiifError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq)]
pub enum Region {
    Full,
    Square,
    Pixels {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
    },
    Percent {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
    },
    /// go-iiif's smart crop: `-1,-1,W,H` (either coordinate -1). The most interesting crop with aspect W:H.
    Smart {
        w: u32,
        h: u32,
    },
}

/// A rectangle in image pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolvedRegion {
    /// Crop exactly this rectangle (already clipped to the image).
    Rect(Rect),
    /// Find the most interesting `crop_w` x `crop_h` crop (the largest with aspect `out_w:out_h` that fits the
    /// image), then scale it to `out_w` x `out_h`.
    Smart {
        crop_w: u32,
        crop_h: u32,
        out_w: u32,
        out_h: u32,
    },
}

impl ResolvedRegion {
    /// The dimensions of the region's output, which the size parameter is resolved against.
    pub fn output_dims(&self) -> (u32, u32) {
        match *self {
            ResolvedRegion::Rect(r) => (r.w, r.h),
            ResolvedRegion::Smart { out_w, out_h, .. } => (out_w, out_h),
        }
    }
}

impl Region {
    pub fn resolve(&self, width: u32, height: u32) -> Result<ResolvedRegion, IiifError> {
        let unsat = |reason: &str| IiifError::Unsatisfiable {
            param: "region",
            value: self.to_string(),
            width,
            height,
            reason: reason.into(),
        };
        if width == 0 || height == 0 {
            return Err(unsat("the image is empty"));
        }
        let (x, y, w, h): (u64, u64, u64, u64) = match *self {
            Region::Full => (0, 0, width as u64, height as u64),
            Region::Square => {
                let side = width.min(height) as u64;
                (
                    (width as u64 - side) / 2,
                    (height as u64 - side) / 2,
                    side,
                    side,
                )
            }
            Region::Pixels { x, y, w, h } => (x as u64, y as u64, w as u64, h as u64),
            Region::Percent { x, y, w, h } => {
                let px =
                    |p: f64, d: u32| (p / 100.0 * d as f64).round().min(u32::MAX as f64) as u64;
                (px(x, width), px(y, height), px(w, width), px(h, height))
            }
            Region::Smart { w, h } => {
                // The largest w:h window that fits: limited by the width or by the height.
                let (iw, ih) = (width as f64, height as f64);
                let (cw, ch) = if iw * h as f64 <= ih * w as f64 {
                    (iw, iw * h as f64 / w as f64)
                } else {
                    (ih * w as f64 / h as f64, ih)
                };
                let crop_w = (cw.round() as u32).clamp(1, width);
                let crop_h = (ch.round() as u32).clamp(1, height);
                return Ok(ResolvedRegion::Smart {
                    crop_w,
                    crop_h,
                    out_w: w,
                    out_h: h,
                });
            }
        };
        if w == 0 || h == 0 {
            return Err(unsat("the region is empty"));
        }
        if x >= width as u64 || y >= height as u64 {
            return Err(unsat("the region is entirely outside the image"));
        }
        // Partly outside: clip to the image, as the spec says.
        let w = w.min(width as u64 - x);
        let h = h.min(height as u64 - y);
        Ok(ResolvedRegion::Rect(Rect {
            x: x as u32,
            y: y as u32,
            w: w as u32,
            h: h as u32,
        }))
    }
}

impl FromStr for Region {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const P: &str = "region";
        match s {
            "full" => return Ok(Region::Full),
            "square" => return Ok(Region::Square),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("pct:") {
            let parts: Vec<&str> = rest.split(',').collect();
            if parts.len() != 4 {
                return Err(syntax(P, s, "expected pct:x,y,w,h"));
            }
            let v: Vec<f64> = parts
                .iter()
                .map(|p| float(P, s, p))
                .collect::<Result<_, _>>()?;
            if v[2] <= 0.0 || v[3] <= 0.0 {
                return Err(syntax(P, s, "width and height must be greater than 0"));
            }
            return Ok(Region::Percent {
                x: v[0],
                y: v[1],
                w: v[2],
                h: v[3],
            });
        }
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() != 4 {
            return Err(syntax(
                P,
                s,
                "expected full, square, x,y,w,h, pct:x,y,w,h or -1,-1,w,h",
            ));
        }
        let w = uint(P, s, parts[2])?;
        let h = uint(P, s, parts[3])?;
        if w == 0 || h == 0 {
            return Err(syntax(P, s, "width and height must be greater than 0"));
        }
        if parts[0] == "-1" || parts[1] == "-1" {
            // go-iiif's smart crop; the other coordinate, if given, carries no meaning but must be well-formed.
            for p in &parts[..2] {
                if *p != "-1" {
                    uint(P, s, p)?;
                }
            }
            return Ok(Region::Smart { w, h });
        }
        Ok(Region::Pixels {
            x: uint(P, s, parts[0])?,
            y: uint(P, s, parts[1])?,
            w,
            h,
        })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Full => f.write_str("full"),
            Region::Square => f.write_str("square"),
            Region::Pixels { x, y, w, h } => write!(f, "{x},{y},{w},{h}"),
            Region::Percent { x, y, w, h } => write!(
                f,
                "pct:{},{},{},{}",
                fmt_float(*x),
                fmt_float(*y),
                fmt_float(*w),
                fmt_float(*h)
            ),
            Region::Smart { w, h } => write!(f, "-1,-1,{w},{h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u32, y: u32, w: u32, h: u32) -> ResolvedRegion {
        ResolvedRegion::Rect(Rect { x, y, w, h })
    }

    #[test]
    fn spec_examples() {
        // IIIF 3.0 §4.1 examples on a 300x200 image (scaled from the spec's 6000x4000 figures).
        let r = |s: &str| s.parse::<Region>().unwrap().resolve(300, 200);
        assert_eq!(r("full").unwrap(), rect(0, 0, 300, 200));
        assert_eq!(r("square").unwrap(), rect(50, 0, 200, 200));
        assert_eq!(r("125,15,120,140").unwrap(), rect(125, 15, 120, 140));
        assert_eq!(r("pct:41.6,7.5,40,70").unwrap(), rect(125, 15, 120, 140));
        // Partly outside is clipped.
        assert_eq!(r("125,15,200,200").unwrap(), rect(125, 15, 175, 185));
        assert_eq!(r("pct:41.6,7.5,66.6,100").unwrap(), rect(125, 15, 175, 185));
    }

    #[test]
    fn outside_or_empty_is_unsatisfiable() {
        let r = |s: &str| s.parse::<Region>().unwrap().resolve(300, 200);
        assert!(matches!(
            r("300,0,10,10"),
            Err(IiifError::Unsatisfiable { .. })
        ));
        assert!(matches!(
            r("0,200,10,10"),
            Err(IiifError::Unsatisfiable { .. })
        ));
        assert!(matches!(
            r("pct:0,0,0.01,0.01"),
            Err(IiifError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn smart_crop_is_the_largest_window_of_its_aspect() {
        let r = "-1,-1,320,320".parse::<Region>().unwrap();
        assert_eq!(r, Region::Smart { w: 320, h: 320 });
        assert_eq!(
            r.resolve(5640, 3172).unwrap(),
            ResolvedRegion::Smart {
                crop_w: 3172,
                crop_h: 3172,
                out_w: 320,
                out_h: 320
            }
        );
        let wide = "-1,-1,200,100".parse::<Region>().unwrap();
        assert_eq!(
            wide.resolve(100, 300).unwrap(),
            ResolvedRegion::Smart {
                crop_w: 100,
                crop_h: 50,
                out_w: 200,
                out_h: 100
            }
        );
        assert_eq!(
            "10,-1,5,5".parse::<Region>().unwrap(),
            Region::Smart { w: 5, h: 5 }
        );
    }

    #[test]
    fn syntax_errors() {
        for s in [
            "",
            "ful",
            "1,2,3",
            "1,2,3,4,5",
            "-2,0,1,1",
            "0,0,0,5",
            "a,b,c,d",
            "pct:",
            "pct:1,2,3",
            "pct:1,2,0,3",
            "-1,-1,0,5",
            "1.5,0,1,1",
            " 1,2,3,4",
            "99999999999,0,1,1",
        ] {
            assert!(s.parse::<Region>().is_err(), "{s:?}");
        }
    }
}
