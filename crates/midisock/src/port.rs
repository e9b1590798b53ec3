//! [`SocketPort`]: one TCP connection carrying MIDI both ways.
//!
//! A port does its I/O on the calling thread: `send` writes straight to the socket and `receive`
//! reads straight from it, so a round trip costs exactly what the kernel costs — no helper thread
//! and no thread hop. The one exception is [`SocketPort::set_callback`], which starts a named
//! reader thread ("midisock-cb") that calls the callback for every message.
//!
//! A port that [`connect`] made watches the first bytes its connection delivers for a server's
//! refusal notice ([`crate::RefusalCause`]); once one is seen, every send and receive reports
//! [`Error::Refused`] with the server's words instead of a bare [`Error::Closed`].
//!
//! Timing ([`crate::timing`], docs/timing.md): a port connected with
//! [`ConnectOptions::jitter_buffer`] asks its peer for stamps and plays each stamped message out
//! at its sender time + the estimated offset + the delay; its receives wait (with `ppoll`, to the
//! nanosecond) until the caller's deadline or the next message's due time. Every port answers a
//! peer that asks: the next send writes the answer, and every message after it is stamped. A
//! port that only sends finds the request by looking at its first unread bytes from `send`.

use crate::address::{socket_addr_name, IntoAddress};
use crate::clock::monotonic_ns;
use crate::error::{from_stream_error, from_wait_error, Error, Result};
use crate::message::{panic_messages, reset_messages, Message, Received};
use crate::net::{self, OnSignal, READ_CHUNK};
use crate::notes::HeldNotes;
use crate::parser::{Parser, ParserStats};
use crate::poll_fd::PollFd;
use crate::reconnect::Reconnect;
use crate::refusal::{self, NoticeScan};
use crate::timing::{
    hello, DecoderStats, DelayMode, PlayoutConfig, PlayoutStats, TimedInput, TimedOutput, STAMP_REQUEST,
};
use crate::tls::{self, TlsClient};
use parking_lot::Mutex;
use rustls::Connection;
use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long after connecting a port that only sends still looks for its peer's request for
/// stamps ([`crate::timing`]): a peer asks in its first bytes, so a request is in long before.
const PROBE_FOR_REQUEST_NS: u64 = 10_000_000_000;
/// A port that only sends looks at most this often (one `recv(MSG_PEEK)` per look).
const PROBE_EVERY_NS: u64 = 1_000_000;
/// The most bytes a look takes in: room for a token hello or a refusal notice (at most 130
/// bytes each) and a timing hello (at most 19) after it.
const PROBE_LEN: usize = 256;
/// While a port whose peer has closed still plays out queued messages, it checks this often
/// whether it was closed meanwhile.
const CLOSED_PEER_SLICE_NS: u64 = 10_000_000;

/// The callback thread's name: Linux keeps 15 bytes of a thread name, so it fits whole.
pub(crate) const CALLBACK_THREAD_NAME: &str = "midisock-cb";
/// How often an idle callback thread checks whether [`SocketPort::remove_callback`] asked it to
/// end (a message arriving ends its wait at once).
const CALLBACK_STOP_CHECK: Duration = Duration::from_millis(100);

/// Connects to a server, like mido's `connect(host, port)`.
///
/// `address` is `"host:port"`, `"[v6addr]:port"`, `("host", port)`, an [`crate::Address`] or a
/// `SocketAddr`. Every address the host resolves to is tried in order.
pub fn connect(address: impl IntoAddress) -> Result<SocketPort> {
    connect_with(address, &ConnectOptions::default())
}

/// [`connect`] with a limit on how long each connection attempt may take.
pub fn connect_timeout(address: impl IntoAddress, timeout: Duration) -> Result<SocketPort> {
    connect_with(address, &ConnectOptions::default().timeout(timeout))
}

/// [`connect`] with options: a connect timeout, an authentication token, TLS. The port does not
/// reconnect (see [`crate::ReconnectingPort`] for one that does).
pub fn connect_with(address: impl IntoAddress, options: &ConnectOptions) -> Result<SocketPort> {
    let address = address.into_address()?;
    // The first bytes: the token hello, then the request for stamps, in one write.
    let mut hello = match &options.token {
        Some(token) => {
            crate::auth::validate_token(token)?;
            crate::auth::hello(token)
        }
        None => Vec::new(),
    };
    if options.jitter_buffer.is_some() {
        hello.extend_from_slice(STAMP_REQUEST);
    }
    let mut stream = net::connect(&address, options.timeout)?;
    let tls = match &options.tls {
        Some(tls) => Some(handshake_within(tls, &address.host, &mut stream, options.timeout)?),
        None => None,
    };
    let port = SocketPort::from_connected(stream, address.to_string(), tls);
    {
        let mut receiver = port.inner.receiver.lock();
        // Only a client looks for a refusal notice: servers never receive one.
        receiver.notice_head = Some(Vec::new());
        receiver.input = TimedInput::new(Parser::new(), options.jitter_buffer);
        port.inner.stats.lock().playout = receiver.input.playout_stats();
    }
    if !hello.is_empty() {
        port.write(&hello)?;
    }
    Ok(port)
}

/// The TLS handshake, each of its reads and writes bounded by the connect timeout (a server that
/// accepts and then says nothing must not hold a client forever).
fn handshake_within(
    tls: &TlsClient,
    host: &str,
    stream: &mut TcpStream,
    timeout: Option<Duration>,
) -> Result<Connection> {
    stream.set_read_timeout(timeout).map_err(Error::Io)?;
    stream.set_write_timeout(timeout).map_err(Error::Io)?;
    let conn = tls.handshake(host, stream)?;
    stream.set_read_timeout(None).map_err(Error::Io)?;
    stream.set_write_timeout(None).map_err(Error::Io)?;
    Ok(conn)
}

/// How [`connect_with`] connects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectOptions {
    /// Longest wait for each connection attempt, and, with TLS, for each step of the handshake
    /// (a server that accepts and then never answers fails the connect with [`Error::Tls`]).
    /// Default: the system's (minutes) and no limit on the handshake.
    pub timeout: Option<Duration>,
    /// Token for a server that requires one ([`crate::ServerConfig::token`]); sent as a hello that
    /// servers without auth, mido's included, ignore. Default: none.
    pub token: Option<String>,
    /// TLS, for a server that uses it ([`crate::ServerConfig::tls`]). Default: none (plain TCP,
    /// what mido speaks).
    pub tls: Option<TlsClient>,
    /// How a [`crate::ReconnectingPort`] reconnects. [`connect_with`] makes a plain port, which
    /// does not reconnect, and ignores this. Default: none.
    pub reconnect: Option<Reconnect>,
    /// A playout (jitter) buffer for what this port receives: the port asks its peer to stamp
    /// what it sends, and delivers each message at its sender time plus the estimated offset
    /// plus the delay the config chooses (see [`crate::timing`]). A peer that does not speak the
    /// extension (mido) never stamps, and its messages are delivered on arrival, as without it.
    /// Default: none (every message delivered when it arrives).
    pub jitter_buffer: Option<PlayoutConfig>,
}

