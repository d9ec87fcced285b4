//! Copying one large file in pieces, each kept on one core: every thread takes every Nth piece,
//! reads, writes and hashes it (a BLAKE3 subtree at its offset) while it is in that core's
//! cache, keeps it, and once an fsync covers its pieces reads them back and compares them with
//! what it kept. BLAKE3 is a tree, so the pieces' hashes merge into the hash of the whole file.
//!
//! Buffers handed from core to core (a reader, a writer and a hasher thread) cost one 2 GiB file
//! a third more CPU than the copy's own work, in kernel copies that miss the cache: see the
//! README's benchmark notes.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use blake3::hazmat::{self, ChainingValue, HasherExt, Mode};

/// The largest piece: it stays in a core's cache from its read to its hash.
pub(crate) const MAX_PIECE: u64 = 256 << 10;
/// An fsync that takes this long went to a device.
const SLOW_SYNC: Duration = Duration::from_millis(2);
/// Progress is reported in batches of this many bytes (and at the end).
const PROGRESS_BATCH: u64 = 4 << 20;

/// The piece size for a buffer size: a power of two (a BLAKE3 subtree), from one BLAKE3 chunk
/// (1 KiB) to `MAX_PIECE`.
pub(crate) fn piece_size(buffer: usize) -> u64 {
    let b = (buffer as u64).clamp(1024, MAX_PIECE);
    1 << (63 - b.leading_zeros())
}

/// One file's copy in pieces.
pub(crate) struct Pieces<'a> {
    pub src: &'a File,
    /// The temporary file, for writing and fsync.
    pub out: &'a File,
    /// The temporary file, for the read-back.
    pub back: &'a File,
    /// The source's length, as listed.
    pub len: u64,
    pub piece: u64,
    pub threads: usize,
    /// Bytes a thread writes between fsyncs, at first and at most: where an fsync is slow (a
    /// device's cache flush, not a tmpfs) the next segment is twice as long, up to the most. A
    /// thread keeps what it wrote until it is read back: at most two of the longest segments.
    pub segment: (u64, u64),
    /// Read back only what an fsync made durable. `false`: the benchmark-only mode without fsync.
    pub fsync: bool,
    /// Disk mode: drop each piece's cached pages before it is read back.
    pub drop_pages: bool,
    pub throttle: Option<Duration>,
    pub cancel: &'a AtomicBool,
}

/// Why a copy in pieces failed.
#[derive(Debug)]
pub(crate) enum Fail<E> {
    /// Reading the source.
    Read(io::Error),
    /// The source ended at this offset, before its listed length.
    Ended(u64),
    /// The source has bytes past its listed length.
    Grew,
    Write(io::Error),
    ReadBack(io::Error),
    /// The copy read back is not what was written; where.
    Differs(String),
    Cancelled,
    /// The caller's finishing step failed.
    Finish(E),
    /// Another thread failed; its error explains this one.
    Stopped,
}

impl<E> Fail<E> {
    /// Which error explains a failure best: a mismatch explains everything, then whatever failed
    /// on its own, then a cancel; `Stopped` never explains anything.
    fn rank(&self) -> u8 {
        match self {
            Fail::Differs(_) => 0,
            Fail::Cancelled => 2,
            Fail::Stopped => 3,
            _ => 1,
        }
    }
}

/// A piece's hash: a BLAKE3 chaining value at its offset, or the root hash of a one-piece file.
type Digest = [u8; 32];
/// A thread's pieces read back and found equal: offset and digest.
type Verified = Vec<(u64, Digest)>;

struct Run<'p, 'a> {
    p: &'p Pieces<'a>,
    count: u64,
    failed: AtomicBool,
    progress: &'p (dyn Fn(u64) + Sync),
    /// One fsync at a time: a thread that finds another syncing writes on instead of waiting.
    syncing: Mutex<()>,
    /// fsyncs started and finished, counted: a piece written when `started` was k is durable
    /// once `synced` > k (the fsync numbered k + 1 began after the piece was written).
    started: AtomicU64,
    synced: AtomicU64,
}

