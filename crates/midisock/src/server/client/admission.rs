//! A connection's way in: the TLS handshake, the token hello, the check for the wrong transport,
//! and the notice written to a connection that is refused.

use super::{Client, Reader, Role};
use crate::auth::Verdict;
use crate::refusal::{self, RefusalCause};
use crate::tls;
use mio::net::TcpStream;
use rustls::Connection;
use std::io::{self, Write};
use std::net::Shutdown;

/// The first byte of a TLS record carrying a handshake message (a ClientHello starts with
/// `16 03 0x`). A MIDI stream never starts with it: it is a data byte, and a stream starts with a
/// status byte.
pub(super) const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// The second byte of every TLS record header (the major version, 3).
const TLS_MAJOR_VERSION: u8 = 0x03;

/// Where a connection's admission (TLS handshake, then hello) stands.
pub(crate) enum Admission {
    NeedMore,
    Accepted,
    Refused(RefusalCause),
}

impl Client {
    /// Advances a connection's TLS handshake, then reads its hello one byte at a time (never
    /// past it: what follows is MIDI for whoever gets the connection).
    pub(crate) fn admit_step(&self) -> Admission {
        let Some(mut reader) = self.reader_if(Role::Admitting) else {
            return Admission::NeedMore;
        };
        if self.tls.is_some() {
            match self.handshake(&mut reader) {
                Ok(true) => {}
                Ok(false) => return Admission::NeedMore,
                Err(cause) => return Admission::Refused(cause),
            }
        }
        if reader.hello.is_none() {
            return Admission::Accepted;
        }
        let mut byte = [0u8];
        loop {
            match self.read(&mut byte) {
                Ok(Some(0)) => return Admission::Refused(RefusalCause::InvalidToken),
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Admission::NeedMore,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Admission::Refused(RefusalCause::InvalidToken),
            }
            if !reader.transport_checked {
                reader.transport_checked = true;
                if self.tls.is_none() && byte[0] == TLS_HANDSHAKE_RECORD {
                    return Admission::Refused(RefusalCause::TlsNotOffered);
                }
            }
            match reader.hello.as_mut().map_or(Verdict::Accepted, |check| check.feed(byte[0])) {
                Verdict::NeedMore => {}
                Verdict::Accepted => {
                    reader.hello = None;
                    return Admission::Accepted;
                }
                Verdict::Rejected => return Admission::Refused(RefusalCause::InvalidToken),
            }
        }
    }

    /// One step of the TLS handshake: `Ok(true)` once complete, `Ok(false)` while it needs more
    /// from the peer. A peer whose first byte is not a TLS handshake record speaks plain MIDI.
    fn handshake(&self, reader: &mut Reader) -> Result<bool, RefusalCause> {
        if !reader.transport_checked {
            let mut first = [0u8];
            match self.stream.peek(&mut first) {
                Ok(0) => return Err(RefusalCause::TlsRequired),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => return Err(RefusalCause::TlsRequired),
                Ok(_) => reader.transport_checked = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(_) => return Err(RefusalCause::TlsRequired),
            }
        }
        let step = |conn: &mut Connection| -> io::Result<bool> {
            while conn.is_handshaking() {
                match conn.read_tls(&mut &self.stream) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                let processed = conn.process_new_packets();
                let flushed = tls::flush_records(conn, &self.stream);
                processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                flushed?;
            }
            Ok(true)
        };
        match self.with_tls(step) {
            None => Ok(true),
            Some(Some(Ok(done))) => Ok(done),
            // A failed handshake is an authentication failure: the client could not (or would
            // not) prove what the server asked, or rejected the server's certificate.
            Some(Some(Err(_))) | Some(None) => Err(RefusalCause::InvalidToken),
        }
    }

    /// True when the TLS handshake is complete (false without TLS).
    fn tls_established(&self) -> bool {
        matches!(self.with_tls(|conn| !conn.is_handshaking()), Some(Some(true)))
    }

    /// Writes the refusal notice, best effort and without blocking: through TLS when the
    /// handshake completed, plain otherwise. The caller then closes the connection.
    pub(crate) fn write_refusal(&self, cause: RefusalCause) {
        let notice = refusal::notice(cause);
        if self.tls_established() {
            self.with_tls(|conn| {
                let _ = conn.writer().write_all(&notice);
                conn.send_close_notify();
                let _ = tls::flush_records(conn, &self.stream);
            });
        } else {
            let _ = (&self.stream).write(&notice);
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// True when a connection's first bytes are a TLS record header rather than MIDI: `16`, then
/// `03` if a second byte came.
pub(super) fn sniff_transport(first: &[u8]) -> Transport {
    match first {
        [TLS_HANDSHAKE_RECORD, TLS_MAJOR_VERSION, ..] => Transport::Tls,
        // A lone 0x16 may be a TLS record's first byte or a stray MIDI data byte: the next byte
        // decides, so the verdict never depends on how the stream was cut into reads.
        [TLS_HANDSHAKE_RECORD] => Transport::Undecided,
        _ => Transport::Midi,
    }
}

/// What a plain server makes of a connection's first bytes ([`sniff_transport`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    /// A TLS handshake record (`16 03`): refused, never parsed as MIDI.
    Tls,
    /// The MIDI stream.
    Midi,
    /// Only `16` so far.
    Undecided,
}

/// Writes a refusal notice to a connection that never became a client, best effort, then ends it.
pub(crate) fn refuse_stream(stream: &TcpStream, cause: RefusalCause) {
    let _ = (&*stream).write(&refusal::notice(cause));
    let _ = stream.shutdown(Shutdown::Write);
}
