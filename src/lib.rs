//! iiif-process: IIIF Image API derivatives from master images, go-iiif compatible.
//!
//! The binary is a thin shell over [`cli::parse`], [`app::Settings::from_args`] and [`app::run`].

pub mod app;
pub mod cli;
pub mod codec;
pub mod config;
pub mod iiif;
pub mod instructions;
pub mod naming;
pub mod objstore;
pub mod pipeline;
pub mod report;
pub mod s3event;
pub mod services;
pub mod shard;
pub mod store;
#[cfg(feature = "turbojpeg")]
pub mod turbo;
