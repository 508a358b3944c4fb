//! Rotation by any angle, clockwise, on a canvas enlarged to the rotated image's bounding box.

use image::DynamicImage;

/// Rotate clockwise by `degrees` in [0, 360). Multiples of 90 are exact pixel moves. Other angles give a canvas of
/// `crate::iiif::rotation::rotated_dims`, with the uncovered corners transparent when `transparent` (the output
/// keeps/gets an alpha channel) and white otherwise.
pub fn rotate(img: &DynamicImage, degrees: f64, transparent: bool) -> DynamicImage {
    let _ = (img, degrees, transparent);
    todo!()
}
