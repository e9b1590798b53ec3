//! The Pd tests themselves (see crate::pd for what runs them): each drives a headless Pd
//! running the harness patch, and mido peers, through `harness`.

use super::harness::{Mido, Pd, WAIT};
use crate::env;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub type Test = fn(&Suite) -> Result<(), String>;

pub const TESTS: &[(&str, Test)] = &[
    ("Pd client <-> mido server: every message type, bytes exact", Suite::pd_to_mido),
    ("mido client -> Pd server: typed and raw outlets, peers, held notes released", Suite::mido_to_pd),
    ("Pd server -> two mido clients: broadcast, bytes exact", Suite::pd_broadcast),
    ("connects under way: refused sends, replaced, freed", Suite::pending_connects),
    ("reconnect after the mido server restarts: held notes released, sends dropped while down", Suite::reconnect),
    ("bad arguments: a clear error, nothing sent, the connection kept", Suite::bad_arguments),
    (
        "jitter_buffer with mido peers: checked, applied at the next connect or serve, no extra bytes",
        Suite::jitter_buffer_with_mido,
    ),
    (
        "jitter_buffer against a [midisock] sender, both ways: every message in order, stats",
        Suite::jitter_buffer_end_to_end,
    ),
];

#[derive(Clone)]
pub struct Suite {
    /// The directory holding midisock/midisock.pd_linux (given to Pd's -path).
    pub extra: PathBuf,
    pub harness: PathBuf,
    pub peer: PathBuf,
    pub python: PathBuf,
    /// Run Pd under valgrind, logging here.
    pub valgrind: Option<PathBuf>,
}

impl Suite {
    fn pd(&self) -> Result<Pd, String> {
        self.pd_with(&[])
    }

    fn pd_with(&self, pd_args: &[&str]) -> Result<Pd, String> {
        let root = env::repo_root();
        let suppressions = [root.join("tests/c/valgrind.supp"), root.join("bindings/pd/tests/valgrind.supp")];
        let valgrind = self.valgrind.as_deref().map(|log| (log, &suppressions[..]));
        Pd::start(&self.extra, &self.harness, valgrind, pd_args)
    }

    fn mido_server(&self) -> Result<(Mido, u16), String> {
        Mido::server(&self.python, &self.peer, 0)
    }

    /// Quits Pd; the valgrind log is checked by the caller.
    fn finish(&self, pd: Pd) -> Result<(), String> {
        pd.quit().map(|_| ())
    }
}

/// Makes the object serve on `address` and returns the port it listens on (after its
/// `peers 0`).
fn serve(pd: &mut Pd, address: &str) -> Result<u16, String> {
    pd.send(&format!("serve {address}"))?;
    let port = pd.out.wait_for(
        "the listening port",
        |l| l.starts_with("error:"),
        |l| l.strip_prefix("status: listening ")?.parse::<u16>().ok(),
    )?;
    pd.out.expect("status: peers 0")?;
    Ok(port)
}

/// Connects the object to a mido server (`address` as typed in the patch, `shown` as the
/// status outlet reports it) and waits until mido has the connection.
fn connect_to_mido(pd: &mut Pd, mido: &mut Mido, address: &str, shown: &str) -> Result<(), String> {
    pd.send_expect(&format!("connect {address}"), &format!("status: connected {shown}"))?;
    mido.out.expect("connected")
}

/// Closes the object's connection and waits until the mido peer has seen it close.
fn disconnect_from_mido(pd: &mut Pd, mido: &mut Mido) -> Result<(), String> {
    pd.send_expect("disconnect", "status: disconnected")?;
    mido.out.expect("closed")
}

/// Asks the harness for its count and waits for the answer: control messages are handled in
/// order, so everything sent before has been handled once it comes.
fn sync(pd: &mut Pd) -> Result<(), String> {
    pd.send("count")?;
    pd.out.wait_for("the count", |l| l.starts_with("error:"), |l| l.strip_prefix("count: ").map(|_| ()))
}

/// What `stats` put out: `None` for `stats off`, else each `stats <peer> <name> <value>`.
type Stats = Option<Vec<(String, String, f64)>>;

