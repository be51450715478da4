//! `netconf demo`: no arguments, nothing installed, every step printed (over SSH, then
//! TLS), exit 0, fast.

mod common;

use std::time::{Duration, Instant};

use common::{netconf, run};

#[test]
fn demo_runs_every_step_quickly() {
    let started = Instant::now();
    let out = run(netconf().arg("demo"));
    let took = started.elapsed();
    out.ok();
    assert_eq!(out.stderr, "");
    let steps = [
        "== 1. Keys, in memory",
        "SSH host key: ed25519, SHA256:",
        "== 2. A server on loopback, SSH and TLS",
        "SSH: listening on 127.0.0.1:",
        "TLS: listening on 127.0.0.1:",
        "== 3. Client connects over SSH",
        "session-id: 1",
        "base (2):",
        "standard (",
        "modules (",
        "netconf-cli-demo",
        "== 4. <get-config> running",
        "<description>spare</description>",
        "== 5. <create-subscription>",
        "== 6. <edit-config> on candidate, then <commit>",
        "commit: ok",
        "== 7. <get-config> running again",
        "<description>link to core</description>",
        "== 8. The notification the commit caused",
        "<netconf-config-change xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-notifications\">",
        "<username>admin</username>",
        "/demo:interfaces/demo:interface[demo:name='eth1']/demo:mtu",
        "== 9. A second client, over mutual TLS",
        "session-id 2 over TLS",
        "<description>link to core</description>",
        "== 10. <close-session>",
        "done in ",
    ];
    let mut at = 0;
    for step in steps {
        let found = out.stdout[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing (in order) from:\n{}", out.stdout));
        at += found + step.len();
    }
    assert!(took < Duration::from_secs(2), "the demo took {took:?}");
}