/// Copies `p.src` to `p.out` on `p.threads` threads, then (once every piece is written) runs
/// `finish` (the caller's checks of the source and its fsync of the copy), then reads back
/// the pieces not yet read back. Returns the BLAKE3 of the file and what `finish` returned.
/// `progress` is told the bytes copied, in batches.
pub(crate) fn copy_pieces<T: Send, E: Send>(
    p: &Pieces,
    progress: &(dyn Fn(u64) + Sync),
    finish: impl FnOnce() -> Result<T, E> + Send,
) -> Result<(blake3::Hash, T), Fail<E>> {
    let run = Run {
        p,
        count: p.len.div_ceil(p.piece),
        failed: AtomicBool::new(false),
        progress,
        syncing: Mutex::new(()),
        started: AtomicU64::new(0),
        synced: AtomicU64::new(0),
    };
    let threads = p.threads.clamp(1, run.count.max(1) as usize);
    let barrier = Barrier::new(threads);
    let finish = Mutex::new(Some(finish));
    let finished: Mutex<Option<Result<T, Fail<E>>>> = Mutex::new(None);
    let results: Vec<Result<Verified, Fail<E>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (run, barrier, finish, finished) = (&run, &barrier, &finish, &finished);
                s.spawn(move || {
                    let mut th = Thread::new(run);
                    let wrote = th.write_all(t, threads as u64);
                    if wrote.is_err() {
                        run.failed.store(true, Ordering::Relaxed);
                    }
                    // Every thread comes here, failed or not, so none waits forever.
                    if barrier.wait().is_leader() && !run.failed.load(Ordering::Relaxed) {
                        let f = finish.lock().unwrap().take().expect("one leader");
                        let r = run.grew().and_then(|()| f().map_err(Fail::Finish));
                        if r.is_err() {
                            run.failed.store(true, Ordering::Relaxed);
                        }
                        *finished.lock().unwrap() = Some(r);
                    }
                    barrier.wait();
                    wrote?;
                    if run.failed.load(Ordering::Relaxed) {
                        return Err(Fail::Stopped);
                    }
                    // The caller's finish fsynced the whole file.
                    th.read_back(true)?;
                    Ok(th.done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("piece thread does not panic"))
            .collect()
    });
    let mut worst: Option<Fail<E>> = None;
    let mut consider = |e: Fail<E>| {
        // Threads that found the end at different moments: the earliest end is the one seen.
        let better = |w: &Fail<E>| match (&e, w) {
            (Fail::Ended(a), Fail::Ended(b)) => a < b,
            _ => e.rank() < w.rank(),
        };
        if worst.as_ref().is_none_or(better) {
            worst = Some(e);
        }
    };
    let mut value = None;
    match finished.into_inner().unwrap() {
        Some(Ok(v)) => value = Some(v),
        Some(Err(e)) => consider(e),
        None => {}
    }
    let mut digests = vec![[0u8; 32]; run.count as usize];
    for r in results {
        match r {
            Ok(done) => {
                for (i, d) in done {
                    digests[(i / p.piece) as usize] = d;
                }
            }
            Err(e) => consider(e),
        }
    }
    match (worst, value) {
        (None, Some(v)) => Ok((root(&digests, p.piece, p.len), v)),
        (e, _) => Err(e.unwrap_or(Fail::Stopped)),
    }
}

/// The hash of a file of `len` bytes from its pieces' digests.
fn root(digests: &[Digest], piece: u64, len: u64) -> blake3::Hash {
    match digests {
        [] => blake3::hash(b""),
        [one] => blake3::Hash::from_bytes(*one),
        _ => match merge(digests, piece, len, true) {
            Merged::Root(h) => h,
            Merged::Cv(_) => unreachable!("asked for the root"),
        },
    }
}

enum Merged {
    Cv(ChainingValue),
    Root(blake3::Hash),
}

/// Merges the chaining values of `len` bytes of pieces as BLAKE3's tree does: the left subtree
/// holds the largest power of two of chunks short of `len`, a whole number of pieces.
fn merge(cvs: &[ChainingValue], piece: u64, len: u64, is_root: bool) -> Merged {
    let left_len = hazmat::left_subtree_len(len);
    let k = (left_len / piece) as usize;
    let side = |cvs: &[ChainingValue], len| match cvs {
        [one] => *one,
        _ => match merge(cvs, piece, len, false) {
            Merged::Cv(cv) => cv,
            Merged::Root(_) => unreachable!("asked for a subtree"),
        },
    };
    let (l, r) = (side(&cvs[..k], left_len), side(&cvs[k..], len - left_len));
    if is_root {
        Merged::Root(hazmat::merge_subtrees_root(&l, &r, Mode::Hash))
    } else {
        Merged::Cv(hazmat::merge_subtrees_non_root(&l, &r, Mode::Hash))
    }
}

