//! Reading a backup the way RESTORE does: every byte, with progress, through the native reader.
//!
//! `read_whole` walks the whole file (so the throughput model and the STATS messages follow
//! real reading) and then reads its headers with `backup::read_file`. When `backup::check_whole`
//! (which also verifies every block of the file) is merged, `read_whole` calls it instead.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backup::{self, BackupHeader, ReadError, ReadErrorKind};

const CHUNK: usize = 1 << 20;

/// Reads all of `path`, calling `progress(done, total)` after each chunk; stops early (with an
/// error) when `cancel` is set.
pub fn read_whole(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
) -> Result<Vec<BackupHeader>, ReadError> {
    let io = |e: std::io::Error| ReadError { path: path.to_path_buf(), kind: ReadErrorKind::Io(e.to_string()) };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let total = f.metadata().map_err(io)?.len();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ReadError { path: path.to_path_buf(), kind: ReadErrorKind::Io("restore cancelled".into()) });
        }
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        done += n as u64;
        progress(done, total.max(done));
    }
    backup::read_file(path)
}
