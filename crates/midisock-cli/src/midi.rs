//! Real MIDI ports through midir (ALSA or JACK on Linux, CoreMIDI on macOS, WinMM on Windows),
//! built with the `midi` (or `jack`) feature. Without it every entry point fails with one line
//! that says how to get a build that has them.
//!
//! A port opened by name is watched: when it disappears (a USB device unplugged, a JACK client
//! gone) it is closed, and when a port of that name appears again it is reopened. A virtual port
//! is created by midisock itself and lives as long as the command.

use crate::commands::Failure;
use midisock::Message;
use std::sync::Arc;

/// Where messages read from an input port go (the server's broadcast, a client's send).
pub type Sink = Arc<dyn Fn(&Message) + Send + Sync>;

/// Which ports to bridge, from the command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MidiOptions {
    /// Read this MIDI input port (`midisock ports` lists them; a unique part of a name is
    /// enough) and send what it plays over the network.
    #[arg(long, value_name = "PORT")]
    pub midi_in: Option<String>,
    /// Play what arrives from the network on this MIDI output port.
    #[arg(long, value_name = "PORT")]
    pub midi_out: Option<String>,
    /// Create --midi-in and --midi-out as new virtual ports with those names, for other programs
    /// to connect to (ALSA, JACK and CoreMIDI; not Windows).
    #[arg(long = "virtual")]
    pub virtual_ports: bool,
}

impl MidiOptions {
    /// Opens the ports asked for: the input feeds `sink`. Nothing asked, nothing opened.
    pub fn open(&self, sink: Sink) -> Result<Bridge, Failure> {
        let input = match &self.midi_in {
            Some(name) => Some(backend::open_input(name, self.virtual_ports, sink)?),
            None => None,
        };
        let output = match &self.midi_out {
            Some(name) => Some(backend::open_output(name, self.virtual_ports)?),
            None => None,
        };
        Ok(Bridge { _input: input, output })
    }
}

/// The open ports of a command; dropping it closes them.
pub struct Bridge {
    _input: Option<backend::Input>,
    output: Option<backend::Output>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("output", &self.output.is_some()).finish_non_exhaustive()
    }
}

impl Bridge {
    /// Plays `message` on the output port, if there is one (dropped while the port is gone).
    pub fn play(&self, message: &Message) {
        if let Some(output) = &self.output {
            output.send(message);
        }
    }
}

/// `midisock ports`: the input and output ports, one per line, under a heading each.
pub fn list_ports() -> Result<String, Failure> {
    let (inputs, outputs) = backend::list()?;
    let mut text = String::new();
    for (heading, names) in [("Input ports:", inputs), ("Output ports:", outputs)] {
        text.push_str(heading);
        text.push('\n');
        if names.is_empty() {
            text.push_str("  (none)\n");
        }
        for name in names {
            text.push_str("  ");
            text.push_str(&name);
            text.push('\n');
        }
    }
    Ok(text)
}