/// One thread's state: its buffers, the pieces written and not yet read back (each kept in the
/// buffer it was written from), and those verified.
struct Thread<'r, 'p, 'a> {
    run: &'r Run<'p, 'a>,
    free: Vec<Vec<u8>>,
    /// The read-back's buffer.
    back: Vec<u8>,
    /// Offset, the fsyncs started before it was written, digest, buffer.
    pending: Vec<(u64, u64, Digest, Vec<u8>)>,
    done: Verified,
    segment: u64,
}

impl<'r, 'p, 'a> Thread<'r, 'p, 'a> {
    fn new(run: &'r Run<'p, 'a>) -> Self {
        Thread {
            run,
            free: Vec::new(),
            back: vec![0; run.p.piece as usize],
            pending: Vec::new(),
            done: Vec::new(),
            segment: run.p.segment.0.max(1),
        }
    }

    fn digest(&self, off: u64, data: &[u8]) -> Digest {
        if self.run.count == 1 {
            *blake3::hash(data).as_bytes()
        } else {
            blake3::Hasher::new()
                .set_input_offset(off)
                .update(data)
                .finalize_non_root()
        }
    }

    /// The piece at `off`: its length.
    fn piece_len(&self, off: u64) -> usize {
        self.run.p.piece.min(self.run.p.len - off) as usize
    }

    /// Writes pieces `first`, `first + step`, ... and reads each back once an fsync covers it.
    fn write_all<E>(&mut self, first: u64, step: u64) -> Result<(), Fail<E>> {
        let p = self.run.p;
        let (mut unsynced, mut unreported, mut kept) = (0u64, 0u64, 0u64);
        let most = 2 * p.segment.1.max(p.segment.0);
        let mut i = first;
        while i < self.run.count {
            if p.cancel.load(Ordering::Relaxed) {
                return Err(Fail::Cancelled);
            }
            if self.run.failed.load(Ordering::Relaxed) {
                return Err(Fail::Stopped);
            }
            let off = i * p.piece;
            let n = self.piece_len(off);
            let mut buf = self.free.pop().unwrap_or_else(|| vec![0; p.piece as usize]);
            let got = read_at(p.src, &mut buf[..n], off).map_err(Fail::Read)?;
            if got < n {
                // A piece past the new end reads nothing: the file's length says where it ends.
                let at = off + got as u64;
                let end = p.src.metadata().map_or(at, |m| m.len().min(at));
                return Err(Fail::Ended(end));
            }
            write_at(p.out, &buf[..n], off).map_err(Fail::Write)?;
            let gen = self.run.started.load(Ordering::SeqCst);
            if p.fsync {
                // The device writes while the copy goes on, and the fsyncs have little left.
                super::stream::start_writeback(p.out, off, n as u64);
            }
            // Hashed after the write, from the buffer written and kept for the read-back: a
            // buffer that changed in between shows up in the comparison.
            let d = self.digest(off, &buf[..n]);
            self.pending.push((off, gen, d, buf));
            unsynced += n as u64;
            unreported += n as u64;
            kept += n as u64;
            if unreported >= PROGRESS_BATCH {
                (self.run.progress)(std::mem::take(&mut unreported));
            }
            if unsynced >= self.segment {
                // Where another thread is syncing, this one writes on (the device stays busy)
                // and compares what that fsync covered.
                if self.sync(false)? {
                    unsynced = 0;
                }
                kept -= self.read_back(false)?;
                while kept >= most {
                    self.sync(true)?;
                    kept -= self.read_back(false)?;
                    unsynced = 0;
                }
            }
            if let Some(t) = p.throttle {
                std::thread::sleep(t);
            }
            i += step;
        }
        (self.run.progress)(unreported);
        Ok(())
    }

