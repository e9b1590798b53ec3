//! `play` and `decode` with Standard MIDI Files, and `decode` as a live pipe.

mod common;

use common::*;
use midisock::{Message, PortServer};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

fn event(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
    TrackEvent { delta: u28::new(delta), kind }
}

fn note(delta: u32, key: u8, vel: u8) -> TrackEvent<'static> {
    event(
        delta,
        TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) },
        },
    )
}

fn tempo(delta: u32, us_per_beat: u32) -> TrackEvent<'static> {
    event(delta, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us_per_beat))))
}

fn end(delta: u32) -> TrackEvent<'static> {
    event(delta, TrackEventKind::Meta(MetaMessage::EndOfTrack))
}

/// Writes a format 1 file at 480 ticks per beat into a fresh temporary path.
fn write_smf(name: &str, tracks: Vec<Vec<TrackEvent<'static>>>) -> TempFile {
    let mut smf = Smf::new(Header::new(Format::Parallel, Timing::Metrical(u15::new(480))));
    smf.tracks = tracks;
    let path = std::env::temp_dir().join(format!("midisock-{name}-{}.mid", std::process::id()));
    smf.save(&path).unwrap();
    TempFile(path)
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A file of `count` notes (a note-on, 30 ticks, its note-off, 30 ticks: 16 messages per beat)
/// under a tempo map that changes every 32 notes between 100 and 180 bpm; returns it and each
/// message's time in ns.
fn tempo_map_file(count: u32) -> (TempFile, Vec<(u64, Message)>) {
    let tempos = [600_000u32, 333_333, 500_000, 428_571];
    let mut conductor = Vec::new();
    let mut expected = Vec::new();
    let mut music = Vec::new();
    let (mut now_ns, mut tempo_us) = (0u64, tempos[0]);
    for i in 0..count {
        if i % 32 == 0 {
            tempo_us = tempos[(i / 32) as usize % tempos.len()];
            conductor.push(tempo(if i == 0 { 0 } else { 32 * 60 }, tempo_us));
        }
        let key = 36 + (i % 48) as u8;
        music.push(note(if i == 0 { 0 } else { 30 }, key, 90));
        expected.push((now_ns, Message::NoteOn { channel: 0, note: key, velocity: 90 }));
        now_ns += 30 * u64::from(tempo_us) * 1000 / 480;
        music.push(note(30, key, 0));
        expected.push((now_ns, Message::NoteOn { channel: 0, note: key, velocity: 0 }));
        now_ns += 30 * u64::from(tempo_us) * 1000 / 480;
    }
    conductor.push(end(0));
    music.push(end(0));
    (write_smf("tempo-map", vec![conductor, music]), expected)
}

#[test]
fn play_follows_the_tempo_map_and_reports_timing() {
    // 128 notes, 256 messages under four tempos: about 7.4 s.
    let (file, expected) = tempo_map_file(128);
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let player = midisock()
        .arg("play")
        .arg(&file.0)
        .arg(server.local_addr().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stamped as the server reads them, while the file plays.
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match server.receive_timeout_stamped(WAIT).unwrap() {
            Some(received) => got.push(received),
            None => panic!("play stopped sending after {} messages", got.len()),
        }
    }
    let output = player.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Standard MIDI File, format 1, 2 track(s), 480 ticks per beat"), "{stderr}");
    assert!(stderr.contains("played 256 messages; lateness against the tempo map: median"), "{stderr}");
    let messages: Vec<&Message> = got.iter().map(|r| &r.message).collect();
    assert_eq!(messages, expected.iter().map(|(_, m)| m).collect::<Vec<_>>());

    // Lateness of each arrival against the tempo map, taking as the start the instant that puts
    // the most punctual message exactly on time (the player's start is not visible from here).
    let offsets: Vec<i128> =
        got.iter().zip(&expected).map(|(r, (at, _))| i128::from(r.timestamp_ns) - i128::from(*at)).collect();
    let start = *offsets.iter().min().unwrap();
    let mut errors_us: Vec<f64> = offsets.iter().map(|o| (o - start) as f64 / 1000.0).collect();
    errors_us.sort_by(f64::total_cmp);
    let pick = |q: f64| errors_us[((errors_us.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "play timing error (arrival against the tempo map) over {} messages: median {:.0} µs, p99 {:.0} µs, max {:.0} µs \
         (play's own report: {})",
        errors_us.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0),
        stderr.lines().last().unwrap_or_default()
    );
}

#[test]
fn play_interrupted_releases_what_it_held() {
    // A note held for 100 beats, then its note-off: interrupted long before.
    let file = write_smf("held", vec![vec![note(0, 64, 100), note(48_000, 64, 0), end(0)]]);
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut player = start(&["play", file.0.to_str().unwrap(), &server.local_addr().to_string()]);
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOn { channel: 0, note: 64, velocity: 100 }));
    player.process.signal(libc::SIGINT);
    assert_eq!(player.process.exit_status().code(), Some(130));
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOff { channel: 0, note: 64, velocity: 0 }));
    let rest = remaining(&player.stderr);
    let last = rest.last().unwrap();
    assert!(
        last.starts_with("midisock: SIGINT: stopped at 0:00.") && last.ends_with("of 0:50.0; released 1 held notes"),
        "{rest:?}"
    );
}

