//! What an I/O loop needs from a session, whether it carries plaintext ([`Session`]: SSH
//! channels, Unix sockets, TCP in tests) or ciphertext ([`TlsSession`](crate::TlsSession)).
//! Adapters write their loop once against this trait.

use std::time::Instant;

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::session::{Event, Output, Session};

/// A sans-IO session as seen by a read loop: transport bytes in, [`Output`] out.
pub trait Machine {
    /// Bytes read from the transport.
    fn handle_transport(&mut self, data: &[u8], now: Instant) -> Result<(), ProtocolError>;
    /// The transport reached end of stream.
    fn handle_eof(&mut self, now: Instant);
    /// A deadline passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next output; drain until [`Output::Wait`].
    fn poll_output(&mut self) -> Output;
    /// Only the next bytes to write (`None`: nothing to write now), leaving every event
    /// for [`Machine::poll_output`]: for a writing thread that paces a large message out
    /// and must not take the session's requests or its end.
    fn poll_transmit(&mut self) -> Option<Bytes>;
    /// Only the next event (`None`: none now), leaving the bytes to write: for a client
    /// whose writer has enough queued, so replies are not held behind a large request.
    fn poll_event(&mut self) -> Option<Event>;
    /// The earliest deadline [`Machine::handle_timeout`] is wanted for (what
    /// [`Output::Wait`] carries).
    fn next_deadline(&self) -> Option<Instant>;
    /// How much of the session's output (its plaintext bytes, the positions of
    /// [`Session::output_position`]) has left in the transmits handed out: a message queued
    /// up to position `p` is all with the caller once this reaches `p`.
    fn output_handed_out(&self) -> u64;
    /// The NETCONF session, for getters.
    fn session(&self) -> &Session;
    /// The NETCONF session, for commands.
    fn session_mut(&mut self) -> &mut Session;
    /// The peer's certificate chain, when the transport is TLS and the handshake is done.
    #[cfg(feature = "rustls")]
    fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        None
    }
    /// Gives the transport's handshake until `now + timeout` (TLS; others did theirs before).
    fn set_handshake_timeout(&mut self, _timeout: std::time::Duration, _now: Instant) {}
    /// Holds a server session back until [`Machine::authorize`] (TLS: RFC 7589
    /// cert-to-name before the hello). Transports that authenticate by themselves (SSH)
    /// ignore it.
    fn require_authorization(&mut self) {}
    /// True when a server must now decide whether the peer may proceed
    /// (see [`TlsSession::require_authorization`](crate::TlsSession::require_authorization)).
    fn awaiting_authorization(&self) -> bool {
        false
    }
    /// Lets the held session proceed (`true`) or ends it unseen (`false`).
    fn authorize(&mut self, _allow: bool) {}
}

impl Machine for Session {
    fn handle_transport(&mut self, data: &[u8], now: Instant) -> Result<(), ProtocolError> {
        self.handle_input(data, now)
    }
    fn handle_eof(&mut self, now: Instant) {
        Session::handle_eof(self, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now)
    }
    fn poll_output(&mut self) -> Output {
        Session::poll_output(self)
    }
    fn poll_transmit(&mut self) -> Option<Bytes> {
        Session::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Session::poll_event(self)
    }
    fn next_deadline(&self) -> Option<Instant> {
        Session::next_deadline(self)
    }
    fn output_handed_out(&self) -> u64 {
        Session::output_handed_out(self)
    }
    fn session(&self) -> &Session {
        self
    }
    fn session_mut(&mut self) -> &mut Session {
        self
    }
}

#[cfg(feature = "rustls")]
impl Machine for crate::tls::TlsSession {
    fn handle_transport(&mut self, data: &[u8], now: Instant) -> Result<(), ProtocolError> {
        self.handle_ciphertext(data, now)
    }
    fn handle_eof(&mut self, now: Instant) {
        crate::tls::TlsSession::handle_eof(self, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        crate::tls::TlsSession::handle_timeout(self, now)
    }
    fn poll_output(&mut self) -> Output {
        crate::tls::TlsSession::poll_output(self)
    }
    fn poll_transmit(&mut self) -> Option<Bytes> {
        crate::tls::TlsSession::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        crate::tls::TlsSession::poll_event(self)
    }
    fn next_deadline(&self) -> Option<Instant> {
        crate::tls::TlsSession::next_deadline(self)
    }
    fn output_handed_out(&self) -> u64 {
        crate::tls::TlsSession::output_handed_out(self)
    }
    fn session(&self) -> &Session {
        crate::tls::TlsSession::session(self)
    }
    fn session_mut(&mut self) -> &mut Session {
        crate::tls::TlsSession::session_mut(self)
    }
    fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        crate::tls::TlsSession::peer_certificates(self)
    }
    fn set_handshake_timeout(&mut self, timeout: std::time::Duration, now: Instant) {
        crate::tls::TlsSession::set_handshake_timeout(self, timeout, now)
    }
    fn require_authorization(&mut self) {
        crate::tls::TlsSession::require_authorization(self)
    }
    fn awaiting_authorization(&self) -> bool {
        crate::tls::TlsSession::awaiting_authorization(self)
    }
    fn authorize(&mut self, allow: bool) {
        if allow {
            crate::tls::TlsSession::authorize(self)
        } else {
            crate::tls::TlsSession::refuse(self)
        }
    }
}

impl<M: Machine + ?Sized> Machine for Box<M> {
    fn handle_transport(&mut self, data: &[u8], now: Instant) -> Result<(), ProtocolError> {
        (**self).handle_transport(data, now)
    }
    fn handle_eof(&mut self, now: Instant) {
        (**self).handle_eof(now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now)
    }
    fn poll_output(&mut self) -> Output {
        (**self).poll_output()
    }
    fn poll_transmit(&mut self) -> Option<Bytes> {
        (**self).poll_transmit()
    }
    fn poll_event(&mut self) -> Option<Event> {
        (**self).poll_event()
    }
    fn next_deadline(&self) -> Option<Instant> {
        (**self).next_deadline()
    }
    fn output_handed_out(&self) -> u64 {
        (**self).output_handed_out()
    }
    fn session(&self) -> &Session {
        (**self).session()
    }
    fn session_mut(&mut self) -> &mut Session {
        (**self).session_mut()
    }
    #[cfg(feature = "rustls")]
    fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        (**self).peer_certificates()
    }
    fn set_handshake_timeout(&mut self, timeout: std::time::Duration, now: Instant) {
        (**self).set_handshake_timeout(timeout, now)
    }
    fn require_authorization(&mut self) {
        (**self).require_authorization()
    }
    fn awaiting_authorization(&self) -> bool {
        (**self).awaiting_authorization()
    }
    fn authorize(&mut self, allow: bool) {
        (**self).authorize(allow)
    }
}
