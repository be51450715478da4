#![no_main]
//! `cargo +nightly fuzz run server_session`: see `netconf_tests::fuzz_harness::server_session`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::server_session(data));
