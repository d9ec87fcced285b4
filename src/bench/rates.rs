//! The rates the last bench measured, kept in a small JSON file, and the catch-up estimate
//! `logship plan` derives from them.
//!
//! Where: `$LOGSHIP_RATES` when set, else `$XDG_CACHE_HOME/logship/rates.json`, else
//! `~/.cache/logship/rates.json`. `logship bench` writes it; `--source/--dest` runs replace the
//! copy and header rates (measured on the real share) and keep the apply rates.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// Copy throughput, with where it was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyRate {
    /// Verified copy (the default mode), MiB/s of source.
    pub mib_per_s: f64,
    /// What was measured, e.g. "logship bench: 60 generated logs of 4 MiB in /var/tmp/...".
    pub source: String,
    /// Seconds since the Unix epoch.
    pub measured_at: u64,
}

/// Apply throughput: a fixed cost per log (round trips, the restore's start and end) plus bytes
/// at the restore rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplyRate {
    pub mib_per_s: f64,
    pub seconds_per_log: f64,
    pub source: String,
    pub measured_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub copy: CopyRate,
    pub apply: Option<ApplyRate>,
    /// Native header reads per second (rayon).
    pub headers_per_s: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RatesError {
    #[error("cannot read the measured rates {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the measured rates {} are not valid JSON for this version", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the measured rates {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The rates file: `$LOGSHIP_RATES`, the XDG cache folder, or `~/.cache`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LOGSHIP_RATES").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("logship").join("rates.json"))
}

/// The rates at `path`; `Ok(None)` when no bench has written them yet.
pub fn load(path: &Path) -> Result<Option<Rates>, RatesError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RatesError::Read {
                path: path.into(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| RatesError::Parse {
            path: path.into(),
            source,
        })
}

/// Writes the rates atomically (temporary file, then rename).
pub fn save(path: &Path, rates: &Rates) -> Result<(), RatesError> {
    let io = |source| RatesError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("json.logship-tmp");
    let text = serde_json::to_string_pretty(rates).expect("rates serialize");
    std::fs::write(&tmp, text + "\n").map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// How long catch-up of a plan should take at the given rates. An estimate, not a promise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub seconds: f64,
    pub copy_seconds: f64,
    pub apply_seconds: f64,
    pub copy_mib_per_s: f64,
    pub apply_mib_per_s: Option<f64>,
    pub apply_seconds_per_log: Option<f64>,
    /// Where the rates came from (the rates file and what each rate measured).
    pub rates_file: Option<PathBuf>,
    pub copy_source: String,
    pub apply_source: Option<String>,
    pub measured_at: u64,
}

/// The pipeline model: copy and apply overlap, so the time is the longer of (all copies, then
/// the last log's restore) and (the first copy, then every restore). Without an apply rate only
/// the copy is estimated.
pub fn estimate(plan: &Plan, rates: &Rates, rates_file: Option<&Path>) -> Estimate {
    const MIB: f64 = 1024.0 * 1024.0;
    let copy_rate = rates.copy.mib_per_s.max(1e-6);
    let copy_s = plan.bytes_to_copy() as f64 / MIB / copy_rate;
    // The applier waits for the first log only when it is not in the copy folder yet.
    let first_copy_s = plan
        .to_apply
        .first()
        .filter(|l| !l.copied)
        .map(|l| l.size as f64 / MIB / copy_rate)
        .unwrap_or(0.0);
    let (apply_s, last_apply_s) = match &rates.apply {
        Some(a) => {
            let one = |size: u64| a.seconds_per_log + size as f64 / MIB / a.mib_per_s.max(1e-6);
            // fold from +0.0: an empty sum of floats is -0.0, which prints as "-0.0 s".
            let all = plan
                .to_apply
                .iter()
                .map(|l| one(l.size))
                .fold(0.0, |a, b| a + b);
            let last = plan.to_apply.last().map(|l| one(l.size)).unwrap_or(0.0);
            (all, last)
        }
        None => (0.0, 0.0),
    };
    let seconds = (copy_s + last_apply_s).max(first_copy_s + apply_s);
    Estimate {
        seconds,
        copy_seconds: copy_s,
        apply_seconds: apply_s,
        copy_mib_per_s: rates.copy.mib_per_s,
        apply_mib_per_s: rates.apply.as_ref().map(|a| a.mib_per_s),
        apply_seconds_per_log: rates.apply.as_ref().map(|a| a.seconds_per_log),
        rates_file: rates_file.map(Path::to_path_buf),
        copy_source: rates.copy.source.clone(),
        apply_source: rates.apply.as_ref().map(|a| a.source.clone()),
        measured_at: rates.copy.measured_at.max(
            rates
                .apply
                .as_ref()
                .map(|a| a.measured_at)
                .unwrap_or_default(),
        ),
    }
}

