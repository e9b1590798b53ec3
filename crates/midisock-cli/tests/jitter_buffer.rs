//! `--jitter-buffer` and `--stats` on `serve` and `connect`: the text forms (a bad one is exit
//! 2 naming the accepted ones), and end to end: a midisock sender's messages played out through
//! the buffer, all of them, with the stats line on SIGUSR1 and at exit.

mod common;

use common::*;
use midisock::{Message, PortServer};
use std::time::{Duration, Instant};

fn exit_2_naming(args: &[&str], words: &[&str]) {
    let output = midisock().args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for word in words {
        assert!(stderr.contains(word), "{args:?}: {word:?} not in {stderr}");
    }
}

#[test]
fn bad_settings_exit_2_with_the_accepted_forms() {
    let forms = ["expected a delay in milliseconds from 0 to 10000", "\"auto\""];
    for bad in ["15ms", "-1", "10001", "fast", ""] {
        let option = format!("--jitter-buffer={bad}");
        exit_2_naming(&["serve", "127.0.0.1:0", &option], &forms);
        exit_2_naming(&["connect", "127.0.0.1:9", &option], &forms);
    }
    exit_2_naming(&["serve", "127.0.0.1:0", "--stats"], &["--jitter-buffer"]);
}

/// The fields of a stats line: "playout WHO: offset X ms, jitter p50 X ms p99.9 X ms, delay X
/// ms, delivered D/P, late L, stale notes dropped S".
struct StatsLine {
    text: String,
}

impl StatsLine {
    fn field(&self, name: &str) -> &str {
        let rest = self.text.split_once(&format!("{name} ")).unwrap_or_else(|| panic!("no {name} in {}", self.text)).1;
        rest.split([',', ' ']).next().unwrap()
    }

    /// Every message pushed into the buffer came out, none was dropped as stale, and the
    /// stamps were there (the offset is estimated from them). The jitter is a number, or "-"
    /// while it is not measured yet (the first half second of a stream).
    fn assert_complete(&self, at_least: u64, delay: &str) {
        let (delivered, pushed) = self.field("delivered").split_once('/').unwrap();
        let (delivered, pushed): (u64, u64) = (delivered.parse().unwrap(), pushed.parse().unwrap());
        assert_eq!(delivered, pushed, "{}", self.text);
        assert!(delivered >= at_least, "{}", self.text);
        assert_eq!(self.field("dropped"), "0", "{}", self.text);
        assert_ne!(self.field("offset"), "-", "{}", self.text);
        for jitter in ["p50", "p99.9"] {
            let value = self.field(jitter);
            assert!(value == "-" || value.parse::<f64>().is_ok(), "{}", self.text);
        }
        assert_eq!(self.field("delay"), delay, "{}", self.text);
    }

    /// The jitter was measured: a median at most the p99.9, in milliseconds.
    fn assert_jitter_measured(&self) {
        let p50: f64 = self.field("p50").parse().unwrap_or_else(|_| panic!("no jitter in {}", self.text));
        let p999: f64 = self.field("p99.9").parse().unwrap_or_else(|_| panic!("no jitter in {}", self.text));
        assert!(p50 <= p999, "{}", self.text);
    }
}

#[test]
fn serve_plays_out_a_midisock_senders_messages_and_reports_them() {
    let (mut server, port) = start_serve(&["--jitter-buffer", "20", "--stats"]);
    let (log, printed) = (&server.stderr, &server.stdout);
    let mut client = start(&["connect", &format!("127.0.0.1:{port}")]);
    // The first line goes out before the sender has read the server's request for stamps;
    // from then on its messages are stamped.
    client.type_line("clock");
    wait_for_line(printed, "clock time=0");
    let sent = Instant::now();
    let notes: Vec<String> = (0..100u8).map(|note| format!("note_on note={note} velocity=1")).collect();
    client.type_line(&notes.join("\n"));
    for note in 0..100u8 {
        assert_eq!(
            printed.recv_timeout(WAIT).unwrap(),
            format!("note_on channel=0 note={note} velocity=1 time=0"),
            "in order, all of them"
        );
    }
    // Played out 20 ms after they were sent: not before.
    assert!(sent.elapsed() >= Duration::from_millis(20), "{:?}", sent.elapsed());

    // Jitter is observed per millisecond of arrivals: one more message, later, makes sure the
    // stats have at least one observation even if all the notes came in one.
    std::thread::sleep(Duration::from_millis(3));
    client.type_line("stop");
    wait_for_line(printed, "stop time=0");
    server.process.signal(libc::SIGUSR1);
    let line = StatsLine { text: wait_for_line(log, "playout 127.0.0.1:") };
    eprintln!("{}", line.text);
    line.assert_complete(100, "20.00");
    // At exit, once more (the client is still connected).
    server.process.signal(libc::SIGTERM);
    let line = StatsLine { text: wait_for_line(log, "playout 127.0.0.1:") };
    line.assert_complete(100, "20.00");
    assert_eq!(server.process.exit_status().code(), Some(0));
}

