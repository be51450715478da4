#![no_main]
//! `cargo +nightly fuzz run roundtrip`: see `netconf_tests::fuzz_harness::roundtrip`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::roundtrip(data));
