//! The four commands. Each returns its exit code, or a failure with one line for stderr.

use crate::client::Client;
use crate::held::Tracked;
use crate::lines::{for_each_stdin_message, print_message};
use crate::midi::MidiOptions;
use crate::timing::{playout_line, print_report, TimingOptions};
use crate::{log, signals};
use midisock::{
    ConnectOptions, Message, PortServer, Reconnect, ReconnectingPort, ServerConfig, SysexPolicy, TlsClient, TlsServer,
};
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// A command that could not do its job: one line for stderr, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

/// Exit code for bad input from the user (address, message text, file).
pub const BAD_INPUT: u8 = 2;
/// Exit code for a failure of the network or the system.
pub const FAILED: u8 = 1;

/// How long a sender waits, after its last message, for the server to close its side (which is
/// when a refusal would show). A midisock server answers at once.
pub const FINISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn failure(exit_code: u8) -> impl Fn(midisock::Error) -> Failure {
    move |e| Failure {
        exit_code: match e {
            midisock::Error::AddressSyntax { .. }
            | midisock::Error::MessageText(_)
            | midisock::Error::InvalidMessage(_)
            | midisock::Error::InvalidToken => BAD_INPUT,
            _ => exit_code,
        },
        message: e.to_string(),
    }
}

/// Server protections, all off or at their library defaults unless given.
#[derive(clap::Args, Debug)]
pub struct ServeOptions {
    /// Only accept clients from this address or CIDR range (repeatable), e.g. 192.168.1.0/24 or
    /// ::1. Others are closed before any byte is read. Default: everyone who can reach ADDR.
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<String>,
    /// What to do with sysex from clients: `allow` or `deny` (sysex can overwrite synth patches).
    #[arg(long, value_name = "POLICY", default_value = sysex_policy_name(ServerConfig::default().sysex),
          value_parser = ["allow", "deny"])]
    sysex: String,
    /// Longest sysex payload accepted, in bytes; longer ones are dropped.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_sysex_len)]
    max_sysex: usize,
    /// Clients served at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_clients)]
    max_clients: usize,
    /// Broadcast bytes that may wait for one client before it is disconnected as too slow.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_client_queue)]
    max_client_queue: usize,
    /// Also forward every client's messages to every other client (a hub).
    #[arg(long)]
    relay: bool,
    /// Require clients to present this token (1-128 printable ASCII characters). Prefer the
    /// environment variable: a command line is visible to other users of the machine.
    #[arg(long, env = "MIDISOCK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve TLS with this PEM certificate chain (leaf first); needs --tls-key. mido clients
    /// cannot connect to a TLS server.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// A client's credentials.
#[derive(clap::Args, Debug)]
pub struct ClientAuth {
    /// Token for a server that requires one; servers without auth (mido's too) ignore it.
    #[arg(long, env = "MIDISOCK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connect with TLS, trusting the CA (or self-signed server certificate) in this PEM file.
    #[arg(long, value_name = "PEM")]
    tls_ca: Option<std::path::PathBuf>,
    /// With --tls-ca: the name the server's certificate must carry, when not the host connected to.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_name: Option<String>,
}

impl ClientAuth {
    pub fn connect(&self, addr: &str) -> Result<midisock::SocketPort, Failure> {
        midisock::connect_with(addr, &self.options()?).map_err(failure(FAILED))
    }

    /// The connect options these credentials make.
    pub fn options(&self) -> Result<ConnectOptions, Failure> {
        let mut options = ConnectOptions { token: self.token.clone(), ..ConnectOptions::default() };
        if let Some(ca) = &self.tls_ca {
            let mut tls = TlsClient::with_ca_file(ca).map_err(failure(BAD_INPUT))?;
            if let Some(name) = &self.tls_name {
                tls = tls.server_name(name);
            }
            options = options.tls(tls);
        }
        Ok(options)
    }
}

/// The word `--sysex` uses for a policy (the default shown in --help comes from the core's).
fn sysex_policy_name(policy: SysexPolicy) -> &'static str {
    match policy {
        SysexPolicy::Allow => "allow",
        SysexPolicy::Deny => "deny",
    }
}

impl ServeOptions {
    fn config(&self) -> Result<ServerConfig, Failure> {
        let mut config = ServerConfig::default()
            .max_sysex_len(self.max_sysex)
            .max_clients(self.max_clients)
            .max_client_queue(self.max_client_queue)
            .relay(self.relay)
            .sysex(if self.sysex == "deny" { SysexPolicy::Deny } else { SysexPolicy::Allow });
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config = config.tls(TlsServer::from_pem_files(cert, key).map_err(failure(BAD_INPUT))?);
        }
        if let Some(token) = &self.token {
            config = config.token(token.as_str()).map_err(failure(BAD_INPUT))?;
        }
        for range in &self.allow {
            config = config.allow(range).map_err(failure(BAD_INPUT))?;
        }
        Ok(config.on_event(crate::events::logger()?))
    }
}

