//! The jitter proxy: bytes exact and in order, delays drawn from the distribution asked for,
//! loopback only, and a shutdown that closes live connections.

use midisock_testkit::{DelayDistribution, JitterProxy, ProxyConfig, SplitMix64};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An upstream that accepts one connection and returns everything it reads, until EOF.
fn collecting_upstream() -> (std::net::SocketAddr, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        all
    });
    (addr, handle)
}

#[test]
fn bytes_arrive_exactly_and_in_order_through_jitter() {
    let (upstream, received) = collecting_upstream();
    let proxy = JitterProxy::start(ProxyConfig::new(upstream, "3±3ms".parse().unwrap())).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    let mut rng = SplitMix64::new(9);
    let sent: Vec<u8> = (0..400_000).map(|_| rng.next_u64() as u8).collect();
    // Many writes of odd sizes, so the proxy sees many chunks with different delays.
    for piece in sent.chunks(997) {
        client.write_all(piece).unwrap();
        if rng.next_u64() % 8 == 0 {
            thread::sleep(Duration::from_micros(300));
        }
    }
    drop(client);
    let got = received.join().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes changed or reordered");
    let stats = proxy.stats();
    assert_eq!(stats.bytes, sent.len() as u64);
    assert!(stats.chunks > 20, "chunks {}", stats.chunks);
}

#[test]
fn draws_follow_the_distribution() {
    // What the proxy decides, checked without a clock: 10,000 seeded draws of 10±5 ms.
    let delay = DelayDistribution::Uniform { centre: ms(10), spread: ms(5) };
    let mut rng = SplitMix64::new(7);
    let mut draws: Vec<f64> = (0..10_000).map(|_| delay.sample(&mut rng).as_secs_f64() * 1e3).collect();
    draws.sort_unstable_by(f64::total_cmp);
    assert!(draws[0] >= 5.0 && draws[draws.len() - 1] <= 15.0, "{} .. {}", draws[0], draws[draws.len() - 1]);
    let mean = draws.iter().sum::<f64>() / draws.len() as f64;
    assert!((9.8..10.2).contains(&mean), "mean {mean} for 10±5 ms");
    // Uniform: the quartiles sit a quarter of the way in from each end.
    let (q1, q3) = (draws[draws.len() / 4], draws[draws.len() * 3 / 4]);
    assert!((7.2..7.8).contains(&q1) && (12.2..12.8).contains(&q3), "quartiles {q1} {q3}");
}

#[test]
fn no_chunk_is_released_before_its_delay() {
    // Scheduling can only make a chunk late, never early: each chunk is held at least the
    // distribution's smallest delay, and every chunk is accounted for.
    let (upstream, received) = collecting_upstream();
    let delay = DelayDistribution::Uniform { centre: ms(10), spread: ms(5) };
    let proxy = JitterProxy::start(ProxyConfig::new(upstream, delay)).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    let count = 60u32;
    for _ in 0..count {
        client.write_all(&[0x90, 60, 100]).unwrap();
        thread::sleep(ms(2));
    }
    drop(client);
    assert_eq!(received.join().unwrap().len(), 3 * count as usize);
    let stats = proxy.stats();
    assert_eq!(stats.held_ns.len() as u64, stats.chunks);
    assert!(stats.chunks >= 1 && stats.chunks <= count as u64, "{} chunks", stats.chunks);
    let shortest = *stats.held_ns.iter().min().unwrap();
    assert!(shortest >= delay.min().as_nanos() as u64, "a chunk left after {shortest} ns");
}

#[test]
fn a_slow_chunk_holds_up_the_ones_behind_it() {
    let (upstream, received) = collecting_upstream();
    let proxy = JitterProxy::start(ProxyConfig::new(upstream, "0~20ms".parse().unwrap())).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    for i in 0..200u32 {
        client.write_all(&i.to_be_bytes()).unwrap();
        thread::sleep(Duration::from_micros(500));
    }
    drop(client);
    let got = received.join().unwrap();
    let numbers: Vec<u32> = got.chunks(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>());
}

#[test]
fn only_loopback_upstreams_are_accepted() {
    let error =
        JitterProxy::start(ProxyConfig::new("192.0.2.1:9".parse().unwrap(), "1ms".parse().unwrap())).unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[test]
fn shutdown_closes_live_connections_and_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = JitterProxy::start(ProxyConfig::new(listener.local_addr().unwrap(), "1ms".parse().unwrap())).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    let (mut upstream_side, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut five = [0; 5];
    upstream_side.read_exact(&mut five).unwrap();
    assert_eq!(&five, b"hello");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        proxy.shutdown();
        done_tx.send(()).unwrap();
    });
    done_rx.recv_timeout(Duration::from_secs(30)).expect("shutdown did not return");
    // Both ends see the connection end.
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap_or(0), 0);
    upstream_side.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(upstream_side.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[test]
fn an_unreachable_upstream_closes_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let proxy = JitterProxy::start(ProxyConfig::new(addr, "1ms".parse().unwrap())).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buffer = [0; 1];
    assert_eq!(client.read(&mut buffer).unwrap_or(0), 0);
}
