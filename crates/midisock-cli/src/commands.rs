//! The four commands. Each returns its exit code, or a failure with one line for stderr.

use crate::lines::{for_each_stdin_message, print_message};
use midisock::{ConnectOptions, Message, Parser, PortServer, ServerConfig, SysexPolicy, TlsClient, TlsServer};
use std::io::{self, Read, Write};
use std::path::Path;
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
const BAD_INPUT: u8 = 2;
/// Exit code for a failure of the network or the system.
const FAILED: u8 = 1;

fn failure(exit_code: u8) -> impl Fn(midisock::Error) -> Failure {
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
    #[arg(long, value_name = "POLICY", default_value = "allow", value_parser = ["allow", "deny"])]
    sysex: String,
    /// Longest sysex payload accepted, in bytes; longer ones are dropped.
    #[arg(long, value_name = "BYTES", default_value_t = midisock::DEFAULT_MAX_SYSEX_LEN)]
    max_sysex: usize,
    /// Clients served at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_clients: usize,
    /// Broadcast bytes that may wait for one client before it is disconnected as too slow.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
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
    fn connect(&self, addr: &str) -> Result<midisock::SocketPort, Failure> {
        let mut options = ConnectOptions { token: self.token.clone(), ..ConnectOptions::default() };
        if let Some(ca) = &self.tls_ca {
            let mut tls = TlsClient::with_ca_file(ca).map_err(failure(BAD_INPUT))?;
            if let Some(name) = &self.tls_name {
                tls = tls.server_name(name);
            }
            options = options.tls(tls);
        }
        midisock::connect_with(addr, &options).map_err(failure(FAILED))
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
        Ok(config)
    }
}

pub fn serve(addr: &str, options: &ServeOptions) -> Result<ExitCode, Failure> {
    let server = Arc::new(PortServer::bind_with(addr, options.config()?).map_err(failure(FAILED))?);
    let listening: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!("midisock: serving on {} ({})", server.name(), listening.join(", "));

    // stdin → broadcast, on its own thread so receiving never waits for typing.
    let broadcaster = Arc::clone(&server);
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            match for_each_stdin_message(&AtomicUsize::new(0), |m| broadcaster.send(m)) {
                // stdin ended (e.g. `< /dev/null`): keep serving; the server prints until killed.
                Ok(()) => {}
                Err(e) => eprintln!("midisock: reading stdin: {e}"),
            }
        })
        .map_err(|e| Failure { message: format!("cannot start stdin thread: {e}"), exit_code: FAILED })?;

    let mut out = io::stdout().lock();
    for message in server.iter() {
        if !print_message(&mut out, &message) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn connect(addr: &str, auth: &ClientAuth) -> Result<ExitCode, Failure> {
    let port = Arc::new(auth.connect(addr)?);
    eprintln!("midisock: connected to {}", port.name());

    let sender = Arc::clone(&port);
    let bad_lines = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&bad_lines);
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            if let Err(e) = for_each_stdin_message(&counter, |m| sender.send(m)) {
                eprintln!("midisock: reading stdin: {e}");
            }
        })
        .map_err(|e| Failure { message: format!("cannot start stdin thread: {e}"), exit_code: FAILED })?;

    // Print until the server closes the connection.
    let mut out = io::stdout().lock();
    for message in port.iter() {
        if !print_message(&mut out, &message) {
            break;
        }
    }
    eprintln!("midisock: connection closed by {}", port.name());
    // Lines that could not be sent are reported through the exit code.
    if bad_lines.load(Ordering::Relaxed) > 0 {
        return Ok(ExitCode::from(BAD_INPUT));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn send(addr: &str, auth: &ClientAuth, texts: &[String]) -> Result<ExitCode, Failure> {
    // Parse everything first: a typo in the third message must not leave two on the wire.
    let messages = texts
        .iter()
        .map(|text| {
            text.parse::<Message>()
                .map_err(|e| Failure { message: format!("invalid message {text:?}: {e}"), exit_code: BAD_INPUT })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port = auth.connect(addr)?;
    port.send_all(&messages).map_err(failure(FAILED))?;
    port.close();
    Ok(ExitCode::SUCCESS)
}

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
    let mut stdout_ok = true;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure { message: format!("reading input: {e}"), exit_code: FAILED }),
        };
        parser.feed(&buf[..n], |m| stdout_ok = stdout_ok && writeln!(out, "{m}").is_ok());
        if !stdout_ok {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let _ = out.flush();
    let stats = parser.stats();
    if parser.is_mid_message() {
        eprintln!("midisock: input ended in the middle of a message (dropped)");
    }
    if stats != midisock::ParserStats::default() {
        eprintln!("midisock: ignored input: {stats:?}");
    }
    Ok(ExitCode::SUCCESS)
}
