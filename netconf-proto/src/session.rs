//! The session state machine: one type for both roles.
//!
//! Methods fall into four groups (the quinn-proto convention):
//! - getters: [`Session::state`], [`Session::session_id`], [`Session::peer_capabilities`], ...
//! - inputs: [`Session::handle_input`], [`Session::handle_eof`], [`Session::handle_timeout`];
//! - commands: [`Session::send_rpc`], [`Session::send_reply`], [`Session::send_notification`],
//!   [`Session::close`], [`Session::abort`], [`Session::cancel_rpc`];
//! - output: [`Session::poll_output`], drained after every input and command until it
//!   returns [`Output::Wait`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::capabilities::{BaseVersion, Capabilities};
use crate::config::Config;
use crate::error::{ProtocolError, UsageError};
use crate::framing::{self, FrameDecoder, Framing, Piece};
use crate::message::{self, Message, Notification, ParseError, Reply, Request, RpcReply};
use crate::operations::{Operation, RpcBody};

/// Which end of the session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// A message-id allocated by a client session. Replies are matched on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Our hello is queued; the peer's has not arrived.
    Hello,
    /// Hellos exchanged; RPCs flow.
    Established,
    /// We sent `<close-session>` and wait for its reply.
    Closing,
    /// Finished; [`Event::Closed`] has been queued.
    Closed,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// `<close-session>` completed: our request was answered (client), or the peer asked (server).
    CloseSession,
    /// The peer closed the transport between messages.
    Eof,
    /// The local side ended the session without a close-session exchange, or the
    /// close-session reply did not come in time.
    Local,
    /// The peer broke the protocol.
    Protocol(ProtocolError),
}

/// Something the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The hello exchange finished.
    Established {
        session_id: u32,
        peer_capabilities: Capabilities,
        framing: Framing,
    },
    /// A reply to one of our RPCs (client role).
    Reply { id: MessageId, reply: RpcReply },
    /// A request from the client (server role). Answer it with [`Session::send_reply`].
    Rpc { request: Request },
    /// An RFC 5277 notification (client role).
    Notification(Notification),
    /// No reply arrived for `id` in time; a late reply will be discarded.
    RpcTimedOut { id: MessageId },
    /// A message was dropped and the session goes on (e.g. an `<rpc-reply>` whose
    /// message-id is missing or unknown).
    MessageRejected { error: ProtocolError },
    /// The session ended. Always the last event, exactly once.
    Closed { reason: CloseReason },
}

/// What [`Session::poll_output`] hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Bytes to write to the transport, in order, completely.
    Transmit(Bytes),
    /// An event to deliver.
    Event(Event),
    /// Drained: nothing is buffered. Call [`Session::handle_timeout`] at this deadline
    /// (`None`: no deadline) or when input or a command arrives.
    Wait(Option<Instant>),
}

/// A request waiting for its turn to be answered. RFC 6241 section 4.5: replies go out in
/// the order the requests came, so an answer given early waits here for those before it.
#[derive(Debug)]
struct PendingReply {
    /// The message-id to answer; `None` for replies the session makes itself.
    message_id: Option<String>,
    /// The envelope (RFC 6241 echoes the rpc's attributes).
    reply_open: String,
    reply_close: String,
    /// The answer, once given.
    reply: Option<Reply>,
    /// Sending this reply ends the session (close-session).
    closes: bool,
}

/// A NETCONF session, without I/O. See the crate docs for the run loop.
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: Config,
    state: State,
    decoder: FrameDecoder,
    /// The message being received.
    message: BytesMut,
    out_framing: Framing,
    out: BytesMut,
    events: VecDeque<Event>,
    session_id: Option<u32>,
    peer_capabilities: Capabilities,
    hello_deadline: Option<Instant>,
    next_id: u64,
    /// In-flight RPCs (client): id -> deadline, plus the deadlines ordered for the next wake-up.
    pending: HashMap<u64, Option<Instant>>,
    deadlines: BTreeSet<(Instant, u64)>,
    close_id: Option<u64>,
    /// Requests waiting for our reply (server), by message-id.
    /// Requests (server) in arrival order, each waiting for its reply to go out.
    requests: VecDeque<PendingReply>,
    /// The client sent close-session (server): nothing after it is read.
    close_requested: bool,
    /// The fatal error, kept so later input reports it again.
    error: Option<ProtocolError>,
}

