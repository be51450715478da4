//! Interop for NETCONF call home (RFC 8071) with libnetconf2 2.0.24, both roles, over TLS and
//! over SSH, on 127.0.0.1:
//!
//! * **libnetconf2 calls, we listen.** libnetconf2's server API calls home
//!   (`tests/interop/nc_server.c --ch-tls-port/--ch-ssh-port`: `nc_server_ch_add_client`,
//!   `nc_server_ch_client_add_endpt`, `nc_connect_ch_client_dispatch`, persistent) to our
//!   `CallHomeListener` (netconf-blocking, netconf-tokio, netconf-smol). The device is
//!   identified by its certificate or host key, operations run (get-config, edit-config, an
//!   rpc-error from libnetconf2), and after we close the session libnetconf2 calls again and
//!   a second session runs. A device with a certificate from another CA, an unknown or changed
//!   host key, or one the filter refuses is refused during the handshake with an error naming
//!   why, before our credentials or any NETCONF byte reach it.
//! * **We call, libnetconf2 listens.** Our `Server::call_home` (blocking, tokio, smol) calls
//!   libnetconf2's client API (`tests/interop/nc_client.c --listen-port`:
//!   `nc_client_{tls,ssh}_ch_add_bind_listen` + `nc_accept_callhome`), which accepts, runs
//!   get-config, edit-config, get-config, lock, unlock and closes; our server calls again and
//!   libnetconf2 accepts that second session too; `CallHome::sessions()` counts both.
//!
//! No test measures time; every wait has a deadlock guard. Runs only with `NETCONF_INTEROP=1`
//! or `=require`; see `tests/interop/harness.rs`.

#[path = "../interop/harness.rs"]
mod harness;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{CallHomeVia, Peer, Scratch, SshKeys, ToyStore, SSH_PASSWORD, SSH_USER};
use netconf_async::call_home::{
    CallHomeEnd, CallHomeOptions, CallHomeTransport, Device, DeviceError, DeviceIdentity, Reconnect,
};
use netconf_async::{CallHomeListener, Runtime};
use netconf_proto::message::ErrorTag;
use netconf_proto::operations::{Datastore, EditConfig, GetConfig, GetSchema, InlineConfig};
use netconf_proto::tls::ClientTlsOptions;
use netconf_proto::{Error, Framing};
use netconf_tests::certs::Pki;

/// Deadlock guard: a call, session or process that takes longer has hung.
const GUARD: Duration = Duration::from_secs(60);
/// What libnetconf2's server answers get-config with before anyone edits it.
const LNC_GREETING: &str = "hello from libnetconf2";
/// The name a dialled SSH connection to the device would record in known_hosts, which our
/// listener checks a calling device's host key under.
const NETCONF_SSH_PORT: u16 = 830;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tls,
    Ssh,
}

/// One test's scratch directory, and SSH keys when the test runs over SSH.
struct Setup {
    scratch: Scratch,
    keys: Option<SshKeys>,
}

impl Setup {
    /// The gate (interop switch, the C peer, ssh-keygen), then scratch dir and keys.
    fn new(test: &str, peer: &str, transport: Transport) -> Option<Setup> {
        let mode = harness::mode(test)?;
        harness::need(mode, test, harness::c_peer(peer))?;
        if transport == Transport::Ssh {
            harness::need(mode, test, harness::which("ssh-keygen"))?;
        }
        let scratch = Scratch::new(test);
        let keys = (transport == Transport::Ssh)
            .then(|| SshKeys::new(&scratch).expect("ssh keys in the scratch directory"));
        Some(Setup { scratch, keys })
    }

    fn via(&self) -> CallHomeVia<'_> {
        match &self.keys {
            None => CallHomeVia::Tls,
            Some(keys) => CallHomeVia::Ssh(keys),
        }
    }

    fn keys(&self) -> &SshKeys {
        self.keys.as_ref().expect("an SSH test")
    }

    /// Our manager's SSH options: user and password of libnetconf2's server, the device's
    /// host key checked against `known_hosts`.
    fn ssh_login(&self, known_hosts: PathBuf) -> netconf_ssh::ClientOptions {
        netconf_ssh::ClientOptions::new(SSH_USER)
            .password(SSH_PASSWORD)
            .known_hosts(known_hosts)
            .connect_timeout(Duration::from_secs(10))
            .auth_timeout(Duration::from_secs(10))
            .subsystem_timeout(Duration::from_secs(10))
    }

    /// The listener options that accept libnetconf2's device: our client certificate and
    /// the scratch CA, or a known_hosts file with the device's host key under
    /// `[127.0.0.1]:830`.
    fn accepting(&self) -> CallHomeOptions {
        match &self.keys {
            None => CallHomeOptions::tls(harness::client_tls(&self.scratch)),
            Some(keys) => {
                CallHomeOptions::ssh(self.ssh_login(keys.known_hosts_for(NETCONF_SSH_PORT)))
            }
        }
    }

    /// Starts libnetconf2's server calling `manager_port` home.
    fn calling_device(&self, manager_port: u16) -> Peer {
        harness::start_nc_server_calling_home(&self.scratch, self.via(), manager_port)
            .unwrap_or_else(|e| panic!("libnetconf2's calling server did not start: {e}"))
    }
}

