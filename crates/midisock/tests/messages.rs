//! Encoder and text format: round trips for every message type, and mido's exact text.

use midisock::{Message, MessageType, ParseMessageError};
use proptest::prelude::*;

/// One message of every type, with distinctive values.
fn one_of_each() -> Vec<Message> {
    vec![
        Message::NoteOff { channel: 1, note: 60, velocity: 10 },
        Message::NoteOn { channel: 15, note: 127, velocity: 0 },
        Message::PolyTouch { channel: 2, note: 3, value: 4 },
        Message::ControlChange { channel: 3, control: 7, value: 127 },
        Message::ProgramChange { channel: 4, program: 99 },
        Message::Aftertouch { channel: 5, value: 6 },
        Message::PitchWheel { channel: 6, pitch: -8192 },
        Message::SysEx { data: vec![0x7E, 0x00, 0x7F] },
        Message::QuarterFrame { frame_type: 7, frame_value: 15 },
        Message::SongPos { pos: 16383 },
        Message::SongSelect { song: 12 },
        Message::TuneRequest,
        Message::Clock,
        Message::Start,
        Message::Continue,
        Message::Stop,
        Message::ActiveSensing,
        Message::Reset,
    ]
}

#[test]
fn one_of_each_covers_every_type() {
    let types: Vec<MessageType> = one_of_each().iter().map(Message::message_type).collect();
    assert_eq!(types, MessageType::ALL.to_vec());
}

#[test]
fn encodings_are_the_midi_1_0_bytes() {
    let expected: Vec<Vec<u8>> = vec![
        vec![0x81, 60, 10],
        vec![0x9F, 127, 0],
        vec![0xA2, 3, 4],
        vec![0xB3, 7, 127],
        vec![0xC4, 99],
        vec![0xD5, 6],
        vec![0xE6, 0, 0],
        vec![0xF0, 0x7E, 0x00, 0x7F, 0xF7],
        vec![0xF1, 0x7F],
        vec![0xF2, 0x7F, 0x7F],
        vec![0xF3, 12],
        vec![0xF6],
        vec![0xF8],
        vec![0xFA],
        vec![0xFB],
        vec![0xFC],
        vec![0xFE],
        vec![0xFF],
    ];
    for (message, bytes) in one_of_each().iter().zip(expected) {
        assert_eq!(message.to_bytes(), bytes, "{message}");
        assert_eq!(message.encoded_len(), bytes.len());
    }
}

#[test]
fn encode_all_is_the_concatenation_of_every_encoding() {
    let mut all = vec![0xAA];
    Message::encode_all(&one_of_each(), &mut all);
    let expected: Vec<u8> = std::iter::once(0xAA).chain(one_of_each().iter().flat_map(Message::to_bytes)).collect();
    assert_eq!(all, expected);
}

#[test]
fn encode_all_checked_writes_all_or_nothing() {
    let mut all = vec![0xAA];
    Message::encode_all_checked(&one_of_each(), &mut all).unwrap();
    let mut expected = vec![0xAA];
    Message::encode_all(&one_of_each(), &mut expected);
    assert_eq!(all, expected);

    // The first invalid message is reported and nothing of the batch stays in the buffer.
    let mut batch = one_of_each();
    batch.insert(3, Message::ControlChange { channel: 0, control: 7, value: 128 });
    batch.insert(5, Message::NoteOn { channel: 16, note: 0, velocity: 0 });
    let err = Message::encode_all_checked(&batch, &mut all).unwrap_err();
    assert_eq!((err.field, err.value), ("value", 128));
    assert_eq!(all, expected);
    let err = Message::encode_all_checked(
        &[Message::SysEx { data: vec![1; 300] }, Message::SysEx { data: vec![0xF7] }],
        &mut all,
    )
    .unwrap_err();
    assert_eq!((err.field, err.value), ("data", 0xF7));
    assert_eq!(all, expected);
}

