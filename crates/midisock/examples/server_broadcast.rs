//! "Turning things on their head": the server sends, every connected client receives.
//!
//! ```python
//! server = PortServer('localhost', 8080)
//! while True:
//!     server.send(message)
//! ```
//!
//! Run: `cargo run --example server_broadcast [ADDR]`, then `cargo run --example client_print`
//! (as many as you like). Plays a C major arpeggio forever, one note every 250 ms. Clients are
//! accepted even though this program never receives.

use midisock::{Message, PortServer};
use std::time::Duration;

fn main() -> Result<(), midisock::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "localhost:8080".into());
    let server = PortServer::bind(addr)?;
    eprintln!("listening on {}", server.name());
    for note in [60u8, 64, 67, 72].into_iter().cycle() {
        server.send(&Message::NoteOn { channel: 0, note, velocity: 100 })?;
        std::thread::sleep(Duration::from_millis(250));
        server.send(&Message::NoteOff { channel: 0, note, velocity: 0 })?;
    }
    Ok(())
}
