#![no_main]
//! `cargo +nightly fuzz run client_session`: see `netconf_tests::fuzz_harness::client_session`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::client_session(data));
