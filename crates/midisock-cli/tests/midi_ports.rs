//! MIDI port bridging on JACK's dummy backend, with an independent peer (python-rtmidi through
//! mido, tests/jack_peer.py) on the other side of each direction. Built only with the `jack`
//! feature; `cargo xtask test` installs jackd, the JACK and ALSA headers and python-rtmidi, and
//! passes the Python in MIDISOCK_TEST_PYTHON.
//!
//! Each test starts its own jackd under a unique server name (JACK_DEFAULT_SERVER), so tests run
//! in parallel without seeing each other's ports.

mod common;

use common::{lines_of, serving_port, wait_for_line, wait_for_lines, Running, WAIT};
use midisock::{Message, PortServer};
use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A jackd of this test's own, and the environment that points clients at it.
struct Jack {
    name: String,
    process: Child,
    /// JACK registers at most 8 servers per machine, and one killed without its cleanup keeps
    /// its slot: one at a time per test binary, each stopped with SIGTERM.
    _turn: MutexGuard<'static, ()>,
    _slot: std::fs::File,
}

/// A server name no other test process is using, held as long as the returned file is open.
/// JACK frees a dead server's registry slot only when a server of the same name starts again,
/// so the names come from a small fixed set (fresh names would use up its 8 slots); an flock
/// per name keeps two test processes (parallel runs, other checkouts) apart.
fn claim_server_name() -> (String, std::fs::File) {
    use std::os::fd::AsRawFd;
    for slot in 0..4 {
        let path = std::env::temp_dir().join(format!("midisock-test-jack-{slot}.lock"));
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).unwrap();
        // SAFETY: flock on a descriptor this function owns; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return (format!("midisock-test-{slot}"), file);
        }
    }
    panic!("four other test processes are running JACK servers");
}

