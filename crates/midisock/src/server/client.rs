//! One connection the server serves: its socket, its outgoing queue and its role.

use crate::auth::HelloCheck;
use crate::notes::HeldNotes;
use crate::parser::Parser;
use mio::net::TcpStream;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What the server does with a connection's incoming bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Role {
    /// Accepted and sent broadcasts, but not read yet: waiting to be claimed by `accept()` or by
    /// the first `receive()` (see the server module docs).
    Lobby = 0,
    /// Read by the event loop into the server's inbox.
    Served = 1,
    /// Gone: closed, failed, or handed to the user by `accept()`.
    Gone = 2,
    /// Connected, but its hello (the token) is still being checked: not sent to, not counted.
    Authenticating = 3,
}

pub(crate) struct Client {
    pub(crate) token: mio::Token,
    pub(crate) peer: SocketAddr,
    pub(crate) stream: TcpStream,
    role: AtomicU8,
    /// Written by any thread that broadcasts and by the event loop when the socket drains.
    pub(crate) output: Mutex<Output>,
    /// Only the event loop reads; the mutex makes the handover to `accept()` safe.
    pub(crate) reader: Mutex<Reader>,
}

/// The receiving state of a served client.
pub(crate) struct Reader {
    pub(crate) parser: Parser,
    /// Notes this client holds down, released for everyone else when it disconnects.
    pub(crate) held: HeldNotes,
    /// The check of its hello, while it is [`Role::Authenticating`].
    pub(crate) hello: Option<HelloCheck>,
}

/// Bytes accepted for the client but not yet taken by its socket.
#[derive(Default)]
pub(crate) struct Output {
    queue: Vec<u8>,
    /// How much of `queue` has been written.
    written: usize,
}

/// Why a write to a client could not be completed.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// The client's queue would exceed the limit: it stopped reading.
    QueueFull,
    /// The connection failed or the client is gone.
    Broken,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Output {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.queue[self.written..]
    }

    pub(crate) fn take_pending(&mut self) -> Vec<u8> {
        let mut queue = std::mem::take(&mut self.queue);
        queue.drain(..self.written);
        self.written = 0;
        queue
    }
}

impl Client {
    pub(crate) fn new(
        token: mio::Token,
        peer: SocketAddr,
        stream: TcpStream,
        role: Role,
        parser: Parser,
        hello: Option<HelloCheck>,
    ) -> Client {
        Client {
            token,
            peer,
            stream,
            role: AtomicU8::new(role as u8),
            output: Mutex::new(Output::default()),
            reader: Mutex::new(Reader { parser, held: HeldNotes::default(), hello }),
        }
    }

    pub(crate) fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            0 => Role::Lobby,
            1 => Role::Served,
            3 => Role::Authenticating,
            _ => Role::Gone,
        }
    }

    pub(crate) fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Release);
    }

    /// Writes `bytes` now as far as the socket takes them and queues the rest, so the caller
    /// never blocks on a slow client. The queue is bounded by `max_queued`: a client that would
    /// exceed it has stopped reading and must be disconnected (never thinned — a stream with
    /// holes in it leaves notes stuck).
    pub(crate) fn write_or_queue(&self, bytes: &[u8], max_queued: usize) -> Result<(), WriteFailure> {
        let mut output = lock(&self.output);
        match self.role() {
            Role::Gone => return Err(WriteFailure::Broken),
            // Not admitted yet: it gets the stream from the moment it is.
            Role::Authenticating => return Ok(()),
            Role::Lobby | Role::Served => {}
        }
        let mut rest = bytes;
        if output.pending().is_empty() {
            // Nothing queued ahead of us, so writing directly keeps the byte order.
            rest = write_some(&self.stream, rest)?;
        }
        if rest.is_empty() {
            return Ok(());
        }
        if output.pending().len() + rest.len() > max_queued {
            return Err(WriteFailure::QueueFull);
        }
        if output.written > 0 && output.written >= output.queue.len() / 2 {
            // Compact, so the queue's memory tracks what is pending, not what was ever queued.
            let written = output.written;
            output.queue.drain(..written);
            output.written = 0;
        }
        output.queue.extend_from_slice(rest);
        // The event loop finishes the write when the socket drains (a writable edge follows
        // every WouldBlock, so nothing queued here can be forgotten).
        Ok(())
    }

    /// Writes queued output; called by the event loop on a writable event.
    pub(crate) fn flush(&self) -> Result<(), WriteFailure> {
        let mut output = lock(&self.output);
        if output.pending().is_empty() {
            return Ok(());
        }
        let before = output.pending().len();
        let left = write_some(&self.stream, output.pending())?.len();
        output.written += before - left;
        if left == 0 {
            output.queue = Vec::new();
            output.written = 0;
        }
        Ok(())
    }

    /// True when broadcast output still waits for the socket.
    pub(crate) fn has_pending_output(&self) -> bool {
        self.role() != Role::Gone && !lock(&self.output).pending().is_empty()
    }

    /// Ends the connection now: the peer sees EOF and a broadcaster stops queueing for it.
    pub(crate) fn shut_down(&self) {
        self.set_role(Role::Gone);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Writes as much of `bytes` as the socket takes without blocking; returns what is left.
fn write_some<'a>(mut stream: &TcpStream, mut bytes: &'a [u8]) -> Result<&'a [u8], WriteFailure> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(WriteFailure::Broken),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(WriteFailure::Broken),
        }
    }
    Ok(bytes)
}
