//! NETCONF over TLS (RFC 7589), sans-IO: [`TlsSession`] is a rustls connection and a
//! [`Session`] joined by the one drain routine every adapter shares.
//!
//! The bug this exists to prevent: a read loop that waits for the socket to become readable
//! while the TLS library still holds decrypted bytes (or whole undecrypted records) never
//! sees them, and the session hangs ("Capability exchange timed out"). Here
//! [`TlsSession::handle_ciphertext`] feeds *all* its input to rustls, processes every
//! record and moves every plaintext byte into the session before it returns; there is no
//! state in which plaintext waits inside TLS for the next socket event.

mod call_home;
mod options;

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

pub use call_home::DeviceCheck;
pub use options::{
    ClientTlsOptions, PemSource, ServerTlsOptions, TlsConfigError, CLIENT_FRIENDLY_RECORD,
};

use crate::config::Config;
use crate::error::{ProtocolError, TlsError};
use crate::session::{Event, Output, Session};

/// A NETCONF session inside a TLS connection, with ciphertext in and out.
///
/// Same shape as [`Session`]: `handle_*` inputs, commands on [`session_mut`](Self::session_mut),
/// and [`poll_output`](Self::poll_output) drained until [`Output::Wait`], which then also
/// promises that rustls holds no unread plaintext and no unsent record.
#[derive(Debug)]
pub struct TlsSession {
    tls: Connection,
    session: Session,
    /// Session events held back until the ciphertext queued before them is handed out.
    events: VecDeque<Event>,
    /// The peer sent close_notify.
    peer_closed: bool,
    /// Bytes handed to rustls so far (for error offsets).
    received: u64,
    /// Where the peer's byte stream is relative to TLS record boundaries.
    records: RecordBoundary,
    /// The session's output is held back until the caller authorizes the peer (RFC 7589
    /// cert-to-name): an unmapped client must not even see our hello.
    authorization: Authorization,
    /// When the handshake must have finished (see [`TlsSession::set_handshake_timeout`]).
    handshake_deadline: Option<Instant>,
    /// Session output not yet given to rustls: encrypted a slice at a time, so each
    /// `Transmit` is bounded and the first bytes of a large reply leave while the rest is
    /// still being encrypted.
    plaintext: Bytes,
    /// We sent close_notify: nothing of the session's may follow it (rustls would encrypt
    /// it all the same). What is still to encrypt then (the rest of a large message when
    /// the session ended in its middle, see [`TlsSession::poll_event`]) is dropped.
    close_notify_sent: bool,
    /// The session's output (in its own bytes, as [`Session::output_handed_out`] counts
    /// them) whose ciphertext has all been handed out.
    handed_out: u64,
    /// Where transmits' ciphertext is gathered. A small transmit is handed out as a slice of
    /// it, and its room is reused once that transmit is dropped (an adapter drops it once
    /// written): no allocation per small transmit. A large one takes the buffer with it.
    ciphertext: BytesMut,
}

/// Plaintext encrypted per `Transmit`: large enough for few syscalls, small enough that
/// encryption overlaps transfer and memory stays flat.
const TRANSMIT_PLAINTEXT: usize = 128 * 1024;
/// A TLS record's plaintext, at most (RFC 8446 5.1).
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;
/// What a record adds to its plaintext, about: header, content type, AEAD tag (TLS 1.3:
/// 5 + 1 + 16), or explicit nonce and tag (TLS 1.2: 8 + 16); more leaves room for a
/// key update or an alert in the same transmit.
const RECORD_OVERHEAD: usize = 64;
/// A transmit up to this size is a slice of [`TlsSession`]'s reused buffer, which is at
/// least this large; a larger one takes the buffer with it. Small RPCs are a few hundred
/// bytes.
const SMALL_TRANSMIT: usize = 2 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authorization {
    NotRequired,
    Pending,
    Granted,
    Refused,
}

/// Follows TLS record headers (5 bytes: type, version, length) through the ciphertext so an
/// EOF inside a record can be told from one between records; rustls does not say whether it
/// holds a partial record.
#[derive(Debug, Default)]
struct RecordBoundary {
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
}

impl RecordBoundary {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header_len = 0;
            }
        }
    }

    fn mid_record(&self) -> bool {
        self.header_len > 0 || self.body_left > 0
    }
}

impl TlsSession {
    /// A client: starts the TLS handshake and queues our `<hello>` behind it.
    pub fn client(
        tls_config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        config: Config,
        now: Instant,
    ) -> Result<Self, rustls::Error> {
        let conn = ClientConnection::new(tls_config, server_name)?;
        Ok(TlsSession::new(conn.into(), Session::client(config, now)))
    }