/// Sends `stats` and collects its lines (up to the count that follows it).
fn read_stats(pd: &mut Pd) -> Result<Stats, String> {
    pd.send("stats")?;
    pd.send("count")?;
    let mut figures = Vec::new();
    let mut off = false;
    loop {
        let line = pd.out.wait_for(
            "the stats",
            |l| l.starts_with("error:"),
            |l| (l.starts_with("status: stats ") || l.starts_with("count: ")).then(|| l.to_owned()),
        )?;
        if line.starts_with("count: ") {
            break;
        }
        let words: Vec<&str> = line["status: stats ".len()..].split(' ').collect();
        match words[..] {
            ["off"] => off = true,
            [peer, name, value] => {
                let value = value.parse().map_err(|_| format!("stats: {value:?} in {line:?} is not a number"))?;
                figures.push((peer.to_owned(), name.to_owned(), value));
            }
            _ => return Err(format!("unexpected stats line {line:?}")),
        }
    }
    match (off, figures.is_empty()) {
        (true, true) => Ok(None),
        (false, _) => Ok(Some(figures)),
        (true, false) => Err(format!("stats said off and gave figures: {figures:?}")),
    }
}

/// The value of `name` for `peer` among `figures`.
fn figure(figures: &[(String, String, f64)], peer: &str, name: &str) -> Option<f64> {
    figures.iter().find(|(p, n, _)| p == peer && n == name).map(|(_, _, v)| *v)
}

/// Waits for `typed` and `raw` lines of `notes` note-ons (note `i`, velocity 100, channel 1), in
/// exactly that order: any other typed line on the way fails.
fn expect_notes_in_order(pd: &mut Pd, notes: usize) -> Result<(), String> {
    for i in 0..notes {
        let typed = format!("typed: note {i} 100 1");
        pd.out.wait_for(
            &typed,
            |l| l.starts_with("error:") || l.starts_with("typed:"),
            |l| (l == typed).then_some(()),
        )?;
        let raw = format!("raw: 144 {i} 100");
        pd.out.wait_for(&raw, |l| l.starts_with("error:") || l.starts_with("typed:"), |l| (l == raw).then_some(()))?;
    }
    Ok(())
}

impl Suite {
    fn pd_to_mido(&self) -> Result<(), String> {
        let (mut mido, port) = self.mido_server()?;
        let mut pd = self.pd()?;
        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        let cases: &[(&str, &str)] = &[
            ("note 60 100 1", "144 60 100"),
            ("note 60 100", "144 60 100"),
            ("note 127 0 16", "159 127 0"),
            ("noteoff 60 64 2", "129 60 64"),
            ("noteoff 61", "128 61 0"),
            ("cc 127 7 3", "178 7 127"),
            ("cc 0 64 16", "191 64 0"),
            ("bend -8192 1", "224 0 0"),
            ("bend 0 2", "225 0 64"),
            ("bend 8191 16", "239 127 127"),
            ("bend 1", "224 1 64"),
            ("program 1 1", "192 0"),
            ("program 128 10", "201 127"),
            ("touch 99 5", "212 99"),
            ("polytouch 33 60 6", "165 60 33"),
            ("sysex 1 2 3 127", "240 1 2 3 127 247"),
            ("sysex", "240 247"),
            ("send 248", "248"),
            ("send 250", "250"),
            ("send 242 1 2", "242 1 2"),
            ("send 243 5", "243 5"),
            ("send 241 35", "241 35"),
            ("send 246", "246"),
            ("send 240 125 1 247", "240 125 1 247"),
            ("251", "251"),
            ("list 176 1 2", "176 1 2"),
        ];
        for (command, bytes) in cases {
            pd.send(command)?;
            mido.out.expect(&format!("message {bytes}"))?;
        }
        // Two messages in one `send`, the second in running status, arrive as two.
        pd.send("send 144 1 2 3 4")?;
        mido.out.expect("message 144 1 2")?;
        mido.out.expect("message 144 3 4")?;
        pd.send("panic")?;
        for channel in 0..16 {
            mido.out.expect(&format!("message {} 120 0", 176 + channel))?;
        }
        pd.send("reset")?;
        for channel in 0..16 {
            mido.out.expect(&format!("message {} 123 0", 176 + channel))?;
            mido.out.expect(&format!("message {} 121 0", 176 + channel))?;
        }
        // And the other way: what the mido server sends comes out of the client's outlets.
        let incoming: &[(&str, &str, &str)] = &[
            ("note_on channel=0 note=60 velocity=100", "note 60 100 1", "144 60 100"),
            ("control_change channel=15 control=64 value=127", "cc 127 64 16", "191 64 127"),
            ("sysex data=(1,2,3)", "sysex 1 2 3", "240 1 2 3 247"),
        ];
        for (count, (text, typed, raw)) in incoming.iter().enumerate() {
            mido.send(text, count + 1)?;
            pd.out.expect(&format!("typed: {typed}"))?;
            pd.out.expect(&format!("raw: {raw}"))?;
        }
        disconnect_from_mido(&mut pd, &mut mido)?;
        // The two-atom address form, like [netsend]'s.
        connect_to_mido(&mut pd, &mut mido, &format!("localhost {port}"), &format!("localhost:{port}"))?;
        pd.send("note 1 2 3")?;
        mido.out.expect("message 146 1 2")?;
        disconnect_from_mido(&mut pd, &mut mido)?;
        // A second object, made by dynamic patching, connects from its creation arguments.
        pd.send(&format!("patch obj 10 40 midisock connect 127.0.0.1:{port}"))?;
        mido.out.expect("connected")?;
        self.finish(pd)?;
        mido.out.expect("closed")
    }

