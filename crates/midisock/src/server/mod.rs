//! [`PortServer`]: accepts any number of clients, on one I/O thread.
//!
//! The three ways a mido program uses a socket server all work here, and can be mixed:
//!
//! 1. **Receive from every client**: `receive`, `try_receive`, `receive_timeout`,
//!    `iter_pending`, `for message in &server`. Messages from all clients are merged in arrival
//!    order.
//! 2. **Broadcast**: `send` writes to every connected client. Clients are accepted and sent to even
//!    when the program never receives or accepts.
//! 3. **Accept**: `accept`, `try_accept`, `accept_timeout` hand one connection to the caller as a
//!    [`SocketPort`], exclusively: the server neither reads from it nor broadcasts to it again.
//!
//! Who gets a new connection's messages? Until a message is first asked for (style 1), a new
//! connection waits in a lobby: it receives broadcasts but its bytes stay unread in the kernel,
//! so `accept` can hand it over whole. Once `receive` has been called, new connections are read
//! at once — unless a thread is blocked in `accept`, which then gets the connection.
//!
//! Memory is bounded whatever clients do (see [`ServerConfig`]): a client that stops reading is
//! disconnected when its queue passes `max_client_queue`; when the program reads slower than
//! clients send, the server stops reading sockets instead of buffering (the inbox, and what the
//! jitter buffers hold, are bounded together by the memory their messages take,
//! `max_inbox_bytes`).
//!
//! When a client leaves — closing, resetting, or dropped for reading too slowly — everything it
//! sent before is delivered, exactly once, and then the notes it left held are released
//! (note-offs to `receive()` and, when relaying, to the other clients). A connection the server
//! refuses is first told why, in a notice a MIDI parser ignores (see [`crate::RefusalCause`]).
//! [`ServerConfig::on_event`] reports every connect, disconnect and refusal with its cause.

mod arrivals;
mod callback;
mod client;
mod config;
mod event_loop;
mod events;
mod inbox;
mod jitter_buffers;
mod memory;
mod outgoing;
mod shared;
mod timer;

pub use config::{ServerConfig, SysexPolicy};
pub use events::{DisconnectCause, EventHook, ServerEvent};
pub use shared::ServerStats;

use crate::address::IntoAddress;
use crate::doorbell::{Doorbell, Woken};
use crate::error::{Error, Result};
use crate::message::{panic_messages, reset_messages, Message, Received};
use crate::net::{self, OnSignal};
use crate::poll_fd::PollFd;
use crate::port::SocketPort;
use crate::timing::PlayoutStats;
use client::{Client, Role};
use event_loop::{EventLoop, WAKER};
use outgoing::{BroadcastScratch, Outgoing};
use parking_lot::{Mutex, MutexGuard, RwLock};
use shared::{Counters, Shared, State};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a receive or accept may wait.
#[derive(Clone, Copy)]
enum Wait {
    /// Not at all: only what is there now.
    No,
    /// Until this monotonic time ([`crate::monotonic_ns`]); `None`: for ever.
    Until(Option<u64>),
}

impl Wait {
    const FOREVER: Wait = Wait::Until(None);

    /// At most `timeout` (`None`, or a timeout past the clock's range: for ever).
    fn up_to(timeout: Option<Duration>) -> Wait {
        Wait::Until(timeout.and_then(net::deadline_after))
    }
}

/// A midisock server. See the module docs for how connections are shared out.
///
/// `PortServer` is `Send + Sync`. Dropping it (or [`PortServer::close`]) closes every
/// connection it still serves and joins its thread.
pub struct PortServer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The thread that calls the callback, while one is installed ([`PortServer::set_callback`]).
    callback_thread: Mutex<Option<JoinHandle<()>>>,
    local_addrs: Vec<SocketAddr>,
    name: String,
}

impl PortServer {
    /// Listens on `address` with the default limits, like mido's `PortServer(host, port)`.
    ///
    /// `localhost` listens on every address it resolves to (127.0.0.1 and ::1); `""` and `::`
    /// on every address, IPv4 and IPv6; `0.0.0.0` on every IPv4 address. Port 0 picks a free port
    /// ([`PortServer::local_addr`] tells which).
    pub fn bind(address: impl IntoAddress) -> Result<PortServer> {
        PortServer::bind_with(address, ServerConfig::default())
    }

