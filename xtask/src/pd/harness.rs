//! Processes the Pd tests drive: a headless Pd running `bindings/pd/tests/harness.pd`, and mido
//! peers (`bindings/pd/tests/mido_peer.py`). Both are read line by line on a thread; tests wait
//! for lines (bounded), never sleep-and-hope, and every process is killed when its handle drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The longest wait for any one expected line: generous, because a test may run under valgrind
/// on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(60);

/// A child process whose output lines arrive on a channel; killed on drop.
pub struct Lines {
    name: String,
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    log: Vec<String>,
}

impl Lines {
    fn spawn(name: &str, command: &mut Command, read_stderr: bool) -> Result<Lines, String> {
        if read_stderr {
            command.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        }
        let mut child = command.spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let stream: Box<dyn Read + Send> = if read_stderr {
            Box::new(child.stderr.take().expect("stderr is piped"))
        } else {
            Box::new(child.stdout.take().expect("stdout is piped"))
        };
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Lines { name: name.to_owned(), child, lines, log: Vec::new() })
    }

    /// Waits for the next line `accept` returns `Some` for, and returns that. Lines passed over
    /// are kept in the log; one that `reject` matches fails the wait at once.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        reject: impl Fn(&str) -> bool,
        accept: impl Fn(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if let Some(found) = accept(line.trim_end()) {
                        return Ok(found);
                    }
                    if reject(line.trim_end()) {
                        return Err(self.failure(&format!("unexpected line {line:?} while waiting for {what}")));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no {what} within {} s", WAIT.as_secs())))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.failure(&format!("{} ended while waiting for {what}", self.name)))
                }
            }
        }
    }

    /// Waits for exactly `line`, failing on any error line on the way.
    pub fn expect(&mut self, line: &str) -> Result<(), String> {
        self.wait_for(&format!("{line:?}"), is_error_line, |l| (l == line).then_some(()))
    }

    /// Waits until every one of `lines` has been seen, in any order, failing on any error line.
    pub fn expect_all(&mut self, lines: &[&str]) -> Result<(), String> {
        let mut missing: Vec<&str> = lines.to_vec();
        while !missing.is_empty() {
            let what = format!("{missing:?}");
            let found = self.wait_for(&what, is_error_line, |l| missing.iter().position(|m| *m == l))?;
            missing.remove(found);
        }
        Ok(())
    }

    fn failure(&self, what: &str) -> String {
        let tail: Vec<&str> = self.log.iter().rev().take(40).rev().map(String::as_str).collect();
        format!("{}: {what}\n--- last lines of {}:\n{}", self.name, self.name, tail.join("\n"))
    }

    /// Waits up to `limit` for the process to exit by itself; kills it otherwise.
    fn finish(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(self.failure(&format!("exited with {status}"))),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(self.failure(&format!("did not exit within {} s", limit.as_secs())));
                }
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Pd prints for an error (`pd_error`), and what the mido peer prints for a Python error.
fn is_error_line(line: &str) -> bool {
    line.starts_with("error:") || line.starts_with("Traceback")
}

/// A headless Pd running the harness patch, connected back to us for commands.
pub struct Pd {
    pub out: Lines,
    control: TcpStream,
    valgrind_log: Option<PathBuf>,
}

