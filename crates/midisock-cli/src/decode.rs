//! `midisock decode`: raw MIDI bytes (a capture, a pipe) to text lines, or the events of a
//! Standard MIDI File.

use crate::commands::{Failure, BAD_INPUT, FAILED};
use crate::{log, smf};
use midisock::{Parser, ParserStats};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// Largest Standard MIDI File read (a whole file is parsed at once; real ones are far smaller).
pub const MAX_SMF_BYTES: u64 = 64 << 20;

pub fn decode(file: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut input: Box<dyn Read> =
        match file {
            Some(path) => Box::new(std::fs::File::open(path).map_err(|e| Failure {
                message: format!("cannot open {}: {e}", path.display()),
                exit_code: BAD_INPUT,
            })?),
            None => Box::new(io::stdin().lock()),
        };
    let mut parser = Parser::new();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    loop {
        let mut n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure { message: format!("reading input: {e}"), exit_code: FAILED }),
        };
        // A pipe may hand over the first bytes in pieces: enough of them to tell a file header.
        while first && n < smf::HEADER_TAG.len() && smf::HEADER_TAG.starts_with(&buf[..n]) {
            match input.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(more) => n += more,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure { message: format!("reading input: {e}"), exit_code: FAILED }),
            }
        }
        if std::mem::take(&mut first) && smf::looks_like_smf(&buf[..n]) {
            let mut bytes = buf[..n].to_vec();
            input
                .take(MAX_SMF_BYTES)
                .read_to_end(&mut bytes)
                .map_err(|e| Failure { message: format!("reading input: {e}"), exit_code: FAILED })?;
            return decode_smf(&bytes, &mut out);
        }
        let mut stdout_ok = true;
        parser.feed(&buf[..n], |m| stdout_ok = stdout_ok && writeln!(out, "{m}").is_ok());
        // Flush per read: as a live pipe (`nc … | midisock decode`) each message shows at once.
        if !stdout_ok || out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if parser.is_mid_message() {
        log::warn(format_args!("input ended in the middle of a message (dropped)"));
    }
    if let Some(text) = ignored_text(&parser.stats()) {
        log::warn(format_args!("ignored {text}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// A Standard MIDI File is not a byte stream: decoding it as one prints nonsense. Its events are
/// printed in playing order, `time=` holding the seconds since the previous one (as mido does
/// when it plays a file).
fn decode_smf(bytes: &[u8], out: &mut impl Write) -> Result<ExitCode, Failure> {
    if bytes.len() as u64 >= MAX_SMF_BYTES {
        return Err(Failure { message: "Standard MIDI File larger than 64 MiB".into(), exit_code: BAD_INPUT });
    }
    let timeline = smf::load(bytes).map_err(|message| Failure { message, exit_code: BAD_INPUT })?;
    log::info(format_args!(
        "{}: {} messages, {} long; time= is seconds since the previous message",
        timeline.summary,
        timeline.events.len(),
        smf::clock_text(timeline.length_ns)
    ));
    let mut previous = 0;
    for event in &timeline.events {
        let text = event.message.to_string();
        let text = text.strip_suffix(" time=0").unwrap_or(&text);
        let delta = (event.at_ns - previous) as f64 / 1e9;
        previous = event.at_ns;
        if writeln!(out, "{text} time={delta}").is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let _ = out.flush();
    if timeline.skipped > 0 {
        log::warn(format_args!("skipped {} events that are not MIDI messages (escapes)", timeline.skipped));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the parser ignored, in words; `None` when nothing.
pub fn ignored_text(stats: &ParserStats) -> Option<String> {
    let parts: Vec<String> = [
        (stats.stray_data_bytes, "stray data byte", "stray data bytes", " (no status byte before them)"),
        (stats.undefined_status_bytes, "undefined status byte", "undefined status bytes", " (F4, F5, F9 or FD)"),
        (
            stats.partial_messages_dropped,
            "incomplete message",
            "incomplete messages",
            " (cut short by the next status byte)",
        ),
        (stats.sysex_aborted, "unterminated sysex", "unterminated sysexes", " (no F7 before the next status byte)"),
        (stats.sysex_overflows, "oversized sysex", "oversized sysexes", ""),
    ]
    .iter()
    .filter(|(count, ..)| *count > 0)
    .map(|&(count, one, many, why)| format!("{count} {}{why}", if count == 1 { one } else { many }))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_bytes_in_words() {
        assert_eq!(ignored_text(&ParserStats::default()), None);
        let stats = ParserStats { stray_data_bytes: 3, undefined_status_bytes: 1, ..ParserStats::default() };
        assert_eq!(
            ignored_text(&stats).unwrap(),
            "3 stray data bytes (no status byte before them), 1 undefined status byte (F4, F5, F9 or FD)"
        );
    }
}
