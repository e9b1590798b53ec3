//! A 200 MiB unterminated sysex flood: the server's memory stays bounded. In its own test
//! binary so that no other test's allocations disturb the RSS measurement.

use midisock::{connect, Message, PortServer, ServerConfig};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn on(note: u8) -> Message {
    Message::NoteOn { channel: 0, note, velocity: 100 }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_unterminated_200_mib_sysex_flood_is_never_buffered() {
    let server = PortServer::bind_with("127.0.0.1:0", ServerConfig::default()).unwrap();
    let mut flood = TcpStream::connect(server.local_addr()).unwrap();
    let steady = connect(server.local_addr()).unwrap();
    steady.send(&on(1)).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(1)));
    let before = rss_kib();
    let chunk = vec![0x55u8; 1 << 20];
    flood.write_all(&[0xF0]).unwrap();
    for _ in 0..200 {
        flood.write_all(&chunk).unwrap();
    }
    // The flood ends with a clock (real-time: delivered even inside the sysex), so we know the
    // server has read all of it.
    flood.write_all(&[0xF8]).unwrap();
    assert_eq!(server.receive_timeout(WAIT * 3).unwrap(), Some(Message::Clock));
    let grown_kib = rss_kib().saturating_sub(before);
    eprintln!("200 MiB sysex flood: RSS grew by {grown_kib} KiB (from {before} KiB)");
    assert!(grown_kib < 32 * 1024, "memory grew by {grown_kib} KiB during a 200 MiB flood");
    assert_eq!(server.stats().sysex_oversized, 1);
    steady.send(&on(2)).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(2)));
}
