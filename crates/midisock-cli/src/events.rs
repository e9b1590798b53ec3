//! `serve`'s log of connections: every connect, disconnect and refusal with its cause, on
//! stderr (hidden by `-q`).
//!
//! The server calls its event hook on its I/O thread, which serves every client: a stderr that
//! blocks (a full pipe) must not stall it. Lines go through a bounded queue to a thread of their
//! own; when the queue is full, lines are counted and the count is reported instead.

use crate::commands::{Failure, FAILED};
use crate::log;
use midisock::ServerEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::Arc;

/// Lines that may wait for stderr before new ones are counted instead of queued.
const QUEUE: usize = 1024;

/// A hook for `ServerConfig::on_event` that logs each event.
pub fn logger() -> Result<impl Fn(&ServerEvent) + Send + Sync + 'static, Failure> {
    let (tx, rx) = sync_channel::<String>(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&dropped);
    std::thread::Builder::new()
        .name("event log".into())
        .spawn(move || {
            for line in rx {
                let missed = counted.swap(0, Ordering::Relaxed);
                if missed > 0 {
                    log::warn(format_args!("{missed} connection events not logged (stderr too slow)"));
                }
                log::info(format_args!("{line}"));
            }
        })
        .map_err(|e| Failure { message: format!("cannot start the event log thread: {e}"), exit_code: FAILED })?;
    Ok(move |event: &ServerEvent| {
        if let Err(TrySendError::Full(_)) = tx.try_send(event.to_string()) {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    })
}
