//! A TCP proxy that makes a loopback link jittery, the way a TCP stream over Wi-Fi is.
//!
//! Every chunk a read returns is held for a delay drawn from a [`DelayDistribution`], but never
//! leaves before the chunk ahead of it (TCP delivers in order, so a slow segment holds up the
//! ones behind it). Each direction of each connection is two threads: a reader that timestamps
//! chunks into a bounded queue, and a writer that sends each at its release time.
//!
//! - **Loopback only**: it listens on 127.0.0.1 or ::1 and forwards only to a loopback address.
//! - **Bounded**: at most `max_queued_bytes` wait per direction; beyond that the reader stops
//!   reading, so the sender sees TCP back-pressure instead of the proxy growing.
//! - **Clean shutdown**: dropping the proxy (or [`JitterProxy::shutdown`]) stops accepting,
//!   closes every connection and joins every thread. It keeps each connection's sockets until
//!   then: it is made for tests and benchmarks, which open a few connections, not for serving.

use crate::random::{DelayDistribution, SplitMix64};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What to proxy and how badly.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Where connections go (a loopback address).
    pub upstream: SocketAddr,
    /// Delay added to chunks going to the upstream (client → upstream).
    pub to_upstream: DelayDistribution,
    /// Delay added to chunks coming back (upstream → client).
    pub to_client: DelayDistribution,
    /// Seed of the delays (each direction of each connection gets its own stream from it).
    pub seed: u64,
    /// Bytes waiting per direction at most (default 1 MiB).
    pub max_queued_bytes: usize,
    /// Held delays recorded at most for [`ProxyStats::held_ns`] (default 1 000 000).
    pub max_recorded: usize,
}

impl ProxyConfig {
    /// Jitter `delay` towards the upstream, none back.
    pub fn new(upstream: SocketAddr, delay: DelayDistribution) -> ProxyConfig {
        ProxyConfig {
            upstream,
            to_upstream: delay,
            to_client: DelayDistribution::Fixed(Duration::ZERO),
            seed: 0x5EED,
            max_queued_bytes: 1 << 20,
            max_recorded: 1_000_000,
        }
    }
}

