//! The stamped wire form end to end: encoder → bytes in any chunking → decoder, with and without
//! garbage, and the hellos a plain MIDI parser must ignore.

use midisock::timing::{Decoded, DecoderStats, StampDecoder, StampEncoder, STAMP_ANSWER, STAMP_REQUEST};
use midisock::{Message, Parser};
use proptest::prelude::*;

fn any_message() -> impl Strategy<Value = Message> {
    let ch = 0u8..16;
    let d = || 0u8..128;
    prop_oneof![
        (ch.clone(), d(), d()).prop_map(|(channel, note, velocity)| Message::NoteOff { channel, note, velocity }),
        (ch.clone(), d(), d()).prop_map(|(channel, note, velocity)| Message::NoteOn { channel, note, velocity }),
        (ch.clone(), d(), d()).prop_map(|(channel, control, value)| Message::ControlChange { channel, control, value }),
        (ch.clone(), d()).prop_map(|(channel, program)| Message::ProgramChange { channel, program }),
        (ch, -8192i16..8192).prop_map(|(channel, pitch)| Message::PitchWheel { channel, pitch }),
        prop::collection::vec(d(), 0..40).prop_map(|data| Message::SysEx { data }),
        (0u16..16384).prop_map(|pos| Message::SongPos { pos }),
        prop::sample::select(vec![Message::TuneRequest, Message::Clock, Message::Start, Message::Reset]),
    ]
}

/// Steps between sends, in ns: bursts, 1 kHz, pauses, and the odd long silence.
fn any_step() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..2_000,
        4 => 900_000u64..1_100_000,
        2 => 0u64..300_000_000,
        1 => 1_000_000_000u64..100_000_000_000,
    ]
}

fn encode(start_ns: u64, sends: &[(u64, Message)]) -> (Vec<u8>, Vec<(u64, Message)>) {
    let mut encoder = StampEncoder::new();
    let mut bytes = STAMP_ANSWER.to_vec();
    let mut now = start_ns;
    let mut expected = Vec::new();
    for (step, message) in sends {
        now += step;
        encoder.encode_to_vec(now, message, &mut bytes);
        expected.push((now / 1_000 * 1_000, message.clone()));
    }
    (bytes, expected)
}

fn decode_in_chunks(bytes: &[u8], cuts: &[usize]) -> (Vec<Decoded>, DecoderStats) {
    let mut decoder = StampDecoder::default();
    let mut items = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        decoder.feed(&bytes[from..cut], |item| items.push(item));
        from = cut;
    }
    (items, decoder.stats())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every message comes back with its send time (to the microsecond), whatever the chunking.
    #[test]
    fn stamped_streams_decode_exactly_in_any_chunking(
        start in 0u64..(1 << 60),
        sends in prop::collection::vec((any_step(), any_message()), 0..120),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let (bytes, expected) = encode(start, &sends);
        let (items, stats) = decode_in_chunks(&bytes, &cuts);
        prop_assert_eq!(&items[0], &Decoded::StampsStart);
        let got: Vec<(u64, Message)> = items[1..].iter().map(|item| match item {
            Decoded::Message { sender_ns: Some(t), message } => (*t, message.clone()),
            other => panic!("unexpected {other:?}"),
        }).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(stats, DecoderStats::default());
    }

    /// Garbage anywhere: no panic, the same items in any chunking, every message after the
    /// garbage that follows a full stamp comes back exactly, and what was skipped is counted.
    #[test]
    fn garbage_is_survived_counted_and_chunking_does_not_matter(
        sends in prop::collection::vec((any_step(), any_message()), 1..80),
        garbage in prop::collection::vec(any::<u8>(), 1..40),
        at in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (mut bytes, _) = encode(1_000_000_000, &sends);
        let at = STAMP_ANSWER.len() + at.index(bytes.len() - STAMP_ANSWER.len() + 1);
        bytes.splice(at..at, garbage.iter().copied());
        // A clean tail that starts with a full stamp (a fresh encoder's first).
        let mut tail_encoder = StampEncoder::new();
        let tail = [Message::Start, Message::NoteOn { channel: 1, note: 2, velocity: 3 }];
        for (i, m) in tail.iter().enumerate() {
            tail_encoder.encode_to_vec(500_000_000_000 + i as u64 * 1_000, m, &mut bytes);
        }
        let (whole, _) = decode_in_chunks(&bytes, &[]);
        let (chunked, _) = decode_in_chunks(&bytes, &cuts);
        prop_assert_eq!(&whole, &chunked);
        let messages: Vec<_> = whole.iter().filter_map(|item| match item {
            Decoded::Message { sender_ns, message } => Some((*sender_ns, message.clone())),
            _ => None,
        }).collect();
        prop_assert!(messages.len() >= 2);
        prop_assert_eq!(&messages[messages.len() - 2..], &[
            (Some(500_000_000_000), tail[0].clone()),
            (Some(500_000_001_000), tail[1].clone()),
        ]);
        prop_assert!(messages.len() <= sends.len() + 2 + garbage.len(), "{:?} from {:02X?}", messages, garbage);
    }

    /// Random bytes: the decoder never panics and never holds more than the parser's sysex limit.
    #[test]
    fn random_bytes_are_harmless(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut decoder = StampDecoder::new(Parser::with_max_sysex_len(64));
        let mut stamped_prefix = STAMP_ANSWER.to_vec();
        stamped_prefix.extend_from_slice(&bytes);
        for input in [&bytes[..], &stamped_prefix[..]] {
            decoder.feed(input, |item| {
                if let Decoded::Message { message: Message::SysEx { data }, .. } = item {
                    assert!(data.len() <= 64);
                }
            });
        }
    }
}

#[test]
fn a_plain_peer_sees_only_what_it_always_saw() {
    // A receiver that asked writes the request; a peer without the extension parses it as MIDI.
    let mut to_plain_peer = STAMP_REQUEST.to_vec();
    let notes = [
        Message::NoteOn { channel: 0, note: 60, velocity: 64 },
        Message::NoteOff { channel: 0, note: 60, velocity: 0 },
    ];
    for m in &notes {
        m.encode_to_vec(&mut to_plain_peer);
    }
    let mut parser = Parser::new();
    let mut seen = Vec::new();
    parser.feed(&to_plain_peer, |m| seen.push(m));
    assert_eq!(seen, notes);
    assert_eq!(parser.stats().partial_messages_dropped, 0);
}

#[test]
fn both_directions_on_one_connection_with_a_token() {
    // Client → server: token hello, request, plain notes, then (after the server's request was
    // read) the answer and stamped notes.
    let mut client_bytes = b"\xF4secret\xF7".to_vec();
    client_bytes.extend_from_slice(STAMP_REQUEST);
    Message::Start.encode_to_vec(&mut client_bytes);
    client_bytes.extend_from_slice(STAMP_ANSWER);
    let mut encoder = StampEncoder::new();
    encoder.encode_to_vec(9_000_000, &Message::Stop, &mut client_bytes);
    // The server's token check consumes the token hello; the rest goes to its decoder.
    let mut decoder = StampDecoder::default();
    let mut items = Vec::new();
    decoder.feed(&client_bytes[8..], |item| items.push(item));
    assert_eq!(
        items,
        [
            Decoded::StampsRequested,
            Decoded::Message { sender_ns: None, message: Message::Start },
            Decoded::StampsStart,
            Decoded::Message { sender_ns: Some(9_000_000), message: Message::Stop },
        ]
    );
    assert!(decoder.is_stamped());
}
