//! Replays every fuzz corpus file through its harness function, on stable, under `cargo test`.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` are one-line calls into
//! [`netconf_tests::fuzz_harness`]; this test calls the same functions with every file in
//! `fuzz/corpus/<target>/` and, when present, `fuzz/artifacts/<target>/` (where cargo-fuzz
//! leaves crashing inputs). An input that crashed once therefore stays a regression test, and a
//! harness change that breaks a seed fails here first.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use netconf_tests::fuzz_harness;

/// A harness function: panics when an invariant breaks.
type Harness = fn(&[u8]);

/// Every target and the harness function it runs.
const TARGETS: [(&str, Harness); 7] = [
    ("framing_decoder", fuzz_harness::framing_decoder),
    ("client_session", fuzz_harness::client_session),
    ("server_session", fuzz_harness::server_session),
    ("envelope_parser", fuzz_harness::envelope_parser),
    ("tls_session", fuzz_harness::tls_session),
    ("roundtrip", fuzz_harness::roundtrip),
    ("streamed_reply", fuzz_harness::streamed_reply),
];

/// Corpus files (`<target>/<file name>`) that still crash because of an open bug in
/// `netconf-proto`. They are skipped here so the replay stays green; empty this list once the
/// bug is fixed (the test then replays them like every other file).
const KNOWN_CRASHES: &[&str] = &[];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn known_crash(target: &str, file: &Path) -> bool {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    KNOWN_CRASHES.contains(&format!("{target}/{name}").as_str())
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    let root = fuzz_dir();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, harness) in TARGETS {
        let corpus = files(&root.join("corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no seed files");
        let artifacts = files(&root.join("artifacts").join(target));
        for file in corpus.iter().chain(&artifacts) {
            if known_crash(target, file) {
                continue;
            }
            let data = fs::read(file).expect("read a corpus file");
            if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| harness(&data))) {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic)");
                let mut why = why.to_owned();
                if why.len() > 1500 {
                    let mut end = 1500;
                    while !why.is_char_boundary(end) {
                        end -= 1;
                    }
                    why.truncate(end);
                    why.push_str(" ...");
                }
                failures.push(format!("{}: {why}", file.display()));
            }
            replayed += 1;
        }
    }
    eprintln!(
        "replayed {replayed} fuzz inputs in {:.2?} ({} known crashes skipped)",
        started.elapsed(),
        KNOWN_CRASHES.len()
    );
    assert!(
        failures.is_empty(),
        "{} fuzz input(s) crash their harness:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every `KNOWN_CRASHES` entry names a real corpus file, so the list cannot silently go stale;
/// an entry that no longer crashes is reported (remove it).
#[test]
fn known_crashes_exist() {
    let root = fuzz_dir();
    for entry in KNOWN_CRASHES {
        let (target, _) = entry.split_once('/').expect("entries are <target>/<file>");
        let harness = TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, h)| *h)
            .unwrap_or_else(|| panic!("KNOWN_CRASHES entry {entry:?} names no target"));
        let path = root.join("corpus").join(entry);
        let data = fs::read(&path)
            .unwrap_or_else(|e| panic!("KNOWN_CRASHES entry {entry:?}: {}: {e}", path.display()));
        if panic::catch_unwind(AssertUnwindSafe(|| harness(&data))).is_ok() {
            eprintln!("{entry} no longer crashes: remove it from KNOWN_CRASHES");
        }
    }
}
