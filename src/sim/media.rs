//! Reading a backup the way RESTORE does: every byte, with progress, through the native reader's
//! `backup::check_whole` (which verifies the structure of the whole file, not only its headers).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backup::{self, BackupHeader, ReadError, ReadErrorKind};

/// Reads and checks all of `path`, calling `progress(done, total)` as it goes, and returns the
/// BLAKE3 of the bytes it read (what was restored) when `hash` is set. Once `cancel` is set,
/// progress is no longer reported (the throttle in it stops waiting) and the result is an error:
/// the restore is being abandoned.
pub fn read_whole(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
    hash: bool,
) -> Result<(Vec<BackupHeader>, Option<blake3::Hash>), ReadError> {
    let mut progress = |done, total| {
        if !cancel.load(Ordering::Relaxed) {
            progress(done, total)
        }
    };
    let r = if hash {
        backup::check_whole_hashed(path, &mut progress).map(|(h, b)| (h, Some(b)))
    } else {
        backup::check_whole(path, &mut progress).map(|h| (h, None))
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::Io("restore cancelled".into()),
        });
    }
    r
}