#[test]
fn encode_reports_short_buffer() {
    let m = Message::NoteOn { channel: 0, note: 1, velocity: 2 };
    let mut small = [0u8; 2];
    assert_eq!(m.encode(&mut small).unwrap_err().needed, 3);
}

#[test]
fn text_is_exactly_midos_str() {
    let expected = [
        "note_off channel=1 note=60 velocity=10 time=0",
        "note_on channel=15 note=127 velocity=0 time=0",
        "polytouch channel=2 note=3 value=4 time=0",
        "control_change channel=3 control=7 value=127 time=0",
        "program_change channel=4 program=99 time=0",
        "aftertouch channel=5 value=6 time=0",
        "pitchwheel channel=6 pitch=-8192 time=0",
        "sysex data=(126,0,127) time=0",
        "quarter_frame frame_type=7 frame_value=15 time=0",
        "songpos pos=16383 time=0",
        "song_select song=12 time=0",
        "tune_request time=0",
        "clock time=0",
        "start time=0",
        "continue time=0",
        "stop time=0",
        "active_sensing time=0",
        "reset time=0",
    ];
    for (message, text) in one_of_each().iter().zip(expected) {
        assert_eq!(message.to_string(), text);
        assert_eq!(text.parse::<Message>().as_ref(), Ok(message));
    }
    assert_eq!(Message::SysEx { data: vec![] }.to_string(), "sysex data=() time=0");
    assert_eq!("sysex data=() time=0".parse(), Ok(Message::SysEx { data: vec![] }));
}

#[test]
fn text_accepts_what_mido_from_str_accepts() {
    let cases = [
        ("note_on", Message::NoteOn { channel: 0, note: 0, velocity: 64 }),
        ("note_off note=5", Message::NoteOff { channel: 0, note: 5, velocity: 64 }),
        ("note_on  velocity=3   channel=2 ", Message::NoteOn { channel: 2, note: 0, velocity: 3 }),
        ("note_on channel=+3", Message::NoteOn { channel: 3, note: 0, velocity: 64 }),
        ("note_on channel=1_0", Message::NoteOn { channel: 10, note: 0, velocity: 64 }),
        ("note_on channel=3 channel=4", Message::NoteOn { channel: 4, note: 0, velocity: 64 }),
        ("clock time=0.5", Message::Clock),
        ("clock time=1e3", Message::Clock),
        ("clock time=inf", Message::Clock),
        ("pitchwheel pitch=8191", Message::PitchWheel { channel: 0, pitch: 8191 }),
        ("sysex", Message::SysEx { data: vec![] }),
        ("sysex data=(1,2)", Message::SysEx { data: vec![1, 2] }),
        // mido's quirks: brackets are not checked, only stripped; Python's split() separators.
        ("sysex data=[1,2]", Message::SysEx { data: vec![1, 2] }),
        ("sysex data=(1,", Message::SysEx { data: vec![1] }),
        ("note_on\x1cchannel=1\u{a0}note=2", Message::NoteOn { channel: 1, note: 2, velocity: 64 }),
        ("clock time=1_000.5", Message::Clock),
    ];
    for (text, message) in cases {
        assert_eq!(text.parse::<Message>().as_ref(), Ok(&message), "{text:?}");
    }
}

