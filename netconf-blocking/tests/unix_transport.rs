//! A Unix socket as a blocking session's transport: it waits for input without consuming it
//! (`Transport::wait_readable`, a `MSG_PEEK` receive), so a lone caller reads its own reply
//! as over TCP, instead of the session's reading thread reading it and waking the caller.
//!
//! This file is its own test binary on purpose: the second test counts how often the
//! client's reading thread (named `netconf-reader`) wakes, and no other session may run in
//! the process meanwhile.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use netconf_blocking::Transport;
use netconf_tests::deadline::with_deadline;

#[test]
fn a_unix_socket_waits_for_input_without_consuming_it() {
    with_deadline(30, || {
        let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
        assert!(ours.can_wait_readable());
        Transport::set_read_timeout(&ours, Some(Duration::from_millis(50))).expect("timeout");
        assert!(
            !ours.wait_readable().expect("nothing there is not an error"),
            "nothing to read: the wait times out"
        );

        theirs.write_all(b"hello").expect("write");
        assert!(ours.wait_readable().expect("wait"), "bytes arrived");
        assert!(
            ours.wait_readable().expect("wait"),
            "waiting consumed nothing"
        );
        let mut got = [0u8; 5];
        (&ours).read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello", "the read returns every byte the waits saw");

        // A wait on another handle (the caller's, beside the session's reading thread)
        // wakes for bytes that arrive meanwhile, and leaves them to be read here.
        let waiter = ours.try_clone().expect("clone");
        Transport::set_read_timeout(&waiter, Some(Duration::from_secs(10))).expect("timeout");
        let waiting = std::thread::spawn(move || waiter.wait_readable().expect("wait"));
        // Most likely asleep in its wait by then (it passes either way, but then it shows
        // that a waiting peek wakes).
        std::thread::sleep(Duration::from_millis(50));
        theirs.write_all(b"x").expect("write");
        assert!(
            waiting.join().expect("the waiter"),
            "the waiter saw the byte"
        );
        let mut one = [0u8; 1];
        (&ours).read_exact(&mut one).expect("read after the waiter");
        assert_eq!(&one, b"x");

        drop(theirs);
        assert!(ours.wait_readable().expect("wait"), "the end is readable");
        assert_eq!((&ours).read(&mut one).expect("read the end"), 0);
    });
}

/// How often the client's reading thread wakes (Linux's per-thread counters).
#[cfg(target_os = "linux")]
mod reading_thread {
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use netconf_blocking::operations::{Datastore, GetConfig};
    use netconf_blocking::server::ServerOptions;
    use netconf_blocking::{Client, ClientOptions, Reply, Server};
    use netconf_tests::deadline::with_deadline;

    const DATA: &str = "<top xmlns=\"urn:x\"><v>1</v></top>";

    /// Voluntary context switches of this process's threads named `name`, summed.
    fn sleeps_of(name: &str) -> u64 {
        let mut total = 0;
        for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
            let dir = task.expect("task").path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }

    /// Before `UnixStream` could wait without reading, only the client's reading thread read
    /// from it: it woke for every reply and handed it to the caller (at least one sleep of that
    /// thread per call: 283 in 200 calls). Now the caller reads its own reply; the reading
    /// thread still looks every `LINGER` (10 ms) and may wake with a reply it then leaves to the
    /// caller (2-30 wakes in 200 calls, a helper measured, on a loaded machine too).
    #[test]
    fn a_lone_caller_reads_its_own_reply_over_a_unix_socket() {
        const CALLS: u64 = 200;
        with_deadline(60, || {
            let server = Server::new(ServerOptions::new(), |_request, _info| {
                Reply::data(DATA).expect("data")
            });
            let (ours, theirs) = UnixStream::pair().expect("a socket pair");
            let serving = {
                let server = server.clone();
                std::thread::spawn(move || server.serve_stream(theirs, None, None))
            };
            let options = ClientOptions::new().rpc_timeout(Some(Duration::from_secs(30)));
            let client = Client::from_stream_with(ours, &options).expect("hello");
            let get = GetConfig::new(Datastore::Running);
            client.call(&get).expect("warm-up call");

            let before = sleeps_of("netconf-reader");
            let started = std::time::Instant::now();
            for _ in 0..CALLS {
                assert_eq!(client.call(&get).expect("get-config").as_str(), DATA);
            }
            let woke = sleeps_of("netconf-reader") - before;
            // Its looks every `LINGER` are allowed for, however slow the machine is today.
            let looks = (started.elapsed().as_millis() / 10) as u64;
            assert!(
                woke < CALLS / 2 + looks,
                "the reading thread woke {woke} times in {CALLS} calls ({looks} looks): \
                 it, not the caller, read the replies"
            );

            client.close().expect("close");
            serving
                .join()
                .expect("serve_stream did not panic")
                .expect("serve_stream ends cleanly");
        });
    }
}
