//! The pure pixel pipeline: a decoded image and a resolved request in, the derivative's pixels out.

pub mod dither;
pub mod rotate;
pub mod sharpen;
pub mod smartcrop;