/// Seconds since the Unix epoch, for `measured_at`.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsn::Lsn;
    use crate::plan::PlannedLog;

    fn plan(sizes: &[(u64, bool)]) -> Plan {
        let to_apply = sizes
            .iter()
            .enumerate()
            .map(|(i, &(size, copied))| PlannedLog {
                name: format!("l{i}"),
                path: PathBuf::from(format!("/c/l{i}")),
                source: Some(PathBuf::from(format!("/s/l{i}"))),
                position: 1,
                first_lsn: Lsn::new(40, i as u32 * 10 + 1, 1),
                last_lsn: Lsn::new(40, i as u32 * 10 + 11, 1),
                size,
                backup_set_guid: uuid::Uuid::from_u128(i as u128),
                copied,
            })
            .collect::<Vec<_>>();
        let to_copy = to_apply
            .iter()
            .filter(|l| !l.copied)
            .map(|l| crate::plan::PlannedCopy {
                name: l.name.clone(),
                source: l.source.clone().unwrap(),
                dest: l.path.clone(),
                size: l.size,
                first_lsn: l.first_lsn,
                last_lsn: l.last_lsn,
            })
            .collect();
        Plan {
            database: "mgc".into(),
            redo_lsn: None,
            to_copy,
            to_apply,
            skipped: vec![],
            gaps: vec![],
            final_lsn: None,
        }
    }

    fn rates(copy: f64, apply: Option<(f64, f64)>) -> Rates {
        Rates {
            copy: CopyRate {
                mib_per_s: copy,
                source: "test".into(),
                measured_at: 1,
            },
            apply: apply.map(|(mib_per_s, seconds_per_log)| ApplyRate {
                mib_per_s,
                seconds_per_log,
                source: "test".into(),
                measured_at: 2,
            }),
            headers_per_s: None,
        }
    }

    #[test]
    fn pipeline_model() {
        const M: u64 = 1 << 20;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // (logs, rates, expected seconds)
        type Case<'a> = (&'a [(u64, bool)], Rates, f64);
        let cases: [Case; 5] = [
            // Copy-bound: 10 s of copy, then the last restore (1 s).
            (&[(10 * M, false); 10], rates(10.0, Some((10.0, 0.0))), 11.0),
            // Apply-bound: the first copy (0.1 s), then ten restores of 2 s + 0.5 s.
            (&[(10 * M, false); 10], rates(100.0, Some((5.0, 0.5))), 25.1),
            // Everything already copied: apply only.
            (&[(10 * M, true); 4], rates(100.0, Some((10.0, 0.0))), 4.0),
            // No apply rate: copy only.
            (&[(10 * M, false); 4], rates(10.0, None), 4.0),
            // Nothing to do.
            (&[], rates(10.0, Some((10.0, 1.0))), 0.0),
        ];
        for (i, (logs, r, want)) in cases.into_iter().enumerate() {
            let e = estimate(&plan(logs), &r, None);
            assert!(close(e.seconds, want), "case {i}: {} != {want}", e.seconds);
        }
    }

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("rates.json");
        assert_eq!(load(&path).unwrap(), None);
        let r = rates(123.5, Some((40.0, 0.02)));
        save(&path, &r).unwrap();
        assert_eq!(load(&path).unwrap(), Some(r));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(load(&path), Err(RatesError::Parse { .. })));
    }
}
