//! Moving bytes: reading a file in large buffers, handing each to a sink and hashing it; on one
//! thread for small files; for large ones on a reader thread, the caller's thread (the sink) and
//! a hashing thread, so one big file goes at disk speed (reading, writing and hashing overlap).
//! Buffers come from the file's [`Ring`]; after hashing, each goes back to it or, for a copy
//! verified by reading it back, on to the verifier, which gives it back once compared.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Sender};
use std::time::Duration;

use super::ring::Ring;
use crate::backup::read_full;

/// Buffers in flight between two threads of a pump.
const DEPTH: usize = 4;
/// Buffers a pump that keeps none for a verifier needs: more would only leave the cache.
pub(crate) const PUMP_BUFFERS: usize = DEPTH + 1;

pub(crate) struct PumpCfg<'a> {
    pub buf: usize,
    pub throttle: Option<Duration>,
    pub cancel: &'a AtomicBool,
    /// Spread a large file over threads (reading, hashing and the sink overlap). Without, one
    /// thread does all three: more efficient when other files keep the cores busy, since each
    /// buffer is used while it is still in this core's cache.
    pub spread: bool,
}

#[derive(Debug)]
pub(crate) enum PumpError {
    Read(io::Error),
    Sink(io::Error),
    Cancelled,
    /// The ring was closed by a later stage (the verifier), which says why.
    Stopped,
}

/// What a pump returns: bytes read and, when hashed, their BLAKE3.
pub(crate) type Pumped = (u64, Option<blake3::Hash>);

/// A buffer that was written and hashed, with its length, on its way to the verifier.
pub(crate) type Kept = (Vec<u8>, usize);

/// Reads `src` to its end and gives every chunk to `sink`, in order, then hashes it (with
/// `hash`): hashing what was written, after the write, means a buffer that changed in between
/// shows up as a mismatch in the read-back. Each buffer then goes to `keep` (the read-back
/// verifier) or back to `ring`. With `keep` the pump reads at most one buffer past `size_hint`
/// (that file changed; the caller sees the count), so a ring sized for the file never runs dry.
pub(crate) fn pump<R: Read + Send>(
    src: &mut R,
    size_hint: u64,
    cfg: &PumpCfg,
    ring: &Ring,
    hash: bool,
    keep: Option<Sender<Kept>>,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<Pumped, PumpError> {
    if !cfg.spread || size_hint <= 2 * cfg.buf as u64 {
        return sequential(src, size_hint, cfg, ring, hash, keep, &mut sink);
    }
    let bounded = keep.is_some();
    let (read_tx, read_rx) = sync_channel::<Kept>(DEPTH);
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut total = 0u64;
            loop {
                let Some((b, n)) = next_chunk(src, ring, cfg.cancel)? else {
                    return Ok(total);
                };
                total += n as u64;
                if let Err(back) = read_tx.send((b, n)) {
                    ring.put(back.0 .0);
                    return Ok(total); // the sink failed; it reports why
                }
                if bounded && total > size_hint {
                    return Ok(total);
                }
                if let Some(t) = cfg.throttle {
                    std::thread::sleep(t);
                }
            }
        });
        // Hashing on a third thread: reading, writing and hashing one file then share the cores,
        // where a reader that also hashed would hold the copy to its pace (one core's worth).
        let (full_tx, hasher) = if hash || keep.is_some() {
            let (full_tx, full_rx) = sync_channel::<Kept>(DEPTH);
            let hasher = s.spawn(move || {
                let mut h = hash.then(blake3::Hasher::new);
                for (b, n) in full_rx.iter() {
                    if let Some(h) = h.as_mut() {
                        h.update(&b[..n]);
                    }
                    pass_on(ring, keep.as_ref(), b, n);
                }
                h.map(|h| h.finalize())
            });
            (Some(full_tx), Some(hasher))
        } else {
            (None, None)
        };
        let mut sink_err = None;
        for (b, n) in read_rx.iter() {
            if let Err(e) = sink(&b[..n]) {
                sink_err = Some(e);
                ring.put(b);
                break;
            }
            match &full_tx {
                Some(tx) => {
                    if let Err(back) = tx.send((b, n)) {
                        ring.put(back.0 .0);
                        break;
                    }
                }
                None => ring.put(b),
            }
        }
        if sink_err.is_some() {
            // The reader may be waiting for a buffer; nothing more is wanted.
            ring.close();
        }
        drop(read_rx);
        drop(full_tx);
        let r = reader.join().expect("reader thread does not panic");
        let hash = hasher.and_then(|h| h.join().expect("hasher thread does not panic"));
        match sink_err {
            Some(e) => Err(PumpError::Sink(e)),
            None => r.map(|total| (total, hash)),
        }
    })
}

