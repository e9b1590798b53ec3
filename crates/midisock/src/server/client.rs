//! One connection the server serves: its socket, its outgoing queue, its receiving state and its
//! role. Every method takes the locks it needs itself, in the order the lock list in
//! [`super::shared`] gives, so no caller juggles a client's locks.
//!
//! Who may do what:
//! - any thread that broadcasts: [`Client::write_or_queue`] (which, on failure, only *marks* the
//!   client failed; the I/O thread drops it);
//! - a user thread in `accept()`: [`Client::hand_over`];
//! - the I/O thread: everything else (reading, admitting, dropping, releasing notes).

mod admission;

pub(crate) use admission::{refuse_stream, Admission};
use admission::{sniff_transport, Transport, TLS_HANDSHAKE_RECORD};

use super::arrivals::Arrivals;
use super::events::DisconnectCause;
use super::inbox::SLOT_BYTES;
use super::jitter_buffers::Holding;
use super::outgoing::Outgoing;
use crate::auth::HelloCheck;
use crate::message::{Message, Received};
use crate::notes::HeldNotes;
use crate::parser::Parser;
use crate::timing::hello::{classify, Hello, HelloMatch, MAX_HELLO_LEN};
use crate::timing::{PlayoutStats, TimedInput, TimedOutput, MAX_TIMED_SHORT_LEN};
use crate::tls;
use mio::net::TcpStream;
use parking_lot::{Mutex, MutexGuard};
use rustls::Connection;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU8, Ordering};

/// What the server does with a connection's incoming bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Role {
    /// Accepted and sent broadcasts, but not read yet: waiting to be claimed by `accept()` or by
    /// the first `receive()` (see the server module docs).
    Lobby = 0,
    /// Read by the event loop into the server's inbox.
    Served = 1,
    /// Gone: closed by the server (after a failure, a refusal, or on close).
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
    /// 0, or the [`DisconnectCause`] code of the first failure a writer saw: the client is no
    /// longer written to and waits for the I/O thread to drain and drop it.
    failure: AtomicU8,
    /// Written by any thread that broadcasts and by the event loop when the socket drains.
    output: Mutex<Output>,
    /// Read by the event loop; the lock makes the handover to `accept()` safe.
    reader: Mutex<Reader>,
    /// The TLS session, when the server uses TLS (taken out when the connection is handed to
    /// `accept()`).
    tls: Option<Mutex<Option<Connection>>>,
}

/// The receiving state of a client.
struct Reader {
    /// Plain MIDI, or stamped after the client's answer to our request, played out through the
    /// client's own jitter buffer when the server has one; also notices the client's own request
    /// for stamps.
    input: TimedInput,
    /// The client's request for stamps has been passed on to its output.
    answered: bool,
    /// Notes this client holds down, released for everyone else when it disconnects.
    held: HeldNotes,
    /// The check of its hello, while it is [`Role::Admitting`].
    hello: Option<HelloCheck>,
    /// Its first bytes have been looked at for the wrong transport (a TLS handshake sent to a
    /// plain server, plain bytes sent to a TLS server).
    transport_checked: bool,
    /// Its only byte so far was 0x16 (a TLS record's first byte, or stray MIDI data): the next
    /// byte decides the transport.
    lone_record_byte: bool,
    /// While in the lobby (not read): its first bytes were looked at for a request for stamps,
    /// and a verdict reached.
    lobby_request_checked: bool,
    /// Once the client is marked failed: how many more bytes it may deliver before it is dropped.
    drain_budget: Option<usize>,
}

/// Bytes accepted for the client but not yet taken by its socket.
#[derive(Default)]
struct Output {
    queue: Vec<u8>,
    /// How much of `queue` has been written.
    written: usize,
    /// Plain, until the client asks for stamps: then the answer goes out before the next
    /// message, and every message after it is stamped with the client's own encoder.
    timed: TimedOutput,
}

/// Why a write to a client could not be completed.
enum WriteFailure {
    /// The client's queue would exceed the limit: it stopped reading.
    QueueFull,
    /// The connection failed.
    Broken(io::Error),
}

