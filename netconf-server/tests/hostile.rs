//! Requests built to hurt: nesting far past the limit, and edits of many siblings.

mod common;

use common::{edit, Harness, NS};
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::operations::{DefaultOperation, ErrorOption};
use netconf_server::{edit as edit_rule, tree, Datastore, Element};

/// A 60,000-deep `<config>` (about 360 KB): answered with `too-big`, and the server keeps
/// answering. The test thread's 2 MiB stack would not survive a recursive walk of it.
#[test]
fn a_60000_deep_request_is_refused_with_too_big() {
    let mut h = Harness::new("<system><hostname>r1</hostname></system>");
    let depth = 60_000;
    let deep = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let e = h.errors(
        1,
        &edit("running", &format!("<x xmlns=\"{NS}\">{deep}</x>")),
    );
    assert_eq!(e[0].tag, ErrorTag::TooBig);
    assert_eq!(e[0].error_type, ErrorType::Rpc);
    // The same as a filter, and unbalanced.
    let e = h.errors(
        1,
        &format!(
            "<get-config><source><running/></source><filter>{}</filter></get-config>",
            "<a>".repeat(depth)
        ),
    );
    assert_eq!(e[0].tag, ErrorTag::TooBig);
    // Nothing changed, and the next request is served.
    assert!(h.config(Datastore::Running).contains("r1"));
    h.ok(2, "<lock><target><running/></target></lock>");
}

fn list(n: usize, value: &str) -> Element {
    let mut entries = String::new();
    for i in 0..n {
        entries.push_str(&format!("<e><name>k{i}</name><v>{value}</v></e>"));
    }
    tree::parse(&format!("<l xmlns=\"{NS}\">{entries}</l>"), &[], 8).unwrap()
}

/// The work counted for an edit of n list entries against n list entries.
fn work(n: usize) -> u64 {
    let mut target = list(n, "old");
    let change = list(n, "new");
    let outcome = edit_rule::apply(
        &mut target,
        &change,
        DefaultOperation::Merge,
        ErrorOption::StopOnError,
    );
    assert!(outcome.errors.is_empty());
    assert_eq!(target, change);
    outcome.work
}

/// Counts, not timings: the old edit compared every edit entry with every data entry
/// (n² = 10⁸ comparisons at n = 10,000); indexed, the count grows linearly.
#[test]
fn an_edit_of_n_siblings_against_n_siblings_is_linear() {
    let small = work(1_000);
    let large = work(10_000);
    eprintln!("edit work: n=1000 -> {small}, n=10000 -> {large}");
    assert!(
        large <= 12 * small,
        "10x the entries cost {large} vs {small}"
    );
    assert!(large < 20 * 10_000, "{large} operations for 10,000 entries");
}

/// Filters and change notifications over many siblings stay linear too: a config change of
/// 20,000 entries and a filter naming 20,000 keys finish in a debug build's test budget
/// only if neither compares every entry with every other.
#[test]
fn wide_filters_and_diffs_are_indexed() {
    let n = 20_000;
    let mut h = Harness::with_server(netconf_server::Server::new(
        netconf_server::MemoryBackend::new(list(n, "old")),
    ));
    let mut entries = String::new();
    for i in (0..n).rev() {
        entries.push_str(&format!("<e><name>k{i}</name><v>new</v></e>"));
    }
    h.ok(
        1,
        &edit("running", &format!("<l xmlns=\"{NS}\">{entries}</l>")),
    );
    let notes = h.notifications();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].matches("<edit>").count(),
        32,
        "listed edits are capped"
    );
    let mut keys = String::new();
    for i in 0..n {
        keys.push_str(&format!("<e><name>k{i}</name><v/></e>"));
    }
    let data = h.data(
        1,
        &format!("<get-config><source><running/></source><filter><l xmlns=\"{NS}\">{keys}</l></filter></get-config>"),
    );
    assert_eq!(data.matches("<v>new</v>").count(), n);
}
