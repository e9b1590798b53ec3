//! The receive path behind all six receive exports (`midisock_port_receive`,
//! `_try_receive`, `_receive_timeout` and the same three for a server): how long to wait, the
//! message kept after `MIDISOCK_RESULT_BUFFER_TOO_SMALL`, and writing a message into the caller's
//! buffer. The port and server modules only say where messages come from.

use crate::boundary::{try_bytes_mut, try_out, Out, Outcome};
use crate::errors::Failure;
use crate::jitter::midisock_received_info;
use crate::link::Link;
use crate::result::midisock_result;
use midisock_core::{Error, PortServer, Received};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long a receive call may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// `_receive`: until a message arrives or the handle is closed.
    Forever,
    /// `_try_receive`: not at all (`MIDISOCK_RESULT_WOULD_BLOCK`).
    No,
    /// `_receive_timeout`: at most this many milliseconds (`MIDISOCK_RESULT_TIMED_OUT`).
    Millis(u64),
}

/// Where messages come from: a port's connection or a server's inbox.
pub(crate) trait Source {
    fn receive_stamped(&self) -> Result<Received, Error>;
    fn try_receive_stamped(&self) -> Result<Option<Received>, Error>;
    fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>, Error>;
}

impl Source for Link {
    fn receive_stamped(&self) -> Result<Received, Error> {
        Link::receive_stamped(self)
    }
    fn try_receive_stamped(&self) -> Result<Option<Received>, Error> {
        Link::try_receive_stamped(self)
    }
    fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>, Error> {
        Link::receive_timeout_stamped(self, timeout)
    }
}

impl Source for PortServer {
    fn receive_stamped(&self) -> Result<Received, Error> {
        PortServer::receive_stamped(self)
    }
    fn try_receive_stamped(&self) -> Result<Option<Received>, Error> {
        PortServer::try_receive_stamped(self)
    }
    fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>, Error> {
        PortServer::receive_timeout_stamped(self, timeout)
    }
}

/// One receive call: a kept message first, else one from `source` within `wait`, written to
/// `out` (or kept, if it does not fit).
pub(crate) fn receive(kept: &Kept, source: &impl Source, wait: Wait, out: ReceiveOut<'_>) -> Outcome {
    kept.receive(
        || match wait {
            Wait::Forever => source.receive_stamped().map(Fetched::Message),
            Wait::No => Ok(fetched(source.try_receive_stamped()?, nothing_waiting)),
            Wait::Millis(ms) => {
                Ok(fetched(source.receive_timeout_stamped(Duration::from_millis(ms))?, || timed_out(ms)))
            }
        },
        out,
    )
}

/// Where a receive call writes a message.
pub(crate) struct ReceiveOut<'a> {
    pub buf: &'a mut [u8],
    pub len_out: Out<'a, usize>,
    pub times: TimesOut<'a>,
}

/// Where a receive call writes a message's times.
pub(crate) enum TimesOut<'a> {
    /// The delivery time only (`_receive`, `_try_receive`, `_receive_timeout`).
    Timestamp(Out<'a, u64>),
    /// The delivery time and the sender's (`_receive_message`).
    Info(Out<'a, midisock_received_info>),
}

impl TimesOut<'_> {
    fn write(self, received: &Received) {
        match self {
            TimesOut::Timestamp(out) => out.write(received.timestamp_ns),
            TimesOut::Info(out) => out.write(received.into()),
        }
    }
}

/// What came of asking the core for a message.
pub(crate) enum Fetched {
    Message(Received),
    /// Nothing came: the failure to report (`WOULD_BLOCK` or `TIMED_OUT`).
    Nothing(Failure),
}

/// Messages taken from the core that did not fit the caller's buffer, kept for the next receive
/// call on the same handle (oldest first).
#[derive(Debug, Default)]
pub(crate) struct Kept {
    messages: Mutex<VecDeque<Received>>,
    /// How many messages are kept; lets the common case (none) skip the lock.
    count: AtomicUsize,
}

impl Kept {
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    pub fn clear(&self) {
        let mut kept = self.messages.lock();
        kept.clear();
        self.count.store(0, Ordering::Release);
    }

