//! The rotation parameter: `n` and mirrored `!n` for n in [0, 360), and go-iiif's `-1` (keep the stored orientation).

use super::parse::{float, fmt_float, syntax};
use super::IiifError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rotation {
    /// Mirror horizontally (when `mirror`), then rotate clockwise by `degrees` in [0, 360).
    Degrees { mirror: bool, degrees: f64 },
    /// go-iiif's `-1`: no EXIF auto-orientation and no rotation; pixels stay as stored.
    NoAutoRotate,
}

impl Rotation {
    /// Output dimensions after rotating a `width` x `height` image.
    pub fn resolve(&self, width: u32, height: u32) -> (u32, u32) {
        match *self {
            Rotation::NoAutoRotate => (width, height),
            Rotation::Degrees { degrees, .. } => rotated_dims(width, height, degrees),
        }
    }
}

/// The bounding box of a `width` x `height` image rotated clockwise by `degrees`: exact for multiples of 90,
/// otherwise the enlarged canvas the spec describes, rounded to the nearest pixel (never 0).
pub fn rotated_dims(width: u32, height: u32, degrees: f64) -> (u32, u32) {
    let d = degrees.rem_euclid(360.0);
    if d == 0.0 || d == 180.0 {
        return (width, height);
    }
    if d == 90.0 || d == 270.0 {
        return (height, width);
    }
    let (s, c) = d.to_radians().sin_cos();
    let (w, h) = (width as f64, height as f64);
    let bw = (w * c.abs() + h * s.abs()).round().max(1.0);
    let bh = (w * s.abs() + h * c.abs()).round().max(1.0);
    (bw as u32, bh as u32)
}

impl FromStr for Rotation {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const P: &str = "rotation";
        if s == "-1" {
            return Ok(Rotation::NoAutoRotate);
        }
        let (mirror, body) = match s.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let degrees = float(P, s, body)?;
        if degrees > 360.0 {
            return Err(syntax(P, s, "degrees must be between 0 and 360"));
        }
        Ok(Rotation::Degrees {
            mirror,
            // 360 is a full turn: the same as 0.
            degrees: if degrees == 360.0 { 0.0 } else { degrees },
        })
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rotation::NoAutoRotate => f.write_str("-1"),
            Rotation::Degrees { mirror, degrees } => {
                write!(
                    f,
                    "{}{}",
                    if *mirror { "!" } else { "" },
                    fmt_float(*degrees)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = |s: &str| s.parse::<Rotation>().unwrap();
        assert_eq!(
            p("0"),
            Rotation::Degrees {
                mirror: false,
                degrees: 0.0
            }
        );
        assert_eq!(
            p("!180"),
            Rotation::Degrees {
                mirror: true,
                degrees: 180.0
            }
        );
        assert_eq!(
            p("22.5"),
            Rotation::Degrees {
                mirror: false,
                degrees: 22.5
            }
        );
        assert_eq!(p("360"), p("0"));
        assert_eq!(p("-1"), Rotation::NoAutoRotate);
        assert_eq!(p("22.5").to_string(), "22.5");
        assert_eq!(p("!90").to_string(), "!90");
        for bad in [
            "", "!", "-2", "!-1", "361", "90deg", "1e3", "NaN", "inf", " 90",
        ] {
            assert!(bad.parse::<Rotation>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dims() {
        assert_eq!(
            Rotation::Degrees {
                mirror: false,
                degrees: 90.0
            }
            .resolve(300, 200),
            (200, 300)
        );
        assert_eq!(
            Rotation::Degrees {
                mirror: true,
                degrees: 180.0
            }
            .resolve(300, 200),
            (300, 200)
        );
        // 45 degrees: (300 + 200) / sqrt(2) on both sides.
        assert_eq!(rotated_dims(300, 200, 45.0), (354, 354));
        assert_eq!(Rotation::NoAutoRotate.resolve(3, 2), (3, 2));
    }
}
