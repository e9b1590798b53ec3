//! The `midisock` binary end to end, against real sockets on loopback.

mod common;

use common::{midisock, serving_port, Running, WAIT};
use midisock::{connect, Message, PortServer};
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `midisock serve 127.0.0.1:0 EXTRA...` (customised by `setup`) and returns it with the
/// port it reports on its first stderr line and its stdout.
fn serve_with(extra: &[&std::ffi::OsStr], setup: impl FnOnce(&mut Command)) -> (Running, u16, BufReader<ChildStdout>) {
    let mut command = midisock();
    command
        .args(["serve", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    setup(&mut command);
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = serving_port(&line);
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (Running(child), port, stdout)
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

fn read_line_within(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

#[test]
fn serve_prints_what_clients_send_and_broadcasts_stdin() {
    let (mut server, port, mut stdout) = serve_with(&[], |_| {});
    let client = connect(("127.0.0.1", port)).unwrap();
    client.send(&Message::NoteOn { channel: 1, note: 60, velocity: 100 }).unwrap();
    client.send(&Message::SysEx { data: vec![] }).unwrap();
    assert_eq!(read_line_within(&mut stdout), "note_on channel=1 note=60 velocity=100 time=0\n");
    assert_eq!(read_line_within(&mut stdout), "sysex data=() time=0\n");

    let mut stdin = server.0.stdin.take().unwrap();
    // The server may not have seen the client yet when the line arrives; repeat until it does.
    let start = Instant::now();
    loop {
        writeln!(stdin, "control_change control=7 value=99").unwrap();
        stdin.flush().unwrap();
        if let Some(m) = client.receive_timeout(Duration::from_millis(200)).unwrap() {
            assert_eq!(m, Message::ControlChange { channel: 0, control: 7, value: 99 });
            break;
        }
        assert!(start.elapsed() < WAIT);
    }
}

#[test]
fn connect_sends_stdin_lines_and_prints_received() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut child = Running(
        midisock()
            .args(["connect", &server.local_addr().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    writeln!(stdin, "pitchwheel channel=2 pitch=-8192\nnot a message\n\nclock").unwrap();
    stdin.flush().unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::PitchWheel { channel: 2, pitch: -8192 }));
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Clock));
    server.send(&Message::SongPos { pos: 1000 }).unwrap();
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    assert_eq!(read_line_within(&mut stdout), "songpos pos=1000 time=0\n");
    drop(stdin);
    server.close();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "connect did not exit when the server closed");
        std::thread::sleep(Duration::from_millis(10));
    };
    // The server went away: a failure (a bad stdin line alone would have been exit code 2).
    assert_eq!(status.code(), Some(1));
}

