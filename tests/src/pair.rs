//! A client and a server [`Session`] driven in memory, with a virtual clock.
//!
//! Modelled on quinn-proto's test `Pair`: both ends of a session live in one struct, bytes
//! move between them without sockets, and time only moves when a test calls
//! [`Pair::advance`]. That makes every exchange deterministic and lets timeout tests run in
//! microseconds instead of waiting for real deadlines.
//!
//! Every helper drains [`Session::poll_output`] through [`drain`], which also checks the
//! drainage guarantee (after `Wait`, polling again yields the same `Wait`), so every test
//! built on this module checks it for free.

use std::time::{Duration, Instant};

use netconf_proto::operations::Operation;
use netconf_proto::{Config, Event, MessageId, Output, ProtocolError, Reply, Request, Session};

/// The session-id the server of a [`Pair`] assigns.
pub const SERVER_SESSION_ID: u32 = 4711;

/// Everything one full drain of a session produced.
#[derive(Debug, Default)]
pub struct Drained {
    /// The events, in order.
    pub events: Vec<Event>,
    /// Every transmitted byte, concatenated.
    pub transmitted: Vec<u8>,
    /// The deadline `Wait` carried.
    pub deadline: Option<Instant>,
}

/// Polls `session` until [`Output::Wait`] and returns what came out.
///
/// Panics if a second poll after `Wait` yields anything but the same `Wait`: the crate
/// promises that `Wait` means "nothing left", so a loop that blocks after it never strands
/// a message.
pub fn drain(session: &mut Session) -> Drained {
    let mut out = Drained::default();
    loop {
        match session.poll_output() {
            Output::Transmit(bytes) => out.transmitted.extend_from_slice(&bytes),
            Output::Event(ev) => out.events.push(ev),
            Output::Wait(deadline) => {
                let again = session.poll_output();
                assert_eq!(
                    again,
                    Output::Wait(deadline),
                    "drainage guarantee broken: poll_output after Wait returned more"
                );
                out.deadline = deadline;
                return out;
            }
            other => panic!("an output this testkit does not know: {other:?}"),
        }
    }
}

/// What [`feed_split`] observed.
#[derive(Debug, Default)]
pub struct Fed {
    /// All events, in order, across all pieces.
    pub events: Vec<Event>,
    /// All transmitted bytes, concatenated.
    pub transmitted: Vec<u8>,
    /// `events.len()` after each piece was fed and drained: tells *when* events came out,
    /// so a test can check a message is delivered by the `handle_input` that completes it.
    pub events_after_piece: Vec<usize>,
    /// The first error `handle_input` returned.
    pub error: Option<ProtocolError>,
}

/// Feeds `bytes` to `session` cut at the offsets in `splits` (ascending, each at most
/// `bytes.len()`; repeated offsets give empty pieces), draining after every piece.
///
/// Once `handle_input` has failed, the remaining pieces are still fed: the error is sticky,
/// and this checks every later call returns the same error.
pub fn feed_split(session: &mut Session, bytes: &[u8], splits: &[usize], now: Instant) -> Fed {
    assert!(
        splits.windows(2).all(|w| w[0] <= w[1]) && splits.iter().all(|&s| s <= bytes.len()),
        "bad splits {splits:?} for {} bytes",
        bytes.len()
    );
    let mut fed = Fed::default();
    let mut start = 0;
    for end in splits.iter().copied().chain([bytes.len()]) {
        match (session.handle_input(&bytes[start..end], now), &fed.error) {
            (Ok(()), None) => {}
            (Ok(()), Some(e)) => panic!("handle_input succeeded after failing with {e:?}"),
            (Err(e), None) => fed.error = Some(e),
            (Err(e), Some(first)) => assert_eq!(&e, first, "protocol errors must be sticky"),
        }
        let drained = drain(session);
        fed.events.extend(drained.events);
        fed.transmitted.extend(drained.transmitted);
        fed.events_after_piece.push(fed.events.len());
        start = end;
    }
    fed
}

/// The ways to cut a `len`-byte stream that split-invariance tests try: whole, byte by
/// byte, every two-piece split, a few empty pieces, and a grid of three-piece splits.
pub fn split_variants(len: usize) -> Vec<Vec<usize>> {
    let mut variants = vec![Vec::new(), (1..len).collect()];
    variants.extend((1..len).map(|k| vec![k]));
    variants.extend([vec![0, 0], vec![len / 2, len / 2], vec![len, len]]);
    let stride = (len / 24).max(1);
    for i in (1..len).step_by(stride) {
        for j in (i + 1..len).step_by(stride + 1) {
            variants.push(vec![i, j]);
        }
    }
    variants
}