pub fn serve(
    addr: &str,
    options: &ServeOptions,
    timing: &TimingOptions,
    midi: &MidiOptions,
) -> Result<ExitCode, Failure> {
    let mut config = options.config()?;
    if let Some(mode) = timing.jitter_buffer {
        config = config.jitter_buffer(mode);
    }
    let server = Arc::new(Tracked::new(PortServer::bind_with(addr, config).map_err(failure(FAILED))?));
    // What --stats prints: one line per client whose messages are played out.
    let stats = timing.start_stats(|| {
        let server = Arc::clone(&server);
        move || {
            let lines =
                server.inner.playout_stats().iter().map(|(peer, s)| playout_line(&peer.to_string(), s)).collect();
            print_report(lines, "no client connected")
        }
    })?;

    // The MIDI input port and stdin both broadcast, through one tracker of held notes.
    let broadcaster = Arc::clone(&server);
    let bridge = midi.open(Arc::new(move |m: &Message| {
        if let Err(e) = broadcaster.send(m) {
            log::debug(format_args!("broadcast: {e}"));
        }
    }))?;
    // Only now: a port that cannot be opened is the one line a failed start prints.
    let listening: Vec<String> = server.inner.local_addrs().iter().map(|a| a.to_string()).collect();
    log::info(format_args!("serving on {} ({})", server.inner.name(), listening.join(", ")));

    let closer = Arc::clone(&server);
    let final_stats = stats.clone();
    let received = signals::on_termination(move |signal| {
        // The clients' buffers are gone once the server is closed: report first.
        if let Some(report) = &final_stats {
            report();
        }
        let released = closer.release();
        // Flushes what is queued for each client (within ServerConfig::shutdown_flush), then
        // closes their connections; the loop below then ends.
        closer.inner.close();
        log::info(format_args!("{}: server closed{}", signals::name(signal), released_text(released)));
    })?;

    // stdin → broadcast, on its own thread so receiving never waits for typing.
    let broadcaster = Arc::clone(&server);
    spawn_named("stdin", move || {
        match for_each_stdin_message(&AtomicUsize::new(0), |m| broadcaster.send(m)) {
            // stdin ended (e.g. `< /dev/null`): keep serving; the server prints until stopped.
            Ok(()) => {}
            Err(e) => log::warn(format_args!("reading stdin: {e}")),
        }
    })?;

    let mut out = io::stdout().lock();
    for message in server.inner.iter() {
        bridge.play(&message);
        if !print_message(&mut out, &message) {
            break;
        }
    }
    if received.wait_for_shutdown().is_none() {
        // Ended otherwise (stdout gone): the stats are still due.
        if let Some(report) = &stats {
            report();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn released_text(released: usize) -> String {
    match released {
        0 => String::new(),
        1 => " (released 1 held note)".into(),
        n => format!(" (released {n} held notes)"),
    }
}

fn spawn_named(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), Failure> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map(|_| ())
        .map_err(|e| Failure { message: format!("cannot start the {name} thread: {e}"), exit_code: FAILED })
}

/// Why a connection ended without being asked to, in one line.
fn connection_end(name: &str, error: midisock::Error) -> Failure {
    let message = match error {
        e @ (midisock::Error::Refused { .. } | midisock::Error::GaveUp { .. }) => e.to_string(),
        midisock::Error::Io(e) => format!("connection to {name} lost: {e}"),
        _ => format!("the server {name} closed the connection"),
    };
    Failure { message, exit_code: FAILED }
}

/// --reconnect's long help, with the core's reconnect policy (so it cannot drift from it).
fn reconnect_help() -> String {
    let policy = Reconnect::default();
    format!(
        "When the server goes away, keep reconnecting: the first attempt {} ms after the drop, then \
         waits doubling up to {} ms between attempts (minus up to {} % at random). Notes received \
         before a drop are released (note-offs printed and played), and lines typed while \
         disconnected are reported and not sent. Without it, `connect` exits 1 when the server goes away.",
        policy.initial_delay.as_millis(),
        policy.max_delay.as_millis(),
        policy.jitter_percent,
    )
}

/// How `connect` reconnects.
#[derive(clap::Args, Debug)]
pub struct ReconnectOptions {
    /// When the server goes away, keep reconnecting, with growing waits (--help: how long);
    /// notes received before a drop are released. Without it, `connect` exits 1 when the server
    /// goes away.
    #[arg(long, long_help = reconnect_help())]
    reconnect: bool,
    /// With --reconnect: give up (exit 1) after this many failed attempts in a row.
    #[arg(long, value_name = "N", requires = "reconnect")]
    max_attempts: Option<u32>,
}

pub fn connect(
    addr: &str,
    auth: &ClientAuth,
    reconnect: &ReconnectOptions,
    timing: &TimingOptions,
    midi: &MidiOptions,
) -> Result<ExitCode, Failure> {
    let mut options = auth.options()?;
    if let Some(mode) = timing.jitter_buffer {
        options = options.jitter_buffer(mode);
    }
    let client = if reconnect.reconnect {
        let policy = Reconnect { max_attempts: reconnect.max_attempts, ..Reconnect::default() };
        let port = ReconnectingPort::connect(addr, &options.reconnect(policy)).map_err(failure(FAILED))?;
        port.on_state_change(|state| log::info(format_args!("{state}")));
        Client::Reconnecting(port)
    } else {
        Client::Plain(midisock::connect_with(addr, &options).map_err(failure(FAILED))?)
    };
    let port = Arc::new(Tracked::new(client));
    log::info(format_args!("connected to {}", port.inner.name()));
    let stats = timing.start_stats(|| {
        let port = Arc::clone(&port);
        move || {
            let lines = port.inner.playout_stats().iter().map(|s| playout_line(port.inner.name(), s)).collect();
            print_report(lines, "not connected")
        }
    })?;

    let sender = Arc::clone(&port);
    let bridge = midi.open(Arc::new(move |m: &Message| {
        if let Err(e) = sender.send(m) {
            log::debug(format_args!("send: {e}"));
        }
    }))?;

    let closer = Arc::clone(&port);
    let received = signals::on_termination(move |signal| {
        let released = closer.release();
        closer.inner.close();
        log::info(format_args!("{}: connection closed{}", signals::name(signal), released_text(released)));
    })?;

    let sender = Arc::clone(&port);
    let bad_lines = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&bad_lines);
    spawn_named("stdin", move || {
        let result = for_each_stdin_message(&counter, |m| match sender.send(m) {
            // Reconnecting: this line is lost, the next may go through.
            Err(e @ midisock::Error::Disconnected { .. }) => {
                log::warn(format_args!("{e}"));
                Ok(())
            }
            other => other,
        });
        if let Err(e) = result {
            log::warn(format_args!("reading stdin: {e}"));
        }
    })?;

    // Print until the connection ends or a signal closes it here.
    let mut out = io::stdout().lock();
    let end = loop {
        match port.inner.receive() {
            Ok(message) => {
                bridge.play(&message);
                if !print_message(&mut out, &message) {
                    break None;
                }
            }
            Err(e) => break Some(e),
        }
    };
    let signalled = received.wait_for_shutdown().is_some();
    // The port's buffer outlives its connection: what it played out is still there to report.
    if let Some(report) = &stats {
        report();
    }
    if !signalled {
        if let Some(error) = end {
            return Err(connection_end(port.inner.name(), error));
        }
    }
    // Lines that could not be sent are reported through the exit code.
    if bad_lines.load(Ordering::Relaxed) > 0 {
        return Ok(ExitCode::from(BAD_INPUT));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn send(addr: &str, auth: &ClientAuth, texts: &[String], hold: bool) -> Result<ExitCode, Failure> {
    // Parse everything first: a typo in the third message must not leave two on the wire.
    let messages = texts
        .iter()
        .map(|text| {
            text.parse::<Message>()
                .map_err(|e| Failure { message: format!("invalid message {text:?}: {e}"), exit_code: BAD_INPUT })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port = Arc::new(auth.connect(addr)?);
    port.send_all(&messages).map_err(failure(FAILED))?;
    if hold {
        // The server releases a client's notes when it leaves: stay until asked to go.
        let closer = Arc::clone(&port);
        let received = signals::on_termination(move |_| {
            let _ = closer.finish(FINISH_TIMEOUT);
        })?;
        log::info(format_args!("sent; holding the connection (and its notes) until Ctrl-C"));
        for _ in port.iter() {}
        if received.wait_for_shutdown().is_none() {
            return Err(connection_end(port.name(), port.receive().err().unwrap_or(midisock::Error::Closed)));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Half-close and wait for the server's side: a refused client learns it here (its sends
    // succeeded, into the socket's buffer).
    port.finish(FINISH_TIMEOUT).map_err(failure(FAILED))?;
    Ok(ExitCode::SUCCESS)
}

pub fn ports() -> Result<ExitCode, Failure> {
    let text = crate::midi::list_ports()?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
