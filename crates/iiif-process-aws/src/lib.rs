//! The AWS half of iiif-process, kept out of the core crate: [`lambda`] serves S3 upload events as an AWS Lambda
//! function, and [`task`] runs iiif-process's container as an ECS task or AWS Batch job and reports what it did.

pub mod lambda;
pub mod task;
