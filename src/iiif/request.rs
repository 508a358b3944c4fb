//! The five parameters together, in the spec's order of operations: region, size, rotation, quality, format.

use super::{ApiVersion, Format, IiifError, Quality, Region, ResolvedRegion, Rotation, Size};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct ImageRequest {
    pub region: Region,
    pub size: Size,
    pub rotation: Rotation,
    pub quality: Quality,
    pub format: Format,
}

/// A request resolved against one image's dimensions: everything the pixel pipeline needs, nothing it must guess.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedRequest {
    pub region: ResolvedRegion,
    /// Size after region and size, before rotation.
    pub size: (u32, u32),
    /// Mirror horizontally before rotating.
    pub mirror: bool,
    /// Clockwise, in [0, 360).
    pub degrees: f64,
    /// False for go-iiif's rotation `-1`: use the pixels as stored, not EXIF-oriented.
    pub auto_orient: bool,
    pub quality: Quality,
    /// Final dimensions of the derivative.
    pub output: (u32, u32),
}

impl ImageRequest {
    /// Parse the five parameter texts (an instruction's fields, defaults already applied).
    pub fn parse(
        region: &str,
        size: &str,
        rotation: &str,
        quality: &str,
        format: &str,
    ) -> Result<Self, IiifError> {
        Ok(ImageRequest {
            region: region.parse()?,
            size: size.parse()?,
            rotation: rotation.parse()?,
            quality: quality.parse()?,
            format: format.parse()?,
        })
    }

    /// Checks that need no image: e.g. size `full` is not allowed under 3.0.
    pub fn validate(&self, api: ApiVersion) -> Result<(), IiifError> {
        if api == ApiVersion::V3 && self.size == Size::Full {
            return Err(IiifError::Unsupported {
                param: "size",
                value: "full".into(),
                reason: "IIIF Image API 3.0 has no size `full` (use `max`)".into(),
            });
        }
        Ok(())
    }

    /// Resolve against the dimensions of the image the request applies to: the EXIF-oriented (upright)
    /// dimensions, or the stored ones when rotation is `-1`.
    pub fn resolve(
        &self,
        width: u32,
        height: u32,
        api: ApiVersion,
    ) -> Result<ResolvedRequest, IiifError> {
        self.validate(api)?;
        let region = self.region.resolve(width, height)?;
        let (rw, rh) = region.output_dims();
        let size = self.size.resolve(rw, rh, api)?;
        let (mirror, degrees, auto_orient) = match self.rotation {
            Rotation::Degrees { mirror, degrees } => (mirror, degrees.rem_euclid(360.0), true),
            Rotation::NoAutoRotate => (false, 0.0, false),
        };
        let output = self.rotation.resolve(size.0, size.1);
        Ok(ResolvedRequest {
            region,
            size,
            mirror,
            degrees,
            auto_orient,
            quality: self.quality,
            output,
        })
    }

    /// The derivative's path below the source: `<region>/<size>/<rotation>/<quality>.<format>`, with the requested
    /// values (quality `default` written `color`) and `format` the concrete format written.
    pub fn path(&self, format: Format) -> String {
        format!(
            "{}/{}/{}/{}.{}",
            self.region,
            self.size,
            self.rotation,
            self.quality.path_name(),
            format.extension()
        )
    }
}

impl fmt::Display for ImageRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}.{}",
            self.region, self.size, self.rotation, self.quality, self.format
        )
    }
}
