#![no_main]
//! `cargo +nightly fuzz run tls_session`: see `netconf_tests::fuzz_harness::tls_session`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| netconf_tests::fuzz_harness::tls_session(data));