impl WriteFailure {
    fn cause(&self) -> DisconnectCause {
        match self {
            WriteFailure::QueueFull => DisconnectCause::TooSlow,
            WriteFailure::Broken(e) => DisconnectCause::of_error(e),
        }
    }
}

/// What a broadcast did for one client.
pub(crate) enum Delivery {
    /// Written or queued (or the client is not sent to: admitting, failed, gone).
    Done,
    /// This write failed and marked the client failed: the caller hands it to the I/O thread.
    Failed(DisconnectCause),
}

/// What one read from a served client gave.
pub(crate) enum ReadOutcome {
    /// Bytes were read and parsed (the messages are in the caller's [`Arrivals`]).
    Parsed {
        sysex_denied: u64,
        sysex_oversized: u64,
        /// The client asked for stamps: answer it ([`Client::start_stamping`]).
        stamps_requested: bool,
        /// What its jitter buffer holds now.
        holding: Holding,
    },
    /// Nothing to read now.
    WouldBlock,
    /// The connection ended, for this reason.
    Ended(DisconnectCause),
    /// Its first bytes are a TLS handshake, and the server speaks plain MIDI.
    TlsOnPlain,
}

/// Where a lobby connection stands.
pub(crate) enum LobbyCheck {
    /// Still there; `has_bytes` when it sent something not read yet, `stamps_requested` when
    /// its first bytes ask for stamps (reported once).
    Waiting { has_bytes: bool, stamps_requested: bool },
    /// Gone without sending anything: nothing to keep it for.
    Gone(DisconnectCause),
    /// Its first bytes are a TLS handshake, and the server speaks plain MIDI.
    TlsOnPlain,
    /// No longer in the lobby (served, handed over or closed meanwhile).
    NotInLobby,
}

/// A connection taken out of the server for `accept()`.
pub(crate) struct HandedOver {
    pub(crate) stream: std::net::TcpStream,
    /// Broadcast output queued for it and not yet written.
    pub(crate) unsent: Vec<u8>,
    pub(crate) tls: Option<Connection>,
    /// What the server set up for reading it (the sysex limit, the jitter buffer whose request
    /// was queued to it), untouched: a lobby connection has not been read.
    pub(crate) input: TimedInput,
    /// Whether it was answered a request for stamps (so the port keeps stamping what it sends).
    pub(crate) output: TimedOutput,
}

impl Output {
    fn pending(&self) -> &[u8] {
        &self.queue[self.written..]
    }

    fn take_pending(&mut self) -> Vec<u8> {
        let mut queue = std::mem::take(&mut self.queue);
        queue.drain(..self.written);
        self.written = 0;
        queue
    }

    /// Queues `bytes` behind what is pending, keeping the allocation within `max_queued` (the
    /// caller checked that pending + `bytes` fits).
    fn push(&mut self, bytes: &[u8], max_queued: usize) {
        let must_grow = self.queue.len() + bytes.len() > self.queue.capacity();
        if self.written > 0 && (must_grow || self.written >= self.queue.len() / 2) {
            // Compact, so the queue's memory tracks what is pending, not what was ever queued.
            let written = self.written;
            self.queue.drain(..written);
            self.written = 0;
        }
        let needed = self.queue.len() + bytes.len();
        if needed > self.queue.capacity() {
            // Doubling, but never past the limit: a slow client costs at most `max_queued`.
            let target = (self.queue.capacity() * 2).min(max_queued).max(needed);
            self.queue.reserve_exact(target - self.queue.len());
        }
        self.queue.extend_from_slice(bytes);
    }

    fn clear(&mut self) {
        *self = Output::default();
    }
}

