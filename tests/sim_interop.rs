//! The simulator from two clients nobody here wrote: FreeTDS `tsql` and python-tds (Debian's
//! python3-tds, run with /usr/bin/python3). Each connects, lists databases, runs RESTORE
//! HEADERONLY and RESTORE LOG on a generated backup file, and gets the error for a gap. The simulator runs
//! as the real binary (`logship sim init`, then `logship sim --listen 127.0.0.1:0`).
//! Missing clients: skipped with a message, or a failure when LOGSHIP_REQUIRE_INTEROP=1.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use logship::lsn::Lsn;

const PASSWORD: &str = "interop-Pw1";

fn require() -> bool {
    std::env::var("LOGSHIP_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn missing(what: &str) {
    if require() {
        panic!("{what} is missing and LOGSHIP_REQUIRE_INTEROP=1");
    }
    eprintln!("skipped: {what} is missing");
}

/// Three generated log backups of `mgc` in a chain from 40:1:1 (the scenario's redo LSN):
/// the first is applied, the third (after a gap) is refused with 4305.
fn generated(dir: &Path) -> [PathBuf; 3] {
    use logship::backup::synth::SynthBackup;
    use logship::backup::MtfDate;
    let lsns = [
        Lsn::new(40, 1, 1),
        Lsn::new(41, 100, 1),
        Lsn::new(42, 100, 1),
        Lsn::new(43, 100, 1),
    ];
    let mut out = Vec::new();
    for i in 0..3 {
        let start = MtfDate::from_unix(1_767_571_200 + 300 * i as u64);
        let b = SynthBackup::log("mgc", lsns[i], lsns[i + 1], start, 7 + i as u64);
        let p = dir.join(format!("mgc_{}.trn", start.compact()));
        b.write_to(&mut std::fs::File::create(&p).unwrap()).unwrap();
        out.push(p);
    }
    out.try_into().unwrap()
}

/// A `logship sim` child process serving a fresh scenario; killed on drop.
struct SimProcess {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SimProcess {
    fn start() -> SimProcess {
        let dir = tempfile::tempdir().unwrap();
        let bin = assert_cmd::cargo::cargo_bin("logship");
        let st = Command::new(&bin)
            .args([
                "sim",
                "init",
                "--database",
                "mgc",
                "--redo-lsn",
                "40000000000100001",
                "--state",
            ])
            .arg(dir.path())
            .env("LOGSHIP_SIM_PASSWORD", PASSWORD)
            .status()
            .unwrap();
        assert!(st.success());
        let (child, port) = common::spawn_sim(dir.path(), "127.0.0.1:0");
        SimProcess { child, port, dir }
    }

    fn history(&self) -> Vec<String> {
        let st = logship::sim::state::load(self.dir.path()).unwrap();
        st.history
            .iter()
            .map(|h| {
                Path::new(&h.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn freetds_tsql() {
    if Command::new("tsql").arg("-C").output().is_err() {
        return missing("FreeTDS tsql (Debian freetds-bin)");
    }
    let sim = SimProcess::start();
    let [log1, _, gap] = generated(sim.dir.path());
    let script = format!(
        "{PASSWORD}\nSELECT name, state_desc, is_in_standby FROM sys.databases\ngo\n\
         RESTORE HEADERONLY FROM DISK = N'{}'\ngo\n\
         RESTORE LOG [mgc] FROM DISK = N'{}' WITH NORECOVERY, STATS = 25\ngo\n\
         RESTORE LOG [mgc] FROM DISK = N'{}' WITH NORECOVERY\ngo\nexit\n",
        log1.display(),
        log1.display(),
        gap.display()
    );
    let mut child = Command::new("tsql")
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &sim.port.to_string(),
            "-U",
            "failover",
            "-o",
            "q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mgc\tRESTORING\t0"), "{text}");
    assert!(text.contains("master\tONLINE\t0"), "{text}");
    assert!(
        text.contains("BackupName\tBackupDescription\tBackupType"),
        "{text}"
    );
    assert!(text.contains("\tSQL01\tmgc\t852\t"), "{text}");
    assert!(
        text.contains("40000000000100001\t41000000010000001"),
        "{text}"
    );
    assert!(text.contains("25 percent processed."), "{text}");
    assert!(
        text.contains("RESTORE LOG successfully processed 13 pages"),
        "{text}"
    );
    assert!(text.contains("Msg 4305 (severity 16"), "{text}");
    assert!(
        text.contains("which is too recent to apply to the database"),
        "{text}"
    );
    assert_eq!(sim.history(), [name(&log1)]);
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

const PY: &str = r#"
import os, sys, pytds
port = int(sys.argv[1]); log1 = sys.argv[2]; gap = sys.argv[3]
with pytds.connect(server='127.0.0.1', port=port, user='failover', password=os.environ['SIM_PW'],
                   autocommit=True, database='master') as conn:
    cur = conn.cursor()
    cur.execute("SELECT name, state_desc, is_in_standby FROM sys.databases")
    print("DBS", cur.fetchall())
    lsn = "SELECT redo_start_lsn, redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(%s) AND file_id = 1"
    cur.execute(lsn, ('mgc',))
    print("REDO", cur.fetchall()[0][0])
    cur.execute("RESTORE HEADERONLY FROM DISK = %s", (log1,))
    row = cur.fetchall()[0]
    cols = [c[0] for c in cur.description]
    print("HDR", row[cols.index('BackupType')], row[cols.index('FirstLSN')], row[cols.index('LastLSN')], row[cols.index('DatabaseName')])
    cur.execute("RESTORE LOG [mgc] FROM DISK = %s WITH NORECOVERY, STATS = 10", (log1,))
    cur.execute(lsn, ('mgc',))
    print("REDO", cur.fetchall()[0][0])
    try:
        cur.execute("RESTORE LOG [mgc] FROM DISK = %s WITH NORECOVERY", (gap,))
        print("NOERROR")
    except pytds.tds_base.OperationalError as e:
        print("ERR", str(e).replace("\n", " "))
    cur.execute("SELECT * FROM msdb.dbo.log_shipping_secondary")
    print("LS", len(cur.fetchall()))
    cur.callproc('master.dbo.sp_delete_log_shipping_secondary_database', ('mgc',))
    cur.execute("SELECT * FROM msdb.dbo.log_shipping_secondary")
    print("LS", len(cur.fetchall()))
"#;

#[test]
fn python_tds() {
    let py = Path::new("/usr/bin/python3");
    let has = Command::new(py)
        .args(["-c", "import pytds"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        return missing("python-tds for /usr/bin/python3 (Debian python3-tds)");
    }
    let sim = SimProcess::start();
    let [log1, _, gap] = generated(sim.dir.path());
    let out = Command::new(py)
        .args(["-c", PY, &sim.port.to_string()])
        .arg(&log1)
        .arg(&gap)
        .env("SIM_PW", PASSWORD)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("('mgc', 'RESTORING', False)"), "{text}");
    assert!(text.contains("REDO 40000000000100001"), "{text}");
    assert!(
        text.contains("HDR 2 40000000000100001 41000000010000001 mgc"),
        "{text}"
    );
    assert!(text.contains("REDO 41000000010000001"), "{text}");
    assert!(
        text.contains("ERR ") && text.contains("which is too recent to apply to the database"),
        "{text}"
    );
    assert!(
        text.contains("LS 1\nLS 0"),
        "callproc removed log shipping: {text}"
    );
    assert_eq!(sim.history(), [name(&log1)]);
}
