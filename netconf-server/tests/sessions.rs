//! What one session does that others see: locks, candidate changes and confirmed commits
//! across sessions, the confirmed-commit deadline, and what a session's end releases.

mod common;

use common::{edit, Harness, NS};
use netconf_proto::message::ErrorTag;
use netconf_server::Datastore;

const SEED: &str = "<system><hostname>r1</hostname></system>";

fn host(name: &str) -> String {
    format!("<system xmlns=\"{NS}\"><hostname>{name}</hostname></system>")
}

const LOCK_CANDIDATE: &str = "<lock><target><candidate/></target></lock>";
const UNLOCK_CANDIDATE: &str = "<unlock><target><candidate/></target></unlock>";

#[test]
fn a_lock_keeps_other_sessions_out_until_unlocked() {
    let mut h = Harness::new(SEED);
    h.ok(1, LOCK_CANDIDATE);
    let e = h.errors(2, LOCK_CANDIDATE);
    assert_eq!(e[0].tag, ErrorTag::LockDenied);
    assert_eq!(
        e[0].info.as_ref().unwrap().as_str(),
        "<session-id>1</session-id>"
    );
    assert_eq!(
        h.error_tag(1, LOCK_CANDIDATE),
        ErrorTag::LockDenied,
        "not twice either"
    );
    let e = h.errors(2, &edit("candidate", &host("x")));
    assert_eq!(e[0].tag, ErrorTag::InUse);
    assert_eq!(h.error_tag(2, "<discard-changes/>"), ErrorTag::InUse);
    assert_eq!(h.error_tag(2, "<commit/>"), ErrorTag::InUse);
    assert_eq!(h.error_tag(2, UNLOCK_CANDIDATE), ErrorTag::OperationFailed);
    // Running is not locked.
    h.ok(2, &edit("running", &host("y")));
    h.ok(1, &edit("candidate", &host("z")));
    h.ok(1, "<commit/>");
    h.ok(1, UNLOCK_CANDIDATE);
    h.ok(2, LOCK_CANDIDATE);
    assert_eq!(
        h.error_tag(2, "<unlock><target><running/></target></unlock>"),
        ErrorTag::OperationFailed
    );
}

#[test]
fn locks_end_with_their_session() {
    let mut h = Harness::new(SEED);
    h.ok(1, "<lock><target><running/></target></lock>");
    h.ok(1, LOCK_CANDIDATE);
    h.ok(1, &edit("candidate", &host("uncommitted")));
    assert_eq!(
        h.error_tag(2, "<lock><target><running/></target></lock>"),
        ErrorTag::LockDenied
    );
    h.server.session_ended(1, h.now);
    h.ok(2, "<lock><target><running/></target></lock>");
    // The candidate changes of the lock holder were discarded with its lock.
    assert_eq!(h.config(Datastore::Candidate), h.config(Datastore::Running));
    h.ok(2, LOCK_CANDIDATE);
}

#[test]
fn a_modified_candidate_cannot_be_locked() {
    let mut h = Harness::new(SEED);
    h.ok(1, &edit("candidate", &host("dirty")));
    let e = h.errors(2, LOCK_CANDIDATE);
    assert_eq!(e[0].tag, ErrorTag::LockDenied);
    assert_eq!(
        e[0].info.as_ref().unwrap().as_str(),
        "<session-id>0</session-id>"
    );
    h.ok(1, "<discard-changes/>");
    h.ok(2, LOCK_CANDIDATE);
    // Unlocking with changes made under the lock discards them.
    h.ok(2, &edit("candidate", &host("mine")));
    h.ok(2, UNLOCK_CANDIDATE);
    assert!(h.config(Datastore::Candidate).contains("r1"));
}

