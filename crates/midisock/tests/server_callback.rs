//! `PortServer::set_callback`: every message from every client goes to a function on the
//! server's own thread ("midisock-srv-cb"), in order, instead of to `receive`; removing the
//! callback hands later messages back; closing ends delivery and joins the thread; an idle
//! callback thread sleeps instead of polling.

mod support;

use midisock::{connect, Error, Message, PortServer, Received};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use support::{eventually, WAIT};

fn note(n: u8) -> Message {
    Message::NoteOn { channel: 0, note: n, velocity: 64 }
}

fn voluntary_switches(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn every_message_goes_to_the_callback_in_order_and_receive_refuses_meanwhile() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let (tx, rx) = mpsc::channel::<(Received, i32, String)>();
    server
        .set_callback(move |received| {
            let name = std::thread::current().name().unwrap_or_default().to_owned();
            tx.send((received, support::thread_id(), name)).unwrap()
        })
        .unwrap();
    assert!(matches!(server.set_callback(|_| {}), Err(Error::CallbackInstalled)));
    assert!(matches!(server.try_receive(), Err(Error::CallbackInstalled)));
    assert!(matches!(server.receive_timeout(Duration::ZERO), Err(Error::CallbackInstalled)));
    assert!(matches!(server.receive_interruptible(None), Err(Error::CallbackInstalled)));
    assert!(matches!(server.receive_batch(&mut Vec::new()), Err(Error::CallbackInstalled)));
    let a = connect(server.local_addr()).unwrap();
    let b = connect(server.local_addr()).unwrap();
    for n in 0..50 {
        a.send(&note(n)).unwrap();
        b.send(&note(n + 64)).unwrap();
    }
    let delivered: Vec<_> = (0..100).map(|_| rx.recv_timeout(WAIT).expect("a message")).collect();
    let (_, tid, name) = delivered[0].clone();
    assert_eq!(name, "midisock-srv-cb");
    assert!(delivered.iter().all(|(_, t, _)| *t == tid), "one thread delivers");
    let got: Vec<Received> = delivered.into_iter().map(|(r, _, _)| r).collect();
    let from = |low: u8| -> Vec<Message> {
        got.iter()
            .map(|r| r.message.clone())
            .filter(|m| matches!(m, Message::NoteOn { note, .. } if (low..low + 64).contains(note)))
            .collect()
    };
    assert_eq!(from(0), (0..50).map(note).collect::<Vec<_>>(), "a's messages in order");
    assert_eq!(from(64), (64..114).map(note).collect::<Vec<_>>(), "b's messages in order");
    assert!(got.iter().all(|r| r.timestamp_ns > 0));
    // Idle, the callback thread sleeps on the doorbell: no wakeups while nothing arrives.
    support::wait_until_blocked(tid);
    let before = voluntary_switches(tid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(voluntary_switches(tid), before, "the idle callback thread woke up");
}

#[test]
fn a_removed_callback_hands_later_messages_back_to_receive_and_can_be_set_again() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = connect(server.local_addr()).unwrap();
    let (tx, rx) = mpsc::channel();
    server.set_callback(move |received: Received| tx.send(received.message).unwrap()).unwrap();
    client.send(&note(1)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), note(1));
    server.remove_callback(); // joins the thread: nothing reaches the callback afterwards
    server.remove_callback(); // nothing installed: harmless
    client.send(&note(2)).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note(2)));
    assert!(rx.try_recv().is_err(), "a message reached the removed callback");
    let (tx, rx) = mpsc::channel();
    server.set_callback(move |received: Received| tx.send(received.message).unwrap()).unwrap();
    client.send(&note(3)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), note(3));
}

#[test]
fn a_callback_may_remove_itself_or_close_the_server_and_close_joins_the_thread() {
    let server = Arc::new(PortServer::bind("127.0.0.1:0").unwrap());
    let client = connect(server.local_addr()).unwrap();
    let (tx, rx) = mpsc::channel();
    let me = Arc::downgrade(&server);
    server
        .set_callback(move |received: Received| {
            tx.send(received.message.clone()).unwrap();
            if let Some(server) = me.upgrade() {
                if received.message == note(1) {
                    server.remove_callback();
                } else {
                    server.close();
                }
            }
        })
        .unwrap();
    client.send(&note(1)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), note(1));
    eventually("the callback to be gone", || server.try_receive().is_ok());
    client.send(&note(2)).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note(2)));
    // A callback that closes the server from inside.
    let tx2 = {
        let (tx, rx2) = mpsc::channel();
        let me = Arc::downgrade(&server);
        server
            .set_callback(move |received: Received| {
                tx.send(received.message).unwrap();
                if let Some(server) = me.upgrade() {
                    server.close();
                }
            })
            .unwrap();
        rx2
    };
    client.send(&note(3)).unwrap();
    assert_eq!(tx2.recv_timeout(WAIT).unwrap(), note(3));
    eventually("the server to close", || server.is_closed());
    assert!(matches!(server.set_callback(|_| {}), Err(Error::Closed)));
    // Closing from outside while a callback is set joins its thread.
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = connect(server.local_addr()).unwrap();
    let (tx, rx) = mpsc::channel();
    server.set_callback(move |received: Received| tx.send(received.message).unwrap()).unwrap();
    client.send(&note(4)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), note(4));
    server.close();
    // The callback (and the sender it holds) is gone with its thread.
    assert!(matches!(rx.recv_timeout(WAIT), Err(mpsc::RecvTimeoutError::Disconnected)));
}