    fn mido_to_pd(&self) -> Result<(), String> {
        let mut pd = self.pd()?;
        let port = serve(&mut pd, "127.0.0.1:0")?;
        let mut mido = Mido::client(&self.python, &self.peer, port)?;
        pd.out.expect("status: peers 1")?;
        // (mido text, typed outlet, raw outlet)
        let cases: &[(&str, &str, &str)] = &[
            ("note_on channel=0 note=60 velocity=100", "note 60 100 1", "144 60 100"),
            ("note_off channel=0 note=60 velocity=64", "note 60 0 1", "128 60 64"),
            ("note_on channel=15 note=0 velocity=0", "note 0 0 16", "159 0 0"),
            ("control_change channel=2 control=7 value=127", "cc 127 7 3", "178 7 127"),
            ("pitchwheel channel=3 pitch=-8192", "bend -8192 4", "227 0 0"),
            ("pitchwheel channel=3 pitch=8191", "bend 8191 4", "227 127 127"),
            ("pitchwheel channel=3 pitch=0", "bend 0 4", "227 0 64"),
            ("program_change channel=4 program=0", "program 1 5", "196 0"),
            ("program_change channel=4 program=127", "program 128 5", "196 127"),
            ("aftertouch channel=5 value=99", "touch 99 6", "213 99"),
            ("polytouch channel=6 note=60 value=33", "polytouch 33 60 7", "166 60 33"),
            ("sysex data=(1,2,3,127)", "sysex 1 2 3 127", "240 1 2 3 127 247"),
            ("bytes 240 247", "sysex", "240 247"), // mido cannot parse `sysex data=()`
            ("quarter_frame frame_type=2 frame_value=3", "quarter_frame 2 3", "241 35"),
            ("songpos pos=300", "songpos 300", "242 44 2"),
            ("song_select song=5", "song_select 5", "243 5"),
            ("tune_request", "tune_request", "246"),
            ("clock", "clock", "248"),
            ("start", "start", "250"),
            ("continue", "continue", "251"),
            ("stop", "stop", "252"),
            ("active_sensing", "active_sensing", "254"),
            ("reset", "system_reset", "255"),
            // Held when the client leaves: the server releases it (below).
            ("note_on channel=9 note=42 velocity=90", "note 42 90 10", "153 42 90"),
        ];
        for (count, (text, typed, raw)) in cases.iter().enumerate() {
            mido.send(text, count + 1)?;
            pd.out.expect(&format!("typed: {typed}"))?;
            pd.out.expect(&format!("raw: {raw}"))?;
        }
        mido.close()?;
        // No stuck notes: the note the client left held comes out as a note-off. (The server
        // counts the client gone and delivers its note-offs independently: either comes first.)
        pd.out.expect_all(&["typed: note 42 0 10", "raw: 137 42 0", "status: peers 0"])?;
        pd.send_expect("disconnect", "status: disconnected")?;
        self.finish(pd)
    }

