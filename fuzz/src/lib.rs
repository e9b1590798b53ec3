//! Helpers shared by the fuzz targets: fuzz-chosen chunking, a reference model of the parser
//! table (written from docs/protocol.md, not from the parser's code) and the per-message checks.

use midisock::{Message, Parser, ParserStats};

/// Splits `input` into a header that chooses chunk lengths and the stream itself.
///
/// Layout: `[k][len_1 .. len_k][stream ...]` with `k = input[0] % 8`. The chunk lengths cycle;
/// a length byte of 0 means 1. With `k = 0` the stream is fed whole.
pub fn split_header(input: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&k, rest)) = input.split_first() else {
        return (Vec::new(), input);
    };
    let k = usize::from(k % 8).min(rest.len());
    let lens = rest[..k].iter().map(|&b| usize::from(b).max(1)).collect();
    (lens, &rest[k..])
}

/// `stream` cut into chunks whose lengths cycle through `lens` (whole when `lens` is empty).
pub fn chunks<'a>(stream: &'a [u8], lens: &[usize]) -> Vec<&'a [u8]> {
    if lens.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = lens[i % lens.len()].min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// Everything a parser makes of a stream: messages, counters and whether it ended mid-message.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub messages: Vec<Message>,
    pub stats: ParserStats,
    pub mid_message: bool,
}

/// Feeds `chunks` to a fresh `Parser` with the given sysex limit.
pub fn parse_chunks(max_sysex: usize, chunks: &[&[u8]]) -> Outcome {
    let mut parser = Parser::with_max_sysex_len(max_sysex);
    let mut messages = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, |m| messages.push(m));
    }
    Outcome { messages, stats: parser.stats(), mid_message: parser.is_mid_message() }
}

/// The messages a fresh `Parser` makes of `bytes` fed whole.
pub fn parse_all(max_sysex: usize, bytes: &[u8]) -> Vec<Message> {
    parse_chunks(max_sysex, &[bytes]).messages
}

/// A reference implementation of the parser table in docs/protocol.md, one byte at a time, kept as
/// simple as possible so that it can serve as an oracle.
#[derive(Debug)]
pub struct Model {
    limit: usize,
    /// Running status (a channel status) or the system common status in progress; 0 if none.
    status: u8,
    /// Data bytes collected for `status`.
    data: Vec<u8>,
    /// A status byte arrived and its message is not complete yet (even with no data byte).
    fresh: bool,
    /// `Some(payload)` while inside a sysex; `None` payload bytes once it overflowed.
    sysex: Option<Option<Vec<u8>>>,
    pub stats: ParserStats,
    /// Messages cut short that had a status byte but no data byte yet (counted separately,
    /// see `partial_messages_dropped_with_lone_status`).
    pub lone_status_dropped: u64,
}

impl Model {
    pub fn new(limit: usize) -> Model {
        Model {
            limit,
            status: 0,
            data: Vec::new(),
            fresh: false,
            sysex: None,
            stats: ParserStats::default(),
            lone_status_dropped: 0,
        }
    }

    /// A message is partly received: inside a sysex, or a status byte awaits its data bytes.
    pub fn mid_message_strict(&self) -> bool {
        self.sysex.is_some() || self.fresh || !self.data.is_empty()
    }

    /// As above, but a status byte alone (no data byte yet) does not count.
    pub fn mid_message_lenient(&self) -> bool {
        self.sysex.is_some() || !self.data.is_empty()
    }

    pub fn run(limit: usize, bytes: &[u8]) -> (Model, Vec<Message>) {
        let mut model = Model::new(limit);
        let mut out = Vec::new();
        for &b in bytes {
            model.byte(b, &mut out);
        }
        (model, out)
    }

    fn needed(status: u8) -> usize {
        match status >> 4 {
            0xC | 0xD => 1,
            0x8..=0xE => 2,
            _ => match status {
                0xF1 | 0xF3 => 1,
                0xF2 => 2,
                _ => unreachable!(),
            },
        }
    }

    /// A non-real-time status byte: the sysex or message in progress is dropped.
    fn cut(&mut self) {
        if let Some(payload) = self.sysex.take() {
            if payload.is_some() {
                self.stats.sysex_aborted += 1;
            }
        }
        if !self.data.is_empty() {
            self.stats.partial_messages_dropped += 1;
        } else if self.fresh {
            self.lone_status_dropped += 1;
        }
        self.data.clear();
        self.fresh = false;
    }

