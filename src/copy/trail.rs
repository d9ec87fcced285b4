//! Verifying a large copy while it is written: the re-read trails the writer and reads only what
//! an fsync has already made durable, so the read-back overlaps the copy instead of following it
//! (on one large file, the re-read otherwise doubles the time).

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// An fsync that takes this long went to a device.
const SLOW_SYNC: Duration = Duration::from_millis(2);

/// What the writer tells the trailing reader.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// This many bytes are written (not yet durable).
    Written(u64),
    /// The file is complete at this length and fsynced (when fsyncing at all).
    Done(u64),
}

/// A reader over a file that is still being written. It hands out bytes only up to a point that
/// was made durable (`fdatasync` through `sync`) before it was read, in segments of at least
/// `segment` bytes. A segment whose fsync was slow (a device cache flush, not a tmpfs) doubles the
/// next one, up to `max_segment`: few flushes on a disk, a short tail where syncing is free. In
/// disk mode (`drop_pages`) each segment's clean pages are dropped after the sync, so its read
/// comes from the device.
pub(crate) struct Trail {
    f: File,
    sync: Option<File>,
    drop_pages: bool,
    segment: u64,
    max_segment: u64,
    marks: Receiver<Mark>,
    pos: u64,
    ready: u64,
    written: u64,
    done: bool,
}

impl Trail {
    /// `f` reads the file; `sync`, a handle that can fsync it (`None`: no fsync, a benchmark
    /// mode); `marks`, the writer's progress.
    pub(crate) fn new(
        f: File,
        sync: Option<File>,
        drop_pages: bool,
        (segment, max_segment): (u64, u64),
        marks: Receiver<Mark>,
    ) -> Trail {
        Trail {
            f,
            sync,
            drop_pages,
            segment: segment.max(1),
            // Never below the first segment, nor 0: doubling a 0 limit would make segments empty.
            max_segment: max_segment.max(segment).max(1),
            marks,
            pos: 0,
            ready: 0,
            written: 0,
            done: false,
        }
    }

    fn take(&mut self, m: Mark) {
        match m {
            Mark::Written(n) => self.written = self.written.max(n),
            Mark::Done(n) => {
                self.written = n;
                self.done = true;
            }
        }
    }

    /// Waits for the next segment (or the end), makes it durable and moves `ready` past it.
    fn advance(&mut self) -> io::Result<()> {
        let stopped = || io::Error::other("the copy stopped before it was complete");
        while !self.done && self.written - self.ready < self.segment {
            let m = self.marks.recv().map_err(|_| stopped())?;
            self.take(m);
        }
        loop {
            match self.marks.try_recv() {
                Ok(m) => self.take(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) if self.done => break,
                Err(TryRecvError::Disconnected) => return Err(stopped()),
            }
        }
        // Done comes after the writer's own fsync of the whole file.
        if !self.done {
            if let Some(s) = &self.sync {
                let t = Instant::now();
                s.sync_data()?;
                if t.elapsed() >= SLOW_SYNC {
                    self.segment = (self.segment * 2).min(self.max_segment);
                }
            }
        }
        if self.drop_pages {
            super::stream::drop_range(&self.f, self.ready, self.written - self.ready)?;
        }
        self.ready = self.written;
        Ok(())
    }
}

impl Read for Trail {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.ready {
            if self.done {
                return Ok(0);
            }
            self.advance()?;
        }
        let want = (self.ready - self.pos).min(buf.len() as u64) as usize;
        let k = self.f.read(&mut buf[..want])?;
        if k == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the copy ends at {} bytes, {} were written",
                    self.pos, self.written
                ),
            ));
        }
        self.pos += k as u64;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc::channel;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 253) as u8).collect()
    }

    /// Writes `d` in `chunk`s on another thread, marking each; the trail reads it all back.
    fn trail_of(d: &[u8], chunk: usize, segment: u64, done: bool) -> io::Result<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        let mut out = File::create(&path).unwrap();
        let (tx, rx) = channel();
        let mut t = Trail::new(
            File::open(&path).unwrap(),
            Some(out.try_clone().unwrap()),
            cfg!(unix),
            (segment, segment * 4),
            rx,
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut n = 0u64;
                for c in d.chunks(chunk) {
                    out.write_all(c).unwrap();
                    n += c.len() as u64;
                    tx.send(Mark::Written(n)).unwrap();
                }
                if done {
                    out.sync_all().unwrap();
                    tx.send(Mark::Done(n)).unwrap();
                }
                drop(tx);
            });
            let mut back = Vec::new();
            t.read_to_end(&mut back).map(|_| back)
        })
    }

    #[test]
    fn the_trail_reads_every_byte_once_written_in_any_segment_size() {
        for (len, chunk, segment) in [(0, 7, 16), (1, 7, 16), (1000, 7, 16), (5000, 100, 1 << 20)] {
            let d = data(len);
            assert_eq!(
                trail_of(&d, chunk, segment, true).unwrap(),
                d,
                "{len} {chunk} {segment}"
            );
        }
    }

    #[test]
    fn a_writer_that_stops_without_done_is_an_error_not_a_short_file() {
        let e = trail_of(&data(1000), 100, 64, false).unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
    }

    #[test]
    fn the_trail_never_reads_past_the_last_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        let mut out = File::create(&path).unwrap();
        // 100 bytes on disk, only 40 marked: the rest is not the copy's yet.
        out.write_all(&data(100)).unwrap();
        let (tx, rx) = channel();
        let mut t = Trail::new(File::open(&path).unwrap(), None, false, (10, 10), rx);
        tx.send(Mark::Written(40)).unwrap();
        let mut buf = [0u8; 100];
        let mut got = 0;
        while got < 40 {
            got += t.read(&mut buf[got..]).unwrap();
        }
        assert_eq!(got, 40);
        tx.send(Mark::Done(40)).unwrap();
        assert_eq!(t.read(&mut buf).unwrap(), 0, "the end is the marked end");
    }

    #[test]
    fn segments_are_never_empty_and_never_shrink_below_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        File::create(&path).unwrap();
        for (first, most) in [(0, 0), (0, 5), (8, 0), (8, 4), (8, 64)] {
            let (_tx, rx) = channel::<Mark>();
            let t = Trail::new(File::open(&path).unwrap(), None, false, (first, most), rx);
            assert!(t.segment >= 1, "({first}, {most})");
            assert!(t.max_segment >= t.segment, "({first}, {most})");
        }
    }
}
