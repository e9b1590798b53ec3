//! Every way `serve` turns a client away shows on both sides: `send` exits 1 with the server's
//! reason, and `serve` logs the refusal with its cause (as it logs connects and disconnects).

mod common;

use common::*;
use std::process::{Output, Stdio};
use std::sync::mpsc::Receiver;

/// `midisock serve 127.0.0.1:0 EXTRA...` with its stderr lines and port.
fn serve(extra: &[&str], token: Option<&str>) -> (Running, Receiver<String>, u16) {
    let mut command = midisock();
    command
        .args(["serve", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.env_remove("MIDISOCK_TOKEN");
    if let Some(token) = token {
        command.env("MIDISOCK_TOKEN", token);
    }
    let mut child = Running(command.spawn().unwrap());
    let stderr = lines_of(child.0.stderr.take().unwrap());
    let port = serving_port(&wait_for_line(&stderr, "serving on"));
    (child, stderr, port)
}

fn send(port: u16, token: Option<&str>) -> Output {
    let mut command = midisock();
    command.args(["send", &format!("127.0.0.1:{port}"), "note_on note=60"]).env_remove("MIDISOCK_TOKEN");
    if let Some(token) = token {
        command.env("MIDISOCK_TOKEN", token);
    }
    command.output().unwrap()
}

fn assert_refused(output: &Output, cause: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end(), format!("midisock: the server refused the connection: {cause}"), "{output:?}");
}

#[test]
fn allowlist_refusal() {
    let (_server, log, port) = serve(&["--allow", "192.0.2.0/24"], None);
    assert_refused(&send(port, None), "address not allowed");
    wait_for_line(&log, "refused 127.0.0.1:");
    // `connect` too: one line, exit 1 (its "connected" comes first: TCP accepted, then refused).
    let output = midisock().args(["connect", &format!("127.0.0.1:{port}")]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.trim_end().ends_with("midisock: the server refused the connection: address not allowed"),
        "{stderr}"
    );
}

#[test]
fn token_refusals_then_lockout() {
    let (_server, log, port) = serve(&[], Some("right-token"));
    assert_refused(&send(port, None), "missing or wrong token");
    assert!(wait_for_line(&log, "refused 127.0.0.1:").ends_with(": missing or wrong token"));
    // `play` learns it too, after its last message at the latest.
    let file = std::env::temp_dir().join(format!("midisock-refused-{}.mid", std::process::id()));
    // Format 0, one track: a note-on, then end of track.
    let track = [0x00, 0x90, 60, 100, 0x00, 0xFF, 0x2F, 0x00];
    let mut smf = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xE0MTrk\x00\x00\x00".to_vec();
    smf.push(track.len() as u8);
    smf.extend_from_slice(&track);
    std::fs::write(&file, smf).unwrap();
    let output = midisock()
        .arg("play")
        .arg(&file)
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("MIDISOCK_TOKEN")
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .ends_with("midisock: the server refused the connection: missing or wrong token\n"),
        "{output:?}"
    );
    // Five failures from one address lock it out, even with the right token.
    for _ in 0..3 {
        assert_refused(&send(port, Some("wrong-token")), "missing or wrong token");
    }
    assert_refused(
        &send(port, Some("right-token")),
        "too many failed attempts from this address, locked out for a while",
    );
    wait_for_line(&log, "locked out");
}

#[test]
fn too_many_clients_and_the_log_of_connects_and_disconnects() {
    let (_server, log, port) = serve(&["--max-clients", "1"], None);
    let first = midisock::connect(("127.0.0.1", port)).unwrap();
    let first_addr = first.local_addr().unwrap();
    wait_for_line(&log, &format!("connected {first_addr}"));
    assert_refused(&send(port, None), "too many clients");
    assert!(wait_for_line(&log, "refused 127.0.0.1:").ends_with(": too many clients"));
    drop(first);
    wait_for_line(&log, &format!("disconnected {first_addr}: closed by the client"));
    // A sender that is let in exits 0 and is logged coming and going.
    let output = send(port, None);
    assert!(output.status.success(), "{output:?}");
    wait_for_line(&log, "disconnected 127.0.0.1:");
}

#[test]
fn quiet_serve_logs_no_connections() {
    let mut command = midisock();
    command.args(["-q", "serve", "127.0.0.1:0"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut server = Running(command.spawn().unwrap());
    // -q hides the "serving on" line too: find the port from the kernel instead.
    let port = listening_port(server.0.id());
    let stderr = lines_of(server.0.stderr.take().unwrap());
    assert!(send(port, None).status.success());
    server.signal(libc::SIGTERM);
    assert_eq!(server.exit_status().code(), Some(0));
    assert_eq!(remaining(&stderr), Vec::<String>::new());
}

/// The TCP port a process listens on, from /proc (waits until it listens).
fn listening_port(pid: u32) -> u16 {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // state 0A is LISTEN; field 9 is the inode.
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                let port = fields[1].rsplit(':').next().unwrap();
                return u16::from_str_radix(port, 16).unwrap();
            }
        }
        assert!(std::time::Instant::now() < deadline, "serve never listened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
