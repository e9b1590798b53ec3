//! One test per row of the parser table in docs/protocol.md, plus the chunking invariant.

use midisock::{Message, Parser, ParserStats};
use proptest::prelude::*;

fn parse(bytes: &[u8]) -> (Vec<Message>, ParserStats) {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    parser.feed(bytes, |m| out.push(m));
    (out, parser.stats())
}

fn on(channel: u8, note: u8, velocity: u8) -> Message {
    Message::NoteOn { channel, note, velocity }
}

#[test]
fn channel_message_with_running_status() {
    let (msgs, _) = parse(&[0x90, 60, 64, 62, 65, 0x85, 1, 2, 3, 4]);
    assert_eq!(
        msgs,
        vec![
            on(0, 60, 64),
            on(0, 62, 65),
            Message::NoteOff { channel: 5, note: 1, velocity: 2 },
            Message::NoteOff { channel: 5, note: 3, velocity: 4 },
        ]
    );
}

#[test]
fn running_status_for_one_data_byte_messages() {
    let (msgs, _) = parse(&[0xC3, 1, 2, 3]);
    assert_eq!(msgs, (1..=3).map(|program| Message::ProgramChange { channel: 3, program }).collect::<Vec<_>>());
}

#[test]
fn realtime_inside_channel_message_does_not_disturb_it() {
    let (msgs, stats) = parse(&[0x90, 0xF8, 60, 0xFA, 64, 0xFE]);
    assert_eq!(msgs, vec![Message::Clock, Message::Start, on(0, 60, 64), Message::ActiveSensing]);
    assert_eq!(stats, ParserStats::default());
}

#[test]
fn realtime_inside_sysex_does_not_disturb_it() {
    let (msgs, _) = parse(&[0xF0, 1, 0xF8, 2, 0xFF, 3, 0xF7]);
    assert_eq!(msgs, vec![Message::Clock, Message::Reset, Message::SysEx { data: vec![1, 2, 3] }]);
}

#[test]
fn every_realtime_byte_is_emitted() {
    let (msgs, _) = parse(&[0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF]);
    assert_eq!(
        msgs,
        vec![Message::Clock, Message::Start, Message::Continue, Message::Stop, Message::ActiveSensing, Message::Reset]
    );
}

#[test]
fn undefined_realtime_bytes_are_ignored_without_state_change() {
    let (msgs, stats) = parse(&[0x90, 60, 0xF9, 64, 0xFD, 61, 65]);
    assert_eq!(msgs, vec![on(0, 60, 64), on(0, 61, 65)]);
    assert_eq!(stats.undefined_status_bytes, 2);
}

#[test]
fn undefined_common_bytes_are_ignored_without_state_change() {
    let (msgs, stats) = parse(&[0x90, 60, 0xF4, 64, 0xF5, 61, 65, 0xF0, 1, 0xF4, 2, 0xF7]);
    assert_eq!(msgs, vec![on(0, 60, 64), on(0, 61, 65), Message::SysEx { data: vec![1, 2] }]);
    assert_eq!(stats.undefined_status_bytes, 3);
}

#[test]
fn system_common_messages_and_they_cancel_running_status() {
    let (msgs, stats) = parse(&[0x90, 60, 64, 0xF1, 0x35, 0xF2, 0x01, 0x02, 0xF3, 7, 0xF6, 61, 65, 0x90, 62, 66]);
    assert_eq!(
        msgs,
        vec![
            on(0, 60, 64),
            Message::QuarterFrame { frame_type: 3, frame_value: 5 },
            Message::SongPos { pos: 0x01 | (0x02 << 7) },
            Message::SongSelect { song: 7 },
            Message::TuneRequest,
            on(0, 62, 66),
        ]
    );
    // 61 and 65 came after tune_request: no running status any more.
    assert_eq!(stats.stray_data_bytes, 2);
}

#[test]
fn system_common_does_not_set_running_status() {
    let (msgs, stats) = parse(&[0xF3, 1, 2]);
    assert_eq!(msgs, vec![Message::SongSelect { song: 1 }]);
    assert_eq!(stats.stray_data_bytes, 1);
}

#[test]
fn sysex_whole_and_empty() {
    let (msgs, _) = parse(&[0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7, 0xF0, 0xF7]);
    assert_eq!(msgs, vec![Message::SysEx { data: vec![0x7E, 0x7F, 0x09, 0x01] }, Message::SysEx { data: vec![] }]);
}

#[test]
fn status_byte_aborts_sysex_and_starts_new_message() {
    let (msgs, stats) = parse(&[0xF0, 1, 2, 0x90, 60, 64, 0xF0, 3, 0xF2, 1, 1, 0xF0, 4, 0xF0, 5, 0xF7]);
    assert_eq!(msgs, vec![on(0, 60, 64), Message::SongPos { pos: 129 }, Message::SysEx { data: vec![5] }]);
    assert_eq!(stats.sysex_aborted, 3);
}