impl Session {
    /// A client session; our `<hello>` is queued at once.
    pub fn client(config: Config, now: Instant) -> Self {
        Session::new(Role::Client, config, None, now)
    }

    /// A server session with the session-id the server assigned; our `<hello>` is queued at once.
    pub fn server(config: Config, session_id: u32, now: Instant) -> Self {
        Session::new(Role::Server, config, Some(session_id.max(1)), now)
    }

    fn new(role: Role, config: Config, session_id: Option<u32>, now: Instant) -> Self {
        let mut s = Session {
            role,
            decoder: FrameDecoder::new(config.max_message_size),
            hello_deadline: now.checked_add(config.hello_timeout),
            config,
            state: State::Hello,
            message: BytesMut::new(),
            out_framing: Framing::EndOfMessage,
            out: BytesMut::new(),
            events: VecDeque::new(),
            session_id,
            peer_capabilities: Capabilities::default(),
            next_id: 1,
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            close_id: None,
            requests: VecDeque::new(),
            close_requested: false,
            error: None,
        };
        let hello = message::write_hello(&s.config.capabilities, session_id);
        framing::encode(Framing::EndOfMessage, hello.as_bytes(), &mut s.out);
        s
    }

    // ----- getters -----

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The session-id: assigned by us (server) or learnt from the server's hello (client).
    pub fn session_id(&self) -> Option<u32> {
        self.session_id
    }

    /// The peer's capabilities (empty until established).
    pub fn peer_capabilities(&self) -> &Capabilities {
        &self.peer_capabilities
    }

    /// Our capabilities.
    pub fn local_capabilities(&self) -> &Capabilities {
        &self.config.capabilities
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The framing of messages we send from now on.
    pub fn framing(&self) -> Framing {
        self.out_framing
    }

    /// Number of RPCs waiting for a reply (client).
    pub fn rpcs_in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The fatal protocol error, once there is one.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// Bytes of the message now arriving (0 between messages): for progress displays.
    pub fn receiving_len(&self) -> usize {
        if self.decoder.is_mid_message() {
            self.decoder.message_len()
        } else {
            0
        }
    }

    /// True while part of a message from the peer has arrived but not all of it.
    pub fn is_receiving(&self) -> bool {
        self.decoder.is_mid_message()
    }

    // ----- inputs -----

    /// Feeds bytes received from the peer (plaintext: after TLS or SSH). Any split is fine.
    ///
    /// Every complete message in `data` is processed before this returns. On a protocol
    /// error the session closes ([`Event::Closed`] is queued after every event of the
    /// messages before the bad one) and the error is returned, now and on later calls.
    pub fn handle_input(&mut self, mut data: &[u8], now: Instant) -> Result<(), ProtocolError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        while !data.is_empty() && self.state != State::Closed && !self.close_requested {
            let (n, piece) = match self.decoder.decode(data) {
                Ok(step) => step,
                Err(e) => return Err(self.fail(e)),
            };
            data = &data[n..];
            match piece {
                Piece::Data(bytes) => self.message.extend_from_slice(bytes),
                Piece::End => {
                    let message = self.message.split().freeze();
                    self.process_message(message, now)?;
                }
            }
        }
        Ok(())
    }

