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
            log::error!("synack: {e}");
            ExitCode::FAILURE
        }
    }
}
