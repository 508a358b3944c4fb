//! The size parameter, IIIF 2.1 and 3.0 forms: `full`, `max`, `w,`, `,h`, `pct:n`, `w,h`, `!w,h`, and `^` variants.

use super::parse::{float, fmt_float, syntax, uint};
use super::{ApiVersion, IiifError};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq)]
pub enum Size {
    /// 2.1 only (rejected under 3.0).
    Full,
    Max {
        upscale: bool,
    },
    Width {
        w: u32,
        upscale: bool,
    },
    Height {
        h: u32,
        upscale: bool,
    },
    Percent {
        pct: f64,
        upscale: bool,
    },
    Exact {
        w: u32,
        h: u32,
        upscale: bool,
    },
    BestFit {
        w: u32,
        h: u32,
        upscale: bool,
    },
}

/// `a * num / den` rounded to the nearest pixel (0 when it rounds to nothing).
fn scaled(a: u32, num: f64, den: f64) -> u32 {
    ((a as f64 * num / den).round()).clamp(0.0, u32::MAX as f64) as u32
}

impl Size {
    fn upscale(&self) -> bool {
        match *self {
            Size::Full => false,
            Size::Max { upscale }
            | Size::Width { upscale, .. }
            | Size::Height { upscale, .. }
            | Size::Percent { upscale, .. }
            | Size::Exact { upscale, .. }
            | Size::BestFit { upscale, .. } => upscale,
        }
    }

    /// Resolve against the region's output dimensions. Results round to the nearest pixel; a side that rounds to
    /// 0 px is an error under both APIs: 3.0 says so, 2.1 says the server should refuse it, and go-iiif (which
    /// truncates) makes an empty image there that no encoder writes as a valid file.
    pub fn resolve(
        &self,
        width: u32,
        height: u32,
        api: ApiVersion,
    ) -> Result<(u32, u32), IiifError> {
        let (rw, rh) = (width.max(1), height.max(1));
        let strict = api == ApiVersion::V3 && !self.upscale();
        let out = match *self {
            Size::Full | Size::Max { .. } => (rw, rh),
            Size::Width { w, .. } => (w, scaled(rh, w as f64, rw as f64)),
            Size::Height { h, .. } => (scaled(rw, h as f64, rh as f64), h),
            Size::Percent { pct, .. } => (scaled(rw, pct, 100.0), scaled(rh, pct, 100.0)),
            Size::Exact { w, h, .. } => (w, h),
            Size::BestFit { w, h, .. } => {
                // 3.0 without `^`: as large as possible but never larger than the region.
                let (w, h) = if strict {
                    (w.min(rw), h.min(rh))
                } else {
                    (w, h)
                };
                if rw as u64 * h as u64 >= rh as u64 * w as u64 {
                    (w, scaled(rh, w as f64, rw as f64).min(h))
                } else {
                    (scaled(rw, h as f64, rh as f64).min(w), h)
                }
            }
        };
        if out.0 == 0 || out.1 == 0 {
            return Err(IiifError::Unsatisfiable {
                param: "size",
                value: self.to_string(),
                width,
                height,
                reason: format!(
                    "the result would be {}x{} px; a side of 0 px is not an image",
                    out.0, out.1
                ),
            });
        }
        if strict && (out.0 > rw || out.1 > rh) {
            return Err(IiifError::Unsatisfiable {
                param: "size",
                value: self.to_string(),
                width,
                height,
                reason: format!(
                    "{}x{} is larger than the region; IIIF 3.0 upscales only with `^`",
                    out.0, out.1
                ),
            });
        }
        Ok(out)
    }
}

