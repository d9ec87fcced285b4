//! Samples of one measurement: median and spread (min-max), and the timing helpers the bench
//! command and the `benches/` programs share.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Repeated measurements of one figure, in its unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Samples {
    pub values: Vec<f64>,
}

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    /// The median (the mean of the two middle values for an even count); 0 when empty.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Times `f`, which must succeed.
pub fn time<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<(T, Duration), E> {
    let t = Instant::now();
    let out = f()?;
    Ok((out, t.elapsed()))
}

/// Calls `f` (one pass over `items` items) until `min` has passed, and returns items per second.
/// Short passes are repeated so a fast figure is not a timer artefact.
pub fn rate_over(min: Duration, items: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut passes = 0u64;
    while passes == 0 || t.elapsed() < min {
        f();
        passes += 1;
    }
    (items as f64 * passes as f64) / t.elapsed().as_secs_f64()
}

/// Mebibytes per second.
pub fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-9)
}

/// Writes one byte in every page of `bytes` of fresh memory, then frees it, so a timed run that
/// fills the page cache finds pages in use rather than ones the host took back. Some VMs (this
/// project's Firecracker machines among them: free page reporting) hand freed memory back to the
/// host, and the first write to such a page is several times slower; without this, whichever
/// tool ran after a quiet spell would pay for it.
pub fn touch_memory(bytes: u64) {
    let mut v = vec![0u8; usize::try_from(bytes).unwrap_or(usize::MAX / 2)];
    v.iter_mut().step_by(4096).for_each(|b| *b = 1);
    std::hint::black_box(&v);
}

/// Whether `prog` is on PATH.
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(prog);
            p.is_file()
                && std::fs::metadata(&p)
                    .map(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.permissions().mode() & 0o111 != 0
                    })
                    .unwrap_or(false)
        })
    })
}

/// Runs `prog args...` with its output discarded; true when it exits 0. Arguments are passed as
/// they are (no shell), so paths need no quoting.
pub fn run_quiet(prog: &str, args: &[&std::ffi::OsStr]) -> bool {
    Command::new(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The regular files directly in `dir`, sorted (what `b3sum DIR/*` would hash).
pub fn files_in(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let cases: [(&[f64], f64, f64, f64); 4] = [
            (&[], 0.0, 0.0, 0.0),
            (&[3.0], 3.0, 3.0, 3.0),
            (&[5.0, 1.0, 3.0], 3.0, 1.0, 5.0),
            (&[4.0, 1.0, 2.0, 3.0], 2.5, 1.0, 4.0),
        ];
        for (values, median, min, max) in cases {
            let s = Samples {
                values: values.to_vec(),
            };
            assert_eq!(
                (s.median(), s.min(), s.max()),
                (median, min, max),
                "{values:?}"
            );
        }
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("logship-no-such-program"));
    }
}
