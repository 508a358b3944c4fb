//! The AWS half of iiif-process, kept out of the core crate: [`task`] runs iiif-process's container as an ECS
//! task or AWS Batch job and reports what it did.

pub mod task;
