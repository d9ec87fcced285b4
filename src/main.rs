//! The `logship` binary: parse flags, set up tracing, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

use logship::cli::Cli;
use logship::cmd;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logship::logging::init(&cli.global);
    match cmd::run(cli) {
        Ok(status) => ExitCode::from(status as u8),
        Err(err) => {
            eprintln!("logship: error: {err:#}");
            ExitCode::from(cmd::exit_status_of(&err) as u8)
        }
    }
}
