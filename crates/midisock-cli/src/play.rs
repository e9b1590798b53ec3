//! `midisock play FILE.mid ADDR`: a Standard MIDI File sent to a server in time.
//!
//! Every message has an absolute deadline, start + its time in the file's tempo map; the player
//! sleeps until each deadline rather than for each delta, so lateness never adds up over a long
//! file. SIGINT/SIGTERM stop it with a note-off for every note it left sounding.

use crate::commands::{failure, ClientAuth, Failure, BAD_INPUT, FAILED, FINISH_TIMEOUT};
use crate::decode::MAX_SMF_BYTES;
use crate::held::Tracked;
use crate::{log, signals, smf};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

pub fn play(file: &Path, addr: &str, auth: &ClientAuth) -> Result<ExitCode, Failure> {
    let bytes = read_file(file)?;
    if !smf::looks_like_smf(&bytes) {
        return Err(Failure {
            message: format!("{} is not a Standard MIDI File (it does not start with MThd)", file.display()),
            exit_code: BAD_INPUT,
        });
    }
    let timeline =
        smf::load(&bytes).map_err(|e| Failure { message: format!("{}: {e}", file.display()), exit_code: BAD_INPUT })?;
    let port = Tracked::new(auth.connect(addr)?);
    log::info(format_args!(
        "playing {} to {}: {}, {} messages, {}",
        file.display(),
        port.inner.name(),
        timeline.summary,
        timeline.events.len(),
        smf::clock_text(timeline.length_ns)
    ));

    let player = thread::current();
    let received = signals::on_termination(move |_| player.unpark())?;

    precise_sleeps();
    let start = Instant::now();
    let mut lateness_ns: Vec<u64> = Vec::with_capacity(timeline.events.len());
    let mut rest = timeline.events.as_slice();
    let mut stopped_at = None;
    while let Some(first) = rest.first() {
        // Messages due at the same instant go out in one write.
        let same = rest.iter().take_while(|e| e.at_ns == first.at_ns).count();
        let deadline = start + Duration::from_nanos(first.at_ns);
        if !wait_until(deadline, &received) {
            stopped_at = Some(start.elapsed().as_nanos() as u64);
            break;
        }
        let late = Instant::now().saturating_duration_since(deadline);
        lateness_ns.extend(std::iter::repeat_n(late.as_nanos() as u64, same));
        let group: Vec<_> = rest[..same].iter().map(|e| e.message.clone()).collect();
        if let Err(e) = port.send_all(&group) {
            return Err(failure(FAILED)(e));
        }
        rest = &rest[same..];
    }

    // A file may end with notes still down; an interrupted one surely does.
    let released = port.release();
    if let Some(at) = stopped_at {
        port.inner.close();
        let signal = received.signal().unwrap_or(signal_hook::consts::SIGINT);
        log::info(format_args!(
            "{}: stopped at {} of {}; released {released} held notes",
            signals::name(signal),
            smf::clock_text(at),
            smf::clock_text(timeline.length_ns)
        ));
        return Ok(ExitCode::from(128 + signal as u8));
    }
    // Sends only fill the socket's buffer: a refused player learns it here.
    port.inner.finish(FINISH_TIMEOUT).map_err(failure(FAILED))?;
    log::info(format_args!("played {} messages; {}", lateness_ns.len(), lateness_text(&mut lateness_ns)));
    if released > 0 {
        log::warn(format_args!("the file left {released} notes sounding: sent note-offs for them"));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_file(file: &Path) -> Result<Vec<u8>, Failure> {
    let opened = std::fs::File::open(file)
        .map_err(|e| Failure { message: format!("cannot open {}: {e}", file.display()), exit_code: BAD_INPUT })?;
    let mut bytes = Vec::new();
    opened
        .take(MAX_SMF_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure { message: format!("cannot read {}: {e}", file.display()), exit_code: BAD_INPUT })?;
    if bytes.len() as u64 >= MAX_SMF_BYTES {
        return Err(Failure { message: format!("{} is larger than 64 MiB", file.display()), exit_code: BAD_INPUT });
    }
    Ok(bytes)
}

/// Linux wakes a sleeping thread up to its timer slack (50 µs by default) late, to batch wakeups;
/// the player's thread asks for none.
fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// Sleeps until `deadline`; false when a signal came first.
fn wait_until(deadline: Instant, received: &signals::Received) -> bool {
    loop {
        if received.signal().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        // The signal thread unparks this one, so a long pause still stops at once.
        thread::park_timeout(deadline - now);
    }
}

/// How late the messages went out against their deadlines: median, p99 and worst.
fn lateness_text(lateness_ns: &mut [u64]) -> String {
    if lateness_ns.is_empty() {
        return "nothing to time".into();
    }
    lateness_ns.sort_unstable();
    let at = |q: f64| lateness_ns[((lateness_ns.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    format!("lateness against the tempo map: median {:.0} µs, p99 {:.0} µs, max {:.0} µs", at(0.5), at(0.99), at(1.0))
}
