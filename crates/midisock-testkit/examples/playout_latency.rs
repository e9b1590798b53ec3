//! One-way latency of a 1 kHz stamped stream through the jitter proxy, with and without the
//! playout buffer (at the application level: the decoder and buffer are driven by hand here,
//! as a port will drive them once the extension is integrated).
//!
//! ```text
//! cargo run --release -p midisock-testkit --example playout_latency [-- --seconds 20]
//! ```
//!
//! For each link (20±10 ms and 5±3 ms, uniform, in order) it runs the stream twice: once with the
//! adaptive buffer, once with a fixed buffer at the delay the adaptive run settled on (what a
//! user would pin after reading the stats). Latency = the time a message is handed to the
//! application − the sender's clock when it was written (one machine: one clock). The first
//! `WARM_UP_S` seconds, while the estimate settles, are left out of every row.

use midisock::monotonic_ns;
use midisock::timing::{Decoded, DelayMode, PlayoutBuffer, PlayoutConfig, StampDecoder, StampEncoder, STAMP_ANSWER};
use midisock::Message;
use midisock_testkit::{DelayDistribution, JitterProxy, ProxyConfig};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

const WARM_UP_S: u64 = 2;

struct Run {
    /// Arrival − send, per message after warm-up (no buffer).
    raw: Vec<u64>,
    /// Delivery − send, per message after warm-up (through the buffer).
    played: Vec<u64>,
    /// The median of delivery − send over each 2 s of the run, warm-up included.
    segment_medians: Vec<u64>,
    /// The proxy's own held delays.
    proxy: Vec<u64>,
    delay_ns: u64,
    late: u64,
    jitter_p999_ns: Option<u64>,
}

/// Waits until `socket` is readable or `timeout` passed, to the nanosecond (`ppoll`).
// NOTE: SO_RCVTIMEO (set_read_timeout) rounds to scheduler ticks (4 ms at HZ=250), and poll()
// to milliseconds; either would show up as output jitter here.
fn wait_readable(socket: &TcpStream, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    rc > 0
}

fn percentile(samples: &mut [u64], q: f64) -> u64 {
    samples.sort_unstable();
    samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
}

fn sender(target: std::net::SocketAddr, count: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(target).expect("connect to the proxy");
        stream.set_nodelay(true).unwrap();
        stream.write_all(STAMP_ANSWER).unwrap();
        let mut encoder = StampEncoder::new();
        let mut bytes = Vec::with_capacity(16);
        let start = monotonic_ns();
        for i in 0..count {
            let at = start + i * 1_000_000;
            // Timed sleeps only: pacing error does not count (latency starts at the stamp), and
            // spinning would take CPU from the proxy and the receiver.
            let now = monotonic_ns();
            if at > now {
                thread::sleep(Duration::from_nanos(at - now));
            }
            bytes.clear();
            let message = Message::ControlChange { channel: 0, control: (i >> 7) as u8 & 127, value: i as u8 & 127 };
            encoder.encode_to_vec(monotonic_ns(), &message, &mut bytes);
            if stream.write_all(&bytes).is_err() {
                return;
            }
        }
    })
}

