//! The client side of "turning things on their head": print whatever the server sends.
//!
//! ```python
//! for message in connect('localhost', 8080):
//!     print(message)
//! ```
//!
//! Run: `cargo run --example client_print [ADDR]`. Ends when the server closes the connection.

use midisock::connect;

fn main() -> Result<(), midisock::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "localhost:8080".into());
    for message in &connect(addr)? {
        println!("{message}");
    }
    Ok(())
}
