//! Workloads shared by the bench files and by `side_by_side` (the measuring half of
//! `cargo xtask bench-report`): echo peers, paced streams, bulk streams, a fan-out fixture, and
//! percentile and CPU-time helpers. Everything runs on loopback with port 0.
//!
//! NOTE: each bench binary includes this module and uses only part of it.
#![allow(dead_code)]

pub mod fanout;

use midisock::{connect, monotonic_ns, Message, PortServer, SocketPort};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// True under `cargo bench` (criterion's rule: `--bench` given and `--test` not); false under
/// `cargo test --benches`, where every workload shrinks to a smoke run of a few milliseconds.
pub fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// Where benches put what criterion does not report (percentiles, CPU time):
/// `$CARGO_TARGET_DIR/criterion-extra`, `target/criterion-extra` by default.
pub fn extra_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("criterion-extra");
    std::fs::create_dir_all(&dir).expect("create criterion-extra directory");
    dir
}

/// Prints `text` and, under `cargo bench`, writes it to `criterion-extra/<name>`.
pub fn write_extra(name: &str, text: &str) {
    print!("{text}");
    if bench_mode() {
        let path = extra_dir().join(name);
        std::fs::write(&path, text).expect("write percentile summary");
        println!("(written to {})", path.display());
    }
}

/// The message every latency workload sends: 3 bytes, the common case.
pub fn note() -> Message {
    Message::NoteOn { channel: 0, note: 60, velocity: 100 }
}

/// Its bytes, for the plain-TCP baseline.
pub const NOTE_BYTES: [u8; 3] = [0x90, 60, 100];

/// Order statistics of latency samples, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub count: usize,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    /// Sorts `samples` and reads the percentiles off (nearest rank).
    pub fn of(samples: &mut [u64]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Percentiles {
            count: samples.len(),
            mean: samples.iter().map(|&s| s as f64).sum::<f64>() / samples.len() as f64,
            p50: rank(0.50),
            p99: rank(0.99),
            p999: rank(0.999),
            max: *samples.last().unwrap(),
        }
    }

    /// One table row: `label  n  p50  p99  p99.9  max  p99.9-p50` in microseconds.
    pub fn row(&self, label: &str) -> String {
        let us = |ns: u64| ns as f64 / 1e3;
        format!(
            "{label:<28} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.1}\n",
            self.count,
            us(self.p50),
            us(self.p99),
            us(self.p999),
            us(self.max),
            us(self.p999.saturating_sub(self.p50)),
        )
    }

    pub fn header() -> String {
        format!("{:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11}\n", "µs", "n", "p50", "p99", "p99.9", "max", "p99.9-p50")
    }
}

/// Plain TCP with TCP_NODELAY on both ends, as midisock sets it.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect loopback");
    let (server, _) = listener.accept().expect("accept loopback");
    for stream in [&client, &server] {
        stream.set_nodelay(true).expect("TCP_NODELAY");
    }
    (client, server)
}

/// A midisock connection: `(connected port, the server's accepted port, server)`. The server is
/// returned so it outlives the ports' setup; accepted ports stay open after it closes anyway.
pub fn midisock_pair() -> (SocketPort, SocketPort, PortServer) {
    let server = PortServer::bind("127.0.0.1:0").expect("bind loopback");
    let client = connect(server.local_addr()).expect("connect loopback");
    let accepted = server.accept().expect("accept");
    (client, accepted, server)
}

// ---------------------------------------------------------------------------------------------
// Round trip

/// A midisock client whose peer (an accepted port on its own thread, pinned where `placement`
/// says) echoes every message. Measure under [`pin_caller`].
pub struct MidisockEcho {
    client: SocketPort,
    echo: Option<JoinHandle<()>>,
    _server: PortServer,
}