/// What the proxy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub connections: u64,
    pub chunks: u64,
    pub bytes: u64,
    /// For each chunk forwarded towards the upstream (up to `max_recorded`): the time from its
    /// read to the end of its write, in ns. The link's one-way delay as the proxy made it.
    pub held_ns: Vec<u64>,
    /// The same for chunks going back to the client (a client that receives through the link).
    pub held_to_client_ns: Vec<u64>,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    stats: Mutex<ProxyStats>,
    /// Every socket the proxy opened, to unblock their threads on shutdown.
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy; see the module docs.
#[derive(Debug)]
pub struct JitterProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl JitterProxy {
    /// Listens on an ephemeral loopback port (the upstream's address family) and starts.
    pub fn start(config: ProxyConfig) -> io::Result<JitterProxy> {
        if !config.upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the jitter proxy forwards to loopback addresses only",
            ));
        }
        let listen: SocketAddr =
            if config.upstream.is_ipv4() { "127.0.0.1:0".parse().unwrap() } else { "[::1]:0".parse().unwrap() };
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stats: Mutex::new(ProxyStats::default()),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("jitter-proxy-accept".into())
                .spawn(move || accept_loop(listener, config, shared))?
        };
        Ok(JitterProxy { addr, shared, acceptor: Some(acceptor) })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of the counters so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Stops accepting, closes every connection and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else { return };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect(self.addr);
        let _ = acceptor.join();
        for socket in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = self.shared.threads.lock().unwrap().drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for JitterProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, config: ProxyConfig, shared: Arc<Shared>) {
    let mut connection = 0u64;
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(upstream) = TcpStream::connect(config.upstream) else {
            // Nothing to forward to: the client sees its connection close.
            continue;
        };
        connection += 1;
        shared.stats.lock().unwrap().connections += 1;
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(c1), Ok(c2), Ok(u1), Ok(u2)) =
            (client.try_clone(), client.try_clone(), upstream.try_clone(), upstream.try_clone())
        else {
            continue;
        };
        shared.sockets.lock().unwrap().extend([client, upstream]);
        // Finished pumps need no joining later (a dropped handle detaches a finished thread).
        shared.threads.lock().unwrap().retain(|thread| !thread.is_finished());
        let seed = config.seed ^ connection.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let forward = Direction { delay: config.to_upstream, seed, towards_upstream: true };
        let back = Direction { delay: config.to_client, seed: !seed, towards_upstream: false };
        for (from, to, direction) in [(c1, u1, forward), (u2, c2, back)] {
            if let Err(error) = spawn_pump(from, to, direction, &config, &shared) {
                eprintln!("jitter proxy: cannot start a thread: {error}");
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Direction {
    delay: DelayDistribution,
    seed: u64,
    /// Which held delays to record into ([`ProxyStats::held_ns`] or `held_to_client_ns`).
    towards_upstream: bool,
}

/// Chunks waiting in one direction, with their release times; `closed` once the reader ended.
#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<(Instant, Instant, Vec<u8>)>,
    bytes: usize,
    closed: bool,
}

#[derive(Debug, Default)]
struct Pipe {
    queue: Mutex<Queue>,
    changed: Condvar,
}

fn spawn_pump(
    from: TcpStream,
    to: TcpStream,
    direction: Direction,
    config: &ProxyConfig,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let pipe = Arc::new(Pipe::default());
    let limit = config.max_queued_bytes.max(1);
    let reader = {
        let (pipe, shared) = (Arc::clone(&pipe), Arc::clone(shared));
        thread::Builder::new()
            .name("jitter-proxy-read".into())
            .spawn(move || read_side(from, direction, limit, &pipe, &shared))?
    };
    let writer = {
        let (pipe, shared) = (Arc::clone(&pipe), Arc::clone(shared));
        let max_recorded = config.max_recorded;
        thread::Builder::new()
            .name("jitter-proxy-write".into())
            .spawn(move || write_side(to, direction, max_recorded, &pipe, &shared))?
    };
    shared.threads.lock().unwrap().extend([reader, writer]);
    Ok(())
}

fn read_side(mut from: TcpStream, direction: Direction, limit: usize, pipe: &Pipe, shared: &Shared) {
    let mut rng = SplitMix64::new(direction.seed);
    let mut last_release = Instant::now();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        // Back-pressure: wait for room before reading more.
        {
            let mut queue = pipe.queue.lock().unwrap();
            while queue.bytes >= limit && !shared.stop.load(Ordering::SeqCst) {
                queue = pipe.changed.wait_timeout(queue, Duration::from_millis(50)).unwrap().0;
            }
        }
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        // In order: never before the chunk ahead.
        let release = (now + direction.delay.sample(&mut rng)).max(last_release);
        last_release = release;
        let mut queue = pipe.queue.lock().unwrap();
        queue.bytes += read;
        queue.chunks.push_back((now, release, buffer[..read].to_vec()));
        pipe.changed.notify_all();
    }
    pipe.queue.lock().unwrap().closed = true;
    pipe.changed.notify_all();
}

fn write_side(mut to: TcpStream, direction: Direction, max_recorded: usize, pipe: &Pipe, shared: &Shared) {
    loop {
        let (read_at, chunk) = {
            let mut queue = pipe.queue.lock().unwrap();
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(&(_, release, _)) = queue.chunks.front() {
                    let now = Instant::now();
                    if release <= now {
                        break;
                    }
                    // NOTE: a timed wait, no spinning: the proxy shares the machine with what
                    // it measures, and a spinning thread would steal its CPU.
                    queue = pipe.changed.wait_timeout(queue, release - now).unwrap().0;
                } else if queue.closed {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                } else {
                    queue = pipe.changed.wait(queue).unwrap();
                }
            }
            let (read_at, _, chunk) = queue.chunks.pop_front().expect("checked above");
            queue.bytes -= chunk.len();
            pipe.changed.notify_all();
            (read_at, chunk)
        };
        if to.write_all(&chunk).is_err() {
            return;
        }
        let mut stats = shared.stats.lock().unwrap();
        stats.chunks += 1;
        stats.bytes += chunk.len() as u64;
        let held = read_at.elapsed().as_nanos() as u64;
        let record = if direction.towards_upstream { &mut stats.held_ns } else { &mut stats.held_to_client_ns };
        if record.len() < max_recorded {
            record.push(held);
        }
    }
}
