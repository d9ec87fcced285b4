//! Byte sources for the MTF walker: a seeking window that reads only the blocks asked for
//! (header reads), and a sequential reader that reads the whole file in large chunks and reports
//! progress (whole-file checks, as RESTORE LOG reads a file).

use std::io::{self, Read, Seek, SeekFrom};

/// Random-access bytes for the walker, which only ever asks for increasing offsets.
pub trait Source {
    /// The file's length when the read started.
    fn len(&self) -> u64;
    /// Up to `n` bytes at `off`; fewer only where the file ends.
    fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]>;
}

/// How much a window read fetches at once: the head of a file (TAPE, SSET, VOLB, MSCI and the
/// first data block's header: under 9 KiB in SQL Server's files) in one read, the trailer after
/// the data (empty MSTLs, MSLS, ESETs: about 26 KiB) in one.
const HEAD_WINDOW: usize = 16 * 1024;
const WINDOW: usize = 32 * 1024;

/// Positioned reads: the window's way to the bytes.
pub trait ReadAt {
    fn size(&mut self) -> io::Result<u64>;
    /// Reads at `off`; 0 at the end.
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize>;
}

/// Any `Read + Seek`: seeks only when a read does not follow the previous one.
pub struct Seeking<R> {
    r: R,
    at: Option<u64>,
}

impl<R> Seeking<R> {
    pub fn new(r: R) -> Seeking<R> {
        Seeking { r, at: None }
    }
}

impl<R: Read + Seek> ReadAt for Seeking<R> {
    fn size(&mut self) -> io::Result<u64> {
        let len = self.r.seek(SeekFrom::End(0))?;
        self.at = Some(len);
        Ok(len)
    }

    fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        if self.at != Some(off) {
            self.r.seek(SeekFrom::Start(off))?;
        }
        self.at = None;
        let k = self.r.read(buf)?;
        self.at = Some(off + k as u64);
        Ok(k)
    }
}

/// A file read with pread(2): one system call per window, no seeks.
#[cfg(unix)]
impl ReadAt for &std::fs::File {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(*self, buf, off)
    }
}

/// Reads a window at the requested offset, skipping whatever the walker does not ask for.
/// The buffer is lent by the caller so that a thread reading many files reuses one.
pub struct Window<'b, A> {
    a: A,
    len: u64,
    buf: &'b mut Vec<u8>,
    start: u64,
    filled: usize,
}

impl<'b, A: ReadAt> Window<'b, A> {
    pub fn new(mut a: A, buf: &'b mut Vec<u8>) -> io::Result<Window<'b, A>> {
        let len = a.size()?;
        Ok(Window {
            a,
            len,
            buf,
            start: 0,
            filled: 0,
        })
    }
}

impl<A: ReadAt> Source for Window<'_, A> {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
        if off >= self.len {
            return Ok(&[]);
        }
        let want = (n as u64).min(self.len - off) as usize;
        let cached_end = self.start + self.filled as u64;
        if off < self.start || off + want as u64 > cached_end {
            let window = if off == 0 { HEAD_WINDOW } else { WINDOW };
            let size = (want.max(window) as u64).min(self.len - off) as usize;
            if self.buf.len() < size {
                self.buf.resize(size, 0);
            }
            let mut filled = 0;
            while filled < size {
                match self
                    .a
                    .read_at(&mut self.buf[filled..size], off + filled as u64)
                {
                    Ok(0) => break,
                    Ok(k) => filled += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.start = off;
            self.filled = filled;
        }
        let from = (off - self.start) as usize;
        let to = (from + want).min(self.filled);
        Ok(&self.buf[from.min(to)..to])
    }
}

/// Reads until `buf` is full or the reader ends; returns the count.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Large sequential reads: the walker's skips are read through, so every byte is read once.
const CHUNK: usize = 1 << 20;

pub struct Sequential<'p, R> {
    r: R,
    len: u64,
    buf: Vec<u8>,
    start: u64,
    filled: usize,
    done: u64,
    progress: &'p mut dyn FnMut(u64, u64),
}

impl<'p, R: Read> Sequential<'p, R> {
    pub fn new(r: R, len: u64, progress: &'p mut dyn FnMut(u64, u64)) -> Sequential<'p, R> {
        Sequential {
            r,
            len,
            buf: vec![0; CHUNK],
            start: 0,
            filled: 0,
            done: 0,
            progress,
        }
    }

    /// Bytes actually read from the underlying reader so far.
    #[cfg(test)]
    pub fn done(&self) -> u64 {
        self.done
    }

    fn fill_from(&mut self, keep_from: usize) -> io::Result<usize> {
        self.buf.copy_within(keep_from..self.filled, 0);
        self.start += keep_from as u64;
        self.filled -= keep_from;
        let k = read_full(&mut self.r, &mut self.buf[self.filled..])?;
        self.filled += k;
        self.done += k as u64;
        (self.progress)(self.done.min(self.len), self.len);
        Ok(k)
    }

    /// Reads everything left (the walk ended): the file must end where the walk did.
    pub fn drain(&mut self) -> io::Result<u64> {
        let mut extra = 0u64;
        loop {
            self.filled = 0;
            let k = self.fill_from(0)?;
            if k == 0 {
                return Ok(extra);
            }
            extra += k as u64;
        }
    }
}

impl<R: Read> Source for Sequential<'_, R> {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
        if off < self.start {
            return Err(io::Error::other("sequential source asked to go backwards"));
        }
        if off >= self.len {
            return Ok(&[]);
        }
        let want = (n as u64).min(self.len - off).min(CHUNK as u64) as usize;
        // Read through the part the walker skips.
        while off >= self.start + self.filled as u64 {
            let k = self.fill_from(self.filled)?;
            if k == 0 {
                return Ok(&[]);
            }
        }
        let from = (off - self.start) as usize;
        if from + want > self.filled {
            self.fill_from(from)?;
        }
        let from = (off - self.start) as usize;
        let to = (from + want).min(self.filled);
        Ok(&self.buf[from..to])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn data() -> Vec<u8> {
        (0..200_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn window_serves_any_offset() {
        let d = data();
        let mut buf = Vec::new();
        let mut w = Window::new(Seeking::new(Cursor::new(d.clone())), &mut buf).unwrap();
        for (off, n) in [
            (0u64, 52usize),
            (10, 100),
            (150_000, 22),
            (5, 40_000),
            (199_990, 52),
            (200_000, 4),
            (300_000, 1),
        ] {
            let got = w.get(off, n).unwrap().to_vec();
            let lo = (off as usize).min(d.len());
            let hi = (lo + n).min(d.len());
            assert_eq!(got, &d[lo..hi], "at {off}+{n}");
        }
    }

    #[test]
    fn sequential_reads_everything_once() {
        let d = data();
        let mut seen = Vec::new();
        let mut p = |done, total| seen.push((done, total));
        let mut s = Sequential::new(Cursor::new(d.clone()), d.len() as u64, &mut p);
        for (off, n) in [
            (0u64, 52usize),
            (10, 100),
            (150_000, 22),
            (150_010, 40_000),
            (199_990, 52),
        ] {
            let got = s.get(off, n).unwrap().to_vec();
            let lo = off as usize;
            assert_eq!(got, &d[lo..(lo + n).min(d.len())], "at {off}+{n}");
        }
        assert_eq!(s.drain().unwrap(), 0);
        assert_eq!(s.done(), d.len() as u64);
        assert_eq!(seen.last(), Some(&(d.len() as u64, d.len() as u64)));
    }
}
