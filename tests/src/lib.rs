//! The testkit shared by the cross-adapter tests: certificates, adversarial TLS peers,
//! and an in-memory `Pair` of sessions driven by a virtual clock.

pub mod certs;
pub mod fuzz_harness;
pub mod hostile_tls;
pub mod pair;

/// The README's examples, compiled as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
