//! `midisock`: MIDI over TCP from the command line, in mido's text format.
//!
//! stdout carries messages only (one per line, flushed per line); everything else goes to stderr.

#[cfg(feature = "midi")]
mod backend_liveness;
mod client;
mod commands;
mod decode;
mod events;
mod held;
mod lines;
mod log;
mod midi;
mod play;
#[cfg(feature = "midi")]
mod port_watch;
mod signals;
mod smf;
mod timing;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// MIDI over TCP/IP, wire-compatible with mido's socket ports.
///
/// Messages are written and read in mido's text format, one per line, for example
/// `note_on channel=0 note=60 velocity=64 time=0`.
#[derive(Parser, Debug)]
#[command(name = "midisock", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only warnings and errors on stderr (no connects, no "serving on").
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print details on stderr too (MIDI backend messages, failed sends).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a server: print every message received from any client; broadcast every line read on
    /// stdin to all connected clients.
    Serve {
        /// Address to listen on: host:port or [v6addr]:port. `localhost` listens on every loopback
        /// address; `:PORT`, `0.0.0.0:PORT` or `[::]:PORT` listen on all interfaces.
        #[arg(default_value = "localhost:8080")]
        addr: String,
        #[command(flatten)]
        limits: commands::ServeOptions,
        #[command(flatten)]
        timing: timing::TimingOptions,
        #[command(flatten)]
        midi: midi::MidiOptions,
    },
    /// Connect to a server: send every line read on stdin; print every message received.
    Connect {
        /// Server address: host:port or [v6addr]:port.
        addr: String,
        #[command(flatten)]
        auth: commands::ClientAuth,
        #[command(flatten)]
        reconnect: commands::ReconnectOptions,
        #[command(flatten)]
        timing: timing::TimingOptions,
        #[command(flatten)]
        midi: midi::MidiOptions,
    },
    /// Send messages to a server, then close the connection cleanly. Every message is checked
    /// before anything is sent.
    Send {
        /// Server address: host:port or [v6addr]:port.
        addr: String,
        #[command(flatten)]
        auth: commands::ClientAuth,
        /// Messages in mido's text format, one per argument, e.g. "note_on note=60 velocity=100".
        #[arg(required = true)]
        messages: Vec<String>,
        /// Stay connected after sending, until Ctrl-C (SIGINT) or SIGTERM: the server releases
        /// a client's notes when it leaves, so this is how notes keep sounding.
        #[arg(long)]
        hold: bool,
    },
    /// List the MIDI input and output ports (needs a build with MIDI ports: docs/cli.md).
    Ports,
    /// Play a Standard MIDI File (.mid) to a server, in time with its tempo map.
    Play {
        /// The file to play.
        file: std::path::PathBuf,
        /// Server address: host:port or [v6addr]:port.
        addr: String,
        #[command(flatten)]
        auth: commands::ClientAuth,
    },
    /// Decode raw MIDI bytes into text lines (a Standard MIDI File: its events, in order).
    Decode {
        /// File to read (stdin when absent).
        file: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::set_level(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Serve { addr, limits, timing, midi } => commands::serve(&addr, &limits, &timing, &midi),
        Command::Connect { addr, auth, reconnect, timing, midi } => {
            commands::connect(&addr, &auth, &reconnect, &timing, &midi)
        }
        Command::Send { addr, auth, messages, hold } => commands::send(&addr, &auth, &messages, hold),
        Command::Ports => commands::ports(),
        Command::Play { file, addr, auth } => play::play(&file, &addr, &auth),
        Command::Decode { file } => decode::decode(file.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("midisock: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
