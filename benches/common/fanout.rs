//! Broadcast fan-out: one sender, N plain TCP clients read by one mio thread.
//!
//! The sender is a [`PortServer`] or, for the physical limit on this machine, a loop of plain
//! `write` calls on the accepted sockets ([`Sender::PlainTcp`]). Every broadcast is one 3-byte
//! message; the send time of broadcast `k` is recorded just before it is sent, and each client's
//! `k`-th message is broadcast `k` (TCP keeps order, and midisock never thins a client — it would
//! be disconnected, which the fixture detects). Latency = the time the reader thread's `read`
//! returned those bytes − the send time.

use super::{monotonic_ns, note, thread_cpu_ns, threads_named};
use midisock::PortServer;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const WAKE: Token = Token(usize::MAX);

struct Shared {
    /// Send time of broadcast k, in order.
    sent: Mutex<Vec<u64>>,
    progress: Mutex<Progress>,
    advanced: Condvar,
    recording: AtomicBool,
    stop: AtomicBool,
}

#[derive(Default)]
struct Progress {
    /// Messages received, summed over clients.
    delivered: u64,
    /// Latency samples while recording.
    latencies: Vec<u64>,
    /// A client saw end-of-stream or an error (the server dropped it).
    lost_clients: usize,
}

/// What a steady run measured.
#[derive(Debug)]
pub struct FanoutRun {
    pub clients: usize,
    pub broadcasts: usize,
    /// One sample per (client, broadcast), nanoseconds.
    pub latencies: Vec<u64>,
    /// Server CPU time during the run: its I/O thread ("midisock-server", none for plain TCP)
    /// plus the calling thread, which does the broadcast writes itself inside `PortServer::send`.
    pub server_cpu_ns: u64,
    /// CPU time of the reader thread (the N clients) during the run.
    pub reader_cpu_ns: u64,
    pub wall_ns: u64,
}

/// What broadcasts to the clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// `PortServer::send`.
    Midisock,
    /// The same bytes written to each accepted socket in turn (TCP_NODELAY, blocking): what any
    /// TCP server must at least do, so the floor for this machine.
    PlainTcp,
}

enum Broadcaster {
    Midisock(PortServer),
    PlainTcp(Vec<TcpStream>),
}

/// N connected clients and their reader thread.
pub struct Fanout {
    pub clients: usize,
    server: Broadcaster,
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    reader: Option<JoinHandle<()>>,
    reader_tid: u32,
    server_tid: Option<u32>,
}

