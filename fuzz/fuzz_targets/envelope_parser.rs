#![no_main]
//! `cargo +nightly fuzz run envelope_parser`: see `netconf_tests::fuzz_harness::envelope_parser`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::envelope_parser(data));
