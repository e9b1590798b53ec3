//! The server's one I/O thread ("midisock-server"): accepts connections, admits them, reads
//! served clients into the inbox, finishes writes that broadcasters could not complete without
//! blocking, and is the only thread that drops clients and releases their notes.
//!
//! One thread serves any number of clients: everything is non-blocking and edge-triggered (mio).
//!
//! With a jitter buffer ([`super::ServerConfig::jitter_buffer`]) each stamping client's messages
//! wait in its own buffer until their playout time. The thread keeps every client's next
//! deadline and what its buffer holds ([`super::jitter_buffers`]), a `timerfd` armed for the
//! earliest deadline (mio's own timeout is in whole milliseconds), and moves what is due into
//! the inbox each time it wakes. What the buffers hold counts in `max_inbox_bytes`.

use super::arrivals::Arrivals;
use super::client::{self, Admission, Client, Delivery, LobbyCheck, ReadOutcome, Role};
use super::config::SysexPolicy;
use super::events::{DisconnectCause, ServerEvent};
use super::inbox::ReadRoom;
use super::jitter_buffers::{Holding, JitterBuffers};
use super::outgoing::Outgoing;
use super::shared::{Counters, Shared};
use super::timer::PlayoutTimer;
use crate::auth::FailureLimiter;
use crate::clock::monotonic_ns;
use crate::message::Received;
use crate::net::READ_CHUNK;
use crate::parser::Parser;
use crate::refusal::RefusalCause;
use crate::timing::{TimedInput, STAMP_REQUEST};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const WAKER: Token = Token(0);
/// The playout timer's token, just below the clients'.
const TIMER: Token = Token(FIRST_CLIENT - 1);
/// Listener tokens are 1..TIMER; client tokens count up from here and are never reused, so a
/// stale event can never be mistaken for a newer connection's.
const FIRST_CLIENT: usize = 1 << 16;

pub(crate) struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    next_token: usize,
    buf: Box<[u8]>,
    /// Decoded messages on their way to the inbox and the relay (kept for its capacity).
    arrivals: Arrivals,
    /// Messages played out of jitter buffers on their way to the inbox (kept for its capacity).
    played: Vec<Received>,
    /// Stamped relay bytes for one client at a time (kept for its capacity).
    stamped: Vec<u8>,
    /// Wakes the loop at the earliest playout deadline.
    timer: PlayoutTimer,
    /// What every client's jitter buffer holds: when each next has a message due, and the
    /// memory they take together (counted in `max_inbox_bytes`).
    buffers: JitterBuffers,
    /// A descriptor held in reserve for running out of them (EMFILE): closing it frees one slot,
    /// enough to accept the pending connection and close it at once, instead of leaving it in the
    /// backlog where edge-triggered polling would never report it again.
    reserve_fd: Option<File>,
    /// Connections that must finish their TLS handshake and hello, with their deadlines.
    admission_deadlines: Vec<(Instant, Arc<Client>)>,
    auth_failures: FailureLimiter,
}

