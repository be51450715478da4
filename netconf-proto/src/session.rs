//! The session state machine: one type for both roles.
//!
//! Methods fall into four groups (the quinn-proto convention):
//! - getters: [`Session::state`], [`Session::session_id`], [`Session::peer_capabilities`], ...
//! - inputs: [`Session::handle_input`], [`Session::handle_eof`], [`Session::handle_timeout`];
//! - commands: [`Session::send_rpc`], [`Session::send_reply`], [`Session::send_notification`],
//!   [`Session::close`], [`Session::abort`], [`Session::cancel_rpc`];
//! - output: [`Session::poll_output`], drained after every input and command until it
//!   returns [`Output::Wait`].

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::capabilities::{BaseVersion, Capabilities};
use crate::config::Config;
use crate::error::{ProtocolError, UsageError};
use crate::framing::{self, FrameDecoder, Framing, Piece};
use crate::id_map::{IdMap, IdSet};
use crate::receive_buffer::ReceiveBuffer;

/// Message parts from this size on (a reply's payload, a request's `<config>`) are queued
/// as the shared `Bytes` they are instead of copied into the output buffer.
const SHARE_PAYLOAD_AT: usize = 64 * 1024;
use crate::message::{
    self, Message, Notification, ParseError, ParseLimits, ParseScratch, Reply, ReplyEnvelope,
    Request, RpcReply,
};
use crate::operations::{Operation, RpcBody};
use crate::quirks::{Quirk, QuirkCounts};
use crate::stream::{sniff, DataStream, Sniff, StreamError};

/// Text after the last message tolerated before the end of the stream (a "Connection
/// closed" line); more than this is a protocol error after all.
const MAX_TRAILING_GARBAGE: usize = 4096;

/// A request's text buffer up to this capacity is kept for the next request.
const RPC_TEXT_KEEP: usize = 16 * 1024;

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

/// A request received by a server session, as named in [`Event::Rpc`]: the handle
/// [`Session::send_reply`] takes. Opaque and never reused within a session, so a client that
/// reuses message-ids still gets each reply in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum CloseReason {
    /// `<close-session>` completed: our request was answered (client), or the peer asked (server).
    CloseSession,
    /// The peer closed the transport between messages.
    Eof,
    /// The local side ended the session without a close-session exchange.
    Local,
    /// We sent `<close-session>` and its reply did not come within the close timeout.
    CloseTimedOut,
    /// The peer broke the protocol.
    Protocol(ProtocolError),
}

