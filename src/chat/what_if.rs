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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A pool whose writes panic: what-if must never reach them.
    struct ReadOnly;

    impl ChatPool for ReadOnly {
        fn pool_state(&self) -> Result<PoolState, ChatError> {
            Ok(PoolState::Normal)
        }
        fn set_pool_state(&self, _: PoolState) -> Result<(), ChatError> {
            panic!("what-if wrote")
        }
        fn mirror_state(&self) -> Result<MirrorState, ChatError> {
            Ok(MirrorState {
                states_on_primary: vec![super::super::MIRRORING_NOT_ENABLED.into()],
            })
        }
        fn install_mirror(&self, _: &MirrorSpec) -> Result<(), ChatError> {
            panic!("what-if wrote")
        }
        fn active_servers(&self) -> Result<Vec<String>, ChatError> {
            Ok(Vec::new())
        }
        fn set_active_servers(&self, _: &[String]) -> Result<(), ChatError> {
            panic!("what-if wrote")
        }
    }

    #[test]
    fn records_and_prints_writes_in_order_and_overlays_reads() {
        let printed = Arc::new(Mutex::new(Vec::new()));
        let sink = printed.clone();
        let w = WhatIf::new(ReadOnly, Scripts::new("Lync", "p.x"))
            .printing(move |s| sink.lock().unwrap().push(s.to_string()));
        assert_eq!(w.pool_state().unwrap(), PoolState::Normal);
        assert!(!w.mirror_state().unwrap().installed());
        w.set_pool_state(PoolState::FailedOver).unwrap();
        w.install_mirror(&MirrorSpec {
            sql_server_fqdn: "s.x".into(),
            sql_instance_name: None,
            file_share: "\\\\f\\s".into(),
            drop_existing_databases_on_mirror: false,
        })
        .unwrap();
        w.set_active_servers(&["a.x".into()]).unwrap();
        assert_eq!(w.pool_state().unwrap(), PoolState::FailedOver);
        assert!(w.mirror_state().unwrap().installed());
        assert_eq!(w.active_servers().unwrap(), vec!["a.x".to_string()]);
        let recorded = w.recorded();
        assert_eq!(recorded.len(), 3);
        assert_eq!(*printed.lock().unwrap(), recorded);
        let order: Vec<bool> = [
            "Set-CsPersistentChatState",
            "Install-CsMirrorDatabase",
            "Set-CsPersistentChatActiveServer",
        ]
        .iter()
        .zip(&recorded)
        .map(|(c, s)| s.contains(c))
        .collect();
        assert_eq!(order, vec![true; 3]);
    }

    #[test]
    fn pools_travel_to_blocking_threads_and_boxes() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<crate::chat::ShellPool>();
        send_sync::<WhatIf<crate::chat::ShellPool>>();
        let boxed: Box<dyn ChatPool + Send + Sync> =
            Box::new(WhatIf::new(ReadOnly, Scripts::new("Lync", "p.x")));
        std::thread::spawn(move || boxed.set_pool_state(PoolState::FailedOver))
            .join()
            .unwrap()
            .unwrap();
    }
}
