//! The quality parameter: `default`, `color`, `gray`, `bitonal`, and go-iiif's `dither` and `crisp[:r,a,m]`.

use super::parse::{float, fmt_float, syntax};
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

impl Default for Crisp {
    /// go-iiif's defaults for a bare `crisp`.
    fn default() -> Self {
        Crisp {
            radius: 2.0,
            amount: 0.5,
            median: 0.025,
        }
    }
}

impl FromStr for Quality {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const P: &str = "quality";
        Ok(match s {
            "default" => Quality::Default,
            "color" => Quality::Color,
            "gray" => Quality::Gray,
            "bitonal" => Quality::Bitonal,
            "dither" => Quality::Dither,
            "crisp" => Quality::Crisp(Crisp::default()),
            _ => {
                let Some(args) = s.strip_prefix("crisp:") else {
                    return Err(syntax(
                        P,
                        s,
                        "expected default, color, gray, bitonal, dither, crisp or crisp:radius,amount,median",
                    ));
                };
                let v: Vec<&str> = args.split(',').collect();
                if v.len() != 3 {
                    return Err(syntax(P, s, "expected crisp:radius,amount,median"));
                }
                let radius = float(P, s, v[0])?;
                let amount = float(P, s, v[1])?;
                let median = float(P, s, v[2])?;
                if radius > 100.0 || median > 100.0 || amount > 100.0 {
                    return Err(syntax(
                        P,
                        s,
                        "radius, amount and median must be at most 100",
                    ));
                }
                Quality::Crisp(Crisp {
                    radius,
                    amount,
                    median,
                })
            }
        })
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Default => f.write_str("default"),
            Quality::Color => f.write_str("color"),
            Quality::Gray => f.write_str("gray"),
            Quality::Bitonal => f.write_str("bitonal"),
            Quality::Dither => f.write_str("dither"),
            Quality::Crisp(c) if *c == Crisp::default() => f.write_str("crisp"),
            Quality::Crisp(c) => write!(
                f,
                "crisp:{},{},{}",
                fmt_float(c.radius),
                fmt_float(c.amount),
                fmt_float(c.median)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        for s in [
            "default",
            "color",
            "gray",
            "bitonal",
            "dither",
            "crisp",
            "crisp:1.5,0.8,0",
        ] {
            assert_eq!(s.parse::<Quality>().unwrap().to_string(), s);
        }
        assert_eq!(
            "crisp:2,0.5,0.025".parse::<Quality>().unwrap().to_string(),
            "crisp"
        );
        assert_eq!(Quality::Default.path_name(), "color");
        assert_eq!(Quality::Dither.path_name(), "dither");
        for bad in [
            "",
            "grey",
            "Color",
            "crisp:",
            "crisp:1,2",
            "crisp:a,b,c",
            "crisp:1,2,3,4",
            "crisp:1000,1,1",
        ] {
            assert!(bad.parse::<Quality>().is_err(), "{bad:?}");
        }
    }
}
