//! The inbox's bound is memory: a flood of one-byte real-time messages, sent faster than the
//! program reads, keeps the process within `max_inbox_bytes` (plus a small constant), and the
//! memory is given back once the program has read everything — after a second flood too. In its
//! own test binary, with one test, so that nothing else allocates while RSS is measured.

use midisock::{Message, PortServer, ServerConfig};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;
const INBOX: u64 = 16 * MIB;
/// Clocks per flood: 8 MiB of them, half a million slots' worth of the bound sixteen times over
/// (a bound counted in wire bytes would let them take 256 MiB).
const FLOOD: usize = 8 << 20;
/// What else a flood may cost: the I/O thread's parse buffer (one read's messages), the test's
/// own sender, allocator slack.
const SLACK: u64 = 8 * MIB;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Floods `FLOOD` clocks from a raw client while the program reads them one by one (slower
/// than they come); returns the highest RSS seen.
fn flood_and_read(server: &PortServer) -> u64 {
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![0xF8u8; 256 * 1024];
        for _ in 0..FLOOD / chunk.len() {
            client.write_all(&chunk).unwrap();
        }
        client
    });
    let mut peak = 0;
    for i in 0..FLOOD {
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Clock), "clock {i}");
        if i % 4096 == 0 {
            peak = peak.max(rss_bytes());
        }
    }
    drop(sender.join().unwrap());
    peak
}

#[test]
fn a_real_time_flood_stays_within_the_inbox_bound_and_memory_is_given_back() {
    let server = PortServer::bind_with("127.0.0.1:0", ServerConfig::default().max_inbox_bytes(INBOX as usize)).unwrap();
    assert_eq!(server.try_receive().unwrap(), None);
    let baseline = rss_bytes();
    for round in 1..=2 {
        let peak = flood_and_read(&server);
        let after = rss_bytes();
        eprintln!(
            "flood {round}: baseline {} KiB, peak {} KiB (+{} KiB), after reading {} KiB (+{} KiB)",
            baseline / 1024,
            peak / 1024,
            peak.saturating_sub(baseline) / 1024,
            after / 1024,
            after.saturating_sub(baseline) / 1024
        );
        assert!(
            peak <= baseline + INBOX + SLACK,
            "flood {round}: RSS peaked {} MiB over its baseline (bound {} MiB + {} MiB)",
            (peak - baseline) / MIB,
            INBOX / MIB,
            SLACK / MIB
        );
        assert!(
            peak >= baseline + INBOX / 2,
            "flood {round}: the inbox never filled (peak +{} KiB): the test did not test the bound",
            peak.saturating_sub(baseline) / 1024
        );
        assert!(
            after <= baseline + 4 * MIB,
            "flood {round}: {} KiB still held after everything was read",
            after.saturating_sub(baseline) / 1024
        );
    }
}
