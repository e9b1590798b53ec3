//! A port with the jitter buffer on, against a real mido 1.3.3 peer (tests/timing/mido_peer.py):
//! mido ignores the request and never answers, so it receives exactly the messages it would
//! receive from a port without the buffer, and what it sends arrives unstamped, at once.
//!
//! `cargo xtask test` installs the Python venv with mido and sets MIDISOCK_TEST_PYTHON.

use midisock::timing::DelayMode;
use midisock::{connect_with, ConnectOptions, Message};
use midisock_testkit::MidoPeer;
use std::time::Duration;

/// The longest any single wait may take: only a real hang fails a test.
const WAIT: Duration = Duration::from_secs(30);

/// The messages mido_peer.py sends, as mido prints them (and as midisock prints them).
const EVERY_MESSAGE: [&str; 17] = [
    "note_off channel=1 note=60 velocity=10 time=0",
    "note_on channel=15 note=127 velocity=0 time=0",
    "polytouch channel=2 note=3 value=4 time=0",
    "control_change channel=3 control=7 value=127 time=0",
    "program_change channel=4 program=99 time=0",
    "aftertouch channel=5 value=6 time=0",
    "pitchwheel channel=6 pitch=-8192 time=0",
    "sysex data=(126,0,127,9) time=0",
    "quarter_frame frame_type=7 frame_value=15 time=0",
    "songpos pos=16383 time=0",
    "song_select song=12 time=0",
    "tune_request time=0",
    "clock time=0",
    "start time=0",
    "stop time=0",
    "active_sensing time=0",
    "reset time=0",
];

#[test]
fn mido_sees_todays_messages_and_its_own_arrive_unstamped() {
    let mut peer = MidoPeer::start("crates/midisock/tests/timing/mido_peer.py", &["server-both"]);
    let line = peer.line();
    let port_number: u16 =
        line.strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    let options = ConnectOptions::default().jitter_buffer(DelayMode::adaptive());
    let port = connect_with(("127.0.0.1", port_number), &options).unwrap();

    // mido → midisock: plain messages, delivered at once, no sender time.
    for expected in EVERY_MESSAGE {
        assert_eq!(peer.line(), format!("SENT {expected}"));
        let received = port.receive_timeout_stamped(WAIT).unwrap().expect("mido's message");
        assert_eq!(received.message.to_string(), expected);
        assert_eq!(received.sender_ns, None, "mido never stamps");
    }
    let stats = port.playout_stats().expect("the buffer is on");
    assert_eq!((stats.pushed, stats.offset_ns, stats.late), (0, None, 0), "nothing needed playing out");
    assert_eq!(port.decoder_stats(), Default::default());
    assert_eq!(port.parser_stats(), Default::default());
    assert!(!port.sends_stamps(), "mido never asks");

    // midisock → mido: exactly these messages, nothing else (the request is ignored by mido's
    // parser), in order.
    let ours: Vec<Message> = EVERY_MESSAGE.iter().map(|text| text.parse().unwrap()).collect();
    port.send_all(&ours).unwrap();
    port.close();
    let mut got = Vec::new();
    loop {
        let line = peer.line();
        if line == "END" {
            break;
        }
        got.push(line.strip_prefix("GOT ").unwrap_or_else(|| panic!("{line:?}")).to_owned());
    }
    assert_eq!(got, EVERY_MESSAGE);
    // The peer exits successfully (finish asserts it).
    peer.finish();
}
