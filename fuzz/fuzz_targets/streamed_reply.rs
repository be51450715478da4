#![no_main]
//! `cargo +nightly fuzz run streamed_reply`: see `netconf_tests::fuzz_harness::streamed_reply`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::streamed_reply(data));
