//! The four commands. Each returns its exit code, or a failure with one line for stderr.

use crate::lines::{for_each_stdin_message, print_message};
use midisock::{Message, Parser, PortServer};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;
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
            | midisock::Error::InvalidMessage(_) => BAD_INPUT,
            _ => exit_code,
        },
        message: e.to_string(),
    }
}

pub fn serve(addr: &str) -> Result<ExitCode, Failure> {
    let server = Arc::new(PortServer::bind(addr).map_err(failure(FAILED))?);
    let listening: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!(
        "midisock: serving on {} ({})",
        server.name(),
        listening.join(", ")
    );

    // stdin → broadcast, on its own thread so receiving never waits for typing.
    let broadcaster = Arc::clone(&server);
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            match for_each_stdin_message(|m| broadcaster.send(m)) {
                // stdin ended (e.g. `< /dev/null`): keep serving; the server prints until killed.
                Ok(_) => {}
                Err(e) => eprintln!("midisock: reading stdin: {e}"),
            }
        })
        .map_err(|e| Failure {
            message: format!("cannot start stdin thread: {e}"),
            exit_code: FAILED,
        })?;

    let mut out = io::stdout().lock();
    for message in server.iter() {
        if !print_message(&mut out, &message) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn connect(addr: &str) -> Result<ExitCode, Failure> {
    let port = Arc::new(midisock::connect(addr).map_err(failure(FAILED))?);
    eprintln!("midisock: connected to {}", port.name());

    let sender = Arc::clone(&port);
    let stdin_thread = thread::Builder::new()
        .name("stdin".into())
        .spawn(move || for_each_stdin_message(|m| sender.send(m)))
        .map_err(|e| Failure {
            message: format!("cannot start stdin thread: {e}"),
            exit_code: FAILED,
        })?;

    // Print until the server closes the connection.
    let mut out = io::stdout().lock();
    for message in port.iter() {
        if !print_message(&mut out, &message) {
            break;
        }
    }
    eprintln!("midisock: connection closed by {}", port.name());
    // If stdin already ended, report bad lines through the exit code; if it is still open, the
    // session is over anyway.
    if stdin_thread.is_finished() {
        if let Ok(Ok(bad_lines)) = stdin_thread.join() {
            if bad_lines > 0 {
                return Ok(ExitCode::from(BAD_INPUT));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn send(addr: &str, texts: &[String]) -> Result<ExitCode, Failure> {
    // Parse everything first: a typo in the third message must not leave two on the wire.
    let messages = texts
        .iter()
        .map(|text| {
            text.parse::<Message>().map_err(|e| Failure {
                message: format!("invalid message {text:?}: {e}"),
                exit_code: BAD_INPUT,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port = midisock::connect(addr).map_err(failure(FAILED))?;
    port.send_all(&messages).map_err(failure(FAILED))?;
    port.close();
    Ok(ExitCode::SUCCESS)
}

pub fn decode(file: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut input: Box<dyn Read> = match file {
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
            Err(e) => {
                return Err(Failure {
                    message: format!("reading input: {e}"),
                    exit_code: FAILED,
                })
            }
        };
        parser.feed(&buf[..n], |m| {
            stdout_ok = stdout_ok && writeln!(out, "{m}").is_ok()
        });
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
