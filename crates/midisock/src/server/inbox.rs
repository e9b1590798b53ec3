//! [`Inbox`]: received messages waiting for `receive()`, bounded by the memory they take.
//!
//! The bound is memory, not wire bytes: a one-byte clock costs a whole [`Received`] slot
//! (48 bytes) once parsed, so 16 MiB of clocks on the wire would be 768 MiB in a queue counted in
//! wire bytes. Here every slot the queue has allocated counts, plus the heap payload of each sysex
//! it holds. The event loop asks [`Inbox::readable_bytes`] before each socket read, so that even if
//! every byte read became a message, the queue would stay within its bound.
//!
//! The queue is a chain of fixed-size blocks rather than one growing buffer: it never copies
//! itself to grow (which would briefly need the old and the new buffer, past the bound), and each
//! block it no longer needs has its pages handed back to the system before it is freed, so memory
//! returns to where it was once the program has read everything, whatever the allocator keeps.

use crate::message::{Message, Received};
use std::collections::VecDeque;

/// What one queued message costs besides a sysex payload.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Received>();
/// Messages per block: 96 KiB blocks.
const BLOCK_SLOTS: usize = 2048;
const BLOCK_BYTES: usize = BLOCK_SLOTS * SLOT_BYTES;

type Block = VecDeque<Received>;

#[derive(Default)]
pub(crate) struct Inbox {
    /// Oldest first; only the last one takes new messages. Each holds at most `BLOCK_SLOTS`.
    blocks: VecDeque<Block>,
    /// One empty block kept for the next one needed, so a queue that hovers around a block
    /// boundary does not allocate and free on every message.
    spare: Option<Block>,
    /// Heap bytes (capacity) of the sysex payloads queued.
    payload_bytes: usize,
}

/// What the next read may take: see [`Inbox::read_room`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadRoom {
    /// Up to this many bytes.
    Bytes(usize),
    /// Nothing: the program must read first (reading pauses).
    ProgramBehind,
    /// Nothing: the jitter buffers must let messages out early first.
    BuffersFull,
}

/// Blocks taken out of the queue, to be freed once the caller has released its lock.
pub(crate) struct Emptied(Vec<Block>);

impl Inbox {
    /// Memory the queue holds now: every block, the spare, and every sysex payload.
    pub(crate) fn memory(&self) -> usize {
        (self.blocks.len() + usize::from(self.spare.is_some())) * BLOCK_BYTES + self.payload_bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.iter().all(VecDeque::is_empty)
    }

    /// Free slots in the last block.
    fn free_slots(&self) -> usize {
        self.blocks.back().map_or(0, |block| BLOCK_SLOTS - block.len())
    }

    /// How many bytes the event loop may read from a socket now, `max` being the bound: enough
    /// that every byte could become a message in a free or affordable slot. 0 means the inbox is
    /// full. An empty inbox always takes at least one byte, so a bound below one block still
    /// delivers.
    pub(crate) fn readable_bytes(&self, max: usize, chunk: usize) -> usize {
        if self.is_empty() {
            return self.room(max).min(chunk).max(1);
        }
        if self.memory() >= max {
            // Sysex payloads took it to the bound: free slots are not room then.
            return 0;
        }
        self.room(max).min(chunk)
    }

    /// What the next read from a client may take when jitter buffers hold `held` bytes of
    /// messages too (see [`super::jitter_buffers`]), `max` being the bound on both together.
    ///
    /// The bound is kept the same way: a read is sized so that even if every byte became a
    /// message, held or queued here, the bound would hold. When there is no room, the verdict
    /// says who must give way:
    /// - the buffers hold more than half the bound: they let their oldest messages out early
    ///   ([`ReadRoom::BuffersFull`]); waiting for them would not make a message due any sooner,
    ///   and would let one client whose messages are due far ahead stall every client;
    /// - otherwise the program reads slower than clients send: reading pauses until it has read
    ///   (back-pressure, [`ReadRoom::ProgramBehind`]), as without jitter buffers.
    ///
    /// With `held` 0 and `may_hold` false (no jitter buffer), this is
    /// [`Inbox::readable_bytes`].
    pub(crate) fn read_room(&self, max: usize, held: usize, may_hold: bool, chunk: usize) -> ReadRoom {
        if !may_hold && held == 0 {
            return match self.readable_bytes(max, chunk) {
                0 => ReadRoom::ProgramBehind,
                n => ReadRoom::Bytes(n),
            };
        }
        let buffers_full = held > max / 2;
        let used = self.memory() + held;
        let mut n = self.room(max.saturating_sub(held)).min(chunk);
        if may_hold {
            // A message a buffer holds takes a slot of its own, not one of the inbox's free ones.
            n = n.min(max.saturating_sub(used) / SLOT_BYTES);
        }
        // Sysex payloads may have taken a non-empty inbox to the bound: free slots are not room then.
        if n > 0 && (used < max || self.is_empty()) {
            return ReadRoom::Bytes(n);
        }
        if buffers_full {
            ReadRoom::BuffersFull
        } else if self.is_empty() {
            // An empty inbox takes at least a byte, as without buffers (but not when the buffers
            // fill the bound: reading on, a byte at a time, would grow them past it).
            ReadRoom::Bytes(1)
        } else {
            ReadRoom::ProgramBehind
        }
    }