/// The device is libnetconf2's server: its certificate, or its host key.
fn check_identity(device: &Device, setup: &Setup) {
    assert!(device.peer.ip().is_loopback(), "{device:?}");
    match (&device.identity, &setup.keys) {
        (DeviceIdentity::Certificate(der), None) => {
            assert!(
                *der == setup.scratch.pki.server_cert_der(),
                "another certificate"
            )
        }
        (
            DeviceIdentity::HostKey {
                fingerprint,
                openssh,
            },
            Some(keys),
        ) => {
            assert_eq!(*fingerprint, keys.host_fingerprint);
            assert_eq!(*openssh, keys.host_public);
        }
        (other, _) => panic!("unexpected identity {other:?}"),
    }
}

fn greeting(text: &str) -> InlineConfig {
    InlineConfig::new(format!(
        "<interop xmlns=\"urn:example:interop\"><greeting>{text}</greeting></interop>"
    ))
    .expect("well-formed")
}

/// The operations on a session with libnetconf2's calling server, written once for the
/// three clients: `$aw` is `.await` for the async ones and nothing for blocking. `$first`:
/// the first session since the device started (nothing edited yet). Returns the session-id.
macro_rules! operations_with_libnetconf2 {
    ($c:expr, $tag:expr, $first:expr, $($aw:tt)*) => {{
        let c = &$c;
        let tag: &str = $tag;
        let session_id = c.session_id();
        assert_ne!(session_id, 0);
        assert_eq!(c.framing(), Framing::Chunked, "base:1.1 on both sides");

        let running = GetConfig::new(Datastore::Running);
        let data = c.call(&running)$($aw)*.expect("get-config");
        if $first {
            assert!(data.as_str().contains(LNC_GREETING), "{data}");
        }
        let set = format!("set by {tag}");
        c.call(&EditConfig::new(Datastore::Running, greeting(&set)))$($aw)*
            .expect("edit-config running");
        let data = c.call(&running)$($aw)*.expect("get-config after edit");
        assert!(data.as_str().contains(&set), "{data}");

        // An rpc-error from libnetconf2 (its get-schema: unknown module), and the session
        // goes on.
        match c.call(&GetSchema::new("no-such-module"))$($aw)* {
            Err(Error::Rpc(errors)) => {
                assert_eq!(errors[0].tag, ErrorTag::InvalidValue, "{errors:?}");
                println!("rpc-error from libnetconf2: {errors:?}");
            }
            other => panic!("get-schema of an unknown module: expected an rpc-error, got {other:?}"),
        }
        let data = c.call(&running)$($aw)*.expect("get-config after an rpc-error");
        assert!(data.as_str().contains(&set), "{data}");
        session_id
    }};
}

/// What libnetconf2's server logged: one line per established call-home session.
fn established(log: &str) -> usize {
    log.matches("call home session").count()
}

// ---- runtimes ---------------------------------------------------------------------------------

/// An async runtime to run a test body on.
enum Exec {
    Tokio(tokio::runtime::Runtime),
    Smol,
}

impl Exec {
    fn tokio() -> Exec {
        Exec::Tokio(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime"),
        )
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match self {
            Exec::Tokio(rt) => rt.block_on(f),
            Exec::Smol => smol::block_on(f),
        }
    }
}

/// `f`, or a panic with `logs()` after [`GUARD`] (async-io's timer works on both runtimes).
async fn guarded<T>(what: &str, logs: impl Fn() -> String, f: impl Future<Output = T>) -> T {
    let limit = async {
        async_io::Timer::after(GUARD).await;
        None
    };
    match futures_lite::future::or(async { Some(f.await) }, limit).await {
        Some(v) => v,
        None => panic!("deadlock guard: {what} took over {GUARD:?}:\n{}", logs()),
    }
}

// ---- libnetconf2 calls, our listener answers ------------------------------------------------

/// The blocking listener's next arrival, under the deadlock guard.
// The library's own `accept` returns this `Result` (a refused device is an ordinary outcome).
#[allow(clippy::result_large_err)]
fn blocking_accept(
    listener: &netconf_blocking::CallHomeListener,
    peer: &Peer,
) -> Result<netconf_blocking::CalledHome, DeviceError> {
    listener.accept_timeout(GUARD).unwrap_or_else(|| {
        panic!(
            "deadlock guard: libnetconf2 did not call within {GUARD:?}:\n{}",
            peer.log_text()
        )
    })
}