impl Client {
    pub(crate) fn new(
        token: mio::Token,
        peer: SocketAddr,
        stream: TcpStream,
        role: Role,
        input: TimedInput,
        hello: Option<HelloCheck>,
        tls: Option<Connection>,
    ) -> Client {
        Client {
            token,
            peer,
            stream,
            role: AtomicU8::new(role as u8),
            failure: AtomicU8::new(0),
            output: Mutex::new(Output::default()),
            reader: Mutex::new(Reader {
                input,
                answered: false,
                held: HeldNotes::default(),
                hello,
                transport_checked: false,
                lone_record_byte: false,
                lobby_request_checked: false,
                drain_budget: None,
            }),
            tls: tls.map(|conn| Mutex::new(Some(conn))),
        }
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

    /// Moves a lobby or admitting connection on (to [`Role::Served`] or [`Role::Lobby`]); the I/O
    /// thread's own transitions. False if it is no longer where it was (handed over, closed).
    pub(crate) fn promote(&self, from: Role, to: Role) -> bool {
        self.role.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The failure a writer saw, if any: the client waits to be drained and dropped.
    pub(crate) fn failure(&self) -> Option<DisconnectCause> {
        DisconnectCause::from_code(self.failure.load(Ordering::Acquire))
    }

    /// Marks the client failed (first cause wins) and frees its queue: nothing more is written to
    /// it. True if this call marked it, so exactly one caller hands it to the I/O thread.
    fn mark_failed(&self, output: &mut Output, cause: DisconnectCause) -> bool {
        output.clear();
        self.failure.compare_exchange(0, cause.code(), Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Runs `step` on the TLS session; `None` without TLS, `Some(None)` once it is gone.
    fn with_tls<T>(&self, step: impl FnOnce(&mut Connection) -> T) -> Option<Option<T>> {
        let tls = self.tls.as_ref()?;
        let mut session = tls.lock();
        Some(session.as_mut().map(step))
    }

    /// Reads plaintext, like a non-blocking socket read (see [`tls::read_plaintext`] for `None`).
    fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.with_tls(|conn| tls::read_plaintext(conn, &self.stream, buf)) {
            None => (&self.stream).read(buf).map(Some),
            Some(Some(result)) => result,
            Some(None) => Ok(Some(0)),
        }
    }

    /// The receiving state, locked, if the client is still in `role`.
    ///
    /// NOTE: the one place where the handover rule lives. `accept()` changes a lobby client's
    /// role only under the reader lock ([`Client::hand_over`]), and switches its socket to
    /// blocking mode there; so whoever touches the socket must take the reader lock and *then*
    /// check the role, or it could peek at (and block on) a socket that is being handed over.
    fn reader_if(&self, role: Role) -> Option<MutexGuard<'_, Reader>> {
        let reader = self.reader.lock();
        (self.role() == role).then_some(reader)
    }

    // ----- Broadcasting (any thread) -----

    /// Writes `outgoing` now as far as the socket takes it and queues the rest, so the caller
    /// never blocks on a slow client: plain, or stamped with the client's own encoder once it
    /// asked for stamps (`stamped` is scratch for batches too long for the stack). The queue is
    /// bounded by `max_queued`: a client that would exceed it has stopped reading and is marked
    /// failed (never thinned — a stream with holes in it leaves notes stuck). A failed write
    /// only marks the client: the I/O thread reads what the client still sent, then drops it and
    /// releases its notes.
    pub(crate) fn write_or_queue(&self, outgoing: &Outgoing<'_>, max_queued: usize, stamped: &mut Vec<u8>) -> Delivery {
        let mut output = self.output.lock();
        match self.role() {
            Role::Lobby | Role::Served => {}
            // Not admitted yet: it gets the stream from the moment it is. Or no longer ours.
            Role::Admitting | Role::Gone | Role::HandedOver => return Delivery::Done,
        }
        if output.timed.is_plain() {
            return self.write_locked(&mut output, outgoing.plain(), max_queued);
        }
        let mut stack = [0u8; MAX_TIMED_SHORT_LEN];
        let bytes = outgoing.encode_for(&mut output.timed, &mut stack, stamped);
        self.write_locked(&mut output, bytes, max_queued)
    }

    /// Queues the request for stamps as a new client's first bytes (the server has a jitter
    /// buffer). Called by the I/O thread while the client is still [`Role::Admitting`], so no
    /// broadcast can come before it.
    pub(crate) fn request_stamps(&self, request: &[u8], max_queued: usize) -> Delivery {
        let mut output = self.output.lock();
        if self.role() != Role::Admitting {
            return Delivery::Done;
        }
        self.write_locked(&mut output, request, max_queued)
    }

    /// The client asked for stamps: the answer goes out before the next message it is sent,
    /// between two whole messages (under the output lock every writer takes), and every message
    /// after it is stamped.
    pub(crate) fn start_stamping(&self) {
        self.output.lock().timed.answer_stamps();
    }

    /// Writes or queues `bytes` under the output lock the caller holds.
    fn write_locked(&self, output: &mut Output, bytes: &[u8], max_queued: usize) -> Delivery {
        if self.failure().is_some() {
            return Delivery::Done;
        }
        let result = match self.with_tls(|conn| {
            // rustls buffers at most `max_queued` bytes of records (set when the session is made),
            // which makes its buffer this client's queue.
            match conn.writer().write(bytes) {
                Ok(n) if n == bytes.len() => tls::flush_records(conn, &self.stream).map_err(WriteFailure::Broken),
                Ok(_) => Err(WriteFailure::QueueFull),
                Err(e) => Err(WriteFailure::Broken(e)),
            }
        }) {
            Some(Some(result)) => result,
            Some(None) => return Delivery::Done,
            None => Self::write_plain(&self.stream, output, bytes, max_queued),
        };
        match result {
            Ok(()) => Delivery::Done,
            Err(failure) => {
                let cause = failure.cause();
                if self.mark_failed(output, cause) {
                    Delivery::Failed(cause)
                } else {
                    Delivery::Done
                }
            }
        }
    }

    fn write_plain(
        stream: &TcpStream,
        output: &mut Output,
        bytes: &[u8],
        max_queued: usize,
    ) -> Result<(), WriteFailure> {
        let mut rest = bytes;
        if output.pending().is_empty() {
            // Nothing queued ahead of us, so writing directly keeps the byte order.
            rest = write_some(stream, rest)?;
        }
        if rest.is_empty() {
            return Ok(());
        }
        if output.pending().len() + rest.len() > max_queued {
            return Err(WriteFailure::QueueFull);
        }
        output.push(rest, max_queued);
        // The event loop finishes the write when the socket drains (a writable edge follows
        // every WouldBlock, so nothing queued here can be forgotten).
        Ok(())
    }

    /// Writes queued output; called by the I/O thread on a writable event. A failure marks the
    /// client like a failed broadcast does (the cause is returned when this call marked it).
    pub(crate) fn flush(&self) -> Option<DisconnectCause> {
        let mut output = self.output.lock();
        if self.failure().is_some() || matches!(self.role(), Role::Gone | Role::HandedOver) {
            return None;
        }
        let result = match self.with_tls(|conn| tls::flush_records(conn, &self.stream).map_err(WriteFailure::Broken)) {
            Some(Some(result)) => result,
            Some(None) => Ok(()),
            None if output.pending().is_empty() => Ok(()),
            None => {
                let before = output.pending().len();
                match write_some(&self.stream, output.pending()).map(<[u8]>::len) {
                    Ok(0) => {
                        output.clear();
                        Ok(())
                    }
                    Ok(left) => {
                        output.written += before - left;
                        Ok(())
                    }
                    Err(failure) => Err(failure),
                }
            }
        };
        let failure = result.err()?;
        let cause = failure.cause();
        self.mark_failed(&mut output, cause).then_some(cause)
    }

    /// True when broadcast output still waits for the socket.
    pub(crate) fn has_pending_output(&self) -> bool {
        let output = self.output.lock();
        if self.failure().is_some() || matches!(self.role(), Role::Gone | Role::HandedOver) {
            return false;
        }
        match self.with_tls(|conn| conn.wants_write()) {
            Some(pending) => pending.unwrap_or(false),
            None => !output.pending().is_empty(),
        }
    }

    // ----- Reading (the I/O thread) -----

    /// What a failed client may still deliver: its socket's receive buffer, plus TLS's buffers.
    fn drain_allowance(&self) -> usize {
        const TLS_BUFFERED: usize = 64 * 1024;
        let kernel = socket2::SockRef::from(&self.stream).recv_buffer_size().unwrap_or(16 << 20);
        kernel + if self.tls.is_some() { TLS_BUFFERED } else { 0 }
    }

    /// One read from a served client into `buf`, decoded into `arrivals` (sysex dropped when
    /// `deny_sysex`; held notes tracked; copies for the other clients when `relay`). Messages
    /// go to the client's jitter buffer once it stamps, and come out of it through
    /// [`Client::play_out`]. The reader lock is held throughout, and the role checked under it.
    pub(crate) fn read_messages(
        &self,
        buf: &mut [u8],
        deny_sysex: bool,
        relay: bool,
        arrivals: &mut Arrivals,
    ) -> ReadOutcome {
        let Some(mut reader) = self.reader_if(Role::Served) else {
            return ReadOutcome::WouldBlock;
        };
        if let Some(cause) = self.failure() {
            // Everything it sent before it was marked is at most what the kernel held for it
            // (its receive buffer) plus what TLS had buffered: a client that goes on sending
            // (one dropped for reading too slowly may) is not drained for ever.
            let budget = reader.drain_budget.get_or_insert_with(|| self.drain_allowance());
            if *budget == 0 {
                return ReadOutcome::Ended(cause);
            }
        }
        let n = loop {
            match self.read(buf) {
                // The stream ended. Bytes the decoder still holds (the start of what might have
                // been a hello) are decoded first, in a read of their own; the next read ends it.
                Ok(Some(0)) if reader.input.holds_bytes() => break 0,
                Ok(Some(0)) => return ReadOutcome::Ended(DisconnectCause::ClosedByPeer),
                Ok(Some(n)) => break n,
                // Part of a TLS record: read on.
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return ReadOutcome::Ended(DisconnectCause::of_error(&e)),
            }
        };
        let arrival_ns = crate::clock::monotonic_ns();
        if let Some(budget) = reader.drain_budget.as_mut() {
            *budget = budget.saturating_sub(n);
        }
        let bytes = &buf[..n];
        if !reader.transport_checked && n > 0 {
            // The connection's first two bytes; a lone 0x16 read earlier is the first of them.
            let (first, len) = match (reader.lone_record_byte, bytes) {
                (true, [next, ..]) => ([TLS_HANDSHAKE_RECORD, *next], 2),
                (_, [only]) => ([*only, 0], 1),
                (_, [a, b, ..]) => ([*a, *b], 2),
                (_, []) => ([0, 0], 0),
            };
            match (self.tls.is_some(), sniff_transport(&first[..len])) {
                (false, Transport::Tls) => return ReadOutcome::TlsOnPlain,
                // Parsed meanwhile like any stray data byte (ignored): nothing is delivered.
                (false, Transport::Undecided) => reader.lone_record_byte = true,
                _ => reader.transport_checked = true,
            }
        }
        let Reader { input, answered, held, .. } = &mut *reader;
        let Arrivals { to_inbox, relayed } = arrivals;
        let overflows_before = input.parser_stats().sysex_overflows;
        let mut denied = 0;
        let arrived = |message: &Message, sender_ns: Option<u64>| {
            if deny_sysex && matches!(message, Message::SysEx { .. }) {
                denied += 1;
                return;
            }
            held.observe(message);
            if relay {
                relayed.copy(message, sender_ns);
            }
        };
        let deliver = |received| keep(received, deny_sysex, to_inbox);
        if n == 0 {
            input.end(arrival_ns, arrived, deliver);
        } else {
            input.feed_observed(bytes, arrival_ns, arrived, deliver);
        }
        if relay {
            // The offset estimate costs a look at the buffer's statistics: only for stamped copies.
            let offset_ns =
                if relayed.has_stamps() { input.playout_stats().and_then(|stats| stats.offset_ns) } else { None };
            relayed.set_times(offset_ns, arrival_ns);
        }
        let stamps_requested = input.stamps_requested() && !*answered;
        *answered |= stamps_requested;
        ReadOutcome::Parsed {
            sysex_denied: denied,
            sysex_oversized: input.parser_stats().sysex_overflows - overflows_before,
            stamps_requested,
            holding: holding(input),
        }
    }

    /// Moves what the client's jitter buffer has due at `now_ns` into `out`; returns what it
    /// still holds. Only the I/O thread plays out, under the reader lock.
    pub(crate) fn play_out(&self, now_ns: u64, deny_sysex: bool, out: &mut Vec<Received>) -> Holding {
        let mut reader = self.reader.lock();
        reader.input.pop_due(now_ns, |received| keep(received, deny_sysex, out));
        holding(&reader.input)
    }

    /// Moves the oldest messages the client's jitter buffer holds into `out` now, before their
    /// time, until it holds at most `keep_bytes` (the server's buffers together fill its memory
    /// bound); returns what it still holds. Each is counted in its `delivered_early_full`.
    pub(crate) fn release_early(
        &self,
        now_ns: u64,
        keep_bytes: usize,
        deny_sysex: bool,
        out: &mut Vec<Received>,
    ) -> Holding {
        let mut reader = self.reader.lock();
        while holding(&reader.input).bytes > keep_bytes {
            if !reader.input.deliver_early(now_ns, |received| keep(received, deny_sysex, out)) {
                break;
            }
        }
        holding(&reader.input)
    }

    /// True once the client's jitter buffer has been built: it has sent a stamped message (a
    /// client that never stamps, like mido, never gets one).
    #[cfg(test)]
    pub(crate) fn has_built_playout(&self) -> bool {
        self.reader.lock().input.playout_built()
    }

    /// Moves everything the client's jitter buffer holds into `out` at once, in order: the client
    /// is leaving (or the server closing) and nothing it sent may be lost.
    pub(crate) fn drain_playout(&self, now_ns: u64, deny_sysex: bool, out: &mut Vec<Received>) {
        self.reader.lock().input.drain(now_ns, |received| keep(received, deny_sysex, out));
    }

    /// The client's jitter buffer stats, once it stamps its messages (the server has a jitter
    /// buffer and the client answered its request).
    pub(crate) fn playout_stats(&self) -> Option<PlayoutStats> {
        let reader = self.reader.lock();
        if reader.input.is_stamped() {
            reader.input.playout_stats()
        } else {
            None
        }
    }

    /// Looks at a lobby connection without reading it (its bytes belong to whoever claims it).
    /// Under the reader lock, with the role re-checked, so `accept()` cannot take it meanwhile
    /// (the handover switches the socket to blocking mode, and a peek then would block).
    pub(crate) fn check_lobby(&self) -> LobbyCheck {
        let Some(mut reader) = self.reader_if(Role::Lobby) else {
            return LobbyCheck::NotInLobby;
        };
        let mut first = [0u8; MAX_HELLO_LEN];
        match self.stream.peek(&mut first) {
            Ok(0) => LobbyCheck::Gone(DisconnectCause::ClosedByPeer),
            Ok(n) => {
                if !reader.transport_checked {
                    // Peeked, not read: a lone 0x16 is looked at again with the next byte.
                    match (self.tls.is_some(), sniff_transport(&first[..n.min(2)])) {
                        (false, Transport::Tls) => return LobbyCheck::TlsOnPlain,
                        (false, Transport::Undecided) => {}
                        _ => reader.transport_checked = true,
                    }
                }
                let mut stamps_requested = false;
                if self.tls.is_none() && !reader.lobby_request_checked {
                    // A client asks for stamps in its first bytes (after the token hello, which
                    // admission took). Answered now, so a server that only broadcasts stamps for
                    // it too; the request stays unread for whoever claims the connection (a
                    // served client's decoder sees it again, harmlessly; a port taken by
                    // accept() reads it and answers itself).
                    match first_hello(&first[..n]) {
                        HelloMatch::Prefix => {}
                        HelloMatch::Complete(Hello::Request { speaks_ours: true }) => {
                            reader.lobby_request_checked = true;
                            stamps_requested = true;
                        }
                        HelloMatch::Complete(_) | HelloMatch::No => reader.lobby_request_checked = true,
                    }
                }
                LobbyCheck::Waiting { has_bytes: true, stamps_requested }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                LobbyCheck::Waiting { has_bytes: false, stamps_requested: false }
            }
            Err(e) => LobbyCheck::Gone(DisconnectCause::of_error(&e)),
        }
    }

    /// Emits a release for every note and pedal the client left held, and forgets them.
    pub(crate) fn release_held(&self, emit: impl FnMut(Message)) {
        self.reader.lock().held.release_all(emit);
    }

    // ----- Ending (the I/O thread) and handing over (a user thread) -----

    /// Ends the connection: the peer sees EOF, writers stop. A connection handed to `accept()`
    /// is left alone: it is the user's now. True if this call closed it.
    pub(crate) fn close(&self) -> bool {
        let mut current = self.role.load(Ordering::Acquire);
        loop {
            if current == Role::HandedOver as u8 || current == Role::Gone as u8 {
                return false;
            }
            match self.role.compare_exchange(current, Role::Gone as u8, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        true
    }

    /// Takes a lobby connection out for `accept()`: `None` if it is no longer in the lobby.
    pub(crate) fn hand_over(&self) -> io::Result<Option<HandedOver>> {
        let mut output = self.output.lock();
        let mut reader = self.reader.lock();
        if !self.promote(Role::Lobby, Role::HandedOver) {
            return Ok(None);
        }
        // The mio stream is shared with the event loop's Arc; a duplicate descriptor lets the
        // port own the connection outright. The original closes without ending the connection.
        let stream = std::net::TcpStream::from(self.stream.as_fd().try_clone_to_owned()?);
        // O_NONBLOCK lives on the shared file description: this switches both to blocking, which
        // is harmless for the original, no longer polled or written by anyone.
        stream.set_nonblocking(false)?;
        let unsent = output.take_pending();
        let tls = self.tls.as_ref().and_then(|tls| tls.lock().take());
        let input = std::mem::replace(&mut reader.input, TimedInput::new(Parser::new(), None));
        let output = std::mem::take(&mut output.timed);
        Ok(Some(HandedOver { stream, unsent, tls, input, output }))
    }
}

/// Whether a stream starts with a timing hello: the verdict on its shortest prefix that is not
/// a proper prefix of one.
fn first_hello(bytes: &[u8]) -> HelloMatch {
    if bytes.first() != Some(&0xF4) {
        return HelloMatch::No;
    }
    (1..=bytes.len())
        .map(|end| classify(&bytes[..end]))
        .find(|m| *m != HelloMatch::Prefix)
        .unwrap_or(HelloMatch::Prefix)
}

/// What `input`'s jitter buffer holds, in the inbox's units.
fn holding(input: &TimedInput) -> Holding {
    let (messages, sysex_bytes) = input.held();
    Holding { deadline: input.next_deadline(), bytes: messages * SLOT_BYTES + sysex_bytes }
}

/// Adds a played-out message to `out`, unless it is a sysex the server denies (counted on
/// arrival).
fn keep(received: Received, deny_sysex: bool, out: &mut Vec<Received>) {
    if !(deny_sysex && matches!(received.message, Message::SysEx { .. })) {
        out.push(received);
    }
}

/// Writes as much of `bytes` as the socket takes without blocking; returns what is left.
fn write_some<'a>(mut stream: &TcpStream, mut bytes: &'a [u8]) -> Result<&'a [u8], WriteFailure> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(WriteFailure::Broken(io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(WriteFailure::Broken(e)),
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::{STAMP_ANSWER, STAMP_REQUEST};

    #[test]
    fn a_lobby_client_asks_only_when_its_first_bytes_are_a_request() {
        let asks = HelloMatch::Complete(Hello::Request { speaks_ours: true });
        assert_eq!(first_hello(STAMP_REQUEST), asks);
        let mut then_midi = STAMP_REQUEST.to_vec();
        then_midi.extend_from_slice(&[0x90, 60, 100]);
        assert_eq!(first_hello(&then_midi), asks, "MIDI after the request changes nothing");
        for cut in 1..STAMP_REQUEST.len() {
            assert_eq!(first_hello(&STAMP_REQUEST[..cut]), HelloMatch::Prefix, "undecided until whole");
        }
        assert_eq!(first_hello(&[0x90, 60, 100]), HelloMatch::No);
        assert_eq!(first_hello(b"\xF4midisock-token\xF7"), HelloMatch::No, "a token hello is not a request");
        assert!(!matches!(first_hello(STAMP_ANSWER), HelloMatch::Complete(Hello::Request { .. })));
        assert_eq!(
            first_hello(b"\xF4\x00stamps?\x02\xF7"),
            HelloMatch::Complete(Hello::Request { speaks_ours: false })
        );
        assert_eq!(first_hello(&[]), HelloMatch::No);
    }
}