#[test]
fn a_confirmed_commit_rolls_back_at_its_deadline() {
    let mut h = Harness::new(SEED);
    h.ok(1, &edit("candidate", &host("new")));
    h.ok(
        1,
        "<commit><confirmed/><confirm-timeout>30</confirm-timeout></commit>",
    );
    assert!(h.config(Datastore::Running).contains("new"));
    assert_eq!(
        h.server.next_deadline(),
        Some(h.now + std::time::Duration::from_secs(30))
    );
    let notes = h.notifications();
    assert!(notes[0].contains("<netconf-config-change"));
    assert!(notes[1].contains("<confirm-event>start</confirm-event><timeout>30</timeout>"));
    h.advance(29);
    assert!(h.config(Datastore::Running).contains("new"), "not yet");
    h.advance(1);
    assert!(h.config(Datastore::Running).contains("r1"), "rolled back");
    assert_eq!(h.server.next_deadline(), None);
    let notes = h.notifications();
    assert!(
        notes[0].contains("<changed-by><server/></changed-by>"),
        "{notes:?}"
    );
    assert!(notes[1].contains("<confirm-event>timeout</confirm-event>"));
}

#[test]
fn a_confirming_commit_keeps_the_change_and_an_extension_moves_the_deadline() {
    let mut h = Harness::new(SEED);
    h.ok(1, &edit("candidate", &host("new")));
    h.ok(
        1,
        "<commit><confirmed/><confirm-timeout>10</confirm-timeout></commit>",
    );
    h.advance(5);
    h.ok(
        1,
        "<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>",
    );
    assert_eq!(
        h.server.next_deadline(),
        Some(h.now + std::time::Duration::from_secs(60))
    );
    h.advance(30);
    h.ok(1, "<commit/>");
    h.advance(3600);
    assert!(h.config(Datastore::Running).contains("new"));
    let events: Vec<String> = h
        .notifications()
        .into_iter()
        .filter(|n| n.contains("confirm-event"))
        .collect();
    assert!(
        events[0].contains(">start<")
            && events[1].contains(">extend<")
            && events[2].contains(">complete<")
    );
}

#[test]
fn without_persist_only_the_same_session_confirms_and_its_end_rolls_back() {
    let mut h = Harness::new(SEED);
    h.ok(1, &edit("candidate", &host("new")));
    h.ok(1, "<commit><confirmed/></commit>");
    assert_eq!(h.error_tag(2, "<commit/>"), ErrorTag::InUse);
    assert_eq!(h.error_tag(2, "<cancel-commit/>"), ErrorTag::InUse);
    h.server.session_ended(1, h.now);
    assert!(h.config(Datastore::Running).contains("r1"));
    assert_eq!(h.server.next_deadline(), None);
}

#[test]
fn persist_lets_another_session_confirm_or_cancel() {
    let mut h = Harness::new(SEED);
    h.ok(1, &edit("candidate", &host("new")));
    h.ok(1, "<commit><confirmed/><persist>tok</persist></commit>");
    h.server.session_ended(1, h.now);
    assert!(
        h.config(Datastore::Running).contains("new"),
        "outlives its session"
    );
    assert_eq!(h.error_tag(2, "<cancel-commit/>"), ErrorTag::InvalidValue);
    assert_eq!(
        h.error_tag(
            2,
            "<cancel-commit><persist-id>wrong</persist-id></cancel-commit>"
        ),
        ErrorTag::InvalidValue
    );
    h.ok(
        2,
        "<cancel-commit><persist-id>tok</persist-id></cancel-commit>",
    );
    assert!(h.config(Datastore::Running).contains("r1"));
    assert_eq!(
        h.error_tag(2, "<cancel-commit/>"),
        ErrorTag::OperationFailed
    );

    h.ok(3, &edit("candidate", &host("kept")));
    h.ok(3, "<commit><confirmed/><persist>p2</persist></commit>");
    h.server.session_ended(3, h.now);
    h.ok(4, "<commit><persist-id>p2</persist-id></commit>");
    h.advance(100_000);
    assert!(h.config(Datastore::Running).contains("kept"));
    assert_eq!(
        h.error_tag(
            4,
            "<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>"
        ),
        ErrorTag::InvalidValue
    );
}

#[test]
fn notifications_are_bounded_when_nobody_polls() {
    let options = netconf_server::Options::default().with_max_queued_notifications(3);
    let server = netconf_server::Server::with_options(
        netconf_server::MemoryBackend::new(common::doc(SEED)),
        options,
    );
    let mut h = Harness::with_server(server);
    for i in 0..5 {
        h.ok(1, &edit("running", &host(&format!("h{i}"))));
    }
    assert_eq!(h.server.notifications_dropped(), 2);
    assert_eq!(h.notifications().len(), 3);
}