    /// Whether reading, paused because the inbox was full, should start again: once the program
    /// has read it down to half the bound (counting the `held` bytes of jitter buffers too), or
    /// read it empty. (Empty counts on its own: the blocks an empty inbox keeps for reuse can
    /// weigh more than half a small bound, and an empty inbox always takes at least one byte or
    /// makes full buffers give way, so a paused connection is never left unread.)
    pub(crate) fn may_resume_reading(&self, max: usize, held: usize) -> bool {
        self.is_empty() || self.memory() + held < max.div_ceil(2)
    }

    /// Messages that fit: free slots in the last block, the spare (counted in `memory()`
    /// already), and the blocks the bound still affords.
    fn room(&self, max: usize) -> usize {
        let blocks = max.saturating_sub(self.memory()) / BLOCK_BYTES + usize::from(self.spare.is_some());
        self.free_slots() + blocks * BLOCK_SLOTS
    }

    /// Appends received messages, each with its own timestamps (`messages` is left empty, its
    /// capacity kept), adding blocks as needed.
    pub(crate) fn push_received(&mut self, messages: &mut Vec<Received>) {
        for received in messages.drain(..) {
            self.payload_bytes += payload_bytes(&received.message);
            if self.free_slots() == 0 {
                let block = self.spare.take().unwrap_or_else(|| VecDeque::with_capacity(BLOCK_SLOTS));
                self.blocks.push_back(block);
            }
            let block = self.blocks.back_mut().expect("a block with room was just ensured");
            block.push_back(received);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Received> {
        let front = self.blocks.front_mut()?;
        let received = front.pop_front()?;
        self.payload_bytes -= payload_bytes(&received.message);
        // Done with an emptied block, unless it is the last: new messages go there.
        if front.is_empty() && self.blocks.len() > 1 {
            if let Some(block) = self.blocks.pop_front() {
                self.retire(block);
            }
        }
        Some(received)
    }

    /// Moves every message into `out`; returns how many, and the emptied blocks to drop once the
    /// caller's lock is released.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Received>) -> (usize, Emptied) {
        let before = out.len();
        let mut emptied = Vec::new();
        while let Some(mut block) = self.blocks.pop_front() {
            out.extend(block.drain(..));
            if self.spare.is_none() {
                self.spare = Some(block);
            } else {
                emptied.push(block);
            }
        }
        self.payload_bytes = 0;
        (out.len() - before, Emptied(emptied))
    }

    /// Keeps an emptied block as the spare, or gives it back.
    fn retire(&mut self, block: Block) {
        if self.spare.is_none() {
            self.spare = Some(block);
        } else {
            release(block);
        }
    }
}

impl Drop for Emptied {
    fn drop(&mut self) {
        for block in self.0.drain(..) {
            release(block);
        }
    }
}

/// Frees an empty block, its pages handed back to the system first (see
/// [`super::memory::release_pages`] for why freeing alone is not enough).
fn release(block: Block) {
    // Empty, so this takes the allocation over without moving anything.
    let mut buffer: Vec<Received> = Vec::from(block);
    debug_assert!(buffer.is_empty());
    super::memory::release_pages(buffer.as_mut_ptr().cast(), buffer.capacity() * SLOT_BYTES);
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

    impl Inbox {
        fn push_all(&mut self, messages: &mut Vec<Message>, timestamp_ns: u64) {
            let mut received = messages.drain(..).map(|m| Received::unstamped(m, timestamp_ns)).collect();
            self.push_received(&mut received);
        }
    }

    #[test]
    fn reads_are_sized_so_the_bound_holds_even_if_every_byte_is_a_message() {
        let max = 1 << 20;
        let mut inbox = Inbox::default();
        let mut total = 0;
        loop {
            let n = inbox.readable_bytes(max, 3000);
            if n == 0 {
                break;
            }
            inbox.push_all(&mut clocks(n), 0);
            total += n;
            assert!(inbox.memory() <= max, "{} > {max}", inbox.memory());
        }
        // Whole blocks count, so the bound holds every block that fits in it, full.
        assert_eq!(total, max / BLOCK_BYTES * BLOCK_SLOTS);
        for _ in 0..total - 1 {
            assert!(inbox.pop().is_some());
        }
        let mut out = Vec::new();
        let (count, emptied) = inbox.drain_into(&mut out);
        assert_eq!(count, 1);
        drop(emptied);
        assert!(inbox.is_empty());
        assert!(inbox.memory() <= 2 * BLOCK_BYTES, "{} held when empty", inbox.memory());
    }

    #[test]
    fn order_is_kept_across_blocks() {
        let mut inbox = Inbox::default();
        let notes: Vec<Message> =
            (0..5000).map(|i| Message::NoteOn { channel: 0, note: (i % 128) as u8, velocity: 1 }).collect();
        inbox.push_all(&mut notes.clone(), 7);
        let mut got = Vec::new();
        for _ in 0..2500 {
            got.push(inbox.pop().unwrap().message);
        }
        inbox.push_all(&mut notes.clone(), 8);
        while let Some(r) = inbox.pop() {
            got.push(r.message);
        }
        assert_eq!(got, [notes.clone(), notes].concat());
        assert!(inbox.is_empty());
        assert!(inbox.memory() <= 2 * BLOCK_BYTES);
    }

    #[test]
    fn held_messages_count_and_the_verdict_says_who_gives_way() {
        let max = 1 << 20;
        let mut inbox = Inbox::default();
        assert_eq!(inbox.read_room(max, 0, false, 3000), ReadRoom::Bytes(3000), "as without buffers");
        // Each byte read may become a held message of its own: the read is sized for that.
        let held = max - 100 * SLOT_BYTES;
        assert_eq!(inbox.read_room(max, held, true, 3000), ReadRoom::BuffersFull, "more than half is held");
        assert_eq!(inbox.read_room(max, max / 2 - 100 * SLOT_BYTES, true, 3000), ReadRoom::Bytes(3000));
        inbox.push_all(&mut clocks(2000), 0);
        let used = inbox.memory();
        assert_eq!(inbox.read_room(max, max - used, true, 3000), ReadRoom::BuffersFull);
        let held = max / 2;
        let left = max - used - held;
        match inbox.read_room(max, held, true, 3000) {
            ReadRoom::Bytes(n) => assert!(n * SLOT_BYTES <= left, "{n} messages would pass the bound"),
            verdict => panic!("{verdict:?} with {left} bytes left"),
        }
        // The inbox holds most of the bound, the buffers less than half: the program must read.
        inbox.push_all(&mut clocks(BLOCK_SLOTS * 8), 0);
        assert_eq!(inbox.read_room(max, max / 4, true, 3000), ReadRoom::ProgramBehind);
        // An empty inbox (its spare block kept) takes a byte, unless the buffers fill the bound.
        let mut out = Vec::new();
        drop(inbox.drain_into(&mut out));
        let small = BLOCK_BYTES + BLOCK_BYTES / 3;
        assert_eq!(inbox.read_room(small, small / 3, true, 3000), ReadRoom::Bytes(1));
        assert_eq!(inbox.read_room(small, small / 2 + 1, true, 3000), ReadRoom::BuffersFull);
    }

    #[test]
    fn an_empty_inbox_always_takes_a_byte_and_sysex_payloads_count() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.readable_bytes(0, 1024), 1);
        inbox.push_all(&mut vec![Message::SysEx { data: vec![1; 5000] }], 0);
        assert!(inbox.memory() >= 5000 + BLOCK_BYTES);
        assert_eq!(inbox.readable_bytes(0, 1024), 0);
        assert!(matches!(inbox.pop().map(|r| r.message), Some(Message::SysEx { .. })));
        assert_eq!(inbox.payload_bytes, 0);
    }
}
