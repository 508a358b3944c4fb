//! `iiif-process-aws`: the AWS half of iiif-process, kept out of the core crate.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
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
    /// Run iiif-process as an ECS or AWS Batch task and wait for it (`task -help` for its flags).
    #[command(disable_help_flag = true)]
    Task {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<OsString>,
    },
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
    match command {
        Command::Lambda => iiif_process_aws::lambda::main(),
        // The task's flags are go-iiif style (-cluster, -wait=false), parsed by its own command.
        Command::Task { args } => {
            let argv = std::iter::once(OsString::from("iiif-process-aws task"))
                .chain(args)
                .collect();
            match iiif_process_aws::task::TaskArgs::parse_from(argv) {
                Ok(a) => iiif_process_aws::task::main(a),
                Err(e) => {
                    let _ = e.print();
                    ExitCode::from(if e.use_stderr() { 2 } else { 0 })
                }
            }
        }
    }
}
