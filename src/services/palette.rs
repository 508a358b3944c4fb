//! go-iiif's palette service: the `vibrant` extruder, with swatch names from the nearest colour of a named
//! palette (crayola, css4) under a euclidian grid.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One swatch as go-iiif reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swatch {
    pub name: String,
    pub hex: String,
    pub reference: String,
}

/// A named colour list for naming swatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedPalette {
    Crayola,
    Css4,
}

/// Extract up to `count` vibrant swatches; each is named by the nearest colour of `names` (euclidian in RGB)
/// or, with `None`, by its hex.
pub fn vibrant(img: &RgbImage, count: usize, names: Option<NamedPalette>) -> Vec<Swatch> {
    let _ = (img, count, names);
    todo!()
}
