//! The region parameter: `full`, `square`, `x,y,w,h`, `pct:x,y,w,h`, and go-iiif's smart crop `-1,-1,W,H`.

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
        let _ = (width, height);
        todo!()
    }
}

impl FromStr for Region {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