/// libnetconf2 calls our blocking listener: identified, operations, our close, its second
/// call, operations again.
fn libnetconf2_calls_blocking_listener(test: &str, transport: Transport) {
    let Some(setup) = Setup::new(test, "nc_server", transport) else {
        return;
    };
    let listener = netconf_blocking::CallHomeListener::bind("127.0.0.1:0", &setup.accepting())
        .expect("binding our call-home listener");
    let peer = setup.calling_device(listener.local_addr().port());

    let called = blocking_accept(&listener, &peer).expect("libnetconf2's call accepted");
    check_identity(&called.device, &setup);
    let first = operations_with_libnetconf2!(called.client, "blocking-1", true,);
    called.client.close().expect("close-session");

    // libnetconf2's persistent call home dials again once the session ended.
    let again = blocking_accept(&listener, &peer).expect("libnetconf2's second call accepted");
    check_identity(&again.device, &setup);
    let data = again
        .client
        .call(&GetConfig::new(Datastore::Running))
        .expect("get-config");
    assert!(
        data.as_str().contains("set by blocking-1"),
        "the device kept its edit: {data}"
    );
    let second = operations_with_libnetconf2!(again.client, "blocking-2", false,);
    assert_ne!(first, second, "a new session");
    again.client.close().expect("close-session");

    let log = peer.stop();
    println!("--- libnetconf2 nc_server log\n{log}");
    assert!(established(&log) >= 2, "{log}");
}

/// The same on tokio or smol.
async fn libnetconf2_calls_async_listener<R: Runtime>(setup: &Setup, tag: &str) {
    let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &setup.accepting())
        .await
        .expect("binding our call-home listener");
    let peer = setup.calling_device(listener.local_addr().port());
    let logs = || peer.log_text();

    let called = guarded("libnetconf2's call", logs, listener.accept())
        .await
        .expect("libnetconf2's call accepted");
    check_identity(&called.device, setup);
    let first = operations_with_libnetconf2!(called.client, &format!("{tag}-1"), true, .await);
    called.client.close().await.expect("close-session");

    let again = guarded("libnetconf2's second call", logs, listener.accept())
        .await
        .expect("libnetconf2's second call accepted");
    check_identity(&again.device, setup);
    let data = again
        .client
        .call(&GetConfig::new(Datastore::Running))
        .await
        .expect("get-config");
    assert!(
        data.as_str().contains(&format!("set by {tag}-1")),
        "the device kept its edit: {data}"
    );
    let second = operations_with_libnetconf2!(again.client, &format!("{tag}-2"), false, .await);
    assert_ne!(first, second, "a new session");
    again.client.close().await.expect("close-session");

    let log = peer.stop();
    println!("--- libnetconf2 nc_server log\n{log}");
    assert!(established(&log) >= 2, "{log}");
}

fn libnetconf2_calls_async(test: &str, transport: Transport, exec: Exec) {
    let Some(setup) = Setup::new(test, "nc_server", transport) else {
        return;
    };
    match exec {
        Exec::Tokio(_) => exec.block_on(libnetconf2_calls_async_listener::<netconf_tokio::Tokio>(
            &setup, "tokio",
        )),
        Exec::Smol => exec.block_on(libnetconf2_calls_async_listener::<netconf_smol::Smol>(
            &setup, "smol",
        )),
    }
}

#[test]
fn call_home_tls_from_libnetconf2_to_blocking_listener() {
    libnetconf2_calls_blocking_listener(
        "call_home_tls_from_libnetconf2_to_blocking_listener",
        Transport::Tls,
    );
}

#[test]
fn call_home_ssh_from_libnetconf2_to_blocking_listener() {
    libnetconf2_calls_blocking_listener(
        "call_home_ssh_from_libnetconf2_to_blocking_listener",
        Transport::Ssh,
    );
}

#[test]
fn call_home_tls_from_libnetconf2_to_tokio_listener() {
    libnetconf2_calls_async(
        "call_home_tls_from_libnetconf2_to_tokio_listener",
        Transport::Tls,
        Exec::tokio(),
    );
}

#[test]
fn call_home_ssh_from_libnetconf2_to_tokio_listener() {
    libnetconf2_calls_async(
        "call_home_ssh_from_libnetconf2_to_tokio_listener",
        Transport::Ssh,
        Exec::tokio(),
    );
}

#[test]
fn call_home_tls_from_libnetconf2_to_smol_listener() {
    libnetconf2_calls_async(
        "call_home_tls_from_libnetconf2_to_smol_listener",
        Transport::Tls,
        Exec::Smol,
    );
}

#[test]
fn call_home_ssh_from_libnetconf2_to_smol_listener() {
    libnetconf2_calls_async(
        "call_home_ssh_from_libnetconf2_to_smol_listener",
        Transport::Ssh,
        Exec::Smol,
    );
}

// ---- libnetconf2 calls and our listener refuses it -------------------------------------------

