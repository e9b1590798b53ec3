//! Messages across the boundary: raw MIDI bytes in, raw MIDI bytes (plus a timestamp) out, and
//! conversion to and from mido's text format.

use crate::boundary::{
    copy_text, ffi_boundary, try_bytes, try_bytes_mut, try_out, try_str, try_text_buf, Failure, Out, Outcome,
};
use crate::result::midisock_result;
use midisock_core::{Message, Parser, ParserStats, Received};
use std::collections::VecDeque;
use std::ffi::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The messages a send call was given: nearly always one, which needs no allocation.
pub(crate) enum Outgoing {
    One(Message),
    Many(Vec<Message>),
}

/// Parses the bytes given to a send call: one or more whole messages, nothing else.
pub(crate) fn decode_outgoing(bytes: &[u8]) -> Result<Outgoing, Failure> {
    // The sysex limit is the input size: whatever sysex the caller wrote is kept whole.
    let mut parser = Parser::with_max_sysex_len(bytes.len());
    let mut first = None;
    let mut rest = Vec::new();
    parser.feed(bytes, |message| {
        if first.is_none() {
            first = Some(message);
        } else {
            rest.push(message);
        }
    });
    let invalid = |why: &str| Failure::new(midisock_result::InvalidBytes, why.to_owned());
    if parser.is_mid_message() {
        return Err(invalid("the bytes end inside a message"));
    }
    if parser.stats() != ParserStats::default() {
        return Err(invalid("the bytes hold stray data bytes, undefined status bytes or cut-off messages"));
    }
    match first {
        None => Err(invalid("the bytes hold no complete MIDI message")),
        Some(one) if rest.is_empty() => Ok(Outgoing::One(one)),
        Some(one) => {
            rest.insert(0, one);
            Ok(Outgoing::Many(rest))
        }
    }
}

/// Parses exactly one message (for `midisock_message_to_text`).
fn decode_one(bytes: &[u8]) -> Result<Message, Failure> {
    Message::from_bytes(bytes).map_err(|e| Failure::new(midisock_result::InvalidBytes, e.to_string()))
}

/// Where a receive call writes a message.
pub(crate) struct ReceiveOut<'a> {
    pub buf: &'a mut [u8],
    pub len_out: Out<'a, usize>,
    pub timestamp_out: Out<'a, u64>,
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
    fn lock(&self) -> MutexGuard<'_, VecDeque<Received>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    pub fn clear(&self) {
        let mut kept = self.lock();
        kept.clear();
        self.count.store(0, Ordering::Release);
    }

    fn pop(&self) -> Option<Received> {
        if self.is_empty() {
            return None;
        }
        let mut kept = self.lock();
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
            let mut kept = self.lock();
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
        out.timestamp_out.write(received.timestamp_ns);
        Ok(())
    }
}

/// Parses one line of mido text (`"note_on channel=0 note=60 velocity=64 time=0"`; omitted
/// fields take mido's defaults) and writes the message's MIDI bytes into `buf[0..len]`;
/// `*len_out` is the number of bytes written.
///
/// Results: `MIDISOCK_RESULT_MESSAGE_TEXT` for text mido would not accept (or a value out of
/// range); `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the size needed in `*len_out` (3 bytes fit any
/// message but sysex); `MIDISOCK_RESULT_INVALID_UTF8`.
///
/// Thread: any. Never blocks. Allocates only while parsing.
///
/// # Safety
/// `text` is a NUL-terminated string; `buf` is valid for writes of `len` bytes; `len_out` is
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_message_from_text(
    text: *const c_char,
    buf: *mut u8,
    len: usize,
    len_out: *mut usize,
) -> midisock_result {
    ffi_boundary!("midisock_message_from_text", {
        // SAFETY: the caller guarantees `text` is a NUL-terminated string.
        let text = unsafe { try_str(text, "text")? };
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
        let buf = unsafe { try_bytes_mut(buf, len, "buf")? };
        // SAFETY: the caller guarantees `len_out` is valid for a write.
        let len_out = unsafe { try_out(len_out, "len_out")? };
        let message: Message = text.parse().map_err(|e| Failure::from(midisock_core::Error::MessageText(e)))?;
        match message.encode(buf) {
            Ok(written) => {
                len_out.write(written);
                Ok(())
            }
            Err(too_small) => {
                len_out.write(too_small.needed);
                Err(Failure::new(midisock_result::BufferTooSmall, too_small.to_string()))
            }
        }
    })
}

/// Renders the message in `bytes[0..len]` (exactly one whole message) as mido's `str(msg)` text,
/// e.g. `"note_on channel=0 note=60 velocity=64 time=0"`, NUL-terminated, into `buf[0..buf_len]`;
/// `*text_len_out` is the text length without the NUL.
///
/// Results: `MIDISOCK_RESULT_INVALID_BYTES` if `bytes` is not exactly one message;
/// `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the buffer size needed (including the NUL) in
/// `*text_len_out`. 64 bytes fit any message but sysex.
///
/// Thread: any. Never blocks.
///
/// # Safety
/// `bytes` is valid for reads of `len` bytes; `buf` for writes of `buf_len` bytes;
/// `text_len_out` for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_message_to_text(
    bytes: *const u8,
    len: usize,
    buf: *mut c_char,
    buf_len: usize,
    text_len_out: *mut usize,
) -> midisock_result {
    ffi_boundary!("midisock_message_to_text", {
        // SAFETY: the caller guarantees `bytes` is valid for `len` bytes.
        let bytes = unsafe { try_bytes(bytes, len, "bytes")? };
        // SAFETY: the caller guarantees `buf` is valid for `buf_len` bytes.
        let buf = unsafe { try_text_buf(buf, buf_len, "buf")? };
        // SAFETY: the caller guarantees `text_len_out` is valid for a write.
        let text_len_out = unsafe { try_out(text_len_out, "text_len_out")? };
        let text = decode_one(bytes)?.to_string();
        write_text(&text, buf, text_len_out)
    })
}

/// Writes `text` NUL-terminated into `buf`, or `BUFFER_TOO_SMALL` with the size needed.
pub(crate) fn write_text(text: &str, buf: &mut [u8], len_out: Out<'_, usize>) -> Outcome {
    match copy_text(text, buf) {
        Ok(len) => {
            len_out.write(len);
            Ok(())
        }
        Err(needed) => {
            let have = buf.len();
            len_out.write(needed);
            Err(Failure::new(
                midisock_result::BufferTooSmall,
                format!("the text needs {needed} bytes with its NUL, the buffer has {have}"),
            ))
        }
    }
}
