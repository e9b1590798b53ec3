//! `text`: arbitrary UTF-8 lines through `Message::from_str` (mido's text format).
//!
//! Invariants: never panics; anything accepted validates, displays in canonical form, and that
//! form parses back to the same message (and displays identically); its bytes decode back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midisock::Message;
use midisock_fuzz::check_message;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    for line in std::iter::once(text).chain(text.lines()) {
        let Ok(message) = line.parse::<Message>() else { continue };
        let shown = message.to_string();
        assert!(shown.ends_with(" time=0"), "display {shown:?} of {line:?}");
        let reparsed = shown.parse::<Message>();
        assert_eq!(reparsed.as_ref(), Ok(&message), "{line:?} displays as {shown:?}");
        assert_eq!(reparsed.unwrap().to_string(), shown);
        // The canonical line is also what a line with extra whitespace around it gives.
        assert_eq!(format!("  {shown}\t\n").parse::<Message>().as_ref(), Ok(&message));
        check_message(&message, usize::MAX);
    }
});
