//! The `synack` command: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use synack::cli::{Cli, Command};

fn main() -> ExitCode {
    // A `--config` file becomes flags placed before the user's (see synack::config).
    let argv = match synack::config::expand_args(std::env::args_os()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("synack: error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    synack::logging::init();
    let result = match cli.command {
        Command::Serve(args) => synack::serve::run(*args).map_err(|e| e.to_string()),
        Command::Load(args) => synack::load::run(*args),
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