#[test]
fn text_rejects_what_mido_rejects_with_a_clear_error() {
    type Check = fn(&ParseMessageError) -> bool;
    let cases: [(&str, Check); 13] = [
        ("sysex data=1,2)", |e| matches!(e, ParseMessageError::BadValue { .. })),
        ("clock time=_1.5", |e| matches!(e, ParseMessageError::BadValue { .. })),
        ("clock time=1__0", |e| matches!(e, ParseMessageError::BadValue { .. })),
        ("", |e| matches!(e, ParseMessageError::Empty)),
        ("note_of", |e| matches!(e, ParseMessageError::UnknownType(_))),
        ("note_on channel = 3", |e| matches!(e, ParseMessageError::NotAField(_))),
        ("note_on program=3", |e| matches!(e, ParseMessageError::UnknownField { .. })),
        ("note_on channel=16", |e| matches!(e, ParseMessageError::OutOfRange(_))),
        ("note_on note=x", |e| matches!(e, ParseMessageError::BadValue { .. })),
        ("pitchwheel pitch=8192", |e| matches!(e, ParseMessageError::OutOfRange(_))),
        ("sysex data=(1,2,)", |e| matches!(e, ParseMessageError::BadValue { .. })),
        ("sysex data=(128)", |e| matches!(e, ParseMessageError::BadValue { .. })),
        ("clock time=True", |e| matches!(e, ParseMessageError::BadValue { .. })),
    ];
    for (text, check) in cases {
        let err = text.parse::<Message>().expect_err(text);
        assert!(check(&err), "{text:?} gave {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn constructors_check_ranges() {
    assert!(Message::note_on(16, 0, 0).is_err());
    assert!(Message::note_on(0, 128, 0).is_err());
    assert!(Message::pitchwheel(0, 8192).is_err());
    assert!(Message::sysex(vec![1, 0x80]).is_err());
    assert_eq!(Message::note_on(1, 2, 3), Ok(Message::NoteOn { channel: 1, note: 2, velocity: 3 }));
    assert!(Message::NoteOn { channel: 0, note: 200, velocity: 0 }.validate().is_err());
    assert!(Message::SongPos { pos: 16384 }.validate().is_err());
    assert!(Message::QuarterFrame { frame_type: 8, frame_value: 0 }.validate().is_err());
}

fn any_message() -> impl Strategy<Value = Message> {
    let ch = 0u8..16;
    let d = || 0u8..128;
    prop_oneof![
        (ch.clone(), d(), d()).prop_map(|(channel, note, velocity)| Message::NoteOff { channel, note, velocity }),
        (ch.clone(), d(), d()).prop_map(|(channel, note, velocity)| Message::NoteOn { channel, note, velocity }),
        (ch.clone(), d(), d()).prop_map(|(channel, note, value)| Message::PolyTouch { channel, note, value }),
        (ch.clone(), d(), d()).prop_map(|(channel, control, value)| Message::ControlChange { channel, control, value }),
        (ch.clone(), d()).prop_map(|(channel, program)| Message::ProgramChange { channel, program }),
        (ch.clone(), d()).prop_map(|(channel, value)| Message::Aftertouch { channel, value }),
        (ch, -8192i16..8192).prop_map(|(channel, pitch)| Message::PitchWheel { channel, pitch }),
        prop::collection::vec(d(), 0..64).prop_map(|data| Message::SysEx { data }),
        (0u8..8, 0u8..16).prop_map(|(frame_type, frame_value)| Message::QuarterFrame { frame_type, frame_value }),
        (0u16..16384).prop_map(|pos| Message::SongPos { pos }),
        d().prop_map(|song| Message::SongSelect { song }),
        prop::sample::select(vec![
            Message::TuneRequest,
            Message::Clock,
            Message::Start,
            Message::Continue,
            Message::Stop,
            Message::ActiveSensing,
            Message::Reset
        ]),
    ]
}

proptest! {
    #[test]
    fn encode_then_parse_round_trips(messages in prop::collection::vec(any_message(), 0..50)) {
        let mut bytes = Vec::new();
        for m in &messages {
            m.encode_to_vec(&mut bytes);
        }
        let mut parser = midisock::Parser::new();
        let mut got = Vec::new();
        parser.feed(&bytes, |m| got.push(m));
        prop_assert_eq!(&got, &messages);
        let mut checked = Vec::new();
        Message::encode_all_checked(&messages, &mut checked).unwrap();
        prop_assert_eq!(checked, bytes);
    }

    #[test]
    fn text_round_trips(message in any_message()) {
        let text = message.to_string();
        prop_assert_eq!(text.parse::<Message>(), Ok(message));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}") {
        let _ = text.parse::<Message>();
    }
}