/// Why our listener should refuse libnetconf2's device.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// TLS: our listener trusts another CA than the one that signed the device's certificate.
    TlsWrongCa,
    /// TLS: the certificate is fine; the filter says no.
    TlsFilter,
    /// SSH: known_hosts has no entry for the device.
    SshUnknownKey,
    /// SSH: known_hosts has another key for the device (`[127.0.0.1]:830`).
    SshChangedKey,
    /// SSH: the host key is known; the filter says no.
    SshFilter,
}

impl Refusal {
    fn transport(self) -> Transport {
        match self {
            Refusal::TlsWrongCa | Refusal::TlsFilter => Transport::Tls,
            _ => Transport::Ssh,
        }
    }

    /// Our listener's options, and what its filter saw.
    fn options(self, setup: &Setup) -> (CallHomeOptions, Arc<Mutex<Vec<DeviceIdentity>>>) {
        let seen: Arc<Mutex<Vec<DeviceIdentity>>> = Arc::default();
        let record = seen.clone();
        let refuse_all = move |device: &Device| {
            record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(device.identity.clone());
            false
        };
        let options = match self {
            Refusal::TlsWrongCa => {
                let other = Pki::other_ca();
                let tls = ClientTlsOptions::new()
                    .ca_pem(other.ca_pem.clone())
                    .client_cert_pem(
                        setup.scratch.pki.client_cert_pem.clone(),
                        setup.scratch.pki.client_key_pem.clone(),
                    );
                CallHomeOptions::tls(tls)
            }
            Refusal::TlsFilter => {
                CallHomeOptions::tls(harness::client_tls(&setup.scratch)).filter(refuse_all)
            }
            Refusal::SshUnknownKey => {
                let empty = setup.scratch.dir.join("known_hosts-empty");
                std::fs::write(&empty, "").expect("an empty known_hosts");
                CallHomeOptions::ssh(setup.ssh_login(empty))
            }
            Refusal::SshChangedKey => CallHomeOptions::ssh(
                setup.ssh_login(setup.keys().wrong_known_hosts_for(NETCONF_SSH_PORT)),
            ),
            Refusal::SshFilter => CallHomeOptions::ssh(
                setup.ssh_login(setup.keys().known_hosts_for(NETCONF_SSH_PORT)),
            )
            .filter(refuse_all),
        };
        (options, seen)
    }

    /// Checks the listener's error names the reason, the filter saw what it should, and
    /// libnetconf2's server never got a session (nor, over SSH, our credentials).
    fn check(self, setup: &Setup, refused: &DeviceError, seen: &Option<DeviceIdentity>, log: &str) {
        println!("refused ({self:?}): {refused}");
        assert!(refused.peer.ip().is_loopback());
        let why = refused.error.to_string();
        match self {
            Refusal::TlsWrongCa | Refusal::TlsFilter => {
                let Error::Tls(tls) = &refused.error else {
                    panic!("expected a TLS error, got {:?}", refused.error);
                };
                let tls = tls.to_string();
                let expect = match self {
                    Refusal::TlsWrongCa => "unknownissuer",
                    _ => "applicationverificationfailure",
                };
                assert!(tls.to_lowercase().contains(expect), "{self:?}: {tls}");
            }
            _ => {
                let Error::Ssh(inner) = &refused.error else {
                    panic!("expected an SSH error, got {:?}", refused.error);
                };
                let ssh = inner
                    .downcast_ref::<netconf_ssh::Error>()
                    .expect("a netconf_ssh::Error inside");
                let keys = setup.keys();
                let ok = match (self, ssh) {
                    (Refusal::SshUnknownKey, netconf_ssh::Error::UnknownHostKey { host, .. })
                    | (Refusal::SshChangedKey, netconf_ssh::Error::HostKeyChanged { host, .. })
                    | (Refusal::SshFilter, netconf_ssh::Error::HostKeyRefused { host, .. }) => {
                        host.contains("127.0.0.1")
                    }
                    _ => false,
                };
                assert!(ok, "{self:?}: got {ssh:?}");
                // The error names the key libnetconf2 offered.
                assert!(
                    why.contains(&keys.host_fingerprint) || why.contains(keys.host_b64()),
                    "{self:?}: the error does not name the offered key: {why}"
                );
                // Refused during key exchange: libnetconf2 never saw a login attempt.
                assert!(!log.contains("password login"), "{log}");
            }
        }
        match self {
            Refusal::TlsFilter => assert!(
                matches!(seen, Some(DeviceIdentity::Certificate(der))
                    if *der == setup.scratch.pki.server_cert_der()),
                "the filter saw {seen:?}"
            ),
            Refusal::SshFilter => assert!(
                matches!(seen, Some(DeviceIdentity::HostKey { fingerprint, .. })
                    if *fingerprint == setup.keys().host_fingerprint),
                "the filter saw {seen:?}"
            ),
            // No filter is set; nothing unverified may reach one.
            _ => assert!(seen.is_none(), "the filter saw {seen:?}"),
        }
        assert_eq!(established(log), 0, "libnetconf2 got a session:\n{log}");
        assert!(
            !log.contains(": rpc "),
            "libnetconf2 answered an rpc:\n{log}"
        );
    }
}