    /// An fsync of the file, unless another thread is syncing and `wait` is false; with `wait`,
    /// once the other's is done, and only if it did not cover this thread's newest piece.
    /// Whether this thread's pieces written so far are now durable.
    fn sync<E>(&mut self, wait: bool) -> Result<bool, Fail<E>> {
        let run = self.run;
        if !run.p.fsync {
            return Ok(true);
        }
        let _one = match run.syncing.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::WouldBlock) if !wait => return Ok(false),
            Err(_) => run.syncing.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let newest = self.pending.last().map_or(0, |e| e.1);
        if self.pending.is_empty() || run.synced.load(Ordering::SeqCst) > newest {
            return Ok(true);
        }
        let t = Instant::now();
        let gen = run.started.fetch_add(1, Ordering::SeqCst) + 1;
        run.p.out.sync_data().map_err(Fail::Write)?;
        run.synced.store(gen, Ordering::SeqCst);
        if t.elapsed() >= SLOW_SYNC {
            self.segment = (self.segment * 2).min(run.p.segment.1.max(self.segment));
        }
        Ok(true)
    }

    /// Reads back the pending pieces an fsync covers (every one without fsync, or with `all`,
    /// once the whole file is fsynced) and compares each with the buffer it was written from.
    /// Returns the bytes compared.
    fn read_back<E>(&mut self, all: bool) -> Result<u64, Fail<E>> {
        let p = self.run.p;
        let synced = self.run.synced.load(Ordering::SeqCst);
        let covered = self
            .pending
            .iter()
            .take_while(|e| all || !p.fsync || synced > e.1)
            .count();
        let mut compared = 0;
        for (off, _, d, buf) in self.pending.drain(..covered).collect::<Vec<_>>() {
            if p.cancel.load(Ordering::Relaxed) {
                return Err(Fail::Cancelled);
            }
            let n = self.piece_len(off);
            if p.drop_pages {
                super::stream::drop_range(p.back, off, n as u64).map_err(Fail::ReadBack)?;
            }
            let got = read_at(p.back, &mut self.back[..n], off).map_err(Fail::ReadBack)?;
            // Slices compare with memcmp; the byte-by-byte search only runs on a difference.
            if self.back[..got] != buf[..got] {
                let i = self.back.iter().zip(&buf).position(|(a, b)| a != b);
                let at = off + i.unwrap_or(0) as u64;
                return Err(Fail::Differs(format!("byte {at} differs")));
            }
            if got < n {
                let end = off + got as u64;
                return Err(Fail::Differs(format!("the copy ends at {end} bytes")));
            }
            self.done.push((off, d));
            self.free.push(buf);
            compared += n as u64;
        }
        Ok(compared)
    }
}

impl Run<'_, '_> {
    /// Whether the source has bytes past its listed length (it grew while copied).
    fn grew<E>(&self) -> Result<(), Fail<E>> {
        match read_at(self.p.src, &mut [0u8; 1], self.p.len) {
            Ok(0) => Ok(()),
            Ok(_) => Err(Fail::Grew),
            Err(e) => Err(Fail::Read(e)),
        }
    }
}

