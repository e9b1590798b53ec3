//! `midisock`: MIDI over TCP from the command line, in mido's text format.
//!
//! stdout carries messages only (one per line, flushed per line); everything else goes to stderr.

mod commands;
mod lines;

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
    },
    /// Connect to a server: send every line read on stdin; print every message received.
    Connect {
        /// Server address: host:port or [v6addr]:port.
        addr: String,
        #[command(flatten)]
        auth: commands::ClientAuth,
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
    },
    /// Decode raw MIDI bytes into text lines.
    Decode {
        /// File to read (stdin when absent).
        file: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { addr, limits } => commands::serve(&addr, &limits),
        Command::Connect { addr, auth } => commands::connect(&addr, &auth),
        Command::Send { addr, auth, messages } => commands::send(&addr, &auth, &messages),
        Command::Decode { file } => commands::decode(file.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("midisock: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
