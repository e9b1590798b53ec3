//! The jitter buffer at the C boundary: the mode enum the two setters take
//! (`midisock_connect_options_set_jitter_buffer`, `midisock_server_config_set_jitter_buffer`),
//! the core's one text form for hosts that take text (`midisock_jitter_buffer_parse`), the
//! stats structs, and a received message's times. Only translation: the buffer itself is the
//! core's (`midisock::timing`).

use crate::boundary::{ffi_boundary, try_out, try_str};
use crate::errors::Failure;
use crate::result::midisock_result;
use midisock_core::timing::{DelayMode, PlayoutStats, MAX_FIXED_DELAY_MS};
use midisock_core::Received;
use std::ffi::c_char;
use std::net::SocketAddr;

/// Whether and how received messages are played out through a jitter buffer
/// (`midisock_connect_options_set_jitter_buffer`, `midisock_server_config_set_jitter_buffer`).
///
/// With a buffer on, this side asks its peer for sender timestamps (a hello that mido peers
/// ignore); a midisock peer then stamps what it sends, and each stamped message is delivered at
/// its sender time + the estimated clock offset + a delay, in sender order, so network jitter
/// becomes a fixed latency. Unstamped messages (mido peers) are delivered on arrival, as without
/// a buffer. Values are explicit and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum midisock_jitter_mode {
    /// No buffer: messages are delivered when they arrive (the default). `delay_us` must be 0.
    Off = 0,
    /// A fixed delay of `delay_us` microseconds (0 to `MIDISOCK_JITTER_MAX_DELAY_US`) on top of
    /// the link's smallest recent delay.
    Fixed = 1,
    /// The smallest delay that keeps all but 0.1 % of messages on time over the last 5–10 s
    /// (1 ms to 1 s; 20 ms until there is data). `delay_us` must be 0.
    Auto = 2,
}

/// The longest fixed delay `MIDISOCK_JITTER_MODE_FIXED` takes, in microseconds (10 s), the same limit
/// as the text form's 10000 ms.
pub const MIDISOCK_JITTER_MAX_DELAY_US: u64 = 10_000_000;

// The text form's limit, in microseconds, must be the one above.
const _: () = assert!(MAX_FIXED_DELAY_MS as u64 * 1_000 == MIDISOCK_JITTER_MAX_DELAY_US);

/// The core's setting for a mode and delay C passed: `None` for off, an error naming what is
/// wrong for a value C made up.
pub(crate) fn delay_mode(mode: u32, delay_us: u64) -> Result<Option<DelayMode>, Failure> {
    let invalid = |detail: String| Failure::new(midisock_result::InvalidArgument, detail);
    match mode {
        m if m == midisock_jitter_mode::Off as u32 || m == midisock_jitter_mode::Auto as u32 => {
            if delay_us != 0 {
                return Err(invalid(format!(
                    "delay_us must be 0 with MIDISOCK_JITTER_MODE_OFF and MIDISOCK_JITTER_MODE_AUTO, got {delay_us}"
                )));
            }
            Ok((m == midisock_jitter_mode::Auto as u32).then(DelayMode::adaptive))
        }
        m if m == midisock_jitter_mode::Fixed as u32 => {
            if delay_us > MIDISOCK_JITTER_MAX_DELAY_US {
                return Err(invalid(format!(
                    "a fixed jitter buffer delay is 0 to {MIDISOCK_JITTER_MAX_DELAY_US} µs, got {delay_us}"
                )));
            }
            Ok(Some(DelayMode::fixed(delay_us * 1_000)))
        }
        other => Err(invalid(format!(
            "unknown jitter buffer mode {other}: use MIDISOCK_JITTER_MODE_OFF (0), _FIXED (1) or _AUTO (2)"
        ))),
    }
}

