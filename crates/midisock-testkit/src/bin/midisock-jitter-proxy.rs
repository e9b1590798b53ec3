//! `midisock-jitter-proxy UPSTREAM DELAY [BACK_DELAY] [--seed N]`: run the jitter proxy by hand.
//!
//! Example: `midisock-jitter-proxy 127.0.0.1:8080 20±10ms`, then point a client at the address
//! it prints. Ctrl-C stops it.

use midisock_testkit::{DelayDistribution, JitterProxy, ProxyConfig};
use std::process::ExitCode;

const USAGE: &str = "usage: midisock-jitter-proxy UPSTREAM DELAY [BACK_DELAY] [--seed N]
  UPSTREAM    a loopback address, e.g. 127.0.0.1:8080
  DELAY       added towards UPSTREAM: 5ms, 20±10ms (or 20+-10ms, uniform), 20~5ms (normal)
  BACK_DELAY  added on the way back (default 0ms)";

fn run(args: &[String]) -> Result<(), String> {
    let mut positional = Vec::new();
    let mut seed = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => {
                let value = args.next().ok_or("--seed needs a number")?;
                seed = Some(value.parse::<u64>().map_err(|_| format!("--seed: {value:?} is not a number"))?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}\n{USAGE}")),
            other => positional.push(other),
        }
    }
    let [upstream, delay, rest @ ..] = positional.as_slice() else { return Err(USAGE.into()) };
    if rest.len() > 1 {
        return Err(format!("too many arguments\n{USAGE}"));
    }
    let upstream = upstream.parse().map_err(|_| format!("{upstream:?} is not an address like 127.0.0.1:8080"))?;
    let delay: DelayDistribution = delay.parse().map_err(|e| format!("{e}"))?;
    let mut config = ProxyConfig::new(upstream, delay);
    if let Some(back) = rest.first() {
        config.to_client = back.parse().map_err(|e| format!("{e}"))?;
    }
    if let Some(seed) = seed {
        config.seed = seed;
    }
    let proxy = JitterProxy::start(config).map_err(|e| format!("cannot start: {e}"))?;
    println!("listening on {}, forwarding to {upstream} with {delay}", proxy.local_addr());
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("midisock-jitter-proxy: {message}");
            ExitCode::from(2)
        }
    }
}