    /// The delivery time of the oldest kept message: it is handed over by the next receive call.
    pub fn first_timestamp(&self) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        self.messages.lock().front().map(|received| received.timestamp_ns)
    }

    fn pop(&self) -> Option<Received> {
        if self.is_empty() {
            return None;
        }
        let mut kept = self.messages.lock();
        let popped = kept.pop_front();
        self.count.store(kept.len(), Ordering::Release);
        popped
    }

    /// Delivers a kept message if there is one, else one from `fetch`; a message that does not
    /// fit `out.buf` is kept and `BUFFER_TOO_SMALL` returned with the size it needs.
    pub fn receive(
        &self,
        fetch: impl FnOnce() -> Result<Fetched, midisock_core::Error>,
        out: ReceiveOut<'_>,
    ) -> Outcome {
        let kept = self.pop();
        let was_kept = kept.is_some();
        let received = match kept {
            Some(received) => received,
            None => match fetch()? {
                Fetched::Message(received) => received,
                Fetched::Nothing(failure) => return Err(failure),
            },
        };
        let needed = received.message.encoded_len();
        if needed > out.buf.len() {
            let buf_len = out.buf.len();
            out.len_out.write(needed);
            let mut kept = self.messages.lock();
            // A message that was kept goes back in front: it is still the oldest.
            if was_kept {
                kept.push_front(received);
            } else {
                kept.push_back(received);
            }
            self.count.store(kept.len(), Ordering::Release);
            return Err(Failure::new(
                midisock_result::BufferTooSmall,
                format!(
                    "the message needs {needed} bytes, the buffer has {buf_len}; it is kept for \
                     the next receive call"
                ),
            ));
        }
        let len = received.message.encode(out.buf).expect("the length was checked above");
        out.len_out.write(len);
        out.times.write(&received);
        Ok(())
    }
}

/// What `_next_due_ns` reports: a kept message is due now (its delivery time, already past),
/// else the core's next deadline; `MIDISOCK_NOTHING_DUE` (0) when nothing is held.
pub(crate) fn next_due(kept: &Kept, core_due: Option<u64>) -> u64 {
    match kept.first_timestamp().or(core_due) {
        // A time of 0 would read as "nothing"; 1 ns is as much in the past.
        Some(due) => due.max(1),
        None => MIDISOCK_NOTHING_DUE,
    }
}

/// What `midisock_port_next_due_ns` and `midisock_server_next_due_ns` write when no message is
/// held for a later time.
pub const MIDISOCK_NOTHING_DUE: u64 = 0;

/// The output arguments of a receive function.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes; `len_out` and `timestamp_out` are NULL or
/// valid for a write.
pub(crate) unsafe fn receive_out<'a>(
    buf: *mut u8,
    len: usize,
    len_out: *mut usize,
    timestamp_out: *mut u64,
) -> Result<ReceiveOut<'a>, Failure> {
    // SAFETY: forwarded from the caller, argument by argument.
    unsafe {
        Ok(ReceiveOut {
            buf: try_bytes_mut(buf, len, "buf")?,
            len_out: try_out(len_out, "len_out")?,
            times: TimesOut::Timestamp(try_out(timestamp_out, "timestamp_out")?),
        })
    }
}

/// The output arguments of a `_receive_message` function.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes; `len_out` and `info_out` are NULL or valid
/// for a write.
pub(crate) unsafe fn receive_message_out<'a>(
    buf: *mut u8,
    len: usize,
    len_out: *mut usize,
    info_out: *mut midisock_received_info,
) -> Result<ReceiveOut<'a>, Failure> {
    // SAFETY: forwarded from the caller, argument by argument.
    unsafe {
        Ok(ReceiveOut {
            buf: try_bytes_mut(buf, len, "buf")?,
            len_out: try_out(len_out, "len_out")?,
            times: TimesOut::Info(try_out(info_out, "info_out")?),
        })
    }
}

/// `MIDISOCK_WAIT_FOREVER` and the other `timeout_ms` of a `_receive_message` function as a
/// [`Wait`]: 0 does not wait (`MIDISOCK_RESULT_WOULD_BLOCK`), anything else waits that long
/// (`MIDISOCK_RESULT_TIMED_OUT`).
pub(crate) fn wait_for(timeout_ms: u64) -> Wait {
    match timeout_ms {
        0 => Wait::No,
        MIDISOCK_WAIT_FOREVER => Wait::Forever,
        ms => Wait::Millis(ms),
    }
}

/// The `timeout_ms` of `midisock_port_receive_message` / `midisock_server_receive_message` that
/// waits until a message comes or the handle is closed (`UINT64_MAX`).
pub const MIDISOCK_WAIT_FOREVER: u64 = u64::MAX;

/// A non-blocking or timed receive's answer: the message, or the failure for "nothing came".
pub(crate) fn fetched(received: Option<Received>, nothing: impl FnOnce() -> Failure) -> Fetched {
    match received {
        Some(received) => Fetched::Message(received),
        None => Fetched::Nothing(nothing()),
    }
}

pub(crate) fn nothing_waiting() -> Failure {
    Failure::new(midisock_result::WouldBlock, "no message waiting")
}

pub(crate) fn timed_out(timeout_ms: u64) -> Failure {
    Failure::new(midisock_result::TimedOut, format!("no message within {timeout_ms} ms"))
}
