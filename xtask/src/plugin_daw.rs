//! `cargo xtask plugin-daw`: the midisock VST3 in a real DAW. Ardour 7 (Debian's `ardour`
//! package) runs headless through its Lua session tool (`ardour7-lua`) on its "None (Dummy)"
//! audio backend, and records what a network sender plays through the plugin:
//!
//! 1. Ardour's own VST3 scanner indexes `<target>/bundled/midisock.vst3` (a private cache folder,
//!    so the user's Ardour setup is never touched).
//! 2. A Lua script creates a session with two MIDI tracks: "net" carries the midisock plugin (a
//!    client), and its MIDI output feeds the input of "rec". The session is saved.
//! 3. The plugin's saved state in the session file gets the address of a loopback TCP sender on
//!    an ephemeral port — exactly what a DAW restores when it opens a project (no test-only
//!    setting exists in the plugin).
//! 4. A second Lua script opens the session (the plugin connects), arms "rec", records, tells the
//!    sender through a file that the transport rolls, waits for its "sent" file, stops and saves.
//! 5. The sender writes three notes as plain MIDI bytes, as a mido peer would; the take Ardour
//!    wrote (a standard MIDI file) must hold exactly those notes, in order (read with mido).
//!
//! Every step has a deadline; every process is killed on failure. Files stay in
//! `<target>/plugin-daw/` for inspection.

