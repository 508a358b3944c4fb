//! iiif-process: IIIF Image API derivatives from master images, go-iiif compatible.

pub mod iiif;
pub mod naming;
pub mod pipeline;
pub mod services;