    /// [`PortServer::bind`] with explicit limits.
    pub fn bind_with(address: impl IntoAddress, config: ServerConfig) -> Result<PortServer> {
        let mut address = address.into_address()?;
        let listeners = crate::net::listen(&address)?;
        let local_addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        if let Some(first) = local_addrs.first() {
            address.port = first.port();
        }
        let poll = mio::Poll::new().map_err(Error::Io)?;
        let waker = mio::Waker::new(poll.registry(), WAKER).map_err(Error::Io)?;
        let registry = poll.registry().try_clone().map_err(Error::Io)?;
        let relay = config.relay;
        let shared = Arc::new(Shared {
            config,
            registry,
            waker,
            clients: RwLock::new(HashMap::new()),
            // A relay serves every connection from the start: it exists to pass messages on.
            state: Mutex::new(State { reads_claimed: relay, ..State::default() }),
            changed: Doorbell::default(),
            broadcast: Mutex::new(BroadcastScratch::default()),
            failed: Mutex::new(Vec::new()),
            stats: Counters::default(),
            next_due: AtomicU64::new(u64::MAX),
            poll_fd: OnceLock::new(),
        });
        let listeners = listeners
            .into_iter()
            .map(|l| {
                l.set_nonblocking(true)?;
                Ok(mio::net::TcpListener::from_std(l))
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(Error::Io)?;
        let event_loop = EventLoop::new(poll, listeners, Arc::clone(&shared)).map_err(Error::Io)?;
        let thread = std::thread::Builder::new()
            .name("midisock-server".into())
            .spawn(move || event_loop.run())
            .map_err(Error::Io)?;
        Ok(PortServer {
            shared,
            thread: Mutex::new(Some(thread)),
            callback_thread: Mutex::new(None),
            local_addrs,
            name: address.to_string(),
        })
    }

    /// `host:port` as given to `bind`, with the real port when 0 was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every address listened on (two for `localhost` on a machine with IPv4 and IPv6).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Connections the server currently sends to (accepted ones handed out are not counted).
    pub fn client_count(&self) -> usize {
        self.shared.clients().values().filter(|c| matches!(c.role(), Role::Lobby | Role::Served)).count()
    }

    /// The peer addresses of those connections.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .clients()
            .values()
            .filter(|c| matches!(c.role(), Role::Lobby | Role::Served))
            .map(|c| c.peer)
            .collect()
    }

    /// Broadcasts a message to every connected client. Never blocks on a slow client: what its
    /// socket does not take at once is queued, and a client whose queue would pass
    /// `max_client_queue` is disconnected. Sending with no client connected is not an error.
    pub fn send(&self, message: &Message) -> Result<()> {
        self.send_all(std::slice::from_ref(message))
    }

    /// Broadcasts several messages as one write per client. All are validated first; either every
    /// message goes out or none does.
    pub fn send_all(&self, messages: &[Message]) -> Result<()> {
        let mut scratch = self.shared.broadcast.lock();
        scratch.encode(messages)?;
        if self.shared.state().stopped {
            return Err(Error::Closed);
        }
        let BroadcastScratch { plain, stamped } = &mut *scratch;
        self.shared.broadcast(&Outgoing::now(plain, messages), None, stamped);
        scratch.shrink();
        Ok(())
    }

    /// What the server has refused or dropped so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats.snapshot()
    }

    /// Each connected client's jitter buffer (its peer address and stats), for clients whose
    /// messages are played out; empty when [`ServerConfig::jitter_buffer`] is off. Never waits
    /// for the I/O thread for longer than a copy.
    pub fn playout_stats(&self) -> Vec<(SocketAddr, PlayoutStats)> {
        self.shared
            .clients()
            .values()
            .filter(|c| c.role() == Role::Served)
            .filter_map(|c| c.playout_stats().map(|stats| (c.peer, stats)))
            .collect()
    }