#[test]
fn play_refuses_what_is_not_a_midi_file() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let path = std::env::temp_dir().join(format!("midisock-not-midi-{}.mid", std::process::id()));
    std::fs::write(&path, b"RIFF....WAVEfmt ").unwrap();
    let output = midisock().arg("play").arg(&path).arg(server.local_addr().to_string()).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is not a Standard MIDI File"), "{stderr}");
    // A file cut short inside its header (midly reads a cut-off track leniently, as players do).
    let file = write_smf("truncated", vec![vec![note(0, 60, 1)]]);
    let bytes = std::fs::read(&file.0).unwrap();
    std::fs::write(&file.0, &bytes[..10]).unwrap();
    let output = midisock().arg("play").arg(&file.0).arg(server.local_addr().to_string()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("not a valid Standard MIDI File"));
}

#[test]
fn decode_prints_a_midi_files_events_in_playing_order() {
    let file =
        write_smf("decode", vec![vec![tempo(0, 250_000), end(0)], vec![note(0, 60, 100), note(240, 60, 0), end(0)]]);
    let output = midisock().arg("decode").arg(&file.0).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "note_on channel=0 note=60 velocity=100 time=0\nnote_on channel=0 note=60 velocity=0 time=0.125\n"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Standard MIDI File, format 1, 2 track(s), 480 ticks per beat: 2 messages"), "{stderr}");
}

#[test]
fn decode_recognises_a_midi_file_arriving_in_pieces() {
    let file = write_smf("pieces", vec![vec![note(0, 61, 100), end(0)]]);
    let bytes = std::fs::read(&file.0).unwrap();
    let mut child =
        midisock().arg("decode").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // "MT" first, the rest a moment later (decode reads them as they come).
    stdin.write_all(&bytes[..2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stdin.write_all(&bytes[2..]).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "note_on channel=0 note=61 velocity=100 time=0\n");
}

#[test]
fn decode_works_as_a_live_pipe_and_reports_ignored_bytes_in_words() {
    let mut child =
        midisock().arg("decode").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    // Stray data, an undefined status byte, then a note: the note shows while stdin stays open.
    stdin.write_all(&[0x40, 0x41, 0xF4, 0x90, 60, 64]).unwrap();
    stdin.flush().unwrap();
    assert_eq!(stdout.recv_timeout(WAIT).unwrap(), "note_on channel=0 note=60 velocity=64 time=0");
    drop(stdin);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        stderr,
        "midisock: ignored 2 stray data bytes (no status byte before them), 1 undefined status byte (F4, F5, F9 or FD)\n"
    );
    assert!(stdout.recv_timeout(Duration::from_secs(1)).is_err());
}
