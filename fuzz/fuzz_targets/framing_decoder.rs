#![no_main]
//! `cargo +nightly fuzz run framing_decoder`: see `netconf_tests::fuzz_harness::framing_decoder`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::framing_decoder(data));
