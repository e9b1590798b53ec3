//! [`JitterBuffers`]: the I/O thread's view of its clients' jitter buffers — when each next has a
//! message due (for the playout timer), and how much memory they hold together (counted in
//! `max_inbox_bytes`, see [`super::inbox::ReadRoom`]).

use mio::Token;
use std::collections::{BTreeSet, HashMap};

/// What one client's jitter buffer holds, as its reader last reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Holding {
    /// When its next message is due (`CLOCK_MONOTONIC` ns; `None`: nothing waits).
    pub(crate) deadline: Option<u64>,
    /// The memory its waiting messages take, counted as the inbox counts its own (a
    /// [`super::inbox::SLOT_BYTES`] slot each, plus sysex payloads).
    pub(crate) bytes: usize,
}

#[derive(Default)]
pub(crate) struct JitterBuffers {
    /// Every client with a deadline, by deadline.
    deadlines: BTreeSet<(u64, Token)>,
    /// Every client whose buffer holds something, as filed.
    holdings: HashMap<Token, Holding>,
    /// The sum of their `bytes`.
    held_bytes: usize,
}

impl JitterBuffers {
    /// Files what `token`'s buffer holds now (after a read, a playout, an early release).
    pub(crate) fn file(&mut self, token: Token, holding: Holding) {
        let old = self.holdings.get(&token).copied().unwrap_or_default();
        if old == holding {
            return;
        }
        if let Some(deadline) = old.deadline {
            self.deadlines.remove(&(deadline, token));
        }
        if let Some(deadline) = holding.deadline {
            self.deadlines.insert((deadline, token));
        }
        self.held_bytes = self.held_bytes - old.bytes + holding.bytes;
        if holding == Holding::default() {
            self.holdings.remove(&token);
        } else {
            self.holdings.insert(token, holding);
        }
    }

    /// The earliest deadline of any client.
    pub(crate) fn earliest(&self) -> Option<u64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// A client whose deadline is at or before `now_ns`, taken off the timer (file it again
    /// once played out).
    pub(crate) fn take_due(&mut self, now_ns: u64) -> Option<Token> {
        let &(deadline, token) = self.deadlines.first().filter(|&&(deadline, _)| deadline <= now_ns)?;
        self.deadlines.pop_first();
        if let Some(holding) = self.holdings.get_mut(&token) {
            debug_assert_eq!(holding.deadline, Some(deadline));
            holding.deadline = None;
        }
        Some(token)
    }

    /// The memory every buffer's waiting messages take together.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The client whose buffer holds the most, and how much.
    pub(crate) fn largest(&self) -> Option<(Token, usize)> {
        self.holdings.iter().map(|(&token, holding)| (token, holding.bytes)).max_by_key(|&(_, bytes)| bytes)
    }

    pub(crate) fn clear(&mut self) {
        *self = JitterBuffers::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_and_held_bytes_follow_what_is_filed() {
        let mut buffers = JitterBuffers::default();
        buffers.file(Token(1), Holding { deadline: Some(30), bytes: 480 });
        buffers.file(Token(2), Holding { deadline: Some(10), bytes: 96 });
        assert_eq!((buffers.earliest(), buffers.held_bytes()), (Some(10), 576));
        assert_eq!(buffers.largest(), Some((Token(1), 480)));
        assert_eq!(buffers.take_due(9), None);
        assert_eq!(buffers.take_due(10), Some(Token(2)));
        assert_eq!(buffers.earliest(), Some(30));
        buffers.file(Token(2), Holding { deadline: None, bytes: 0 });
        buffers.file(Token(1), Holding { deadline: Some(40), bytes: 48 });
        assert_eq!((buffers.earliest(), buffers.held_bytes()), (Some(40), 48));
        buffers.file(Token(1), Holding::default());
        assert_eq!((buffers.earliest(), buffers.held_bytes(), buffers.largest()), (None, 0, None));
    }
}
