//! [`ChatPool`] over a [`Shell`]: each operation is one script run in its own shell process.

use super::runner::Shell;
use super::script::{self, Script, Scripts};
use super::{ChatError, ChatPool, MirrorSpec, MirrorState, PoolState};

/// The production chat pool: scripts from [`Scripts`], run by [`Shell`].
#[derive(Clone, Debug)]
pub struct ShellPool {
    shell: Shell,
    scripts: Scripts,
}

impl ShellPool {
    pub fn new(shell: Shell, scripts: Scripts) -> ShellPool {
        ShellPool { shell, scripts }
    }

    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }
}

impl ShellPool {
    /// Runs a script; what the shell printed on its warning stream goes to the log.
    fn run(&self, script: &Script) -> Result<String, ChatError> {
        let out = self.shell.run(script)?;
        for line in script::stream_records(&out.stdout) {
            tracing::warn!(cmdlet = script.cmdlet, "{line}");
        }
        Ok(out.stdout)
    }
}

impl ChatPool for ShellPool {
    fn pool_state(&self) -> Result<PoolState, ChatError> {
        let out = self.run(&self.scripts.get_pool_state())?;
        script::parse_pool_state(&out)
    }

    fn set_pool_state(&self, state: PoolState) -> Result<(), ChatError> {
        self.run(&self.scripts.set_pool_state(state)).map(drop)
    }

    fn mirror_state(&self) -> Result<MirrorState, ChatError> {
        let out = self.run(&self.scripts.get_mirror_state())?;
        script::parse_mirror_state(&out)
    }

    fn install_mirror(&self, mirror: &MirrorSpec) -> Result<(), ChatError> {
        self.run(&self.scripts.install_mirror(mirror)).map(drop)
    }

    fn active_servers(&self) -> Result<Vec<String>, ChatError> {
        let out = self.run(&self.scripts.get_active_servers())?;
        script::parse_active_servers(&out)
    }

    fn set_active_servers(&self, servers: &[String]) -> Result<(), ChatError> {
        self.run(&self.scripts.set_active_servers(servers))
            .map(drop)
    }
}
