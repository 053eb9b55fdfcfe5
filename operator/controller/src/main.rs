//! `trunkline-operator`: parses flags, sets up logs, runs the operator
//! until SIGTERM or SIGINT.

use std::process::ExitCode;

use clap::Parser;
use trunkline_operator::{Args, run, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every error's message already names its cause.
            tracing::error!(error = %e, "the operator stopped");
            ExitCode::FAILURE
        }
    }
}