/// Picks the port meant by `wanted` among `names`: an exact name, else the one name containing
/// it. `None` when nothing matches; an error when several do.
/// A port's name without the numbers ALSA appends (`Keystation 49 MIDI 1 24:0` → `Keystation 49
/// MIDI 1`): a device plugged in again usually gets a new client number, and is the same port.
#[cfg_attr(not(feature = "midi"), allow(dead_code))]
pub fn stable_name(name: &str) -> &str {
    let Some((rest, address)) = name.rsplit_once(' ') else { return name };
    let is_address = address.split_once(':').is_some_and(|(client, port)| {
        [client, port].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if is_address {
        rest
    } else {
        name
    }
}

#[cfg_attr(not(feature = "midi"), allow(dead_code))]
pub fn resolve(wanted: &str, names: &[String]) -> Result<Option<String>, String> {
    if names.iter().any(|n| n == wanted) {
        return Ok(Some(wanted.to_string()));
    }
    let matches: Vec<&String> = names.iter().filter(|n| n.contains(wanted)).collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => Err(format!(
            "{wanted:?} matches several ports: {}; give more of the name",
            many.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(not(feature = "midi"))]
mod backend {
    //! A build without MIDI port support: one line that says how to get one.
    use super::Sink;
    use crate::commands::Failure;
    use midisock::Message;

    pub struct Input;
    pub struct Output;

    fn unsupported() -> Failure {
        Failure {
            message: "this midisock was built without MIDI port support; build it with \
                      `cargo install --path crates/midisock-cli --features midi` (ALSA; needs libasound2-dev) \
                      or `--features jack` (see docs/cli.md)"
                .into(),
            exit_code: crate::commands::FAILED,
        }
    }

    pub fn list() -> Result<(Vec<String>, Vec<String>), Failure> {
        Err(unsupported())
    }

    pub fn open_input(_name: &str, _virtual_port: bool, _sink: Sink) -> Result<Input, Failure> {
        Err(unsupported())
    }

    pub fn open_output(_name: &str, _virtual_port: bool) -> Result<Output, Failure> {
        Err(unsupported())
    }

    impl Output {
        pub fn send(&self, _message: &Message) {}
    }
}

#[cfg(feature = "midi")]
mod backend {
    use super::{resolve, stable_name, Sink};
    use crate::backend_liveness::Liveness;
    use crate::commands::{Failure, FAILED};
    use crate::log;
    use crate::port_watch::{backend_clients, lock, watch, PortHandling, Probe, Slot, Watcher};
    use midir::{Ignore, MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};
    use midisock::{HeldNotes, Message, Parser};
    use std::sync::{Arc, Mutex};

    /// The client name midisock's ports appear under.
    const CLIENT: &str = "midisock";
    /// The clients virtual ports belong to: other programs see `midisock in:NAME` (they play
    /// into it; midisock sends it on) and `midisock out:NAME` (they read what midisock received).
    /// One client each, because a backend may rename a second client of the same name.
    #[cfg(unix)]
    const VIRTUAL_IN_CLIENT: &str = "midisock in";
    #[cfg(unix)]
    const VIRTUAL_OUT_CLIENT: &str = "midisock out";

    fn backend_failure() -> Failure {
        let why = if cfg!(feature = "jack") {
            "cannot connect to a JACK server (start jackd; JACK_DEFAULT_SERVER names a non-default one)"
        } else if cfg!(target_os = "linux") {
            "cannot open the ALSA sequencer /dev/snd/seq (no sound devices here, or the snd-seq module is not loaded)"
        } else {
            "the system MIDI service did not start"
        };
        Failure { message: format!("no MIDI backend is usable: {why}"), exit_code: FAILED }
    }

    fn new_input(client: &str) -> Result<MidiInput, Failure> {
        quiet_backend();
        let mut input = MidiInput::new(client).map_err(|_| backend_failure())?;
        // Everything goes through: sysex, clock, active sensing (a bridge does not filter).
        input.ignore(Ignore::None);
        Ok(input)
    }

    fn new_output(client: &str) -> Result<MidiOutput, Failure> {
        quiet_backend();
        MidiOutput::new(client).map_err(|_| backend_failure())
    }

    /// libjack prints several lines of its own when no server runs, on every attempt, and
    /// libasound one when there is no sequencer; the one line midisock prints says it better.
    /// `-v` keeps them.
    fn quiet_backend() {
        #[cfg(all(target_os = "linux", not(feature = "jack")))]
        {
            use std::os::raw::{c_char, c_int};
            unsafe extern "C" fn silent(
                _file: *const c_char,
                _line: c_int,
                _function: *const c_char,
                _error: c_int,
                _format: *const c_char,
                _arguments: *mut alsa_sys::__va_list_tag,
            ) {
            }
            if !log::verbose() {
                // SAFETY: sets this thread's libasound error handler (the backend is opened on the
                // calling thread) to one that ignores its arguments.
                unsafe { alsa_sys::snd_lib_error_set_local(Some(silent)) };
            }
        }
        #[cfg(feature = "jack")]
        {
            static ONCE: std::sync::Once = std::sync::Once::new();
            unsafe extern "C" fn silent(_message: *const std::os::raw::c_char) {}
            if !log::verbose() {
                // SAFETY: installs process-wide callbacks that ignore their argument; libjack
                // allows this at any time.
                ONCE.call_once(|| unsafe {
                    jack_sys::jack_set_error_function(Some(silent));
                    jack_sys::jack_set_info_function(Some(silent));
                });
            }
        }
    }

    fn input_names(input: &MidiInput) -> Vec<String> {
        input.ports().iter().filter_map(|p| input.port_name(p).ok()).collect()
    }

    fn output_names(output: &MidiOutput) -> Vec<String> {
        output.ports().iter().filter_map(|p| output.port_name(p).ok()).collect()
    }

    pub fn list() -> Result<(Vec<String>, Vec<String>), Failure> {
        let _clients = backend_clients();
        let inputs = input_names(&new_input(&format!("{CLIENT}-list"))?);
        let outputs = output_names(&new_output(&format!("{CLIENT}-list"))?);
        Ok((inputs, outputs))
    }

    fn not_found(kind: &str, wanted: &str, names: &[String]) -> Failure {
        let known = if names.is_empty() {
            "there are none".to_string()
        } else {
            format!("there are {}", names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "))
        };
        Failure { message: format!("no MIDI {kind} port named {wanted:?}: {known}"), exit_code: FAILED }
    }

    fn resolve_or_fail(kind: &str, wanted: &str, names: &[String]) -> Result<String, Failure> {
        match resolve(wanted, names) {
            Ok(Some(name)) => Ok(name),
            Ok(None) => Err(not_found(kind, wanted, names)),
            Err(message) => Err(Failure { message, exit_code: FAILED }),
        }
    }

    /// A probe of the input ports, with the liveness of the backend it lists.
    fn input_probe() -> Option<Probe> {
        let liveness = Liveness::open()?;
        let input = new_input(&format!("{CLIENT}-watch")).ok()?;
        Some(Probe { names: Box::new(move || input_names(&input)), liveness })
    }

    fn output_probe() -> Option<Probe> {
        let liveness = Liveness::open()?;
        let output = new_output(&format!("{CLIENT}-watch")).ok()?;
        Some(Probe { names: Box::new(move || output_names(&output)), liveness })
    }

    fn probe_or_fail(probe: Option<Probe>) -> Result<Probe, Failure> {
        probe.ok_or_else(backend_failure)
    }

    /// Notes played on an input port and not yet released, shared with its callback.
    type Held = Arc<Mutex<HeldNotes>>;

    fn held(notes: &Held) -> std::sync::MutexGuard<'_, HeldNotes> {
        notes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub struct Input {
        _watcher: Option<Watcher>,
        /// The open connection (taken by the watcher while the port is gone).
        _connection: Slot<MidiInputConnection<Parser>>,
    }

    /// Feeds what the port delivers through the core's parser (one parser per connection, so a
    /// sysex split across callbacks is joined), noting the notes it leaves sounding.
    fn deliver(sink: &Sink, notes: &Held) -> impl FnMut(u64, &[u8], &mut Parser) + Send + 'static {
        let sink = Arc::clone(sink);
        let notes = Arc::clone(notes);
        move |_stamp, bytes, parser| {
            parser.feed(bytes, |m| {
                held(&notes).observe(&m);
                sink(&m)
            })
        }
    }

    fn connect_input(full_name: &str, sink: &Sink, notes: &Held) -> Result<MidiInputConnection<Parser>, String> {
        let input = new_input(&format!("{CLIENT}-in")).map_err(|f| f.message)?;
        let port = input
            .ports()
            .into_iter()
            .find(|p| input.port_name(p).is_ok_and(|n| stable_name(&n) == stable_name(full_name)))
            .ok_or_else(|| format!("MIDI input port {full_name:?} is gone"))?;
        input
            .connect(&port, "in", deliver(sink, notes), Parser::new())
            .map_err(|e| format!("cannot open MIDI input port {full_name:?}: {e}"))
    }

    /// An input port that goes away leaves the notes it played sounding on the network side:
    /// they are released through the sink (a keyboard unplugged mid-chord must not drone).
    struct InputHandling {
        sink: Sink,
        notes: Held,
        /// A virtual port midisock made: made again on a backend that restarted.
        virtual_port: bool,
    }

    /// A virtual port is "there" whenever its backend runs: the watcher recreates it on a new
    /// JACK server (on ALSA the backend never goes, so neither does the port).
    fn virtual_probe(name: &str) -> Option<Probe> {
        let name = name.to_string();
        Some(Probe { names: Box::new(move || vec![name.clone()]), liveness: Liveness::open()? })
    }

    impl PortHandling<MidiInputConnection<Parser>> for InputHandling {
        fn probe(&mut self, full_name: &str) -> Option<Probe> {
            if self.virtual_port {
                virtual_probe(full_name)
            } else {
                input_probe()
            }
        }

        fn open(&mut self, full_name: &str) -> Result<MidiInputConnection<Parser>, String> {
            if self.virtual_port {
                create_virtual_input(full_name, &self.sink, &self.notes)
            } else {
                connect_input(full_name, &self.sink, &self.notes)
            }
        }

        fn lost(&mut self, connection: MidiInputConnection<Parser>) {
            // After the close no callback runs, so nothing can be noted after the release.
            drop(connection.close());
            let mut releases = Vec::new();
            held(&self.notes).release_all(|m| releases.push(m));
            for message in &releases {
                (self.sink)(message);
            }
            if !releases.is_empty() {
                log::info(format_args!("released {} held notes played on the lost port", releases.len()));
            }
        }
    }

    pub fn open_input(wanted: &str, virtual_port: bool, sink: Sink) -> Result<Input, Failure> {
        if virtual_port {
            return open_virtual_input(wanted, sink);
        }
        let clients = backend_clients();
        let probe = probe_or_fail(input_probe())?;
        let full_name = resolve_or_fail("input", wanted, &(probe.names)())?;
        let notes = Held::default();
        let connection =
            connect_input(&full_name, &sink, &notes).map_err(|message| Failure { message, exit_code: FAILED })?;
        log::info(format_args!("MIDI input: {full_name}"));
        let slot: Slot<_> = Arc::new(Mutex::new(Some(connection)));
        let handling = InputHandling { sink, notes, virtual_port: false };
        drop(clients);
        let watcher = watch("input", full_name, probe, Arc::clone(&slot), handling)?;
        Ok(Input { _watcher: Some(watcher), _connection: slot })
    }

    #[cfg(unix)]
    fn create_virtual_input(name: &str, sink: &Sink, notes: &Held) -> Result<MidiInputConnection<Parser>, String> {
        use midir::os::unix::VirtualInput;
        new_input(VIRTUAL_IN_CLIENT)
            .map_err(|f| f.message)?
            .create_virtual(name, deliver(sink, notes), Parser::new())
            .map_err(|e| format!("cannot create virtual MIDI input {name:?}: {e}"))
    }

    #[cfg(unix)]
    fn create_virtual_output(name: &str) -> Result<MidiOutputConnection, String> {
        use midir::os::unix::VirtualOutput;
        new_output(VIRTUAL_OUT_CLIENT)
            .map_err(|f| f.message)?
            .create_virtual(name)
            .map_err(|e| format!("cannot create virtual MIDI output {name:?}: {e}"))
    }

    #[cfg(not(unix))]
    fn create_virtual_input(_name: &str, _sink: &Sink, _notes: &Held) -> Result<MidiInputConnection<Parser>, String> {
        Err("this system's MIDI backend has no virtual ports".into())
    }

    #[cfg(not(unix))]
    fn create_virtual_output(_name: &str) -> Result<MidiOutputConnection, String> {
        Err("this system's MIDI backend has no virtual ports".into())
    }

    fn open_virtual_input(name: &str, sink: Sink) -> Result<Input, Failure> {
        let clients = backend_clients();
        let probe = probe_or_fail(virtual_probe(name))?;
        let notes = Held::default();
        let connection =
            create_virtual_input(name, &sink, &notes).map_err(|message| Failure { message, exit_code: FAILED })?;
        log::info(format_args!("MIDI input: virtual port {name}"));
        let slot: Slot<_> = Arc::new(Mutex::new(Some(connection)));
        let handling = InputHandling { sink, notes, virtual_port: true };
        drop(clients);
        let watcher = watch("input", name.to_string(), probe, Arc::clone(&slot), handling)?;
        Ok(Input { _watcher: Some(watcher), _connection: slot })
    }

    /// Stops the watcher, then closes the connection with the backend's clients serialised
    /// (another port's watcher may still be opening one).
    fn close_watched<C>(watcher: &mut Option<Watcher>, slot: &Slot<C>) {
        drop(watcher.take());
        let _clients = backend_clients();
        drop(lock(slot).take());
    }

    impl Drop for Input {
        fn drop(&mut self) {
            close_watched(&mut self._watcher, &self._connection);
        }
    }

    impl Drop for Output {
        fn drop(&mut self) {
            close_watched(&mut self._watcher, &self.connection);
        }
    }

    pub struct Output {
        _watcher: Option<Watcher>,
        connection: Slot<MidiOutputConnection>,
        /// The notes played on the port and not released yet. Lock order: `connection`, then this.
        notes: Held,
    }

    impl Output {
        /// Plays one message; while the port is gone, messages are dropped (a synth that comes
        /// back should not get a burst of stale notes).
        pub fn send(&self, message: &Message) {
            let bytes = message.to_bytes();
            let mut open = lock(&self.connection);
            if let Some(connection) = open.as_mut() {
                match connection.send(&bytes) {
                    Ok(()) => held(&self.notes).observe(message),
                    Err(e) => log::debug(format_args!("MIDI output: {e}")),
                }
            }
        }
    }

    fn connect_output(full_name: &str) -> Result<MidiOutputConnection, String> {
        let output = new_output(&format!("{CLIENT}-out")).map_err(|f| f.message)?;
        let port = output
            .ports()
            .into_iter()
            .find(|p| output.port_name(p).is_ok_and(|n| stable_name(&n) == stable_name(full_name)))
            .ok_or_else(|| format!("MIDI output port {full_name:?} is gone"))?;
        output.connect(&port, "out").map_err(|e| format!("cannot open MIDI output port {full_name:?}: {e}"))
    }

    /// The notes an output port was left holding when it went away (their note-offs may have
    /// come while it was gone, and were dropped) are released on it first when it is back: a
    /// synth that lived through the outage (a JACK client that rejoins a restarted server, a
    /// device on a hub that blinked) is not left droning.
    struct OutputHandling {
        notes: Held,
        virtual_port: bool,
        /// What the port was left holding when it went away, taken when it is reopened and
        /// released once the new connection is in effect (the next look): sent at once, the
        /// note-offs could go out before JACK carries the connection. Notes played after the
        /// reopen are tracked apart, in `notes`.
        owed: HeldNotes,
    }

    impl PortHandling<MidiOutputConnection> for OutputHandling {
        fn probe(&mut self, full_name: &str) -> Option<Probe> {
            if self.virtual_port {
                virtual_probe(full_name)
            } else {
                output_probe()
            }
        }

        fn open(&mut self, full_name: &str) -> Result<MidiOutputConnection, String> {
            let connection =
                if self.virtual_port { create_virtual_output(full_name)? } else { connect_output(full_name)? };
            // Before the connection is visible to senders: nothing played on it is in here.
            self.owed = std::mem::take(&mut *held(&self.notes));
            Ok(connection)
        }

        fn settled(&mut self, connection: &mut MidiOutputConnection) {
            if self.owed.is_silent() {
                return;
            }
            let mut releases = Vec::new();
            self.owed.release_all(|m| releases.push(m));
            for message in &releases {
                if let Err(e) = connection.send(&message.to_bytes()) {
                    log::debug(format_args!("MIDI output: {e}"));
                }
            }
            if !releases.is_empty() {
                log::info(format_args!("released {} notes left held on the output port", releases.len()));
            }
        }

        fn lost(&mut self, connection: MidiOutputConnection) {
            drop(connection.close());
        }
    }

    pub fn open_output(wanted: &str, virtual_port: bool) -> Result<Output, Failure> {
        if virtual_port {
            return open_virtual_output(wanted);
        }
        let clients = backend_clients();
        let probe = probe_or_fail(output_probe())?;
        let full_name = resolve_or_fail("output", wanted, &(probe.names)())?;
        let connection = connect_output(&full_name).map_err(|message| Failure { message, exit_code: FAILED })?;
        log::info(format_args!("MIDI output: {full_name}"));
        let slot: Slot<_> = Arc::new(Mutex::new(Some(connection)));
        let notes = Held::default();
        let handling = OutputHandling { notes: Arc::clone(&notes), virtual_port: false, owed: HeldNotes::default() };
        drop(clients);
        let watcher = watch("output", full_name, probe, Arc::clone(&slot), handling)?;
        Ok(Output { _watcher: Some(watcher), connection: slot, notes })
    }

    fn open_virtual_output(name: &str) -> Result<Output, Failure> {
        let clients = backend_clients();
        let probe = probe_or_fail(virtual_probe(name))?;
        let connection = create_virtual_output(name).map_err(|message| Failure { message, exit_code: FAILED })?;
        log::info(format_args!("MIDI output: virtual port {name}"));
        let slot: Slot<_> = Arc::new(Mutex::new(Some(connection)));
        let notes = Held::default();
        let handling = OutputHandling { notes: Arc::clone(&notes), virtual_port: true, owed: HeldNotes::default() };
        drop(clients);
        let watcher = watch("output", name.to_string(), probe, Arc::clone(&slot), handling)?;
        Ok(Output { _watcher: Some(watcher), connection: slot, notes })
    }
}

#[cfg(test)]
mod tests {
    use super::{resolve, stable_name};

    #[test]
    fn alsa_numbers_are_not_part_of_a_ports_identity() {
        assert_eq!(stable_name("Keystation 49:Keystation 49 MIDI 1 24:0"), "Keystation 49:Keystation 49 MIDI 1");
        assert_eq!(stable_name("peer-sink:in"), "peer-sink:in");
        assert_eq!(stable_name("synth 2:3x"), "synth 2:3x");
        assert_eq!(stable_name("a :0"), "a :0");
    }

    #[test]
    fn exact_names_win_then_unique_parts() {
        let names = vec!["synth:in".to_string(), "synth:in 2".to_string(), "drums:midi_in".to_string()];
        assert_eq!(resolve("synth:in", &names), Ok(Some("synth:in".into())));
        assert_eq!(resolve("drums", &names), Ok(Some("drums:midi_in".into())));
        assert_eq!(resolve("piano", &names), Ok(None));
        let error = resolve("in", &names).unwrap_err();
        assert!(error.contains("several ports"), "{error}");
    }
}
