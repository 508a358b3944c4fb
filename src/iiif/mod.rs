//! The IIIF Image API request parameters, one type per parameter.
//!
//! Each parameter parses with `FromStr`, prints a canonical form with `Display` (which parses back to the same
//! value), and resolves against image dimensions with a pure function. Nothing here does I/O or touches pixels.

pub mod canonical;
pub mod format;
mod parse;
pub mod quality;
pub mod region;
pub mod request;
pub mod rotation;
pub mod size;

pub use format::Format;
pub use quality::{Crisp, Quality};
pub use region::{Region, ResolvedRegion};
pub use request::{ImageRequest, ResolvedRequest};
pub use rotation::Rotation;
pub use size::Size;

/// Which Image API's rules apply to sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApiVersion {
    /// IIIF Image API 2.1 as go-iiif speaks it: `full` is a size, upscaling is always allowed.
    #[default]
    V2,
    /// IIIF Image API 3.0 strictly: `full` is not a size, upscaling only with `^`.
    V3,
}

/// A parameter that does not parse, or a request that cannot be satisfied by an image of a given size.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IiifError {
    /// The text of a parameter is malformed. `param` is "region", "size", "rotation", "quality" or "format".
    #[error("invalid {param} {value:?}: {reason}")]
    Syntax {
        param: &'static str,
        value: String,
        reason: String,
    },
    /// The value parses but is not supported by this tool (e.g. format `jp2`).
    #[error("unsupported {param} {value:?}: {reason}")]
    Unsupported {
        param: &'static str,
        value: String,
        reason: String,
    },
    /// The request cannot be applied to an image of this size (region outside the image, zero size,
    /// upscaling under 3.0 without `^`, ...).
    #[error("{param} {value:?} cannot be applied to a {width}x{height} image: {reason}")]
    Unsatisfiable {
        param: &'static str,
        value: String,
        width: u32,
        height: u32,
        reason: String,
    },
}

#[cfg(test)]
mod proptests {
    //! Every parameter: Display of a parsed value parses back to the same value, and no input panics.
    use super::*;
    use proptest::prelude::*;

    /// Strings near the grammar (digits, separators, keywords) find more edge cases than arbitrary text.
    fn near_miss() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            r"(\^|!|pct:|-|full|max|square|crisp:|default|color|gray|bitonal|dither|jpg|png|[0-9]{1,12}|\.|,|-1|9{15}){0,7}",
        )
        .unwrap()
    }

    fn roundtrip<T>(s: &str)
    where
        T: std::str::FromStr<Err = IiifError> + std::fmt::Display + PartialEq + std::fmt::Debug,
    {
        if let Ok(v) = s.parse::<T>() {
            let shown = v.to_string();
            let again = shown.parse::<T>();
            assert!(
                again.as_ref().is_ok_and(|a| *a == v),
                "{s:?} -> {v:?} -> {shown:?} -> {again:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn parsers_roundtrip_and_never_panic(s in prop_oneof![near_miss(), any::<String>()]) {
            roundtrip::<Region>(&s);
            roundtrip::<Size>(&s);
            roundtrip::<Rotation>(&s);
            roundtrip::<Quality>(&s);
            roundtrip::<Format>(&s);
        }

        #[test]
        fn resolution_never_panics(s in near_miss(), w in 0u32..100_000, h in 0u32..100_000, v3 in any::<bool>()) {
            let api = if v3 { ApiVersion::V3 } else { ApiVersion::V2 };
            if let Ok(r) = s.parse::<Region>() {
                if let Ok(res) = r.resolve(w, h) {
                    let (rw, rh) = res.output_dims();
                    prop_assert!(rw > 0 && rh > 0);
                }
            }
            if let Ok(z) = s.parse::<Size>() {
                if let Ok((sw, sh)) = z.resolve(w, h, api) {
                    prop_assert!(sw > 0 && sh > 0);
                }
            }
        }

        #[test]
        fn generated_values_roundtrip(x in 0u32..u32::MAX, y in 0u32..u32::MAX, w in 1u32..u32::MAX, h in 1u32..u32::MAX,
                                      p in 0.0f64..1000.0, up in any::<bool>(), m in any::<bool>()) {
            for r in [Region::Pixels { x, y, w, h }, Region::Percent { x: p, y: p / 3.0, w: p + 0.1, h: 1.5 }, Region::Smart { w, h }] {
                prop_assert_eq!(r.to_string().parse::<Region>().unwrap(), r);
            }
            for z in [Size::Width { w, upscale: up }, Size::Height { h, upscale: up }, Size::Exact { w, h, upscale: up },
                      Size::BestFit { w, h, upscale: up }, Size::Percent { pct: p + 0.01, upscale: up }, Size::Max { upscale: up }] {
                prop_assert_eq!(z.to_string().parse::<Size>().unwrap(), z);
            }
            let rot = Rotation::Degrees { mirror: m, degrees: p % 360.0 };
            prop_assert_eq!(rot.to_string().parse::<Rotation>().unwrap(), rot);
        }
    }
}