/// Reads a jitter buffer setting written as text, the one form every midisock front end takes
/// (the command line's `--jitter-buffer`, Pd's `jitter_buffer` message): `"auto"` (any case),
/// or a delay in milliseconds from 0 to 10000 written with digits and at most one point
/// (`"15"`, `"12.5"`). Writes the mode and the delay in microseconds (0 for auto, rounded to
/// the microsecond) for `midisock_connect_options_set_jitter_buffer` /
/// `midisock_server_config_set_jitter_buffer`. Turning the buffer off has no text: pass
/// `MIDISOCK_JITTER_MODE_OFF` to the setter.
///
/// Never blocks. Thread: any.
///
/// Results: `MIDISOCK_RESULT_INVALID_ARGUMENT` (anything else; the last error message names the
/// accepted forms; nothing written), `MIDISOCK_RESULT_INVALID_UTF8`.
///
/// # Safety
/// `text` is a NUL-terminated string; `mode_out` and `delay_us_out` are valid for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_jitter_buffer_parse(
    text: *const c_char,
    mode_out: *mut u32,
    delay_us_out: *mut u64,
) -> midisock_result {
    ffi_boundary!("midisock_jitter_buffer_parse", {
        // SAFETY: the caller guarantees `text` is a NUL-terminated string.
        let text = unsafe { try_str(text, "text")? };
        // SAFETY: the caller guarantees both out-pointers are valid for a write.
        let (mode_out, delay_us_out) =
            unsafe { (try_out(mode_out, "mode_out")?, try_out(delay_us_out, "delay_us_out")?) };
        let mode: DelayMode =
            text.parse().map_err(|e| Failure::new(midisock_result::InvalidArgument, format!("{e}")))?;
        let (mode, delay_us) = match mode {
            // At most 10^10 ns (the text form's limit), so the rounding cannot overflow.
            DelayMode::Fixed { delay_ns } => (midisock_jitter_mode::Fixed, (delay_ns + 500) / 1_000),
            DelayMode::Adaptive { .. } => (midisock_jitter_mode::Auto, 0),
        };
        mode_out.write(mode as u32);
        delay_us_out.write(delay_us);
        Ok(())
    })
}

/// A jitter buffer's state (`midisock_port_playout_stats`, `midisock_server_playout_stats`).
/// Times are `CLOCK_MONOTONIC` nanoseconds; counters count from the connection's start.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct midisock_playout_stats {
    /// 1 when `offset_ns` is known (after the first stamped message), else 0.
    pub has_offset: u32,
    /// 1 when `jitter_p50_ns` and `jitter_p999_ns` are known (after the first stamped message
    /// of the last 5–10 s), else 0.
    pub has_jitter: u32,
    /// The estimated receiver clock − sender clock, plus the link's smallest recent delay: a
    /// message is due at its sender time + this + `delay_ns`. 0 when not known.
    pub offset_ns: i64,
    /// Network jitter over the last 5–10 s: the median and the 99.9th percentile of each
    /// arrival's delay above the smallest. 0 when not known.
    pub jitter_p50_ns: u64,
    pub jitter_p999_ns: u64,
    /// The delay in force (fixed, or the one the adaptive mode chose).
    pub delay_ns: u64,
    /// Messages waiting for their time now, and note-offs held so late notes keep their length.
    pub queued: u64,
    pub held_note_offs: u64,
    /// Messages that went into the buffer, and came out of it.
    pub pushed: u64,
    pub delivered: u64,
    /// Messages that arrived after their time (delivered at once).
    pub late: u64,
    /// Note-ons more than 200 ms late dropped as stale, and the note-offs dropped with them.
    pub stale_notes_dropped: u64,
    pub stale_note_offs_dropped: u64,
    /// Messages delivered before their time because the buffer was full.
    pub delivered_early_full: u64,
    /// Times the estimate restarted after the link's delay went up for good.
    pub restarts: u64,
}

impl From<PlayoutStats> for midisock_playout_stats {
    fn from(stats: PlayoutStats) -> midisock_playout_stats {
        // Destructured, so a field the core adds is a compile error here, not a silent gap.
        let PlayoutStats {
            offset_ns,
            jitter_p50_ns,
            jitter_p999_ns,
            delay_ns,
            queued,
            held_note_offs,
            pushed,
            delivered,
            late,
            stale_notes_dropped,
            stale_note_offs_dropped,
            delivered_early_full,
            restarts,
        } = stats;
        let has_jitter = jitter_p50_ns.is_some() && jitter_p999_ns.is_some();
        midisock_playout_stats {
            has_offset: u32::from(offset_ns.is_some()),
            has_jitter: u32::from(has_jitter),
            offset_ns: offset_ns.unwrap_or(0),
            jitter_p50_ns: if has_jitter { jitter_p50_ns.unwrap_or(0) } else { 0 },
            jitter_p999_ns: if has_jitter { jitter_p999_ns.unwrap_or(0) } else { 0 },
            delay_ns,
            queued: queued as u64,
            held_note_offs: held_note_offs as u64,
            pushed,
            delivered,
            late,
            stale_notes_dropped,
            stale_note_offs_dropped,
            delivered_early_full,
            restarts,
        }
    }
}

/// Room for a client's address as text in `midisock_client_playout_stats.peer`, NUL included
/// (the longest, an IPv6 address with a scope and a port, takes 64).
pub const MIDISOCK_PEER_TEXT_LEN: usize = 72;