/// Reads up to `buf.len()` bytes at `off`, fewer only at the end of the file.
fn read_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match pread(f, &mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn write_at(f: &File, mut buf: &[u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match pwrite(f, buf, off) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(k) => {
                buf = &buf[k..];
                off += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn pread(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, off)
}

#[cfg(unix)]
fn pwrite(f: &File, buf: &[u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(f, buf, off)
}

// Windows' positional I/O also moves the handle's file pointer; nothing here uses it.
#[cfg(windows)]
fn pread(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, off)
}

#[cfg(windows)]
fn pwrite(f: &File, buf: &[u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(f, buf, off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 29 % 251) as u8).collect()
    }

    struct Files {
        _dir: tempfile::TempDir,
        src: File,
        out: File,
        back: File,
        part: std::path::PathBuf,
    }

    fn files(d: &[u8]) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let (s, part) = (dir.path().join("src"), dir.path().join("part"));
        File::create(&s).unwrap().write_all(d).unwrap();
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .unwrap();
        Files {
            src: File::open(&s).unwrap(),
            back: File::open(&part).unwrap(),
            out,
            part,
            _dir: dir,
        }
    }

    fn pieces<'a>(f: &'a Files, len: u64, threads: usize, cancel: &'a AtomicBool) -> Pieces<'a> {
        Pieces {
            src: &f.src,
            out: &f.out,
            back: &f.back,
            len,
            piece: 1024,
            threads,
            // Read-backs every two pieces, so they also happen while the copy goes on.
            segment: (2048, 4096),
            fsync: true,
            drop_pages: cfg!(unix),
            throttle: None,
            cancel,
        }
    }

    type R = Result<(blake3::Hash, ()), Fail<&'static str>>;

    fn copy(p: &Pieces, finish: impl FnOnce() -> Result<(), &'static str> + Send) -> R {
        copy_pieces(p, &|_| {}, finish)
    }

    #[test]
    fn pieces_are_powers_of_two_from_a_chunk_to_the_most() {
        assert_eq!(piece_size(1 << 20), MAX_PIECE);
        assert_eq!(piece_size(64 << 10), 64 << 10);
        assert_eq!(piece_size(100 << 10), 64 << 10);
        assert_eq!(piece_size(10), 1024);
    }

    #[test]
    fn the_copy_is_the_source_and_its_hash_the_files_whatever_the_length_and_threads() {
        let cancel = AtomicBool::new(false);
        for len in [
            0usize,
            1,
            1023,
            1024,
            1025,
            4096,
            5 * 1024 + 7,
            33 * 1024,
            64 * 1024,
        ] {
            for threads in [1, 2, 3] {
                let d = data(len);
                let f = files(&d);
                let reported = std::sync::atomic::AtomicU64::new(0);
                let progress = |n| {
                    reported.fetch_add(n, Ordering::Relaxed);
                };
                let r = copy_pieces(&pieces(&f, len as u64, threads, &cancel), &progress, || {
                    Ok::<_, ()>(7)
                });
                let (h, v) = r.unwrap_or_else(|e| panic!("{len} {threads}: {e:?}"));
                assert_eq!((h, v), (blake3::hash(&d), 7), "{len} {threads}");
                assert_eq!(std::fs::read(&f.part).unwrap(), d, "{len} {threads}");
                assert_eq!(reported.into_inner(), len as u64, "{len} {threads}");
            }
        }
    }

    #[test]
    fn a_source_shorter_than_listed_names_where_it_ends_and_finish_is_not_run() {
        let cancel = AtomicBool::new(false);
        let f = files(&data(3000));
        let r = copy(&pieces(&f, 5000, 2, &cancel), || panic!("not finished"));
        assert!(matches!(r, Err(Fail::Ended(3000))), "{r:?}");
    }

    #[test]
    fn a_source_longer_than_listed_fails_before_finish() {
        let cancel = AtomicBool::new(false);
        let f = files(&data(5000));
        let r = copy(&pieces(&f, 4000, 2, &cancel), || panic!("not finished"));
        assert!(matches!(r, Err(Fail::Grew)), "{r:?}");
    }

    #[test]
    fn a_failed_finish_is_the_error() {
        let cancel = AtomicBool::new(false);
        let f = files(&data(9000));
        let r = copy(&pieces(&f, 9000, 2, &cancel), || Err("source changed"));
        assert!(matches!(r, Err(Fail::Finish("source changed"))), "{r:?}");
    }

    #[test]
    fn a_copy_changed_before_its_read_back_names_the_byte() {
        // Written after every piece and before the last read-backs: only those can see it.
        let cancel = AtomicBool::new(false);
        let d = data(9000);
        let f = files(&d);
        let flip = |at: u64| {
            let mut b = [d[at as usize]];
            b[0] = !b[0];
            write_at(&f.out, &b, at).unwrap();
            Ok(())
        };
        let p = Pieces {
            segment: (1 << 20, 1 << 20),
            ..pieces(&f, 9000, 2, &cancel)
        };
        match copy(&p, || flip(5000)) {
            Err(Fail::Differs(d)) => assert_eq!(d, "byte 5000 differs"),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn a_write_that_fails_stops_every_thread() {
        let cancel = AtomicBool::new(false);
        let f = files(&data(20_000));
        let ro = File::open(&f.part).unwrap();
        let p = Pieces {
            out: &ro,
            ..pieces(&f, 20_000, 3, &cancel)
        };
        let r = copy(&p, || panic!("not finished"));
        assert!(matches!(r, Err(Fail::Write(_))), "{r:?}");
    }

    #[test]
    fn cancel_stops_the_copy() {
        let cancel = AtomicBool::new(true);
        let f = files(&data(20_000));
        let r = copy(&pieces(&f, 20_000, 2, &cancel), || panic!("not finished"));
        assert!(matches!(r, Err(Fail::Cancelled)), "{r:?}");
    }
}
