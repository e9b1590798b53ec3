//! "Under the hood": a server that uses only `accept()`, one connection at a time.
//!
//! ```python
//! with PortServer('localhost', 8080) as server:
//!     while True:
//!         client = server.accept()
//!         for message in client:
//!             print(message)
//! ```
//!
//! Run: `cargo run --example accept_one [ADDR]`.

use midisock::PortServer;

fn main() -> Result<(), midisock::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "localhost:8080".into());
    let server = PortServer::bind(addr)?;
    eprintln!("listening on {}", server.name());
    loop {
        let client = server.accept()?;
        eprintln!("connection from {}", client.name());
        for message in &client {
            println!("{message}");
        }
        eprintln!("{} disconnected", client.name());
    }
}
