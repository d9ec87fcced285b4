//! [`ChatPool`] over a [`Shell`]: each operation is one script run in its own shell process.

use super::runner::Shell;
use super::script::{self, Scripts};
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

impl ChatPool for ShellPool {
    fn pool_state(&self) -> Result<PoolState, ChatError> {
        let out = self.shell.run(&self.scripts.get_pool_state())?;
        script::parse_pool_state(&out.stdout)
    }

    fn set_pool_state(&self, state: PoolState) -> Result<(), ChatError> {
        self.shell
            .run(&self.scripts.set_pool_state(state))
            .map(drop)
    }

    fn mirror_state(&self) -> Result<MirrorState, ChatError> {
        let out = self.shell.run(&self.scripts.get_mirror_state())?;
        script::parse_mirror_state(&out.stdout)
    }

    fn install_mirror(&self, mirror: &MirrorSpec) -> Result<(), ChatError> {
        self.shell
            .run(&self.scripts.install_mirror(mirror))
            .map(drop)
    }

    fn active_servers(&self) -> Result<Vec<String>, ChatError> {
        let out = self.shell.run(&self.scripts.get_active_servers())?;
        script::parse_active_servers(&out.stdout)
    }

    fn set_active_servers(&self, servers: &[String]) -> Result<(), ChatError> {
        self.shell
            .run(&self.scripts.set_active_servers(servers))
            .map(drop)
    }
}
