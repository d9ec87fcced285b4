//! Moving bytes: reading a file in large buffers, hashing it, and handing each buffer to a sink;
//! on one thread for small files; for large ones on a reader thread, a hashing thread (when
//! hashing while reading) and the caller's thread, so one big file goes at disk speed (reading,
//! hashing and writing or re-hashing overlap).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::time::Duration;

use crate::backup::read_full;

/// Buffers in flight between the reader thread and the sink.
const DEPTH: usize = 4;
/// Buffers one pump holds at most.
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
}

/// What a pump returns: bytes read and, when hashed while reading, their BLAKE3.
pub(crate) type Pumped = (u64, Option<blake3::Hash>);

/// Reads `src` to its end and gives every chunk to `sink`, in order. With `hash_on_read` the
/// pump hashes what it reads (copy: the sink writes); without, the sink is free to hash (verify).
/// `pool` holds the worker's buffers between files, so memory is touched once per worker.
pub(crate) fn pump<R: Read + Send>(
    src: &mut R,
    size_hint: u64,
    cfg: &PumpCfg,
    hash_on_read: bool,
    pool: &mut Vec<Vec<u8>>,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<Pumped, PumpError> {
    if !cfg.spread || size_hint <= 2 * cfg.buf as u64 {
        let mut buf = take(pool, cfg.buf);
        let r = sequential(src, cfg, hash_on_read, &mut buf, &mut sink);
        pool.push(buf);
        return r;
    }
    let mut bufs: Vec<Vec<u8>> = (0..DEPTH + 1).map(|_| take(pool, cfg.buf)).collect();
    let (read_tx, read_rx) = sync_channel::<(Vec<u8>, usize)>(DEPTH);
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    for b in bufs.drain(..) {
        free_tx.send(b).expect("receiver alive");
    }
    let (result, returned) = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut total = 0u64;
            let result = loop {
                if cfg.cancel.load(Ordering::Relaxed) {
                    break Err(PumpError::Cancelled);
                }
                let Ok(mut b) = free_rx.recv() else {
                    break Ok(());
                };
                let n = match read_full(src, &mut b) {
                    Ok(n) => n,
                    Err(e) => break Err(PumpError::Read(e)),
                };
                if n == 0 {
                    break Ok(());
                }
                total += n as u64;
                if read_tx.send((b, n)).is_err() {
                    break Ok(()); // the sink failed; it reports why
                }
                if let Some(t) = cfg.throttle {
                    std::thread::sleep(t);
                }
            };
            drop(read_tx);
            let left: Vec<Vec<u8>> = free_rx.try_iter().collect();
            (result.map(|()| total), left)
        });
        // Hashing on a third thread: reading, hashing and writing one file then share the cores,
        // where a reader that also hashed would hold the copy to its pace (one core's worth).
        let (full_rx, hasher) = if hash_on_read {
            let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(DEPTH);
            let hasher = s.spawn(move || {
                let mut h = blake3::Hasher::new();
                for (b, n) in read_rx.iter() {
                    h.update(&b[..n]);
                    if full_tx.send((b, n)).is_err() {
                        break;
                    }
                }
                h.finalize()
            });
            (full_rx, Some(hasher))
        } else {
            (read_rx, None)
        };
        let mut kept = Vec::new();
        let mut sink_err = None;
        for (b, n) in full_rx.iter() {
            if let Err(e) = sink(&b[..n]) {
                sink_err = Some(e);
                kept.push(b);
                break;
            }
            if let Err(back) = free_tx.send(b) {
                kept.push(back.0);
            }
        }
        drop(full_rx);
        drop(free_tx);
        let (r, mut left) = reader.join().expect("reader thread does not panic");
        let hash = hasher.map(|h| h.join().expect("hasher thread does not panic"));
        left.append(&mut kept);
        match sink_err {
            Some(e) => (Err(PumpError::Sink(e)), left),
            None => (r.map(|total| (total, hash)), left),
        }
    });
    pool.extend(returned);
    result
}

fn sequential<R: Read>(
    src: &mut R,
    cfg: &PumpCfg,
    hash_on_read: bool,
    buf: &mut [u8],
    sink: &mut impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<Pumped, PumpError> {
    let mut hasher = hash_on_read.then(blake3::Hasher::new);
    let mut total = 0u64;
    loop {
        if cfg.cancel.load(Ordering::Relaxed) {
            return Err(PumpError::Cancelled);
        }
        let n = read_full(src, buf).map_err(PumpError::Read)?;
        if n == 0 {
            return Ok((total, hasher.map(|h| h.finalize())));
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
        sink(&buf[..n]).map_err(PumpError::Sink)?;
        total += n as u64;
        if let Some(t) = cfg.throttle {
            std::thread::sleep(t);
        }
    }
}

fn take(pool: &mut Vec<Vec<u8>>, size: usize) -> Vec<u8> {
    match pool.pop() {
        Some(b) if b.len() == size => b,
        _ => vec![0; size],
    }
}

/// Hashes a whole file or stream (used to verify a copy or to compare both sides).
pub(crate) fn hash_file<R: Read + Send>(
    f: &mut R,
    size_hint: u64,
    cfg: &PumpCfg,
    pool: &mut Vec<Vec<u8>>,
) -> Result<(u64, blake3::Hash), PumpError> {
    let mut h = blake3::Hasher::new();
    let (n, _) = pump(f, size_hint, cfg, false, pool, |chunk| {
        h.update(chunk);
        Ok(())
    })?;
    Ok((n, h.finalize()))
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
    use std::io::Write;

    #[test]
    fn pump_hashes_and_passes_every_byte_both_ways() {
        let cancel = AtomicBool::new(false);
        for (len, buf) in [
            (0usize, 64usize),
            (10, 64),
            (128, 64),
            (129, 64),
            (1000, 64),
            (4096, 100),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut t = tempfile::tempfile().unwrap();
            t.write_all(&data).unwrap();
            let cfg = PumpCfg {
                buf,
                throttle: None,
                cancel: &cancel,
                spread: true,
            };
            let mut pool = Vec::new();
            for _ in 0..2 {
                use std::io::Seek;
                t.rewind().unwrap();
                let mut out = Vec::new();
                let (n, h) = pump(&mut t, len as u64, &cfg, true, &mut pool, |c| {
                    out.extend_from_slice(c);
                    Ok(())
                })
                .unwrap();
                assert_eq!(
                    (n as usize, out.as_slice()),
                    (len, data.as_slice()),
                    "len {len} buf {buf}"
                );
                assert_eq!(h.unwrap(), blake3::hash(&data));
            }
            assert!(pool.len() <= DEPTH + 1, "buffers come back to the pool");
        }
    }

    #[test]
    fn a_sink_error_stops_the_pump() {
        let cancel = AtomicBool::new(false);
        let mut t = tempfile::tempfile().unwrap();
        t.write_all(&vec![1u8; 10_000]).unwrap();
        use std::io::Seek;
        t.rewind().unwrap();
        let cfg = PumpCfg {
            buf: 100,
            throttle: None,
            cancel: &cancel,
            spread: true,
        };
        let mut calls = 0;
        let r = pump(&mut t, 10_000, &cfg, true, &mut Vec::new(), |_| {
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
