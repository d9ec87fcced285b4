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
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("logship: error: {err:#}");
            ExitCode::from(cmd::exit_status_of(&err) as u8)
        }
    }
}

/// `logship headers ... | head` closes the pipe early: that is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
