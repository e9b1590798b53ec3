//! Clients that leave while the server broadcasts: every byte a client sent before it left is
//! delivered exactly once, and every note it left held is released — whether it leaves with a
//! FIN and a reset (close with unread data), a half-close, or a bare reset. The broadcast makes the
//! server's writes to a departing client fail; what the client sent must survive that.

use midisock::{Message, PortServer, ServerConfig};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const THREADS: usize = 4;
const CLIENTS_PER_THREAD: usize = 60;

#[derive(Clone, Copy, Debug)]
enum Departure {
    /// `close()` right after sending: a FIN, then a reset for the broadcast it never read.
    Close,
    /// Shuts its sending half (FIN) and reads until the server closes.
    HalfClose,
    /// A reset with no FIN at all (SO_LINGER 0).
    Reset,
}

/// Client `id`'s note: a distinct (channel, note) per client.
fn note_of(id: usize) -> (u8, u8) {
    ((id % 16) as u8, (id / 16) as u8)
}

/// What client `id` sends: a held note, a sysex tagged with its id, and a controller.
fn stream_of(id: usize) -> Vec<Message> {
    let (channel, note) = note_of(id);
    vec![
        Message::NoteOn { channel, note, velocity: 99 },
        Message::SysEx { data: vec![(id / 128) as u8, (id % 128) as u8, 0x55, 0x2A] },
        Message::ControlChange { channel, control: 20 + (id / 128) as u8, value: (id % 128) as u8 },
    ]
}

fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket descriptor and a linger struct of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

fn visit_and_leave(server: std::net::SocketAddr, id: usize, departure: Departure) {
    let mut stream = TcpStream::connect(server).unwrap();
    let bytes: Vec<u8> = stream_of(id).iter().flat_map(Message::to_bytes).collect();
    stream.write_all(&bytes).unwrap();
    match departure {
        Departure::Close => drop(stream),
        Departure::HalfClose => {
            stream.shutdown(Shutdown::Write).unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let mut sink = [0u8; 64 * 1024];
            // The broadcast, until the server sees our FIN and closes.
            while matches!(stream.read(&mut sink), Ok(1..)) {}
        }
        Departure::Reset => {
            set_linger_zero(&stream);
            drop(stream);
        }
    }
}

fn departures_under_broadcast(departure: Departure) {
    let server = Arc::new(PortServer::bind_with("127.0.0.1:0", ServerConfig::default()).unwrap());
    // Read from the start, so every connection is served (not parked for accept()).
    assert_eq!(server.try_receive().unwrap(), None);
    let address = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let broadcaster = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        thread::spawn(move || {
            let clocks = vec![Message::Clock; 256];
            while !stop.load(Ordering::Relaxed) {
                server.send_all(&clocks).unwrap();
                thread::yield_now();
            }
        })
    };
    let visitors: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..CLIENTS_PER_THREAD {
                    visit_and_leave(address, t * CLIENTS_PER_THREAD + i, departure);
                }
            })
        })
        .collect();
    for visitor in visitors {
        visitor.join().unwrap();
    }

    let clients = THREADS * CLIENTS_PER_THREAD;
    let mut seen: HashMap<Message, usize> = HashMap::new();
    let mut releases = 0;
    let deadline = Instant::now() + WAIT;
    // Each client's three messages and its note's release.
    while seen.values().sum::<usize>() < clients * 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(message) = server.receive_timeout(left).unwrap() else {
            let missing = (0..clients).filter(|&id| stream_of(id).iter().any(|m| !seen.contains_key(m))).count();
            panic!(
                "{departure:?}: after {WAIT:?}, {} of {} messages, {releases} releases; {missing} clients lost messages",
                seen.values().sum::<usize>(),
                clients * 4
            );
        };
        if matches!(message, Message::NoteOff { .. }) {
            releases += 1;
        }
        *seen.entry(message).or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    broadcaster.join().unwrap();
    let deadline = Instant::now() + WAIT;
    while server.client_count() > 0 {
        assert!(Instant::now() < deadline, "clients still connected");
        thread::sleep(Duration::from_millis(5));
    }
    // Nothing more arrives: every message exactly once.
    assert_eq!(server.receive_timeout(Duration::from_millis(200)).unwrap(), None);
    for id in 0..clients {
        let (channel, note) = note_of(id);
        for message in stream_of(id).into_iter().chain([Message::NoteOff { channel, note, velocity: 0 }]) {
            assert_eq!(seen.get(&message), Some(&1), "{departure:?}: client {id}: {message}");
        }
    }
    assert_eq!(server.stats().notes_released, clients as u64);
}

#[test]
fn clients_closing_under_a_broadcast_lose_nothing_and_leave_no_note_held() {
    departures_under_broadcast(Departure::Close);
}

#[test]
fn clients_half_closing_under_a_broadcast_lose_nothing_and_leave_no_note_held() {
    departures_under_broadcast(Departure::HalfClose);
}

#[test]
fn clients_resetting_under_a_broadcast_lose_nothing_and_leave_no_note_held() {
    departures_under_broadcast(Departure::Reset);
}