impl ConnectOptions {
    /// Sets [`ConnectOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`ConnectOptions::tls`].
    pub fn tls(mut self, tls: TlsClient) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`ConnectOptions::reconnect`].
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Sets [`ConnectOptions::jitter_buffer`] to `mode` with the other playout settings at their
    /// defaults ([`PlayoutConfig::new`]).
    pub fn jitter_buffer(mut self, mode: DelayMode) -> Self {
        self.jitter_buffer = Some(PlayoutConfig::new(mode));
        self
    }

    /// Sets [`ConnectOptions::token`].
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// One end of a midisock connection: what [`connect`] and [`crate::PortServer::accept`] return.
///
/// `SocketPort` is `Send + Sync`: any thread may send while another receives; two threads
/// sending at once never interleave the bytes of their messages. Dropping the port closes it.
pub struct SocketPort {
    inner: Arc<PortInner>,
    callback_thread: Mutex<Option<JoinHandle<()>>>,
}

struct PortInner {
    stream: TcpStream,
    /// The TLS session when the connection uses TLS. The innermost lock: taken only for the
    /// moment of a record-layer step, never while waiting for the socket to become readable.
    tls: Option<Mutex<Connection>>,
    name: String,
    /// Held for the whole write of a message (or batch), so concurrent sends never interleave.
    sender: Mutex<SendState>,
    receiver: Mutex<ReceiveState>,
    locally_closed: AtomicBool,
    /// The peer closed and every message it sent has been taken: nothing more will arrive.
    exhausted: AtomicBool,
    /// The peer's end of stream was seen, or a write found the connection gone: sends fail from
    /// now on (they could only be lost).
    peer_gone: AtomicBool,
    /// The server's refusal notice, once one was seen: the cause in its words.
    refusal: OnceLock<String>,
    callback_installed: AtomicBool,
    /// Which callback thread may deliver: each one runs while this still holds the number it was
    /// started with; [`SocketPort::remove_callback`] (and a new callback) move it on.
    callback_generation: AtomicU64,
    /// [`CALLBACK_THREAD_NUMBER`] of this port's callback thread (0: none).
    callback_thread_number: AtomicU64,
    autoreset: AtomicBool,
    /// The peer asked for stamps (its request was read): the next send answers and stamps from
    /// then on. Set by whichever thread read the request, read by senders.
    stamps_asked: AtomicBool,
    /// A copy of the receiving counters, updated after each read (and each playout), so reading
    /// them never waits for a receiver blocked on the socket.
    stats: Mutex<ReceiveStats>,
    /// When the next message queued in the jitter buffer is due (`CLOCK_MONOTONIC` ns;
    /// [`NOTHING_DUE`]: nothing queued, or no buffer). Published after every change to the
    /// buffer, so [`SocketPort::next_due_ns`] never waits for a receiver blocked on the socket.
    next_due: AtomicU64,
    /// The descriptor a poller waits on ([`SocketPort::poll_fd`]), made on first use (or given
    /// by a reconnecting port, whose connections share one).
    poll_fd: OnceLock<Arc<PollFd>>,
    /// The end of the stream was read: the socket is readable for ever and leaves the poll
    /// descriptor (set under the stats lock, as the descriptor is attached).
    eof_read: AtomicBool,
}

/// [`PortInner::next_due`] when nothing is queued.
const NOTHING_DUE: u64 = u64::MAX;

#[derive(Clone, Copy, Default)]
struct ReceiveStats {
    parser: ParserStats,
    decoder: DecoderStats,
    playout: Option<PlayoutStats>,
}

struct SendState {
    /// Where outgoing messages are encoded before their one write.
    scratch: Vec<u8>,
    /// Notes this port has left sounding on the peer, released by autoreset on close.
    held: HeldNotes,
    /// Plain, or stamped once the peer asked (see [`crate::timing`]).
    output: TimedOutput,
    /// Until when (monotonic ns) a send still looks for the peer's request itself, for a port
    /// that never receives; `None` once that is decided.
    probe_until: Option<u64>,
    /// The earliest time of the next look.
    next_probe: u64,
}

struct ReceiveState {
    /// The stamp decoder (on the port's parser) and, when asked for, the playout buffer.
    input: TimedInput,
    pending: VecDeque<Received>,
    peer_closed: bool,
    buf: Box<[u8]>,
    /// While `Some`, the first bytes of a client's connection, held back until they are known to
    /// be MIDI or a refusal notice (see [`crate::refusal`]); `None` once decided, and always on
    /// an accepted port.
    notice_head: Option<Vec<u8>>,
    /// Bytes taken from the connection so far, and how many of them a send's look for the
    /// peer's request took (see [`SocketPort::send_all`]): while the two are equal, no receive
    /// has read anything.
    bytes_taken: u64,
    bytes_probed: u64,
}

/// How long a receive may wait.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    /// Until this monotonic time ([`monotonic_ns`]).
    Until(u64),
    No,
}

/// Numbers callback threads from 1, so a port can tell whether it is dropped on its own callback
/// thread.
static NEXT_CALLBACK_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's callback-thread number; 0 on every other thread.
    static CALLBACK_THREAD_NUMBER: Cell<u64> = const { Cell::new(0) };
}

impl SocketPort {
    fn from_connected(stream: TcpStream, name: String, tls: Option<Connection>) -> SocketPort {
        SocketPort {
            inner: Arc::new(PortInner {
                stream,
                tls: tls.map(Mutex::new),
                name,
                sender: Mutex::new(SendState {
                    scratch: Vec::new(),
                    held: HeldNotes::default(),
                    output: TimedOutput::new(),
                    probe_until: Some(monotonic_ns().saturating_add(PROBE_FOR_REQUEST_NS)),
                    next_probe: 0,
                }),
                receiver: Mutex::new(ReceiveState {
                    input: TimedInput::new(Parser::new(), None),
                    pending: VecDeque::new(),
                    peer_closed: false,
                    buf: vec![0; READ_CHUNK].into_boxed_slice(),
                    notice_head: None,
                    bytes_taken: 0,
                    bytes_probed: 0,
                }),
                locally_closed: AtomicBool::new(false),
                exhausted: AtomicBool::new(false),
                peer_gone: AtomicBool::new(false),
                refusal: OnceLock::new(),
                callback_installed: AtomicBool::new(false),
                callback_generation: AtomicU64::new(0),
                callback_thread_number: AtomicU64::new(0),
                autoreset: AtomicBool::new(false),
                stamps_asked: AtomicBool::new(false),
                stats: Mutex::new(ReceiveStats::default()),
                next_due: AtomicU64::new(NOTHING_DUE),
                poll_fd: OnceLock::new(),
                eof_read: AtomicBool::new(false),
            }),
            callback_thread: Mutex::new(None),
        }
    }

    /// Wraps a connection the server accepted. `unsent` is broadcast output the server had queued
    /// for this client and not yet written; it goes out first, so nothing is lost in the handover.
    pub(crate) fn from_accepted(
        stream: TcpStream,
        peer: SocketAddr,
        unsent: &[u8],
        tls: Option<Connection>,
        input: TimedInput,
        output: TimedOutput,
    ) -> Result<SocketPort> {
        net::configure_stream(&stream).map_err(Error::Io)?;
        let port = SocketPort::from_connected(stream, socket_addr_name(peer), tls);
        // The server's reading setup (sysex limit, jitter buffer) and stamping state carry over:
        // the peer may already stamp for it, or expect stamps from it.
        {
            let mut receiver = port.inner.receiver.lock();
            port.inner.stats.lock().playout = input.playout_stats();
            receiver.input = input;
            port.inner.publish_due(&receiver.input, &receiver.pending);
        }
        port.inner.sender.lock().output = output;
        // With TLS, unsent output sits in the session as records; `write` sends them first.
        port.write(unsent)?;
        Ok(port)
    }

