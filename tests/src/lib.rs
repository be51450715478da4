//! The testkit shared by the cross-adapter tests: certificates, adversarial TLS peers,
//! and an in-memory `Pair` of sessions driven by a virtual clock.

pub mod certs;
pub mod hostile_tls;
pub mod pair;
pub mod fuzz_harness;

/// The README's examples, compiled as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