    /// The transport was closed by the peer (or its stream ended).
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.decoder.is_mid_message() {
            let e = ProtocolError::TruncatedMessage {
                offset: self.decoder.message_start(),
                received: self.decoder.message_len(),
            };
            self.fail(e);
        } else {
            self.finish(CloseReason::Eof);
        }
    }

    /// Time has reached a deadline returned by [`Output::Wait`] (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.state == State::Hello && self.hello_deadline.is_some_and(|d| now >= d) {
            self.fail(ProtocolError::HelloTimeout);
            return;
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            self.pending.remove(&id);
            if self.close_id == Some(id) {
                tracing::debug!("close-session reply did not arrive in time");
                self.finish(CloseReason::Local);
                return;
            }
            self.events
                .push_back(Event::RpcTimedOut { id: MessageId(id) });
            if self.decoder.is_mid_message() {
                // A peer that stops inside a message cannot deliver anything after it.
                let e = ProtocolError::StalledMidMessage {
                    offset: self.decoder.message_start(),
                    received: self.decoder.message_len(),
                };
                self.fail(e);
                return;
            }
        }
    }

    /// The transport under the session failed (a TLS error, say): the session closes with
    /// this error as its reason.
    pub fn handle_transport_failure(&mut self, error: ProtocolError) {
        self.fail(error);
    }

    // ----- commands -----

    /// Sends an RPC with the configured default timeout (client).
    pub fn send_rpc(
        &mut self,
        op: &(impl Operation + ?Sized),
        now: Instant,
    ) -> Result<MessageId, UsageError> {
        self.send_rpc_with_timeout(op, self.config.rpc_timeout, now)
    }

    /// Sends an RPC that times out after `timeout` (`None`: never).
    pub fn send_rpc_with_timeout(
        &mut self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<MessageId, UsageError> {
        if self.role != Role::Client {
            return Err(UsageError::WrongRole("send_rpc", "client"));
        }
        self.check_established()?;
        let id = self.next_id;
        self.next_id += 1;
        let rpc = message::write_rpc(id, op);
        framing::encode(self.out_framing, rpc.as_bytes(), &mut self.out);
        let deadline = timeout.and_then(|t| now.checked_add(t));
        self.pending.insert(id, deadline);
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        Ok(MessageId(id))
    }

    /// Forgets an in-flight RPC (its caller went away); its reply will be discarded.
    /// Returns whether it was in flight.
    pub fn cancel_rpc(&mut self, id: MessageId) -> bool {
        match self.pending.remove(&id.0) {
            Some(deadline) => {
                if let Some(d) = deadline {
                    self.deadlines.remove(&(d, id.0));
                }
                true
            }
            None => false,
        }
    }

    /// Answers a request received in [`Event::Rpc`] (server).
    pub fn send_reply(&mut self, message_id: &str, reply: &Reply) -> Result<(), UsageError> {
        if self.role != Role::Server {
            return Err(UsageError::WrongRole("send_reply", "server"));
        }
        if self.state == State::Closed {
            return Err(UsageError::Closed);
        }
        // The earliest unanswered request with this id: a client may reuse message-ids.
        let Some(pending) = self
            .requests
            .iter_mut()
            .find(|p| p.reply.is_none() && p.message_id.as_deref() == Some(message_id))
        else {
            return Err(UsageError::UnknownRequest(message_id.to_owned()));
        };
        pending.reply = Some(reply.clone());
        self.send_answered_replies();
        Ok(())
    }

    /// Sends an RFC 5277 notification (server). `content` must be a well-formed fragment.
    pub fn send_notification(&mut self, event_time: &str, content: &str) -> Result<(), UsageError> {
        if self.role != Role::Server {
            return Err(UsageError::WrongRole("send_notification", "server"));
        }
        self.check_established()?;
        crate::xml::check_fragment(content)?;
        let xml = message::write_notification(event_time, content);
        framing::encode(self.out_framing, xml.as_bytes(), &mut self.out);
        Ok(())
    }

    /// Ends the session politely. A client sends `<close-session>` and closes when it is
    /// answered (or times out); before the hello exchange, and in the server role, the session
    /// closes at once. Returns the close-session's message-id when one was sent.
    pub fn close(&mut self, now: Instant) -> Option<MessageId> {
        match (self.role, self.state) {
            (_, State::Closed | State::Closing) => None,
            (Role::Client, State::Established) => {
                let op = RpcBody::raw("<close-session/>").ok()?;
                let id = self.send_rpc(&op, now).ok()?;
                self.close_id = Some(id.0);
                self.state = State::Closing;
                Some(id)
            }
            _ => {
                self.finish(CloseReason::Local);
                None
            }
        }
    }

    /// Ends the session now, without a close-session exchange.
    pub fn abort(&mut self) {
        self.finish(CloseReason::Local);
    }

    // ----- output -----

    /// The next thing to do. Call until it returns [`Output::Wait`].
    pub fn poll_output(&mut self) -> Output {
        if !self.out.is_empty() {
            return Output::Transmit(self.out.split().freeze());
        }
        if let Some(ev) = self.events.pop_front() {
            return Output::Event(ev);
        }
        Output::Wait(self.next_deadline())
    }

    /// The earliest deadline the session needs [`Session::handle_timeout`] for.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Hello => self.hello_deadline,
            State::Established | State::Closing => self.deadlines.first().map(|(d, _)| *d),
        }
    }

    // ----- internals -----

    fn check_established(&self) -> Result<(), UsageError> {
        match self.state {
            State::Established => Ok(()),
            State::Hello => Err(UsageError::NotEstablished),
            State::Closing | State::Closed => Err(UsageError::Closed),
        }
    }

    /// Records a fatal error and closes; returns it for the caller to propagate.
    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        tracing::debug!(error = %e, "NETCONF protocol error; closing the session");
        if self.error.is_none() && self.state != State::Closed {
            self.error = Some(e.clone());
            self.finish(CloseReason::Protocol(e.clone()));
        }
        e
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.pending.clear();
        self.deadlines.clear();
        self.requests.clear();
        self.events.push_back(Event::Closed { reason });
    }

    fn process_message(&mut self, message: Bytes, now: Instant) -> Result<(), ProtocolError> {
        let offset = self.decoder.last_message_start();
        if message
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))
        {
            return Ok(()); // filler between end-of-message delimiters
        }
        let parsed = match message::parse_message(message) {
            Ok(m) => m,
            Err(e) => return self.parse_failure(e, offset),
        };
        match (self.state, parsed) {
            (State::Hello, Message::Hello(hello)) => self.on_hello(hello, now),
            (State::Hello, other) => Err(self.fail(ProtocolError::ExpectedHello {
                offset,
                element: element_name(&other).into(),
            })),
            (_, Message::Hello(_)) => Err(self.fail(ProtocolError::DuplicateHello { offset })),
            (_, Message::RpcReply(reply)) if self.role == Role::Client => {
                self.on_reply(reply, offset);
                Ok(())
            }
            (_, Message::Notification(n)) if self.role == Role::Client => {
                self.events.push_back(Event::Notification(n));
                Ok(())
            }
            (_, Message::Rpc(request)) if self.role == Role::Server => {
                self.on_request(request);
                Ok(())
            }
            (_, other) => Err(self.fail(ProtocolError::UnexpectedMessage {
                offset,
                element: element_name(&other).into(),
                namespace: crate::xml::NS_BASE.into(),
            })),
        }
    }

    fn parse_failure(&mut self, e: ParseError, offset: u64) -> Result<(), ProtocolError> {
        let error = match e {
            ParseError::InvalidUtf8 { error_offset } => ProtocolError::InvalidUtf8 {
                offset,
                error_offset,
            },
            ParseError::Doctype => ProtocolError::DoctypeNotAllowed { offset },
            ParseError::Malformed(what) => ProtocolError::MalformedMessage { offset, what },
            ParseError::Unexpected { element, namespace } => ProtocolError::UnexpectedMessage {
                offset,
                element,
                namespace,
            },
            ParseError::BadSessionId(what) => ProtocolError::BadSessionId(what),
            ParseError::MissingRpcMessageId
                if self.role == Role::Server && self.is_established() =>
            {
                // RFC 6241 section 4.1: answer with missing-attribute (in its turn) and carry on.
                self.requests.push_back(PendingReply {
                    message_id: None,
                    reply_open: format!("<rpc-reply xmlns=\"{}\">", crate::xml::NS_BASE),
                    reply_close: "</rpc-reply>".into(),
                    reply: Some(missing_message_id_error()),
                    closes: false,
                });
                self.send_answered_replies();
                return Ok(());
            }
            ParseError::MissingRpcMessageId => ProtocolError::MalformedMessage {
                offset,
                what: "<rpc> without a message-id attribute".into(),
            },
        };
        if self.role == Role::Server && self.is_established() {
            // Tell the client why before closing (RFC 6241 appendix A, malformed-message).
            let reply = Reply::error(
                message::RpcError::new(
                    message::ErrorType::Rpc,
                    message::ErrorTag::MalformedMessage,
                )
                .with_message(error.to_string()),
            );
            self.write_reply(
                &format!("<rpc-reply xmlns=\"{}\">", crate::xml::NS_BASE),
                "</rpc-reply>",
                &reply,
            );
        }
        Err(self.fail(error))
    }

    fn on_hello(&mut self, hello: message::Hello, now: Instant) -> Result<(), ProtocolError> {
        let _ = now;
        match (self.role, hello.session_id) {
            (Role::Client, None) => {
                return Err(self.fail(ProtocolError::BadSessionId(
                    "the server's <hello> has no <session-id>".into(),
                )))
            }
            (Role::Client, Some(id)) => self.session_id = Some(id),
            (Role::Server, Some(id)) => {
                return Err(self.fail(ProtocolError::BadSessionId(format!(
                "the client's <hello> carries a <session-id> ({id}), which only a server may send"
            ))))
            }
            (Role::Server, None) => {}
        }
        let ours = &self.config.capabilities;
        let theirs = &hello.capabilities;
        let common = |v| ours.supports(v) && theirs.supports(v);
        let framing = if common(BaseVersion::V1_1) {
            Framing::Chunked
        } else if common(BaseVersion::V1_0) {
            Framing::EndOfMessage
        } else {
            let peer = theirs
                .base_versions()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(self.fail(ProtocolError::NoCommonBase { peer }));
        };
        self.out_framing = framing;
        self.decoder.set_framing(framing);
        self.peer_capabilities = hello.capabilities;
        self.state = State::Established;
        self.hello_deadline = None;
        self.events.push_back(Event::Established {
            session_id: self.session_id.unwrap_or_default(),
            peer_capabilities: self.peer_capabilities.clone(),
            framing,
        });
        Ok(())
    }

    fn on_reply(&mut self, reply: RpcReply, offset: u64) {
        let Some(raw_id) = reply.message_id.as_deref() else {
            self.events.push_back(Event::MessageRejected {
                error: ProtocolError::MissingMessageId { offset },
            });
            return;
        };
        let raw = raw_id.trim();
        let id = raw
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| raw.parse::<u64>().ok())
            .flatten();
        match id.map(|id| (id, self.pending.remove(&id))) {
            Some((id, Some(deadline))) => {
                if let Some(d) = deadline {
                    self.deadlines.remove(&(d, id));
                }
                self.events.push_back(Event::Reply {
                    id: MessageId(id),
                    reply,
                });
                if self.close_id == Some(id) {
                    self.finish(CloseReason::CloseSession);
                }
            }
            Some((id, None)) if id > 0 && id < self.next_id => {
                tracing::debug!(
                    message_id = id,
                    "discarding a late reply to a timed-out or cancelled RPC"
                );
            }
            _ => {
                let error = ProtocolError::UnknownMessageId {
                    offset,
                    message_id: raw_id.to_owned(),
                };
                self.events.push_back(Event::MessageRejected { error });
            }
        }
    }

    fn on_request(&mut self, request: Request) {
        if request.operation.is_base("close-session") {
            // Answered by the session itself, after every earlier request; nothing after it
            // is read.
            self.close_requested = true;
            self.requests.push_back(PendingReply {
                message_id: Some(request.message_id),
                reply_open: request.reply_open,
                reply_close: request.reply_close,
                reply: Some(Reply::Ok),
                closes: true,
            });
            self.send_answered_replies();
            return;
        }
        self.requests.push_back(PendingReply {
            message_id: Some(request.message_id.clone()),
            reply_open: request.reply_open.clone(),
            reply_close: request.reply_close.clone(),
            reply: None,
            closes: false,
        });
        self.events.push_back(Event::Rpc { request });
    }

    /// Sends the answered replies at the front of the queue, in request order.
    fn send_answered_replies(&mut self) {
        while self.requests.front().is_some_and(|p| p.reply.is_some()) {
            let Some(p) = self.requests.pop_front() else {
                break;
            };
            if let Some(reply) = &p.reply {
                self.write_reply(&p.reply_open, &p.reply_close, reply);
            }
            if p.closes {
                self.finish(CloseReason::CloseSession);
                return;
            }
        }
    }

    fn write_reply(&mut self, open: &str, close: &str, reply: &Reply) {
        let mut scratch = String::new();
        let parts = message::reply_parts(open, close, reply, &mut scratch);
        framing::encode_parts(self.out_framing, &parts, &mut self.out);
    }
}

fn element_name(m: &Message) -> &'static str {
    match m {
        Message::Hello(_) => "hello",
        Message::Rpc(_) => "rpc",
        Message::RpcReply(_) => "rpc-reply",
        Message::Notification(_) => "notification",
    }
}

fn missing_message_id_error() -> Reply {
    let error =
        message::RpcError::new(message::ErrorType::Rpc, message::ErrorTag::MissingAttribute)
            .with_info_xml(
                "<bad-attribute>message-id</bad-attribute><bad-element>rpc</bad-element>",
            );
    match error {
        Ok(e) => Reply::error(e),
        Err(_) => Reply::Ok,
    }
}