impl Pd {
    /// Starts Pd with the external in `external_dir` and `pd_args` added to its command line;
    /// under valgrind when `valgrind` is given (its log file and suppression files).
    pub fn start(
        external_dir: &Path,
        harness: &Path,
        valgrind: Option<(&Path, &[PathBuf])>,
        pd_args: &[&str],
    ) -> Result<Pd, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let mut command = match valgrind {
            Some((log, suppressions)) => {
                let mut c = Command::new("valgrind");
                c.args(["--leak-check=full", "--show-leak-kinds=definite,indirect,possible", "--num-callers=40"])
                    .arg(format!("--log-file={}", log.display()))
                    .args(suppressions.iter().map(|file| format!("--suppressions={}", file.display())))
                    .arg("pd");
                c
            }
            None => Command::new("pd"),
        };
        command
            .args(["-nogui", "-noaudio", "-nomidi", "-stderr", "-noprefs"])
            .args(pd_args)
            .arg("-path")
            .arg(external_dir)
            .arg("-send")
            .arg(format!("harness-port {port}"))
            .arg("-open")
            .arg(harness)
            .stdin(Stdio::null());
        let mut out = Lines::spawn("pd", &mut command, true)?;
        // Pd's [netsend] connects back; accept without blocking forever.
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + WAIT;
        let control = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    if let Ok(Some(status)) = out.child.try_wait() {
                        return Err(out.failure(&format!("exited with {status} before connecting")));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(out.failure(&format!("did not connect its control socket: {e}"))),
            }
        };
        control.set_nonblocking(false).map_err(|e| e.to_string())?;
        control.set_nodelay(true).map_err(|e| e.to_string())?;
        out.expect("harness: 1")?;
        Ok(Pd { out, control, valgrind_log: valgrind.map(|(log, _)| log.to_path_buf()) })
    }

    /// Pd's process id (valgrind's, under valgrind).
    pub fn pid(&self) -> u32 {
        self.out.child.id()
    }

    /// Sends one FUDI message to the harness patch (most go on to the [midisock] object).
    pub fn send(&mut self, message: &str) -> Result<(), String> {
        self.control.write_all(format!("{message};\n").as_bytes()).map_err(|e| format!("cannot send {message:?}: {e}"))
    }

    /// Sends `message` and waits for exactly `line` on Pd's stderr.
    pub fn send_expect(&mut self, message: &str, line: &str) -> Result<(), String> {
        self.send(message)?;
        self.out.expect(line)
    }

    /// Waits for `error: midisock: <text>` (Pd's console line for pd_error).
    pub fn expect_error(&mut self, text: &str) -> Result<(), String> {
        let wanted = format!("error: midisock: {text}");
        self.out.wait_for(&format!("{wanted:?}"), |l| l.starts_with("error:"), |l| (l == wanted).then_some(()))
    }

    /// Frees the objects under test (so their destructors run, under valgrind too) and quits Pd;
    /// returns the valgrind log file, if any.
    pub fn quit(mut self) -> Result<Option<PathBuf>, String> {
        self.send("free")?;
        self.send("quit")?;
        let limit = if self.valgrind_log.is_some() { WAIT } else { Duration::from_secs(20) };
        self.out.finish(limit)?;
        Ok(self.valgrind_log.take())
    }
}

/// A mido peer process (`mido_peer.py`).
pub struct Mido {
    pub out: Lines,
    stdin: Option<ChildStdin>,
}

impl Mido {
    /// A mido `PortServer` on 127.0.0.1 (`port` 0: any free one), sending to its current client
    /// what is given to `send`; returns it with its port.
    pub fn server(python: &Path, script: &Path, port: u16) -> Result<(Mido, u16), String> {
        let mut command = Command::new(python);
        command.arg(script).arg("server").arg(port.to_string()).stdin(Stdio::piped());
        let mut out = Lines::spawn("mido server", &mut command, false)?;
        let stdin = out.child.stdin.take();
        let port = out.wait_for("its port", is_error_line, |l| l.strip_prefix("port ")?.parse::<u16>().ok())?;
        Ok((Mido { out, stdin }, port))
    }

    /// A mido client connected to 127.0.0.1:`port`, sending the mido text lines given to `send`.
    pub fn client(python: &Path, script: &Path, port: u16) -> Result<Mido, String> {
        let mut command = Command::new(python);
        command.arg(script).arg("client").arg(port.to_string()).stdin(Stdio::piped());
        let mut out = Lines::spawn("mido client", &mut command, false)?;
        let stdin = out.child.stdin.take();
        Ok(Mido { out, stdin })
    }

    /// A listener whose accept queue is full (not mido): connecting to it hangs. Returns it with
    /// its port.
    pub fn stall(python: &Path, script: &Path) -> Result<(Mido, u16), String> {
        let mut command = Command::new(python);
        command.arg(script).arg("stall").stdin(Stdio::null());
        let mut out = Lines::spawn("stalled listener", &mut command, false)?;
        let port = out.wait_for("its port", is_error_line, |l| l.strip_prefix("port ")?.parse::<u16>().ok())?;
        Ok((Mido { out, stdin: None }, port))
    }

    /// A mido client connected to 127.0.0.1:`port` that prints what it receives.
    pub fn listener(python: &Path, script: &Path, port: u16) -> Result<Mido, String> {
        let mut command = Command::new(python);
        command.arg(script).arg("listen").arg(port.to_string()).stdin(Stdio::null());
        let mut out = Lines::spawn("mido listener", &mut command, false)?;
        out.expect("connected")?;
        Ok(Mido { out, stdin: None })
    }

    /// Client or server: sends one message (mido text; the `count`th) and waits until mido has
    /// sent it.
    pub fn send(&mut self, text: &str, count: usize) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("this peer sends nothing")?;
        stdin.write_all(format!("{text}\n").as_bytes()).map_err(|e| format!("cannot write to mido: {e}"))?;
        stdin.flush().map_err(|e| e.to_string())?;
        self.out.expect(&format!("sent {count}"))
    }

    /// Client: closes the connection (end of input) and waits for the process to end.
    pub fn close(mut self) -> Result<(), String> {
        drop(self.stdin.take());
        self.out.finish(WAIT)
    }
}
