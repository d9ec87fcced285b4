//! Runs one script in the configured shell: the program, its arguments and the script last (or
//! its `-EncodedCommand` form), stdout and stderr captured, a timeout that kills the child, and
//! the exit status and the error stream both checked.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::quote::encode_command;
use super::script::Script;
use super::ChatError;

/// How long to wait for the output pipes after the child is gone: a grandchild may hold them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// The shell that runs the cmdlets, e.g. `powershell.exe -NoProfile -NonInteractive -Command`.
#[derive(Clone, Debug)]
pub struct Shell {
    argv: Vec<String>,
    timeout: Duration,
}

/// What a successful script printed.
#[derive(Clone, Debug, Default)]
pub struct ShellOutput {
    pub stdout: String,
    pub stderr: String,
}

impl Shell {
    /// `argv` is the program and its leading arguments (not empty: `ChatSettings` checks).
    pub fn new(argv: Vec<String>, timeout: Duration) -> Shell {
        Shell { argv, timeout }
    }

    /// When the last configured argument is `-EncodedCommand` (or `-ec`/`-e`), the script goes
    /// as base64 of UTF-16LE: no command-line quoting on Windows can then touch it.
    pub fn encoded(&self) -> bool {
        self.argv.last().is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            a == "-encodedcommand" || a == "-ec" || a == "-e"
        })
    }

    /// The full command line for a script, as it will be run.
    pub fn command_line(&self, script: &Script) -> Vec<String> {
        let mut argv = self.argv.clone();
        argv.push(if self.encoded() {
            encode_command(&script.text)
        } else {
            script.text.clone()
        });
        argv
    }

    /// Runs the script; an error unless it exits 0 with nothing on the error stream.
    pub fn run(&self, script: &Script) -> Result<ShellOutput, ChatError> {
        let argv = self.command_line(script);
        let cmdlet = script.cmdlet.to_string();
        let _span = tracing::info_span!("cmdlet", cmdlet = %cmdlet).entered();
        tracing::debug!(script = %script.text, "running");
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ChatError::Spawn {
                cmdlet: cmdlet.clone(),
                program: argv[0].clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        let readers = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for (which, pipe) in readers.into_iter().enumerate() {
            let tx = tx.clone();
            if let Some(mut pipe) = pipe {
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    let res = pipe.read_to_end(&mut buf).map(|_| buf);
                    let _ = tx.send((which, res));
                });
            }
        }
        drop(tx);

        let status = match wait_with_deadline(&mut child, self.timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                // Kill and reap; the error keeps whatever the shell had said so far.
                let _ = child.kill();
                let _ = child.wait();
                let (_, err) = collect(&rx, PIPE_GRACE);
                return Err(ChatError::Timeout {
                    cmdlet,
                    secs: self.timeout.as_secs(),
                    stderr: err,
                });
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ChatError::Io { cmdlet, source });
            }
        };
        let (stdout, stderr) = collect(&rx, PIPE_GRACE);
        let stderr = error_text(&stderr);
        tracing::debug!(%status, stdout = %stdout.trim(), stderr = %stderr.trim(), "shell finished");
        if !status.success() {
            let status = match status.code() {
                Some(c) => format!("exit status {c}"),
                None => format!("ended by {status}"),
            };
            return Err(ChatError::Failed {
                cmdlet,
                status,
                stderr,
            });
        }
        if !stderr.trim().is_empty() {
            return Err(ChatError::Failed {
                cmdlet,
                status: "exit status 0 but errors were written".into(),
                stderr,
            });
        }
        Ok(ShellOutput { stdout, stderr })
    }
}

/// Waits for the child until the deadline; `None` when it is still running then. Polling
/// `try_wait` is portable (no signals, no handles) and the cmdlets take seconds, not microseconds.
fn wait_with_deadline(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Gathers both pipes (index 0 stdout, 1 stderr) until they close or the grace time passes.
fn collect(
    rx: &mpsc::Receiver<(usize, std::io::Result<Vec<u8>>)>,
    grace: Duration,
) -> (String, String) {
    let mut out = [String::new(), String::new()];
    let deadline = Instant::now() + grace;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((which, Ok(bytes))) => out[which] = String::from_utf8_lossy(&bytes).into_owned(),
            Ok((which, Err(e))) => out[which] = format!("(output could not be read: {e})"),
            Err(_) => break,
        }
    }
    let [o, e] = out;
    (o, e)
}

/// The error text in what the shell wrote to stderr. powershell.exe writes CLIXML there in some
/// modes (`#< CLIXML` then `<Objs>`); only its `<S S="Error">` records are errors (progress and
/// verbose records are not).
pub fn error_text(stderr: &str) -> String {
    let Some(xml) = stderr.trim_start().strip_prefix("#< CLIXML") else {
        return stderr.to_string();
    };
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<S S=\"Error\">") {
        rest = &rest[i + "<S S=\"Error\">".len()..];
        let end = rest.find("</S>").unwrap_or(rest.len());
        out.push_str(&unescape_clixml(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

/// XML entities, then CLIXML's `_xHHHH_` character escapes.
fn unescape_clixml(s: &str) -> String {
    let s = s
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'");
    let s = s.replace("&amp;", "&");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("_x") {
        out.push_str(&rest[..i]);
        let esc = &rest[i..];
        let code = esc
            .get(2..6)
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
        match (code, esc.as_bytes().get(6)) {
            (Some(h), Some(b'_')) => {
                let c = u32::from_str_radix(h, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                out.push(c);
                rest = &esc[7..];
            }
            _ => {
                out.push_str("_x");
                rest = &esc[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clixml_error_records() {
        let cases = [
            ("plain error\n", "plain error\n"),
            ("#< CLIXML\r\n<Objs Version=\"1.1.0.1\"><Obj S=\"progress\" RefId=\"0\"><TN/></Obj></Objs>", ""),
            (
                "#< CLIXML\r\n<Objs><S S=\"Error\">Cannot find &quot;x&quot; &amp; y_x000D__x000A_</S><S S=\"Error\">two_x000A_</S></Objs>",
                "Cannot find \"x\" & y\r\ntwo\n",
            ),
            ("#< CLIXML<Objs><S S=\"Error\">a_xZZ_b_x</S></Objs>", "a_xZZ_b_x"),
        ];
        for (raw, want) in cases {
            assert_eq!(error_text(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn encoded_command_line() {
        let script = Script {
            cmdlet: "Get-X",
            command: "dir".into(),
            text: "dir".into(),
        };
        let sh = Shell::new(
            vec!["pwsh".into(), "-NoProfile".into(), "-EncodedCommand".into()],
            Duration::from_secs(1),
        );
        assert!(sh.encoded());
        assert_eq!(sh.command_line(&script).last().unwrap(), "ZABpAHIA");
        let sh = Shell::new(
            vec!["powershell.exe".into(), "-Command".into()],
            Duration::from_secs(1),
        );
        assert!(!sh.encoded());
        assert_eq!(
            sh.command_line(&script),
            vec!["powershell.exe", "-Command", "dir"]
        );
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let sh = Shell::new(
            vec!["/nonexistent/logship-no-such-shell".into()],
            Duration::from_secs(5),
        );
        let err = sh
            .run(&Script {
                cmdlet: "Get-X",
                command: "x".into(),
                text: "x".into(),
            })
            .unwrap_err();
        assert!(matches!(err, ChatError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("Get-X"), "{err}");
    }
}