    fn pd_broadcast(&self) -> Result<(), String> {
        let mut pd = self.pd()?;
        let port = serve(&mut pd, "localhost 0")?;
        let mut first = Mido::listener(&self.python, &self.peer, port)?;
        let mut second = Mido::listener(&self.python, &self.peer, port)?;
        pd.out.wait_for("peers 2", |l| l.starts_with("error:"), |l| (l == "status: peers 2").then_some(()))?;
        let cases: &[(&str, &str)] = &[
            ("note 60 100 1", "144 60 100"),
            ("cc 1 2 3", "178 2 1"),
            ("sysex 1 2 3", "240 1 2 3 247"),
            ("send 248", "248"),
        ];
        for (command, bytes) in cases {
            pd.send(command)?;
            first.out.expect(&format!("message {bytes}"))?;
            second.out.expect(&format!("message {bytes}"))?;
        }
        // Closing the server closes its clients' connections.
        pd.send_expect("disconnect", "status: disconnected")?;
        first.out.expect("closed")?;
        second.out.expect("closed")?;
        self.finish(pd)
    }

    fn pending_connects(&self) -> Result<(), String> {
        let (_stall, stalled) = Mido::stall(&self.python, &self.peer)?;
        let (mut mido, port) = self.mido_server()?;
        let mut pd = self.pd()?;
        pd.send(&format!("connect 127.0.0.1:{stalled}"))?;
        // While connecting, a send is refused with the reason (Pd never waits for the connect).
        pd.send("note 1 2 3")?;
        pd.expect_error(&format!("note: still connecting to 127.0.0.1:{stalled}: nothing sent"))?;
        // A new connect abandons the one under way.
        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        pd.send("note 1 2 3")?;
        mido.out.expect("message 146 1 2")?;
        // An object freed while its connect is under way (quit frees it): Pd exits cleanly.
        pd.send(&format!("patch obj 10 40 midisock connect 127.0.0.1:{stalled}"))?;
        self.finish(pd)?;
        mido.out.expect("closed")
    }

    fn reconnect(&self) -> Result<(), String> {
        let (mut mido, port) = self.mido_server()?;
        let mut pd = self.pd()?;
        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        // The server starts a note in the patch, then goes away (killed: no goodbye).
        mido.send("note_on channel=2 note=64 velocity=90", 1)?;
        pd.out.expect("typed: note 64 90 3")?;
        drop(mido);
        // libmidisock releases the note in the patch and reconnects with backoff.
        pd.out.expect_all(&["typed: note 64 0 3", "raw: 130 64 0", "status: disconnected"])?;
        pd.out.wait_for(
            "a reconnect attempt",
            |l| l.starts_with("error:"),
            |l| l.strip_prefix("status: reconnecting ")?.parse::<u32>().ok(),
        )?;
        // Sends while down are dropped; the first says so, the next ones are quiet.
        pd.send("note 1 2 3")?;
        pd.expect_error(&format!(
            "note: cannot send: the connection is down, reconnecting to 127.0.0.1:{port}: nothing is sent until it is back"
        ))?;
        pd.send("note 4 5 6")?;
        // Control messages are handled in order: once this count is answered, both notes were
        // handled while the link was down (before the server below exists).
        sync(&mut pd)?;
        // The server comes back on the same port; the object finds it by itself.
        let (mut mido, _) = Mido::server(&self.python, &self.peer, port)?;
        pd.out.wait_for(
            "the reconnection",
            |l| l.starts_with("error:"),
            |l| (l == format!("status: connected 127.0.0.1:{port}")).then_some(()),
        )?;
        mido.out.expect("connected")?;
        pd.send("note 7 8 9")?;
        // The first message the new server gets is the one sent after the reconnect.
        mido.out.expect("message 152 7 8")?;
        self.finish(pd)?;
        mido.out.expect("closed")
    }