#[test]
fn oversized_sysex_is_discarded_and_counted() {
    let mut parser = Parser::with_max_sysex_len(4);
    let mut msgs = Vec::new();
    parser.feed(&[0xF0, 1, 2, 3, 4, 0xF7, 0xF0, 1, 2, 3, 4, 5, 6, 0xF7, 0x90, 1, 2], |m| msgs.push(m));
    assert_eq!(msgs, vec![Message::SysEx { data: vec![1, 2, 3, 4] }, on(0, 1, 2)]);
    assert_eq!(parser.stats().sysex_overflows, 1);
}

#[test]
fn oversized_sysex_is_never_buffered_whole() {
    let mut parser = Parser::with_max_sysex_len(1024);
    let chunk = vec![0x55u8; 64 * 1024];
    let mut count = 0;
    parser.feed(&[0xF0], |_| count += 1);
    for _ in 0..64 {
        parser.feed(&chunk, |_| count += 1);
    }
    parser.feed(&[0xF7, 0xF8], |_| count += 1);
    assert_eq!(count, 1, "only the clock after the flood");
    assert_eq!(parser.stats().sysex_overflows, 1);
    // The parser's whole footprint stays small: its buffer was released at the overflow.
    assert!(std::mem::size_of_val(&parser) < 256);
}

#[test]
fn end_of_exclusive_outside_sysex_drops_partial_message_and_running_status() {
    let (msgs, stats) = parse(&[0x90, 60, 0xF7, 64, 0x90, 60, 64, 0xF7, 61, 65]);
    assert_eq!(msgs, vec![on(0, 60, 64)]);
    assert_eq!(stats.partial_messages_dropped, 1);
    assert_eq!(stats.stray_data_bytes, 3);
}

#[test]
fn data_bytes_without_status_are_ignored_and_counted() {
    let (msgs, stats) = parse(&[1, 2, 3, 0xB0, 7, 100]);
    assert_eq!(msgs, vec![Message::ControlChange { channel: 0, control: 7, value: 100 }]);
    assert_eq!(stats.stray_data_bytes, 3);
}

#[test]
fn new_status_drops_partial_channel_message() {
    let (msgs, stats) = parse(&[0x90, 60, 0xB0, 7, 100]);
    assert_eq!(msgs, vec![Message::ControlChange { channel: 0, control: 7, value: 100 }]);
    assert_eq!(stats.partial_messages_dropped, 1);
}

#[test]
fn pitchwheel_extremes() {
    let (msgs, _) = parse(&[0xE0, 0, 0, 0xE1, 0x7F, 0x7F, 0xE2, 0, 0x40]);
    assert_eq!(
        msgs,
        vec![
            Message::PitchWheel { channel: 0, pitch: -8192 },
            Message::PitchWheel { channel: 1, pitch: 8191 },
            Message::PitchWheel { channel: 2, pitch: 0 },
        ]
    );
}

fn arbitrary_stream() -> impl Strategy<Value = Vec<u8>> {
    // Bias towards status bytes so every row of the table is exercised, not just stray data.
    let byte = prop_oneof![
        4 => 0u8..0x80,
        2 => 0x80u8..0xF0,
        1 => prop::sample::select(vec![0xF0u8, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7]),
        1 => 0xF8u8..=0xFF,
    ];
    prop::collection::vec(byte, 0..400)
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_messages(stream in arbitrary_stream(), cuts in prop::collection::vec(0usize..400, 0..20)) {
        let mut whole = Parser::with_max_sysex_len(16);
        let mut expected = Vec::new();
        whole.feed(&stream, |m| expected.push(m));

        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut chunked = Parser::with_max_sysex_len(16);
        let mut got = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            chunked.feed(&stream[start..cut], |m| got.push(m));
            start = cut;
        }
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(chunked.stats(), whole.stats());
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages(stream in arbitrary_stream()) {
        let mut whole = Parser::new();
        let mut expected = Vec::new();
        whole.feed(&stream, |m| expected.push(m));
        let mut single = Parser::new();
        let mut got = Vec::new();
        for b in &stream {
            single.feed(std::slice::from_ref(b), |m| got.push(m));
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn every_emitted_message_is_valid_and_reencodes(stream in arbitrary_stream()) {
        let mut parser = Parser::new();
        parser.feed(&stream, |m| {
            assert!(m.validate().is_ok(), "{m:?}");
            assert_eq!(Message::from_bytes(&m.to_bytes()).as_ref(), Ok(&m));
        });
    }
}

#[test]
fn a_lone_status_byte_is_a_message_in_progress() {
    for (bytes, partial) in
        [(&[0x90u8][..], true), (&[0xF2][..], true), (&[0x90, 60, 64][..], false), (&[0x90, 60][..], true)]
    {
        let mut parser = Parser::new();
        parser.feed(bytes, |_| {});
        assert_eq!(parser.is_mid_message(), partial, "{bytes:02X?}");
    }
    // Cut short by the next status byte: counted as a dropped partial message.
    for bytes in [&[0xF2u8, 0x90, 60, 64][..], &[0x90, 0xB0, 7, 1][..], &[0xC0, 0xF7][..]] {
        let (_, stats) = parse(bytes);
        assert_eq!(stats.partial_messages_dropped, 1, "{bytes:02X?}");
    }
}