    /// Wraps a TCP connection made outside midisock — one a program accepted from its own
    /// listener (as mido's `SocketPort(host, port, conn=...)` does) or connected itself. The
    /// socket gets the options every midisock connection gets (TCP_NODELAY, keepalive, the write
    /// deadline), is switched to blocking mode with no read or write timeout (the port's own
    /// waits assume that), and the port is named after the peer's address (`host:port`). Nothing
    /// is sent or expected first: no token, no TLS, no refusal notice.
    ///
    /// Fails with [`Error::Io`] if the stream is not connected (it has no peer address).
    pub fn from_stream(stream: TcpStream) -> Result<SocketPort> {
        SocketPort::adopt(stream, None)
    }

    /// [`SocketPort::from_stream`] with a jitter buffer for what the port receives, as
    /// [`ConnectOptions::jitter_buffer`] gives a port that [`connect_with`] made: the port's
    /// first bytes ask the peer for stamps, and what the peer stamps is played out at its sender
    /// time plus the estimated offset plus the delay `jitter_buffer` chooses (see
    /// [`crate::timing`]). A peer that does not speak the extension (mido) ignores the request,
    /// and its messages are delivered on arrival.
    pub fn from_stream_with_jitter_buffer(stream: TcpStream, jitter_buffer: PlayoutConfig) -> Result<SocketPort> {
        let port = SocketPort::adopt(stream, Some(jitter_buffer))?;
        port.write(STAMP_REQUEST)?;
        Ok(port)
    }

    fn adopt(stream: TcpStream, jitter_buffer: Option<PlayoutConfig>) -> Result<SocketPort> {
        let peer = stream.peer_addr().map_err(Error::Io)?;
        stream.set_nonblocking(false).map_err(Error::Io)?;
        stream.set_read_timeout(None).map_err(Error::Io)?;
        stream.set_write_timeout(None).map_err(Error::Io)?;
        let input = TimedInput::new(Parser::new(), jitter_buffer);
        SocketPort::from_accepted(stream, peer, &[], None, input, TimedOutput::new())
    }

