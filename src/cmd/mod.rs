//! One module per command: turn the flags into a config, call the engine, print the result.

mod bench;
mod catchup;
mod copy;
mod drill;
pub(crate) mod failover;
mod gen_share;
mod headers;
mod plan;
mod sim;
mod sim_chat;
mod watch;

use crate::cli::{Cli, Command};

/// Exit statuses (DESIGN.md): 0 done, 1 failed, 2 usage or configuration error, 3 broken chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Done = 0,
    Failed = 1,
    Usage = 2,
    ChainBroken = 3,
}

/// A usage or configuration error: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

pub fn run(cli: Cli) -> anyhow::Result<Status> {
    let g = &cli.global;
    match cli.command {
        Command::Headers(a) => headers::run(g, &a),
        Command::Plan(a) => plan::run(g, &a),
        Command::GenShare(a) => gen_share::run(g, &a),
        Command::Catchup(a) => catchup::run(g, &a),
        Command::Failover(a) => failover::run(g, &a),
        Command::Drill(a) => drill::run(g, &a),
        Command::Sim(a) => sim::run(g, a),
        Command::Copy(a) => copy::run(g, &a),
        Command::Bench(a) => bench::run(g, &a),
    }
}

/// The exit status for an error that ended a command.
pub fn exit_status_of(err: &anyhow::Error) -> Status {
    if err
        .chain()
        .any(|e| e.is::<UsageError>() || e.is::<crate::config::ConfigError>())
    {
        Status::Usage
    } else {
        Status::Failed
    }
}
