//! Chain of custody for a verified copy: proof that the bytes SQL Server restores are the bytes
//! the copy was verified with, from one BLAKE3 read before the restore and a file stamp after it.
//!
//! A read proves the content at that moment; a later write changes the inode's mtime and ctime.
//! So when the stamp taken before that read equals the stamp after the restore, nothing wrote to
//! the file in between, and a second read is not needed. The kernel stamps times from a clock
//! that ticks every 1 to 10 ms: a write in the same tick as the previous change can leave them
//! as they were. A stamp is therefore only trusted once the file's ctime is older than
//! [`SETTLE`] (a younger file is waited for), and where no stamp can be trusted (a clock set
//! back, a platform without ctime) the file is hashed again after the restore instead.
//!
//! The copy engine does better for the files it copies: a copy keeps its source's mtime, set
//! before it is read back; when that mtime is older than `SETTLE`, any write after it moves the
//! mtime, so the stamp taken after the rename vouches for what the verification read, and the
//! applier compares stamps without reading the file at all.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Longer than the coarsest kernel timestamp tick (10 ms at HZ=100).
pub const SETTLE: Duration = Duration::from_millis(15);

/// What identifies a file's content without reading it: any write changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    /// How long ago the last change was, by the wall clock; None if it is in the future.
    fn age(&self, now: SystemTime) -> Option<Duration> {
        let now_ns = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos() as i128;
        let age = now_ns - self.ctime_ns;
        (age >= 0).then(|| Duration::from_nanos(age.min(u64::MAX as i128) as u64))
    }
}

/// The file's stamp, once its last change is at least `SETTLE` old (waiting for that at most
/// once); None where a stamp cannot be trusted.
#[cfg(unix)]
pub fn settled_stamp(path: &Path) -> std::io::Result<Option<Stamp>> {
    for _ in 0..2 {
        let s = Stamp::of(&std::fs::metadata(path)?);
        match s.age(SystemTime::now()) {
            Some(age) if age >= SETTLE => return Ok(Some(s)),
            Some(age) => std::thread::sleep(SETTLE - age),
            // A change stamped in the future: the clock was set back. Trust a second read only.
            None => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(not(unix))]
pub fn settled_stamp(path: &Path) -> std::io::Result<Option<Stamp>> {
    std::fs::metadata(path).map(|_| None)
}

/// The file's stamp now, to compare with a settled one; None if it cannot be read.
pub fn stamp_now(path: &Path) -> Option<Stamp> {
    #[cfg(unix)]
    return std::fs::metadata(path).ok().map(|m| Stamp::of(&m));
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Whether the file still holds `want`: a read of every byte.
pub fn hash_matches(path: &Path, want: &blake3::Hash) -> std::io::Result<bool> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path)?)?;
    Ok(h.finalize() == *want)
}

/// Before a restore: waits for the file to settle, stamps it, then proves its content by
/// hashing it. Returns the stamp to compare after the restore (None: hash again then).
pub fn check_before(path: &Path, want: &blake3::Hash) -> Result<Option<Stamp>, String> {
    let reading = |e: std::io::Error| format!("reading {}: {e}", path.display());
    let stamp = settled_stamp(path).map_err(reading)?;
    if hash_matches(path, want).map_err(reading)? {
        Ok(stamp)
    } else {
        Err(format!(
            "{} changed after it was verified; run again to copy it again",
            path.display()
        ))
    }
}

/// [`check_before`], unless `vouched` still matches: a stamp taken before an earlier read that
/// proved the content (the copy engine's read-back, or a settled stamp before a hash), so
/// nothing is read again.
pub fn check_before_vouched(
    path: &Path,
    want: &blake3::Hash,
    vouched: Option<Stamp>,
) -> Result<Option<Stamp>, String> {
    if still_stamped(path, vouched) {
        Ok(vouched)
    } else {
        check_before(path, want)
    }
}

/// Whether `before` is a stamp and the file still has it: nothing can have written to it since.
/// One stat. After a restore, where this is false (no stamp, or it moved), only the content can
/// tell: [`hash_matches`].
pub fn still_stamped(path: &Path, before: Option<Stamp>) -> bool {
    before.is_some() && stamp_now(path) == before
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join("x.trn");
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn a_settled_stamp_waits_for_a_fresh_file() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), b"abc");
        let s = settled_stamp(&p).unwrap();
        if cfg!(unix) {
            let s = s.expect("a stamp on unix");
            // Old enough by the wall clock when returned, so a later write moves ctime.
            assert!(s.age(SystemTime::now()).unwrap() >= SETTLE);
        } else {
            assert!(s.is_none());
        }
    }

    #[test]
    fn any_write_after_the_check_is_seen_even_in_the_same_tick() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), b"0123456789");
        let want = blake3::hash(b"0123456789");
        let stamp = check_before(&p, &want).unwrap();
        assert_eq!(still_stamped(&p, stamp), cfg!(unix));
        // Same size, one byte flipped in place, at once (no time for the clock to tick twice).
        let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all(b"1").unwrap();
        drop(f);
        assert!(!still_stamped(&p, stamp));
        assert!(!hash_matches(&p, &want).unwrap());
        // Put back byte for byte: the stamp still differs, and the content matches again.
        std::fs::write(&p, b"0123456789").unwrap();
        assert!(!still_stamped(&p, stamp));
        assert!(
            hash_matches(&p, &want).unwrap(),
            "content is what counts when the stamp moved"
        );
    }

    #[test]
    fn a_changed_file_fails_the_check_before() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), b"good bytes");
        let e = check_before(&p, &blake3::hash(b"other bytes")).unwrap_err();
        assert!(e.contains("changed after it was verified"), "{e}");
        assert!(e.contains("x.trn"), "{e}");
        let e = check_before(&d.path().join("gone.trn"), &blake3::hash(b"")).unwrap_err();
        assert!(e.contains("gone.trn"), "{e}");
    }

    #[test]
    fn a_vouched_stamp_skips_the_read_only_while_it_matches() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), b"0123456789");
        let want = blake3::hash(b"0123456789");
        let Some(stamp) = stamp_now(&p) else {
            return; // no stamps on this platform: always hashed
        };
        // A wrong hash is not noticed while the stamp vouches: the stamp is the proof.
        let wrong = blake3::hash(b"something else");
        assert_eq!(
            check_before_vouched(&p, &wrong, Some(stamp)),
            Ok(Some(stamp))
        );
        // Once the file is written, the stamp no longer matches and the content is read.
        std::fs::write(&p, b"0123456780").unwrap();
        let e = check_before_vouched(&p, &want, Some(stamp)).unwrap_err();
        assert!(e.contains("changed after it was verified"), "{e}");
    }

    #[test]
    fn a_replaced_file_is_not_the_same_stamp() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), b"0123456789");
        let want = blake3::hash(b"0123456789");
        let stamp = check_before(&p, &want).unwrap();
        // Another file renamed over it, with other content of the same length.
        let q = d.path().join("y.trn");
        std::fs::write(&q, b"9876543210").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert!(!still_stamped(&p, stamp));
        assert!(!hash_matches(&p, &want).unwrap());
    }
}
