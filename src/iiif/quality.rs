//! The quality parameter: `default`, `color`, `gray`, `bitonal`, and go-iiif's `dither` and `crisp[:r,a,m]`.

use super::IiifError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quality {
    Default,
    Color,
    Gray,
    Bitonal,
    /// go-iiif: Atkinson-dithered black and white halftone.
    Dither,
    /// go-iiif: sharpen after resize.
    Crisp(Crisp),
}

/// go-iiif's `crisp:RADIUS,AMOUNT,MEDIAN` settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crisp {
    pub radius: f64,
    pub amount: f64,
    pub median: f64,
}

impl Quality {
    /// The name written in the derivative's path: the requested name, except `default`, which go-iiif writes `color`.
    pub fn path_name(&self) -> String {
        match self {
            Quality::Default => "color".to_string(),
            other => other.to_string(),
        }
    }

    /// The go-iiif extension this quality needs enabled in the config's features (`dither`, `crisp`), if any.
    pub fn extension_name(&self) -> Option<&'static str> {
        match self {
            Quality::Dither => Some("dither"),
            Quality::Crisp(_) => Some("crisp"),
            _ => None,
        }
    }
}

impl FromStr for Quality {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!()
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
