//! The `synack` command: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use synack::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    synack::logging::init();
    let result = match cli.command {
        Command::Serve(args) => synack::serve::run(*args).map_err(|e| e.to_string()),
        Command::Check(args) => synack::check::run(&args)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The reason the process ends is printed even when RUST_LOG silences errors.
            if log::log_enabled!(log::Level::Error) {
                log::error!("synack: {e}");
            } else {
                eprintln!("synack: error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
