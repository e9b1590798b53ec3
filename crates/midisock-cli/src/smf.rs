//! Standard MIDI Files: read with midly, flattened into one timeline of messages at absolute
//! times computed from the file's tempo map. `play` schedules the timeline; `decode` prints it.

use midisock::Message;
use midly::{Format, MetaMessage, Smf, Timing, TrackEventKind};

/// Every Standard MIDI File starts with this chunk tag.
pub const HEADER_TAG: &[u8] = b"MThd";

/// The tempo a file plays at until its first tempo event: 120 beats per minute.
const DEFAULT_TEMPO_US_PER_BEAT: u64 = 500_000;

/// True when `bytes` start like a Standard MIDI File.
pub fn looks_like_smf(bytes: &[u8]) -> bool {
    bytes.starts_with(HEADER_TAG)
}

/// One message of the file and when it plays, in nanoseconds from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub at_ns: u64,
    pub message: Message,
}

/// A file flattened for playing.
#[derive(Debug)]
pub struct Timeline {
    /// Messages in playing order (absolute times never decrease).
    pub events: Vec<Timed>,
    /// When the file ends (its last end-of-track), in nanoseconds; at least the last event.
    pub length_ns: u64,
    /// A one-line description: format, tracks, timing.
    pub summary: String,
    /// Track events that carry no MIDI message for the wire (escapes, unknown meta events are
    /// not counted; these are events the file has but that could not be turned into a message).
    pub skipped: usize,
}

/// Reads a Standard MIDI File. The error says what is wrong with the file, in words.
pub fn load(bytes: &[u8]) -> Result<Timeline, String> {
    let smf = Smf::parse(bytes).map_err(|e| format!("not a valid Standard MIDI File: {e}"))?;
    let format = match smf.header.format {
        Format::SingleTrack => "format 0",
        Format::Parallel => "format 1",
        Format::Sequential => "format 2",
    };
    let timing = match smf.header.timing {
        Timing::Metrical(tpq) => format!("{} ticks per beat", tpq.as_int()),
        Timing::Timecode(fps, sub) => format!("{} frames per second, {} ticks per frame", fps.as_f32(), sub),
    };
    let summary = format!("Standard MIDI File, {format}, {} track(s), {timing}", smf.tracks.len());

    // Merge the tracks by absolute tick. Format 2 tracks are independent songs: each starts where
    // the previous one ended. A stable sort keeps file order among events of the same tick.
    let mut merged: Vec<(u64, TrackEventKind)> = Vec::new();
    let mut song_start = 0u64;
    let mut end_tick = 0u64;
    for track in &smf.tracks {
        let mut tick = song_start;
        for event in track {
            tick += u64::from(event.delta.as_int());
            merged.push((tick, event.kind));
        }
        end_tick = end_tick.max(tick);
        if smf.header.format == Format::Sequential {
            song_start = tick;
        }
    }
    merged.sort_by_key(|(tick, _)| *tick);

    let mut clock = TempoClock::new(smf.header.timing);
    let mut events = Vec::new();
    let mut skipped = 0;
    let mut wire = Vec::with_capacity(16);
    for (tick, kind) in merged {
        let at_ns = clock.at(tick);
        match kind {
            TrackEventKind::Meta(MetaMessage::Tempo(us)) => clock.set_tempo(tick, u64::from(us.as_int())),
            TrackEventKind::Meta(_) => {}
            TrackEventKind::Midi { channel, message } => {
                wire.clear();
                let live = midly::live::LiveEvent::Midi { channel, message };
                match live.write_std(&mut wire).ok().and_then(|()| Message::from_bytes(&wire).ok()) {
                    Some(message) => events.push(Timed { at_ns, message }),
                    None => skipped += 1,
                }
            }
            TrackEventKind::SysEx(data) => {
                // midly gives the bytes after F0, normally ending with F7.
                let data = data.strip_suffix(&[0xF7]).unwrap_or(data);
                match Message::sysex(data.to_vec()) {
                    Ok(message) => events.push(Timed { at_ns, message }),
                    Err(_) => skipped += 1,
                }
            }
            // Escapes carry arbitrary bytes (split sysex, real-time) with no message framing.
            TrackEventKind::Escape(_) => skipped += 1,
        }
    }
    let length_ns = clock.at(end_tick).max(events.last().map_or(0, |e| e.at_ns));
    Ok(Timeline { events, length_ns, summary, skipped })
}

/// Ticks to nanoseconds under a tempo map. Each time is computed from the last tempo change,
/// never by adding up rounded deltas, so a long file does not drift.
struct TempoClock {
    timing: Timing,
    /// The tick and time of the last tempo change.
    anchor_tick: u64,
    anchor_ns: u64,
    tempo_us_per_beat: u64,
}