#[test]
fn connect_plays_out_what_the_server_sends_and_reports_at_exit() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = start(&["connect", &server.local_addr().to_string(), "--jitter-buffer", "auto", "--stats"]);
    let (log, printed) = (&client.stderr, &client.stdout);
    wait_for_line(log, "connected to");
    // Until the client is registered (and its request for stamps read), broadcasts may miss it.
    let deadline = Instant::now() + WAIT;
    loop {
        server.send(&Message::Clock).unwrap();
        if printed.recv_timeout(Duration::from_millis(200)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "nothing arrived");
    }
    // A 1 kHz stream, as the buffer is meant for, for a second: the jitter is measured once the
    // offset's window holds half a second of arrivals, and its record starts again once it holds
    // two seconds (after 1.75 s), so a stream of about a second ends with it measured.
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(1) {
        server.send(&Message::NoteOn { channel: 1, note: (sent % 128) as u8, velocity: 2 }).unwrap();
        sent += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut notes = 0;
    while notes < sent {
        let line = printed.recv_timeout(WAIT).expect("every note");
        notes += usize::from(line.starts_with("note_on channel=1"));
    }
    client.process.signal(libc::SIGTERM);
    let line = StatsLine { text: wait_for_line(log, "playout 127.0.0.1:") };
    eprintln!("{}", line.text);
    let delay = line.field("delay").to_string();
    line.assert_complete(sent as u64, &delay);
    line.assert_jitter_measured();
    let mut client = client;
    assert_eq!(client.process.exit_status().code(), Some(0));
}

#[test]
fn a_reconnecting_connect_reports_its_current_connections_buffer() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut client =
        start(&["connect", "--reconnect", &server.local_addr().to_string(), "--jitter-buffer", "5", "--stats"]);
    wait_for_client(&server);
    let deadline = Instant::now() + WAIT;
    loop {
        server.send(&Message::Clock).unwrap();
        if client.stdout.recv_timeout(Duration::from_millis(200)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "nothing arrived");
    }
    for note in 0..50u8 {
        server.send(&Message::NoteOn { channel: 0, note, velocity: 3 }).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..50 {
        client.stdout.recv_timeout(WAIT).expect("all 50 notes");
    }
    client.process.signal(libc::SIGUSR1);
    let line = StatsLine { text: wait_for_line(&client.stderr, "playout 127.0.0.1:") };
    line.assert_complete(50, "5.00");
    client.process.signal(libc::SIGTERM);
    assert_eq!(client.process.exit_status().code(), Some(0));
}

/// One-way latencies (µs, sorted) of a 1 kHz stream from a midisock port through a link with
/// 5 ± 3 ms of jitter to `serve EXTRA...`, measured to the line `serve` prints; and the stats
/// line when there is a buffer.
fn through_a_jittery_link(extra: &[&str]) -> (Vec<f64>, Option<String>) {
    use midisock_testkit::{DelayDistribution, JitterProxy, ProxyConfig};
    const COUNT: usize = 1000;
    let (mut server, port) = start_serve(extra);
    let link = DelayDistribution::Uniform { centre: Duration::from_millis(5), spread: Duration::from_millis(3) };
    let proxy = JitterProxy::start(ProxyConfig::new(format!("127.0.0.1:{port}").parse().unwrap(), link)).unwrap();
    let client = midisock::connect(proxy.local_addr()).unwrap();
    // Until a message is printed (the server has the client), and with a buffer until the
    // client has seen the request and stamps.
    let deadline = Instant::now() + WAIT;
    loop {
        client.send(&Message::Clock).unwrap();
        let printed = server.stdout.recv_timeout(Duration::from_millis(100)).is_ok();
        if printed && (extra.is_empty() || client.sends_stamps()) {
            break;
        }
        assert!(Instant::now() < deadline, "the link never carried a (stamped) message");
    }
    std::thread::sleep(Duration::from_millis(300));
    while server.stdout.try_recv().is_ok() {}

    // Arrivals timed by a thread of their own, waiting on the lines as they come.
    let lines = std::mem::replace(&mut server.stdout, std::sync::mpsc::channel().1);
    let timer = std::thread::spawn(move || {
        (0..COUNT).map(|_| (lines.recv_timeout(WAIT).expect("every message"), Instant::now())).collect::<Vec<_>>()
    });
    let start = Instant::now();
    let mut sent = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let due = start + Duration::from_millis(i as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        sent.push(Instant::now());
        let message = Message::ControlChange { channel: 0, control: (i / 128) as u8, value: (i % 128) as u8 };
        client.send(&message).unwrap();
    }
    let arrived = timer.join().unwrap();
    let mut latencies = Vec::with_capacity(COUNT);
    for (i, (line, at)) in arrived.iter().enumerate() {
        assert_eq!(line, &format!("control_change channel=0 control={} value={} time=0", i / 128, i % 128));
        latencies.push(at.duration_since(sent[i]).as_secs_f64() * 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    let stats = (!extra.is_empty()).then(|| {
        server.process.signal(libc::SIGUSR1);
        wait_for_line(&server.stderr, "playout 127.0.0.1:")
    });
    proxy.shutdown();
    (latencies, stats)
}

/// The buffer's point, end to end through the CLI: the same jittery link with and without it.
/// Reported (the spread a loaded machine gives is not asserted); asserted: every message, in
/// order, and the buffer's own count of them.
#[test]
fn a_jittery_link_with_and_without_the_buffer() {
    let pick = |sorted: &[f64], q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (plain, _) = through_a_jittery_link(&[]);
    let (buffered, stats) = through_a_jittery_link(&["--jitter-buffer", "10", "--stats"]);
    let stats = StatsLine { text: stats.unwrap() };
    stats.assert_complete(1000, "10.00");
    for (name, sorted) in [("plain", &plain), ("--jitter-buffer 10", &buffered)] {
        eprintln!(
            "1 kHz through 5±3 ms of jitter to `serve` {name}: one-way p50 {:.2} ms, p99.9 {:.2} ms, p99.9 − p50 {:.2} ms",
            pick(sorted, 0.5) / 1e3,
            pick(sorted, 0.999) / 1e3,
            (pick(sorted, 0.999) - pick(sorted, 0.5)) / 1e3
        );
    }
    eprintln!("{}", stats.text);
}
