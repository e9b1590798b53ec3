//! # midisock — MIDI 1.0 over TCP, wire-compatible with mido's socket ports
//!
//! The wire protocol is a plain MIDI 1.0 byte stream over TCP: no framing, no headers. A mido
//! `connect()` talks to a midisock [`PortServer`], and a midisock [`connect`] talks to a mido
//! `PortServer`, byte for byte.
//!
//! ```no_run
//! use midisock::{connect, Message, PortServer};
//!
//! let server = PortServer::bind("localhost:8080")?;
//! let output = connect("localhost:8080")?;
//! output.send(&Message::note_on(0, 60, 64)?)?;
//! println!("{}", server.receive()?); // note_on channel=0 note=60 velocity=64 time=0
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The contract
//! - **What blocks.** [`SocketPort::send`] blocks while the socket's send buffer is full;
//!   [`PortServer::send`] never blocks on a client (it queues, bounded, and disconnects a client
//!   that stops reading). `receive` blocks without polling sleeps; `try_receive` never blocks;
//!   `receive_timeout` waits at most its timeout.
//! - **Threads.** A [`SocketPort`] does its I/O on the calling thread; it starts a thread
//!   ("midisock-cb") only for [`SocketPort::set_callback`], and the callback runs
//!   there. A [`PortServer`] owns exactly one I/O thread ("midisock-server") whatever the number of
//!   clients. Both types are `Send + Sync`; concurrent sends never interleave bytes.
//! - **What allocates.** The [`Parser`] and the encoder allocate nothing except a sysex payload
//!   (bounded by the sysex limit, 1 MiB by default). Sending a message of up to 3 bytes on a port
//!   allocates nothing.
//! - **Bad input.** No byte sequence from the network can panic, hang or grow memory without
//!   bound: see the parser table in [`parser`] and [`ServerConfig`].
//! - **Timestamps.** Every received message carries `CLOCK_MONOTONIC` nanoseconds
//!   ([`monotonic_ns`]) taken when its last byte was read.
//! - **Busy streams.** `receive_batch` takes every message of a read under one lock.
//! - **Ends.** Once a port has seen its peer close, every send fails with [`Error::Closed`]; a
//!   server's refusal notice makes every receive and send fail with [`Error::Refused`] and its
//!   cause; [`SocketPort::finish`] tells a program that only sends whether it was refused. A
//!   [`ReconnectingPort`] reconnects by itself, with backoff, on its own thread
//!   ("midisock-recon"), releasing the notes it received on every drop.
//!
//! ## MIDI bytes
//! The core is the one place that decodes MIDI; front ends (the C ABI, the plugin, the CLI) call
//! it. A byte stream goes through a [`Parser`]; bytes that must be whole messages (what a
//! program hands a send call) through [`decode_messages`], which says why they are not
//! ([`DecodeError`]: `[0x90, 60]` is [`DecodeError::Incomplete`]); exactly one message through
//! [`Message::from_bytes`]. A message other than a sysex can be held without a heap as a
//! [`ShortMessage`] (its 1–3 validated bytes, `Copy`), which knows its channel and its
//! [`Message`]. Sysex limits ([`DEFAULT_MAX_SYSEX_LEN`], [`ServerConfig`]) count the payload,
//! without `F0`/`F7`.
//!
//! ## Protections (all opt-in except the limits)
//! [`ServerConfig`] bounds sysex size, per-client queues, clients and the inbox, and adds an
//! allowlist, a sysex policy, relaying, a shared token ([`ConnectOptions::token`]: a hello that
//! peers without auth, mido's included, ignore) and TLS ([`TlsServer`], [`TlsClient`]). A client
//! that disconnects has the notes it held released ([`HeldNotes`]); dead peers are found by TCP
//! keepalive and a write deadline ([`KEEPALIVE_IDLE`], [`WRITE_DEADLINE`]).
#![deny(unsafe_op_in_unsafe_fn)]

mod address;
mod auth;
mod clock;
mod doorbell;
mod encode;
mod error;
mod message;
mod net;
mod notes;
pub mod parser;
mod poll_fd;
mod port;
mod reconnect;
mod refusal;
mod server;
mod short_message;
mod text;
pub mod timing;
mod tls;

pub use address::{Address, IntoAddress};
pub use auth::{validate_token, MAX_TOKEN_LEN};
pub use clock::monotonic_ns;
pub use encode::{BufferTooSmall, MAX_SHORT_MESSAGE_LEN};
pub use error::{Error, Result};
pub use message::{panic_messages, reset_messages, InvalidValue, Message, MessageType, Received};
pub use net::{KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES, WRITE_DEADLINE};
pub use notes::HeldNotes;
pub use parser::{decode_messages, DecodeError, Parser, ParserStats, DEFAULT_MAX_SYSEX_LEN};
pub use port::{connect, connect_timeout, connect_with, ConnectOptions, SocketPort};
pub use reconnect::{LinkState, Reconnect, ReconnectingPort};
pub use refusal::RefusalCause;
/// The TLS library behind [`TlsClient`] and [`TlsServer`], for `from_der` and `from_rustls`.
pub use rustls;
pub use server::{DisconnectCause, EventHook, PortServer, ServerConfig, ServerEvent, ServerStats, SysexPolicy};
pub use short_message::ShortMessage;
pub use text::ParseMessageError;
pub use tls::{TlsClient, TlsServer};

#[cfg(test)]
mod assert_traits {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn ports_and_servers_are_send_and_sync() {
        send_sync::<super::SocketPort>();
        send_sync::<super::PortServer>();
    }
}