impl FromStr for Size {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const P: &str = "size";
        let (upscale, body) = match s.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if body == "full" {
            return if upscale {
                Err(syntax(P, s, "`^full` is not a size (use `^max`)"))
            } else {
                Ok(Size::Full)
            };
        }
        if body == "max" {
            return Ok(Size::Max { upscale });
        }
        if let Some(p) = body.strip_prefix("pct:") {
            let pct = float(P, s, p)?;
            if pct <= 0.0 {
                return Err(syntax(P, s, "the percentage must be greater than 0"));
            }
            return Ok(Size::Percent { pct, upscale });
        }
        let (best, body) = match body.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        let Some((a, b)) = body.split_once(',') else {
            return Err(syntax(
                P,
                s,
                "expected full, max, w,, ,h, pct:n, w,h or !w,h (optionally after ^)",
            ));
        };
        let nonzero = |part: &str| -> Result<u32, IiifError> {
            let v = uint(P, s, part)?;
            if v == 0 {
                return Err(syntax(P, s, "width and height must be greater than 0"));
            }
            Ok(v)
        };
        match (a.is_empty(), b.is_empty(), best) {
            (false, true, false) => Ok(Size::Width {
                w: nonzero(a)?,
                upscale,
            }),
            (true, false, false) => Ok(Size::Height {
                h: nonzero(b)?,
                upscale,
            }),
            (false, false, false) => Ok(Size::Exact {
                w: nonzero(a)?,
                h: nonzero(b)?,
                upscale,
            }),
            (false, false, true) => Ok(Size::BestFit {
                w: nonzero(a)?,
                h: nonzero(b)?,
                upscale,
            }),
            _ => Err(syntax(P, s, "width and/or height missing")),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.upscale() {
            f.write_str("^")?;
        }
        match self {
            Size::Full => f.write_str("full"),
            Size::Max { .. } => f.write_str("max"),
            Size::Width { w, .. } => write!(f, "{w},"),
            Size::Height { h, .. } => write!(f, ",{h}"),
            Size::Percent { pct, .. } => write!(f, "pct:{}", fmt_float(*pct)),
            Size::Exact { w, h, .. } => write!(f, "{w},{h}"),
            Size::BestFit { w, h, .. } => write!(f, "!{w},{h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApiVersion::{V2, V3};

    fn r(s: &str, w: u32, h: u32, api: ApiVersion) -> Result<(u32, u32), IiifError> {
        s.parse::<Size>().unwrap().resolve(w, h, api)
    }

    #[test]
    fn sfo_sizes_round_as_libvips_does() {
        assert_eq!(r("!2048,1536", 5640, 3172, V2).unwrap(), (2048, 1152));
        assert_eq!(r("!1024,768", 5640, 3172, V2).unwrap(), (1024, 576));
        assert_eq!(r("!800,600", 5640, 3172, V2).unwrap(), (800, 450));
        assert_eq!(r("!320,240", 5640, 3172, V2).unwrap(), (320, 180));
        assert_eq!(r("!320,240", 3172, 5640, V2).unwrap(), (135, 240));
    }

    #[test]
    fn spec_3_0_size_table() {
        // IIIF 3.0 §4.2 on a 600x400 region.
        assert_eq!(r("max", 600, 400, V3).unwrap(), (600, 400));
        assert_eq!(r("^max", 600, 400, V3).unwrap(), (600, 400));
        assert_eq!(r("150,", 600, 400, V3).unwrap(), (150, 100));
        assert!(r("900,", 600, 400, V3).is_err());
        assert_eq!(r("^900,", 600, 400, V3).unwrap(), (900, 600));
        assert_eq!(r(",100", 600, 400, V3).unwrap(), (150, 100));
        assert_eq!(r("^,800", 600, 400, V3).unwrap(), (1200, 800));
        assert_eq!(r("pct:50", 600, 400, V3).unwrap(), (300, 200));
        assert!(r("pct:150", 600, 400, V3).is_err());
        assert_eq!(r("^pct:150", 600, 400, V3).unwrap(), (900, 600));
        assert_eq!(r("150,75", 600, 400, V3).unwrap(), (150, 75));
        assert!(r("700,75", 600, 400, V3).is_err());
        assert_eq!(r("^700,75", 600, 400, V3).unwrap(), (700, 75));
        assert_eq!(r("!300,300", 600, 400, V3).unwrap(), (300, 200));
        assert_eq!(r("!1200,1200", 600, 400, V3).unwrap(), (600, 400));
        assert_eq!(r("^!1200,1200", 600, 400, V3).unwrap(), (1200, 800));
    }

    #[test]
    fn api_2_allows_upscaling() {
        assert_eq!(r("full", 600, 400, V2).unwrap(), (600, 400));
        assert_eq!(r("900,", 600, 400, V2).unwrap(), (900, 600));
        assert_eq!(r("pct:200", 600, 400, V2).unwrap(), (1200, 800));
        assert_eq!(r("!1200,1200", 600, 400, V2).unwrap(), (1200, 800));
    }

    #[test]
    fn zero_pixels_is_an_error_under_both_apis() {
        for api in [V2, V3] {
            for (s, w, h) in [
                ("1,", 10000, 10),
                ("^1,", 10000, 10),
                (",1", 10, 10000),
                ("pct:0.001", 100, 100),
                ("!10,10", 20000, 300),
            ] {
                let e = r(s, w, h, api).unwrap_err().to_string();
                assert!(e.contains("0 px"), "{s} on {w}x{h}: {e}");
            }
            // Half a pixel rounds up: still an image.
            assert_eq!(r("1,", 10000, 5000, api).unwrap(), (1, 1));
            assert_eq!(r("!10,10", 20000, 1000, api).unwrap(), (10, 1));
        }
    }

    #[test]
    fn syntax_errors() {
        for s in [
            "",
            "^",
            "^full",
            "0,",
            ",0",
            "pct:0",
            "pct:",
            "pct:-5",
            "!,",
            "!5,",
            "!,5",
            ",",
            "!0,5",
            "a,b",
            "5,5,5",
            "99999999999,",
            "max,",
            " 5,",
        ] {
            assert!(s.parse::<Size>().is_err(), "{s:?}");
        }
    }
}
