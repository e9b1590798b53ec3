//! With MIDI ports built in (either backend), `ports` either lists them or says in one line that
//! no backend is usable: never the MIDI library's own messages, never a panic. On a machine
//! without sound devices (CI) this is the one-line failure; on a desktop, the listing.

use std::process::Command;

#[test]
fn ports_lists_or_fails_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_midisock"))
        .arg("ports")
        // A JACK build must not find some other JACK server of the machine.
        .env("JACK_DEFAULT_SERVER", "midisock-test-no-such-server")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    match output.status.code() {
        Some(0) => {
            assert!(stdout.starts_with("Input ports:\n") && stdout.contains("\nOutput ports:\n"), "{stdout}");
            assert_eq!(stderr, "");
        }
        Some(1) => {
            assert_eq!(stdout, "");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.starts_with("midisock: no MIDI backend is usable: "), "{stderr}");
        }
        other => panic!("exit {other:?}: {stderr}"),
    }
}
