//! Tracing setup: stderr, level from -q/-v or RUST_LOG.

use tracing_subscriber::EnvFilter;

use crate::cli::GlobalArgs;

pub fn init(g: &GlobalArgs) {
    let level = if g.quiet {
        "warn,tiberius=off"
    } else {
        match g.verbose {
            // tiberius logs every server error and the lack of TLS (the simulator's) on its own;
            // the engine reports what matters with context.
            0 => "warn,logship=info,tiberius=off",
            1 => "info,tiberius=off",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
