//! How much memory a server with a jitter buffer spends on its clients.
//!
//! ```text
//! cargo run --release -p midisock --example jitter_server_memory -- plain 1000
//! cargo run --release -p midisock --example jitter_server_memory -- stamping 1000 [MESSAGES]
//! cargo run --release -p midisock --example jitter_server_memory -- none 1000
//! ```
//!
//! Starts a server with a 20 ms jitter buffer (`none`: without one), connects that many clients
//! from raw sockets in this process (so the clients themselves cost next to nothing in user
//! memory), has each send `MESSAGES` notes (default 100) — plain, as mido sends them, or stamped
//! after answering the server's request — waits until the server has received them all, and
//! prints the process's resident memory (`VmRSS`, and the anonymous part of it, `RssAnon`)
//! before the clients came and after.

use midisock::timing::{DelayMode, StampEncoder, STAMP_ANSWER};
use midisock::{Message, PortServer, ServerConfig};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Room for two descriptors per client (both ends live in this process).
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: jitter_server_memory plain|stamping|none CLIENTS [MESSAGES]";
    let kind = args.first().map(String::as_str).expect(usage);
    let clients: usize = args.get(1).and_then(|n| n.parse().ok()).expect(usage);
    let per_client: usize = args.get(2).map_or(100, |n| n.parse().expect(usage));
    let (jitter_buffer, stamping) = match kind {
        "plain" => (true, false),
        "stamping" => (true, true),
        "none" => (false, false),
        _ => panic!("{usage}"),
    };
    raise_descriptor_limit();
    let mut config = ServerConfig::default().max_clients(clients + 16);
    if jitter_buffer {
        config = config.jitter_buffer(DelayMode::fixed(20_000_000));
    }
    let server = PortServer::bind_with("127.0.0.1:0", config).expect("bind");
    // Served from the start: every connection is read (not kept in the lobby for accept()).
    assert!(server.try_receive().unwrap().is_none());
    std::thread::sleep(Duration::from_millis(200));
    let (rss_before, anon_before) = (status_kib("VmRSS:"), status_kib("RssAnon:"));

    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        sockets.push(TcpStream::connect(server.local_addr()).expect("connect"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.client_count() < clients {
        assert!(Instant::now() < deadline, "only {} of {clients} clients connected", server.client_count());
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut bytes = Vec::new();
    for socket in &mut sockets {
        bytes.clear();
        if stamping {
            bytes.extend_from_slice(STAMP_ANSWER);
            let mut encoder = StampEncoder::new();
            let start = midisock::monotonic_ns();
            for i in 0..per_client {
                let note = Message::NoteOn { channel: 0, note: (i % 128) as u8, velocity: 64 };
                encoder.encode_to_vec(start + i as u64 * 1_000, &note, &mut bytes);
            }
        } else {
            for i in 0..per_client {
                Message::NoteOn { channel: 0, note: (i % 128) as u8, velocity: 64 }.encode_to_vec(&mut bytes);
            }
        }
        socket.write_all(&bytes).expect("send");
    }
    // Every message, except note-ons the jitter buffers dropped as stale (more than 200 ms late:
    // a burst this size takes the server seconds to read), which they count.
    let expected = clients * per_client;
    let mut received = 0;
    let stale = || server.playout_stats().iter().map(|(_, s)| s.stale_notes_dropped as usize).sum::<usize>();
    while received + stale() < expected {
        match server.receive_timeout(Duration::from_secs(30)).expect("receive") {
            Some(_) => received += 1,
            None => panic!("received {received} of {expected} messages ({} dropped as stale)", stale()),
        }
    }
    let early: u64 = server.playout_stats().iter().map(|(_, s)| s.delivered_early_full).sum();
    let (rss_after, anon_after) = (status_kib("VmRSS:"), status_kib("RssAnon:"));
    let per = |before: u64, after: u64| (after.saturating_sub(before)) as f64 / clients as f64;
    println!(
        "{kind}: {clients} clients x {per_client} messages: VmRSS {rss_before} -> {rss_after} KiB \
         ({:.1} KiB/client), RssAnon {anon_before} -> {anon_after} KiB ({:.1} KiB/client); {} clients played \
         out, {} messages delivered early, {} stale note-ons dropped",
        per(rss_before, rss_after),
        per(anon_before, anon_after),
        server.playout_stats().len(),
        early,
        stale(),
    );
    drop(sockets);
    server.close();
}
