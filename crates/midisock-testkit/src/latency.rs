//! One-way latency of a 1 kHz stream through a [`JitterProxy`] link, measured through the real
//! API: what a user of each receiving side gets.
//!
//! A sender on this machine writes message `i` at `start + i ms` and notes the time just before
//! the write; the receiver notes the time each message is handed to it. Latency = handed over −
//! written, on one clock (both ends run here), so no clock offset enters the measurement.
//!
//! - [`Receiver::RawTcp`]: plain TCP, the bytes read as they arrive (the wire's own latency).
//! - [`Receiver::Midisock`]: a `SocketPort` made by [`midisock::connect_with`], with or without
//!   a jitter buffer. The sender is a port that only sends, made with
//!   [`midisock::SocketPort::from_stream`]: with a buffer on the receiver, it answers the request
//!   by itself and stamps what it sends.
//! - [`one_way_to_process`]: another program receives (mido, in the bench report), and prints
//!   when it got each message.

use crate::{DelayDistribution, JitterProxy, ProxyConfig};
use midisock::timing::{DelayMode, PlayoutStats};
use midisock::{connect_with, monotonic_ns, ConnectOptions, Message, SocketPort};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The side that receives the stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Receiver {
    /// Plain TCP: 3-byte messages counted as they are read.
    RawTcp,
    /// A midisock port; `Some(mode)` turns its jitter buffer on.
    Midisock(Option<DelayMode>),
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct OneWay {
    /// Handed over − written, per message after the warm-up, in ns.
    pub latencies_ns: Vec<u64>,
    /// The median latency of each 2 s of the run (warm-up included), in ns.
    pub segment_medians_ns: Vec<u64>,
    /// How long the proxy held each chunk of the stream, in ns.
    pub proxy_held_ns: Vec<u64>,
    /// The receiving port's playout stats at the end (`None` without a buffer).
    pub playout: Option<PlayoutStats>,
    /// Each second of the stream (1 000 messages, warm-up included), to see how a buffer
    /// settles: its latencies' median and p99.9, and the playout stats when its last message
    /// was received (midisock receivers only).
    pub seconds: Vec<SecondOfRun>,
}

/// One second of a run: see [`OneWay::seconds`].
#[derive(Clone, Copy, Debug)]
pub struct SecondOfRun {
    pub p50_ns: u64,
    pub p999_ns: u64,
    /// The receiving port's playout stats after the second's last message (`None` without a
    /// buffer or for a receiver in another program).
    pub playout: Option<PlayoutStats>,
}

/// Per-second medians and p99.9s of `latencies` (all of a run, in order), with `playout[s]` the
/// stats after second `s`.
fn seconds_of(latencies: &[u64], playout: &[PlayoutStats]) -> Vec<SecondOfRun> {
    latencies
        .chunks(1000)
        .enumerate()
        .map(|(s, chunk)| {
            let mut chunk = chunk.to_vec();
            SecondOfRun {
                p50_ns: percentile(&mut chunk, 0.5),
                p999_ns: percentile(&mut chunk, 0.999),
                playout: playout.get(s).copied(),
            }
        })
        .collect()
}

/// Message `i` of the stream: 18 bits of index in a pitch-wheel message (3 bytes, as a note).
pub fn numbered(i: u32) -> Message {
    Message::PitchWheel { channel: ((i >> 14) & 15) as u8, pitch: (i & 0x3FFF) as i16 - 8192 }
}

/// The index [`numbered`] put in a message.
pub fn number_of(message: &Message) -> Option<u32> {
    match *message {
        Message::PitchWheel { channel, pitch } => Some((u32::from(channel) << 14) | (pitch + 8192) as u32),
        _ => None,
    }
}

/// The `q` quantile (0..=1) of `samples` (sorted in place); 0 for none.
pub fn percentile(samples: &mut [u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
}

/// Longest wait for any one step (connecting, the answer, the next message).
const STEP_WAIT: Duration = Duration::from_secs(20);

/// Streams `duration` of 1 kHz messages through a proxy that delays them by `link`, into
/// `receiver`; the first `warm_up` are left out of [`OneWay::latencies_ns`]. Fails on any lost,
/// duplicated or reordered message.
pub fn one_way(
    link: DelayDistribution,
    receiver: Receiver,
    duration: Duration,
    warm_up: Duration,
    seed: u64,
) -> io::Result<OneWay> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // The receiver connects through the proxy; the stream comes back to it.
    let mut config = ProxyConfig::new(listener.local_addr()?, DelayDistribution::Fixed(Duration::ZERO));
    config.to_client = link;
    config.seed = seed;
    let proxy = JitterProxy::start(config)?;
    let count = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX).min(1 << 18);
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let warm_up_count = u32::try_from(warm_up.as_millis()).unwrap_or(u32::MAX);
    let mut latencies = Vec::with_capacity(count as usize);
    let mut all = Vec::with_capacity(count as usize);
    let mut playout_each_second = Vec::new();
    let mut record = |i: u32, handed_over: u64, sent_at: &[AtomicU64]| {
        let latency = handed_over.saturating_sub(sent_at[i as usize].load(Ordering::Acquire));
        all.push(latency);
        if i >= warm_up_count {
            latencies.push(latency);
        }
    };
    let playout = match receiver {
        Receiver::RawTcp => {
            let mut port = TcpStream::connect(proxy.local_addr())?;
            port.set_nodelay(true)?;
            let (upstream, _) = listener.accept()?;
            upstream.set_nodelay(true)?;
            let sending = send_stream(count, Arc::clone(&sent_at), move |message| {
                (&upstream).write_all(&message.to_bytes()).map_err(|e| e.to_string())
            });
            port.set_read_timeout(Some(STEP_WAIT))?;
            let mut buf = vec![0; 64 * 1024];
            let mut bytes = 0usize;
            let mut next = 0u32;
            while next < count {
                let n = port.read(&mut buf)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended early"));
                }
                let now = monotonic_ns();
                bytes += n;
                while next < count && (next as usize + 1) * 3 <= bytes {
                    record(next, now, &sent_at);
                    next += 1;
                }
            }
            join(sending)?;
            None
        }
        Receiver::Midisock(mode) => {
            let options = match mode {
                Some(mode) => ConnectOptions::default().jitter_buffer(mode),
                None => ConnectOptions::default(),
            };
            let port = connect_with(proxy.local_addr(), &options).map_err(io_error)?;
            let (upstream, _) = listener.accept()?;
            let sender = SocketPort::from_stream(upstream).map_err(io_error)?;
            if mode.is_some() {
                // The sender only sends: it reads the request from inside a send.
                let deadline = monotonic_ns() + STEP_WAIT.as_nanos() as u64;
                while !sender.sends_stamps() {
                    if monotonic_ns() > deadline {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "the sender never answered"));
                    }
                    sender.send(&Message::ActiveSensing).map_err(io_error)?;
                    thread::sleep(Duration::from_millis(2));
                }
            }
            let sending = send_stream(count, Arc::clone(&sent_at), move |message| {
                sender.send(message).map_err(|e| e.to_string())
            });
            let mut next = 0u32;
            while next < count {
                let received = port
                    .receive_timeout_stamped(STEP_WAIT)
                    .map_err(io_error)?
                    .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no message within the wait"))?;
                let now = monotonic_ns();
                let Some(i) = number_of(&received.message) else { continue };
                if i != next {
                    return Err(io::Error::other(format!("message {i} came where {next} was due")));
                }
                if mode.is_some() && received.sender_ns.is_none() {
                    return Err(io::Error::other(format!("message {i} came without its stamp")));
                }
                record(i, now, &sent_at);
                if i % 1000 == 999 {
                    playout_each_second.extend(port.playout_stats());
                }
                next += 1;
            }
            join(sending)?;
            port.playout_stats()
        }
    };
    let held = proxy.stats().held_to_client_ns;
    let segment_medians_ns = all.chunks(2000).map(|c| percentile(&mut c.to_vec(), 0.5)).collect();
    let seconds = seconds_of(&all, &playout_each_second);
    Ok(OneWay { latencies_ns: latencies, segment_medians_ns, proxy_held_ns: held, playout, seconds })
}