impl MidisockEcho {
    pub fn start(placement: EchoPlacement) -> MidisockEcho {
        let (client, accepted, server) = midisock_pair();
        let echo = thread::Builder::new()
            .name("bench-midisock-echo".into())
            .spawn(move || {
                pin_current_thread(placement.cpu());
                while let Ok(message) = accepted.receive() {
                    if accepted.send(&message).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn echo thread");
        MidisockEcho { client, echo: Some(echo), _server: server }
    }

    /// One round trip; returns its duration in nanoseconds.
    pub fn round_trip(&self, message: &Message) -> u64 {
        let start = monotonic_ns();
        self.client.send(message).expect("send");
        let back = self.client.receive().expect("receive echo");
        let end = monotonic_ns();
        debug_assert_eq!(&back, message);
        end - start
    }
}

impl Drop for MidisockEcho {
    fn drop(&mut self) {
        self.client.close();
        if let Some(echo) = self.echo.take() {
            let _ = echo.join();
        }
    }
}

/// The baseline: a plain TCP ping-pong of the same 3 bytes, echoed by a thread pinned where
/// `placement` says. Measure under [`pin_caller`].
pub struct RawTcpEcho {
    client: TcpStream,
    echo: Option<JoinHandle<()>>,
}

impl RawTcpEcho {
    pub fn start(placement: EchoPlacement) -> RawTcpEcho {
        let (client, mut server) = tcp_pair();
        let echo = thread::Builder::new()
            .name("bench-tcp-echo".into())
            .spawn(move || {
                pin_current_thread(placement.cpu());
                let mut buf = [0u8; 3];
                while server.read_exact(&mut buf).is_ok() {
                    if server.write_all(&buf).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn echo thread");
        RawTcpEcho { client, echo: Some(echo) }
    }

    pub fn round_trip(&mut self, bytes: &[u8; 3]) -> u64 {
        let start = monotonic_ns();
        self.client.write_all(bytes).expect("write");
        let mut back = [0u8; 3];
        self.client.read_exact(&mut back).expect("read echo");
        let end = monotonic_ns();
        debug_assert_eq!(&back, bytes);
        end - start
    }
}

impl Drop for RawTcpEcho {
    fn drop(&mut self) {
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(echo) = self.echo.take() {
            let _ = echo.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One-way latency of a paced stream

/// Sends one 3-byte message every `1 / rate_hz` for `duration` from this thread and returns the
/// send times (monotonic ns, read just before each send); absolute deadlines, so pacing errors
/// do not accumulate.
fn paced_sends(rate_hz: u32, duration: Duration, mut send: impl FnMut()) -> Vec<u64> {
    let period = Duration::from_secs(1) / rate_hz;
    let count = (duration.as_nanos() / period.as_nanos()).max(1) as usize;
    let mut sent = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count as u32 {
        let deadline = start + period * i;
        let now = Instant::now();
        if deadline > now {
            thread::sleep(deadline - now);
        }
        sent.push(monotonic_ns());
        send();
    }
    sent
}

/// One-way latency (ns) of a `rate_hz` stream over midisock: send time (monotonic_ns) to the
/// receive timestamp the receiving port stamps on each message ([`midisock::Received`]).
pub fn midisock_stream_latency(rate_hz: u32, duration: Duration) -> Vec<u64> {
    let (client, accepted, _server) = midisock_pair();
    let receiver = thread::Builder::new()
        .name("bench-midisock-receiver".into())
        .spawn(move || {
            let mut stamps = Vec::new();
            while let Ok(received) = accepted.receive_stamped() {
                stamps.push(received.timestamp_ns);
            }
            stamps
        })
        .expect("spawn receiver");
    let message = note();
    let sent = paced_sends(rate_hz, duration, || client.send(&message).expect("send"));
    client.close();
    let received = receiver.join().expect("receiver thread");
    assert_eq!(sent.len(), received.len(), "every message arrives");
    sent.iter().zip(&received).map(|(s, r)| r.saturating_sub(*s)).collect()
}

/// The baseline: the same paced 3 bytes over plain TCP, stamped (monotonic_ns) when `read`
/// returns, where midisock stamps too.
pub fn raw_tcp_stream_latency(rate_hz: u32, duration: Duration) -> Vec<u64> {
    let (mut client, mut server) = tcp_pair();
    let receiver = thread::Builder::new()
        .name("bench-tcp-receiver".into())
        .spawn(move || {
            let mut stamps = Vec::new();
            let mut buf = [0u8; 4096];
            let mut pending = 0usize;
            loop {
                match server.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let now = monotonic_ns();
                        pending += n;
                        while pending >= 3 {
                            stamps.push(now);
                            pending -= 3;
                        }
                    }
                }
            }
            stamps
        })
        .expect("spawn receiver");
    let sent = paced_sends(rate_hz, duration, || client.write_all(&NOTE_BYTES).expect("write"));
    client.shutdown(Shutdown::Both).expect("shutdown");
    let received = receiver.join().expect("receiver thread");
    assert_eq!(sent.len(), received.len(), "every message arrives");
    sent.iter().zip(&received).map(|(s, r)| r.saturating_sub(*s)).collect()
}

// ---------------------------------------------------------------------------------------------
// Bulk stream throughput

/// A realistic mix of short messages for bulk streams: notes on and off, CC, pitch bend,
/// program change, clock. Average 2.75 bytes per message.
pub fn message_mix(count: usize) -> Vec<Message> {
    (0..count)
        .map(|i| {
            let channel = (i % 16) as u8;
            let v = (i % 128) as u8;
            match i % 8 {
                0 | 1 => Message::NoteOn { channel, note: v, velocity: 100 },
                2 | 3 => Message::NoteOff { channel, note: v, velocity: 0 },
                4 => Message::ControlChange { channel, control: 1, value: v },
                5 => Message::PitchWheel { channel, pitch: (i as i16 % 8192) - 4096 },
                6 => Message::ProgramChange { channel, program: v },
                _ => Message::Clock,
            }
        })
        .collect()
}

/// End-to-end stream over midisock: this thread sends with `send_all` in batches; the accepted
/// port, on its own thread, takes each message with `receive()` (parsed and handed over one by
/// one). Kept open across measurements.
pub struct MidisockStream {
    client: SocketPort,
    batch: Vec<Message>,
    orders: Option<mpsc::Sender<usize>>,
    done: mpsc::Receiver<Instant>,
    receiver: Option<JoinHandle<()>>,
    _server: PortServer,
}

impl MidisockStream {
    pub fn start(batch: usize) -> MidisockStream {
        let (client, accepted, server) = midisock_pair();
        let (orders, orders_rx) = mpsc::channel::<usize>();
        let (done_tx, done) = mpsc::channel();
        let receiver = thread::Builder::new()
            .name("bench-midisock-receiver".into())
            .spawn(move || {
                // Drained a read at a time with receive_batch, the API for busy streams.
                let mut batch = Vec::with_capacity(64 * 1024);
                for count in orders_rx {
                    let mut received = 0;
                    while received < count {
                        batch.clear();
                        received += accepted.receive_batch(&mut batch).expect("receive");
                        std::hint::black_box(&batch);
                    }
                    let _ = done_tx.send(Instant::now());
                }
            })
            .expect("spawn receiver");
        MidisockStream {
            client,
            batch: message_mix(batch),
            orders: Some(orders),
            done,
            receiver: Some(receiver),
            _server: server,
        }
    }

    /// Sends `total` messages; the time from the first send to the last message received.
    pub fn run(&self, total: usize) -> Duration {
        self.orders.as_ref().unwrap().send(total).expect("receiver alive");
        let start = Instant::now();
        let mut sent = 0;
        while sent < total {
            let n = self.batch.len().min(total - sent);
            self.client.send_all(&self.batch[..n]).expect("send_all");
            sent += n;
        }
        self.done.recv().expect("receiver finished").duration_since(start)
    }
}

impl Drop for MidisockStream {
    fn drop(&mut self) {
        self.orders = None;
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

/// The wire ceiling: the same bytes (the message mix, encoded) over plain TCP, read and counted
/// but not parsed.
pub struct RawTcpStream {
    client: TcpStream,
    bytes: Vec<u8>,
    messages_per_batch: usize,
    orders: Option<mpsc::Sender<usize>>,
    done: mpsc::Receiver<Instant>,
    receiver: Option<JoinHandle<()>>,
}

impl RawTcpStream {
    pub fn start(batch: usize) -> RawTcpStream {
        let (client, mut server) = tcp_pair();
        let mut bytes = Vec::new();
        for message in message_mix(batch) {
            message.encode_to_vec(&mut bytes);
        }
        let (orders, orders_rx) = mpsc::channel::<usize>();
        let (done_tx, done) = mpsc::channel();
        let receiver = thread::Builder::new()
            .name("bench-tcp-receiver".into())
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                for wanted in orders_rx {
                    let mut got = 0usize;
                    while got < wanted {
                        match server.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got += n,
                        }
                    }
                    let _ = done_tx.send(Instant::now());
                }
            })
            .expect("spawn receiver");
        RawTcpStream { client, bytes, messages_per_batch: batch, orders: Some(orders), done, receiver: Some(receiver) }
    }

    /// Sends at least `total` messages in whole batches; `(messages, duration)`.
    pub fn run(&mut self, total: usize) -> (usize, Duration) {
        let batches = total.div_ceil(self.messages_per_batch).max(1);
        self.orders.as_ref().unwrap().send(batches * self.bytes.len()).expect("receiver alive");
        let start = Instant::now();
        for _ in 0..batches {
            self.client.write_all(&self.bytes).expect("write");
        }
        let end = self.done.recv().expect("receiver finished");
        (batches * self.messages_per_batch, end.duration_since(start))
    }
}

impl Drop for RawTcpStream {
    fn drop(&mut self) {
        self.orders = None;
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU time

/// Nanoseconds a thread of this process has run on a CPU (`/proc/self/task/<tid>/schedstat`).
pub fn thread_cpu_ns(tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The ids of this process's threads named `name` (`/proc/self/task/<tid>/comm`).
pub fn threads_named(name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let tid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim_end() == name).then_some(tid)
        })
        .collect()
}

/// Nanoseconds the calling thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`): time the thread
/// spent waiting for a CPU that other processes held does not count.
pub fn current_thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the thread CPU clock always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User + system CPU time of the whole process, nanoseconds (getrusage).
pub fn process_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is always supported.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Feeds `bytes` to `parser` and counts the messages, each one handed to `black_box` as a
/// consumer would take it: the one harness of the parser bench and of `bench-report`, so both
/// measure the same compiled loop.
pub fn parse_counting(parser: &mut midisock::Parser, bytes: &[u8]) -> usize {
    let mut count = 0usize;
    parser.feed(std::hint::black_box(bytes), |message| {
        std::hint::black_box(&message);
        count += 1;
    });
    count
}

// ---------------------------------------------------------------------------------------------
// CPU placement for round trips

/// The CPU round-trip callers run on; echo threads run on [`ECHO_CPU`] or, for
/// [`EchoPlacement::SameCpu`], beside the caller.
const CALLER_CPU: usize = 0;
const ECHO_CPU: usize = 1;

/// Where a round trip's echo thread runs.
#[derive(Clone, Copy, Debug)]
pub enum EchoPlacement {
    /// On another CPU than the caller, as a client and a server usually are: every round trip
    /// wakes the other CPU twice. On this 2-vCPU VM that wake costs about 25 µs each way.
    OtherCpu,
    /// On the caller's CPU: no CPU is woken, so the round trip is the software's own cost
    /// (two context switches and the system calls).
    SameCpu,
}

impl EchoPlacement {
    fn cpu(self) -> usize {
        match self {
            EchoPlacement::OtherCpu => ECHO_CPU,
            EchoPlacement::SameCpu => CALLER_CPU,
        }
    }
}

/// Pins the calling thread to `cpu` when the machine has it; returns the mask it had (`None` if
/// nothing changed).
///
/// NOTE: the machine's CPU count, not `available_parallelism()`. The latter counts the calling
/// thread's own mask, and an echo thread spawned by a caller already pinned to CPU 0 inherits
/// that mask: it saw one CPU, never pinned itself, and every "cross-CPU" round trip ran both ends
/// on CPU 0 (14 µs instead of 55 µs here), while the Python benches did cross CPUs.
fn pin_current_thread(cpu: usize) -> Option<libc::cpu_set_t> {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online <= cpu as libc::c_long {
        return None;
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; both calls get a valid pointer and its size.
    unsafe {
        let mut previous: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut previous) != 0 {
            return None;
        }
        let mut only: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut only);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &only) == 0).then_some(previous)
    }
}

/// Keeps the thread that measures round trips on [`CALLER_CPU`] while alive, then restores its
/// CPU mask.
///
/// NOTE: why pin at all. On this 2-vCPU VM a round trip costs ~15 µs when the echo thread shares
/// the caller's CPU and ~75 µs when it must wake the other, halted vCPU; left to the scheduler,
/// each system's echo thread lands on either, and the midisock / plain TCP ratio swung between
/// 0.2× and 5× from run to run. Pinned, every system's echo runs where its [`EchoPlacement`]
/// says, every time, and the comparison is like for like.
pub struct PinnedCaller(Option<libc::cpu_set_t>);

pub fn pin_caller() -> PinnedCaller {
    PinnedCaller(pin_current_thread(CALLER_CPU))
}

impl Drop for PinnedCaller {
    fn drop(&mut self) {
        if let Some(previous) = &self.0 {
            // SAFETY: `previous` is the mask sched_getaffinity returned for this thread.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), previous) };
        }
    }
}

/// Raises this process's open-file limit to at least `wanted` (up to the hard limit).
pub fn raise_fd_limit(wanted: u64) -> u64 {
    // SAFETY: a zeroed rlimit is valid for getrlimit to overwrite.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is valid and writable.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if (limit.rlim_cur as u64) < wanted {
        limit.rlim_cur = (wanted as libc::rlim_t).min(limit.rlim_max);
        // SAFETY: `limit` is a valid rlimit with cur <= max.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    limit.rlim_cur as u64
}
