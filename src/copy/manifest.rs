//! The manifest of verified files in the copy folder (`.logship-manifest.json`): what it records,
//! how it is read, and how it is written atomically (temp, fsync, rename, folder fsync).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::VerifiedBy;

/// File name of the manifest in the copy folder.
pub const MANIFEST_NAME: &str = ".logship-manifest.json";
const MANIFEST_TMP: &str = ".logship-manifest.json.tmp";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("manifest {} is not valid: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("cannot write manifest {}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// One verified file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub size: u64,
    /// The copy's mtime (set from the source's) in nanoseconds since 1970; a different mtime on
    /// disk means the file was touched after verification, so the entry no longer vouches for it.
    pub mtime_ns: u64,
    /// BLAKE3 of the content, lowercase hex.
    pub blake3: String,
    /// When it was verified, seconds since 1970.
    pub verified_at: u64,
    pub verify: VerifiedBy,
}

/// All verified files of a copy folder, by file name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub files: BTreeMap<String, ManifestEntry>,
}

impl Manifest {
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_NAME)
    }

    /// Reads the manifest of `dir`; an absent manifest is an empty one.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = Self::path_in(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Manifest {
                    version: VERSION,
                    files: BTreeMap::new(),
                })
            }
            Err(source) => return Err(ManifestError::Read { path, source }),
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| ManifestError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if m.version != VERSION {
            return Err(ManifestError::Parse {
                path,
                message: format!("unknown version {}", m.version),
            });
        }
        Ok(m)
    }

    /// The entry vouching for `name` if it still matches what is on disk (size and mtime).
    pub fn verified(&self, name: &str, size: u64, mtime_ns: u64) -> Option<&ManifestEntry> {
        self.files
            .get(name)
            .filter(|e| e.size == size && e.mtime_ns == mtime_ns)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        v.push(b'\n');
        v
    }

    /// Writes the manifest into `dir` atomically: a crash leaves the old or the new one, whole.
    pub fn save(&self, dir: &Path) -> Result<(), ManifestError> {
        write_atomic(dir, &self.to_json())
    }
}

/// Writes already serialized manifest bytes into `dir` atomically.
pub fn write_atomic(dir: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
    let tmp = dir.join(MANIFEST_TMP);
    let fin = dir.join(MANIFEST_NAME);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &fin)?;
        sync_dir(dir)
    })();
    res.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        ManifestError::Write { path: fin, source }
    })
}

/// Removes a manifest temp left by a crash.
pub fn remove_leftover_tmp(dir: &Path) {
    let _ = fs::remove_file(dir.join(MANIFEST_TMP));
}

/// fsync a folder so a rename in it is durable. A no-op where folders cannot be opened (Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Nanoseconds since 1970 (0 before it), the manifest's mtime unit.
pub fn to_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, mtime_ns: u64) -> ManifestEntry {
        ManifestEntry {
            size,
            mtime_ns,
            blake3: "ab".into(),
            verified_at: 1,
            verify: VerifiedBy::Reread,
        }
    }

    #[test]
    fn verified_needs_same_size_and_mtime() {
        let mut m = Manifest::default();
        m.files.insert("a.trn".into(), entry(10, 5));
        let cases = [
            ("a.trn", 10, 5, true),
            ("a.trn", 11, 5, false),
            ("a.trn", 10, 6, false),
            ("b.trn", 10, 5, false),
        ];
        for (name, size, mtime, want) in cases {
            assert_eq!(
                m.verified(name, size, mtime).is_some(),
                want,
                "{name} {size} {mtime}"
            );
        }
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap().files.len(), 0);
        let mut m = Manifest {
            version: VERSION,
            files: BTreeMap::new(),
        };
        m.files.insert("x.trn".into(), entry(3, 9));
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        assert!(!dir.path().join(MANIFEST_TMP).exists());
    }

    #[test]
    fn corrupt_manifest_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(MANIFEST_NAME), b"{not json").unwrap();
        let err = Manifest::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(MANIFEST_NAME), "{err}");
    }
}
