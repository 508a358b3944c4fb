//! `iiif-process-aws`: the AWS half of iiif-process, kept out of the core crate.

mod lambda;

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
    // Lambda's custom runtimes (provided.al2023) run an executable named `bootstrap` with no arguments.
    let bootstrap = std::env::args_os()
        .next()
        .is_some_and(|a| std::path::Path::new(&a).file_name() == Some("bootstrap".as_ref()));
    let command = if bootstrap {
        Command::Lambda
    } else {
        Args::parse().command
    };
    let name = match command {
        Command::Lambda => return lambda::main(),
        Command::Task => "task",
    };
    eprintln!("iiif-process-aws: {name} is not available in this build");
    ExitCode::from(2)
}