impl Fanout {
    /// Binds a server and connects `clients` plain TCP clients to it, waiting until the server
    /// counts them all.
    pub fn start(clients: usize, sender: Sender) -> Fanout {
        let before = threads_named("midisock-server");
        let connect = |addr| {
            let stream = TcpStream::connect(addr).expect("connect (raise RLIMIT_NOFILE?)");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            stream.set_nonblocking(true).expect("non-blocking");
            stream
        };
        let (server, streams) = match sender {
            Sender::Midisock => {
                let server = PortServer::bind("127.0.0.1:0").expect("bind loopback");
                let addr = server.local_addr();
                let streams: Vec<TcpStream> = (0..clients).map(|_| connect(addr)).collect();
                let deadline = Instant::now() + Duration::from_secs(30);
                while server.client_count() < clients {
                    let admitted = server.client_count();
                    assert!(Instant::now() < deadline, "server admitted {admitted} of {clients} clients");
                    thread::sleep(Duration::from_millis(1));
                }
                (Broadcaster::Midisock(server), streams)
            }
            Sender::PlainTcp => {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
                let addr = listener.local_addr().expect("local address");
                let mut accepted = Vec::with_capacity(clients);
                let streams = (0..clients)
                    .map(|_| {
                        let stream = connect(addr);
                        let (server_side, _) = listener.accept().expect("accept");
                        server_side.set_nodelay(true).expect("TCP_NODELAY");
                        accepted.push(server_side);
                        stream
                    })
                    .collect();
                (Broadcaster::PlainTcp(accepted), streams)
            }
        };
        // Looked up only now: the thread names itself once it runs.
        let server_tid = threads_named("midisock-server").into_iter().find(|tid| !before.contains(tid));
        let poll = Poll::new().expect("mio poll");
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).expect("mio waker"));
        let shared = Arc::new(Shared {
            sent: Mutex::new(Vec::new()),
            progress: Mutex::new(Progress::default()),
            advanced: Condvar::new(),
            recording: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let reader_shared = Arc::clone(&shared);
        let reader = thread::Builder::new()
            .name("bench-fanout-reader".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() } as u32;
                tid_tx.send(tid).expect("report tid");
                read_loop(poll, streams, &reader_shared);
            })
            .expect("spawn reader");
        let reader_tid = tid_rx.recv().expect("reader tid");
        Fanout { clients, server, shared, waker, reader: Some(reader), reader_tid, server_tid }
    }

    fn broadcast(&self) -> u64 {
        let mut sent = self.shared.sent.lock().unwrap();
        sent.push(monotonic_ns());
        let k = sent.len() as u64;
        drop(sent);
        match &self.server {
            Broadcaster::Midisock(server) => server.send(&note()).expect("broadcast"),
            Broadcaster::PlainTcp(streams) => {
                let bytes = note().to_bytes();
                for mut stream in streams {
                    stream.write_all(&bytes).expect("plain TCP broadcast");
                }
            }
        }
        k
    }

    fn wait_delivered(&self, broadcasts: u64) {
        let target = broadcasts * self.clients as u64;
        let mut progress = self.shared.progress.lock().unwrap();
        while progress.delivered < target {
            assert_eq!(progress.lost_clients, 0, "the server dropped a client");
            progress = self.shared.advanced.wait_timeout(progress, Duration::from_secs(10)).unwrap().0;
        }
    }

    /// One broadcast, waited for until every client has it: nanoseconds from send to the last
    /// client's read (what criterion measures).
    pub fn broadcast_and_wait(&self) -> u64 {
        let start = monotonic_ns();
        let k = self.broadcast();
        self.wait_delivered(k);
        monotonic_ns() - start
    }

    /// `broadcasts` broadcasts, one every `interval`, recording every client's latency and the
    /// CPU time of the server thread and of the reader thread.
    pub fn steady(&self, broadcasts: usize, interval: Duration) -> FanoutRun {
        self.shared.progress.lock().unwrap().latencies.clear();
        self.shared.recording.store(true, Ordering::Release);
        // SAFETY: gettid has no preconditions.
        let caller = unsafe { libc::gettid() } as u32;
        // NOTE: the calling thread otherwise only sleeps and records send times, so its CPU time
        // is what `send` costs it.
        let server_cpu = || self.server_tid.and_then(thread_cpu_ns).unwrap_or(0) + thread_cpu_ns(caller).unwrap_or(0);
        let (server0, reader0) = (server_cpu(), thread_cpu_ns(self.reader_tid).unwrap_or(0));
        let start = Instant::now();
        let mut last = 0;
        for i in 0..broadcasts as u32 {
            let deadline = start + interval * i;
            let now = Instant::now();
            if deadline > now {
                thread::sleep(deadline - now);
            }
            last = self.broadcast();
        }
        self.wait_delivered(last);
        let wall_ns = start.elapsed().as_nanos() as u64;
        let (server1, reader1) = (server_cpu(), thread_cpu_ns(self.reader_tid).unwrap_or(0));
        self.shared.recording.store(false, Ordering::Release);
        let latencies = std::mem::take(&mut self.shared.progress.lock().unwrap().latencies);
        FanoutRun {
            clients: self.clients,
            broadcasts,
            latencies,
            server_cpu_ns: server1 - server0,
            reader_cpu_ns: reader1 - reader0,
            wall_ns,
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Broadcaster::Midisock(server) = &self.server {
            server.close();
        }
    }
}

fn read_loop(mut poll: Poll, streams: Vec<TcpStream>, shared: &Shared) {
    let mut clients: Vec<(MioStream, u64)> = streams.into_iter().map(|s| (MioStream::from_std(s), 0)).collect();
    for (i, (stream, _)) in clients.iter_mut().enumerate() {
        poll.registry().register(stream, Token(i), Interest::READABLE).expect("register client");
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let mut batch: Vec<(u64, u64)> = Vec::new(); // (broadcast index, read time)
    while !shared.stop.load(Ordering::Acquire) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100))) {
            assert_eq!(e.kind(), ErrorKind::Interrupted, "poll: {e}");
            continue;
        }
        let mut delivered = 0u64;
        let mut lost = 0usize;
        batch.clear();
        for event in events.iter() {
            if event.token() == WAKE {
                continue;
            }
            let (stream, bytes) = &mut clients[event.token().0];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        lost += 1;
                        break;
                    }
                    Ok(n) => {
                        let now = monotonic_ns();
                        let (first, last) = (*bytes / 3, (*bytes + n as u64) / 3);
                        *bytes += n as u64;
                        delivered += last - first;
                        batch.extend((first..last).map(|k| (k, now)));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        lost += 1;
                        break;
                    }
                }
            }
        }
        if delivered == 0 && lost == 0 {
            continue;
        }
        let recording = shared.recording.load(Ordering::Acquire);
        let sent = shared.sent.lock().unwrap();
        let mut progress = shared.progress.lock().unwrap();
        if recording {
            progress.latencies.extend(batch.iter().map(|&(k, at)| at.saturating_sub(sent[k as usize])));
        }
        drop(sent);
        progress.delivered += delivered;
        progress.lost_clients += lost;
        drop(progress);
        shared.advanced.notify_all();
    }
}