    pub fn byte(&mut self, b: u8, out: &mut Vec<Message>) {
        match b {
            0xF8 => out.push(Message::Clock),
            0xFA => out.push(Message::Start),
            0xFB => out.push(Message::Continue),
            0xFC => out.push(Message::Stop),
            0xFE => out.push(Message::ActiveSensing),
            0xFF => out.push(Message::Reset),
            0xF4 | 0xF5 | 0xF9 | 0xFD => self.stats.undefined_status_bytes += 1,
            0xF7 if self.sysex.is_some() => {
                if let Some(Some(payload)) = self.sysex.take() {
                    out.push(Message::SysEx { data: payload });
                }
            }
            0xF7 => {
                self.cut();
                self.status = 0;
            }
            0xF0 => {
                self.cut();
                self.status = 0;
                self.sysex = Some(Some(Vec::new()));
            }
            0xF6 => {
                self.cut();
                self.status = 0;
                out.push(Message::TuneRequest);
            }
            0x80..=0xF3 => {
                self.cut();
                self.status = b;
                self.fresh = true;
            }
            0x00..=0x7F => match &mut self.sysex {
                Some(Some(payload)) => {
                    if payload.len() < self.limit {
                        payload.push(b);
                    } else {
                        self.stats.sysex_overflows += 1;
                        self.sysex = Some(None);
                    }
                }
                Some(None) => {}
                None if self.status == 0 => self.stats.stray_data_bytes += 1,
                None => {
                    self.data.push(b);
                    if self.data.len() == Model::needed(self.status) {
                        out.push(model_build(self.status, &self.data));
                        self.data.clear();
                        self.fresh = false;
                        if self.status >= 0xF0 {
                            self.status = 0;
                        }
                    }
                }
            },
        }
    }
}

fn model_build(status: u8, d: &[u8]) -> Message {
    let channel = status & 0x0F;
    let lsb_msb = || u16::from(d[0]) | (u16::from(d[1]) << 7);
    match status >> 4 {
        0x8 => Message::NoteOff { channel, note: d[0], velocity: d[1] },
        0x9 => Message::NoteOn { channel, note: d[0], velocity: d[1] },
        0xA => Message::PolyTouch { channel, note: d[0], value: d[1] },
        0xB => Message::ControlChange { channel, control: d[0], value: d[1] },
        0xC => Message::ProgramChange { channel, program: d[0] },
        0xD => Message::Aftertouch { channel, value: d[0] },
        0xE => Message::PitchWheel { channel, pitch: lsb_msb() as i16 - 8192 },
        _ => match status {
            0xF1 => Message::QuarterFrame { frame_type: d[0] >> 4, frame_value: d[0] & 0x0F },
            0xF2 => Message::SongPos { pos: lsb_msb() },
            0xF3 => Message::SongSelect { song: d[0] },
            _ => unreachable!(),
        },
    }
}

/// The per-message invariants every emitted message must satisfy.
pub fn check_message(m: &Message, max_sysex: usize) {
    m.validate().unwrap_or_else(|e| panic!("emitted message does not validate: {m:?}: {e}"));
    if let Message::SysEx { data } = m {
        assert!(data.len() <= max_sysex, "sysex of {} bytes passed the limit {max_sysex}", data.len());
    }
    let bytes = m.to_bytes();
    assert_eq!(bytes.len(), m.encoded_len(), "to_bytes length for {m:?}");
    assert_eq!(Message::from_bytes(&bytes), Ok(m.clone()), "byte round trip of {m:?} ({bytes:02X?})");
    // encode() into an exact buffer writes the same bytes; one byte short is refused.
    let mut buf = vec![0xAAu8; bytes.len() + 1];
    assert_eq!(m.encode(&mut buf), Ok(bytes.len()));
    assert_eq!(&buf[..bytes.len()], &bytes[..]);
    assert_eq!(m.encode(&mut buf[..bytes.len() - 1]), Err(midisock::BufferTooSmall { needed: bytes.len() }));
    let text = m.to_string();
    assert_eq!(text.parse::<Message>(), Ok(m.clone()), "text round trip of {text:?}");
}
