//! The AWS crate's integration tests, one binary: the built `iiif-process-aws` against moto's S3, SQS, ECS and
//! Batch on loopback (the core's moto harness), and a loopback Lambda Runtime API.
//!
//! The moto tests are `#[ignore]`d like the core's object storage tests: `.ci/run` installs moto and runs them
//! with `--include-ignored`, where a missing `moto_server` is a failure.

#[allow(dead_code)]
#[path = "../../../../tests/it/common/moto.rs"]
mod moto;

mod lambda;
mod task;

use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
