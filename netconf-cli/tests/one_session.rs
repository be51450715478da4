//! What needs one session to mean anything: `--lock`, `netconf batch`, and a hostile
//! request that must not take `netconf serve` down for anybody else.

mod common;

use common::{run_with_stdin, Serve, TempDir};
use netconf_blocking::operations::{Datastore, Lock, Unlock};
use netconf_blocking::Error;
use netconf_proto::message::ErrorTag;

const NS: &str = "urn:example:netconf-cli-demo";

fn hostname(name: &str) -> String {
    format!("<system xmlns=\"{NS}\"><hostname>{name}</hostname></system>")
}

/// The 360 KB request nested 60,000 levels deep that used to abort the whole process:
/// answered with `too-big`, and the server goes on serving this and other sessions.
#[test]
fn a_60000_deep_request_gets_an_error_and_serve_keeps_serving() {
    let serve = Serve::start(&[]);
    let client = serve.library_client();
    let depth = 60_000;
    let deep = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let request = format!(
        "<edit-config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><target><running/></target>\
         <config><x xmlns=\"{NS}\">{deep}</x></config></edit-config>"
    );
    assert!(request.len() > 360_000);
    match client.rpc_raw(&request) {
        Ok(reply) => {
            assert!(reply.has_errors(), "{reply:?}");
            assert_eq!(reply.errors[0].tag, ErrorTag::TooBig);
        }
        Err(Error::Rpc(errors)) => assert_eq!(errors[0].tag, ErrorTag::TooBig),
        Err(other) => panic!("expected an rpc-error, got {other}"),
    }
    // The same session and a new one are both still served.
    client.call(&Lock::new(Datastore::Running)).unwrap();
    client.call(&Unlock::new(Datastore::Running)).unwrap();
    let out = serve.run(&["get-config", "--subtree", "<system/>"]);
    out.ok();
    assert!(out.stdout.contains("demo-router"));
    let log: Vec<String> = serve.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.ends_with("edit-config: too-big")),
        "{log:?}"
    );
}

#[test]
fn edit_config_lock_holds_the_target_for_edit_validate_and_commit() {
    let serve = Serve::start(&[]);
    serve
        .run(&[
            "edit-config",
            "--target",
            "candidate",
            "--config",
            &hostname("locked-edit"),
            "--lock",
            "--validate",
            "--commit",
        ])
        .ok();
    assert!(serve.run(&["get-config"]).stdout.contains("locked-edit"));
    // Nothing stays locked after the command.
    let other = serve.library_client();
    other.call(&Lock::new(Datastore::Candidate)).unwrap();
    // While someone else holds the lock, --lock fails before editing anything.
    let out = serve.run(&[
        "edit-config",
        "--target",
        "candidate",
        "--config",
        &hostname("never"),
        "--lock",
    ]);
    out.code(1);
    assert!(out.stderr.contains("lock-denied"), "{}", out.stderr);
    other.call(&Unlock::new(Datastore::Candidate)).unwrap();
    assert!(!serve
        .run(&["get-config", "--source", "candidate"])
        .stdout
        .contains("never"));
    // --commit is for candidate only, refused before connecting.
    let out = serve.run(&["edit-config", "--config", &hostname("x"), "--commit"]);
    out.code(2);
    assert!(out.stderr.contains("--target candidate"));
}

#[test]
fn commit_lock_locks_running_around_the_commit() {
    let serve = Serve::start(&[]);
    serve
        .run(&[
            "edit-config",
            "--target",
            "candidate",
            "--config",
            &hostname("c"),
        ])
        .ok();
    let holder = serve.library_client();
    holder.call(&Lock::new(Datastore::Running)).unwrap();
    serve.run(&["commit", "--lock"]).code(1);
    holder.call(&Unlock::new(Datastore::Running)).unwrap();
    serve.run(&["commit", "--lock"]).ok();
    assert!(serve
        .run(&["get-config"])
        .stdout
        .contains("<hostname>c</hostname>"));
    holder.call(&Lock::new(Datastore::Running)).unwrap();
}

#[test]
fn batch_runs_every_line_in_one_session() {
    let serve = Serve::start(&[]);
    let dir = TempDir::new("batch");
    let change = dir.file("change.xml", &hostname("batched"));
    let script = dir.file(
        "script.txt",
        &format!(
            "# lock, edit, check, commit, unlock\n\
             lock --target candidate\n\n\
             edit-config --target candidate --config {}\n\
             validate --source candidate\n\
             get-config --source candidate --subtree '<system/>'\n\
             commit\n\
             unlock --target candidate\n",
            change.display()
        ),
    );
    let out = serve.run(&["batch", script.to_str().unwrap()]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!(
            "<ok/>\n<ok/>\n<ok/>\n<system xmlns=\"{NS}\"><hostname>batched</hostname></system>\n<ok/>\n<ok/>\n"
        )
    );
    // One session: the lock taken on the first line was still ours on the last.
    let sessions: std::collections::BTreeSet<String> = serve
        .log
        .try_iter()
        .filter_map(|l| l.split(':').next().map(str::to_owned))
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(serve.run(&["get-config"]).stdout.contains("batched"));
}

#[test]
fn batch_from_stdin_stops_at_the_first_failure_unless_told_to_keep_going() {
    let serve = Serve::start(&[]);
    let lines = "lock\nlock\nunlock\n";
    let out = run_with_stdin(&mut serve.cmd(&["batch", "-"]), lines);
    out.code(1);
    assert_eq!(out.stdout, "<ok/>\n", "stopped after line 2");
    assert!(
        out.stderr
            .starts_with("batch line 2: rpc-error: error lock-denied"),
        "{}",
        out.stderr
    );
    let out = run_with_stdin(&mut serve.cmd(&["batch", "--keep-going", "-"]), lines);
    out.code(1);
    assert_eq!(out.stdout, "<ok/>\n<ok/>\n", "line 3 ran too");
}

#[test]
fn a_bad_batch_line_fails_before_connecting() {
    let serve = Serve::start(&[]);
    for (lines, needle) in [
        ("lock\nfrobnicate\n", "batch line 2"),
        ("get-config --subtree '<system/>\n", "unbalanced quotes"),
        ("serve\n", "cannot run in a batch"),
        (
            "edit-config --config /nonexistent.xml\n",
            "cannot read --config",
        ),
    ] {
        let out = run_with_stdin(&mut serve.cmd(&["batch", "-"]), lines);
        out.code(2);
        assert!(out.stderr.contains(needle), "{lines:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    assert_eq!(serve.log.try_iter().count(), 0, "no request was sent");
}