fn refused_by_blocking_listener(test: &str, refusal: Refusal) {
    let Some(setup) = Setup::new(test, "nc_server", refusal.transport()) else {
        return;
    };
    let (options, seen) = refusal.options(&setup);
    let listener = netconf_blocking::CallHomeListener::bind("127.0.0.1:0", &options)
        .expect("binding our call-home listener");
    let peer = setup.calling_device(listener.local_addr().port());
    let refused = blocking_accept(&listener, &peer).expect_err("the device must be refused");
    let seen = first_seen(&seen);
    drop(listener);
    let log = peer.stop();
    println!("--- libnetconf2 nc_server log\n{log}");
    refusal.check(&setup, &refused, &seen, &log);
}

/// The first device the filter saw. Only the first: libnetconf2 calls again every second
/// after a failed call, so the filter may be deciding on the next call meanwhile.
fn first_seen(seen: &Mutex<Vec<DeviceIdentity>>) -> Option<DeviceIdentity> {
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .first()
        .cloned()
}

async fn refused_by_async_listener<R: Runtime>(setup: &Setup, refusal: Refusal) {
    let (options, seen) = refusal.options(setup);
    let mut listener = CallHomeListener::<R>::bind("127.0.0.1:0", &options)
        .await
        .expect("binding our call-home listener");
    let peer = setup.calling_device(listener.local_addr().port());
    let refused = guarded("libnetconf2's call", || peer.log_text(), listener.accept())
        .await
        .expect_err("the device must be refused");
    let seen = first_seen(&seen);
    drop(listener);
    let log = peer.stop();
    println!("--- libnetconf2 nc_server log\n{log}");
    refusal.check(setup, &refused, &seen, &log);
}

fn refused_by_async(test: &str, refusal: Refusal, exec: Exec) {
    let Some(setup) = Setup::new(test, "nc_server", refusal.transport()) else {
        return;
    };
    match exec {
        Exec::Tokio(_) => exec.block_on(refused_by_async_listener::<netconf_tokio::Tokio>(
            &setup, refusal,
        )),
        Exec::Smol => exec.block_on(refused_by_async_listener::<netconf_smol::Smol>(
            &setup, refusal,
        )),
    }
}

/// One test per (adapter, reason).
macro_rules! refusal_tests {
    ($($name:ident: $refusal:expr, $adapter:ident;)*) => {
        $(#[test]
        fn $name() {
            refusal_tests!(@run $adapter, stringify!($name), $refusal);
        })*
    };
    (@run blocking, $name:expr, $refusal:expr) => { refused_by_blocking_listener($name, $refusal) };
    (@run tokio, $name:expr, $refusal:expr) => { refused_by_async($name, $refusal, Exec::tokio()) };
    (@run smol, $name:expr, $refusal:expr) => { refused_by_async($name, $refusal, Exec::Smol) };
}

refusal_tests! {
    call_home_tls_blocking_listener_refuses_libnetconf2_with_wrong_ca: Refusal::TlsWrongCa, blocking;
    call_home_tls_blocking_listener_refuses_libnetconf2_by_filter: Refusal::TlsFilter, blocking;
    call_home_ssh_blocking_listener_refuses_libnetconf2_unknown_host_key: Refusal::SshUnknownKey, blocking;
    call_home_ssh_blocking_listener_refuses_libnetconf2_changed_host_key: Refusal::SshChangedKey, blocking;
    call_home_ssh_blocking_listener_refuses_libnetconf2_by_filter: Refusal::SshFilter, blocking;
    call_home_tls_tokio_listener_refuses_libnetconf2_with_wrong_ca: Refusal::TlsWrongCa, tokio;
    call_home_tls_tokio_listener_refuses_libnetconf2_by_filter: Refusal::TlsFilter, tokio;
    call_home_ssh_tokio_listener_refuses_libnetconf2_unknown_host_key: Refusal::SshUnknownKey, tokio;
    call_home_ssh_tokio_listener_refuses_libnetconf2_changed_host_key: Refusal::SshChangedKey, tokio;
    call_home_ssh_tokio_listener_refuses_libnetconf2_by_filter: Refusal::SshFilter, tokio;
    call_home_tls_smol_listener_refuses_libnetconf2_with_wrong_ca: Refusal::TlsWrongCa, smol;
    call_home_ssh_smol_listener_refuses_libnetconf2_changed_host_key: Refusal::SshChangedKey, smol;
}

// ---- our server calls, libnetconf2's client listens -----------------------------------------

/// Our calling server, whatever the adapter.
trait CallingDevice {
    /// `CallHome::sessions()`: sessions established and ended so far.
    fn sessions(&self) -> u64;
    /// Stops calling (and checks it stopped for that reason), then shuts the server down.
    fn stop(self: Box<Self>);
    /// Waits until it stops calling by itself (`max_attempts`), then shuts the server down.
    fn end(self: Box<Self>) -> CallHomeEnd;
}

