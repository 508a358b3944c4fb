//! go-iiif's `crisp` quality: sharpen after resize.

use crate::iiif::Crisp;
use image::DynamicImage;

/// Apply go-iiif's crisp (unsharp mask with `radius` and `amount`, after a median filter when `median` > 0).
pub fn crisp(img: &DynamicImage, settings: &Crisp) -> DynamicImage {
    let _ = (img, settings);
    todo!()
}
