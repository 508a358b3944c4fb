//! Per-source services reported beside the derivatives (go-iiif's `palette`, `blurhash`, `imagehash`). Each is
//! computed once per source from a small downscaled copy, never per instruction.

pub mod blurhash;
mod colour_names;
pub mod imagehash;
pub mod palette;