/// A client and a server session wired back to back, sharing a virtual clock.
#[derive(Debug)]
pub struct Pair {
    pub client: Session,
    pub server: Session,
    /// The virtual time; only [`Pair::advance`] moves it.
    pub now: Instant,
    /// Events the client reported, in order, not yet taken.
    pub client_events: Vec<Event>,
    /// Events the server reported, in order, not yet taken.
    pub server_events: Vec<Event>,
}

impl Pair {
    /// Both sessions, created at the same instant; their hellos are queued, not yet moved.
    pub fn new(client_config: Config, server_config: Config) -> Self {
        let now = Instant::now();
        Pair {
            client: Session::client(client_config, now),
            server: Session::server(server_config, SERVER_SESSION_ID, now),
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// Moves bytes both ways until neither side has anything to send, collecting events.
    /// A protocol error is not returned here: it ends in the receiver's `Event::Closed`.
    pub fn drive(&mut self) {
        loop {
            let a = pump(
                &mut self.client,
                &mut self.server,
                &mut self.client_events,
                self.now,
            );
            let b = pump(
                &mut self.server,
                &mut self.client,
                &mut self.server_events,
                self.now,
            );
            if !a && !b {
                return;
            }
        }
    }

    /// Exchanges hellos and checks both sides report `Established` first; those two events
    /// are removed, so tests start from empty event lists.
    pub fn establish(&mut self) {
        self.drive();
        for (side, events) in [
            ("client", &mut self.client_events),
            ("server", &mut self.server_events),
        ] {
            assert!(
                matches!(events.first(), Some(Event::Established { .. })),
                "{side} did not establish: {events:?}"
            );
            events.remove(0);
        }
    }

    /// Sends `op` from the client and delivers it to the server.
    pub fn client_rpc(&mut self, op: &(impl Operation + ?Sized)) -> MessageId {
        let id = self.client.send_rpc(op, self.now).expect("send_rpc");
        self.drive();
        id
    }

    /// Answers every `Event::Rpc` the server has reported (removing them from
    /// `server_events`) with `handler`, then delivers the replies. Returns how many it answered.
    pub fn serve_with(&mut self, mut handler: impl FnMut(&Request) -> Reply) -> usize {
        let mut answered = 0;
        for ev in std::mem::take(&mut self.server_events) {
            match ev {
                Event::Rpc { id, request } => {
                    let reply = handler(&request);
                    self.server.send_reply(id, reply).expect("send_reply");
                    answered += 1;
                }
                other => self.server_events.push(other),
            }
        }
        self.drive();
        answered
    }

    /// Moves the virtual clock forward by `by`, stopping at every deadline on the way (in
    /// order) to call `handle_timeout` on the side that set it and drive the pair.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            let next = [self.client.next_deadline(), self.server.next_deadline()]
                .into_iter()
                .flatten()
                .filter(|&d| d <= target)
                .min();
            let Some(deadline) = next else { break };
            self.now = self.now.max(deadline);
            for side in [&mut self.client, &mut self.server] {
                if side.next_deadline().is_some_and(|d| d <= self.now) {
                    side.handle_timeout(self.now);
                }
            }
            self.drive();
            let stuck = [self.client.next_deadline(), self.server.next_deadline()]
                .into_iter()
                .flatten()
                .any(|d| d <= self.now);
            assert!(!stuck, "handle_timeout left a deadline that has passed");
        }
        self.now = target;
    }

    /// Takes the client's events reported so far.
    pub fn take_client_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.client_events)
    }

    /// Takes the server's events reported so far.
    pub fn take_server_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.server_events)
    }
}

/// Drains `from`, keeping its events and handing its bytes to `to`; true if bytes moved.
fn pump(from: &mut Session, to: &mut Session, events: &mut Vec<Event>, now: Instant) -> bool {
    let drained = drain(from);
    events.extend(drained.events);
    if drained.transmitted.is_empty() {
        return false;
    }
    // A protocol error shows up as the receiver's `Event::Closed`; nothing to do here.
    let _ = to.handle_input(&drained.transmitted, now);
    true
}
