//! The rotation parameter: `n` and mirrored `!n` for n in [0, 360), and go-iiif's `-1` (keep the stored orientation).

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
        let _ = s;
        todo!()
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
