//! What-if: a [`ChatPool`] wrapper that records (and optionally prints) the script each write
//! would run and changes nothing. Reads go to the wrapped pool, overlaid with the writes it
//! pretended to make, so a step that confirms its own write behaves as in a real run.

use std::sync::Mutex;

use super::script::Scripts;
use super::{ChatError, ChatPool, MirrorSpec, MirrorState, PoolState};

type Printer = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct Pretended {
    scripts: Vec<String>,
    pool_state: Option<PoolState>,
    mirror: bool,
    servers: Option<Vec<String>>,
}

/// Records the writes instead of running them.
pub struct WhatIf<P> {
    inner: P,
    scripts: Scripts,
    print: Option<Printer>,
    state: Mutex<Pretended>,
}

impl<P: ChatPool> WhatIf<P> {
    /// `scripts` builds the text shown for each write (the same builder the real pool uses).
    pub fn new(inner: P, scripts: Scripts) -> WhatIf<P> {
        WhatIf {
            inner,
            scripts,
            print: None,
            state: Mutex::new(Pretended::default()),
        }
    }

    /// Also hand each script to `print` as it is recorded (e.g. to print it on stdout).
    pub fn printing(mut self, print: impl Fn(&str) + Send + Sync + 'static) -> WhatIf<P> {
        self.print = Some(Box::new(print));
        self
    }

    /// The scripts the writes would have run, in order.
    pub fn recorded(&self) -> Vec<String> {
        self.lock().scripts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pretended> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, text: String, apply: impl FnOnce(&mut Pretended)) {
        if let Some(p) = &self.print {
            p(&text);
        }
        let mut st = self.lock();
        st.scripts.push(text);
        apply(&mut st);
    }
}

impl<P: ChatPool> ChatPool for WhatIf<P> {
    fn pool_state(&self) -> Result<PoolState, ChatError> {
        match self.lock().pool_state {
            Some(s) => Ok(s),
            None => self.inner.pool_state(),
        }
    }

    fn set_pool_state(&self, state: PoolState) -> Result<(), ChatError> {
        self.record(self.scripts.set_pool_state(state).text, |st| {
            st.pool_state = Some(state)
        });
        Ok(())
    }

    fn mirror_state(&self) -> Result<MirrorState, ChatError> {
        if self.lock().mirror {
            return Ok(MirrorState {
                states_on_primary: vec!["Principal".into()],
            });
        }
        self.inner.mirror_state()
    }

    fn install_mirror(&self, mirror: &MirrorSpec) -> Result<(), ChatError> {
        self.record(self.scripts.install_mirror(mirror).text, |st| {
            st.mirror = true
        });
        Ok(())
    }

    fn active_servers(&self) -> Result<Vec<String>, ChatError> {
        match &self.lock().servers {
            Some(s) => Ok(s.clone()),
            None => self.inner.active_servers(),
        }
    }

    fn set_active_servers(&self, servers: &[String]) -> Result<(), ChatError> {
        self.record(self.scripts.set_active_servers(servers).text, |st| {
            st.servers = Some(servers.to_vec())
        });
        Ok(())
    }
}