struct BlockingDevice {
    server: netconf_blocking::Server,
    calls: netconf_blocking::call_home::CallHome,
}

impl CallingDevice for BlockingDevice {
    fn sessions(&self) -> u64 {
        self.calls.sessions()
    }

    fn stop(self: Box<Self>) {
        self.calls.stop();
        let end = self.end();
        assert!(matches!(end, CallHomeEnd::Stopped), "{end:?}");
    }

    fn end(self: Box<Self>) -> CallHomeEnd {
        let (done, wait) = std::sync::mpsc::channel();
        let calls = self.calls.clone();
        std::thread::spawn(move || {
            let _ = done.send(calls.wait());
        });
        let end = wait
            .recv_timeout(GUARD)
            .expect("deadlock guard: the blocking server did not stop calling");
        self.server.shutdown();
        end
    }
}

struct AsyncDevice<R> {
    exec: Exec,
    server: netconf_async::Server<R>,
    calls: netconf_async::call_home::CallHome,
}

impl<R: Runtime> CallingDevice for AsyncDevice<R> {
    fn sessions(&self) -> u64 {
        self.calls.sessions()
    }

    fn stop(self: Box<Self>) {
        self.calls.stop();
        let end = self.end();
        assert!(matches!(end, CallHomeEnd::Stopped), "{end:?}");
    }

    fn end(self: Box<Self>) -> CallHomeEnd {
        let end = self.exec.block_on(guarded(
            "the end of the calls",
            String::new,
            self.calls.ended(),
        ));
        self.exec.block_on(guarded(
            "the server's shutdown",
            String::new,
            self.server.shutdown(),
        ));
        end
    }
}

/// Quick reconnection (the default waits about a second after each session).
fn quick() -> Reconnect {
    Reconnect::new().backoff(Duration::from_millis(50), Duration::from_millis(500))
}

fn our_transport(setup: &Setup) -> CallHomeTransport {
    match &setup.keys {
        None => CallHomeTransport::Tls(harness::server_tls(&setup.scratch)),
        Some(keys) => CallHomeTransport::Ssh(harness::ssh_server(keys)),
    }
}

fn blocking_device(
    setup: &Setup,
    store: &ToyStore,
    manager: &str,
    reconnect: Reconnect,
) -> Box<dyn CallingDevice> {
    let handler_store = store.clone();
    let server =
        netconf_blocking::Server::new(harness::server_options(store), move |req, _info| {
            handler_store.answer(req)
        });
    let calls = server
        .call_home(&[manager], our_transport(setup), reconnect)
        .expect("call_home");
    Box::new(BlockingDevice { server, calls })
}

fn async_device<R: Runtime>(
    exec: Exec,
    setup: &Setup,
    store: &ToyStore,
    manager: &str,
    reconnect: Reconnect,
) -> Box<dyn CallingDevice> {
    let handler_store = store.clone();
    let server =
        netconf_async::Server::<R>::new(harness::server_options(store), move |req, _info| {
            let store = handler_store.clone();
            async move { store.answer(&req) }
        });
    // Inside the runtime: tokio's tasks are spawned on the current runtime.
    let calls = exec.block_on(async {
        server
            .call_home(&[manager], our_transport(setup), reconnect)
            .expect("call_home")
    });
    Box::new(AsyncDevice {
        exec,
        server,
        calls,
    })
}

