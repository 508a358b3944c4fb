//! `iiif-process-aws`: the AWS half of iiif-process, kept out of the core crate.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve S3 upload events as an AWS Lambda function.
    Lambda,
    /// Run iiif-process as an ECS or AWS Batch task and wait for it.
    Task,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let name = match args.command {
        Command::Lambda => "lambda",
        Command::Task => "task",
    };
    eprintln!("iiif-process-aws: {name} is not available in this build");
    ExitCode::from(2)
}
