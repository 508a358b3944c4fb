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
        let _ = s;
        todo!()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}