/// Our server (built by `start`) calls libnetconf2's listening client, which takes two
/// sessions one after the other.
fn we_call_libnetconf2(
    test: &str,
    transport: Transport,
    start: impl FnOnce(&Setup, &ToyStore, &str, Reconnect) -> Box<dyn CallingDevice>,
) {
    let Some(setup) = Setup::new(test, "nc_client", transport) else {
        return;
    };
    let client = harness::start_nc_client_listening(&setup.scratch, setup.via(), 2)
        .unwrap_or_else(|e| panic!("{test}: libnetconf2's listener did not start: {e}"));
    let listen_port = client.port;
    let store = ToyStore::new();
    let device = start(&setup, &store, &format!("127.0.0.1:{listen_port}"), quick());
    let out = client.finish(GUARD);
    println!("{}", out.describe());
    let who = format!("libnetconf2 call-home listener ({test})");

    // The first session: libnetconf2's usual run, checked as against our listening servers.
    harness::check_client_operations(&who, &out, &store, "libnetconf2-1");
    let lines = |key: &str| -> Vec<&str> {
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .collect()
    };
    let accepted = lines("ACCEPTED");
    assert_eq!(
        accepted.len(),
        2,
        "{who}: two calls accepted:\n{}",
        out.describe()
    );
    assert_eq!(lines("CLOSE"), ["ok", "ok"], "{who}");
    // The second session is a new one, on the same device (which kept the first's edit).
    let hellos = lines("HELLO");
    assert_eq!(hellos.len(), 2, "{who}");
    assert_ne!(hellos[0], hellos[1], "{who}: the same session-id twice");
    let before = lines("GET-CONFIG");
    assert!(
        before[1].contains("set by libnetconf2-1"),
        "{who}: {before:?}"
    );
    let after = lines("GET-CONFIG-AFTER");
    assert!(
        after[1].contains("set by libnetconf2-2"),
        "{who}: {after:?}"
    );

    let field = |line: &str, key: &str| -> Option<String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    for a in &accepted {
        assert_eq!(field(a, "host").as_deref(), Some("127.0.0.1"), "{a}");
    }
    if transport == Transport::Ssh {
        // libnetconf2 checked our host key (its callback compares the SHA-256 fingerprint)
        // for host 127.0.0.1 and port = our source port, the port the call came from (not
        // 830, not its listening port): what its default known_hosts check would look up.
        let checks = lines("HOSTKEY");
        assert_eq!(checks.len(), 2, "{who}: one host-key check per call");
        for (check, call) in checks.iter().zip(&accepted) {
            assert_eq!(field(check, "match").as_deref(), Some("1"), "{check}");
            assert_eq!(
                field(check, "host").as_deref(),
                Some("127.0.0.1"),
                "{check}"
            );
            let port = field(check, "port");
            assert_eq!(port, field(call, "port"), "{check} / {call}");
            assert_ne!(port, Some(listen_port.to_string()), "{check}");
            println!("KNOWN-QUIRK libnetconf2 checks a calling server's host key under [127.0.0.1]:{} (the call's source port)", port.unwrap_or_default());
        }
    }

    // Our server counts both sessions once they ended on its side too.
    let start_wait = Instant::now();
    while device.sessions() < 2 {
        assert!(
            start_wait.elapsed() < GUARD,
            "deadlock guard: our server saw {} ended sessions",
            device.sessions()
        );
        // A poll interval while our server notices the close, not a fixed sleep.
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(device.sessions(), 2);
    device.stop();
}

#[test]
fn call_home_tls_from_blocking_server_to_libnetconf2_listener() {
    we_call_libnetconf2(
        "call_home_tls_from_blocking_server_to_libnetconf2_listener",
        Transport::Tls,
        blocking_device,
    );
}

#[test]
fn call_home_ssh_from_blocking_server_to_libnetconf2_listener() {
    we_call_libnetconf2(
        "call_home_ssh_from_blocking_server_to_libnetconf2_listener",
        Transport::Ssh,
        blocking_device,
    );
}

#[test]
fn call_home_tls_from_tokio_server_to_libnetconf2_listener() {
    we_call_libnetconf2(
        "call_home_tls_from_tokio_server_to_libnetconf2_listener",
        Transport::Tls,
        |setup, store, manager, reconnect| {
            async_device::<netconf_tokio::Tokio>(Exec::tokio(), setup, store, manager, reconnect)
        },
    );
}

#[test]
fn call_home_ssh_from_tokio_server_to_libnetconf2_listener() {
    we_call_libnetconf2(
        "call_home_ssh_from_tokio_server_to_libnetconf2_listener",
        Transport::Ssh,
        |setup, store, manager, reconnect| {
            async_device::<netconf_tokio::Tokio>(Exec::tokio(), setup, store, manager, reconnect)
        },
    );
}

#[test]
fn call_home_tls_from_smol_server_to_libnetconf2_listener() {
    we_call_libnetconf2(
        "call_home_tls_from_smol_server_to_libnetconf2_listener",
        Transport::Tls,
        |setup, store, manager, reconnect| {
            async_device::<netconf_smol::Smol>(Exec::Smol, setup, store, manager, reconnect)
        },
    );
}

#[test]
fn call_home_ssh_from_smol_server_to_libnetconf2_listener() {
    we_call_libnetconf2(
        "call_home_ssh_from_smol_server_to_libnetconf2_listener",
        Transport::Ssh,
        |setup, store, manager, reconnect| {
            async_device::<netconf_smol::Smol>(Exec::Smol, setup, store, manager, reconnect)
        },
    );
}

// ---- libnetconf2's listener refuses our calling server ---------------------------------------

/// libnetconf2's listener does not trust our server (TLS: it trusts another CA; SSH: it
/// expects another host key): our server's one call (`max_attempts(1)`) fails, it gives up
/// with the error, and no NETCONF request reached it.
fn libnetconf2_refuses_our_call(
    test: &str,
    transport: Transport,
    start: impl FnOnce(&Setup, &ToyStore, &str, Reconnect) -> Box<dyn CallingDevice>,
) {
    let Some(setup) = Setup::new(test, "nc_client", transport) else {
        return;
    };
    let other_ca = setup.scratch.dir.join("other-ca.pem");
    std::fs::write(&other_ca, Pki::other_ca().ca_pem).expect("writing another CA");
    let extra: Vec<&std::ffi::OsStr> = match transport {
        Transport::Tls => vec!["--ca".as_ref(), other_ca.as_os_str()],
        Transport::Ssh => vec![
            "--hostkey-sha256".as_ref(),
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".as_ref(),
        ],
    };
    let client = harness::start_nc_client_listening_with(&setup.scratch, setup.via(), 1, &extra)
        .unwrap_or_else(|e| panic!("{test}: libnetconf2's listener did not start: {e}"));
    let store = ToyStore::new();
    let manager = format!("127.0.0.1:{}", client.port);
    let device = start(&setup, &store, &manager, quick().max_attempts(Some(1)));
    let end = device.end();
    let out = client.finish(GUARD);
    println!("{}", out.describe());
    match &end {
        CallHomeEnd::GaveUp(e) => println!("our server gave up: {e} ({e:?})"),
        other => panic!("expected GaveUp after libnetconf2 refused us, got {other:?}"),
    }
    assert!(
        store.ops().is_empty(),
        "requests reached us: {:?}",
        store.ops()
    );
    assert!(!out.ok(), "libnetconf2 accepted an untrusted server");
    assert!(
        out.line("FAIL").is_some_and(|l| l.starts_with("ACCEPT")),
        "{}",
        out.describe()
    );
    assert!(out.line("ACCEPTED").is_none(), "{}", out.describe());
    match transport {
        Transport::Tls => assert!(
            out.stderr.contains("certificate verify failed"),
            "libnetconf2 says why: {}",
            out.stderr
        ),
        Transport::Ssh => {
            assert!(out.stderr.contains("does NOT match"), "{}", out.stderr);
            assert_eq!(
                out.field("HOSTKEY", "match"),
                Some("0"),
                "{}",
                out.describe()
            );
        }
    }
}

#[test]
fn call_home_tls_libnetconf2_listener_refuses_blocking_server_from_another_ca() {
    libnetconf2_refuses_our_call(
        "call_home_tls_libnetconf2_listener_refuses_blocking_server_from_another_ca",
        Transport::Tls,
        blocking_device,
    );
}

#[test]
fn call_home_ssh_libnetconf2_listener_refuses_blocking_server_host_key() {
    libnetconf2_refuses_our_call(
        "call_home_ssh_libnetconf2_listener_refuses_blocking_server_host_key",
        Transport::Ssh,
        blocking_device,
    );
}

#[test]
fn call_home_tls_libnetconf2_listener_refuses_tokio_server_from_another_ca() {
    libnetconf2_refuses_our_call(
        "call_home_tls_libnetconf2_listener_refuses_tokio_server_from_another_ca",
        Transport::Tls,
        |setup, store, manager, reconnect| {
            async_device::<netconf_tokio::Tokio>(Exec::tokio(), setup, store, manager, reconnect)
        },
    );
}

#[test]
fn call_home_ssh_libnetconf2_listener_refuses_tokio_server_host_key() {
    libnetconf2_refuses_our_call(
        "call_home_ssh_libnetconf2_listener_refuses_tokio_server_host_key",
        Transport::Ssh,
        |setup, store, manager, reconnect| {
            async_device::<netconf_tokio::Tokio>(Exec::tokio(), setup, store, manager, reconnect)
        },
    );
}

/// When the manager refuses our certificate, our calling server gives up with the TLS
/// failure the manager's alert named (libnetconf2's OpenSSL client sends `unknown_ca`), not
/// a bare "the peer closed the connection": the device's operator learns why its calls
/// fail. (Found by this suite: `Server::serve` used to report only whether a session was
/// established, and call home filled in `Closed(Eof)`.)
#[test]
fn call_home_gave_up_error_names_the_tls_alert() {
    let test = "call_home_gave_up_error_names_the_tls_alert";
    let Some(setup) = Setup::new(test, "nc_client", Transport::Tls) else {
        return;
    };
    let other_ca = setup.scratch.dir.join("other-ca.pem");
    std::fs::write(&other_ca, Pki::other_ca().ca_pem).expect("writing another CA");
    let extra = ["--ca".as_ref(), other_ca.as_os_str()];
    let client = harness::start_nc_client_listening_with(&setup.scratch, setup.via(), 1, &extra)
        .unwrap_or_else(|e| panic!("{test}: libnetconf2's listener did not start: {e}"));
    let manager = format!("127.0.0.1:{}", client.port);
    let device = blocking_device(
        &setup,
        &ToyStore::new(),
        &manager,
        quick().max_attempts(Some(1)),
    );
    let end = device.end();
    let out = client.finish(GUARD);
    assert!(
        out.stderr.contains("certificate verify failed"),
        "{}",
        out.describe()
    );
    match end {
        CallHomeEnd::GaveUp(Error::Tls(tls)) => {
            let why = tls.to_string();
            assert!(
                why.contains("UnknownCA") || why.to_lowercase().contains("alert"),
                "{why}"
            );
        }
        other => panic!("the calling server's error should name the TLS alert, got {other:?}"),
    }
}
