//! `logship headers`.

use crate::cli::GlobalArgs;

use super::Status;

pub fn run(_g: &GlobalArgs, _a: &crate::cli::HeadersArgs) -> anyhow::Result<Status> {
    Ok(Status::Done)
}