    /// `host:port` of the peer as given to [`connect`], or of the client for an accepted port or
    /// one made by [`SocketPort::from_stream`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        self.inner.stream.peer_addr().map_err(Error::Io)
    }

    #[cfg(test)]
    pub(crate) fn nodelay(&self) -> bool {
        self.inner.stream.nodelay().unwrap()
    }

    /// This end's socket address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.inner.stream.local_addr().map_err(Error::Io)
    }

    /// Sends one message: validated, encoded with a full status byte, written whole.
    /// Blocks while the socket's send buffer is full (the peer reads slower than we write).
    pub fn send(&self, message: &Message) -> Result<()> {
        self.send_all(std::slice::from_ref(message))
    }

    /// Sends several messages in one write (one system call for the batch). Either every message
    /// is valid and all are written in order, or nothing is sent.
    ///
    /// When the peer asked for stamps (its jitter buffer is on, see [`crate::timing`]), the first
    /// send after its request carries the answer, and every message from then on carries this
    /// port's send time; a peer that did not ask (mido) always gets today's bytes.
    pub fn send_all(&self, messages: &[Message]) -> Result<()> {
        let mut sender = self.inner.sender.lock();
        if sender.output.is_plain() {
            if sender.next_probe == 0 {
                // The first send looks before its write: the request comes in the peer's first
                // bytes, so it is usually there already, and the first message is stamped too.
                self.look_for_request(&mut sender);
            }
            self.answer_if_asked(&mut sender);
        }
        let result = self.encode_and_write(&mut sender, messages);
        if sender.probe_until.is_some() {
            // Later sends look after their write: a look is a system call, and a message must
            // not wait for it (it cost a 1 kHz stream's one-way latency ~3 µs in its first 10 s).
            self.look_for_request(&mut sender);
        }
        result
    }

    fn encode_and_write(&self, sender: &mut SendState, messages: &[Message]) -> Result<()> {
        let SendState { scratch, held, output, .. } = sender;
        scratch.clear();
        // Checked and encoded in one pass: an invalid message fails the batch before any write.
        let encoded = if output.is_plain() {
            Message::encode_all_checked(messages, scratch)
        } else {
            output.encode_all_checked(monotonic_ns(), messages, scratch)
        };
        let result = encoded.map_err(Error::from).and_then(|()| {
            self.check_sendable()?;
            self.write(scratch).map_err(|e| self.write_failed(e))
        });
        if scratch.capacity() > READ_CHUNK {
            // Do not keep a megabyte of scratch alive because of one large sysex.
            *scratch = Vec::new();
        }
        if result.is_ok() {
            for message in messages {
                held.observe(message);
            }
        }
        result
    }

    /// Switches the output to stamps when the peer asked (a receive, or a look after an earlier
    /// send, read the request).
    #[inline]
    fn answer_if_asked(&self, sender: &mut SendState) {
        if self.inner.stamps_asked.load(Ordering::Acquire) {
            sender.output.answer_stamps();
            sender.probe_until = None;
        }
    }

    /// A port that never receives would never read the peer's request for stamps, so during the
    /// first seconds after connecting a send looks for it itself (see
    /// [`PortInner::probe_for_request`]), at most once a millisecond, after its write. A request
    /// found switches the output at once: the next message carries the answer.
    fn look_for_request(&self, sender: &mut SendState) {
        let Some(until) = sender.probe_until else { return };
        if !self.inner.stamps_asked.load(Ordering::Acquire) {
            let now = monotonic_ns();
            if now >= until {
                sender.probe_until = None;
            } else if now >= sender.next_probe {
                sender.next_probe = now.saturating_add(PROBE_EVERY_NS);
                // A thread in a receive holds the receiving state: it reads the request itself,
                // so there is nothing to look for here.
                if let Some(mut state) = self.inner.receiver.try_lock() {
                    if self.inner.probe_for_request(&mut state) {
                        sender.probe_until = None;
                    }
                }
            }
        }
        if sender.output.is_plain() {
            self.answer_if_asked(sender);
        }
    }

    fn write(&self, bytes: &[u8]) -> Result<()> {
        // NOTE: std's TcpStream writes with MSG_NOSIGNAL on Linux, so a vanished peer is an
        // EPIPE error here and never a SIGPIPE that would kill a C host program.
        let mut stream = &self.inner.stream;
        match &self.inner.tls {
            None => stream.write_all(bytes),
            Some(tls) => {
                let mut conn = tls.lock();
                // rustls takes a bounded amount of plaintext at a time: feed it, send the records
                // (the socket is blocking, so flushing empties the session), repeat.
                let mut rest = bytes;
                loop {
                    let taken = conn.writer().write(rest);
                    let flushed = tls::flush_records(&mut conn, stream);
                    match (taken, flushed) {
                        (Ok(n), Ok(())) => rest = &rest[n..],
                        (Err(e), _) | (_, Err(e)) => break Err(e),
                    }
                    if rest.is_empty() {
                        break Ok(());
                    }
                }
            }
        }
        .map_err(from_stream_error)
    }

    fn check_open(&self) -> Result<()> {
        self.inner.check_refused()?;
        if self.inner.locally_closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Sending needs an open port whose peer has not gone: once its end of stream was seen (or a
    /// write failed), a send could only be lost, so it fails instead.
    fn check_sendable(&self) -> Result<()> {
        self.check_open()?;
        if self.inner.peer_gone.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// A failed write: the peer is gone for good. If it was a server refusing us, its notice may
    /// be waiting unread: look (without waiting, and only if no other thread is reading) so the
    /// caller learns the cause rather than a bare `Closed`.
    fn write_failed(&self, error: Error) -> Error {
        if !error.is_closed() {
            return error;
        }
        self.inner.peer_gone.store(true, Ordering::Release);
        if let Some(mut state) = self.inner.receiver.try_lock() {
            // A notice may need more than one read; each read here is non-blocking.
            while state.notice_head.is_some() && !state.peer_closed {
                match self.inner.read_once(&mut state, Some(0), OnSignal::Resume) {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => break,
                }
            }
        }
        self.inner.check_refused().err().unwrap_or(Error::Closed)
    }

    /// Waits for the next message. `Err(Error::Closed)` once the port is closed, or the peer has
    /// closed and every message it sent has been received.
    pub fn receive(&self) -> Result<Message> {
        self.receive_stamped().map(|r| r.message)
    }

    /// [`SocketPort::receive`] with the message's receive timestamp.
    pub fn receive_stamped(&self) -> Result<Received> {
        self.next(Wait::Forever, OnSignal::Resume).map(|r| r.expect("an unbounded wait returns a message or an error"))
    }

    /// The next message if one has arrived, without waiting (mido's `receive(block=False)`,
    /// `poll()`).
    pub fn try_receive(&self) -> Result<Option<Message>> {
        self.try_receive_stamped().map(|r| r.map(|r| r.message))
    }

    /// [`SocketPort::try_receive`] with the message's receive timestamp.
    pub fn try_receive_stamped(&self) -> Result<Option<Received>> {
        self.next(Wait::No, OnSignal::Resume)
    }

    /// Waits at most `timeout` for the next message; `Ok(None)` if none came.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.receive_timeout_stamped(timeout).map(|r| r.map(|r| r.message))
    }

    /// [`SocketPort::receive_timeout`] with the message's receive timestamp.
    pub fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>> {
        let wait = net::deadline_after(timeout).map_or(Wait::Forever, Wait::Until);
        self.next(wait, OnSignal::Resume)
    }

    /// Waits for the next message like [`SocketPort::receive_stamped`] (`timeout` `None`) or
    /// [`SocketPort::receive_timeout_stamped`] (`Ok(None)` when none came in time), except that a
    /// signal handler running on this thread ends the wait with `Err(Error::Interrupted)`.
    ///
    /// For programs whose signal handlers only note the signal (as CPython's do: the Python
    /// package calls this, runs the handlers and waits again, which is how Ctrl-C interrupts a
    /// blocking `receive()`): the caller acts on what its handler noted, then calls again with
    /// what is left of its timeout. Nothing is lost: bytes read before the signal stay parsed for
    /// the next call. It costs nothing over the plain receive: without a timeout (and nothing
    /// queued in a jitter buffer) its wait is the blocking read itself, one syscall.
    ///
    /// Which signals interrupt: any handler interrupts a wait with a timeout or for a jitter
    /// buffer's next due time (`ppoll`); a blocking read only a handler installed without
    /// `SA_RESTART` (the kernel restarts the read otherwise). A process-wide signal (`kill`,
    /// Ctrl-C) goes to one thread that does not block it — Linux tries the main thread first —
    /// so it interrupts a receive on the main thread, not one elsewhere. A signal that comes just
    /// before the wait starts does not end it: look at your flag before calling.
    pub fn receive_interruptible(&self, timeout: Option<Duration>) -> Result<Option<Received>> {
        let wait = timeout.and_then(net::deadline_after).map_or(Wait::Forever, Wait::Until);
        self.next(wait, OnSignal::Return)
    }

    /// Waits for at least one message, then appends every message that has arrived to `out` and
    /// returns how many: one lock and at most one socket read for the whole batch, the fast way
    /// to drain a busy stream. `Err(Error::Closed)` as for [`SocketPort::receive`].
    pub fn receive_batch(&self, out: &mut Vec<Received>) -> Result<usize> {
        self.check_readable()?;
        let mut state = self.inner.receiver.lock();
        self.inner.fill_until_pending(&mut state, Wait::Forever, OnSignal::Resume)?;
        let count = state.pending.len();
        if out.is_empty() && out.capacity() >= count {
            // Trade buffers instead of moving every message: the caller gets the parsed messages
            // as they lie, and the port keeps the caller's empty allocation, big enough for a read
            // like this one, for the next read. (`Vec::from` a deque is free when the deque
            // starts at the front of its allocation, as it does when only batches drain it;
            // otherwise it is one memmove.)
            let parsed = Vec::from(std::mem::take(&mut state.pending));
            state.pending = std::mem::replace(out, parsed).into();
        } else {
            out.extend(state.pending.drain(..));
        }
        self.inner.publish_due(&state.input, &state.pending);
        self.inner.note_exhausted(&state);
        Ok(count)
    }

    /// The messages that have arrived, without waiting; ends when none is left (mido's
    /// `iter_pending()`).
    pub fn iter_pending(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || self.try_receive().ok().flatten())
    }

    /// Every message until the peer closes or the port is closed (mido's `for msg in port`).
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || self.receive().ok())
    }

    /// Receiving needs an open port whose messages do not go to a callback.
    fn check_readable(&self) -> Result<()> {
        self.check_open()?;
        if self.inner.callback_installed.load(Ordering::Acquire) {
            return Err(Error::CallbackInstalled);
        }
        Ok(())
    }

    fn next(&self, wait: Wait, on_signal: OnSignal) -> Result<Option<Received>> {
        self.check_readable()?;
        let mut state = match wait {
            // Another thread is in a receive on this port: nothing has arrived for this caller.
            Wait::No => match self.inner.receiver.try_lock() {
                Some(state) => state,
                None => return Ok(None),
            },
            Wait::Forever | Wait::Until(_) => self.inner.receiver.lock(),
        };
        self.inner.next_locked(&mut state, wait, on_signal)
    }

    /// True after [`SocketPort::close`], or once the peer has closed and every message it sent
    /// has been received (mido's `closed`). Never blocks.
    pub fn is_closed(&self) -> bool {
        self.inner.locally_closed.load(Ordering::Acquire)
            || self.inner.exhausted.load(Ordering::Acquire)
            || self.inner.refusal.get().is_some()
    }

    /// The server's refusal, once this port has seen one: the cause in the server's words (see
    /// [`crate::RefusalCause`]). `None` for a port that was not refused (or has not read far
    /// enough to know; see [`SocketPort::finish`]).
    pub fn refusal(&self) -> Option<&str> {
        self.inner.refusal.get().map(String::as_str)
    }

    /// Ends a connection the way a sender should, and reports whether the server refused it.
    ///
    /// Sends what autoreset would (see [`SocketPort::set_autoreset`]), tells the peer that
    /// nothing more is coming (a TCP half-close; with TLS a close_notify first), then waits at
    /// most `timeout` for the peer to close its side, and closes the port. Messages that arrive
    /// meanwhile are discarded. Returns `Err(Error::Refused)` when the server refused the
    /// connection (its notice arrived before its close), `Ok(())` when the peer closed without
    /// one or `timeout` passed first (a server that refuses does so at once: after the hello, or
    /// after its hello deadline if that is shorter than `timeout`). `Err(Error::Closed)` if the
    /// port was already closed locally.
    ///
    /// This is how a program that only sends learns that it was refused: a send succeeds as long
    /// as the bytes fit in the socket's buffer, refused or not.
    ///
    /// With a callback installed ([`SocketPort::set_callback`]), the callback thread does the
    /// reading and this call checks its progress every few milliseconds.
    pub fn finish(&self, timeout: Duration) -> Result<()> {
        let deadline = net::deadline_after(timeout);
        if let Err(e) = self.check_open() {
            self.inner.close();
            return Err(e);
        }
        self.send_releases();
        self.inner.shutdown_write();
        if self.inner.callback_installed.load(Ordering::Acquire) {
            while !self.is_closed() && deadline.is_none_or(|d| monotonic_ns() < d) {
                thread::sleep(Duration::from_millis(5));
            }
        } else {
            let mut state = self.inner.receiver.lock();
            while !state.peer_closed && self.inner.refusal.get().is_none() {
                state.pending.clear();
                match self.inner.read_once(&mut state, deadline, OnSignal::Resume) {
                    Ok(true) => {}
                    // Timed out, or the connection failed: either way nothing more will tell us.
                    Ok(false) | Err(_) => break,
                }
            }
            state.pending.clear();
        }
        let refused = self.inner.check_refused();
        self.inner.close();
        refused
    }

    /// Closes the connection: the peer sees end-of-stream at once, and a thread blocked in
    /// `receive` on this port returns `Err(Error::Closed)`. With autoreset on, a note-off for
    /// every note this port left sounding and mido's reset set are sent first. Closing twice is
    /// harmless.
    pub fn close(&self) {
        self.send_releases();
        self.inner.close();
    }

    /// With autoreset on and the port open: a note-off for every note this port left sounding,
    /// then mido's reset set.
    fn send_releases(&self) {
        if self.inner.autoreset.load(Ordering::Acquire) && !self.inner.locally_closed.load(Ordering::Acquire) {
            let mut releases = Vec::new();
            self.inner.sender.lock().held.release_all(|m| releases.push(m));
            releases.extend(reset_messages());
            // Best effort: the peer may already be gone, which is what closing is about anyway.
            let _ = self.send_all(&releases);
        }
    }

    /// Sends mido's reset set: all notes off and reset all controllers on every channel.
    pub fn reset(&self) -> Result<()> {
        self.send_all(&reset_messages())
    }

    /// Sends mido's panic set: all sound off on every channel.
    pub fn panic(&self) -> Result<()> {
        self.send_all(&panic_messages())
    }

    /// With autoreset on, [`SocketPort::close`] (and dropping the port) first sends a note-off for
    /// every note this port left sounding, then mido's reset set, so a synth on the other end is
    /// not left with hanging notes (mido's `autoreset`).
    pub fn set_autoreset(&self, on: bool) {
        self.inner.autoreset.store(on, Ordering::Release);
    }

    /// What the receiving parser has ignored or dropped so far (stray bytes, oversized sysex).
    /// Never blocks, even while another thread (or the callback thread) waits in a receive.
    pub fn parser_stats(&self) -> ParserStats {
        self.inner.stats.lock().parser
    }

    /// The jitter buffer's state (offset, jitter, delay in force, queued and late messages), or
    /// `None` when [`ConnectOptions::jitter_buffer`] is off. As of the last read or playout;
    /// never blocks.
    pub fn playout_stats(&self) -> Option<PlayoutStats> {
        self.inner.stats.lock().playout
    }

    /// What the stamp decoder skipped in the received stream (see [`crate::timing`]); zeros for
    /// a stream without stamps. Never blocks.
    pub fn decoder_stats(&self) -> DecoderStats {
        self.inner.stats.lock().decoder
    }

    /// When the next message held in the jitter buffer is due: the `CLOCK_MONOTONIC` time in
    /// nanoseconds (the clock of [`Received::timestamp_ns`]) at or after which a receive hands it
    /// over. A message the buffer already played out and no receive has taken yet is due at its
    /// played-out time (in the past). `None` when nothing is held, or the port has no buffer
    /// ([`ConnectOptions::jitter_buffer`] off).
    ///
    /// For a program that polls from its own clock (a patcher, a game loop) instead of waiting
    /// in a receive: after draining with [`SocketPort::try_receive_stamped`] until it returns
    /// `Ok(None)`, it can sleep until this time instead of polling on a fixed period. Bytes still
    /// in the socket are not in the buffer yet: the poller must also wake when the connection
    /// becomes readable (bytes from a mido peer, or a stamped message late enough to be due at
    /// once, are handed over on arrival). As of the last receive; never blocks.
    pub fn next_due_ns(&self) -> Option<u64> {
        let due = self.inner.next_due.load(Ordering::Acquire);
        // A port closed here delivers nothing more, whatever its buffer still holds.
        (due != NOTHING_DUE && !self.inner.locally_closed.load(Ordering::Acquire)).then_some(due)
    }

    /// A file descriptor that is readable whenever [`SocketPort::try_receive_stamped`] may have
    /// something: bytes arrived (or the connection ended), or a message held in the jitter
    /// buffer fell due ([`SocketPort::next_due_ns`], to the nanosecond, by a `timerfd`). For a
    /// program that polls from its own loop (`poll`/`select`/`epoll`, a patcher's file-descriptor
    /// hook): wait on it, then receive with `try_receive_stamped` until it returns `Ok(None)`,
    /// which is what makes it quiet again (level-triggered). It never needs a timeout of its own.
    ///
    /// Made on the first call (an `epoll` descriptor, see the timing docs); the same number for
    /// the port's life, owned by the port: never close it, and stop waiting on it before the port
    /// is dropped. Useless with a callback installed (the callback thread receives). Fails with
    /// [`Error::Io`] when the descriptors cannot be made (the process is out of them).
    pub fn poll_fd(&self) -> Result<RawFd> {
        if let Some(poll) = self.inner.poll_fd.get() {
            return Ok(poll.raw());
        }
        self.inner.attach_poll_fd(Arc::new(PollFd::new().map_err(Error::Io)?))
    }

    /// Shares a reconnecting port's poll descriptor with this, its new connection.
    pub(crate) fn attach_poll_fd(&self, poll: Arc<PollFd>) -> Result<RawFd> {
        self.inner.attach_poll_fd(poll)
    }

    /// True once this port's peer asked for stamps and this port answers them: what it sends
    /// carries its send time (see [`crate::timing`]).
    pub fn sends_stamps(&self) -> bool {
        self.inner.stamps_asked.load(Ordering::Acquire)
    }

    /// Delivers every incoming message to `callback` instead of the receive methods, from a
    /// named reader thread ("midisock-cb") that this port owns.
    ///
    /// Messages already received but not yet taken are delivered first, in order. The callback
    /// runs until the peer closes, the port is closed or [`SocketPort::remove_callback`] is
    /// called; dropping the port joins the thread. The callback may send on this port (or any
    /// other), but must not block for long: the next message waits for it to return. Only one
    /// callback can be installed at a time (`Err(Error::CallbackInstalled)` on a second call).
    pub fn set_callback<F>(&self, mut callback: F) -> Result<()>
    where
        F: FnMut(Received) + Send + 'static,
    {
        self.check_open()?;
        if self.inner.callback_installed.swap(true, Ordering::AcqRel) {
            return Err(Error::CallbackInstalled);
        }
        let inner = Arc::clone(&self.inner);
        let generation = inner.callback_generation.fetch_add(1, Ordering::AcqRel) + 1;
        let spawned = thread::Builder::new().name(CALLBACK_THREAD_NAME.into()).spawn(move || {
            let number = NEXT_CALLBACK_THREAD.fetch_add(1, Ordering::Relaxed);
            CALLBACK_THREAD_NUMBER.with(|n| n.set(number));
            inner.callback_thread_number.store(number, Ordering::Release);
            let current = || inner.callback_generation.load(Ordering::Acquire) == generation;
            let mut state = inner.receiver.lock();
            // Whole reads at a time: one wait per read, not one per message. The wait goes in
            // slices because nothing can wake a blocking read except data or a close, and
            // remove_callback must be able to end this thread with the connection still open.
            while current() {
                match inner.fill_until_pending(
                    &mut state,
                    net::deadline_after(CALLBACK_STOP_CHECK).map_or(Wait::Forever, Wait::Until),
                    OnSignal::Resume,
                ) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => break,
                }
                // Checked before each message: once the callback is removed, what is left stays
                // pending for the receive methods.
                while current() {
                    let Some(received) = state.pending.pop_front() else { break };
                    callback(received);
                }
                inner.publish_due(&state.input, &state.pending);
                inner.note_exhausted(&state);
            }
        });
        match spawned {
            Ok(handle) => {
                *self.callback_thread.lock() = Some(handle);
                Ok(())
            }
            Err(e) => {
                self.inner.callback_installed.store(false, Ordering::Release);
                Err(Error::Io(e))
            }
        }
    }

    /// Stops delivering to the callback installed by [`SocketPort::set_callback`] and joins its
    /// thread; messages it had not delivered yet, and every later one, go to the receive methods
    /// again (mido's `port.callback = None`). Called from the callback itself, it returns at once
    /// and the thread ends when the callback returns. Does nothing when no callback is installed.
    pub fn remove_callback(&self) {
        let handle = self.callback_thread.lock().take();
        let Some(handle) = handle else { return };
        self.inner.callback_generation.fetch_add(1, Ordering::AcqRel);
        if CALLBACK_THREAD_NUMBER.with(Cell::get) != self.inner.callback_thread_number.load(Ordering::Acquire) {
            let _ = handle.join();
        }
        self.inner.callback_installed.store(false, Ordering::Release);
    }
}

