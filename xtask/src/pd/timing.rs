//! `cargo xtask pd-test timing`: what the object costs and how close to their time it delivers
//! played-out messages. Reported, not asserted (the numbers depend on the machine and its load).
//!
//! A headless Pd runs the harness with [midisock] as a client with `jitter_buffer 20` (fixed
//! 20 ms), its raw outlet wired back to its inlet, so every message it puts out is sent straight
//! back. This program is the server: it answers the object's request for stamps and sends a
//! stamped note every millisecond for `STREAM`; each echo's arrival minus the note's send time
//! is the note's path through the buffer and the patch. With a perfect playout every note would
//! take the same time (the link's transit + 20 ms); the spread above the fastest is what the
//! object's delivery adds (plus the echo's way back, on loopback). CPU: Pd's user + system time
//! from /proc over `IDLE` connected with nothing sent, then over the stream.

use super::harness::Pd;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// How long each CPU figure is taken over.
const IDLE: Duration = Duration::from_secs(10);
const STREAM: Duration = Duration::from_secs(10);
/// Leaves the buffer's first estimate out (it settles within about 2 s).
const WARM_UP: Duration = Duration::from_secs(2);
const DELAY_MS: u32 = 20;

/// The request a receiving midisock peer writes first, and the answer that starts stamps.
const REQUEST: [u8; 11] = [0xF4, 0x00, b's', b't', b'a', b'm', b'p', b's', b'?', 0x01, 0xF7];
const ANSWER: [u8; 11] = [0xF4, 0x00, b's', b't', b'a', b'm', b'p', b's', b'!', 0x01, 0xF7];

/// Runs the measurement against a Pd made by `start` and returns the report's lines.
pub fn report(start: impl Fn() -> Result<Pd, String>) -> Result<String, String> {
    let mut pd = start()?;
    let pid = pd.pid();
    pd.send("quiet 1")?; // no printing per message: that would be most of the CPU measured
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    pd.send(&format!("jitter_buffer {DELAY_MS}"))?;
    pd.send(&format!("connect 127.0.0.1:{port}"))?;
    let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
    pd.out.expect(&format!("status: connected 127.0.0.1:{port}"))?;
    pd.send("patch connect 1 0 1 0")?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(super::harness::WAIT)).map_err(|e| e.to_string())?;
    let mut request = [0u8; REQUEST.len()];
    stream.read_exact(&mut request).map_err(|e| format!("reading the request for stamps: {e}"))?;
    if request != REQUEST {
        return Err(format!("expected the request for stamps first, got {request:02X?}"));
    }

    let idle_cpu = cpu_percent(pid, IDLE)?;

    // The stream: one writer thread at 1 kHz, this thread reading the echoes.
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let writer = {
        let mut stream = stream.try_clone().map_err(|e| e.to_string())?;
        let sent = std::sync::Arc::clone(&sent);
        std::thread::spawn(move || -> Result<(), String> {
            stream.write_all(&ANSWER).map_err(|e| e.to_string())?;
            let epoch = Instant::now();
            let count = STREAM.as_millis() as usize;
            for i in 0..count {
                let due = epoch + Duration::from_millis(i as u64);
                while Instant::now() < due {
                    std::thread::sleep(due - Instant::now());
                }
                let now = Instant::now();
                // Any monotonic microsecond clock will do: the receiver estimates the offset.
                let stamp = 1_000_000 + now.duration_since(epoch).as_micros() as u64;
                let mut bytes = vec![0xF5];
                bytes.extend((0..8).map(|k| ((stamp >> (7 * k)) & 0x7F) as u8));
                bytes.extend(note(i));
                sent.lock().unwrap().push(now);
                stream.write_all(&bytes).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    };
    let before = cpu_ticks(pid)?;
    let started = Instant::now();
    let count = STREAM.as_millis() as usize;
    let mut latencies = Vec::with_capacity(count);
    let mut echo = [0u8; 3];
    for i in 0..count {
        stream.read_exact(&mut echo).map_err(|e| format!("reading echo {i}: {e}"))?;
        let arrived = Instant::now();
        if echo != note(i) {
            return Err(format!("echo {i}: expected {:02X?}, got {echo:02X?}", note(i)));
        }
        let sent_at = sent.lock().unwrap()[i];
        latencies.push((sent_at.duration_since(started), arrived.duration_since(sent_at)));
    }
    let stream_cpu = percent(cpu_ticks(pid)? - before, started.elapsed());
    writer.join().map_err(|_| "the writer panicked".to_owned())??;
    pd.send("disconnect")?;
    pd.out.expect("status: disconnected")?;
    pd.quit()?;

    let mut settled: Vec<f64> =
        latencies.iter().filter(|(at, _)| *at >= WARM_UP).map(|(_, took)| took.as_secs_f64() * 1e3).collect();
    settled.sort_by(f64::total_cmp);
    let at = |p: f64| settled[((settled.len() - 1) as f64 * p).round() as usize];
    let fastest = settled[0];
    Ok(format!(
        "Pd CPU, connected with jitter_buffer {DELAY_MS}: idle {idle_cpu:.2} % over {} s; 1 kHz stream {stream_cpu:.1} % over {} s\n\
         1 kHz stamped stream -> [midisock] (jitter_buffer {DELAY_MS}) -> echoed back, {} notes after the first {} s:\n\
         \x20 path p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; above the fastest ({fastest:.2} ms): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms\n",
        IDLE.as_secs(),
        STREAM.as_secs(),
        settled.len(),
        WARM_UP.as_secs(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0),
        at(0.5) - fastest,
        at(0.99) - fastest,
        at(0.999) - fastest,
    ))
}

/// Note `i` of the stream: numbered in its key and velocity, so a lost or repeated echo shows.
fn note(i: usize) -> [u8; 3] {
    [0x90, (i % 128) as u8, 1 + ((i / 128) % 127) as u8]
}

/// Pd's user + system CPU time in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("reading Pd's stat: {e}"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').ok_or("Pd's stat has no command name")?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12 (from 0) after the name.
    let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok()).ok_or("Pd's stat is short");
    Ok(field(11)? + field(12)?)
}

fn percent(ticks: u64, over: Duration) -> f64 {
    ticks as f64 / 100.0 / over.as_secs_f64() * 100.0
}

fn cpu_percent(pid: u32, over: Duration) -> Result<f64, String> {
    let before = cpu_ticks(pid)?;
    let start = Instant::now();
    std::thread::sleep(over);
    Ok(percent(cpu_ticks(pid)? - before, start.elapsed()))
}
