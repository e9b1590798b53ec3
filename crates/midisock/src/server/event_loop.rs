//! The server's one I/O thread ("midisock-server"): accepts connections, reads served clients
//! into the inbox, and finishes writes that broadcasters could not complete without blocking.
//!
//! One thread serves any number of clients: everything is non-blocking and edge-triggered (mio).

use super::client::{lock, Client, Role};
use super::config::SysexPolicy;
use super::shared::{Counters, Shared};
use crate::auth::{FailureLimiter, HelloCheck, Verdict};
use crate::clock::monotonic_ns;
use crate::message::Message;
use crate::parser::Parser;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const WAKER: Token = Token(0);
/// Listener tokens are 1..=FIRST_CLIENT-1; client tokens count up from here and are never reused,
/// so a stale event can never be mistaken for a newer connection's.
const FIRST_CLIENT: usize = 1 << 16;
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    next_token: usize,
    buf: Box<[u8]>,
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
        Ok(EventLoop {
            poll,
            listeners,
            shared,
            next_token: FIRST_CLIENT,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            reserve_fd: File::open("/dev/null").ok(),
            admission_deadlines: Vec::new(),
            auth_failures: FailureLimiter::default(),
        })
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.expire_hellos();
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
                    Token(t) if t < FIRST_CLIENT => self.accept_all(t - 1),
                    token => self.client_event(token, event),
                }
            }
            if !self.handle_requests() {
                break;
            }
        }
        self.shut_down(&mut events);
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
            let resume = state.reading_paused && state.inbox_bytes < self.shared.config.max_inbox_bytes / 2;
            if resume {
                state.reading_paused = false;
            }
            (lobby, resume)
        };
        for client in lobby_to_serve {
            client.set_role(Role::Served);
            // No edge will come for bytes that arrived while it sat in the lobby: read now.
            self.read_client(&client);
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

    /// Out of descriptors: frees the reserve, accepts one pending connection and closes it (the
    /// peer sees the refusal at once), then takes the reserve back.
    fn refuse_one_with_reserve_fd(&mut self, index: usize) -> bool {
        if self.reserve_fd.take().is_none() {
            return false;
        }
        let refused = match self.listeners[index].accept() {
            Ok(connection) => {
                // Counted before the close, so whoever sees the close also sees the count.
                Counters::add(&self.shared.stats.connections_refused, 1);
                drop(connection);
                true
            }
            Err(_) => false,
        };
        self.reserve_fd = File::open("/dev/null").ok();
        refused
    }

    fn admit(&mut self, mut stream: mio::net::TcpStream, peer: std::net::SocketAddr) {
        let config = &self.shared.config;
        let refused = !config.allows(peer.ip())
            || self.shared.clients().len() >= config.max_clients
            || self.auth_failures.is_blocked(peer.ip(), Instant::now());
        if refused {
            // Denied, over the limit, or too many failed hellos: dropping the stream closes it
            // before any byte is read.
            Counters::add(&self.shared.stats.connections_refused, 1);
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
        let parser = Parser::with_max_sysex_len(config.max_sysex_len);
        let hello = config.token.as_deref().map(HelloCheck::new);
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
        let admitting = hello.is_some() || tls.is_some();
        let role = if admitting { Role::Admitting } else { Role::Lobby };
        let client = Arc::new(Client::new(token, peer, stream, role, parser, hello, tls));
        self.shared.clients_mut().insert(token, Arc::clone(&client));
        if admitting {
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
        let mut state = self.shared.state();
        let role = if state.reads_claimed && state.accept_waiters == 0 { Role::Served } else { Role::Lobby };
        client.set_role(role);
        if role == Role::Lobby {
            state.lobby.push_back(Arc::clone(client));
            self.shared.changed.notify_all();
        }
        drop(state);
        if role == Role::Served {
            self.read_client(client);
        }
    }

    /// Advances a connection's TLS handshake, then reads its hello one byte at a time (never
    /// past it: what follows is MIDI for whoever gets the connection), and admits or rejects it.
    fn continue_admission(&mut self, client: &Arc<Client>) {
        let verdict = match client.handshake() {
            Err(_) => Verdict::Rejected,
            Ok(false) => Verdict::NeedMore,
            Ok(true) => Self::check_hello(client),
        };
        match verdict {
            Verdict::NeedMore => {}
            Verdict::Accepted => self.welcome(client),
            Verdict::Rejected => self.reject_hello(client),
        }
    }

    fn check_hello(client: &Client) -> Verdict {
        let mut reader = lock(&client.reader);
        let Some(check) = reader.hello.as_mut() else { return Verdict::Accepted };
        let mut byte = [0u8];
        let verdict = loop {
            match client.read(&mut byte) {
                Ok(Some(0)) => break Verdict::Rejected,
                Ok(Some(_)) => match check.feed(byte[0]) {
                    Verdict::NeedMore => continue,
                    decided => break decided,
                },
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Verdict::NeedMore,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break Verdict::Rejected,
            }
        };
        if verdict == Verdict::Accepted {
            reader.hello = None;
        }
        verdict
    }

    fn reject_hello(&mut self, client: &Arc<Client>) {
        self.auth_failures.record_failure(client.peer.ip(), Instant::now());
        Counters::add(&self.shared.stats.auth_failures, 1);
        self.shared.drop_client(client);
    }

    /// Closes connections whose hello is overdue; returns how long until the next one is.
    fn expire_hellos(&mut self) -> Option<Duration> {
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
            self.reject_hello(&client);
        }
        self.admission_deadlines.iter().map(|(deadline, _)| deadline.saturating_duration_since(now)).min()
    }

    fn client_event(&mut self, token: Token, event: &mio::event::Event) {
        let Some(client) = self.shared.clients().get(&token).cloned() else {
            // Already forgotten (closed, or handed to accept()): a stale event.
            return;
        };
        if event.is_writable() && client.flush().is_err() {
            self.shared.drop_client(&client);
            return;
        }
        if !(event.is_readable() || event.is_read_closed() || event.is_error()) {
            return;
        }
        match client.role() {
            Role::Served => self.read_client(&client),
            Role::Admitting => self.continue_admission(&client),
            Role::Lobby => {
                // Not ours to read; only notice a client that left before anyone claimed it. One
                // that left bytes behind stays until claimed: what it sent before going is kept.
                // The reader lock and the role check keep `accept()` from taking it meanwhile.
                let reader = lock(&client.reader);
                if client.role() != Role::Lobby {
                    return;
                }
                let gone = match client.stream.peek(&mut [0u8]) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted),
                };
                drop(reader);
                if gone {
                    self.shared.drop_client(&client);
                }
            }
            Role::Gone => self.shared.drop_client(&client),
            Role::HandedOver => {}
        }
    }

    /// Reads everything the socket has, while the inbox has room.
    fn read_client(&mut self, client: &Arc<Client>) {
        let mut messages: Vec<Message> = Vec::new();
        let ended = loop {
            if client.role() != Role::Served {
                return;
            }
            {
                let mut state = self.shared.state();
                if state.inbox_bytes >= self.shared.config.max_inbox_bytes {
                    // The program reads slower than clients send: leave the bytes in the kernel so
                    // TCP slows the senders down. `receive` wakes us when there is room again.
                    state.reading_paused = true;
                    return;
                }
            }
            let n = match client.read(&mut self.buf) {
                Ok(Some(0)) => break true,
                Ok(Some(n)) => n,
                // Part of a TLS record: read on.
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            };
            let timestamp_ns = monotonic_ns();
            self.parse(client, n, &mut messages);
            // Deliver with no client lock held: relaying takes other clients' locks.
            self.shared.deliver(client, &mut messages, timestamp_ns);
        };
        if ended {
            // End of stream or a failed socket. A message cut off mid-way stays in the parser and
            // is dropped with it: a fragment is never forwarded.
            self.shared.drop_client(client);
        }
    }

    /// Parses `self.buf[..n]` from `client`, applying the sysex policy and tracking held notes.
    fn parse(&self, client: &Client, n: usize, messages: &mut Vec<Message>) {
        let deny_sysex = self.shared.config.sysex == SysexPolicy::Deny;
        let mut denied = 0;
        let mut reader = lock(&client.reader);
        let overflows_before = reader.parser.stats().sysex_overflows;
        let super::client::Reader { parser, held, .. } = &mut *reader;
        parser.feed(&self.buf[..n], |message| {
            if deny_sysex && matches!(message, Message::SysEx { .. }) {
                denied += 1;
                return;
            }
            held.observe(&message);
            messages.push(message);
        });
        let oversized = reader.parser.stats().sysex_overflows - overflows_before;
        drop(reader);
        Counters::add(&self.shared.stats.sysex_denied, denied);
        Counters::add(&self.shared.stats.sysex_oversized, oversized);
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
                if client.flush().is_err() {
                    client.shut_down();
                }
            }
            // Wait for sockets to drain (writable events), at most until the deadline.
            let _ = self.poll.poll(events, Some(left.min(Duration::from_millis(50))));
        }
        let clients: Vec<Arc<Client>> = self.shared.clients_mut().drain().map(|(_, c)| c).collect();
        for client in &clients {
            client.shut_down();
        }
        let mut state = self.shared.state();
        state.lobby.clear();
        state.stopped = true;
        self.shared.changed.notify_all();
    }
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