    fn bad_arguments(&self) -> Result<(), String> {
        let (mut mido, port) = self.mido_server()?;
        let mut pd = self.pd()?;
        // Before any connection: the message is refused, with the reason.
        pd.send("note 60 100 1")?;
        pd.expect_error("note: not connected: send 'connect host:port' or 'serve host:port' first")?;
        // Creation arguments, checked like messages.
        pd.send("patch obj 10 10 midisock bogus")?;
        pd.expect_error(
            "arguments are 'connect host:port' or 'serve host:port' (or none); the object was created without a connection",
        )?;
        pd.send("patch obj 10 40 midisock connect nowhere")?;
        pd.expect_error("connect: address 'nowhere' has no port: write host:port, e.g. localhost:8080")?;
        // A refused connection is reported when it fails, and nothing else happens.
        let closed_port = {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            listener.local_addr().map_err(|e| e.to_string())?.port()
        };
        pd.send(&format!("connect 127.0.0.1:{closed_port}"))?;
        pd.out.wait_for(
            "the refusal",
            |_| false,
            |l| l.starts_with("error: midisock: cannot connect").then_some(()),
        )?;
        pd.out.wait_for(
            "the error status",
            |_| false,
            |l| l.starts_with("status: error cannot connect:").then_some(()),
        )?;
        pd.out.expect("status: disconnected")?;

        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        let errors: &[(&str, &str)] = &[
            ("note 128 100 1", "note: note 128 is out of range 0..127"),
            ("note 60 100 17", "note: channel 17 is out of range 1..16"),
            ("note 60 100 0", "note: channel 0 is out of range 1..16"),
            ("note 60.5 100 1", "note: note must be a whole number, got 60.5"),
            ("note 60", "note takes <note> <velocity> [channel] (2..3 numbers), got 1"),
            ("note 60 100 1 5", "note takes <note> <velocity> [channel] (2..3 numbers), got 4"),
            ("note sixty 100 1", "note: argument 1 is not a number"),
            ("cc 128 7 1", "cc: value 128 is out of range 0..127"),
            ("bend 8192 1", "bend: value 8192 is out of range -8192..8191"),
            ("bend -8193", "bend: value -8193 is out of range -8192..8191"),
            ("program 0 1", "program: program 0 is out of range 1..128"),
            ("program 129", "program: program 129 is out of range 1..128"),
            ("touch -1", "touch: value -1 is out of range 0..127"),
            ("polytouch 1", "polytouch takes <value> <note> [channel] (2..3 numbers), got 1"),
            ("sysex 1 128 3", "sysex: byte 2 128 is out of range 0..127"),
            ("send 256", "send: byte 1 256 is out of range 0..255"),
            ("send", "send takes the bytes of one or more whole MIDI messages (0..255 each), got none"),
            ("send 144 60", "send: cannot send: midisock_port_send: the bytes end inside a message"),
            (
                "send 60 100",
                "send: cannot send: midisock_port_send: the bytes hold stray data bytes, undefined status bytes or cut-off messages",
            ),
            ("frobnicate 1 2", "unknown message 'frobnicate' (try connect, serve, disconnect, note, noteoff, cc, bend, program, touch, polytouch, sysex, send, panic, reset, jitter_buffer, stats)"),
            ("connect", "connect takes an address, host:port (e.g. localhost:8080) or host port"),
            ("connect 8080", "connect takes an address, host:port (e.g. localhost:8080) or host port"),
            ("connect localhost:99999", "connect: address 'localhost:99999': the port must be a number 0..65535"),
            ("connect localhost:0", "connect: address 'localhost:0': a client needs a host and a port 1..65535"),
            ("connect localhost 70000", "connect takes an address, host:port (e.g. localhost:8080) or host port"),
            ("serve 127.0.0.1:http", "serve: address '127.0.0.1:http': the port must be a number 0..65535"),
        ];
        for (command, error) in errors {
            pd.send(command)?;
            pd.expect_error(error)?;
        }
        // A server on a port in use fails and leaves the connection alone.
        pd.send(&format!("serve 127.0.0.1:{port}"))?;
        pd.out.wait_for(
            "the bind error",
            |_| false,
            |l| l.starts_with("error: midisock: serve: cannot serve").then_some(()),
        )?;
        // Nothing of the above was sent, and the connection still works.
        pd.send("note 1 2 3")?;
        mido.out.expect("message 146 1 2")?;
        self.finish(pd)?;
        mido.out.expect("closed")
    }

