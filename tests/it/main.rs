//! The integration tests: one binary (so the library and its dependencies are linked once), one module per topic.
//! Each drives the built `iiif-process` binary on real image files.

mod common;

mod azure;
mod batch;
mod colour;
mod deploy;
mod extensions;
mod formats;
mod gcs;
mod go_iiif_v8;
mod hostile;
mod limits;
mod listing;
mod masters;
mod messages;
mod metadata;
mod naming;
mod palette;
mod process;
mod reliability;
mod resample;
mod s3;
mod scale;
mod tiles;
mod watch;