/// The next buffer's worth of `src`, in a buffer from `ring`; `None` at its end.
fn next_chunk<R: Read>(
    src: &mut R,
    ring: &Ring,
    cancel: &AtomicBool,
) -> Result<Option<Kept>, PumpError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(PumpError::Cancelled);
    }
    let Some(mut b) = ring.get() else {
        return Err(PumpError::Stopped);
    };
    match read_full(src, &mut b) {
        Ok(0) => {
            ring.put(b);
            Ok(None)
        }
        Ok(n) => Ok(Some((b, n))),
        Err(e) => {
            ring.put(b);
            Err(PumpError::Read(e))
        }
    }
}

/// Hands a hashed buffer to the verifier, or back to the ring; a verifier that has stopped
/// closes the ring, so the reader stops too.
fn pass_on(ring: &Ring, keep: Option<&Sender<Kept>>, b: Vec<u8>, n: usize) {
    match keep {
        Some(k) => {
            if let Err(back) = k.send((b, n)) {
                ring.put(back.0 .0);
                ring.close();
            }
        }
        None => ring.put(b),
    }
}

fn sequential<R: Read>(
    src: &mut R,
    size_hint: u64,
    cfg: &PumpCfg,
    ring: &Ring,
    hash: bool,
    keep: Option<Sender<Kept>>,
    sink: &mut impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<Pumped, PumpError> {
    let mut hasher = hash.then(blake3::Hasher::new);
    let mut total = 0u64;
    loop {
        let Some((b, n)) = next_chunk(src, ring, cfg.cancel)? else {
            return Ok((total, hasher.map(|h| h.finalize())));
        };
        if let Err(e) = sink(&b[..n]) {
            ring.put(b);
            return Err(PumpError::Sink(e));
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&b[..n]);
        }
        total += n as u64;
        pass_on(ring, keep.as_ref(), b, n);
        if keep.is_some() && total > size_hint {
            return Ok((total, hasher.map(|h| h.finalize())));
        }
        if let Some(t) = cfg.throttle {
            std::thread::sleep(t);
        }
    }
}

/// Hashes a whole file or stream (used to compare both sides of a copy found in place).
pub(crate) fn hash_file<R: Read + Send>(
    f: &mut R,
    size_hint: u64,
    cfg: &PumpCfg,
    pool: &mut Vec<Vec<u8>>,
) -> Result<(u64, blake3::Hash), PumpError> {
    let ring = Ring::new(pool, cfg.buf, PUMP_BUFFERS);
    let mut h = blake3::Hasher::new();
    let r = pump(f, size_hint, cfg, &ring, false, None, |chunk| {
        h.update(chunk);
        Ok(())
    });
    ring.into_pool(pool);
    Ok((r?.0, h.finalize()))
}

/// Drops a file's clean cached pages so the next read comes from the device.
#[cfg(unix)]
pub(crate) fn drop_cached_pages(f: &File) -> io::Result<()> {
    rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed).map_err(io::Error::from)
}

#[cfg(not(unix))]
pub(crate) fn drop_cached_pages(_f: &File) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "dropping cached pages needs posix_fadvise",
    ))
}

/// Drops the cached pages of a file that is done with (a copy after its restore); best effort.
pub fn forget_cached(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = drop_cached_pages(&f);
    }
}

/// Drops a range's clean cached pages (dirty ones start their write-back instead).
#[cfg(unix)]
pub(crate) fn drop_range(f: &File, offset: u64, len: u64) -> io::Result<()> {
    match std::num::NonZeroU64::new(len) {
        Some(len) => rustix::fs::fadvise(f, offset, Some(len), rustix::fs::Advice::DontNeed)
            .map_err(io::Error::from),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
pub(crate) fn drop_range(_f: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "dropping cached pages needs posix_fadvise",
    ))
}

/// Starts writing back a range just written, without waiting, so the device works while the copy
/// goes on and the fsync at the end has little left to do. Linux's POSIX_FADV_DONTNEED starts
/// writeback of dirty pages and drops only clean ones, so the range stays cached for the re-read.
pub(crate) fn start_writeback(f: &File, offset: u64, len: u64) {
    let _ = drop_range(f, offset, len);
}