/// One client's jitter buffer (`midisock_server_playout_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct midisock_client_playout_stats {
    /// The client's address, `"ip:port"` or `"[v6]:port"`, NUL-terminated.
    pub peer: [c_char; MIDISOCK_PEER_TEXT_LEN],
    pub stats: midisock_playout_stats,
}

impl midisock_client_playout_stats {
    pub(crate) fn new(peer: SocketAddr, stats: PlayoutStats) -> midisock_client_playout_stats {
        let mut text = [0 as c_char; MIDISOCK_PEER_TEXT_LEN];
        let peer = peer.to_string();
        // Always fits (see MIDISOCK_PEER_TEXT_LEN); cut at a byte boundary otherwise, NUL kept.
        for (slot, byte) in text.iter_mut().zip(peer.bytes().take(MIDISOCK_PEER_TEXT_LEN - 1)) {
            *slot = byte as c_char;
        }
        midisock_client_playout_stats { peer: text, stats: stats.into() }
    }
}

/// A received message's times (`midisock_port_receive_message`,
/// `midisock_server_receive_message`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct midisock_received_info {
    /// `CLOCK_MONOTONIC` ns when the message was delivered: when it was read, or, through a
    /// jitter buffer, its played-out time.
    pub timestamp_ns: u64,
    /// The sender's own `CLOCK_MONOTONIC` when it sent the message (ns, microsecond resolution;
    /// another machine's clock: compare only with other `sender_ns` of the same peer). 0 when
    /// `has_sender_ns` is 0.
    pub sender_ns: u64,
    /// 1 when the sender stamped the message (a midisock peer asked for stamps by a jitter
    /// buffer on this side), 0 for everything else (always from mido peers).
    pub has_sender_ns: u32,
}

impl From<&Received> for midisock_received_info {
    fn from(received: &Received) -> midisock_received_info {
        midisock_received_info {
            timestamp_ns: received.timestamp_ns,
            sender_ns: received.sender_ns.unwrap_or(0),
            has_sender_ns: u32::from(received.sender_ns.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_translate_and_bad_values_are_refused() {
        assert_eq!(delay_mode(0, 0).unwrap(), None);
        assert_eq!(delay_mode(1, 15_000).unwrap(), Some(DelayMode::fixed(15_000_000)));
        assert_eq!(delay_mode(1, 0).unwrap(), Some(DelayMode::fixed(0)));
        assert_eq!(delay_mode(1, MIDISOCK_JITTER_MAX_DELAY_US).unwrap(), Some(DelayMode::fixed(10_000_000_000)));
        assert_eq!(delay_mode(2, 0).unwrap(), Some(DelayMode::adaptive()));
        for (mode, delay) in
            [(0, 1), (2, 5), (1, MIDISOCK_JITTER_MAX_DELAY_US + 1), (1, u64::MAX), (3, 0), (u32::MAX, 0)]
        {
            let failure = delay_mode(mode, delay).unwrap_err();
            assert_eq!(failure.code, midisock_result::InvalidArgument, "{mode} {delay}");
        }
    }

    #[test]
    fn stats_keep_every_field() {
        let stats = PlayoutStats {
            offset_ns: Some(-5),
            jitter_p50_ns: Some(1),
            jitter_p999_ns: Some(2),
            delay_ns: 3,
            queued: 4,
            held_note_offs: 5,
            pushed: 6,
            delivered: 7,
            late: 8,
            stale_notes_dropped: 9,
            stale_note_offs_dropped: 10,
            delivered_early_full: 11,
            restarts: 12,
        };
        let c = midisock_playout_stats::from(stats);
        assert_eq!((c.has_offset, c.has_jitter, c.offset_ns, c.jitter_p50_ns, c.jitter_p999_ns), (1, 1, -5, 1, 2));
        assert_eq!((c.delay_ns, c.queued, c.held_note_offs, c.pushed, c.delivered, c.late), (3, 4, 5, 6, 7, 8));
        assert_eq!(
            (c.stale_notes_dropped, c.stale_note_offs_dropped, c.delivered_early_full, c.restarts),
            (9, 10, 11, 12)
        );
        let empty = midisock_playout_stats::from(PlayoutStats::default());
        assert_eq!((empty.has_offset, empty.has_jitter), (0, 0));
    }

    #[test]
    fn a_long_peer_address_fits() {
        let peer: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295]:65535".parse().unwrap();
        let entry = midisock_client_playout_stats::new(peer, PlayoutStats::default());
        let len = entry.peer.iter().position(|&c| c == 0).expect("NUL-terminated");
        assert_eq!(len, peer.to_string().len());
    }
}
