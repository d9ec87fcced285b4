//! Crash safety of `logship copy`: SIGKILL at seeded random points, check the copy folder after
//! each kill, re-run, and check that everything ends verified and nothing verified is copied again.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use logship::copy::Manifest;

const FILES: usize = 16;
const KILLS: usize = 24;
const KILLS_PER_CYCLE: usize = 4;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn copy_cmd(src: &Path, dest: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("logship"));
    c.args([
        "copy",
        "--no-progress",
        "-q",
        "--workers",
        "2",
        "--buffer-size",
        "16KiB",
        "--source",
    ])
    .arg(src)
    .arg("--dest")
    .arg(dest)
    // Documented test knob: 3 ms after each 16 KiB buffer, so a run lasts a few hundred ms.
    .env("LOGSHIP_COPY_THROTTLE_MS", "3");
    c
}

/// Every file under a final name equals its source, and every manifest entry matches its file.
fn check_folder(src: &Path, dest: &Path, when: &str) -> BTreeMap<String, String> {
    for e in fs::read_dir(dest).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.starts_with('.') {
            continue;
        }
        let want = fs::read(src.join(&name)).unwrap();
        let got = fs::read(dest.join(&name)).unwrap();
        assert!(
            got == want,
            "{when}: {name} under its final name differs from its source ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
    let m = Manifest::load(dest).unwrap_or_else(|e| panic!("{when}: manifest unreadable: {e}"));
    for (name, e) in &m.files {
        let got = fs::read(dest.join(name))
            .unwrap_or_else(|_| panic!("{when}: manifest lists absent {name}"));
        assert_eq!(
            blake3::hash(&got).to_hex().to_string(),
            e.blake3,
            "{when}: manifest hash of {name}"
        );
        assert_eq!(got.len() as u64, e.size, "{when}: manifest size of {name}");
    }
    m.files.into_iter().map(|(n, e)| (n, e.blake3)).collect()
}

#[test]
fn sigkill_at_random_points_never_leaves_a_partial_file_and_the_rerun_completes() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED_1095_41F0_0D15);
    // Real (synthetic) log backups: `logship copy` picks what to copy from their headers. Cycles
    // alternate between two shares: small logs (one read-back after the copy) and logs over 48
    // buffers (copied in pieces, each read back after an fsync, see the copy engine).
    let shares: Vec<tempfile::TempDir> = [48 * 1024 + rng.next() % (352 * 1024), 800 * 1024]
        .into_iter()
        .map(|log_size| {
            let s = tempfile::tempdir().unwrap();
            let mut spec = logship::backup::share::ShareSpec::new(s.path(), "mgc");
            spec.logs = FILES as u32;
            spec.log_size = log_size;
            logship::backup::share::write_share(&spec).unwrap();
            s
        })
        .collect();
    let mut mid_run = 0;
    for k in 0..KILLS {
        let s = &shares[(k / KILLS_PER_CYCLE) % shares.len()];
        let mut child = copy_cmd(s.path(), d.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next() % 201));
        if child.try_wait().unwrap().is_none() {
            mid_run += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        check_folder(s.path(), d.path(), &format!("after kill {k}"));

        if k % KILLS_PER_CYCLE == KILLS_PER_CYCLE - 1 {
            let verified_before = check_folder(s.path(), d.path(), "before the re-run");
            let out = copy_cmd(s.path(), d.path()).arg("--json").output().unwrap();
            assert!(
                out.status.success(),
                "re-run: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let copied: Vec<&str> = j["copied"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for n in &copied {
                assert!(
                    !verified_before.contains_key(*n),
                    "{n} was verified before the re-run, yet copied again"
                );
            }
            let total = j["files_copied"].as_u64().unwrap()
                + j["files_skipped"].as_u64().unwrap()
                + j["files_verified_by_hash"].as_u64().unwrap();
            assert_eq!(total, FILES as u64, "{j}");
            assert_eq!(
                j["files_skipped"].as_u64().unwrap(),
                verified_before.len() as u64,
                "{j}"
            );
            let after = check_folder(s.path(), d.path(), "after the re-run");
            assert_eq!(after.len(), FILES, "every file present and in the manifest");
            let leftovers: Vec<_> = fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".logship-part"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
            // A new cycle starts from an empty copy folder.
            for e in fs::read_dir(d.path()).unwrap() {
                fs::remove_file(e.unwrap().path()).unwrap();
            }
        }
    }
    eprintln!("{mid_run} of {KILLS} kills landed while the copy was running");
}
