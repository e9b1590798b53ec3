//! One connection the server serves: its socket, its outgoing queue and its role.

use crate::auth::HelloCheck;
use crate::notes::HeldNotes;
use crate::parser::Parser;
use crate::tls;
use mio::net::TcpStream;
use rustls::Connection;
use std::io::{self, Read, Write};
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
    /// Connected, but its TLS handshake or its hello (the token) is not done yet: not sent to,
    /// not counted.
    Admitting = 3,
    /// Handed to the user by `accept()`: the socket lives on in a `SocketPort` (through a
    /// duplicated descriptor), so the server must never shut it down.
    HandedOver = 4,
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
    /// The TLS session, when the server uses TLS (taken out when the connection is handed to
    /// `accept()`). The innermost lock: taken after `output` and `reader`, never before.
    tls: Option<Mutex<Option<Connection>>>,
}

/// The receiving state of a served client.
pub(crate) struct Reader {
    pub(crate) parser: Parser,
    /// Notes this client holds down, released for everyone else when it disconnects.
    pub(crate) held: HeldNotes,
    /// The check of its hello, while it is [`Role::Admitting`].
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
        tls: Option<Connection>,
    ) -> Client {
        Client {
            token,
            peer,
            stream,
            role: AtomicU8::new(role as u8),
            output: Mutex::new(Output::default()),
            reader: Mutex::new(Reader { parser, held: HeldNotes::default(), hello }),
            tls: tls.map(|conn| Mutex::new(Some(conn))),
        }
    }

    /// Runs `step` on the TLS session; `None` without TLS, `Some(Err(Broken))` once it is gone.
    fn with_tls<T>(&self, step: impl FnOnce(&mut Connection) -> T) -> Option<Result<T, WriteFailure>> {
        let tls = self.tls.as_ref()?;
        let mut session = lock(tls);
        Some(session.as_mut().map(step).ok_or(WriteFailure::Broken))
    }

    /// Reads plaintext, like a non-blocking socket read (see [`tls::read_plaintext`] for `None`).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.with_tls(|conn| tls::read_plaintext(conn, &self.stream, buf)) {
            None => (&self.stream).read(buf).map(Some),
            Some(Ok(result)) => result,
            Some(Err(_)) => Ok(Some(0)),
        }
    }

    /// Advances the TLS handshake with what the socket has: `Ok(true)` once it is complete (at
    /// once without TLS), `Ok(false)` while it needs more from the peer.
    pub(crate) fn handshake(&self) -> io::Result<bool> {
        let step = |conn: &mut Connection| -> io::Result<bool> {
            while conn.is_handshaking() {
                match conn.read_tls(&mut &self.stream) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                let processed = conn.process_new_packets();
                let flushed = tls::flush_records(conn, &self.stream);
                processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                flushed?;
            }
            Ok(true)
        };
        match self.with_tls(step) {
            None => Ok(true),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Takes the TLS session out, for the port `accept()` hands over.
    pub(crate) fn take_tls(&self) -> Option<Connection> {
        self.tls.as_ref().and_then(|tls| lock(tls).take())
    }

    pub(crate) fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            0 => Role::Lobby,
            1 => Role::Served,
            3 => Role::Admitting,
            4 => Role::HandedOver,
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
            Role::Gone | Role::HandedOver => return Err(WriteFailure::Broken),
            // Not admitted yet: it gets the stream from the moment it is.
            Role::Admitting => return Ok(()),
            Role::Lobby | Role::Served => {}
        }
        if let Some(result) = self.with_tls(|conn| {
            // rustls buffers at most `max_queued` bytes of records (set when the session is made),
            // which makes its buffer this client's queue.
            match conn.writer().write(bytes) {
                Ok(n) if n == bytes.len() => tls::flush_records(conn, &self.stream).map_err(|_| WriteFailure::Broken),
                Ok(_) => Err(WriteFailure::QueueFull),
                Err(_) => Err(WriteFailure::Broken),
            }
        }) {
            return result.and_then(|r| r);
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
        if let Some(result) =
            self.with_tls(|conn| tls::flush_records(conn, &self.stream).map_err(|_| WriteFailure::Broken))
        {
            return result.and_then(|r| r);
        }
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
        if matches!(self.role(), Role::Gone | Role::HandedOver) {
            return false;
        }
        let output = lock(&self.output);
        match self.with_tls(|conn| conn.wants_write()) {
            Some(pending) => pending.unwrap_or(false),
            None => !output.pending().is_empty(),
        }
    }

    /// Ends the connection now: the peer sees EOF and a broadcaster stops queueing for it.
    /// A connection handed to `accept()` is left alone: it is the user's now.
    pub(crate) fn shut_down(&self) {
        let mut current = self.role.load(Ordering::Acquire);
        loop {
            if current == Role::HandedOver as u8 {
                return;
            }
            match self.role.compare_exchange(current, Role::Gone as u8, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
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
