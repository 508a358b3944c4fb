//! go-iiif's smart crop (`-1,-1,W,H`): the most interesting window of a given size, in the spirit of smartcrop.js
//! (edges, skin tones, saturation). Callers pass a small analysis copy, never the full frame.

use image::RgbImage;

/// The top-left corner of the most interesting `crop_w` x `crop_h` window of `img`
/// (`crop_w <= img.width()`, `crop_h <= img.height()`).
pub fn best_crop(img: &RgbImage, crop_w: u32, crop_h: u32) -> (u32, u32) {
    let _ = (img, crop_w, crop_h);
    todo!()
}