    /// A server for one accepted connection, with the session-id it assigns.
    pub fn server(
        tls_config: Arc<ServerConfig>,
        config: Config,
        session_id: u32,
        now: Instant,
    ) -> Result<Self, rustls::Error> {
        let conn = ServerConnection::new(tls_config)?;
        Ok(TlsSession::new(
            conn.into(),
            Session::server(config, session_id, now),
        ))
    }

    fn new(mut tls: Connection, session: Session) -> Self {
        // Our plaintext is bounded by the caller's own commands; never let rustls refuse
        // part of a message (a partial write would corrupt framing).
        tls.set_buffer_limit(None);
        TlsSession {
            tls,
            session,
            events: VecDeque::new(),
            peer_closed: false,
            received: 0,
            records: RecordBoundary::default(),
            authorization: Authorization::NotRequired,
            handshake_deadline: None,
            plaintext: Bytes::new(),
            close_notify_sent: false,
            handed_out: 0,
            ciphertext: BytesMut::new(),
        }
    }

    /// Gives the TLS handshake until `now + timeout` to finish, apart from (and usually
    /// shorter than) the hello timeout: a server should not hold a connection open for
    /// someone who never completes a handshake.
    pub fn set_handshake_timeout(&mut self, timeout: std::time::Duration, now: Instant) {
        self.handshake_deadline = now.checked_add(timeout);
    }

    /// Holds the session back (no hello, no events) until [`TlsSession::authorize`] or
    /// [`TlsSession::refuse`]. Servers use this to map the client certificate to a user
    /// (RFC 7589 section 7) before the client learns anything about the server.
    pub fn require_authorization(&mut self) {
        if self.authorization == Authorization::NotRequired {
            self.authorization = Authorization::Pending;
        }
    }

    /// True when the TLS handshake is done and the peer waits for a decision: call
    /// [`TlsSession::authorize`] or [`TlsSession::refuse`] (after checking
    /// [`TlsSession::peer_certificates`]).
    pub fn awaiting_authorization(&self) -> bool {
        self.authorization == Authorization::Pending
            && !self.tls.is_handshaking()
            && !self.session.is_closed()
    }

    /// Lets the session start: our hello goes out.
    pub fn authorize(&mut self) {
        if self.authorization == Authorization::Pending {
            self.authorization = Authorization::Granted;
        }
    }

    /// Ends the session without sending anything but the TLS close_notify.
    pub fn refuse(&mut self) {
        if self.authorization == Authorization::Pending {
            self.authorization = Authorization::Refused;
            self.session.abort();
        }
    }

    /// The NETCONF session (getters).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The NETCONF session, for commands (`send_rpc`, `send_reply`, `close`, ...). Whatever
    /// they queue comes out of [`TlsSession::poll_output`] encrypted.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The rustls connection (negotiated version, cipher suite, ...).
    pub fn tls(&self) -> &Connection {
        &self.tls
    }