    /// When the next message held in any client's jitter buffer is due
    /// ([`ServerConfig::jitter_buffer`]): the `CLOCK_MONOTONIC` time in nanoseconds (the clock of
    /// [`Received::timestamp_ns`]) at which the server's I/O thread moves it into the inbox, where
    /// the receive methods find it. `None` when no buffer holds anything, or the option is off.
    ///
    /// For a program that polls from its own clock: after draining with
    /// [`PortServer::try_receive_stamped`], it can sleep until this time (or until it polls for
    /// arrivals anyway: unstamped messages reach the inbox when they arrive). The I/O thread
    /// moves a message within its own wake-up latency of this time, so a poll exactly then may
    /// still find the inbox empty: poll again shortly. Never blocks.
    pub fn next_due_ns(&self) -> Option<u64> {
        if self.is_closed() {
            return None;
        }
        let due = self.shared.next_due.load(Ordering::Acquire);
        (due != u64::MAX).then_some(due)
    }

    /// A file descriptor that is readable whenever [`PortServer::try_receive_stamped`] may have
    /// something, or the clients changed: the inbox gained messages (arrivals, or messages a
    /// jitter buffer played out at their time: the I/O thread moves them), a client connected or
    /// left ([`PortServer::client_count`]: read it after receiving, as the signal is cleared by
    /// the receive that finds nothing), or the server stopped. For a program that polls
    /// from its own loop, as [`SocketPort::poll_fd`]: wait on it, then receive with
    /// `try_receive_stamped` until `Ok(None)`, which makes it quiet again. Made on the first
    /// call; the same number for the server's life, owned by the server (never close it).
    pub fn poll_fd(&self) -> Result<std::os::fd::RawFd> {
        let state = self.shared.state();
        if let Some(poll) = self.shared.poll_fd.get() {
            return Ok(poll.raw());
        }
        let poll = PollFd::with_signal().map_err(Error::Io)?;
        if !state.inbox.is_empty() || state.stopping || state.stopped {
            poll.signal();
        }
        let raw = poll.raw();
        let _ = self.shared.poll_fd.set(poll);
        drop(state);
        Ok(raw)
    }

    /// Broadcasts mido's reset set (all notes off, reset all controllers, every channel).
    pub fn reset(&self) -> Result<()> {
        self.send_all(&reset_messages())
    }

    /// Broadcasts mido's panic set (all sound off, every channel).
    pub fn panic(&self) -> Result<()> {
        self.send_all(&panic_messages())
    }

    /// Waits for the next message from any client. `Err(Error::Closed)` once the server is closed.
    pub fn receive(&self) -> Result<Message> {
        self.receive_stamped().map(|r| r.message)
    }

    /// [`PortServer::receive`] with the message's receive timestamp.
    pub fn receive_stamped(&self) -> Result<Received> {
        self.next_message(Wait::FOREVER, OnSignal::Resume)
            .map(|r| r.expect("an unbounded wait returns a message or an error"))
    }

    /// The next message if one has arrived, without waiting.
    pub fn try_receive(&self) -> Result<Option<Message>> {
        self.try_receive_stamped().map(|r| r.map(|r| r.message))
    }

    /// [`PortServer::try_receive`] with the message's receive timestamp.
    pub fn try_receive_stamped(&self) -> Result<Option<Received>> {
        self.next_message(Wait::No, OnSignal::Resume)
    }

