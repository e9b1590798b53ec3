//! One test per example of mido's socket-port documentation (crates/midisock/examples/), running the real
//! example program against real sockets on loopback. `cargo test` builds the examples first.

mod support;

use midisock::{connect, Message, PortServer};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use support::{Running, WAIT};

fn example(name: &str) -> Command {
    Command::new(examples_dir().join(name))
}

/// Where the example programs are, built once per test run.
///
/// NOTE: `cargo test --all-targets` compiles examples as (empty) test harnesses, so the real
/// programs may not exist yet: build them with the same cargo and profile. Cargo releases its
/// build lock before it runs tests, so this nested build does not wait on the outer one.
fn examples_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let release = profile_dir.file_name().is_some_and(|d| d == "release");
            let mut cargo = Command::new(env!("CARGO"));
            cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--quiet", "-p", "midisock", "--examples"]);
            if release {
                cargo.arg("--release");
            }
            let status = cargo.status().expect("run cargo to build the examples");
            assert!(status.success(), "building the examples failed");
            profile_dir.join("examples")
        })
        .clone()
}

/// Starts a server example on an ephemeral port; returns it, its port and its stdout.
fn start_server(name: &str) -> (Running, u16, Lines) {
    let mut child = example(name).arg("127.0.0.1:0").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    // Keep draining stderr so the example never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    // Lines arrive through a channel, so that reading one is bounded by WAIT: an example that
    // hangs fails the test instead of hanging it.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Running(child), port, Lines(lines))
}

/// An example's stdout, line by line.
struct Lines(std::sync::mpsc::Receiver<String>);

fn line(lines: &mut Lines) -> String {
    let line = lines.0.recv_timeout(WAIT).expect("the example printed the expected line in time");
    line.trim_end().to_owned()
}

fn note(n: u8) -> Message {
    Message::NoteOn { channel: 0, note: n, velocity: 64 }
}

#[test]
fn server_print_prints_what_clients_send() {
    let (_server, port, mut stdout) = start_server("server_print");
    let a = connect(("127.0.0.1", port)).unwrap();
    a.send(&note(60)).unwrap();
    assert_eq!(line(&mut stdout), "note_on channel=0 note=60 velocity=64 time=0");
    let b = connect(("127.0.0.1", port)).unwrap();
    b.send(&Message::Clock).unwrap();
    assert_eq!(line(&mut stdout), "clock time=0");
}

#[test]
fn client_send_sends_to_a_server() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let status = example("client_send")
        .args([server.local_addr().to_string(), "control_change control=1 value=2".into(), "stop".into()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        server.receive_timeout(WAIT).unwrap(),
        Some(Message::ControlChange { channel: 0, control: 1, value: 2 })
    );
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Stop));
    let status = example("client_send").arg(server.local_addr().to_string()).status().unwrap();
    assert!(status.success());
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note(60)));
}

#[test]
fn server_broadcast_reaches_every_client() {
    let (_server, port, _stdout) = start_server("server_broadcast");
    let clients: Vec<_> = (0..3).map(|_| connect(("127.0.0.1", port)).unwrap()).collect();
    for client in &clients {
        // Each client joins mid-arpeggio: wait for the next note_on, then check the one after.
        let first = loop {
            match client.receive_timeout(WAIT).unwrap().expect("a broadcast") {
                Message::NoteOn { note, .. } => break note,
                _ => continue,
            }
        };
        assert!([60, 64, 67, 72].contains(&first));
        assert_eq!(
            client.receive_timeout(WAIT).unwrap(),
            Some(Message::NoteOff { channel: 0, note: first, velocity: 0 })
        );
    }
}

#[test]
fn client_print_prints_until_the_server_closes() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut child =
        Running(example("client_print").arg(server.local_addr().to_string()).stdout(Stdio::piped()).spawn().unwrap());
    let port = server.accept_timeout(WAIT).unwrap().expect("client_print connects");
    port.send_all(&[note(1), Message::Reset]).unwrap();
    drop(port);
    let mut out = String::new();
    child.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "note_on channel=0 note=1 velocity=64 time=0\nreset time=0\n");
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn accept_one_serves_connections_one_after_another() {
    let (_server, port, mut stdout) = start_server("accept_one");
    for n in 0..3 {
        let client = connect(("127.0.0.1", port)).unwrap();
        client.send(&note(n)).unwrap();
        assert_eq!(line(&mut stdout), format!("note_on channel=0 note={n} velocity=64 time=0"));
        drop(client);
    }
}

#[test]
fn accept_many_serves_clients_at_once_and_notices_disconnects() {
    let (_server, port, mut stdout) = start_server("accept_many");
    let a = connect(("127.0.0.1", port)).unwrap();
    assert!(line(&mut stdout).starts_with("Connection from 127.0.0.1:"));
    let b = connect(("127.0.0.1", port)).unwrap();
    let b_name = b.local_addr().unwrap().to_string();
    assert_eq!(line(&mut stdout), format!("Connection from {b_name}"));
    b.send(&note(2)).unwrap();
    assert_eq!(line(&mut stdout), format!("Received note_on channel=0 note=2 velocity=64 time=0 from {b_name}"));
    a.send(&note(1)).unwrap();
    assert!(line(&mut stdout).starts_with("Received note_on channel=0 note=1 velocity=64 time=0 from 127.0.0.1:"));
    drop(b);
    assert_eq!(line(&mut stdout), format!("{b_name} disconnected"));
}
