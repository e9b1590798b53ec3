//! The client of mido's socket-port documentation: connect to a server and send it messages.
//!
//! ```python
//! output = connect('localhost', 8080)
//! output.send(message)
//! ```
//!
//! Run: `cargo run --example client_send [ADDR] [MESSAGE...]`; the default message is a note_on.

use midisock::{connect, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "localhost:8080".into());
    let mut messages: Vec<Message> = args.map(|text| text.parse()).collect::<Result<_, _>>()?;
    if messages.is_empty() {
        messages.push(Message::note_on(0, 60, 64)?);
    }
    let output = connect(addr)?;
    for message in &messages {
        output.send(message)?;
    }
    output.close();
    Ok(())
}