#[test]
fn send_delivers_every_message_and_closes() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let output = midisock()
        .args(["send", &server.local_addr().to_string(), "note_on note=60", "sysex data=(1,2,3)", "stop"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    let port = server.accept_timeout(WAIT).unwrap().unwrap();
    let got: Vec<Message> = port.iter().collect();
    assert_eq!(
        got,
        vec![
            Message::NoteOn { channel: 0, note: 60, velocity: 64 },
            Message::SysEx { data: vec![1, 2, 3] },
            Message::Stop
        ]
    );
}

#[test]
fn send_with_bad_text_sends_nothing() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let output = midisock()
        .args(["send", &server.local_addr().to_string(), "note_on note=60", "note_on note=600"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("note must be in 0..=127, got 600"), "{stderr}");
    assert!(server.accept_timeout(Duration::from_millis(300)).unwrap().is_none(), "it connected anyway");
}

#[test]
fn bad_address_and_refused_connection_are_one_clear_line() {
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (args, code, needle) in [
        (vec!["send".to_string(), "localhost".into(), "clock".into()], 2, "invalid address"),
        (vec!["connect".to_string(), "[::1".into()], 2, "invalid address"),
        (vec!["send".to_string(), format!("127.0.0.1:{refused_port}"), "clock".into()], 1, "cannot connect"),
        (vec!["serve".to_string(), "localhost:99999".into()], 2, "port must be a number"),
    ] {
        let output = midisock().args(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(code), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn decode_turns_raw_bytes_into_lines() {
    let mut child = midisock().arg("decode").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&[0x90, 60, 64, 0xF8, 61, 0, 0xF0, 1, 0xF7, 0xE0, 0, 0x40]).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "note_on channel=0 note=60 velocity=64 time=0\nclock time=0\nnote_on channel=0 note=61 velocity=0 time=0\n\
         sysex data=(1) time=0\npitchwheel channel=0 pitch=0 time=0\n"
    );
}

#[test]
fn decode_reads_a_file_and_reports_a_missing_one() {
    let path = std::env::temp_dir().join(format!("midisock-decode-{}.bin", std::process::id()));
    std::fs::write(&path, [0xC5, 3, 0xFF]).unwrap();
    let output = midisock().arg("decode").arg(&path).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "program_change channel=5 program=3 time=0\nreset time=0\n");
    let output = midisock().args(["decode", "/nonexistent/file"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("cannot open"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["connect", "--help"],
        vec!["send", "--help"],
        vec!["decode", "--help"],
    ] {
        let output = midisock().args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8(output.stdout).unwrap().contains("Usage: midisock"), "{args:?}");
    }
}

#[test]
fn serve_protections_from_flags() {
    let flags = os(&["--relay", "--sysex", "deny", "--allow", "127.0.0.0/8", "--allow", "::1"]);
    let flags: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_os_str()).collect();
    let (_server, port, _stdout) = serve_with(&flags, |_| {});
    let a = connect(("127.0.0.1", port)).unwrap();
    let b = connect(("127.0.0.1", port)).unwrap();
    // Relay: what a sends reaches b (sysex denied on the way); wait until b is being served.
    let start = Instant::now();
    loop {
        a.send_all(&[Message::SysEx { data: vec![1] }, Message::Continue]).unwrap();
        if let Some(m) = b.receive_timeout(Duration::from_millis(200)).unwrap() {
            assert_eq!(m, Message::Continue);
            break;
        }
        assert!(start.elapsed() < WAIT, "relay never delivered");
    }

    let output = midisock().args(["serve", "127.0.0.1:0", "--allow", "10.0.0.0/33"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("invalid address \"10.0.0.0/33\""));
}

#[test]
fn token_from_the_environment_guards_serve_and_is_sent_by_send() {
    let (_server, port, mut stdout) = serve_with(&[], |c| {
        c.env("MIDISOCK_TOKEN", "hunter2");
    });
    let addr = format!("127.0.0.1:{port}");

    let rejected = midisock().args(["send", &addr, "note_on note=1"]).env_remove("MIDISOCK_TOKEN").output().unwrap();
    // The server drops the hello-less connection; whether that reaches `send` before it exits
    // is a race, but it must never crash.
    assert!(matches!(rejected.status.code(), Some(0 | 1)), "{rejected:?}");
    let sent = midisock().args(["send", &addr, "note_on note=2", "--token", "hunter2"]).output().unwrap();
    assert!(sent.status.success(), "{sent:?}");
    // Only the authenticated message is printed (the release of its held note follows it).
    assert_eq!(read_line_within(&mut stdout), "note_on channel=0 note=2 velocity=64 time=0\n");
}

#[test]
fn tls_serve_and_send_with_pem_files() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("midisock-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();

    let (_server, port, mut stdout) =
        serve_with(&["--tls-cert".as_ref(), cert.as_os_str(), "--tls-key".as_ref(), key.as_os_str()], |_| {});

    let sent = midisock()
        .args(["send", &format!("localhost:{port}"), "song_select song=3", "--tls-ca"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(read_line_within(&mut stdout), "song_select song=3 time=0\n");

    // A client that does not trust the certificate fails with one clear line.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let untrusted = dir.join("other.pem");
    std::fs::write(&untrusted, other.cert.pem()).unwrap();
    let refused =
        midisock().args(["send", &format!("localhost:{port}"), "stop", "--tls-ca"]).arg(&untrusted).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
