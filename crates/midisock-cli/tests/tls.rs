//! TLS set up exactly as docs/cli.md shows it: its `openssl` command run as written, the `serve`
//! and `send` commands from the same block (on an ephemeral port instead of 8443), and the
//! certificate problems a user meets, each one line naming the reason, exit status 1.
//!
//! Needs `openssl` (`cargo xtask test` installs it).

mod common;

use common::*;
use std::process::{Command, Output, Stdio};

/// The commands of the TLS section's shell block in docs/cli.md, continuation lines joined.
fn documented_tls_commands() -> Vec<String> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let section = docs.split_once("\n## TLS\n").expect("docs/cli.md has a TLS section").1;
    let block = section.split_once("```sh\n").expect("a shell block in the TLS section").1;
    let block = block.split_once("```").unwrap().0;
    block.replace("\\\n", " ").lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// One documented command, run by the shell in `dir` with this build's `midisock` first on PATH.
fn shell(dir: &TempDir, command: &str) -> Command {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_midisock")).parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut shell = Command::new("sh");
    // `exec`: the test's handle on the process is midisock's, not a shell's.
    shell.arg("-c").arg(format!("exec {command}")).current_dir(&dir.0).env("PATH", path).env_remove("MIDISOCK_TOKEN");
    shell
}

/// The documented server running, with its stdout lines and port.
fn serve_as_documented(dir: &TempDir, serve: &str, extra: &str) -> (Running, std::sync::mpsc::Receiver<String>, u16) {
    let command = format!("{} {extra}", serve.replace("localhost:8443", "localhost:0"));
    let mut child = Running(
        shell(dir, &command).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(),
    );
    let stderr = lines_of(child.0.stderr.take().unwrap());
    let port = serving_port(&wait_for_line(&stderr, "serving on"));
    // Keep draining stderr (the connection log) so the server never blocks on it.
    std::thread::spawn(move || for _ in stderr {});
    let stdout = lines_of(child.0.stdout.take().unwrap());
    (child, stdout, port)
}

fn one_line_failure(output: &Output, reason: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(reason), "{reason:?} not in {stderr:?}");
}

#[test]
fn the_documented_openssl_command_serve_and_send_work() {
    let commands = documented_tls_commands();
    let [openssl, serve, send] = commands.as_slice() else { panic!("expected three commands: {commands:?}") };
    assert!(openssl.starts_with("openssl req -x509"), "{openssl}");
    assert!(serve.starts_with("midisock serve localhost:8443 --tls-cert"), "{serve}");
    assert!(send.starts_with("midisock send localhost:8443 --tls-ca"), "{send}");
    let dir = TempDir::new("tls-docs");
    let made = shell(&dir, openssl).output().expect("openssl must be installed (cargo xtask test installs it)");
    assert!(made.status.success(), "{made:?}");

    let (_server, stdout, port) = serve_as_documented(&dir, serve, "");
    let sent = shell(&dir, &send.replace("localhost:8443", &format!("localhost:{port}"))).output().unwrap();
    assert!(sent.status.success(), "{sent:?}");
    wait_for_line(&stdout, "note_on channel=0 note=60 velocity=64 time=0");

    // The same certificate, checked for a name it does not carry.
    let wrong_name =
        shell(&dir, &format!("midisock send localhost:{port} --tls-ca cert.pem --tls-name elsewhere.example stop"))
            .output()
            .unwrap();
    one_line_failure(&wrong_name, "not valid for the name connected to");
}

/// A server presenting `cert`/`key` (PEM text), and a `send` to it trusting `trusted`.
fn send_to_server_with(dir: &TempDir, cert: &str, key: &str, trusted: &str) -> Output {
    std::fs::write(dir.join("server.pem"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
    std::fs::write(dir.join("trusted.pem"), trusted).unwrap();
    let (_server, _stdout, port) =
        serve_as_documented(dir, "midisock serve localhost:8443 --tls-cert server.pem --tls-key server.key", "");
    shell(dir, &format!("midisock send localhost:{port} --tls-ca trusted.pem stop")).output().unwrap()
}

fn params(ca: bool) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params
}

#[test]
fn an_expired_certificate_is_named_as_such() {
    let dir = TempDir::new("tls-expired");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut expired = params(false);
    expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = expired.self_signed(&key).unwrap().pem();
    let output = send_to_server_with(&dir, &cert, &key.serialize_pem(), &cert);
    one_line_failure(&output, "the server's certificate has expired");
}

#[test]
fn a_ca_certificate_presented_as_the_servers_own_is_named_as_such() {
    // The trust file holds a CA; the server presents another CA certificate that CA signed
    // (the mistake of signing a server certificate with CA:TRUE, as `openssl req -x509` makes).
    let dir = TempDir::new("tls-ca-leaf");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_params = params(true);
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = params(true).signed_by(&server_key, &issuer).unwrap().pem();
    let output = send_to_server_with(&dir, &server, &server_key.serialize_pem(), &ca);
    one_line_failure(&output, "the server presented a CA certificate as its own");
}
