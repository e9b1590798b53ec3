//! [`Inbox`]: received messages waiting for `receive()`, bounded by the memory they take.
//!
//! The bound is memory, not wire bytes: a one-byte clock costs a whole [`Received`] slot
//! (32 bytes) once parsed, so 16 MiB of clocks on the wire would be 512 MiB in a queue counted in
//! wire bytes. Here every slot the queue has allocated counts, plus the heap payload of each sysex
//! it holds. The event loop asks [`Inbox::readable_bytes`] before each socket read, so that even if
//! every byte read became a message, the queue would stay within its bound; the queue grows by
//! doubling but never past the bound, and gives its memory back when the program has read
//! everything.

use crate::message::{Message, Received};
use std::collections::VecDeque;

/// What one queued message costs besides a sysex payload.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Received>();
/// Capacity (slots) kept when the queue empties; a larger allocation is given back. Small enough
/// to be negligible (32 KiB), large enough that a steady stream the program keeps up with never
/// reallocates.
const KEPT_SLOTS: usize = 1024;

#[derive(Default)]
pub(crate) struct Inbox {
    queue: VecDeque<Received>,
    /// Heap bytes (capacity) of the sysex payloads in `queue`.
    payload_bytes: usize,
}

impl Inbox {
    /// Memory the queue holds now: every allocated slot and every sysex payload.
    pub(crate) fn memory(&self) -> usize {
        self.queue.capacity() * SLOT_BYTES + self.payload_bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many bytes the event loop may read from a socket now, `max` being the bound: enough
    /// that every byte could become a message in a free or affordable slot. 0 means the inbox is
    /// full. An empty inbox always takes at least one byte, so a bound below one slot still
    /// delivers, one message at a time.
    pub(crate) fn readable_bytes(&self, max: usize, chunk: usize) -> usize {
        let free_slots = self.queue.capacity() - self.queue.len();
        let affordable = max.saturating_sub(self.memory()) / SLOT_BYTES;
        let room = (free_slots + affordable).min(chunk);
        if self.queue.is_empty() {
            room.max(1)
        } else {
            room
        }
    }

    /// Appends `messages` (left empty, capacity kept), growing the queue by doubling but never past
    /// what `max` affords (or past what the messages need, when the caller read on an empty inbox).
    pub(crate) fn push_all(&mut self, messages: &mut Vec<Message>, timestamp_ns: u64, max: usize) {
        let needed = self.queue.len() + messages.len();
        let capacity = self.queue.capacity();
        if needed > capacity {
            let affordable = capacity + max.saturating_sub(self.memory()) / SLOT_BYTES;
            let target = (capacity * 2).max(KEPT_SLOTS).min(affordable).max(needed);
            self.queue.reserve_exact(target - self.queue.len());
        }
        for message in messages.drain(..) {
            self.payload_bytes += payload_bytes(&message);
            self.queue.push_back(Received { message, timestamp_ns });
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Received> {
        let received = self.queue.pop_front()?;
        self.payload_bytes -= payload_bytes(&received.message);
        if self.queue.is_empty() {
            self.give_back();
        }
        Some(received)
    }

    /// Moves every message into `out`; returns how many.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Received>) -> usize {
        let count = self.queue.len();
        out.extend(self.queue.drain(..));
        self.payload_bytes = 0;
        self.give_back();
        count
    }

    /// The queue is empty: keep a small allocation, free a large one.
    fn give_back(&mut self) {
        if self.queue.capacity() > KEPT_SLOTS {
            self.queue = VecDeque::with_capacity(KEPT_SLOTS);
            super::memory::return_free_memory();
        }
    }
}

fn payload_bytes(message: &Message) -> usize {
    match message {
        Message::SysEx { data } => data.capacity(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clocks(n: usize) -> Vec<Message> {
        vec![Message::Clock; n]
    }

    #[test]
    fn reads_are_sized_so_the_bound_holds_even_if_every_byte_is_a_message() {
        let max = 64 * 1024;
        let mut inbox = Inbox::default();
        let mut total = 0;
        loop {
            let n = inbox.readable_bytes(max, 64 * 1024);
            if n == 0 {
                break;
            }
            inbox.push_all(&mut clocks(n), 0, max);
            total += n;
            assert!(inbox.memory() <= max, "{} > {max}", inbox.memory());
        }
        assert_eq!(total, max / SLOT_BYTES);
        let mut out = Vec::new();
        assert_eq!(inbox.drain_into(&mut out), total);
        assert!(inbox.memory() <= KEPT_SLOTS * SLOT_BYTES);
    }

    #[test]
    fn an_empty_inbox_always_takes_a_byte_and_sysex_payloads_count() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.readable_bytes(0, 1024), 1);
        inbox.push_all(&mut vec![Message::SysEx { data: vec![1; 5000] }], 0, 0);
        assert!(inbox.memory() >= 5000 + SLOT_BYTES);
        assert_eq!(inbox.readable_bytes(0, 1024), 0);
        assert!(matches!(inbox.pop().map(|r| r.message), Some(Message::SysEx { .. })));
        assert_eq!(inbox.payload_bytes, 0);
    }
}
