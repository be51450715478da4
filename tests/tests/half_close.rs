//! A client may send its requests and end its input at once: `ssh -s` with piped stdin,
//! a script that writes and half-closes. Every adapter's server answers the requests it
//! received before the end of input, in order, then closes (found by the interop suite:
//! the blocking server used to close at the end of input, losing the answers its handler
//! threads were still producing).
//!
//! The handlers take a moment (20 ms), so that the end of input is always seen first.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use netconf_proto::server::ServerOptions;
use netconf_proto::Reply;

const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// Hello, a get-config and a close-session in one write, then the end of input.
fn client_script() -> String {
    format!(
        "<hello xmlns=\"{NS_BASE}\"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>\
         <rpc message-id=\"1\" xmlns=\"{NS_BASE}\"><get-config><source><running/></source></get-config></rpc>]]>]]>\
         <rpc message-id=\"2\" xmlns=\"{NS_BASE}\"><close-session/></rpc>]]>]]>"
    )
}

/// Runs the client side on `socket`: writes the script, half-closes, reads to the end.
fn run_client(mut socket: UnixStream) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(client_script().as_bytes()).unwrap();
    socket.shutdown(Shutdown::Write).unwrap();
    let mut all = String::new();
    socket
        .read_to_string(&mut all)
        .expect("the server closes within the deadlock guard");
    all
}

fn assert_answered(out: &str) {
    let data = out.find("<slow xmlns=\"urn:x\"/>");
    let ok = out.find("<ok/>");
    assert!(
        data.is_some() && ok.is_some() && data < ok,
        "both requests must be answered, in order, before the close: {out}"
    );
}

fn slow() -> Reply {
    std::thread::sleep(Duration::from_millis(20));
    Reply::data("<slow xmlns=\"urn:x\"/>").unwrap()
}

#[test]
fn blocking_server() {
    let server = netconf_blocking::Server::new(ServerOptions::new(), |_, _| slow());
    let (ours, theirs) = UnixStream::pair().unwrap();
    let serving = {
        let server = server.clone();
        std::thread::spawn(move || server.serve_stream(ours, None, None))
    };
    assert_answered(&run_client(theirs));
    serving.join().unwrap().unwrap();
}

#[test]
fn tokio_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = netconf_tokio::Server::new(ServerOptions::new(), |_, _| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Reply::data("<slow xmlns=\"urn:x\"/>").unwrap()
    });
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let serving = rt.spawn(async move {
        let ours = tokio::net::UnixStream::from_std(ours).unwrap();
        server.serve_stream(ours, None, None).await
    });
    assert_answered(&run_client(theirs));
    rt.block_on(serving).unwrap().unwrap();
}

#[test]
fn smol_server() {
    let server = netconf_smol::Server::new(ServerOptions::new(), |_, _| async {
        async_io::Timer::after(Duration::from_millis(20)).await;
        Reply::data("<slow xmlns=\"urn:x\"/>").unwrap()
    });
    let (ours, theirs) = UnixStream::pair().unwrap();
    let serving = std::thread::spawn(move || {
        smol::block_on(async {
            let ours = async_io::Async::new(ours).unwrap();
            server.serve_stream(ours, None, None).await
        })
    });
    assert_answered(&run_client(theirs));
    serving.join().unwrap().unwrap();
}