/// Tells the kernel the file is read front to back (bigger readahead); advice only.
pub(crate) fn advise_sequential(f: &File) {
    #[cfg(unix)]
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::Sequential);
    #[cfg(not(unix))]
    let _ = f;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};
    use std::sync::mpsc::channel;

    fn file_of(data: &[u8]) -> File {
        let mut t = tempfile::tempfile().unwrap();
        t.write_all(data).unwrap();
        t.rewind().unwrap();
        t
    }

    fn cfg(buf: usize, spread: bool, cancel: &AtomicBool) -> PumpCfg<'_> {
        PumpCfg {
            buf,
            throttle: None,
            cancel,
            spread,
        }
    }

    #[test]
    fn pump_hashes_and_passes_every_byte_both_ways() {
        let cancel = AtomicBool::new(false);
        for spread in [true, false] {
            for (len, buf) in [
                (0usize, 64usize),
                (10, 64),
                (128, 64),
                (129, 64),
                (1000, 64),
                (4096, 100),
            ] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let mut t = file_of(&data);
                let cfg = cfg(buf, spread, &cancel);
                let mut pool = Vec::new();
                for _ in 0..2 {
                    t.rewind().unwrap();
                    let ring = Ring::new(&mut pool, buf, PUMP_BUFFERS);
                    let mut out = Vec::new();
                    let (n, h) = pump(&mut t, len as u64, &cfg, &ring, true, None, |c| {
                        out.extend_from_slice(c);
                        Ok(())
                    })
                    .unwrap();
                    ring.into_pool(&mut pool);
                    assert_eq!(
                        (n as usize, out.as_slice()),
                        (len, data.as_slice()),
                        "len {len} buf {buf} spread {spread}"
                    );
                    assert_eq!(h.unwrap(), blake3::hash(&data));
                }
                assert!(pool.len() <= PUMP_BUFFERS, "buffers come back to the pool");
            }
        }
    }

    #[test]
    fn kept_buffers_reach_the_verifier_in_order_and_come_back_through_the_ring() {
        let cancel = AtomicBool::new(false);
        let data: Vec<u8> = (0..10_000).map(|i| (i * 13 % 241) as u8).collect();
        for spread in [true, false] {
            let mut t = file_of(&data);
            let ring = Ring::new(&mut Vec::new(), 1000, 12);
            let (tx, rx) = channel::<Kept>();
            let r2 = ring.clone();
            let verifier = std::thread::spawn(move || {
                let mut got = Vec::new();
                for (b, n) in rx {
                    got.extend_from_slice(&b[..n]);
                    r2.put(b);
                }
                got
            });
            let cfg = cfg(1000, spread, &cancel);
            let (n, h) = pump(&mut t, 10_000, &cfg, &ring, true, Some(tx), |_| Ok(())).unwrap();
            assert_eq!((n, h.unwrap()), (10_000, blake3::hash(&data)));
            assert_eq!(verifier.join().unwrap(), data, "spread {spread}");
            let mut pool = Vec::new();
            ring.into_pool(&mut pool);
            assert!(!pool.is_empty() && pool.len() <= 12);
        }
    }

    #[test]
    fn a_kept_pump_reads_at_most_one_buffer_past_the_expected_size() {
        // The file grew after it was listed: with a ring sized for the listed size, reading on
        // would wait for a buffer that only the end of the copy gives back.
        let cancel = AtomicBool::new(false);
        for spread in [true, false] {
            let mut t = file_of(&[7u8; 5000]);
            let ring = Ring::new(&mut Vec::new(), 1000, 3);
            let (tx, rx) = channel();
            let cfg = cfg(1000, spread, &cancel);
            let (n, _) = pump(&mut t, 2000, &cfg, &ring, true, Some(tx), |_| Ok(())).unwrap();
            assert_eq!(n, 3000, "spread {spread}");
            assert_eq!(rx.iter().count(), 3);
        }
    }

    #[test]
    fn a_verifier_that_stops_stops_the_pump() {
        let cancel = AtomicBool::new(false);
        for spread in [true, false] {
            let mut t = file_of(&[1u8; 20_000]);
            let ring = Ring::new(&mut Vec::new(), 100, 8);
            let (tx, rx) = channel::<Kept>();
            drop(rx);
            let cfg = cfg(100, spread, &cancel);
            let r = pump(&mut t, 20_000, &cfg, &ring, true, Some(tx), |_| Ok(()));
            assert!(matches!(r, Err(PumpError::Stopped)), "{r:?}");
        }
    }

    #[test]
    fn a_sink_error_stops_the_pump() {
        let cancel = AtomicBool::new(false);
        for spread in [true, false] {
            let mut t = file_of(&[1u8; 10_000]);
            let ring = Ring::new(&mut Vec::new(), 100, PUMP_BUFFERS);
            let cfg = cfg(100, spread, &cancel);
            let mut calls = 0;
            let r = pump(&mut t, 10_000, &cfg, &ring, true, None, |_| {
                calls += 1;
                if calls == 3 {
                    Err(io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            });
            assert!(matches!(r, Err(PumpError::Sink(_))), "{r:?}");
            assert_eq!(calls, 3);
        }
    }
}