fn run(link: DelayDistribution, mode: DelayMode, seconds: u64, seed: u64) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = ProxyConfig::new(listener.local_addr().unwrap(), link);
    config.seed = seed;
    let proxy = JitterProxy::start(config).expect("start the proxy");
    let count = seconds * 1000;
    let sending = sender(proxy.local_addr(), count);
    let (mut socket, _) = listener.accept().unwrap();
    socket.set_nodelay(true).unwrap();

    let mut decoder = StampDecoder::default();
    let mut buffer = PlayoutBuffer::new(PlayoutConfig::new(mode));
    let (mut raw, mut played) = (Vec::new(), Vec::new());
    let mut segments: Vec<Vec<u64>> = vec![Vec::new(); seconds.div_ceil(2) as usize + 1];
    let mut first_sender = None;
    let warm_up_ns = WARM_UP_S * 1_000_000_000;
    let after_warm_up = |first: Option<u64>, sender: u64| first.is_some_and(|f| sender >= f + warm_up_ns);
    let mut chunk = vec![0; 64 * 1024];
    let mut delivered = 0u64;
    let mut open = true;
    while open || !buffer.is_empty() {
        // Wait for bytes, but no later than the next message is due.
        let now = monotonic_ns();
        let due = buffer.next_deadline();
        if due.is_some_and(|d| d <= now) {
            // Already due: deliver before reading more.
        } else if open {
            let wait = due.map_or(Duration::from_secs(5), |d| Duration::from_nanos(d - now));
            if !wait_readable(&socket, wait) {
                // Timed out: something is due.
            } else {
                match socket.read(&mut chunk) {
                    Ok(0) => open = false,
                    Ok(n) => {
                        let arrival = monotonic_ns();
                        decoder.feed(&chunk[..n], |item| {
                            if let Decoded::Message { sender_ns: Some(sender), message } = item {
                                first_sender.get_or_insert(sender);
                                if after_warm_up(first_sender, sender) {
                                    raw.push(arrival - sender);
                                }
                                // A full buffer hands its oldest message back at once.
                                buffer.push(Some(sender), arrival, message, |p| {
                                    delivered += 1;
                                    let sender = p.sender_ns.unwrap();
                                    if after_warm_up(first_sender, sender) {
                                        played.push(arrival - sender);
                                    }
                                });
                            }
                        });
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
        } else if let Some(due) = due {
            // The stream ended: play out the rest on time.
            thread::sleep(Duration::from_nanos(due.saturating_sub(monotonic_ns())));
        }
        let now = monotonic_ns();
        buffer.pop_due(now, |p| {
            delivered += 1;
            let sender = p.sender_ns.unwrap();
            if let Some(first) = first_sender {
                let segment = ((sender - first) / 2_000_000_000) as usize;
                let last = segments.len() - 1;
                segments[segment.min(last)].push(now - sender);
            }
            if after_warm_up(first_sender, sender) {
                played.push(now - sender);
            }
        });
    }
    sending.join().unwrap();
    assert_eq!(delivered, count, "messages lost or duplicated");
    assert_eq!(decoder.stats(), Default::default(), "the stream was damaged");
    let stats = buffer.stats();
    let proxy_held = proxy.stats().held_ns;
    let segment_medians = segments.iter_mut().filter(|s| !s.is_empty()).map(|s| percentile(s, 0.5)).collect();
    Run {
        raw,
        played,
        segment_medians,
        proxy: proxy_held,
        delay_ns: stats.delay_ns,
        late: stats.late,
        jitter_p999_ns: stats.jitter_p999_ns,
    }
}

fn row(label: &str, samples: &mut [u64], proxy_p999: u64, extra: &str) -> bool {
    let ms = |ns: u64| ns as f64 / 1e6;
    let (p50, p999) = (percentile(samples, 0.5), percentile(samples, 0.999));
    let meets = p999 - p50 <= 1_000_000 && p50 <= proxy_p999 + 2_000_000;
    println!(
        "  {label:<22} {:>8} {:>9.3} {:>9.3} {:>11.3}   {}{extra}",
        samples.len(),
        ms(p50),
        ms(p999),
        ms(p999 - p50),
        if meets { "meets target" } else { "misses target" },
    );
    meets
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds = match args.as_slice() {
        [] => 20,
        [flag, n] if flag == "--seconds" => n.parse().ok().filter(|&n: &u64| n > WARM_UP_S).unwrap_or_else(|| {
            eprintln!("--seconds wants a whole number above {WARM_UP_S}");
            std::process::exit(2)
        }),
        _ => {
            eprintln!("usage: playout_latency [--seconds N]");
            std::process::exit(2)
        }
    };
    println!("1 kHz stamped stream through the jitter proxy, {seconds} s per run, first {WARM_UP_S} s left out");
    println!("  target: with the buffer p99.9 - p50 <= 1 ms and p50 <= the proxy's p99.9 + 2 ms");
    let mut all_buffered_meet = true;
    for (i, link) in ["20±10ms", "5±3ms"].into_iter().enumerate() {
        let link: DelayDistribution = link.parse().unwrap();
        let mut adaptive = run(link, DelayMode::adaptive(), seconds, 100 + i as u64);
        let fixed_delay = adaptive.delay_ns.div_ceil(500_000) * 500_000;
        let mut fixed = run(link, DelayMode::fixed(fixed_delay), seconds, 200 + i as u64);
        let proxy_p999 = percentile(&mut adaptive.proxy, 0.999);
        println!(
            "\nlink {link} (proxy held: p50 {:.3} ms, p99.9 {:.3} ms)",
            percentile(&mut adaptive.proxy, 0.5) as f64 / 1e6,
            proxy_p999 as f64 / 1e6
        );
        println!("  {:<22} {:>8} {:>9} {:>9} {:>11}", "ms", "n", "p50", "p99.9", "p99.9-p50");
        row("no buffer", &mut adaptive.raw, proxy_p999, "");
        let note = |r: &Run| {
            format!(
                " (delay {:.2} ms, late {}, jitter p99.9 {:.2} ms)",
                r.delay_ns as f64 / 1e6,
                r.late,
                r.jitter_p999_ns.unwrap_or(0) as f64 / 1e6
            )
        };
        let extra = note(&adaptive);
        all_buffered_meet &= row("buffer, auto", &mut adaptive.played, proxy_p999, &extra);
        let medians =
            |r: &Run| r.segment_medians.iter().map(|m| format!("{:.1}", *m as f64 / 1e6)).collect::<Vec<_>>().join(" ");
        println!("  medians per 2 s (ms), auto:  {}", medians(&adaptive));
        println!("  medians per 2 s (ms), fixed: {}", medians(&fixed));
        let extra = note(&fixed);
        let fixed_proxy_p999 = percentile(&mut fixed.proxy, 0.999);
        all_buffered_meet &= row(
            &format!("buffer, fixed {:.1} ms", fixed_delay as f64 / 1e6),
            &mut fixed.played,
            fixed_proxy_p999,
            &extra,
        );
    }
    if !all_buffered_meet {
        println!("\nsome buffered rows miss the target");
        std::process::exit(1);
    }
}
