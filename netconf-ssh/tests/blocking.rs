//! `netconf_ssh::blocking` over loopback: what the blocking adapter relies on. Clones
//! reading and writing from two threads at once, a read timeout that loses nothing, a
//! `shutdown` that wakes a blocked reader and closes the channel, and every russh object
//! staying on the shared runtime while plain threads use and drop the streams.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use netconf_ssh::blocking::{self, BlockingListener, BlockingStream};
use netconf_ssh::{ClientOptions, ServerOptions, SshServer, StaticAuth};

const GUARD: Duration = Duration::from_secs(60);

fn guarded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(GUARD) {
        Ok(()) => thread.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock guard: no progress in {GUARD:?}"),
    }
}

/// A server on the shared runtime; each session's stream is handed to `serve` on a thread.
fn server(serve: impl Fn(BlockingStream) + Send + Sync + 'static) -> (SshServer, u16) {
    let ssh = SshServer::new(
        ServerOptions::default().auth_rejection_time(Duration::from_millis(10)),
        StaticAuth::new().user("u", "p"),
    )
    .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let mut listener = BlockingListener::new(&ssh, tcp).unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        while let Some(session) = listener.accept() {
            assert_eq!(session.username, "u");
            let serve = serve.clone();
            std::thread::spawn(move || serve(session.stream));
        }
    });
    (ssh, port)
}

fn connect(ssh: &SshServer, port: u16) -> BlockingStream {
    let opts = ClientOptions::new("u")
        .password("p")
        .host_key_fingerprint(ssh.host_key_fingerprint());
    blocking::connect("127.0.0.1", port, &opts).unwrap()
}

/// Echoes with one thread, as a NETCONF peer would not: everything back until EOF.
fn echo(mut s: BlockingStream) {
    let mut buf = vec![0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    s.shutdown();
}

#[test]
fn clones_read_and_write_from_two_threads() {
    guarded(|| {
        let (ssh, port) = server(echo);
        let stream = connect(&ssh, port);
        let mut writer = stream.clone();
        const LEN: usize = 8 << 20;
        let sender = std::thread::spawn(move || {
            let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            for chunk in data.chunks(100_000) {
                writer.write_all(chunk).unwrap();
            }
        });
        let mut reader = stream.clone();
        let mut got = 0usize;
        let mut buf = vec![0u8; 65536];
        while got < LEN {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "echo ended early at {got}");
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + k) % 251) as u8, "byte {}", got + k);
            }
            got += n;
        }
        sender.join().unwrap();
        stream.shutdown();
    })
}

#[test]
fn a_read_timeout_loses_nothing() {
    guarded(|| {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(rx);
        let (ssh, port) = server(move |mut s| {
            // Speak only when told.
            let _ = rx.lock().unwrap().recv();
            s.write_all(b"hello").unwrap();
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf);
        });
        let mut stream = connect(&ssh, port);
        stream.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = [0u8; 16];
        let e = stream.read(&mut buf).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock),
            "{e:?}"
        );
        tx.send(()).unwrap();
        stream.set_read_timeout(None);
        let mut got = Vec::new();
        while got.len() < 5 {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hello");
        stream.shutdown();
    })
}

#[test]
fn shutdown_wakes_a_blocked_reader_and_closes_the_channel() {
    guarded(|| {
        let (ended_tx, ended) = mpsc::channel();
        let (ssh, port) = server(move |mut s| {
            // Never writes; reports how its read ends.
            let mut buf = [0u8; 16];
            let _ = ended_tx.send(s.read(&mut buf).map_err(|e| e.kind()));
        });
        let stream = connect(&ssh, port);
        let mut reader = stream.clone();
        let blocked = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            reader.read(&mut buf).map_err(|e| e.kind())
        });
        std::thread::sleep(Duration::from_millis(50));
        stream.shutdown();
        assert_eq!(blocked.join().unwrap(), Ok(0));
        // The peer sees the channel end.
        assert_eq!(ended.recv().unwrap(), Ok(0));
        // And what follows fails at once.
        let mut s = stream.clone();
        assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
        assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    })
}

#[test]
fn dropping_every_clone_on_a_plain_thread_closes_the_channel() {
    guarded(|| {
        let (ended_tx, ended) = mpsc::channel();
        let (ssh, port) = server(move |mut s| {
            let mut buf = [0u8; 16];
            let _ = ended_tx.send(s.read(&mut buf).map_err(|e| e.kind()));
        });
        let stream = connect(&ssh, port);
        let clone = stream.clone();
        drop(stream);
        std::thread::spawn(move || drop(clone)).join().unwrap();
        assert_eq!(ended.recv().unwrap(), Ok(0));
    })
}

/// `wait_readable` waits for input without reading it and without taking the read half:
/// it times out with nothing there, wakes when bytes arrive (which a read then returns
/// whole), lets another thread read meanwhile, and reports the end of the peer's data.
#[test]
fn wait_readable_waits_for_input_without_consuming_it() {
    guarded(|| {
        let (to_peer, peer_writes) = mpsc::channel::<Option<Vec<u8>>>();
        let peer_writes = std::sync::Mutex::new(Some(peer_writes));
        let (ssh, port) = server(move |mut s| {
            let writes = peer_writes.lock().unwrap().take().unwrap();
            while let Ok(Some(bytes)) = writes.recv() {
                s.write_all(&bytes).unwrap();
            }
            s.shutdown();
        });
        let stream = connect(&ssh, port);
        stream.set_read_timeout(Some(Duration::from_millis(200)));
        assert!(
            !stream.wait_readable().unwrap(),
            "nothing sent yet: times out"
        );

        to_peer.send(Some(b"abc".to_vec())).unwrap();
        stream.set_read_timeout(None);
        assert!(stream.wait_readable().unwrap(), "bytes arrived");
        assert!(
            stream.wait_readable().unwrap(),
            "still there: nothing was consumed"
        );
        let mut buf = [0u8; 16];
        let n = stream.clone().read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"abc");

        // A reader blocked in `read` on another thread is not held up by a waiter.
        let waiter = stream.clone();
        let waiting = std::thread::spawn(move || waiter.wait_readable().unwrap());
        let mut reader = stream.clone();
        let reading = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = reader.read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        to_peer.send(Some(b"xyz".to_vec())).unwrap();
        assert_eq!(reading.join().unwrap(), b"xyz");

        to_peer.send(None).unwrap(); // the peer ends its data
                                     // The waiter woke for "xyz" or, had the reader taken it first, for the end.
        assert!(waiting.join().unwrap());
        assert!(stream.wait_readable().unwrap(), "the end is readable");
        assert_eq!(stream.clone().read(&mut buf).unwrap(), 0, "end of stream");
        drop(ssh);
    });
}
