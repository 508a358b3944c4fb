//! go-iiif's imagehash service: 64-bit average and difference hashes, printed as go-iiif prints them.

use image::RgbImage;

/// go-iiif's `average` hash, e.g. `a:ffc3810000183cff`.
pub fn average(img: &RgbImage) -> String {
    let _ = img;
    todo!()
}

/// go-iiif's `difference` hash, e.g. `d:...`.
pub fn difference(img: &RgbImage) -> String {
    let _ = img;
    todo!()
}