    /// The peer's certificate chain once the handshake is done (for cert-to-name mapping,
    /// RFC 7589 section 7).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls.peer_certificates()
    }

    /// True while the TLS handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Feeds ciphertext read from the socket. Any split is fine.
    ///
    /// All of `data` is given to rustls; after each piece every complete record is
    /// processed and all decrypted plaintext is handed to the session, so when this returns
    /// nothing is left inside TLS that the next socket read would be needed to release.
    pub fn handle_ciphertext(
        &mut self,
        mut data: &[u8],
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if let Some(e) = self.session.error() {
            return Err(e.clone());
        }
        while !data.is_empty() && !self.peer_closed && !self.session.is_closed() {
            let before = data.len();
            let chunk = data;
            match self.tls.read_tls(&mut data) {
                Ok(0) => break, // close_notify already received: nothing more is read
                Ok(_) => {}
                Err(e) => {
                    return Err(self.fail_tls(TlsError::new(format!("reading TLS records: {e}"))))
                }
            }
            let consumed = before - data.len();
            self.received += consumed as u64;
            self.records.feed(&chunk[..consumed]);
            let processed = self.tls.process_new_packets();
            // Plaintext decrypted before an error is still delivered: nothing received is lost.
            self.drain_plaintext(now)?;
            if let Err(e) = processed {
                return Err(self.fail_tls(TlsError::from_rustls(e)));
            }
        }
        Ok(())
    }

    /// Moves every decrypted byte from rustls into the session.
    fn drain_plaintext(&mut self, now: Instant) -> Result<(), ProtocolError> {
        loop {
            let mut reader = self.tls.reader();
            match reader.fill_buf() {
                Ok([]) => {
                    // close_notify: the peer will send nothing more.
                    self.peer_closed = true;
                    self.session.handle_eof(now);
                    return Ok(());
                }
                Ok(chunk) => {
                    let n = chunk.len();
                    let result = self.session.handle_input(chunk, now);
                    self.tls.reader().consume(n);
                    result?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // UnexpectedEof: the socket ended without close_notify; handle_eof reports it.
                Err(_) => return Ok(()),
            }
        }
    }

    /// The socket reached end of stream.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.session.is_closed() {
            return;
        }
        if self.tls.is_handshaking() {
            self.fail_tls(TlsError::new(
                "the connection closed during the TLS handshake",
            ));
            return;
        }
        if self.records.mid_record() && !self.peer_closed {
            self.fail_tls(TlsError::new(format!(
                "the connection closed in the middle of a TLS record (after {} bytes)",
                self.received
            )));
            return;
        }
        // Let rustls see the EOF too, so it stops expecting records.
        let _ = self.tls.read_tls(&mut io::empty());
        if !self.peer_closed {
            tracing::debug!(received = self.received, "TCP EOF without TLS close_notify");
        }
        self.session.handle_eof(now);
    }

    /// A deadline from [`Output::Wait`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.tls.is_handshaking() && self.handshake_deadline.is_some_and(|d| now >= d) {
            self.session
                .handle_transport_failure(ProtocolError::HandshakeTimeout);
            return;
        }
        self.session.handle_timeout(now);
    }

    /// The earliest deadline [`TlsSession::handle_timeout`] is wanted for.
    pub fn next_deadline(&self) -> Option<Instant> {
        let session = self.session.next_deadline();
        match self.handshake_deadline {
            Some(h) if self.tls.is_handshaking() && !self.session.is_closed() => {
                Some(session.map_or(h, |s| s.min(h)))
            }
            _ => session,
        }
    }

    /// The next thing to do; call until [`Output::Wait`].
    ///
    /// Ciphertext comes before the events that followed it, so an adapter that writes every
    /// `Transmit` before acting on `Event::Closed` never drops our last reply or the
    /// close_notify alert.
    pub fn poll_output(&mut self) -> Output {
        if let Some(ciphertext) = self.next_transmit(true) {
            return Output::Transmit(ciphertext);
        }
        if let Some(ev) = self.events.pop_front() {
            return Output::Event(ev);
        }
        Output::Wait(self.next_deadline())
    }

    /// Only the next ciphertext to write (`None`: nothing to write now), leaving the
    /// session's events where they are, for [`TlsSession::poll_output`]: a writing thread
    /// can encrypt a large reply as the transport takes it, without taking requests.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.next_transmit(false)
    }

    /// Only the next event (`None`: none now), leaving the ciphertext and the plaintext
    /// still to encrypt where they are: for a client whose writer already has enough to
    /// write, so that replies arriving meanwhile are not held behind a large request. An
    /// event taken this way may pass ciphertext queued before it: a caller acting on
    /// `Event::Closed` from here gives up the rest of what it was sending (the session is
    /// over).
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(ev) = self.events.pop_front() {
            return Some(ev);
        }
        if self.authorization == Authorization::Pending && !self.session.is_closed() {
            return None;
        }
        let ev = self.session.poll_event()?;
        if matches!(ev, Event::Closed { .. }) {
            self.send_close_notify();
        }
        Some(ev)
    }

    /// `with_events`: also move the session's events behind the ciphertext (for
    /// `poll_output`), else leave them in the session.
    fn next_transmit(&mut self, with_events: bool) -> Option<Bytes> {
        // Ciphertext left from before (a handshake flight, an alert, the rest of a large
        // message) goes first.
        if self.tls.wants_write() {
            return Some(self.transmit(0));
        }
        // Then as many of the session's transmits as fit one of ours: replies (or requests)
        // that were queued separately leave in one write, not one each.
        let mut room = TRANSMIT_PLAINTEXT;
        loop {
            if !self.plaintext.is_empty() {
                let n = self.plaintext.len().min(room);
                let slice = self.plaintext.split_to(n);
                self.write_plaintext(&slice);
                room -= n;
                if room == 0 {
                    break;
                }
                continue;
            }
            let holding = self.authorization == Authorization::Pending && !self.session.is_closed();
            let more = !holding
                && if with_events {
                    self.pull_session_output()
                } else {
                    self.pull_session_transmit()
                };
            if !more {
                break;
            }
        }
        if self.tls.wants_write() {
            return Some(self.transmit(TRANSMIT_PLAINTEXT - room));
        }
        None
    }

    /// How much of the session's output (in its plaintext bytes, the positions of
    /// [`Session::output_position`]) has left as ciphertext handed out.
    pub fn output_handed_out(&self) -> u64 {
        self.handed_out
    }

    /// The ciphertext rustls holds, at most about one transmit's worth; `plaintext`: how
    /// much was just encrypted, to size the buffer. A tiny message must not take a whole
    /// transmit's worth of memory: that cost a fresh 132 KiB allocation (page faults, the
    /// allocator growing and trimming its heap) per small RPC.
    fn transmit(&mut self, plaintext: usize) -> Bytes {
        let records = plaintext / MAX_RECORD_PLAINTEXT + 1;
        let out = &mut self.ciphertext;
        let need = plaintext + records * RECORD_OVERHEAD;
        if out.capacity() < need {
            // Once the transmits cut from the buffer are dropped, this reclaims it without
            // an allocation (see `BytesMut::reserve`); else a new one holds several.
            out.reserve(need.max(SMALL_TRANSMIT));
        }
        while self.tls.wants_write() && out.len() < TRANSMIT_PLAINTEXT {
            if self.tls.write_tls(&mut out.writer()).is_err() {
                break; // writing into memory cannot fail
            }
        }
        if !self.tls.wants_write() && !self.close_notify_sent && !self.tls.is_handshaking() {
            // Everything given to rustls so far is in this transmit or before it (once our
            // close_notify is out, what the session still queues is dropped, not sent; while
            // handshaking (TLS 1.2), plaintext waits in rustls unencrypted).
            self.handed_out = self.session.output_handed_out() - self.plaintext.len() as u64;
        }
        let out = &mut self.ciphertext;
        if out.len() > SMALL_TRANSMIT {
            return std::mem::take(out).freeze();
        }
        let transmit = out.split().freeze();
        if out.capacity() > 4 * SMALL_TRANSMIT {
            // A large reserve that produced little (an alert instead of the data): not kept.
            *out = BytesMut::new();
        }
        transmit
    }

    /// Takes the session's next output: plaintext to encrypt, or an event to hold until the
    /// ciphertext before it is out. Returns false when the session has nothing more.
    fn pull_session_output(&mut self) -> bool {
        match self.session.poll_output() {
            // A refused peer gets nothing but the close_notify; nothing follows it.
            Output::Transmit(_)
                if self.authorization == Authorization::Refused || self.close_notify_sent =>
            {
                true
            }
            Output::Transmit(plain) => {
                self.plaintext = plain;
                true
            }
            Output::Event(ev) => {
                if matches!(ev, Event::Closed { .. }) {
                    self.send_close_notify();
                }
                self.events.push_back(ev);
                true
            }
            Output::Wait(_) => false,
        }
    }

    /// Takes the session's next plaintext to encrypt, if any; its events stay there.
    fn pull_session_transmit(&mut self) -> bool {
        match self.session.poll_transmit() {
            // A refused peer gets nothing but the close_notify; nothing follows it.
            Some(_) if self.authorization == Authorization::Refused || self.close_notify_sent => {
                true
            }
            Some(plain) => {
                self.plaintext = plain;
                true
            }
            None => false,
        }
    }

    /// Ends our side of the TLS session: the ciphertext already made goes first, then the
    /// alert, then nothing.
    fn send_close_notify(&mut self) {
        self.tls.send_close_notify();
        self.close_notify_sent = true;
        self.plaintext = Bytes::new();
    }

    fn write_plaintext(&mut self, plain: &[u8]) {
        use std::io::Write as _;
        let written = self.tls.writer().write_all(plain);
        if !plain.is_empty() && !self.tls.is_handshaking() && !self.tls.wants_write() {
            // Accepted and dropped: rustls closed the connection itself (TLS 1.2 at the
            // end of its record sequence numbers sends close_notify and discards what
            // follows). Nothing more counts as handed out.
            self.close_notify_sent = true;
        }
        if written.is_err() {
            // rustls refuses only once the connection has failed (it would encrypt data
            // after our close_notify: see `close_notify_sent`); the session is over anyway.
            tracing::debug!(
                len = plain.len(),
                "dropping plaintext queued after the TLS session closed"
            );
        }
    }

    fn fail_tls(&mut self, error: TlsError) -> ProtocolError {
        let e = ProtocolError::Tls(error);
        self.session.handle_transport_failure(e.clone());
        e
    }
}
