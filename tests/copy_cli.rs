//! `logship copy` as a program: the JSON summary, exit statuses, and the faults an operator meets
//! (destination full, missing or read-only; a source it may not read).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("logship")
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn share(dir: &Path, n: usize, size: usize) {
    for i in 0..n {
        fs::write(
            dir.join(format!("mgc_{i:03}.trn")),
            bytes(i as u64 + 7, size),
        )
        .unwrap();
    }
    fs::write(dir.join("mgc_999.wrk"), b"in flight").unwrap();
}

fn copy(src: &Path, dest: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(bin())
        .args(["copy", "--json", "--no-progress", "--source"])
        .arg(src)
        .arg("--dest")
        .arg(dest)
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn mount(dir: &Path, opts: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .status()
            .ok()?
            .success();
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn final_names(dest: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn json_summary_then_a_rerun_that_copies_and_reads_nothing() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    share(s.path(), 5, 150_000);
    let (out, j) = copy(s.path(), d.path(), &["--workers", "2", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(j["files_copied"], 5);
    assert_eq!(j["bytes"], 750_000);
    assert_eq!(j["verify"], "reread");
    assert_eq!(j["files_failed"], 0);
    assert!(j["mib_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(
        final_names(d.path()),
        (0..5)
            .map(|i| format!("mgc_{i:03}.trn"))
            .collect::<Vec<_>>()
    );
    for i in 0..5 {
        let n = format!("mgc_{i:03}.trn");
        assert_eq!(
            fs::read(s.path().join(&n)).unwrap(),
            fs::read(d.path().join(&n)).unwrap()
        );
    }
    let (out, j) = copy(s.path(), d.path(), &["--verify", "inline"]);
    assert!(out.status.success());
    assert_eq!(
        (
            j["files_copied"].as_u64(),
            j["files_skipped"].as_u64(),
            j["content_reads"].as_u64()
        ),
        (Some(0), Some(5), Some(0))
    );
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let s = tempfile::tempdir().unwrap();
    share(s.path(), 1, 10);
    let missing = s.path().join("no-such-folder");
    for (args, needle) in [
        (vec!["--dest", missing.to_str().unwrap()], "does not exist"),
        (
            vec!["--dest", s.path().to_str().unwrap(), "--verify", "fast"],
            "unknown verify mode",
        ),
        (
            vec!["--dest", s.path().to_str().unwrap(), "--workers", "0"],
            "at least 1",
        ),
    ] {
        let out = Command::new(bin())
            .args(["copy", "--source"])
            .arg(s.path())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_read_only_destination_is_refused_up_front_naming_it() {
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    share(s.path(), 2, 1000);
    let _guard;
    if is_root() {
        let Some(m) = Tmpfs::mount(d.path(), "size=1m,ro") else {
            eprintln!("SKIP: cannot mount a tmpfs here");
            return;
        };
        _guard = m;
    } else {
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o555)).unwrap();
    }
    let (out, _) = copy(s.path(), d.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "destination folder {} is not writable",
            d.path().display()
        )),
        "{err}"
    );
    assert!(
        err.contains("Read-only file system") || err.contains("Permission denied"),
        "{err}"
    );
}

#[test]
fn a_full_destination_fails_the_files_that_do_not_fit_and_keeps_the_rest() {
    if !is_root() {
        eprintln!("SKIP: ENOSPC test needs root to mount a small tmpfs");
        return;
    }
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    share(s.path(), 5, 700 << 10);
    let Some(_m) = Tmpfs::mount(d.path(), "size=2m") else {
        eprintln!("SKIP: cannot mount a tmpfs here");
        return;
    };
    let (out, j) = copy(s.path(), d.path(), &["--workers", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let copied = j["files_copied"].as_u64().unwrap();
    let failed = j["failed"].as_array().unwrap();
    assert!(copied >= 1 && !failed.is_empty(), "{j}");
    assert_eq!(
        copied as usize + failed.len(),
        5,
        "every file is accounted for: {j}"
    );
    for f in failed {
        let (name, msg) = (f["name"].as_str().unwrap(), f["error"].as_str().unwrap());
        assert!(
            msg.contains(name) && msg.contains("No space left on device"),
            "{msg}"
        );
        assert!(err.contains(msg), "each failure is on stderr too: {err}");
    }
    let present = final_names(d.path());
    assert_eq!(present.len() as u64, copied);
    for n in &present {
        assert_eq!(
            fs::read(s.path().join(n)).unwrap(),
            fs::read(d.path().join(n)).unwrap(),
            "{n}"
        );
    }
    let hidden: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".logship-part"))
        .collect();
    assert!(hidden.is_empty(), "temporary files are removed: {hidden:?}");
    let manifest = logship::copy::Manifest::load(d.path()).unwrap();
    assert_eq!(manifest.files.keys().cloned().collect::<Vec<_>>(), present);
}

/// Root reads every file whatever its mode, so as root the program runs as `nobody` (uid 65534),
/// as a service account would; one source is mode 000.
#[test]
fn a_source_it_may_not_read_fails_by_name_and_the_others_are_copied() {
    use std::os::unix::process::CommandExt;
    let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    share(s.path(), 3, 20_000);
    let locked = s.path().join("mgc_001.trn");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["copy", "--json", "--source"])
        .arg(s.path())
        .arg("--dest")
        .arg(d.path());
    if is_root() {
        std::os::unix::fs::chown(d.path(), Some(65534), Some(65534)).unwrap();
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["files_copied"], 2, "{j}");
    let msg = j["failed"][0]["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("cannot open source {}", locked.display())),
        "{msg}"
    );
    assert!(msg.contains("Permission denied"), "{msg}");
    assert_eq!(final_names(d.path()), vec!["mgc_000.trn", "mgc_002.trn"]);
}