impl Drop for Jack {
    fn drop(&mut self) {
        if self.process.try_wait().ok().flatten().is_some() {
            return; // killed by the test and not started again
        }
        let pid = self.process.id() as libc::pid_t;
        // SAFETY: signals our own child, which has not been reaped yet (so the pid is still its).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // A synchronous jackd can take its client timeout per departed client to notice they are
        // gone; after a short grace it is killed. Its registry slot is reclaimed when the next
        // server of the same name starts (names come from a small set, see claim_server_name).
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.process.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.process.kill();
                let _ = self.process.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn_jackd(name: &str) -> Child {
    Command::new("jackd")
        // Synchronous (-S) with a long client timeout: on a loaded machine a client that is late
        // for a cycle is waited for rather than skipped (which would lose its MIDI events).
        .args(["-S", "-t", "5000", "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"])
        .env("JACK_DEFAULT_SERVER", name)
        .env("JACK_NO_AUDIO_RESERVATION", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("jackd must be installed (cargo xtask test installs jackd2)")
}

impl Jack {
    fn start() -> Jack {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let (name, slot) = claim_server_name();
        let process = spawn_jackd(&name);
        let jack = Jack { name, process, _turn: turn, _slot: slot };
        jack.wait_until_ready();
        jack
    }

    /// Ready when `midisock ports` can open a client.
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + WAIT;
        while !self.midisock().arg("ports").output().unwrap().status.success() {
            assert!(Instant::now() < deadline, "jackd {} did not start", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server as a crash would (SIGKILL: no goodbye to its clients).
    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Starts the server again under the same name, as a user restarting JACK does.
    fn restart(&mut self) {
        self.process = spawn_jackd(&self.name);
        self.wait_until_ready();
    }

    fn midisock(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_midisock"));
        command.env("JACK_DEFAULT_SERVER", &self.name);
        command
    }

    /// The Python peer with its ports open. libjack in a new client starts a helper thread and
    /// gives up ("JackMessageBuffer::Create cannot start thread") when the machine is too busy
    /// to run it within its deadline: a peer that dies opening is started again (three tries).
    fn peer(&self) -> Peer {
        let python = std::env::var("MIDISOCK_TEST_PYTHON")
            .expect("MIDISOCK_TEST_PYTHON: a Python with mido and python-rtmidi (cargo xtask test sets it)");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jack_peer.py");
        for _ in 0..3 {
            let mut child = Command::new(&python)
                .arg(script)
                .env("JACK_DEFAULT_SERVER", &self.name)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let lines = lines_of(child.stdout.take().unwrap());
            let mut peer = Peer { stdin, lines, seen: Vec::new(), _process: Running(child) };
            writeln!(peer.stdin, "open").unwrap();
            peer.stdin.flush().unwrap();
            loop {
                match peer.lines.recv_timeout(WAIT) {
                    Ok(line) if line == "ok" => return peer,
                    Ok(line) => peer.seen.push(line),
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => panic!("the peer did not open its ports within {WAIT:?}"),
                }
            }
            eprintln!("the peer died opening its ports; starting it again");
        }
        panic!("the peer died opening its ports three times");
    }
}

struct Peer {
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Lines that arrived while a command was running (a message can arrive then), kept for
    /// `expect`.
    seen: Vec<String>,
    _process: Running,
}

impl Peer {
    /// Runs one command and waits for its "ok"; returns the lines before it.
    fn command(&mut self, command: &str) -> Vec<String> {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut before = Vec::new();
        loop {
            match self.lines.recv_timeout(WAIT * 3) {
                Ok(line) if line == "ok" => {
                    self.seen.extend(before.iter().cloned());
                    return before;
                }
                Ok(line) => before.push(line),
                Err(e) => panic!("peer did not finish {command:?}: {e}"),
            }
        }
    }

    /// Whether a line containing `text` comes within `timeout` (lines before it are skipped).
    fn saw(&mut self, text: &str, timeout: Duration) -> bool {
        if let Some(at) = self.seen.iter().position(|line| line.contains(text)) {
            self.seen.drain(..=at);
            return true;
        }
        self.seen.clear();
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if line.contains(text) {
                return true;
            }
        }
        false
    }

    /// Waits until the peer's input port has received `text`.
    fn expect(&mut self, text: &str) {
        let wanted = format!("got {text}");
        if let Some(at) = self.seen.iter().position(|line| line.contains(&wanted)) {
            self.seen.drain(..=at);
            return;
        }
        self.seen.clear();
        wait_for_line(&self.lines, &wanted);
    }
}

/// Starts a midisock command and returns it with its stderr lines.
fn spawn(mut command: Command) -> (Running, Receiver<String>) {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = lines_of(child.stderr.take().unwrap());
    (Running(child), stderr)
}

/// Sends `message` from `send` until `arrived` says it got through: the bridge's ports may take
/// a moment to be connected after the command says it is running.
fn until_through(mut send: impl FnMut(), mut arrived: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        send();
        if arrived() {
            return;
        }
        assert!(Instant::now() < deadline, "nothing got through the bridge");
    }
}

#[test]
fn ports_lists_the_peers_ports_and_no_server_is_one_line() {
    let jack = Jack::start();
    let _peer = jack.peer();
    let output = jack.midisock().arg("ports").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (inputs, outputs) = text.split_once("Output ports:").unwrap();
    assert!(inputs.starts_with("Input ports:\n") && inputs.contains("  peer-source:out\n"), "{text}");
    assert!(outputs.contains("  peer-sink:in\n"), "{text}");

    let output = Command::new(env!("CARGO_BIN_EXE_midisock"))
        .arg("ports")
        .env("JACK_DEFAULT_SERVER", "midisock-test-no-such-server")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no MIDI backend is usable"), "{stderr}");
}

#[test]
fn unknown_port_name_says_which_exist() {
    let jack = Jack::start();
    let _peer = jack.peer();
    let output = jack.midisock().args(["serve", "127.0.0.1:0", "--midi-out", "nosuch"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr, "midisock: no MIDI output port named \"nosuch\": there are \"peer-sink:in\"\n");
}

#[test]
fn serve_plays_what_clients_send_and_broadcasts_its_input_port() {
    let jack = Jack::start();
    let mut peer = jack.peer();
    let mut command = jack.midisock();
    // Parts of the names are enough when they are unique.
    command.args(["serve", "127.0.0.1:0", "--midi-in", "peer-source", "--midi-out", "peer-sink"]);
    let (_server, stderr) = spawn(command);
    // "serving on" comes once the ports are open.
    let port: u16 = serving_port(&wait_for_line(&stderr, "serving on"));
    let client = midisock::connect(("127.0.0.1", port)).unwrap();

    // network → output port
    client.send(&Message::NoteOn { channel: 3, note: 64, velocity: 90 }).unwrap();
    peer.expect("note_on channel=3 note=64 velocity=90 time=0");
    client.send(&Message::SysEx { data: vec![1, 2, 3] }).unwrap();
    peer.expect("sysex data=(1,2,3) time=0");

    // input port → every client
    until_through(
        || {
            peer.command("send control_change channel=5 control=7 value=100");
        },
        || {
            client.receive_timeout(Duration::from_millis(200)).unwrap()
                == Some(Message::ControlChange { channel: 5, control: 7, value: 100 })
        },
    );
}

#[test]
fn connect_sends_its_input_port_and_plays_what_it_receives() {
    let jack = Jack::start();
    let mut peer = jack.peer();
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut command = jack.midisock();
    command.args([
        "connect",
        &server.local_addr().to_string(),
        "--midi-in",
        "peer-source:out",
        "--midi-out",
        "peer-sink:in",
    ]);
    let (_client, stderr) = spawn(command);
    wait_for_line(&stderr, "MIDI output: peer-sink:in");

    // input port → server
    until_through(
        || {
            peer.command("send pitchwheel channel=2 pitch=-8192");
        },
        || {
            server.receive_timeout(Duration::from_millis(200)).unwrap()
                == Some(Message::PitchWheel { channel: 2, pitch: -8192 })
        },
    );
    // server → output port
    server.send(&Message::ProgramChange { channel: 9, program: 42 }).unwrap();
    peer.expect("program_change channel=9 program=42 time=0");
}

#[test]
fn a_port_that_vanishes_is_reopened_when_it_returns() {
    let jack = Jack::start();
    let mut peer = jack.peer();
    let mut command = jack.midisock();
    command.args(["serve", "127.0.0.1:0", "--midi-out", "peer-sink:in", "--midi-in", "peer-source:out"]);
    let (_server, stderr) = spawn(command);
    // "serving on" comes once the ports are open.
    let port: u16 = serving_port(&wait_for_line(&stderr, "serving on"));
    let client = midisock::connect(("127.0.0.1", port)).unwrap();
    client.send(&Message::NoteOn { channel: 0, note: 1, velocity: 1 }).unwrap();
    peer.expect("note_on channel=0 note=1 velocity=1 time=0");

    peer.command("close");
    wait_for_lines(&stderr, &["MIDI output peer-sink:in is gone", "MIDI input peer-source:out is gone"]);
    peer.command("open");
    wait_for_lines(&stderr, &["MIDI output peer-sink:in is back", "MIDI input peer-source:out is back"]);

    // Both directions work again.
    client.send(&Message::NoteOn { channel: 0, note: 2, velocity: 2 }).unwrap();
    peer.expect("note_on channel=0 note=2 velocity=2 time=0");
    until_through(
        || {
            peer.command("send note_off channel=1 note=3 velocity=0");
        },
        || {
            client.receive_timeout(Duration::from_millis(200)).unwrap()
                == Some(Message::NoteOff { channel: 1, note: 3, velocity: 0 })
        },
    );
}

#[test]
fn virtual_ports_for_other_programs() {
    let jack = Jack::start();
    let mut command = jack.midisock();
    command.args(["serve", "127.0.0.1:0", "--virtual", "--midi-in", "keys", "--midi-out", "synth"]);
    let (_server, stderr) = spawn(command);
    // "serving on" comes once the ports are open.
    let port = serving_port(&wait_for_line(&stderr, "serving on"));
    let output = jack.midisock().arg("ports").output().unwrap();
    let listing = String::from_utf8(output.stdout).unwrap();
    assert!(listing.contains("  midisock out:synth\n") && listing.contains("  midisock in:keys\n"), "{listing}");

    let mut peer = jack.peer();
    patch_virtual_ports(&jack);
    let client = midisock::connect(("127.0.0.1", port)).unwrap();
    client.send(&Message::NoteOn { channel: 0, note: 50, velocity: 60 }).unwrap();
    peer.expect("note_on channel=0 note=50 velocity=60 time=0");
    until_through(
        || {
            peer.command("send aftertouch channel=3 value=9");
        },
        || {
            client.receive_timeout(Duration::from_millis(200)).unwrap()
                == Some(Message::Aftertouch { channel: 3, value: 9 })
        },
    );
}

/// port → network → port: the peer's output through `connect --midi-in`, a `serve --midi-out`,
/// back into the peer's input. Reported, not asserted beyond "everything arrived".
#[test]
fn bridge_latency_port_to_network_to_port() {
    let jack = Jack::start();
    let mut peer = jack.peer();
    let mut command = jack.midisock();
    command.args(["serve", "127.0.0.1:0", "--midi-out", "peer-sink:in"]);
    let (_server, server_log) = spawn(command);
    let port: u16 = serving_port(&wait_for_line(&server_log, "serving on"));
    let mut command = jack.midisock();
    command.args(["connect", &format!("127.0.0.1:{port}"), "--midi-in", "peer-source:out"]);
    let (_client, client_log) = spawn(command);
    wait_for_line(&client_log, "MIDI input: peer-source:out");
    // Warm up until the whole path is connected.
    let deadline = Instant::now() + WAIT;
    loop {
        let before = peer.command("send clock");
        if before.iter().any(|l| l == "got clock time=0")
            || matches!(peer.lines.recv_timeout(Duration::from_millis(200)), Ok(l) if l == "got clock time=0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "nothing got through the bridge");
    }
    let lines = peer.command("latency 300");
    let report = lines.iter().find(|l| l.starts_with("latency")).expect("a latency line");
    eprintln!("bridge latency port → network → port on JACK dummy (48 kHz, 256 frames), µs: {report}");
    assert!(report.ends_with("lost=0"), "{report}");
}

/// The other end of a bridge's network side: a client of `serve`, or the server `connect`
/// joined.
enum NetworkEnd {
    Client(midisock::SocketPort),
    Server(PortServer),
}

impl NetworkEnd {
    fn send(&self, message: &Message) {
        match self {
            NetworkEnd::Client(port) => port.send(message).unwrap(),
            NetworkEnd::Server(server) => server.send(message).unwrap(),
        }
    }

    fn receive_timeout(&self, timeout: Duration) -> Option<Message> {
        match self {
            NetworkEnd::Client(port) => port.receive_timeout(timeout).unwrap(),
            NetworkEnd::Server(server) => server.receive_timeout(timeout).unwrap(),
        }
    }

    /// Waits for `wanted`, skipping anything else (repeats of what was sent to get through).
    fn expect(&self, wanted: &Message) {
        let deadline = Instant::now() + WAIT;
        while self.receive_timeout(Duration::from_millis(200)).as_ref() != Some(wanted) {
            assert!(Instant::now() < deadline, "{wanted} did not arrive within {WAIT:?}");
        }
    }
}

/// Both directions of a bridge work: network → output port, input port → network. Each is
/// tried until it gets through: JACK puts a port connection in effect a cycle or more after it
/// is made, so the first message after a reopen may find it not there yet.
fn check_both_directions(peer: &mut Peer, network: &NetworkEnd, note: u8) {
    let played = format!("got note_on channel=0 note={note} velocity=1 time=0");
    let deadline = Instant::now() + WAIT;
    loop {
        network.send(&Message::NoteOn { channel: 0, note, velocity: 1 });
        if peer.saw(&played, Duration::from_millis(300)) {
            break;
        }
        assert!(Instant::now() < deadline, "{played:?} did not come within {WAIT:?}");
    }
    let control = Message::ControlChange { channel: 4, control: 1, value: note };
    until_through(
        || {
            peer.command(&format!("send {control}"));
        },
        || network.receive_timeout(Duration::from_millis(200)).as_ref() == Some(&control),
    );
}

/// The CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses: utime, stime are the
    // 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let used: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    Duration::from_secs_f64(used / ticks)
}

/// jackd killed under a running bridge and started again: the bridge notices, releases the
/// notes its input port held on the network side, waits without spinning, reopens both ports
/// by name once the server and the peer are back, releases on the output port the note it had
/// left held, and carries messages both ways again. Each change is logged once.
fn bridge_survives_a_jack_restart(command_name: &str) {
    let mut jack = Jack::start();
    let mut peer = jack.peer();
    let mut command = jack.midisock();
    let server;
    let (bridge, stderr, network) = if command_name == "serve" {
        command.args(["serve", "127.0.0.1:0", "--midi-in", "peer-source:out", "--midi-out", "peer-sink:in"]);
        let (bridge, stderr) = spawn(command);
        let port = serving_port(&wait_for_line(&stderr, "serving on"));
        (bridge, stderr, NetworkEnd::Client(midisock::connect(("127.0.0.1", port)).unwrap()))
    } else {
        server = PortServer::bind("127.0.0.1:0").unwrap();
        let address = server.local_addr().to_string();
        command.args(["connect", &address, "--midi-in", "peer-source:out", "--midi-out", "peer-sink:in"]);
        let (bridge, stderr) = spawn(command);
        wait_for_line(&stderr, "MIDI output: peer-sink:in");
        (bridge, stderr, NetworkEnd::Server(server))
    };
    check_both_directions(&mut peer, &network, 10);
    // A note held on each side when the server goes: note 10 on the output port (sent above),
    // note 70 from the input port to the network.
    let held_in = Message::NoteOn { channel: 1, note: 70, velocity: 50 };
    until_through(
        || {
            peer.command(&format!("send {held_in}"));
        },
        || network.receive_timeout(Duration::from_millis(200)).as_ref() == Some(&held_in),
    );

    jack.kill();
    drop(peer);
    wait_for_lines(
        &stderr,
        &[
            "MIDI output peer-sink:in: the JACK server stopped; it will be reopened when it returns",
            "MIDI input peer-source:out: the JACK server stopped; it will be reopened when it returns",
        ],
    );
    network.expect(&Message::NoteOff { channel: 1, note: 70, velocity: 0 });
    // While no server runs the watchers back off: measured over a second and a half, reported.
    let before = cpu_time(bridge.0.id());
    let outage = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let spent = cpu_time(bridge.0.id()) - before;
    eprintln!("CPU used by `{command_name}` while jackd was down: {spent:?} in {:?}", outage.elapsed());

    jack.restart();
    let mut peer = jack.peer();
    let peer_back = Instant::now();
    wait_for_lines(&stderr, &["MIDI output peer-sink:in is back", "MIDI input peer-source:out is back"]);
    eprintln!("`{command_name}` reopened both ports {:?} after the peer's ports were back", peer_back.elapsed());
    // The output port's note left held is released on the port that came back.
    peer.expect("note_off channel=0 note=10 velocity=0 time=0");
    check_both_directions(&mut peer, &network, 11);

    // Each change was logged once: stop the bridge and read the rest of its log.
    drop(bridge);
    let mut log: Vec<String> = common::remaining(&stderr);
    log.retain(|l| l.contains("JACK server") || l.contains("is back") || l.contains("is gone"));
    assert!(log.is_empty(), "logged again: {log:?}");
}

#[test]
fn serve_bridge_survives_a_jack_restart() {
    bridge_survives_a_jack_restart("serve");
}

#[test]
fn connect_bridge_survives_a_jack_restart() {
    bridge_survives_a_jack_restart("connect");
}

/// Wires the peer's ports to midisock's virtual ones with JACK's own tool, as a user would in a
/// patchbay.
fn patch_virtual_ports(jack: &Jack) {
    for (from, to) in [("peer-source:out", "midisock in:keys"), ("midisock out:synth", "peer-sink:in")] {
        let status =
            Command::new("jack_connect").args([from, to]).env("JACK_DEFAULT_SERVER", &jack.name).status().unwrap();
        assert!(status.success(), "jack_connect {from} {to}");
    }
}

/// Virtual ports belong to the server they were made on: after a JACK restart midisock makes
/// them again on the new one, under the same names.
#[test]
fn virtual_ports_are_made_again_on_a_restarted_jack_server() {
    let mut jack = Jack::start();
    let mut command = jack.midisock();
    // -v: a failure shows the backend attempts in the lines the wait prints.
    command.args(["-v", "serve", "127.0.0.1:0", "--virtual", "--midi-in", "keys", "--midi-out", "synth"]);
    let (_server, stderr) = spawn(command);
    let port = serving_port(&wait_for_line(&stderr, "serving on"));
    let network = NetworkEnd::Client(midisock::connect(("127.0.0.1", port)).unwrap());
    let mut peer = jack.peer();
    patch_virtual_ports(&jack);
    check_both_directions(&mut peer, &network, 20);

    jack.kill();
    drop(peer);
    wait_for_lines(
        &stderr,
        &[
            "MIDI output synth: the JACK server stopped; it will be reopened when it returns",
            "MIDI input keys: the JACK server stopped; it will be reopened when it returns",
        ],
    );
    jack.restart();
    wait_for_lines(&stderr, &["MIDI output synth is back", "MIDI input keys is back"]);
    let listing = String::from_utf8(jack.midisock().arg("ports").output().unwrap().stdout).unwrap();
    assert!(listing.contains("  midisock out:synth\n") && listing.contains("  midisock in:keys\n"), "{listing}");
    let mut peer = jack.peer();
    patch_virtual_ports(&jack);
    check_both_directions(&mut peer, &network, 21);
}