use crate::env;
use base64::Engine as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PACKAGES: &[(&str, &str)] = &[("command -v ardour7-lua", "ardour")];
/// Ardour's private libraries and its VST3 scanner (Debian's layout).
const ARDOUR_LIB: &str = "/usr/lib/ardour7";
/// Each Ardour run (start, load a 20 MB debug plugin, record, save) gets this long.
const RUN_DEADLINE: Duration = Duration::from_secs(180);
/// The notes the sender plays, 100 ms apart: (key, velocity).
const NOTES: &[(u8, u8)] = &[(60, 100), (64, 90), (67, 80)];

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("plugin-daw takes no arguments, got {unknown:?}"));
    }
    env::ensure_debian_packages(PACKAGES)?;
    let python = env::python_with_mido()?;
    let bundle = env::target_dir().join("bundled").join("midisock.vst3");
    if !bundle.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo xtask bundle midisock-plugin` (cargo xtask test does)",
            bundle.display()
        ));
    }
    let dir = env::target_dir().join("plugin-daw");
    let _ = std::fs::remove_dir_all(&dir);
    let config = dir.join("config").join("ardour7");
    std::fs::create_dir_all(&config).map_err(|e| format!("cannot create {}: {e}", config.display()))?;
    // The dummy backend is hidden unless the configuration says otherwise.
    write(
        &config.join("config"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Ardour>\n  <Config>\n    \
         <Option name=\"hide-dummy-backend\" value=\"0\"/>\n  </Config>\n</Ardour>\n",
    )?;
    let ardour = Ardour { dir: dir.clone(), bundle_dir: bundle.parent().unwrap_or(&dir).to_path_buf() };

    // 1. Index the plugin.
    let mut scan = ardour.command(&Path::new(ARDOUR_LIB).join("ardour-vst3-scanner"));
    scan.args(["-f", "-q"]).arg(&bundle);
    ardour.run_bounded("the VST3 scan", &mut scan)?;

    // 2. The session.
    let session = dir.join("session");
    write(&dir.join("create.lua"), &CREATE_LUA.replace("@SESSION@", &lua_string(&session)))?;
    let mut create = ardour.command(Path::new("ardour7-lua"));
    create.arg(dir.join("create.lua"));
    ardour.run_bounded("creating the session", &mut create)?;

    // 3. The sender, and the plugin's saved state pointing at it.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let session_file = session.join("session.ardour");
    set_plugin_address(&session_file, &format!("127.0.0.1:{port}"))?;
    let rolling = dir.join("rolling");
    let sent = dir.join("sent");
    let sender = {
        let (rolling, sent) = (rolling.clone(), sent.clone());
        std::thread::spawn(move || send_notes(listener, &rolling, &sent))
    };

    // 4. Record.
    let record_lua = RECORD_LUA
        .replace("@SESSION@", &lua_string(&session))
        .replace("@ROLLING@", &lua_string(&rolling))
        .replace("@SENT@", &lua_string(&sent));
    write(&dir.join("record.lua"), &record_lua)?;
    let mut record = ardour.command(Path::new("ardour7-lua"));
    record.arg(dir.join("record.lua"));
    let recorded = ardour.run_bounded("recording", &mut record);
    let sender = sender.join().map_err(|_| "the sender thread panicked".to_string())?;
    recorded?;
    sender?;

    // 5. What Ardour recorded.
    let midifiles = session.join("interchange").join("session").join("midifiles");
    let takes: Vec<PathBuf> = std::fs::read_dir(&midifiles)
        .map_err(|e| format!("Ardour recorded nothing ({}: {e})", midifiles.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "mid"))
        .collect();
    let [take] = takes.as_slice() else {
        return Err(format!("expected one recorded take in {}, found {takes:?}", midifiles.display()));
    };
    let output = Command::new(&python)
        .args(["-c", READ_TAKE_PY])
        .arg(take)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!("cannot read {}: {}", take.display(), String::from_utf8_lossy(&output.stderr)));
    }
    let got = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let want: Vec<String> = NOTES
        .iter()
        .flat_map(|&(key, velocity)| [format!("note_on {key} {velocity}"), format!("note_off {key}")])
        .collect();
    if got.lines().collect::<Vec<_>>() != want {
        return Err(format!(
            "Ardour's take {} does not hold the notes sent through the plugin:\n{got}\nwanted:\n{}",
            take.display(),
            want.join("\n")
        ));
    }
    eprintln!(
        "xtask: plugin-daw: Ardour recorded the {} notes a network peer sent through the midisock VST3 ({})",
        NOTES.len(),
        take.display()
    );
    Ok(())
}

/// How Ardour is run: private configuration and cache folders, the bundle's folder as VST3 path.
struct Ardour {
    dir: PathBuf,
    bundle_dir: PathBuf,
}

impl Ardour {
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("VST3_PATH", &self.bundle_dir)
            // The scanner is started directly (ardour7-lua sets this itself).
            .env("LD_LIBRARY_PATH", ARDOUR_LIB)
            .stdin(Stdio::null());
        command
    }

    /// Runs `command` to completion within [`RUN_DEADLINE`]; its output goes to `<dir>/<what>.log`.
    fn run_bounded(&self, what: &str, command: &mut Command) -> Result<(), String> {
        let log_path = self.dir.join(format!("{}.log", what.replace(' ', "-")));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        eprintln!("xtask: plugin-daw: {what}");
        let mut child =
            command.stdout(log).stderr(err).spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let start = Instant::now();
        loop {
            match child.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    return Err(format!("{what} failed ({status}); its output ({}):\n{log}", log_path.display()));
                }
                None if start.elapsed() > RUN_DEADLINE => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{what} did not finish in {RUN_DEADLINE:?} (log: {})", log_path.display()));
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Accepts the plugin's connection, waits until the transport rolls, plays [`NOTES`] and says so.
fn send_notes(listener: TcpListener, rolling: &Path, sent: &Path) -> Result<(), String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + RUN_DEADLINE;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(format!("the plugin in Ardour never connected to the sender: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    while !rolling.exists() {
        if Instant::now() > deadline {
            return Err("Ardour's transport never rolled".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the recording settle in before the first note.
    std::thread::sleep(Duration::from_millis(300));
    for &(key, velocity) in NOTES {
        stream.write_all(&[0x90, key, velocity]).map_err(|e| format!("cannot send to the plugin: {e}"))?;
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(&[0x80, key, 0]).map_err(|e| format!("cannot send to the plugin: {e}"))?;
        std::thread::sleep(Duration::from_millis(100));
    }
    write(sent, "sent\n")?;
    // Keep the connection until Ardour closes it (the plugin goes away with the session).
    stream.set_read_timeout(Some(RUN_DEADLINE)).map_err(|e| e.to_string())?;
    let _ = stream.read(&mut [0; 64]);
    Ok(())
}

/// Rewrites the midisock plugin's saved state in an Ardour session file so that it connects to
/// `address`. Ardour keeps a VST3 plugin's state as a base64 `<chunk>` in the VST3 SDK's preset
/// layout: `"VST3"`, version (u32 = 1), the class id (32 hex characters), the offset of the chunk
/// list (i64), the component state (nice-plug's JSON), then `"List"`, a count (u32) and entries
/// of id (4 bytes), offset (i64) and size (i64): `"Comp"` (the component state) and `"Cont"`
/// (the controller's, empty). All little endian.
fn set_plugin_address(session_file: &Path, address: &str) -> Result<(), String> {
    let xml = std::fs::read_to_string(session_file)
        .map_err(|e| format!("cannot read the session {}: {e}", session_file.display()))?;
    let (start, end) = match (xml.find("<chunk>"), xml.find("</chunk>")) {
        (Some(start), Some(end)) if xml.matches("<chunk>").count() == 1 && start < end => (start + 7, end),
        _ => return Err(format!("expected one plugin state <chunk> in {}", session_file.display())),
    };
    let chunk = base64::engine::general_purpose::STANDARD
        .decode(xml[start..end].trim())
        .map_err(|e| format!("the plugin state in {} is not base64: {e}", session_file.display()))?;
    if chunk.len() < 48 || &chunk[..4] != b"VST3" {
        return Err(format!("the plugin state in {} is not a VST3 state", session_file.display()));
    }
    let class_id = &chunk[8..40];
    // The same JSON nice-plug writes: each persisted field holds its own JSON text.
    let state = format!(
        r#"{{"version":"0.1.0","params":{{}},"fields":{{"address":{},"mode":"\"Client\""}}}}"#,
        json_string(&json_string(address))
    );
    let list_at = 48 + state.len() as i64;
    let mut new = Vec::new();
    new.extend_from_slice(b"VST3");
    new.extend_from_slice(&1u32.to_le_bytes());
    new.extend_from_slice(class_id);
    new.extend_from_slice(&list_at.to_le_bytes());
    new.extend_from_slice(state.as_bytes());
    new.extend_from_slice(b"List");
    new.extend_from_slice(&2u32.to_le_bytes());
    for (id, offset, size) in [(b"Comp", 48i64, state.len() as i64), (b"Cont", list_at, 0)] {
        new.extend_from_slice(id);
        new.extend_from_slice(&offset.to_le_bytes());
        new.extend_from_slice(&size.to_le_bytes());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&new);
    write(session_file, &format!("{}{encoded}{}", &xml[..start], &xml[end..]))
}

/// `text` as a JSON string literal (the address and nice-plug's field text need no more than
/// quotes and backslashes escaped).
fn json_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A path as a Lua string literal.
fn lua_string(path: &Path) -> String {
    format!("\"{}\"", path.display().to_string().replace('\\', "\\\\").replace('"', "\\\""))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Creates the session: "net" (midisock) feeds "rec".
const CREATE_LUA: &str = r#"
AudioEngine:set_backend("None (Dummy)", "", "")
assert(create_session(@SESSION@, "session", 48000), "cannot create the session")
local function midi_track(name)
  local midi = ARDOUR.ChanCount(ARDOUR.DataType("midi"), 1)
  local tracks = Session:new_midi_track(midi, midi, false, ARDOUR.PluginInfo(), nil, nil, 1, name,
    ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, false, false)
  assert(tracks:size() == 1, "cannot create the track " .. name)
  return tracks:front()
end
local net = midi_track("net")
local rec = midi_track("rec")
local plugin = ARDOUR.LuaAPI.new_plugin(Session, "midisock", ARDOUR.PluginType.VST3, "")
assert(not plugin:isnil(), "Ardour does not know the midisock VST3")
assert(net:add_processor_by_index(plugin, 0, nil, true) == 0, "cannot add midisock to the track")
net:output():disconnect_all(nil)
rec:input():disconnect_all(nil)
assert(rec:input():connect(rec:input():midi(0), net:output():midi(0):name(), nil) == 0, "cannot connect net to rec")
Session:save_state("", false, false, false, false, false)
close_session()
"#;

/// Opens the session, records while the sender plays, saves.
const RECORD_LUA: &str = r#"
local function wait_for(what, check, seconds)
  for _ = 1, seconds * 20 do
    if check() then return end
    ARDOUR.LuaAPI.usleep(50000)
  end
  error("timed out waiting for " .. what)
end
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end
AudioEngine:set_backend("None (Dummy)", "", "")
assert(load_session(@SESSION@, "session"), "cannot open the session")
local rec = Session:route_by_name("rec"):to_track()
rec:rec_enable_control():set_value(1, PBD.GroupControlDisposition.NoGroup)
Session:maybe_enable_record(false)
Session:request_roll(ARDOUR.TransportRequestSource.TRS_UI)
wait_for("the transport to roll", function() return Session:actively_recording() end, 30)
local f = assert(io.open(@ROLLING@, "w"))
f:write("rolling\n")
f:close()
wait_for("the sender", function() return exists(@SENT@) end, 60)
ARDOUR.LuaAPI.usleep(500000)
Session:request_stop(false, false, ARDOUR.TransportRequestSource.TRS_UI)
wait_for("the transport to stop", function() return not Session:transport_rolling() end, 30)
Session:save_state("", false, false, false, false, false)
close_session()
"#;

/// Prints a MIDI file's notes, one per line: "note_on KEY VELOCITY" / "note_off KEY".
const READ_TAKE_PY: &str = r#"
import sys, mido
for track in mido.MidiFile(sys.argv[1]).tracks:
    for m in track:
        if m.type == "note_on" and m.velocity > 0:
            print("note_on", m.note, m.velocity)
        elif m.type in ("note_off", "note_on"):
            print("note_off", m.note)
"#;