impl PortInner {
    fn close(&self) {
        if let Some(tls) = &self.tls {
            if !self.locally_closed.load(Ordering::Acquire) {
                // Tell a TLS peer this is a clean end, not a truncation. Best effort.
                let mut conn = tls.lock();
                conn.send_close_notify();
                let _ = tls::flush_records(&mut conn, &self.stream);
            }
        }
        self.locally_closed.store(true, Ordering::Release);
        // NOTE: shutdown, not just drop: the descriptor may be shared (a callback thread holds
        // this Arc), and shutdown sends FIN now and wakes any reader blocked on the socket.
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// `Err(Error::Refused)` once a refusal notice was seen.
    fn check_refused(&self) -> Result<()> {
        match self.refusal.get() {
            Some(cause) => Err(Error::Refused { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Tells the peer nothing more is coming, keeping the read side open.
    fn shutdown_write(&self) {
        if let Some(tls) = &self.tls {
            let mut conn = tls.lock();
            conn.send_close_notify();
            let _ = tls::flush_records(&mut conn, &self.stream);
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn next_locked(&self, state: &mut ReceiveState, wait: Wait, on_signal: OnSignal) -> Result<Option<Received>> {
        if !self.fill_until_pending(state, wait, on_signal)? {
            return Ok(None);
        }
        let received = state.pending.pop_front();
        self.publish_due(&state.input, &state.pending);
        self.note_exhausted(state);
        Ok(received)
    }

    /// Reads until at least one message is pending: true when one is, false on timeout,
    /// `Err(Closed)` once the port is closed or the peer's stream is exhausted.
    ///
    /// With a playout buffer the wait ends at the caller's deadline or when the next queued
    /// message is due, whichever is first; due messages are moved to `pending` whenever it
    /// wakes. After the peer closed, what is still queued plays out on schedule before
    /// `Err(Closed)`.
    ///
    /// With [`OnSignal::Return`], `Err(Interrupted)` when a signal handler interrupts a wait;
    /// whatever was read before stays parsed and queued for the next call.
    fn fill_until_pending(&self, state: &mut ReceiveState, wait: Wait, on_signal: OnSignal) -> Result<bool> {
        loop {
            self.check_refused()?;
            if self.locally_closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let playout_due = state.input.next_deadline();
            if playout_due.is_some() {
                self.play_due(state);
            }
            if !state.pending.is_empty() {
                return Ok(true);
            }
            let caller_deadline = match wait {
                Wait::Forever => None,
                Wait::Until(deadline) => Some(deadline),
                // Only what the socket holds now.
                Wait::No => Some(0),
            };
            let playout_due = state.input.next_deadline();
            let deadline = match (caller_deadline, playout_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if state.peer_closed {
                // The socket has nothing more to say (and is always readable): wait for the
                // queue alone, in slices, so a close meanwhile is noticed.
                let Some(due) = playout_due else { return Err(Error::Closed) };
                let now = monotonic_ns();
                if caller_deadline.is_some_and(|d| d <= now && d < due) {
                    return Ok(false);
                }
                net::sleep_until(deadline.unwrap_or(due).min(now.saturating_add(CLOSED_PEER_SLICE_NS)), on_signal)
                    .map_err(from_wait_error)?;
                continue;
            }
            if !self.read_once(state, deadline, on_signal)? {
                // Timed out: at the caller's deadline (done, unless a message fell due at the
                // same moment), or at the playout's (take it, and wait on).
                if caller_deadline.is_some_and(|d| monotonic_ns() >= d) {
                    self.play_due(state);
                    return Ok(!state.pending.is_empty());
                }
            }
        }
    }

    /// Moves every queued message that is due now to `pending`.
    fn play_due(&self, state: &mut ReceiveState) {
        let ReceiveState { input, pending, .. } = state;
        let before = pending.len();
        input.pop_due(monotonic_ns(), |received| pending.push_back(received));
        if pending.len() != before {
            self.stats.lock().playout = input.playout_stats();
            self.publish_due(input, pending);
        }
    }

    /// Publishes when the buffer's next message is due, for [`SocketPort::next_due_ns`].
    ///
    /// With a buffer, messages it already played out and a receive has not taken yet count too
    /// (due at their played-out time, in the past): a poller that stopped before draining them
    /// is woken for them at once. Without one, nothing is ever held for a time.
    fn publish_due(&self, input: &TimedInput, pending: &VecDeque<Received>) {
        if !input.has_playout() {
            return;
        }
        let due = pending.front().map(|received| received.timestamp_ns).or_else(|| input.next_deadline());
        // Under the stats lock, so a poll descriptor being attached meanwhile is armed for the
        // latest deadline, never a stale one.
        let _published = self.stats.lock();
        self.next_due.store(due.unwrap_or(NOTHING_DUE), Ordering::Release);
        self.arm_poll_fd(due);
    }

    /// Arms the poll descriptor's timer (call under the stats lock): at `due`, or, once the
    /// stream has ended and nothing is held, at once and for good, so the poller learns of the end
    /// (its socket, readable for ever, has left the set).
    fn arm_poll_fd(&self, due: Option<u64>) {
        if let Some(poll) = self.poll_fd.get() {
            let ended = due.is_none() && self.eof_read.load(Ordering::Acquire);
            poll.arm(if ended { Some(1) } else { due });
        }
    }

    /// Makes `poll` this port's poll descriptor: it watches the socket and a timer armed at the
    /// buffer's next deadline. A port has one for its whole life: a second call keeps the first.
    fn attach_poll_fd(&self, poll: Arc<PollFd>) -> Result<RawFd> {
        let _published = self.stats.lock();
        if let Some(existing) = self.poll_fd.get() {
            return Ok(existing.raw());
        }
        if !self.eof_read.load(Ordering::Acquire) {
            poll.watch(self.stream.as_raw_fd()).map_err(Error::Io)?;
        }
        let due = self.next_due.load(Ordering::Acquire);
        let raw = poll.raw();
        let _ = self.poll_fd.set(poll);
        self.arm_poll_fd((due != NOTHING_DUE).then_some(due));
        Ok(raw)
    }

    /// Waits for the socket until `deadline` (forever when `None`) and takes one read: false on
    /// timeout, `Err(Interrupted)` when a signal handler interrupted the wait and `on_signal`
    /// says to give up.
    fn read_once(&self, state: &mut ReceiveState, deadline: Option<u64>, on_signal: OnSignal) -> Result<bool> {
        let read = match &self.tls {
            None => self.read_plain(&mut state.buf, deadline, on_signal)?,
            Some(tls) => self.read_tls(tls, &mut state.buf, deadline, on_signal)?,
        };
        match read {
            None => Ok(false),
            Some(n) => {
                self.take(state, n);
                Ok(true)
            }
        }
    }

    /// One read from the socket, after waiting for it until `deadline` (blocking when `None`).
    /// `None` on timeout; `Some(0)` at the end of the stream.
    ///
    /// NOTE: without a deadline the read itself is the wait: one syscall per read, the least a
    /// receive can cost. A signal handler installed without `SA_RESTART` (as CPython installs
    /// its own) makes that read fail with `EINTR`, which `OnSignal::Return` passes on.
    fn read_plain(&self, buf: &mut [u8], deadline: Option<u64>, on_signal: OnSignal) -> Result<Option<usize>> {
        let fd = self.stream.as_raw_fd();
        let flags = match deadline {
            // Only what the socket holds now (a poll, or a deadline that has passed): one
            // non-blocking read rather than a ppoll and then a read.
            Some(deadline) if deadline <= monotonic_ns() => libc::MSG_DONTWAIT,
            Some(deadline) => {
                if !net::wait_readable(fd, Some(deadline), on_signal).map_err(from_wait_error)? {
                    return Ok(None);
                }
                0
            }
            None => 0,
        };
        loop {
            // SAFETY: `buf` is `buf.len()` writable bytes, and `fd` is this port's open socket.
            let rc = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
            if rc >= 0 {
                return Ok(Some(rc as usize));
            }
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => match on_signal {
                    OnSignal::Resume => continue,
                    OnSignal::Return => Err(Error::Interrupted),
                },
                _ => match from_stream_error(e) {
                    // A reset connection ends the stream like a close; what arrived before counts.
                    Error::Closed => Ok(Some(0)),
                    other => Err(other),
                },
            };
        }
    }

    /// [`PortInner::read_plain`] through TLS: waits for the socket without holding the session
    /// lock, so sends go on while a receive waits.
    fn read_tls(
        &self,
        tls: &Mutex<Connection>,
        buf: &mut [u8],
        deadline: Option<u64>,
        on_signal: OnSignal,
    ) -> Result<Option<usize>> {
        let stream = &self.stream;
        loop {
            if let Some(n) = tls::buffered_plaintext(&mut tls.lock(), buf).map_err(from_stream_error)? {
                return Ok(Some(n));
            }
            if !net::wait_readable(stream.as_raw_fd(), deadline, on_signal).map_err(from_wait_error)? {
                return Ok(None);
            }
            match tls::read_plaintext(&mut tls.lock(), stream, buf) {
                Ok(Some(n)) => return Ok(Some(n)),
                // Part of a record: wait for the rest.
                Ok(None) => continue,
                // The socket was readable, so this read did not wait: read again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return match from_stream_error(e) {
                        Error::Closed => Ok(Some(0)),
                        other => Err(other),
                    }
                }
            }
        }
    }

    /// Parses `n` bytes just read into `pending`; 0 means the peer closed.
    fn take(&self, state: &mut ReceiveState, n: usize) {
        state.bytes_taken += n as u64;
        let ReceiveState { input, pending, peer_closed, buf, notice_head, .. } = state;
        let arrival_ns = monotonic_ns();
        let mut deliver = |bytes: &[u8]| input.feed(bytes, arrival_ns, |received| pending.push_back(received));
        if let Some(head) = notice_head {
            // The start of a client's connection: a refusal notice, or the MIDI stream.
            let scanned = if head.is_empty() && n > 0 {
                // Usually decided by the first read, without copying it.
                match refusal::scan(&buf[..n]) {
                    NoticeScan::NeedMore => {
                        head.extend_from_slice(&buf[..n]);
                        return;
                    }
                    other => other,
                }
            } else {
                head.extend_from_slice(&buf[..n]);
                refusal::scan(head)
            };
            match scanned {
                NoticeScan::NeedMore if n > 0 => return,
                NoticeScan::Refused { cause, .. } => {
                    let _ = self.refusal.set(cause);
                    *notice_head = None;
                    *peer_closed = true;
                    self.peer_gone.store(true, Ordering::Release);
                    self.exhausted.store(true, Ordering::Release);
                    return;
                }
                // Not a notice (or a stream that ended inside what looked like one): MIDI.
                _ => {
                    let held = std::mem::take(head);
                    *notice_head = None;
                    if held.is_empty() {
                        deliver(&buf[..n]);
                    } else {
                        // `held` already includes this read.
                        deliver(&held);
                    }
                }
            }
        } else if n > 0 {
            deliver(&buf[..n]);
        }
        if n == 0 {
            // Bytes the decoder held while deciding whether they start a hello are MIDI after all.
            input.end(arrival_ns, |_, _| {}, |received| pending.push_back(received));
        }
        if input.stamps_requested() && !self.stamps_asked.load(Ordering::Relaxed) {
            self.stamps_asked.store(true, Ordering::Release);
        }
        {
            let mut stats = self.stats.lock();
            stats.parser = input.parser_stats();
            stats.decoder = input.decoder_stats();
            if input.has_playout() {
                stats.playout = input.playout_stats();
            }
        }
        if input.has_playout() {
            self.publish_due(input, pending);
        }
        if n == 0 {
            let _published = self.stats.lock();
            self.eof_read.store(true, Ordering::Release);
            if let Some(poll) = self.poll_fd.get() {
                poll.unwatch(self.stream.as_raw_fd());
            }
            self.arm_poll_fd(input.next_deadline());
        }
        if n == 0 {
            // A message cut off by the close is dropped by the parser, never delivered in part.
            *peer_closed = true;
            self.peer_gone.store(true, Ordering::Release);
            self.note_exhausted(state);
        }
    }

    fn note_exhausted(&self, state: &ReceiveState) {
        if state.peer_closed && state.pending.is_empty() && state.input.is_idle() {
            self.exhausted.store(true, Ordering::Release);
        }
    }

    /// For a port that only sends: looks, without blocking and without taking anything but
    /// hellos, for the peer's request for stamps at the start of what it sent (after a token
    /// hello, if any). Hellos found are taken through the receive path, which notes a request
    /// (and a refusal notice) as a receive would; every other byte stays in the socket for
    /// whoever receives. True when this is decided: the request was taken, or something else
    /// comes first, or a receive has read already (it sees the request itself), or the peer is
    /// gone.
    fn probe_for_request(&self, state: &mut ReceiveState) -> bool {
        if state.peer_closed || state.bytes_taken != state.bytes_probed {
            return true;
        }
        let mut peeked = [0u8; PROBE_LEN];
        let n = match self.peek(&mut peeked) {
            Ok(Some(0)) | Err(_) => return true,
            Ok(Some(n)) => n,
            Ok(None) => return false,
        };
        let (take, decided) = match scan_hellos(&peeked[..n]) {
            HelloScan::Request(len) => (len, true),
            HelloScan::OnlyHellos(0) => return false,
            // Take the whole hellos before a partial one, so the next look starts at a hello.
            HelloScan::OnlyHellos(complete) => (complete, false),
            HelloScan::Other => return true,
        };
        // Take exactly those bytes, the way a receive would have read them.
        let taken = match &self.tls {
            None => {
                let mut got = 0;
                while got < take {
                    // SAFETY: the destination is `take - got` writable bytes of the buffer.
                    let rc = unsafe {
                        libc::recv(
                            self.stream.as_raw_fd(),
                            state.buf[got..take].as_mut_ptr().cast(),
                            take - got,
                            libc::MSG_DONTWAIT,
                        )
                    };
                    if rc <= 0 {
                        break;
                    }
                    got += rc as usize;
                }
                got
            }
            Some(tls) => {
                let mut conn = tls.lock();
                let mut got = 0;
                while got < take {
                    match conn.reader().read(&mut state.buf[got..take]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got += k,
                    }
                }
                got
            }
        };
        if taken == 0 {
            return true;
        }
        self.take(state, taken);
        state.bytes_probed = state.bytes_taken;
        decided || taken < take
    }

    /// The first unread bytes of the stream, without taking them and without blocking: `None`
    /// when there are none yet, `Some(0)` at its end. With TLS, records the socket holds are
    /// decrypted into the session (where a receive finds them first) and its plaintext looked
    /// at.
    fn peek(&self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let fd = self.stream.as_raw_fd();
        let Some(tls) = &self.tls else {
            // SAFETY: `out` is `out.len()` writable bytes.
            let rc = unsafe { libc::recv(fd, out.as_mut_ptr().cast(), out.len(), libc::MSG_PEEK | libc::MSG_DONTWAIT) };
            return match rc {
                0.. => Ok(Some(rc as usize)),
                _ => {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                        _ => Err(e),
                    }
                }
            };
        };
        let mut conn = tls.lock();
        let copy = |conn: &mut Connection, out: &mut [u8]| match conn.reader().fill_buf() {
            Ok([]) => Ok(Some(0)),
            Ok(plain) => {
                let n = plain.len().min(out.len());
                out[..n].copy_from_slice(&plain[..n]);
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        };
        if let Some(n) = copy(&mut conn, out)? {
            return Ok(Some(n));
        }
        if !net::wait_readable(fd, Some(0), OnSignal::Resume)? {
            return Ok(None);
        }
        if conn.read_tls(&mut &self.stream)? == 0 {
            return Ok(Some(0));
        }
        let processed = conn.process_new_packets();
        tls::flush_records(&mut conn, &self.stream)?;
        processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        copy(&mut conn, out)
    }
}

/// What a stream starts with, for [`PortInner::probe_for_request`].
#[derive(Debug, PartialEq, Eq)]
enum HelloScan {
    /// Hellos a parser ignores (a token hello, a refusal notice), then a request for stamps
    /// ending after this many bytes.
    Request(usize),
    /// Nothing but hellos so far, this many bytes of them whole (the rest is the start of one):
    /// look again later.
    OnlyHellos(usize),
    /// Something else comes first (MIDI, an answer): there is no request at the start.
    Other,
}

/// Looks for a request for stamps at the start of `bytes`, past at most one `F4 <printable> F7`
/// (a token hello or a refusal notice).
fn scan_hellos(bytes: &[u8]) -> HelloScan {
    let mut at = 0;
    let mut skipped_one = false;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest[0] != 0xF4 {
            return HelloScan::Other;
        }
        match rest.get(1) {
            None => return HelloScan::OnlyHellos(at),
            Some(0x20..=0x7E) if !skipped_one => {
                // A token hello or a notice: printable bytes up to F7.
                let body = &rest[1..];
                match body.iter().position(|&b| !(0x20..=0x7E).contains(&b)) {
                    None if body.len() <= PROBE_LEN => return HelloScan::OnlyHellos(at),
                    Some(end) if body[end] == 0xF7 => {
                        at += 1 + end + 1;
                        skipped_one = true;
                    }
                    _ => return HelloScan::Other,
                }
            }
            Some(_) => {
                for end in 2..=rest.len() {
                    match hello::classify(&rest[..end]) {
                        hello::HelloMatch::Prefix => continue,
                        hello::HelloMatch::Complete(hello::Hello::Request { .. }) => {
                            return HelloScan::Request(at + end)
                        }
                        hello::HelloMatch::Complete(hello::Hello::Answer { .. }) | hello::HelloMatch::No => {
                            return HelloScan::Other
                        }
                    }
                }
                return HelloScan::OnlyHellos(at);
            }
        }
    }
    HelloScan::OnlyHellos(at)
}

impl Drop for SocketPort {
    fn drop(&mut self) {
        self.close();
        let handle = self.callback_thread.lock().take();
        if let Some(handle) = handle {
            // A callback that drops its own port must not wait for itself.
            let own_thread = self.inner.callback_thread_number.load(Ordering::Acquire);
            // NOTE: a thread-local number rather than `thread::current()`, which allocates the
            // calling thread's handle on first use (a C host's main thread would leak it).
            if CALLBACK_THREAD_NUMBER.with(Cell::get) != own_thread {
                let _ = handle.join();
            }
        }
    }
}

impl fmt::Debug for SocketPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketPort").field("name", &self.inner.name).field("closed", &self.is_closed()).finish()
    }
}

impl<'a> IntoIterator for &'a SocketPort {
    type Item = Message;
    type IntoIter = Box<dyn Iterator<Item = Message> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
