//! Line I/O shared by the commands: messages to stdout, text lines from stdin to a sink.

use midisock::Message;
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes one message as a line and flushes, so a pipe reader sees it at once.
/// Returns false when stdout is gone (e.g. `| head`): the caller stops quietly.
pub fn print_message(out: &mut impl Write, message: &Message) -> bool {
    writeln!(out, "{message}").and_then(|()| out.flush()).is_ok()
}

/// Reads stdin line by line, parsing each as a message and handing it to `sink`. Blank lines
/// and `#` comments are skipped. A line that does not parse is reported on stderr and skipped,
/// so one typo does not end a session; `bad_lines` counts such lines as they happen (another
/// thread may read it while this one still waits for input). Returns when stdin ends or `sink`
/// fails.
pub fn for_each_stdin_message(
    bad_lines: &AtomicUsize,
    mut sink: impl FnMut(&Message) -> Result<(), midisock::Error>,
) -> io::Result<()> {
    for (number, line) in io::stdin().lock().lines().enumerate() {
        let line = line?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match text.parse::<Message>() {
            Ok(message) => {
                if let Err(e) = sink(&message) {
                    eprintln!("midisock: {e}");
                    return Ok(());
                }
            }
            Err(e) => {
                bad_lines.fetch_add(1, Ordering::Relaxed);
                eprintln!("midisock: stdin line {}: {e}: {text:?} (not sent)", number + 1);
            }
        }
    }
    Ok(())
}