impl EventLoop {
    pub(crate) fn new(poll: Poll, mut listeners: Vec<TcpListener>, shared: Arc<Shared>) -> io::Result<EventLoop> {
        for (i, listener) in listeners.iter_mut().enumerate() {
            poll.registry().register(listener, Token(1 + i), Interest::READABLE)?;
        }
        let timer = PlayoutTimer::new(poll.registry(), TIMER)?;
        Ok(EventLoop {
            poll,
            listeners,
            shared,
            next_token: FIRST_CLIENT,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            arrivals: Arrivals::default(),
            played: Vec::new(),
            stamped: Vec::new(),
            timer,
            buffers: JitterBuffers::default(),
            reserve_fd: File::open("/dev/null").ok(),
            admission_deadlines: Vec::new(),
            auth_failures: FailureLimiter::default(),
        })
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.expire_admissions();
            let next_due = self.buffers.earliest();
            self.shared.next_due.store(next_due.unwrap_or(u64::MAX), Ordering::Release);
            if let Err(e) = self.timer.set(next_due) {
                eprintln!("midisock: server playout timer failed: {e}");
                break;
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("midisock: server event loop failed: {e}");
                break;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    TIMER => self.timer.acknowledge(),
                    Token(t) if t < FIRST_CLIENT => self.accept_all(t - 1),
                    token => self.client_event(token, event),
                }
            }
            self.play_out_due();
            self.settle_failed();
            if !self.handle_requests() {
                break;
            }
            self.settle_failed();
        }
        self.shut_down(&mut events);
    }

    fn deny_sysex(&self) -> bool {
        self.shared.config.sysex == SysexPolicy::Deny
    }

    /// Runs the user's event hook, if any. Called only where the loop holds no lock.
    fn emit(&self, event: ServerEvent) {
        if let Some(poll) = self.shared.poll_fd.get() {
            // A poller wakes to see the number of clients change. Signalled after the change, so
            // a poller that clears the signal meanwhile and then counts sees the new number.
            poll.signal();
        }
        if let Some(hook) = &self.shared.config.on_event {
            hook.call(&event);
        }
    }

    /// Acts on what user threads asked for through `state`; false when the loop must stop.
    fn handle_requests(&mut self) -> bool {
        let (lobby_to_serve, resume) = {
            let mut state = self.shared.state();
            if state.stopping {
                return false;
            }
            let lobby = if state.reads_claimed && state.accept_waiters == 0 {
                state.lobby.drain(..).collect::<Vec<_>>()
            } else {
                Vec::new()
            };
            let held = self.buffers.held_bytes();
            state.held_bytes = held;
            let resume =
                state.reading_paused && state.inbox.may_resume_reading(self.shared.config.max_inbox_bytes, held);
            if resume {
                state.reading_paused = false;
            }
            (lobby, resume)
        };
        for client in lobby_to_serve {
            if client.promote(Role::Lobby, Role::Served) {
                // No edge will come for bytes that arrived while it sat in the lobby: read now.
                self.read_client(&client);
            }
        }
        if resume {
            let served: Vec<Arc<Client>> =
                self.shared.clients().values().filter(|c| c.role() == Role::Served).cloned().collect();
            for client in served {
                self.read_client(&client);
            }
        }
        true
    }

    /// Drains and drops the clients writers marked failed (and any a relay marks meanwhile).
    fn settle_failed(&mut self) {
        loop {
            let failed = self.shared.take_failed();
            if failed.is_empty() {
                return;
            }
            for client in failed {
                match client.role() {
                    // Read what it still sent; dropped when nothing is left (or later, when the
                    // inbox is full now: it is read like every served client once there is room).
                    Role::Served => self.read_client(&client),
                    Role::Lobby => self.lobby_event(&client),
                    Role::Admitting | Role::Gone | Role::HandedOver => {}
                }
            }
        }
    }

    fn accept_all(&mut self, index: usize) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_out_of_descriptors(&e) => {
                    if !self.refuse_one_with_reserve_fd(index) {
                        // No reserve left: the connection waits in the backlog until a
                        // descriptor frees up and another connection's edge wakes us. Returning
                        // (not looping) keeps the CPU idle meanwhile.
                        eprintln!("midisock: out of file descriptors; a connection waits in the backlog");
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("midisock: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Out of descriptors: frees the reserve, accepts one pending connection, tells it why and
    /// closes it (the peer sees the refusal at once), then takes the reserve back.
    fn refuse_one_with_reserve_fd(&mut self, index: usize) -> bool {
        if self.reserve_fd.take().is_none() {
            return false;
        }
        let refused = match self.listeners[index].accept() {
            Ok((stream, peer)) => {
                self.refuse_stream(&stream, peer, RefusalCause::OutOfResources);
                drop(stream);
                true
            }
            Err(_) => false,
        };
        self.reserve_fd = File::open("/dev/null").ok();
        refused
    }

    /// Refuses a connection that never became a client: counted, told why, closed by the caller.
    fn refuse_stream(&self, stream: &mio::net::TcpStream, peer: SocketAddr, cause: RefusalCause) {
        // Counted before the close, so whoever sees the close also sees the count.
        Counters::add(&self.shared.stats.connections_refused, 1);
        client::refuse_stream(stream, cause);
        self.emit(ServerEvent::Refused { peer, cause });
    }

    fn admit(&mut self, mut stream: mio::net::TcpStream, peer: SocketAddr) {
        let config = &self.shared.config;
        let refusal = if !config.allows(peer.ip()) {
            Some(RefusalCause::NotAllowed)
        } else if self.shared.clients().len() >= config.max_clients {
            Some(RefusalCause::TooManyClients)
        } else if self.auth_failures.is_blocked(peer.ip(), Instant::now()) {
            Some(RefusalCause::LockedOut)
        } else {
            None
        };
        if let Some(cause) = refusal {
            // Told why, then closed (dropping the stream) before any byte is read.
            self.refuse_stream(&stream, peer, cause);
            return;
        }
        if crate::net::configure_socket(socket2::SockRef::from(&stream)).is_err() {
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        if self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE).is_err() {
            return;
        }
        // Plain MIDI parsed with the server's limits; stamps decoded once the client answers our
        // request, and played out through its own buffer when the server has one.
        let input = TimedInput::new(Parser::with_max_sysex_len(config.max_sysex_len), config.jitter_buffer);
        let hello = config.token.as_deref().map(crate::auth::HelloCheck::new);
        let tls = match &config.tls {
            Some(tls) => match tls.accept() {
                Ok(mut conn) => {
                    // The session's buffer is this client's outgoing queue: bound it the same way.
                    conn.set_buffer_limit(Some(config.max_client_queue));
                    Some(conn)
                }
                Err(_) => return,
            },
            None => None,
        };
        let checks = hello.is_some() || tls.is_some();
        let client = Arc::new(Client::new(token, peer, stream, Role::Admitting, input, hello, tls));
        self.shared.clients_mut().insert(token, Arc::clone(&client));
        if checks {
            self.admission_deadlines.push((Instant::now() + config.auth_timeout, Arc::clone(&client)));
            // The handshake or hello may be here already; no new edge would tell us.
            self.continue_admission(&client);
        } else {
            self.welcome(&client);
        }
    }

    /// A connection is in (authenticated, or no auth needed): it joins the lobby or is served.
    fn welcome(&mut self, client: &Arc<Client>) {
        Counters::add(&self.shared.stats.connections_accepted, 1);
        if self.shared.config.jitter_buffer.is_some() {
            // Its first bytes, before any broadcast (it is not sent to while admitting). A
            // client without the extension ignores them and is delivered on arrival; one that
            // answers is played out through its buffer. A failed write is settled like any other.
            if let Delivery::Failed(_) = client.request_stamps(STAMP_REQUEST, self.shared.config.max_client_queue) {
                self.shared.hand_to_io_thread(vec![Arc::clone(client)]);
            }
        }
        let served = {
            let mut state = self.shared.state();
            let serve = state.reads_claimed && state.accept_waiters == 0;
            if serve {
                client.promote(Role::Admitting, Role::Served);
            } else if client.promote(Role::Admitting, Role::Lobby) {
                state.lobby.push_back(Arc::clone(client));
                self.shared.notify_changed();
            }
            serve
        };
        self.emit(ServerEvent::Connected { peer: client.peer });
        if served {
            self.read_client(client);
        } else {
            // Bytes (or a departure) that came before it joined the lobby sent no edge since.
            self.lobby_event(client);
        }
    }

    /// Advances a connection's TLS handshake and hello, and admits or refuses it.
    fn continue_admission(&mut self, client: &Arc<Client>) {
        match client.admit_step() {
            Admission::NeedMore => {}
            Admission::Accepted => self.welcome(client),
            Admission::Refused(cause) => self.refuse_client(client, cause),
        }
    }

    /// Refuses a connection that is a client already (admitting, or a plain client found to
    /// speak TLS): tells it why, closes it, counts it and reports it.
    fn refuse_client(&mut self, client: &Arc<Client>, cause: RefusalCause) {
        match cause {
            RefusalCause::InvalidToken | RefusalCause::TooSlow => {
                self.auth_failures.record_failure(client.peer.ip(), Instant::now());
                Counters::add(&self.shared.stats.auth_failures, 1);
            }
            _ => Counters::add(&self.shared.stats.connections_refused, 1),
        }
        client.write_refusal(cause);
        client.close();
        self.shared.forget(client);
        self.emit(ServerEvent::Refused { peer: client.peer, cause });
    }

    /// Refuses connections whose admission is overdue; returns how long until the next one is.
    fn expire_admissions(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut overdue = Vec::new();
        self.admission_deadlines.retain(|(deadline, client)| {
            let waiting = client.role() == Role::Admitting;
            if waiting && *deadline <= now {
                overdue.push(Arc::clone(client));
                return false;
            }
            waiting
        });
        for client in overdue {
            self.refuse_client(&client, RefusalCause::TooSlow);
        }
        self.admission_deadlines.iter().map(|(deadline, _)| deadline.saturating_duration_since(now)).min()
    }

    fn client_event(&mut self, token: Token, event: &mio::event::Event) {
        let Some(client) = self.shared.clients().get(&token).cloned() else {
            // Already forgotten (closed, or handed to accept()): a stale event.
            return;
        };
        if event.is_writable() && client.flush().is_some() {
            // Settled with the other failed clients after this batch of events.
            self.shared.hand_to_io_thread(vec![Arc::clone(&client)]);
        }
        if !(event.is_readable() || event.is_read_closed() || event.is_error()) {
            return;
        }
        match client.role() {
            Role::Served => self.read_client(&client),
            Role::Admitting => self.continue_admission(&client),
            Role::Lobby => self.lobby_event(&client),
            Role::Gone | Role::HandedOver => {}
        }
    }

    /// A lobby connection is not ours to read; only notice one that left without sending
    /// anything, or that failed and has nothing to keep. One that left bytes behind stays until
    /// claimed: what it sent before going is delivered to whoever claims it.
    fn lobby_event(&mut self, client: &Arc<Client>) {
        match client.check_lobby() {
            LobbyCheck::Waiting { has_bytes, stamps_requested } => {
                if stamps_requested {
                    client.start_stamping();
                }
                if let (Some(cause), false) = (client.failure(), has_bytes) {
                    self.drop_client(client, cause);
                }
            }
            LobbyCheck::Gone(cause) => self.drop_client(client, client.failure().unwrap_or(cause)),
            LobbyCheck::TlsOnPlain => self.refuse_client(client, RefusalCause::TlsNotOffered),
            LobbyCheck::NotInLobby => {}
        }
    }

    /// Reads everything the socket has, while the inbox has room. A client marked failed is
    /// dropped once nothing more is readable; any client, when its stream ends.
    fn read_client(&mut self, client: &Arc<Client>) {
        let deny_sysex = self.deny_sysex();
        let relay = self.shared.config.relay;
        loop {
            let Some(limit) = self.read_allowance() else {
                return;
            };
            let mut arrivals = std::mem::take(&mut self.arrivals);
            arrivals.clear();
            let outcome = client.read_messages(&mut self.buf[..limit], deny_sysex, relay, &mut arrivals);
            let ended = match outcome {
                ReadOutcome::Parsed { sysex_denied, sysex_oversized, stamps_requested, holding } => {
                    Counters::add(&self.shared.stats.sysex_denied, sysex_denied);
                    Counters::add(&self.shared.stats.sysex_oversized, sysex_oversized);
                    if stamps_requested {
                        // Answered before the next message it is sent; stamped from then on.
                        client.start_stamping();
                    }
                    self.deliver(client, &mut arrivals);
                    self.buffers.file(client.token, holding);
                    None
                }
                ReadOutcome::WouldBlock => Some(None),
                ReadOutcome::Ended(cause) => Some(Some(cause)),
                ReadOutcome::TlsOnPlain => {
                    self.arrivals = arrivals;
                    self.refuse_client(client, RefusalCause::TlsNotOffered);
                    return;
                }
            };
            self.arrivals = arrivals;
            match ended {
                None => {}
                Some(None) => {
                    self.arrivals.shrink();
                    if let Some(cause) = client.failure() {
                        if client.role() == Role::Served {
                            self.drop_client(client, cause);
                        }
                    }
                    return;
                }
                Some(Some(cause)) => {
                    // A message cut off mid-way stays in the decoder and is dropped with it: a
                    // fragment is never forwarded. A writer's verdict on a live but slow client
                    // says more than the reset that follows it.
                    let cause = match client.failure() {
                        Some(marked @ (DisconnectCause::TooSlow | DisconnectCause::WriteDeadline)) => marked,
                        _ => cause,
                    };
                    self.drop_client(client, cause);
                    return;
                }
            }
        }
    }

    /// Hands what `source` sent to `receive()` (what no jitter buffer holds back), and relays
    /// every arrival to the other clients when relaying is on. Takes the messages out of
    /// `arrivals` (its capacity kept), so none is copied on the way to the inbox.
    fn deliver(&mut self, source: &Client, arrivals: &mut Arrivals) {
        if arrivals.is_empty() {
            return;
        }
        if !arrivals.to_inbox.is_empty() {
            let mut state = self.shared.state();
            state.inbox.push_received(&mut arrivals.to_inbox);
            self.shared.notify_changed();
        }
        if !arrivals.relayed.messages.is_empty() {
            // Clients this fails are settled after the current event, by this thread.
            let outgoing = Outgoing::at(&arrivals.relayed.plain, &arrivals.relayed.messages, &arrivals.relayed.times);
            self.shared.broadcast(&outgoing, Some(source.token), &mut self.stamped);
        }
    }

    /// How many bytes the next read from a client may take, within `max_inbox_bytes` (what
    /// waits for `receive()` and what the jitter buffers hold, together); `None` when reading
    /// pauses until the program has read (`receive` wakes the loop then). When the buffers are
    /// what fills the bound, they let messages out early first (see [`super::inbox::ReadRoom`]).
    fn read_allowance(&mut self) -> Option<usize> {
        let max = self.shared.config.max_inbox_bytes;
        let may_hold = self.shared.config.jitter_buffer.is_some();
        loop {
            let held = self.buffers.held_bytes();
            {
                let mut state = self.shared.state();
                state.held_bytes = held;
                #[cfg(test)]
                {
                    state.peak_bytes = state.peak_bytes.max(state.inbox.memory() + held);
                }
                match state.inbox.read_room(max, held, may_hold, READ_CHUNK) {
                    ReadRoom::Bytes(n) => return Some(n),
                    ReadRoom::ProgramBehind => {
                        // Leave the bytes in the kernel so TCP slows the senders down.
                        state.reading_paused = true;
                        return None;
                    }
                    ReadRoom::BuffersFull => {}
                }
            }
            // Down to a quarter of the bound, so that reading goes on for a while before the
            // buffers fill it again.
            if !self.release_early(max / 4) {
                // Nothing could come out (cannot happen while they hold something): pause rather
                // than spin; playout brings the program messages, and its reads resume us.
                self.shared.state().reading_paused = true;
                return None;
            }
        }
    }

    /// Lets the oldest messages of the clients whose jitter buffers hold the most out early,
    /// into the inbox, until the buffers hold at most `target` bytes together. Nothing is lost:
    /// each one is delivered, before its time, and counted in its client's
    /// `PlayoutStats::delivered_early_full`. False when nothing came out.
    fn release_early(&mut self, target: usize) -> bool {
        let now = monotonic_ns();
        let before = self.buffers.held_bytes();
        let mut released = std::mem::take(&mut self.played);
        while self.buffers.held_bytes() > target {
            let Some((token, bytes)) = self.buffers.largest() else { break };
            let Some(client) = self.shared.clients().get(&token).cloned() else {
                // Gone meanwhile (its buffer was delivered when it was dropped).
                self.buffers.file(token, Holding::default());
                continue;
            };
            // Half of what the largest holds at a time, so the largest holders give way first.
            let excess = self.buffers.held_bytes() - target;
            let keep = bytes.saturating_sub(excess).max(bytes / 2);
            let holding = client.release_early(now, keep, self.deny_sysex(), &mut released);
            self.buffers.file(token, holding);
            if holding.bytes >= bytes {
                // Nothing came out (cannot happen while it holds something): never spin.
                break;
            }
        }
        self.hand_over_played(released);
        // (A denied sysex comes out of a buffer into nothing: progress is what the buffers hold.)
        self.buffers.held_bytes() < before
    }

    /// Moves every message due by now out of the clients' jitter buffers into the inbox.
    fn play_out_due(&mut self) {
        if self.buffers.earliest().is_none_or(|first| first > monotonic_ns()) {
            return;
        }
        let now = monotonic_ns();
        let mut played = std::mem::take(&mut self.played);
        while let Some(token) = self.buffers.take_due(now) {
            let client = self.shared.clients().get(&token).cloned();
            let holding = match client {
                Some(client) => client.play_out(now, self.deny_sysex(), &mut played),
                None => Holding::default(),
            };
            self.buffers.file(token, holding);
        }
        self.hand_over_played(played);
    }

    /// Puts what came out of the jitter buffers into the inbox (with what they still hold, for
    /// the inbox bound) and keeps the vector for the next time.
    fn hand_over_played(&mut self, mut played: Vec<Received>) {
        if !played.is_empty() {
            let mut state = self.shared.state();
            state.held_bytes = self.buffers.held_bytes();
            state.inbox.push_received(&mut played);
            self.shared.notify_changed();
        }
        // A departing client's or a stall's backlog must not pin its peak.
        played.shrink_to(1024);
        self.played = played;
    }

    /// Ends a client's connection and forgets it, then releases the notes it held down: note-offs
    /// go to `receive()` and, when relaying, to every other client — no stuck notes. Called only
    /// once everything it sent has been read; what its jitter buffer still holds is delivered
    /// first, at once.
    fn drop_client(&mut self, client: &Arc<Client>, cause: DisconnectCause) {
        let was_served = client.role() == Role::Served;
        let closed = client.close();
        self.shared.forget(client);
        if !closed {
            // Handed to accept() meanwhile, or closed already.
            return;
        }
        if was_served {
            let now = monotonic_ns();
            let mut arrivals = std::mem::take(&mut self.arrivals);
            arrivals.clear();
            client.drain_playout(now, self.deny_sysex(), &mut arrivals.to_inbox);
            self.buffers.file(client.token, Holding::default());
            let mut releases = Vec::new();
            client.release_held(|m| releases.push(m));
            if !releases.is_empty() {
                Counters::add(&self.shared.stats.notes_released, releases.len() as u64);
                if self.shared.config.relay {
                    arrivals.relayed.copy_at(&releases, now);
                }
                arrivals.to_inbox.extend(releases.into_iter().map(|m| Received::unstamped(m, now)));
            }
            self.deliver(client, &mut arrivals);
            self.arrivals = arrivals;
        }
        self.emit(ServerEvent::Disconnected { peer: client.peer, cause });
    }

    /// Graceful stop: no new connections, what is queued for clients is written for at most
    /// `shutdown_flush`, then every connection is closed.
    fn shut_down(mut self, events: &mut Events) {
        for mut listener in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let deadline = Instant::now() + self.shared.config.shutdown_flush;
        loop {
            let pending: Vec<Arc<Client>> =
                self.shared.clients().values().filter(|c| c.has_pending_output()).cloned().collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if pending.is_empty() || left.is_zero() {
                break;
            }
            for client in &pending {
                // A failure marks the client, which takes it out of `pending`.
                let _ = client.flush();
            }
            // Wait for sockets to drain (writable events), at most until the deadline.
            let _ = self.poll.poll(events, Some(left.min(Duration::from_millis(50))));
        }
        let clients: Vec<Arc<Client>> = self.shared.clients_mut().drain().map(|(_, c)| c).collect();
        // What jitter buffers still hold is delivered now: `receive` gives it out after the close.
        let now = monotonic_ns();
        let mut played = std::mem::take(&mut self.played);
        for client in &clients {
            client.drain_playout(now, self.deny_sysex(), &mut played);
        }
        self.buffers.clear();
        let mut closed = Vec::new();
        for client in &clients {
            let connected = matches!(client.role(), Role::Lobby | Role::Served);
            if client.close() && connected {
                closed.push(client.peer);
            }
        }
        {
            let mut state = self.shared.state();
            state.inbox.push_received(&mut played);
            state.lobby.clear();
            state.stopped = true;
            self.shared.notify_changed();
        }
        for peer in closed {
            self.emit(ServerEvent::Disconnected { peer, cause: DisconnectCause::ServerClosing });
        }
    }
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
