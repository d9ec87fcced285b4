//! The buffers of one file's copy: a bounded set shared by the threads that read, write, hash and
//! verify it. A buffer kept for the read-back comparison comes back only once compared, so the
//! set's size bounds how far the copy runs ahead of its verification.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Clone)]
pub(crate) struct Ring {
    inner: Arc<(Mutex<State>, Condvar)>,
    size: usize,
}

struct State {
    free: Vec<Vec<u8>>,
    /// Buffers that exist, free or in use.
    made: usize,
    max: usize,
    closed: bool,
}

impl Ring {
    /// A ring of up to `max` buffers of `size` bytes, starting with the worker's `pool` (those
    /// of the right size; all of them count towards `max`).
    pub(crate) fn new(pool: &mut Vec<Vec<u8>>, size: usize, max: usize) -> Ring {
        let free: Vec<Vec<u8>> = pool.drain(..).filter(|b| b.len() == size).collect();
        let made = free.len();
        Ring {
            inner: Arc::new((
                Mutex::new(State {
                    free,
                    made,
                    max: max.max(1),
                    closed: false,
                }),
                Condvar::new(),
            )),
            size,
        }
    }

    /// A free buffer, a new one while fewer than `max` exist, or else the next one given back.
    /// `None` once the ring is closed: a stage of the copy stopped and the others must too.
    pub(crate) fn get(&self) -> Option<Vec<u8>> {
        let (lock, cv) = &*self.inner;
        let mut st = lock.lock().unwrap();
        loop {
            if st.closed {
                return None;
            }
            if let Some(b) = st.free.pop() {
                return Some(b);
            }
            if st.made < st.max {
                st.made += 1;
                drop(st);
                return Some(vec![0; self.size]);
            }
            st = cv.wait(st).unwrap();
        }
    }

    pub(crate) fn put(&self, b: Vec<u8>) {
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap().free.push(b);
        cv.notify_one();
    }

    /// Wakes every waiting `get` with `None`, now and later. Buffers still come back.
    pub(crate) fn close(&self) {
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap().closed = true;
        cv.notify_all();
    }

    /// Gives the free buffers back to the worker's pool, for its next file.
    pub(crate) fn into_pool(self, pool: &mut Vec<Vec<u8>>) {
        let (lock, _) = &*self.inner;
        pool.append(&mut lock.lock().unwrap().free);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_waits_for_a_buffer_to_come_back() {
        let ring = Ring::new(&mut Vec::new(), 8, 2);
        let a = ring.get().unwrap();
        let _b = ring.get().unwrap();
        let r2 = ring.clone();
        let t = std::thread::spawn(move || r2.get().map(|b| b.len()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished(), "a third buffer is not made");
        ring.put(a);
        assert_eq!(t.join().unwrap(), Some(8));
    }

    #[test]
    fn closing_wakes_a_waiter_and_buffers_still_come_back_to_the_pool() {
        let mut pool = vec![vec![0u8; 8], vec![0u8; 3]];
        let ring = Ring::new(&mut pool, 8, 1);
        assert!(pool.is_empty());
        let a = ring.get().unwrap();
        let r2 = ring.clone();
        let t = std::thread::spawn(move || r2.get());
        std::thread::sleep(std::time::Duration::from_millis(20));
        ring.close();
        assert!(t.join().unwrap().is_none());
        ring.put(a);
        ring.into_pool(&mut pool);
        assert_eq!(pool.len(), 1, "the buffer of another size is dropped");
    }
}
