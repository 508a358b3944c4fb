//! The size parameter, IIIF 2.1 and 3.0 forms: `full`, `max`, `w,`, `,h`, `pct:n`, `w,h`, `!w,h`, and `^` variants.

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

impl Size {
    /// Resolve against the region's output dimensions. Results round to the nearest pixel and are never 0.
    pub fn resolve(
        &self,
        width: u32,
        height: u32,
        api: ApiVersion,
    ) -> Result<(u32, u32), IiifError> {
        let _ = (width, height, api);
        todo!()
    }
}

impl FromStr for Size {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!()
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