/// [`one_way`] into another program: `command` is run with two more arguments, the proxy's port
/// on 127.0.0.1 and the message count. It must connect there, receive that many 3-byte messages,
/// then print, one per line, the `CLOCK_MONOTONIC` time in ns at which it got each (Python:
/// `time.monotonic_ns()`), and exit with success. The sender writes plain bytes, as a midisock
/// port does to a peer that never asks for stamps.
pub fn one_way_to_process(
    link: DelayDistribution,
    command: &mut Command,
    duration: Duration,
    warm_up: Duration,
    seed: u64,
) -> io::Result<OneWay> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut config = ProxyConfig::new(listener.local_addr()?, DelayDistribution::Fixed(Duration::ZERO));
    config.to_client = link;
    config.seed = seed;
    let proxy = JitterProxy::start(config)?;
    let count = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX).min(1 << 18);
    let mut child =
        command.arg(proxy.local_addr().port().to_string()).arg(count.to_string()).stdout(Stdio::piped()).spawn()?;
    let result = (|| {
        listener.set_nonblocking(true)?;
        let deadline = monotonic_ns() + STEP_WAIT.as_nanos() as u64;
        let upstream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && monotonic_ns() < deadline => {
                    if child.try_wait()?.is_some() {
                        return Err(io::Error::other("the receiving program ended before connecting"));
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        upstream.set_nonblocking(false)?;
        upstream.set_nodelay(true)?;
        let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
        let sending = send_stream(count, Arc::clone(&sent_at), move |message| {
            (&upstream).write_all(&message.to_bytes()).map_err(|e| e.to_string())
        });
        join(sending)?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let times: Vec<u64> = BufReader::new(stdout)
            .lines()
            .map(|line| line.and_then(|l| l.trim().parse().map_err(|_| io::Error::other(format!("bad line {l:?}")))))
            .collect::<io::Result<_>>()?;
        if !child.wait()?.success() || times.len() != count as usize {
            return Err(io::Error::other(format!(
                "the receiving program reported {} of {count} messages",
                times.len()
            )));
        }
        let warm_up_count = u32::try_from(warm_up.as_millis()).unwrap_or(u32::MAX) as usize;
        let latencies: Vec<u64> =
            times.iter().enumerate().map(|(i, &t)| t.saturating_sub(sent_at[i].load(Ordering::Acquire))).collect();
        let segment_medians_ns = latencies.chunks(2000).map(|c| percentile(&mut c.to_vec(), 0.5)).collect();
        let held = proxy.stats().held_to_client_ns;
        Ok(OneWay {
            latencies_ns: latencies[warm_up_count.min(latencies.len())..].to_vec(),
            segment_medians_ns,
            proxy_held_ns: held,
            playout: None,
            seconds: seconds_of(&latencies, &[]),
        })
    })();
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

fn io_error(e: midisock::Error) -> io::Error {
    io::Error::other(e.to_string())
}

fn join(handle: thread::JoinHandle<Result<(), String>>) -> io::Result<()> {
    handle.join().map_err(|_| io::Error::other("the sender panicked"))?.map_err(io::Error::other)
}

/// Writes message `i` at `start + i ms` with `send`, noting the time just before each write.
fn send_stream(
    count: u32,
    sent_at: Arc<Vec<AtomicU64>>,
    mut send: impl FnMut(&Message) -> Result<(), String> + Send + 'static,
) -> thread::JoinHandle<Result<(), String>> {
    thread::spawn(move || {
        let start = monotonic_ns() + 5_000_000;
        for i in 0..count {
            let at = start + u64::from(i) * 1_000_000;
            // Timed sleeps only: pacing error does not count (latency starts at the write), and
            // spinning would take CPU from the proxy and the receiver.
            let now = monotonic_ns();
            if at > now {
                thread::sleep(Duration::from_nanos(at - now));
            }
            sent_at[i as usize].store(monotonic_ns(), Ordering::Release);
            send(&numbered(i))?;
        }
        Ok(())
    })
}
