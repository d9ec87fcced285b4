//! `logship sim chat-shell`: the powershell.exe stand-in, and its `init`, `fault` and `show`.

use std::io::Write;

use anyhow::Context;

use crate::cli::{ChatShellAdmin, ChatShellArgs, GlobalArgs};
use crate::sim::chat_shell::{self, ChatShellState};

use super::{usage, Status};

pub fn run(_g: &GlobalArgs, a: &ChatShellArgs) -> anyhow::Result<Status> {
    let dir = &a.state;
    match &a.admin {
        Some(ChatShellAdmin::Init {
            pool,
            servers,
            sql_servers,
            force,
        }) => {
            let state = ChatShellState::new_pool(pool, servers, sql_servers);
            chat_shell::init(dir, &state, *force)?;
            Ok(Status::Done)
        }
        Some(ChatShellAdmin::Fault {
            fail_next,
            after,
            hang_secs,
        }) => {
            let lock = chat_shell::StateLock::acquire(dir)?;
            let mut state = ChatShellState::load(dir)?;
            state.fault = chat_shell::Fault {
                fail_next: *fail_next,
                after: *after,
                hang_secs: *hang_secs,
            };
            state.save(dir)?;
            lock.release()?;
            Ok(Status::Done)
        }
        Some(ChatShellAdmin::Show) => {
            let state = ChatShellState::load(dir)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state).context("state to JSON")?
            );
            Ok(Status::Done)
        }
        None => {
            let script = chat_shell::script_from_args(&a.powershell).map_err(usage)?;
            let out = chat_shell::run_script(dir, &script);
            // Written as powershell.exe writes them: the output streams, then the exit status.
            std::io::stdout()
                .write_all(out.stdout.as_bytes())
                .context("writing stdout")?;
            std::io::stderr()
                .write_all(out.stderr.as_bytes())
                .context("writing stderr")?;
            // The scripts here only exit 0 or 1; any other status is reported as 1.
            Ok(if out.exit_code == 0 {
                Status::Done
            } else {
                Status::Failed
            })
        }
    }
}
