//! The IIIF Image API request parameters, one type per parameter.
//!
//! Each parameter parses with `FromStr`, prints a canonical form with `Display` (which parses back to the same
//! value), and resolves against image dimensions with a pure function. Nothing here does I/O or touches pixels.

pub mod format;
mod parse;
pub mod quality;
pub mod region;
pub mod request;
pub mod rotation;
pub mod size;

pub use format::Format;
pub use quality::{Crisp, Quality};
pub use region::{Rect, Region, ResolvedRegion};
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
