//! Progress of a copy as a trait the engine reports to (workers report bytes in batches), and the
//! throughput/ETA arithmetic the displays share.

use std::time::Duration;

/// Receives progress from the copy workers. Called from several threads at once.
pub trait CopyProgress: Sync {
    /// Before any work: the jobs and their total bytes (including files that will be skipped).
    fn begin(&self, _files: u64, _bytes: u64) {}
    /// A worker starts on a file (to skip, check or copy it).
    fn file_started(&self, _name: &str) {}
    /// More source bytes are done (copied, hash-checked, or skipped as already verified).
    /// Workers batch these (a few MiB at a time), so this is cheap to lock.
    fn bytes(&self, _n: u64) {}
    /// A file ended: verified, skipped or failed.
    fn file_done(&self, _name: &str, _ok: bool) {}
    /// All workers are done.
    fn end(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl CopyProgress for NoProgress {}

/// Throughput and ETA from totals and the elapsed time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateMeter {
    pub total_bytes: u64,
    pub done_bytes: u64,
}

impl RateMeter {
    /// Bytes per second so far (0 before any time has passed).
    pub fn rate(&self, elapsed: Duration) -> f64 {
        let s = elapsed.as_secs_f64();
        if s > 0.0 {
            self.done_bytes as f64 / s
        } else {
            0.0
        }
    }

    /// Time left at the rate so far; `None` until something is done.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        let rate = self.rate(elapsed);
        if rate <= 0.0 {
            return None;
        }
        let left = self.total_bytes.saturating_sub(self.done_bytes) as f64;
        Some(Duration::from_secs_f64(left / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta() {
        let cases = [
            (100, 0, 10, 0.0, None),
            (100, 50, 10, 5.0, Some(10)),
            (100, 100, 10, 10.0, Some(0)),
            (100, 50, 0, 0.0, None),
            (100, 150, 10, 15.0, Some(0)),
        ];
        for (total, done, secs, rate, eta) in cases {
            let m = RateMeter {
                total_bytes: total,
                done_bytes: done,
            };
            let e = Duration::from_secs(secs);
            assert_eq!(m.rate(e), rate, "{total} {done} {secs}");
            assert_eq!(m.eta(e).map(|d| d.as_secs()), eta, "{total} {done} {secs}");
        }
    }
}
