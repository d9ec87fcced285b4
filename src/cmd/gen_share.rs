//! `logship gen-share`: writes a share of format-faithful synthetic backups and prints what it
//! wrote (files, bytes, LSN range), or the whole summary as JSON.

use anyhow::Context;

use crate::backup::synth::{write_share, FileRole, ShareSpec, ShareSummary};
use crate::cli::{GenShareArgs, GlobalArgs};
use crate::config::parse_size;
use crate::lsn::Lsn;

use super::{usage, Status};

/// The flags, validated into a share specification.
pub fn spec(a: &GenShareArgs) -> anyhow::Result<ShareSpec> {
    let mut s = ShareSpec::new(&a.dir, &a.database);
    s.logs = a.logs;
    s.log_size = parse_size(&a.log_size).map_err(|m| usage(format!("--log-size: {m}")))?;
    s.full_size = parse_size(&a.full_size).map_err(|m| usage(format!("--full-size: {m}")))?;
    if let Some(l) = &a.start_lsn {
        s.start_lsn = l
            .parse::<Lsn>()
            .map_err(|e| usage(format!("--start-lsn: {e}")))?;
    }
    s.gap_after = a.gap_after;
    s.empty_after = a.empty_after;
    s.duplicate = a.duplicate;
    s.foreign = a.foreign;
    s.incomplete_last = a.incomplete_last;
    s.wrk = a.wrk;
    s.with_full = a.with_full;
    s.seed = a.seed;
    Ok(s)
}

pub fn run(_g: &GlobalArgs, a: &GenShareArgs) -> anyhow::Result<Status> {
    let spec = spec(a)?;
    let summary = match write_share(&spec) {
        Err(crate::backup::synth::ShareError::Invalid(m)) => return Err(usage(m)),
        r => r.with_context(|| format!("writing the share in {}", spec.dir.display()))?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", describe(&summary));
    }
    Ok(Status::Done)
}

/// The human summary: one line per file that is not a plain log, then the totals.
pub fn describe(s: &ShareSummary) -> String {
    let mut out = String::new();
    let logs = s.files.iter().filter(|f| f.role == FileRole::Log).count();
    for f in s.files.iter().filter(|f| f.role != FileRole::Log) {
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let h = &f.header;
        out.push_str(&format!(
            "{:<13} {name}  {} .. {}\n",
            serde_json::to_value(f.role)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            h.first_lsn,
            h.last_lsn
        ));
    }
    for (a, b) in &s.missing {
        out.push_str(&format!("{:<13} (not written)  {a} .. {b}\n", "gap"));
    }
    out.push_str(&format!(
        "wrote {} files ({} logs), {} bytes ({:.1} MiB) in {}\nlog chain of {}: {} .. {}\n",
        s.files.len(),
        logs,
        s.bytes,
        s.bytes as f64 / (1u64 << 20) as f64,
        s.dir.display(),
        s.database,
        s.first_lsn,
        s.last_lsn
    ));
    out
}
