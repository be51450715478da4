//! The blocking client.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use netconf_proto::operations::{
    CancelCommit, Commit, CopyConfig, CreateSubscription, Datastore, DeleteConfig, DiscardChanges,
    EditConfig, EditData, Get, GetConfig, GetData, GetSchema, KillSession, Lock, Operation,
    RpcBody, Unlock, Validate,
};
use netconf_proto::tls::ClientTlsOptions;
use netconf_proto::{
    check_reply, Capabilities, Config, Error, MessageId, Notification, RpcReply, Session,
    TlsSession, XmlPayload,
};

use crate::connection::{Connection, Progress};

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("notification_buffer", &self.notification_buffer)
            .finish_non_exhaustive()
    }
}
use crate::transport::Transport;

use netconf_proto::address::split_host_port;
pub use netconf_proto::address::DEFAULT_TLS_PORT;

/// Settings for a client beyond the session's own [`Config`].
#[derive(Clone)]
pub struct ClientBuilder {
    progress: Option<Progress>,
    config: Config,
    connect_timeout: Duration,
    write_timeout: Option<Duration>,
    close_timeout: Duration,
    notification_buffer: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            progress: None,
            config: Config::client(),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(60)),
            close_timeout: Duration::from_secs(5),
            notification_buffer: 4096,
        }
    }
}

impl ClientBuilder {
    /// The session configuration (capabilities, limits, timeouts).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Time allowed for the TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the TLS handshake and the server's `<hello>`.
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.config.hello_timeout = timeout;
        self
    }

    /// Default time an RPC waits for its reply (`None`: forever).
    pub fn rpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.rpc_timeout = timeout;
        self
    }

    /// How long a write may block on a peer that does not read (`None`: forever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long [`Client::close`] waits for the close-session reply before closing anyway.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Calls `f` after every read with the bytes received so far of the message arriving
    /// (0 once it is complete), so a program can show progress on a large reply.
    pub fn on_progress(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(std::sync::Arc::new(f));
        self
    }

    /// How many unread notifications are kept; beyond that the oldest are dropped (and counted).
    pub fn notification_buffer(mut self, n: usize) -> Self {
        self.notification_buffer = n;
        self
    }

    /// Connects over TLS with mutual X.509 authentication (RFC 7589). `addr` is `host`,
    /// `host:port` or `[v6]:port`; the port defaults to 6513 and the certificate is checked
    /// against `host` unless the options name another server name.
    pub fn connect_tls(self, addr: &str, tls: &ClientTlsOptions) -> Result<Client, Error> {
        let (host, port) = split_host_port(addr, DEFAULT_TLS_PORT)?;
        let tls_config = tls.build()?;
        let server_name = tls.server_name_for(host)?;
        let stream = connect(host, port, self.connect_timeout)?;
        let machine =
            TlsSession::client(tls_config, server_name, self.config.clone(), Instant::now())
                .map_err(|e| Error::Tls(e.to_string()))?;
        self.establish(Box::new(stream), Box::new(machine))
    }

    /// Runs NETCONF over an already connected plaintext stream (an SSH `netconf` subsystem
    /// channel, a Unix socket, TCP in tests).
    pub fn from_stream(self, stream: impl Transport + 'static) -> Result<Client, Error> {
        let machine = Session::client(self.config.clone(), Instant::now());
        self.establish(Box::new(stream), Box::new(machine))
    }

    fn establish(
        self,
        stream: Box<dyn Transport>,
        machine: Box<dyn netconf_proto::Machine + Send>,
    ) -> Result<Client, Error> {
        let mut conn = Connection::new(
            stream,
            machine,
            self.notification_buffer,
            self.write_timeout,
        );
        conn.progress = self.progress.clone();
        // The session's hello deadline bounds this wait.
        if let Err(e) = conn.run_until(
            |inbox| inbox.established,
            None,
            "the server's <hello> did not arrive",
        ) {
            conn.shutdown();
            return Err(e);
        }
        Ok(Client {
            conn,
            close_timeout: self.close_timeout,
        })
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => {
                last = Some(std::io::Error::new(
                    e.kind(),
                    format!("connecting to {addr}: {e}"),
                ))
            }
        }
    }
    Err(last
        .unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )
        })
        .into())
}

