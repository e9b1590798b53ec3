//! The first server of mido's socket-port documentation, "a simple server is only two lines":
//!
//! ```python
//! for message in PortServer('localhost', 8080):
//!     print(message)
//! ```
//!
//! Run: `cargo run --example server_print [ADDR]` (default localhost:8080), then send to it with
//! `cargo run --example client_send` or mido's `connect('localhost', 8080)`.

use midisock::PortServer;

fn main() -> Result<(), midisock::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "localhost:8080".into());
    let server = PortServer::bind(addr)?;
    eprintln!("listening on {}", server.name());
    for message in &server {
        println!("{message}");
    }
    Ok(())
}
