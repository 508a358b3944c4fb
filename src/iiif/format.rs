//! The format parameter: `jpg`, `png`, `webp`, `gif`, `tif`, and go-iiif's `""` (the source's own format).

use super::IiifError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Jpg,
    Png,
    Webp,
    Gif,
    Tif,
    /// go-iiif's `""`: the source's own format when it can be written, else jpg.
    Source,
}

impl Format {
    /// The file extension written in paths (`jpg`, `png`, ...). `Source` has none until resolved.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Jpg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tif => "tif",
            Format::Source => "",
        }
    }

    /// The concrete format to write: `Source` becomes the source's format when known and writable, else jpg.
    pub fn resolve(&self, source: Option<Format>) -> Format {
        match (self, source) {
            (Format::Source, Some(f)) if f != Format::Source => f,
            (Format::Source, _) => Format::Jpg,
            (f, _) => *f,
        }
    }
}

impl FromStr for Format {
    type Err = IiifError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "" => Format::Source,
            "jpg" | "jpeg" => Format::Jpg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            "gif" => Format::Gif,
            "tif" | "tiff" => Format::Tif,
            "jp2" | "pdf" => {
                return Err(IiifError::Unsupported {
                    param: "format",
                    value: s.to_string(),
                    reason: "not written by this tool (jpg, png, webp, gif, tif)".into(),
                })
            }
            _ => {
                return Err(IiifError::Syntax {
                    param: "format",
                    value: s.to_string(),
                    reason: "expected jpg, png, webp, gif, tif or \"\" (the source's format)"
                        .into(),
                })
            }
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!("JPEG".parse::<Format>().unwrap(), Format::Jpg);
        assert_eq!("tiff".parse::<Format>().unwrap(), Format::Tif);
        assert_eq!("".parse::<Format>().unwrap(), Format::Source);
        assert!(matches!(
            "jp2".parse::<Format>(),
            Err(IiifError::Unsupported { .. })
        ));
        assert!(matches!(
            "bmp".parse::<Format>(),
            Err(IiifError::Syntax { .. })
        ));
        assert_eq!(Format::Source.resolve(Some(Format::Png)), Format::Png);
        assert_eq!(Format::Source.resolve(None), Format::Jpg);
        assert_eq!(Format::Webp.resolve(Some(Format::Png)), Format::Webp);
    }
}