    /// Waits at most `timeout` for a message; `Ok(None)` if none came.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.receive_timeout_stamped(timeout).map(|r| r.map(|r| r.message))
    }

    /// [`PortServer::receive_timeout`] with the message's receive timestamp.
    pub fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>> {
        self.next_message(Wait::up_to(Some(timeout)), OnSignal::Resume)
    }

    /// Waits for the next message like [`PortServer::receive_stamped`] (`timeout` `None`) or
    /// [`PortServer::receive_timeout_stamped`] (`Ok(None)` when none came in time), except that a
    /// signal handler running on this thread ends the wait with `Err(Error::Interrupted)`, for
    /// the caller to act on and wait again (see [`SocketPort::receive_interruptible`], which says
    /// which signals reach which thread). Its wait is a futex, which a handler installed with
    /// `SA_RESTART` does not interrupt. Nothing is lost: a message that arrives meanwhile waits for
    /// the next call.
    pub fn receive_interruptible(&self, timeout: Option<Duration>) -> Result<Option<Received>> {
        self.next_message(Wait::up_to(timeout), OnSignal::Return)
    }

    /// Waits for at least one message from any client, then appends every message waiting to
    /// `out` and returns how many (one lock for the batch). `Err(Error::Closed)` once closed.
    pub fn receive_batch(&self, out: &mut Vec<Received>) -> Result<usize> {
        let mut state = self.claim_reads();
        if state.callback_installed {
            return Err(Error::CallbackInstalled);
        }
        loop {
            if !state.inbox.is_empty() {
                let (count, emptied) = state.inbox.drain_into(out);
                if state.reading_paused {
                    self.shared.wake_loop();
                }
                drop(state);
                // Freed without the lock.
                drop(emptied);
                return Ok(count);
            }
            if state.stopped || state.stopping {
                return Err(Error::Closed);
            }
            self.shared.wait_changed(&mut state, None, OnSignal::Resume);
        }
    }

    /// The messages that have arrived, without waiting.
    pub fn iter_pending(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || self.try_receive().ok().flatten())
    }

    /// Every message from every client, until the server is closed.
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || self.receive().ok())
    }

    /// Locks the state, noting that the program reads: from now on connections are served.
    fn claim_reads(&self) -> MutexGuard<'_, State> {
        let mut state = self.shared.state();
        if !state.reads_claimed {
            state.reads_claimed = true;
            if !state.lobby.is_empty() {
                self.shared.wake_loop();
            }
        }
        state
    }

    fn next_message(&self, wait: Wait, on_signal: OnSignal) -> Result<Option<Received>> {
        let mut state = self.claim_reads();
        if state.callback_installed {
            return Err(Error::CallbackInstalled);
        }
        loop {
            if let Some(received) = self.shared.take_next(&mut state) {
                return Ok(Some(received));
            }
            if state.stopped || state.stopping {
                return Err(Error::Closed);
            }
            let Wait::Until(deadline) = wait else {
                if let Some(poll) = self.shared.poll_fd.get() {
                    // Under the state lock: a message the I/O thread adds after this signals again.
                    poll.clear();
                }
                return Ok(None);
            };
            match self.shared.wait_changed(&mut state, deadline, on_signal) {
                Woken::Rang => {}
                Woken::TimedOut => return Ok(None),
                Woken::Interrupted => return Err(Error::Interrupted),
            }
        }
    }

    /// Waits for a client to connect and hands its connection to the caller.
    pub fn accept(&self) -> Result<SocketPort> {
        self.accept_until(Wait::FOREVER, OnSignal::Resume)
            .map(|p| p.expect("an unbounded wait returns a port or an error"))
    }

    /// A client that has connected and not been claimed yet, without waiting (mido's
    /// `accept(block=False)`).
    pub fn try_accept(&self) -> Result<Option<SocketPort>> {
        self.accept_until(Wait::No, OnSignal::Resume)
    }

    /// Waits at most `timeout` for a client; `Ok(None)` if none came.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<SocketPort>> {
        self.accept_until(Wait::up_to(Some(timeout)), OnSignal::Resume)
    }

    /// Waits for a client like [`PortServer::accept`] (`timeout` `None`) or
    /// [`PortServer::accept_timeout`] (`Ok(None)` when none came in time), except that a signal
    /// handler running on this thread ends the wait with `Err(Error::Interrupted)`, as for
    /// [`PortServer::receive_interruptible`]. A client that connects meanwhile is treated as
    /// after a timeout: it waits in the lobby for the next accept, unless the server already
    /// serves new connections (see the module docs).
    pub fn accept_interruptible(&self, timeout: Option<Duration>) -> Result<Option<SocketPort>> {
        self.accept_until(Wait::up_to(timeout), OnSignal::Return)
    }

    fn accept_until(&self, wait: Wait, on_signal: OnSignal) -> Result<Option<SocketPort>> {
        loop {
            let Some(client) = self.claim_from_lobby(wait, on_signal)? else {
                return Ok(None);
            };
            match self.hand_over(&client) {
                Ok(Some(port)) => return Ok(Some(port)),
                // It left while waiting in the lobby: try the next one.
                Ok(None) | Err(Error::Closed) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn claim_from_lobby(&self, wait: Wait, on_signal: OnSignal) -> Result<Option<Arc<Client>>> {
        let mut state = self.shared.state();
        state.accept_waiters += 1;
        let result = loop {
            if state.stopped || state.stopping {
                break Err(Error::Closed);
            }
            if let Some(client) = state.lobby.pop_front() {
                break Ok(Some(client));
            }
            let Wait::Until(deadline) = wait else { break Ok(None) };
            match self.shared.wait_changed(&mut state, deadline, on_signal) {
                Woken::Rang => {}
                Woken::TimedOut => break Ok(None),
                Woken::Interrupted => break Err(Error::Interrupted),
            }
        };
        state.accept_waiters -= 1;
        if state.accept_waiters == 0 && state.reads_claimed && !state.lobby.is_empty() {
            // Connections that came in for accept() waiters nobody took: serve them.
            self.shared.wake_loop();
        }
        result
    }

    /// Moves a lobby connection out of the server into a blocking [`SocketPort`].
    fn hand_over(&self, client: &Client) -> Result<Option<SocketPort>> {
        self.shared.forget(client);
        let Some(handed) = client.hand_over().map_err(Error::Io)? else {
            return Ok(None);
        };
        SocketPort::from_accepted(handed.stream, client.peer, &handed.unsent, handed.tls, handed.input, handed.output)
            .map(Some)
    }

    /// Stops the server: no more connections, every connection it serves is closed, and blocked
    /// `receive`/`accept` calls return `Err(Error::Closed)`. Ports already handed out by `accept`
    /// stay open. A callback ([`PortServer::set_callback`]) finishes the message it is handling
    /// and its thread is joined (unless this is called from the callback). Closing twice is
    /// harmless.
    pub fn close(&self) {
        {
            let mut state = self.shared.state();
            state.stopping = true;
            self.shared.notify_changed();
        }
        self.shared.wake_loop();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        // The callback thread ends once the callback it may be in returns.
        self.join_callback_thread();
    }

    /// True once [`PortServer::close`] has been called.
    pub fn is_closed(&self) -> bool {
        let state = self.shared.state();
        state.stopping || state.stopped
    }
}

impl Drop for PortServer {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for PortServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortServer").field("name", &self.name).field("clients", &self.client_count()).finish()
    }
}

impl<'a> IntoIterator for &'a PortServer {
    type Item = Message;
    type IntoIter = Box<dyn Iterator<Item = Message> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect;
    use std::time::Instant;

    /// NOTE: Nagle's algorithm bunches notes; every socket we create or accept must disable it.
    #[test]
    fn every_socket_sets_tcp_nodelay() {
        let server = PortServer::bind("127.0.0.1:0").unwrap();
        let client = connect(server.local_addr()).unwrap();
        assert!(client.nodelay());
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.client_count() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for served in server.shared.clients().values() {
            assert!(served.stream.nodelay().unwrap());
        }
        let accepted = server.accept_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert!(accepted.nodelay());
    }

    mod jitter_buffers {
        use super::*;
        use crate::clock::monotonic_ns;
        use crate::timing::{DelayMode, StampEncoder, STAMP_ANSWER};
        use std::io::Write;
        use std::net::TcpStream;

        const WAIT: Duration = Duration::from_secs(30);

        fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
            let start = Instant::now();
            while !condition() {
                assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        /// The answer to the server's request, then `notes` stamped 1 µs apart from `start_ns`.
        fn stamped(notes: impl Iterator<Item = Message>, start_ns: u64) -> Vec<u8> {
            let mut encoder = StampEncoder::new();
            let mut bytes = STAMP_ANSWER.to_vec();
            for (i, note) in notes.enumerate() {
                encoder.encode_to_vec(start_ns + i as u64 * 1_000, &note, &mut bytes);
            }
            bytes
        }

        fn note(i: usize) -> Message {
            Message::NoteOn { channel: (i / 128 % 16) as u8, note: (i % 128) as u8, velocity: 1 }
        }

        fn receive(server: &PortServer, count: usize) -> Vec<Message> {
            (0..count).map(|_| server.receive_timeout(WAIT).unwrap().expect("a message within the wait")).collect()
        }

        #[test]
        fn a_client_gets_its_buffer_with_its_first_stamped_message_and_one_that_never_stamps_never_does() {
            let config = ServerConfig::default().jitter_buffer(DelayMode::fixed(1_000_000));
            let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
            assert!(server.try_receive().unwrap().is_none(), "served from now on");
            let mut plain = TcpStream::connect(server.local_addr()).unwrap();
            let mut stamping = TcpStream::connect(server.local_addr()).unwrap();
            eventually("two clients", || server.client_count() == 2);
            let built = |peer: SocketAddr| {
                let clients = server.shared.clients();
                clients.values().find(|c| c.peer == peer).expect("connected").has_built_playout()
            };
            let (plain_peer, stamping_peer) = (plain.local_addr().unwrap(), stamping.local_addr().unwrap());
            assert!(!built(plain_peer) && !built(stamping_peer), "nothing built at admission");

            let mut bytes = Vec::new();
            Message::encode_all(&(0..50).map(note).collect::<Vec<_>>(), &mut bytes);
            plain.write_all(&bytes).unwrap();
            assert_eq!(receive(&server, 50), (0..50).map(note).collect::<Vec<_>>());
            assert!(!built(plain_peer), "a client that never stamps never gets a buffer");

            // The answer alone builds nothing either: a midisock client that only listens answers too.
            stamping.write_all(STAMP_ANSWER).unwrap();
            eventually("the answer to be read", || server.playout_stats().len() == 1);
            assert!(!built(stamping_peer));
            let stats = server.playout_stats();
            assert_eq!((stats[0].1.delay_ns, stats[0].1.pushed), (1_000_000, 0));

            let bytes = stamped((0..50).map(note), monotonic_ns());
            stamping.write_all(&bytes[STAMP_ANSWER.len()..]).unwrap();
            assert_eq!(receive(&server, 50), (0..50).map(note).collect::<Vec<_>>());
            assert!(built(stamping_peer), "built by its first stamped message");
            assert!(!built(plain_peer));
            assert_eq!(server.playout_stats()[0].1.pushed, 50);
        }

        #[test]
        fn held_messages_count_in_the_inbox_bound_and_the_buffers_give_way_without_loss() {
            const CLIENTS: usize = 12;
            const PER_CLIENT: usize = 2_000;
            let max = 1 << 20;
            // The delay is far longer than the burst: without the bound, every message would wait.
            let config = ServerConfig::default().max_inbox_bytes(max).jitter_buffer(DelayMode::fixed(5_000_000_000));
            let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
            assert!(server.try_receive().unwrap().is_none(), "served from now on");
            let mut clients: Vec<TcpStream> =
                (0..CLIENTS).map(|_| TcpStream::connect(server.local_addr()).unwrap()).collect();
            eventually("every client", || server.client_count() == CLIENTS);
            let start = monotonic_ns();
            // Client k sends on channel k, numbered by the pitch.
            let numbered = |k: usize, j: usize| Message::PitchWheel { channel: k as u8, pitch: j as i16 - 8192 };
            for (k, client) in clients.iter_mut().enumerate() {
                client.write_all(&stamped((0..PER_CLIENT).map(|j| numbered(k, j)), start)).unwrap();
            }
            // 24 000 messages (1.1 MiB as queued messages) into a 1 MiB bound.
            let got = receive(&server, CLIENTS * PER_CLIENT);
            let mut per_client = vec![Vec::new(); CLIENTS];
            for message in &got {
                let Message::PitchWheel { channel, pitch } = *message else { panic!("{message:?}") };
                per_client[usize::from(channel)].push((pitch + 8192) as usize);
            }
            for (k, numbers) in per_client.iter().enumerate() {
                assert_eq!(*numbers, (0..PER_CLIENT).collect::<Vec<_>>(), "client {k}: in order, none lost or twice");
            }
            let stats = server.playout_stats();
            assert_eq!(stats.len(), CLIENTS);
            let early: u64 = stats.iter().map(|(_, s)| s.delivered_early_full).sum();
            let pushed: u64 = stats.iter().map(|(_, s)| s.pushed).sum();
            assert_eq!(pushed, (CLIENTS * PER_CLIENT) as u64);
            assert!(early > 0, "the buffers gave way: {stats:?}");
            let peak = server.shared.state().peak_bytes;
            eprintln!("{early} of {pushed} delivered early; peak {peak} bytes, bound {max}");
            // Messages moved from the buffers to the inbox may start one inbox block.
            assert!(peak <= max + inbox::SLOT_BYTES * 2048, "{peak} bytes at the peak, bound {max}");
            drop(clients);
        }
    }
}