/// A NETCONF client session over a blocking socket.
///
/// Every method runs the read loop until its answer arrives. [`Client::send`] and
/// [`Client::recv`] split a call so several RPCs can be in flight (pipelined) at once.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    close_timeout: Duration,
}

impl Client {
    /// A builder for timeouts and limits.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects over TLS with default settings. See [`ClientBuilder::connect_tls`].
    pub fn connect_tls(addr: &str, tls: &ClientTlsOptions) -> Result<Client, Error> {
        ClientBuilder::default().connect_tls(addr, tls)
    }

    /// NETCONF over a plaintext stream with default settings. See [`ClientBuilder::from_stream`].
    pub fn from_stream(stream: impl Transport + 'static) -> Result<Client, Error> {
        ClientBuilder::default().from_stream(stream)
    }

    /// The session-id the server assigned.
    pub fn session_id(&self) -> u32 {
        self.conn.machine.session().session_id().unwrap_or_default()
    }

    /// The server's capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        self.conn.machine.session().peer_capabilities()
    }

    /// The framing in use (`Chunked` when both sides speak base:1.1).
    pub fn framing(&self) -> netconf_proto::Framing {
        self.conn.machine.session().framing()
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.machine.session().is_closed()
    }

    /// Sends an RPC without waiting for its reply.
    pub fn send(&mut self, op: &(impl Operation + ?Sized)) -> Result<MessageId, Error> {
        self.send_with_timeout(op, self.conn.machine.session().config().rpc_timeout)
    }

    /// Sends an RPC with its own timeout (`None`: wait forever).
    pub fn send_with_timeout(
        &mut self,
        op: &(impl Operation + ?Sized),
        timeout: Option<Duration>,
    ) -> Result<MessageId, Error> {
        if let Some(e) = self.conn.closed_error() {
            return Err(e);
        }
        let id =
            self.conn
                .machine
                .session_mut()
                .send_rpc_with_timeout(op, timeout, Instant::now())?;
        self.conn.drain();
        Ok(id)
    }

    /// Waits for the reply to `id`. An `<rpc-error>` reply is `Err(Error::Rpc(..))`.
    pub fn recv(&mut self, id: MessageId) -> Result<RpcReply, Error> {
        let mut reply = None;
        self.conn.run_until(
            |inbox| {
                reply = inbox.replies.remove(&id);
                reply.is_some()
            },
            None,
            "no reply",
        )?;
        match reply {
            Some(r) => check_reply(r?),
            None => Err(Error::Timeout("no reply")),
        }
    }

    /// Sends an RPC and waits for its reply.
    pub fn rpc(&mut self, op: &(impl Operation + ?Sized)) -> Result<RpcReply, Error> {
        let id = self.send(op)?;
        self.recv(id)
    }

    /// Sends raw XML (the operation element) and waits for the reply.
    pub fn rpc_raw(&mut self, xml: &str) -> Result<RpcReply, Error> {
        self.rpc(&RpcBody::raw(xml)?)
    }

    fn data(&mut self, op: &(impl Operation + ?Sized)) -> Result<XmlPayload, Error> {
        Ok(self.rpc(op)?.data().cloned().unwrap_or_default())
    }

    fn ok(&mut self, op: &(impl Operation + ?Sized)) -> Result<(), Error> {
        self.rpc(op).map(drop)
    }

    /// `<get>`: state and configuration data.
    pub fn get(&mut self, op: &Get) -> Result<XmlPayload, Error> {
        self.data(op)
    }

    /// `<get-config>`.
    pub fn get_config(&mut self, op: &GetConfig) -> Result<XmlPayload, Error> {
        self.data(op)
    }

    /// `<edit-config>`.
    pub fn edit_config(&mut self, op: &EditConfig) -> Result<(), Error> {
        self.ok(op)
    }

    /// `<copy-config>`.
    pub fn copy_config(&mut self, op: &CopyConfig) -> Result<(), Error> {
        self.ok(op)
    }

    /// `<delete-config>`.
    pub fn delete_config(&mut self, target: Datastore) -> Result<(), Error> {
        self.ok(&DeleteConfig::new(target))
    }

    /// `<lock>`.
    pub fn lock(&mut self, target: Datastore) -> Result<(), Error> {
        self.ok(&Lock::new(target))
    }

    /// `<unlock>`.
    pub fn unlock(&mut self, target: Datastore) -> Result<(), Error> {
        self.ok(&Unlock::new(target))
    }

    /// `<commit>` (plain, confirmed, or confirming a persisted one).
    pub fn commit(&mut self, op: &Commit) -> Result<(), Error> {
        self.ok(op)
    }

    /// `<cancel-commit>`.
    pub fn cancel_commit(&mut self, op: &CancelCommit) -> Result<(), Error> {
        self.ok(op)
    }

    /// `<discard-changes>`.
    pub fn discard_changes(&mut self) -> Result<(), Error> {
        self.ok(&DiscardChanges::new())
    }

    /// `<validate>`.
    pub fn validate(&mut self, op: &Validate) -> Result<(), Error> {
        self.ok(op)
    }

    /// `<kill-session>`.
    pub fn kill_session(&mut self, session_id: u32) -> Result<(), Error> {
        self.ok(&KillSession::new(session_id)?)
    }

    /// RFC 6022 `<get-schema>`: the schema text (YANG, YIN, ...).
    pub fn get_schema(&mut self, op: &GetSchema) -> Result<String, Error> {
        Ok(self.data(op)?.text()?)
    }

    /// RFC 8526 `<get-data>`.
    pub fn get_data(&mut self, op: &GetData) -> Result<XmlPayload, Error> {
        self.data(op)
    }

    /// RFC 8526 `<edit-data>`.
    pub fn edit_data(&mut self, op: &EditData) -> Result<(), Error> {
        self.ok(op)
    }

    /// RFC 5277 `<create-subscription>`; then read with [`Client::next_notification`].
    pub fn create_subscription(&mut self, op: &CreateSubscription) -> Result<(), Error> {
        self.ok(op)
    }

    /// The next notification, waiting up to `timeout` (`None`: until one arrives or the
    /// session closes). `Ok(None)` when the timeout passed.
    pub fn next_notification(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Notification>, Error> {
        if let Some(n) = self.conn.inbox.notifications.pop_front() {
            return Ok(Some(n));
        }
        let limit = timeout.map(|t| Instant::now() + t);
        let mut got = None;
        match self.conn.run_until(
            |inbox| {
                got = inbox.notifications.pop_front();
                got.is_some()
            },
            limit,
            "no notification",
        ) {
            Ok(()) => Ok(got),
            Err(Error::Timeout("no notification")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Notifications as they arrive, until the session closes.
    pub fn notifications(&mut self) -> Notifications<'_> {
        Notifications { client: self }
    }

    /// How many notifications were dropped because nobody read them in time.
    pub fn notifications_dropped(&self) -> u64 {
        self.conn.inbox.notifications_dropped
    }

    /// Ends the session with `<close-session>`, then shuts the socket. If the server does
    /// not answer within the close timeout the socket is shut anyway.
    pub fn close(mut self) -> Result<(), Error> {
        let result = self.close_inner();
        self.conn.shutdown();
        result
    }

    fn close_inner(&mut self) -> Result<(), Error> {
        if self.conn.machine.session().is_closed() {
            return Ok(());
        }
        let session = self.conn.machine.session_mut();
        let Some(id) = session.close(Instant::now()) else {
            self.conn.drain();
            return Ok(());
        };
        let limit = Instant::now() + self.close_timeout;
        let result = self.conn.run_until(
            |inbox| inbox.closed.is_some(),
            Some(limit),
            "close-session reply",
        );
        let reply = self.conn.inbox.replies.remove(&id);
        if result.is_err() {
            self.conn.machine.session_mut().abort();
            self.conn.drain();
        }
        match reply {
            Some(r) => check_reply(r?).map(drop),
            None => match result {
                Err(Error::Timeout(_)) => Err(Error::Timeout(
                    "no reply to close-session; socket closed anyway",
                )),
                _ => Ok(()),
            },
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping never blocks: no close-session, just release the socket.
        self.conn.shutdown();
    }
}

/// Blocking iterator over notifications; see [`Client::notifications`].
#[derive(Debug)]
pub struct Notifications<'a> {
    client: &'a mut Client,
}

impl Iterator for Notifications<'_> {
    type Item = Result<Notification, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.client.is_closed() && self.client.conn.inbox.notifications.is_empty() {
            return None;
        }
        match self.client.next_notification(None) {
            Ok(Some(n)) => Some(Ok(n)),
            Ok(None) => None,
            Err(Error::Closed(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