impl TempoClock {
    fn new(timing: Timing) -> TempoClock {
        TempoClock { timing, anchor_tick: 0, anchor_ns: 0, tempo_us_per_beat: DEFAULT_TEMPO_US_PER_BEAT }
    }

    fn at(&self, tick: u64) -> u64 {
        let ticks = u128::from(tick - self.anchor_tick);
        let elapsed = match self.timing {
            Timing::Metrical(tpq) => {
                ticks * u128::from(self.tempo_us_per_beat) * 1000 / u128::from(tpq.as_int().max(1))
            }
            // Timecode files count absolute time (frames × subframes): tempo events do not apply.
            Timing::Timecode(fps, sub) => {
                let ticks_per_second = f64::from(fps.as_f32()) * f64::from(sub.max(1));
                (ticks as f64 * 1e9 / ticks_per_second).round() as u128
            }
        };
        self.anchor_ns + u64::try_from(elapsed).unwrap_or(u64::MAX - self.anchor_ns)
    }

    fn set_tempo(&mut self, tick: u64, us_per_beat: u64) {
        if let Timing::Metrical(_) = self.timing {
            self.anchor_ns = self.at(tick);
            self.anchor_tick = tick;
            self.tempo_us_per_beat = us_per_beat;
        }
    }
}

/// Formats nanoseconds as `m:ss.s` for messages to the user.
pub fn clock_text(ns: u64) -> String {
    let tenths = ns / 100_000_000;
    format!("{}:{:02}.{}", tenths / 600, tenths / 10 % 60, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{Header, MidiMessage, TrackEvent};

    fn note_on(delta: u32, key: u8) -> TrackEvent<'static> {
        TrackEvent {
            delta: u28::new(delta),
            kind: TrackEventKind::Midi {
                channel: u4::new(1),
                message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(100) },
            },
        }
    }

    fn tempo(delta: u32, us: u32) -> TrackEvent<'static> {
        TrackEvent { delta: u28::new(delta), kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us))) }
    }

    fn file(format: Format, tracks: Vec<Vec<TrackEvent<'static>>>) -> Vec<u8> {
        let mut smf = Smf::new(Header::new(format, Timing::Metrical(u15::new(480))));
        smf.tracks = tracks;
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn tempo_changes_in_another_track_apply_to_all() {
        // Track 0: 120 bpm, then 60 bpm from beat 1. Track 1: a note on each of beats 0..3.
        let bytes = file(
            Format::Parallel,
            vec![
                vec![tempo(0, 500_000), tempo(480, 1_000_000)],
                (0..3).map(|i| note_on(if i == 0 { 0 } else { 480 }, 60 + i)).collect(),
            ],
        );
        assert!(looks_like_smf(&bytes));
        let timeline = load(&bytes).unwrap();
        let times: Vec<u64> = timeline.events.iter().map(|e| e.at_ns).collect();
        assert_eq!(times, vec![0, 500_000_000, 1_500_000_000]);
        assert_eq!(timeline.events[2].message, Message::NoteOn { channel: 1, note: 62, velocity: 100 });
        assert!(timeline.summary.contains("format 1, 2 track(s), 480 ticks per beat"), "{}", timeline.summary);
    }

    #[test]
    fn no_drift_over_many_odd_ticks() {
        // 100,000 events one tick apart at a tempo whose tick is not a whole number of ns.
        let mut track = vec![tempo(0, 500_001)];
        track.extend((0..100_000).map(|_| note_on(1, 60)));
        let timeline = load(&file(Format::SingleTrack, vec![track])).unwrap();
        let last = timeline.events.last().unwrap().at_ns;
        assert_eq!(last, 100_000u64 * 500_001_000 / 480);
    }

    #[test]
    fn sequential_tracks_follow_each_other() {
        let bytes = file(Format::Sequential, vec![vec![note_on(480, 60)], vec![note_on(480, 61)]]);
        let times: Vec<u64> = load(&bytes).unwrap().events.iter().map(|e| e.at_ns).collect();
        assert_eq!(times, vec![500_000_000, 1_000_000_000]);
    }

    #[test]
    fn garbage_is_an_error_in_words() {
        let error = load(b"MThd\x00\x00\x00\x06\x00").unwrap_err();
        assert!(error.starts_with("not a valid Standard MIDI File"), "{error}");
    }

    #[test]
    fn clock_text_reads_like_a_clock() {
        assert_eq!(clock_text(0), "0:00.0");
        assert_eq!(clock_text(83_450_000_000), "1:23.4");
    }
}
