//! Helpers shared by the core's integration tests that look at raw connections (`mod support;`).

use midisock::RefusalCause;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

/// Everything the server writes until it closes the connection, within `wait`.
pub fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut bytes = Vec::new();
    if let Err(e) = stream.read_to_end(&mut bytes) {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed within {wait:?}");
    }
    bytes
}

/// The refusal notice on the wire, written out from docs/protocol.md: F4 "refused: <cause>" F7.
pub fn notice(cause: RefusalCause) -> Vec<u8> {
    [&[0xF4][..], b"refused: ", cause.as_str().as_bytes(), &[0xF7]].concat()
}
