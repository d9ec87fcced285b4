//! Group commit of folder fsyncs: after a rename, a worker needs *a* folder fsync that started
//! after its rename, not one of its own. Workers finishing together share one fsync, which matters
//! with many small files (each fsync of the folder is a journal commit).

use std::io;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct State {
    /// Requests so far; request k is covered by any fsync started after it was made.
    requested: u64,
    /// Every request up to this one is durable.
    done: u64,
    running: bool,
}

#[derive(Default)]
pub(crate) struct DirSync {
    st: Mutex<State>,
    cv: Condvar,
}

impl DirSync {
    /// Returns once an fsync (run by `sync`, here or in another thread) that started after this
    /// call has succeeded; an error if the fsync this call depends on failed.
    pub(crate) fn sync_with(&self, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let mut st = self.st.lock().unwrap();
        st.requested += 1;
        let mine = st.requested;
        loop {
            if st.done >= mine {
                return Ok(());
            }
            if !st.running {
                st.running = true;
                let covers = st.requested;
                drop(st);
                let r = sync();
                st = self.st.lock().unwrap();
                st.running = false;
                if r.is_ok() {
                    st.done = st.done.max(covers);
                }
                self.cv.notify_all();
                // A failure is reported to the caller that ran it; waiters retry with their own.
                r?;
                continue;
            }
            st = self.cv.wait(st).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn every_call_is_covered_by_a_sync_started_after_it_and_syncs_are_shared() {
        let ds = DirSync::default();
        let syncs = AtomicU64::new(0);
        // "Renames" are numbered; a sync records the highest rename it saw when it started.
        let renamed = AtomicU64::new(0);
        let durable = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let me = renamed.fetch_add(1, Ordering::SeqCst) + 1;
                        ds.sync_with(|| {
                            let seen = renamed.load(Ordering::SeqCst);
                            syncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::yield_now();
                            durable.fetch_max(seen, Ordering::SeqCst);
                            Ok(())
                        })
                        .unwrap();
                        assert!(
                            durable.load(Ordering::SeqCst) >= me,
                            "returned before its rename was durable"
                        );
                    }
                });
            }
        });
        let n = syncs.load(Ordering::SeqCst);
        assert!((1..=1600).contains(&n), "{n}");
    }

    #[test]
    fn a_failed_sync_is_an_error_for_its_caller() {
        let ds = DirSync::default();
        assert!(ds.sync_with(|| Err(io::Error::other("EIO"))).is_err());
        assert!(ds.sync_with(|| Ok(())).is_ok());
    }
}