    fn jitter_buffer_with_mido(&self) -> Result<(), String> {
        let (mut mido, port) = self.mido_server()?;
        let mut pd = self.pd()?;
        pd.send("stats")?;
        pd.expect_error("stats: not connected: send 'connect host:port' or 'serve host:port' first")?;
        let takes = "jitter_buffer takes off, auto or a delay in milliseconds (0 to 10000)";
        let invalid = |text: &str| {
            format!(
                "jitter_buffer: invalid jitter buffer \"{text}\": expected a delay in milliseconds from 0 to 10000 (e.g. \
                 15 or 12.5) or \"auto\", or off"
            )
        };
        let errors: &[(&str, String)] = &[
            ("jitter_buffer", takes.to_owned()),
            ("jitter_buffer 1 2", takes.to_owned()),
            ("jitter_buffer auto 5", takes.to_owned()),
            ("jitter_buffer -1", invalid("-1")),
            ("jitter_buffer 10000.5", invalid("10000.5")),
            ("jitter_buffer soon", invalid("soon")),
            ("jitter_buffer 15ms", invalid("15ms")),
        ];
        for (command, error) in errors {
            pd.send(command)?;
            pd.expect_error(error)?;
        }
        // A setting refused leaves the one before: off, so the stats say so.
        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        if read_stats(&mut pd)?.is_some() {
            return Err("stats: a connection made without a jitter buffer reports one".into());
        }
        // Set while connected: applies from the next connect on.
        pd.send("jitter_buffer auto")?;
        if read_stats(&mut pd)?.is_some() {
            return Err("stats: jitter_buffer applied to the open connection".into());
        }
        disconnect_from_mido(&mut pd, &mut mido)?;
        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        // mido ignores the request for stamps: the first message it reads is the patch's first.
        pd.send("note 60 100 1")?;
        mido.out.wait_for("the note", |l| l.starts_with("message"), |l| (l == "message 144 60 100").then_some(()))?;
        // And mido's messages, unstamped, come out on arrival.
        mido.send("note_on channel=0 note=61 velocity=90", 1)?;
        pd.out.expect("typed: note 61 90 1")?;
        pd.out.expect("raw: 144 61 90")?;
        // The client's buffer is on: its delay in force, nothing late (mido's messages are not
        // stamped, so they come out on arrival).
        let address = format!("127.0.0.1:{port}");
        let figures = read_stats(&mut pd)?.ok_or("stats: a client with jitter_buffer auto says off")?;
        if figure(&figures, &address, "delay_ms").is_none() || figure(&figures, &address, "late") != Some(0.0) {
            return Err(format!("stats with a mido server: {figures:?}"));
        }
        // Off again, for the next connect.
        pd.send("jitter_buffer off")?;
        disconnect_from_mido(&mut pd, &mut mido)?;
        connect_to_mido(&mut pd, &mut mido, &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"))?;
        if read_stats(&mut pd)?.is_some() {
            return Err("stats: jitter_buffer off was not applied at the next connect".into());
        }
        disconnect_from_mido(&mut pd, &mut mido)?;

        // A server with a fixed delay and a mido client: every message, on arrival.
        pd.send("jitter_buffer 12.5")?;
        let port = serve(&mut pd, "127.0.0.1:0")?;
        let mut client = Mido::client(&self.python, &self.peer, port)?;
        pd.out.expect("status: peers 1")?;
        for i in 0..10 {
            client.send(&format!("note_on channel=0 note={i} velocity=100"), i + 1)?;
        }
        expect_notes_in_order(&mut pd, 10)?;
        // The server has a buffer (not off), but lists only clients that stamp: not mido.
        match read_stats(&mut pd)? {
            None => return Err("stats: a server with jitter_buffer 12.5 says off".into()),
            Some(figures) if !figures.is_empty() => return Err(format!("stats list a mido client: {figures:?}")),
            Some(_) => {}
        }
        client.close()?;
        pd.out.expect("status: peers 0")?;
        self.finish(pd)
    }

    fn jitter_buffer_end_to_end(&self) -> Result<(), String> {
        const NOTES: usize = 30;
        let mut pd = self.pd()?;
        // A second [midisock] in the patch, driven by `sender ...`, its typed messages and status
        // printed.
        for line in [
            "patch obj 200 20 r sender-in",
            "patch obj 200 50 midisock",
            "patch obj 200 80 print sender-status",
            "patch obj 300 80 print sender-typed",
            "patch connect 5 0 6 0",
            "patch connect 6 2 7 0",
            "patch connect 6 1 8 0",
        ] {
            pd.send(line)?;
        }
        pd.send("sender serve 127.0.0.1:0")?;
        let port = pd.out.wait_for(
            "the sender's port",
            |l| l.starts_with("error:"),
            |l| l.strip_prefix("sender-status: listening ")?.parse::<u16>().ok(),
        )?;
        // The object under test, a client with an adaptive buffer, receives from the sender.
        pd.send("jitter_buffer auto")?;
        pd.send(&format!("connect 127.0.0.1:{port}"))?;
        // Both ends see it, in either order.
        pd.out.expect_all(&[&format!("status: connected 127.0.0.1:{port}"), "sender-status: peers 1"])?;
        // A note to the sender first: once it is in, the sender has read the request for stamps
        // that came before it, and stamps every note that follows.
        pd.send("note 127 1 16")?;
        pd.out.expect("sender-typed: note 127 1 16")?;
        for i in 0..NOTES {
            pd.send(&format!("sender note {i} 100 1"))?;
        }
        expect_notes_in_order(&mut pd, NOTES)?;
        let address = format!("127.0.0.1:{port}");
        let figures = read_stats(&mut pd)?.ok_or("stats: a client with jitter_buffer auto says off")?;
        let expected = [("delivered", NOTES as f64), ("queued", 0.0)];
        if expected.iter().any(|(name, value)| figure(&figures, &address, name) != Some(*value))
            || figure(&figures, &address, "offset_ms").is_none()
            || figure(&figures, &address, "delay_ms").is_none_or(|ms| ms < 1.0)
        {
            return Err(format!("client stats after {NOTES} stamped notes: {figures:?}"));
        }
        pd.send("disconnect")?;
        // Both ends see it, in either order.
        pd.out.expect_all(&["status: disconnected", "sender-status: peers 0"])?;

        // The other way: the object under test serves with a fixed delay, the sender connects.
        pd.send("jitter_buffer 5")?;
        let port = serve(&mut pd, "127.0.0.1:0")?;
        pd.send(&format!("sender connect 127.0.0.1:{port}"))?;
        pd.out.expect("status: peers 1")?;
        // The same the other way: once the sender has the server's note, it has read the request.
        pd.send("note 127 1 16")?;
        pd.out.expect("sender-typed: note 127 1 16")?;
        for i in 0..NOTES {
            pd.send(&format!("sender note {i} 100 1"))?;
        }
        expect_notes_in_order(&mut pd, NOTES)?;
        let figures = read_stats(&mut pd)?.ok_or("stats: a server with jitter_buffer 5 says off")?;
        let peers: std::collections::BTreeSet<&str> = figures.iter().map(|(peer, _, _)| peer.as_str()).collect();
        let peer = match peers.into_iter().collect::<Vec<_>>()[..] {
            [peer] if peer.starts_with("127.0.0.1:") => peer.to_owned(),
            ref other => return Err(format!("stats: expected one client, got {other:?}")),
        };
        let expected = [("delay_ms", 5.0), ("delivered", NOTES as f64), ("queued", 0.0)];
        if expected.iter().any(|(name, value)| figure(&figures, &peer, name) != Some(*value))
            || figure(&figures, &peer, "offset_ms").is_none()
        {
            return Err(format!("server stats after {NOTES} stamped notes: {figures:?}"));
        }
        self.finish(pd)
    }

    pub fn help_patch_loads(&self) -> Result<(), String> {
        let help = self.extra.join("midisock/midisock-help.pd");
        let output = Command::new("pd")
            .args(["-nogui", "-noaudio", "-nomidi", "-stderr", "-noprefs", "-batch", "-path"])
            .arg(&self.extra)
            .arg("-open")
            .arg(&help)
            .args(["-send", "pd quit"])
            .output()
            .map_err(|e| format!("cannot run pd: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let bad: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("error") || l.contains("couldn't create") || l.contains("... "))
            .collect();
        if !output.status.success() || !bad.is_empty() {
            return Err(format!("opening {} printed:\n{stderr}", help.display()));
        }
        Ok(())
    }

    /// Messages per second through the object: from the network into the patch (Pd serves, a
    /// plain TCP client writes note-ons as fast as it can, the patch counts raw-outlet lists),
    /// and from the patch onto the network (an [until] loop sends note-ons, a plain TCP server
    /// reads them); and the round trip network → object → network with the object echoing.
    /// Reported, not asserted: the numbers depend on the machine's load.
    pub fn throughput(&self) -> Result<(), String> {
        const INTO_PD: usize = 300_000;
        const FROM_PD: usize = 100_000;
        let mut pd = self.pd()?;
        pd.send("quiet 1")?;
        let port = serve(&mut pd, "127.0.0.1:0")?;
        let mut client = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        pd.out.expect("status: peers 1")?;
        let notes: Vec<u8> = (0..INTO_PD).flat_map(|i| [0x90, (i % 128) as u8, 100]).collect();
        let start = Instant::now();
        client.write_all(&notes).map_err(|e| e.to_string())?;
        loop {
            pd.send("count")?;
            let count = pd.out.wait_for(
                "the count",
                |l| l.starts_with("error:"),
                |l| l.strip_prefix("count: ")?.parse::<f64>().ok(),
            )?;
            if count as usize >= INTO_PD {
                break;
            }
            if start.elapsed() > WAIT {
                return Err(format!("only {count} of {INTO_PD} messages reached the patch in {} s", WAIT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let into_pd = INTO_PD as f64 / start.elapsed().as_secs_f64();

        drop(client);
        pd.out.expect("status: peers 0")?;

        let sink = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let sink_port = sink.local_addr().map_err(|e| e.to_string())?.port();
        pd.send_expect(&format!("connect 127.0.0.1:{sink_port}"), &format!("status: connected 127.0.0.1:{sink_port}"))?;
        let (mut stream, _) = sink.accept().map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        let start = Instant::now();
        pd.send(&format!("burst {FROM_PD}"))?;
        let mut received = vec![0u8; FROM_PD * 3];
        stream.read_exact(&mut received).map_err(|e| format!("reading the burst: {e}"))?;
        let from_pd = FROM_PD as f64 / start.elapsed().as_secs_f64();
        if received.chunks(3).any(|m| m != [0x90, 60, 100]) {
            return Err("the burst arrived with wrong bytes".into());
        }
        pd.out.expect("burst: bang")?;
        self.finish(pd)?;
        let report = format!(
            "network -> [midisock] -> patch: {into_pd:.0} messages/s ({INTO_PD} note-ons)\n\
             patch -> [midisock] -> network: {from_pd:.0} messages/s ({FROM_PD} note-ons)\n\
             network -> [midisock] -> its own inlet -> network, round trip ({ROUND_TRIPS} note-ons, one at a time):\n\
             \x20 Pd's default idle sleep: {}\n\
             \x20 pd -sleepgrain 0.1: {}\n",
            self.round_trip(&[])?,
            self.round_trip(&["-sleepgrain", "0.1"])?,
        );
        print!("pd-tests: throughput\n{report}");
        let path = env::target_dir().join("pd").join("throughput.txt");
        fs::write(&path, report).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Round trips through a Pd started with `pd_args`: a [midisock] server whose raw outlet is
    /// wired to its own inlet (dynamic patching inside the harness's [pd dut], where object 1 is
    /// [midisock]) echoes each note-on back to a plain TCP client. Returns "p50 …, p99 …, max …".
    fn round_trip(&self, pd_args: &[&str]) -> Result<String, String> {
        let mut pd = self.pd_with(pd_args)?;
        pd.send("quiet 1")?;
        let port = serve(&mut pd, "127.0.0.1:0")?;
        pd.send("patch connect 1 0 1 0")?;
        sync(&mut pd)?; // the patch connection is made
        let mut client = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        client.set_nodelay(true).map_err(|e| e.to_string())?;
        client.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        let mut times = Vec::with_capacity(ROUND_TRIPS);
        for i in 0..ROUND_TRIPS {
            let note = [0x90, (i % 128) as u8, 1 + (i % 127) as u8];
            let sent = Instant::now();
            client.write_all(&note).map_err(|e| e.to_string())?;
            let mut echo = [0u8; 3];
            client.read_exact(&mut echo).map_err(|e| format!("reading echo {i}: {e}"))?;
            times.push(sent.elapsed());
            if echo != note {
                return Err(format!("echo {i}: sent {note:?}, got {echo:?}"));
            }
        }
        times.sort();
        let ms = |p: f64| times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
        drop(client);
        self.finish(pd)?;
        Ok(format!("p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", ms(0.5), ms(0.99), ms(1.0)))
    }
}

/// How many note-ons `round_trip` times.
const ROUND_TRIPS: usize = 1_000;