/// Something the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The hello exchange finished.
    Established {
        session_id: u32,
        peer_capabilities: Capabilities,
        framing: Framing,
    },
    /// A reply to one of our RPCs (client role).
    Reply { id: MessageId, reply: RpcReply },
    /// The reply to a streamed RPC ([`Session::send_rpc_streamed`]) carries `<data>`: its
    /// content follows in [`Event::DataPiece`]s, then [`Event::DataEnd`].
    DataStart { id: MessageId },
    /// More content of a streamed `<data>` (valid UTF-8, the envelope stripped).
    DataPiece { id: MessageId, data: Bytes },
    /// The streamed reply is complete.
    DataEnd { id: MessageId },
    /// A request from the client (server role). Answer it with [`Session::send_reply`]
    /// and this `id`.
    Rpc { id: RequestId, request: Request },
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
#[non_exhaustive]
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
    id: RequestId,
    /// The envelope (RFC 6241 echoes the rpc's attributes).
    envelope: ReplyEnvelope,
    /// The answer, once given.
    reply: Option<Reply>,
    /// Answered with a `<data>` payload that follows piece by piece.
    stream: bool,
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
    message: ReceiveBuffer,
    /// The text of the last small request sent, its buffer reused for the next.
    rpc_text: String,
    /// Parsing's buffers, reused from message to message.
    parse_scratch: ParseScratch,
    /// When the last byte arrived (for the stall deadline while mid-message).
    last_input: Option<Instant>,
    out_framing: Framing,
    out: BytesMut,
    events: VecDeque<Event>,
    session_id: Option<u32>,
    peer_capabilities: Capabilities,
    hello_deadline: Option<Instant>,
    next_id: u64,
    /// In-flight RPCs (client): id -> deadline, plus the deadlines ordered for the next wake-up.
    pending: IdMap<u64, Option<Instant>>,
    deadlines: BTreeSet<(Instant, u64)>,
    close_id: Option<u64>,
    /// Requests (server) in arrival order, each waiting for its reply to go out.
    requests: VecDeque<PendingReply>,
    next_request: u64,
    /// Requests handed to the application and not answered yet (server).
    unanswered: usize,
    /// The client sent close-session (server): nothing after it is read.
    close_requested: bool,
    /// The client's input ended with requests still to answer (server): they are answered
    /// (a client may send its requests and half-close, as `ssh -s` with piped input does),
    /// then the session closes, at the latest by this deadline (the close timeout).
    draining: Option<Instant>,
    /// The fatal error, kept so later input reports it again.
    error: Option<ProtocolError>,
    /// Quirks tolerated so far.
    quirks: QuirkCounts,
    /// Output in order: shared payload pieces queued as they are (never copied), with the
    /// small writes between them gathered in `out`.
    queue: VecDeque<Bytes>,
    /// Bytes of output handed out so far (see [`Session::output_handed_out`]).
    handed_out: u64,
    /// RPCs whose `<data>` replies are handed out as they arrive (client).
    streamed: IdSet<u64>,
    /// The message now arriving, when it is a streamed `<data>` reply (client): its id and
    /// the content not handed out yet. `None` inside while discarding a cancelled one.
    incoming: Option<(u64, Option<DataStream>)>,
    /// The current message was looked at and is not one to stream.
    received_whole: bool,
    /// How much of the current message there was when it was last looked at: it is looked
    /// at again only when it has doubled, so looking costs linear time whatever the splits.
    sniffed_at: usize,
    /// The streamed reply being sent (server), and the last bytes sent of it (for the
    /// end-of-message delimiter check across pieces).
    outgoing: Option<(RequestId, Vec<u8>)>,
    /// Text that is not a chunk header where a message should start: held (as the error it
    /// would be, and how many bytes of it came) until the end of the stream shows it was
    /// trailing garbage.
    garbage: Option<(ProtocolError, usize)>,
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
        let hello_limit = config.max_hello_size.min(config.max_message_size);
        let mut s = Session {
            role,
            decoder: FrameDecoder::new(hello_limit),
            hello_deadline: now.checked_add(config.hello_timeout),
            config,
            state: State::Hello,
            message: ReceiveBuffer::default(),
            rpc_text: String::new(),
            parse_scratch: ParseScratch::default(),
            last_input: None,
            out_framing: Framing::EndOfMessage,
            out: BytesMut::new(),
            events: VecDeque::new(),
            session_id,
            peer_capabilities: Capabilities::default(),
            next_id: 1,
            pending: IdMap::default(),
            deadlines: BTreeSet::new(),
            close_id: None,
            requests: VecDeque::new(),
            next_request: 1,
            unanswered: 0,
            close_requested: false,
            draining: None,
            error: None,
            quirks: QuirkCounts::default(),
            garbage: None,
            queue: VecDeque::new(),
            handed_out: 0,
            streamed: IdSet::default(),
            incoming: None,
            received_whole: false,
            sniffed_at: 0,
            outgoing: None,
        };
        let hello = message::write_hello(&s.config.capabilities, session_id);
        // Capability text is escaped, so the hello cannot hold the delimiter.
        let _ = framing::encode(Framing::EndOfMessage, hello.as_bytes(), &mut s.out);
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

    /// Requests received whose replies have not gone out yet (server), including those the
    /// session answered itself and that wait for their turn.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// False while a server holds so many requests whose replies have not gone out that it
    /// wants no more input: the adapter stops reading the transport until this is true again
    /// (after replies were sent), so a client that pipelines without bound is held back by
    /// TCP instead of growing our memory.
    pub fn wants_input(&self) -> bool {
        self.draining.is_none() && self.requests.len() < 2 * self.config.max_pending_requests
    }

    /// The quirks of the peer this session tolerated, with how often (see [`Quirk`]).
    pub fn quirks(&self) -> &QuirkCounts {
        &self.quirks
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
        if !data.is_empty() {
            self.last_input = Some(now);
        }
        if let Some((error, seen)) = &mut self.garbage {
            *seen += data.len();
            if *seen > MAX_TRAILING_GARBAGE {
                let e = error.clone();
                return Err(self.fail(e));
            }
            return Ok(());
        }
        while !data.is_empty() && self.state != State::Closed && !self.close_requested {
            let at_start = !self.decoder.is_mid_message();
            let (n, piece) = match self.decoder.decode(data) {
                Ok(step) => step,
                Err(ProtocolError::MessageTooLarge { .. }) if self.state == State::Hello => {
                    let limit = self.config.max_hello_size;
                    return Err(self.fail(ProtocolError::HelloTooLarge { limit }));
                }
                // Text where a chunk should start, after a complete message: perhaps what a
                // device prints as it closes. Held until the end of the stream says so.
                Err(e @ ProtocolError::BadChunkHeader { .. })
                    if at_start
                        && !self.config.strict
                        && data.len() <= MAX_TRAILING_GARBAGE
                        && looks_like_text(data) =>
                {
                    self.garbage = Some((e, data.len()));
                    return Ok(());
                }
                Err(e) => return Err(self.fail(e)),
            };
            data = &data[n..];
            match piece {
                Piece::Data(bytes) => self.receive(bytes)?,
                Piece::End => {
                    // Looked at again whole if undecided, so the decision never depends on
                    // how the message was split.
                    if self.incoming.is_none()
                        && !self.received_whole
                        && !self.streamed.is_empty()
                        && self.state != State::Hello
                    {
                        self.decide_streaming()?;
                    }
                    self.received_whole = false;
                    self.sniffed_at = 0;
                    if let Some((id, stream)) = self.incoming.take() {
                        self.end_stream(id, stream)?;
                        continue;
                    }
                    let message = self.message.take();
                    self.process_message(message, now)?;
                }
            }
        }
        if self.decoder.fell_back_to_end_of_message() {
            self.quirk(Quirk::EndOfMessageAfterBase11, 0)?;
        }
        Ok(())
    }

    /// The transport was closed by the peer (or its stream ended).
    pub fn handle_eof(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.garbage.take().is_some() {
            if self.quirk(Quirk::TrailingGarbage, 0).is_ok() {
                self.finish(CloseReason::Eof);
            }
            return;
        }
        if self.decoder.is_mid_message() {
            // Text that cannot be the start of a message (no markup at all) after the last
            // message: what some devices print as they close.
            let trailing_text = self.state != State::Hello
                && self.decoder.framing() == Framing::EndOfMessage
                && !self.message.as_slice().contains(&b'<');
            if trailing_text && self.quirk(Quirk::TrailingGarbage, 0).is_ok() {
                self.finish(CloseReason::Eof);
                return;
            }
            if self.state == State::Closed {
                return;
            }
            let e = ProtocolError::TruncatedMessage {
                offset: self.decoder.message_start(),
                received: self.decoder.message_len(),
            };
            self.fail(e);
        } else if self.role == Role::Server
            && self.state == State::Established
            && !self.requests.is_empty()
        {
            // Answer what was asked before the input ended; then close.
            if self.draining.is_none() {
                self.draining = Some(now.checked_add(self.config.close_timeout).unwrap_or(now));
            }
        } else {
            self.finish(CloseReason::Eof);
        }
    }

    /// The adapter has not been reading until `now` on purpose (a streamed reply's consumer
    /// is behind: see `ClientCore::wants_read`): the peer's silence so far does not count
    /// towards the stall timeout.
    pub fn input_held_back(&mut self, now: Instant) {
        if self.last_input.is_some() {
            self.last_input = Some(now);
        }
    }

    /// Time has reached a deadline returned by [`Output::Wait`] (calling it early is harmless).
    ///
    /// Each deadline fails only what it belongs to: an RPC's timeout fails that RPC (the
    /// session and every other RPC go on, even while a large reply is arriving); the session
    /// itself ends only on the hello timeout, the close timeout, or a stall (no byte for the
    /// stall timeout in the middle of a message).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.state == State::Hello && self.hello_deadline.is_some_and(|d| now >= d) {
            self.fail(ProtocolError::HelloTimeout);
            return;
        }
        if self.draining.is_some_and(|d| now >= d) {
            tracing::debug!(
                unanswered = self.requests.len(),
                "the client's input ended and its last requests were not answered in time"
            );
            self.finish(CloseReason::Eof);
            return;
        }
        if let Some(stall) = self.stall_deadline() {
            if now >= stall {
                let e = ProtocolError::StalledMidMessage {
                    offset: self.decoder.message_start(),
                    received: self.decoder.message_len(),
                    idle: self.config.stall_timeout.unwrap_or_default(),
                };
                self.fail(e);
                return;
            }
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            self.pending.remove(&id);
            if self.close_id == Some(id) {
                tracing::debug!("close-session reply did not arrive in time");
                self.finish(CloseReason::CloseTimedOut);
                return;
            }
            self.events
                .push_back(Event::RpcTimedOut { id: MessageId(id) });
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
    ///
    /// The operation is framed straight from its parts, and a large `<config>` given as
    /// shared bytes is queued as it is, not copied: a client sending a huge configuration
    /// holds it once. Under base:1.0 framing a message holding `]]>]]>` is refused
    /// ([`UsageError::DelimiterInMessage`]) and nothing is sent.
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
        let text = std::mem::take(&mut self.rpc_text);
        let mut writer = crate::operations::XmlWriter::reusing(text);
        message::write_rpc(id, op, &mut writer);
        match writer.into_text() {
            // A large one is queued as the shared buffer it is (see `write_parts`).
            Ok(text) if text.len() >= SHARE_PAYLOAD_AT => {
                self.write_parts(&[Bytes::from(text)])?;
            }
            Ok(text) => {
                let framed =
                    framing::encode_parts(self.out_framing, &[text.as_bytes()], &mut self.out);
                // A small request's text buffer serves the next one.
                if text.capacity() <= RPC_TEXT_KEEP {
                    self.rpc_text = text;
                }
                framed?;
            }
            Err(writer) => self.write_parts(&writer.into_parts())?,
        }
        self.next_id += 1;
        let deadline = timeout.and_then(|t| now.checked_add(t));
        self.pending.insert(id, deadline);
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        Ok(MessageId(id))
    }

    /// Sends an RPC whose reply, when it carries `<data>`, is handed out as it arrives
    /// ([`Event::DataStart`], [`Event::DataPiece`]s, [`Event::DataEnd`]) instead of whole:
    /// the session never holds the message, whatever its size. Any other reply (`<ok/>`,
    /// `<rpc-error>`) comes as [`Event::Reply`]. The timeout runs until the data starts;
    /// after that only the stall timeout applies.
    pub fn send_rpc_streamed(
        &mut self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<MessageId, UsageError> {
        let id = self.send_rpc_with_timeout(op, timeout, now)?;
        self.streamed.insert(id.0);
        Ok(id)
    }

    /// Forgets an in-flight RPC (its caller went away); its reply will be discarded (the
    /// rest of a streamed reply already arriving too). Returns whether it was in flight.
    pub fn cancel_rpc(&mut self, id: MessageId) -> bool {
        self.streamed.remove(&id.0);
        if let Some((streaming, stream)) = &mut self.incoming {
            if *streaming == id.0 && stream.is_some() {
                *stream = None;
                return true;
            }
        }
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

    /// Answers the request `id` from [`Event::Rpc`] (server). Replies leave in request order
    /// (RFC 6241 section 4.5): an answer given early waits for those before it.
    ///
    /// Under base:1.0 framing a reply holding `]]>]]>` is refused
    /// ([`UsageError::DelimiterInMessage`]); the request stays unanswered.
    pub fn send_reply(&mut self, id: RequestId, reply: Reply) -> Result<(), UsageError> {
        if self.role != Role::Server {
            return Err(UsageError::WrongRole("send_reply", "server"));
        }
        if self.state == State::Closed {
            return Err(UsageError::Closed);
        }
        // Ids increase along the queue.
        let Ok(at) = self.requests.binary_search_by_key(&id, |p| p.id) else {
            return Err(UsageError::UnknownRequest(id));
        };
        let pending = &self.requests[at];
        if pending.reply.is_some() || pending.stream {
            return Err(UsageError::UnknownRequest(id));
        }
        if self.out_framing == Framing::EndOfMessage {
            let mut scratch = String::new();
            let parts = message::reply_parts(&pending.envelope, &reply, &mut scratch);
            framing::check_end_of_message(&parts)?;
        }
        self.requests[at].reply = Some(reply);
        self.unanswered = self.unanswered.saturating_sub(1);
        self.send_answered_replies();
        Ok(())
    }

    /// Answers the request `id` with a `<data>` payload that follows piece by piece, for
    /// replies too large to hold: once [`Session::stream_ready`] names `id` (the replies
    /// before it have gone out), give the pieces to [`Session::send_reply_piece`] and end
    /// with [`Session::end_reply_stream`]. Later replies (and notifications) wait until then.
    pub fn send_reply_streamed(&mut self, id: RequestId) -> Result<(), UsageError> {
        if self.role != Role::Server {
            return Err(UsageError::WrongRole("send_reply_streamed", "server"));
        }
        if self.state == State::Closed {
            return Err(UsageError::Closed);
        }
        let Ok(at) = self.requests.binary_search_by_key(&id, |p| p.id) else {
            return Err(UsageError::UnknownRequest(id));
        };
        let pending = &mut self.requests[at];
        if pending.reply.is_some() || pending.stream {
            return Err(UsageError::UnknownRequest(id));
        }
        pending.stream = true;
        self.unanswered = self.unanswered.saturating_sub(1);
        self.send_answered_replies();
        Ok(())
    }

    /// The streamed reply whose pieces may be sent now (server).
    pub fn stream_ready(&self) -> Option<RequestId> {
        self.outgoing.as_ref().map(|(id, _)| *id)
    }

    /// Sends the next piece of the streamed reply `id`: the bytes themselves are queued for
    /// the transport (never copied here). Under base:1.0 framing a piece that would complete
    /// `]]>]]>` is refused: the reply cannot be finished, so end the session.
    pub fn send_reply_piece(&mut self, id: RequestId, piece: Bytes) -> Result<(), UsageError> {
        let Some((streaming, tail)) = &mut self.outgoing else {
            return Err(UsageError::UnknownRequest(id));
        };
        if *streaming != id {
            return Err(UsageError::UnknownRequest(id));
        }
        if piece.is_empty() {
            return Ok(());
        }
        if piece.len() as u64 > framing::MAX_CHUNK_SIZE {
            let mut piece = piece;
            while !piece.is_empty() {
                let n = piece.len().min(framing::MAX_CHUNK_SIZE as usize);
                self.send_reply_piece(id, piece.split_to(n))?;
            }
            return Ok(());
        }
        if self.out_framing == Framing::EndOfMessage {
            framing::check_end_of_message(&[tail, &piece])?;
            let keep = piece.len().min(5);
            tail.extend_from_slice(&piece[piece.len() - keep..]);
            let excess = tail.len().saturating_sub(5);
            tail.drain(..excess);
        } else {
            framing::write_chunk_header(piece.len(), &mut self.out);
        }
        self.push_shared(piece);
        Ok(())
    }

    /// Ends the streamed reply `id`; the replies after it go out.
    pub fn end_reply_stream(&mut self, id: RequestId) -> Result<(), UsageError> {
        if self.stream_ready() != Some(id) {
            return Err(UsageError::UnknownRequest(id));
        }
        self.outgoing = None;
        let Some(p) = self.requests.pop_front() else {
            return Err(UsageError::UnknownRequest(id));
        };
        let end = format!("</data>{}", p.envelope.close());
        match self.out_framing {
            Framing::EndOfMessage => {
                self.out.extend_from_slice(end.as_bytes());
                self.out.extend_from_slice(framing::EOM_DELIMITER);
            }
            _ => {
                framing::write_chunk_header(end.len(), &mut self.out);
                self.out.extend_from_slice(end.as_bytes());
                self.out.extend_from_slice(b"\n##\n");
            }
        }
        self.send_answered_replies();
        Ok(())
    }

    /// True while a streamed reply is being sent (server): nothing else can go out.
    pub fn is_streaming_reply(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Sends an RFC 5277 notification (server). `content` must be a well-formed fragment.
    /// While a streamed reply is being sent it cannot go out: wait for the stream's end.
    pub fn send_notification(&mut self, event_time: &str, content: &str) -> Result<(), UsageError> {
        if self.role != Role::Server {
            return Err(UsageError::WrongRole("send_notification", "server"));
        }
        self.check_established()?;
        if self.outgoing.is_some() {
            return Err(UsageError::StreamInProgress);
        }
        crate::xml::check_fragment(content)?;
        let xml = message::write_notification(event_time, content);
        framing::encode(self.out_framing, xml.as_bytes(), &mut self.out)?;
        Ok(())
    }

    /// Ends the session politely. A client sends `<close-session>` and closes when it is
    /// answered or the close timeout passes ([`Config::with_close_timeout`], whatever the
    /// RPC timeout); before the hello exchange, and in the server role, the session closes
    /// at once. Returns the close-session's message-id when one was sent.
    pub fn close(&mut self, now: Instant) -> Option<MessageId> {
        match (self.role, self.state) {
            (_, State::Closed | State::Closing) => None,
            (Role::Client, State::Established) => {
                let op = RpcBody::raw("<close-session/>").ok()?;
                let timeout = Some(self.config.close_timeout);
                let id = self.send_rpc_with_timeout(&op, timeout, now).ok()?;
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
        if let Some(bytes) = self.poll_transmit() {
            return Output::Transmit(bytes);
        }
        if let Some(ev) = self.events.pop_front() {
            return Output::Event(ev);
        }
        Output::Wait(self.next_deadline())
    }

    /// Only the next event (`None`: none now), leaving the bytes to write where they are:
    /// for a client whose writer already has enough to write (a large request encrypted
    /// as the transport takes it), so that the replies arriving meanwhile are not held
    /// behind the rest of that request.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Only the next bytes to write (`None`: nothing to write now), leaving the events for
    /// [`Session::poll_output`]: for a thread that writes and must not take them.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let bytes = match self.queue.pop_front() {
            Some(bytes) => bytes,
            None if !self.out.is_empty() => self.out.split().freeze(),
            None => return None,
        };
        self.handed_out += bytes.len() as u64;
        Some(bytes)
    }

    /// Where the output queued so far ends, counted in bytes from the session's first:
    /// taken right after queuing a message, the position its last byte must reach in
    /// [`Session::output_handed_out`] before all of it has been handed out.
    pub fn output_position(&self) -> u64 {
        let queued: usize = self.queue.iter().map(Bytes::len).sum();
        self.handed_out + (queued + self.out.len()) as u64
    }

    /// How many bytes of output have been handed out as transmits so far.
    pub fn output_handed_out(&self) -> u64 {
        self.handed_out
    }

    /// The earliest deadline the session needs [`Session::handle_timeout`] for.
    pub fn next_deadline(&self) -> Option<Instant> {
        let rpc = || self.deadlines.first().map(|(d, _)| *d);
        match self.state {
            State::Closed => None,
            State::Hello => earliest(self.hello_deadline, self.stall_deadline()),
            State::Established | State::Closing => {
                earliest(earliest(rpc(), self.stall_deadline()), self.draining)
            }
        }
    }

    // ----- internals -----

    /// When the peer, silent in the middle of a message, counts as stalled. Not while we
    /// refuse input ourselves ([`Session::wants_input`]): then the silence is ours.
    fn stall_deadline(&self) -> Option<Instant> {
        if !self.decoder.is_mid_message() || !self.wants_input() {
            return None;
        }
        self.last_input?.checked_add(self.config.stall_timeout?)
    }

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
        self.unanswered = 0;
        self.streamed.clear();
        self.incoming = None;
        self.outgoing = None;
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
        let limits = ParseLimits {
            max_capabilities: self.config.max_capabilities,
            strict: self.config.strict,
        };
        let parsed =
            match message::parse_message_with(message.clone(), &limits, &mut self.parse_scratch) {
                Ok(m) => m,
                Err(ParseError::Malformed(what))
                    if self.state == State::Hello
                        && self.role == Role::Client
                        && what.starts_with("content before the root element") =>
                {
                    // A login banner before the server's hello (some SSH servers print one).
                    let Some(at) = hello_start(&message) else {
                        return self.parse_failure(ParseError::Malformed(what), offset);
                    };
                    match message::parse_message_with(
                        message.slice(at..),
                        &limits,
                        &mut self.parse_scratch,
                    ) {
                        Ok(m) => {
                            self.quirk(Quirk::BannerBeforeHello, offset)?;
                            m
                        }
                        Err(e) => return self.parse_failure(e, offset),
                    }
                }
                Err(e) => return self.parse_failure(e, offset),
            };
        for q in parsed.quirks {
            self.quirk(q, offset)?;
        }
        match (self.state, parsed.message) {
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
            ParseError::TooManyCapabilities { limit } => {
                ProtocolError::TooManyCapabilities { limit }
            }
            ParseError::Strict(quirk) => ProtocolError::Quirk { offset, quirk },
            ParseError::MissingRpcMessageId
                if self.role == Role::Server && self.is_established() =>
            {
                // RFC 6241 section 4.1: answer with missing-attribute (in its turn) and carry on.
                self.answer_now(ReplyEnvelope::unechoed(), missing_message_id_error(), false);
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
            self.write_reply(&ReplyEnvelope::unechoed(), &reply);
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
        let (pre_rfc_base, pre_rfc_caps) = hello.capabilities.pre_rfc_spellings();
        if pre_rfc_base {
            self.quirk(Quirk::PreRfcBaseUrn, 0)?;
        }
        if pre_rfc_caps {
            self.quirk(Quirk::PreRfcCapabilityUrn, 0)?;
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
        self.decoder
            .set_max_message_size(self.config.max_message_size);
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

    fn on_reply(&mut self, mut reply: RpcReply, offset: u64) {
        if reply.message_id.is_none() && self.pending.len() == 1 && !self.config.strict {
            // Unambiguous: only one RPC can be answered.
            if self.quirk(Quirk::MissingMessageId, offset).is_ok() {
                reply.message_id = self.pending.keys().next().map(u64::to_string);
            }
        }
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

    fn on_request(&mut self, mut request: Request) {
        if request.operation.is_base("close-session") {
            // Answered by the session itself, after every earlier request; nothing after it
            // is read.
            self.close_requested = true;
            self.answer_now(request.reply_envelope, Reply::Ok, true);
            return;
        }
        if self.unanswered >= self.config.max_pending_requests {
            // The application holds as many requests as it may: answer this one here, in
            // its turn, rather than queue it without bound.
            let reply = Reply::error(
                message::RpcError::new(
                    message::ErrorType::Protocol,
                    message::ErrorTag::ResourceDenied,
                )
                .with_message(format!(
                    "too many requests in progress on this session (at most {})",
                    self.config.max_pending_requests
                )),
            );
            self.answer_now(request.reply_envelope, reply, false);
            return;
        }
        let id = self.new_request_id();
        self.requests.push_back(PendingReply {
            id,
            // The reply's envelope is the session's business, not the application's.
            envelope: std::mem::take(&mut request.reply_envelope),
            reply: None,
            stream: false,
            closes: false,
        });
        self.unanswered += 1;
        self.events.push_back(Event::Rpc { id, request });
    }

    /// Queues a shared piece after everything written so far, without copying it.
    fn push_shared(&mut self, piece: Bytes) {
        if !self.out.is_empty() {
            let before = self.out.split().freeze();
            self.queue.push_back(before);
        }
        self.queue.push_back(piece);
    }

    /// Starts the streamed reply at the front of the queue: its envelope and `<data>`.
    fn begin_stream(&mut self, id: RequestId, open: &str) {
        let start = format!("{open}<data>");
        if self.out_framing == Framing::EndOfMessage {
            self.out.extend_from_slice(start.as_bytes());
        } else {
            framing::write_chunk_header(start.len(), &mut self.out);
            self.out.extend_from_slice(start.as_bytes());
        }
        let tail = start.as_bytes()[start.len().saturating_sub(5)..].to_vec();
        self.outgoing = Some((id, tail));
    }

    /// Body bytes of the message now arriving: handed out at once when it is a streamed
    /// `<data>` reply, gathered otherwise.
    fn receive(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        if let Some((id, stream)) = &mut self.incoming {
            let id = *id;
            let Some(stream) = stream else {
                return Ok(()); // cancelled: discarded as it comes
            };
            let pushed = stream.push(bytes);
            let failed = stream.take_error();
            match pushed {
                Ok(Some(data)) => self.events.push_back(Event::DataPiece {
                    id: MessageId(id),
                    data,
                }),
                Ok(None) => {}
                Err(e) => return Err(self.stream_failed(e)),
            }
            return match failed {
                Some(e) => Err(self.stream_failed(e)),
                None => Ok(()),
            };
        }
        self.message.extend(bytes);
        let may_decide = !self.streamed.is_empty()
            && !self.received_whole
            && self.state != State::Hello
            && self.message.len() >= 2 * self.sniffed_at
            && memchr::memchr(b'>', &self.message.as_slice()[self.sniffed_at..]).is_some();
        if may_decide {
            self.sniffed_at = self.message.len();
            self.decide_streaming()?;
        }
        Ok(())
    }

    /// Looks at the start of the message now arriving: the `<data>` reply to a streamed
    /// RPC switches to streaming.
    fn decide_streaming(&mut self) -> Result<(), ProtocolError> {
        match sniff(self.message.as_slice()) {
            Sniff::NeedMore => Ok(()),
            Sniff::Whole => {
                self.received_whole = true;
                Ok(())
            }
            Sniff::Data {
                message_id,
                content_start,
                close_data,
                close_root,
            } => {
                let id = message_id
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|id| self.streamed.contains(id) && self.pending.contains_key(id));
                let Some(id) = id else {
                    self.received_whole = true;
                    return Ok(());
                };
                self.streamed.remove(&id);
                if let Some(Some(d)) = self.pending.remove(&id) {
                    self.deadlines.remove(&(d, id));
                }
                // No limit on what is never held.
                self.decoder.set_max_message_size(usize::MAX);
                let stream = DataStream::new(close_data, close_root);
                let first = self.message.take_all();
                self.events
                    .push_back(Event::DataStart { id: MessageId(id) });
                self.incoming = Some((id, Some(stream)));
                self.receive(&first[content_start..])
            }
        }
    }

    /// The streamed message is complete.
    fn end_stream(&mut self, id: u64, stream: Option<DataStream>) -> Result<(), ProtocolError> {
        self.decoder
            .set_max_message_size(self.config.max_message_size);
        let Some(stream) = stream else {
            return Ok(()); // cancelled
        };
        match stream.finish() {
            Ok(last) => {
                if let Some(data) = last {
                    self.events.push_back(Event::DataPiece {
                        id: MessageId(id),
                        data,
                    });
                }
                self.events.push_back(Event::DataEnd { id: MessageId(id) });
                Ok(())
            }
            Err(e) => Err(self.stream_failed(e)),
        }
    }

    fn stream_failed(&mut self, e: StreamError) -> ProtocolError {
        let offset = self.decoder.message_start();
        let error = match e {
            StreamError::Utf8 { at } => ProtocolError::InvalidUtf8 {
                offset,
                error_offset: at,
            },
            StreamError::Malformed(what) => ProtocolError::MalformedMessage { offset, what },
        };
        self.fail(error)
    }

    fn new_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    /// Queues a reply the session gives itself, in request order.
    fn answer_now(&mut self, envelope: ReplyEnvelope, reply: Reply, closes: bool) {
        let id = self.new_request_id();
        self.requests.push_back(PendingReply {
            id,
            envelope,
            reply: Some(reply),
            stream: false,
            closes,
        });
        self.send_answered_replies();
    }

    /// Sends the answered replies at the front of the queue, in request order. A streamed
    /// reply at the front starts, and the rest wait until it ends.
    fn send_answered_replies(&mut self) {
        if self.outgoing.is_some() {
            return;
        }
        while let Some(front) = self.requests.front() {
            if front.stream {
                let (id, open) = (front.id, front.envelope.open().to_owned());
                self.begin_stream(id, &open);
                return;
            }
            if front.reply.is_none() {
                return;
            }
            let Some(p) = self.requests.pop_front() else {
                break;
            };
            if let Some(reply) = &p.reply {
                self.write_reply(&p.envelope, reply);
            }
            if p.closes {
                self.finish(CloseReason::CloseSession);
                return;
            }
        }
        if self.draining.is_some() && self.requests.is_empty() {
            self.finish(CloseReason::Eof);
        }
    }

    fn write_reply(&mut self, envelope: &ReplyEnvelope, reply: &Reply) {
        let mut scratch = String::new();
        let parts = message::reply_parts(envelope, reply, &mut scratch);
        let result = match reply {
            Reply::Data(payload) | Reply::Raw(payload) if payload.len() >= SHARE_PAYLOAD_AT => {
                self.write_shared(&parts, payload)
            }
            _ => framing::encode_parts(self.out_framing, &parts, &mut self.out),
        };
        if let Err(e) = result {
            // Only replies the session makes itself get here unchecked; they never hold the
            // delimiter (their text is escaped).
            tracing::error!(error = %e, "a reply could not be framed; it was not sent");
        }
    }

    /// Frames a reply whose large payload (`parts[2]`, the very bytes of `payload`) is
    /// queued as the shared `Bytes` it is, not copied: the first bytes of the reply leave
    /// (and are encrypted) while the rest waits, and the server holds the payload once.
    fn write_shared(&mut self, parts: &[&[u8]; 5], payload: &Bytes) -> Result<(), UsageError> {
        let small = |part: &[u8]| Bytes::copy_from_slice(part);
        self.write_parts(&[
            small(parts[0]),
            small(parts[1]),
            payload.clone(),
            small(parts[3]),
            small(parts[4]),
        ])
    }

    /// Frames one message from its parts, queuing each part of [`SHARE_PAYLOAD_AT`] or more
    /// as the shared `Bytes` it is (see [`Session::push_shared`]) and copying the rest.
    fn write_parts(&mut self, parts: &[Bytes]) -> Result<(), UsageError> {
        let slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        let total: usize = parts.iter().map(Bytes::len).sum();
        let shares = parts.iter().any(|p| p.len() >= SHARE_PAYLOAD_AT);
        match self.out_framing {
            _ if !shares => return framing::encode_parts(self.out_framing, &slices, &mut self.out),
            Framing::EndOfMessage => framing::check_end_of_message(&slices)?,
            Framing::Chunked if total as u64 <= framing::MAX_CHUNK_SIZE => {
                framing::write_chunk_header(total, &mut self.out);
            }
            // Over 4 GiB: several chunks, copied (rare enough not to matter).
            Framing::Chunked => {
                return framing::encode_parts(self.out_framing, &slices, &mut self.out)
            }
        }
        for part in parts {
            if part.len() >= SHARE_PAYLOAD_AT {
                self.push_shared(part.clone());
            } else {
                self.out.extend_from_slice(part);
            }
        }
        self.out.extend_from_slice(match self.out_framing {
            Framing::EndOfMessage => framing::EOM_DELIMITER,
            _ => b"\n##\n",
        });
        Ok(())
    }
}

impl Session {
    /// Counts a tolerated quirk, logging its first occurrence; in strict mode it is a
    /// protocol error instead.
    fn quirk(&mut self, quirk: Quirk, offset: u64) -> Result<(), ProtocolError> {
        if self.config.strict {
            return Err(self.fail(ProtocolError::Quirk { offset, quirk }));
        }
        if self.quirks.record(quirk) {
            tracing::warn!(
                quirk = quirk.as_str(),
                "tolerating a NETCONF peer quirk: {}",
                quirk.describe()
            );
        }
        Ok(())
    }
}

/// Whether bytes where a chunk should start are text (a closing remark), not a broken chunk
/// header or markup: the first byte after whitespace is neither `#` nor `<`.
fn looks_like_text(data: &[u8]) -> bool {
    data.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))
        .is_some_and(|b| *b != b'#' && *b != b'<')
}

/// Where the XML of a hello starts after a banner: its declaration, or its root element
/// (any prefix).
fn hello_start(message: &[u8]) -> Option<usize> {
    use memchr::memmem::find;
    let decl = find(message, b"<?xml");
    let root = (0..message.len())
        .filter(|&i| message[i] == b'<')
        .find(|&i| {
            let name = &message[i + 1..];
            let local = name
                .iter()
                .position(|b| *b == b':' || b.is_ascii_whitespace() || *b == b'>')
                .and_then(|end| (name.get(end) == Some(&b':')).then_some(end + 1))
                .unwrap_or(0);
            name[local..].starts_with(b"hello")
        });
    match (decl, root) {
        (Some(d), Some(r)) => Some(d.min(r)),
        (d, r) => d.or(r),
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
