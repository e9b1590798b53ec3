//! "Under the hood", many clients at once with non-blocking accept, as in mido's socket-port documentation:
//!
//! ```python
//! with PortServer('localhost', 8080) as server:
//!     clients = []
//!     while True:
//!         client = server.accept(block=False)
//!         if client:
//!             print('Connection from {}'.format(client.name))
//!             clients.append(client)
//!         for i, client in reversed(enumerate(clients)):
//!             if client.closed:
//!                 print('{} disconnected'.format(client.name))
//!                 del clients[i]
//!         for client in clients:
//!             for message in client.iter_pending():
//!                 print('Received {} from {}'.format(message, client))
//!         # Do other things
//! ```
//!
//! (The Python has a bug — `reversed(enumerate(...))` raises — fixed here by retaining.)
//! Run: `cargo run --example accept_many [ADDR]`.

use midisock::{PortServer, SocketPort};
use std::time::Duration;

fn main() -> Result<(), midisock::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "localhost:8080".into());
    let server = PortServer::bind(addr)?;
    eprintln!("listening on {}", server.name());
    let mut clients: Vec<SocketPort> = Vec::new();
    loop {
        // Handle connections.
        if let Some(client) = server.try_accept()? {
            println!("Connection from {}", client.name());
            clients.push(client);
        }
        clients.retain(|client| {
            let closed = client.is_closed();
            if closed {
                println!("{} disconnected", client.name());
            }
            !closed
        });
        // Receive messages.
        for client in &clients {
            for message in client.iter_pending() {
                println!("Received {message} from {}", client.name());
            }
        }
        // Do other things; here, just avoid spinning a core.
        std::thread::sleep(Duration::from_millis(1));
    }
}
