//! The testkit shared by the cross-adapter tests: certificates, adversarial TLS peers,
//! and an in-memory `Pair` of sessions driven by a virtual clock.

pub mod certs;
pub mod deadline;
pub mod discarding;
pub mod fuzz_harness;
pub mod hostile_tls;
pub mod memory;
pub mod pair;

/// Runs each generic test `async fn name<R: netconf_async::Runtime>()` on both async
/// runtimes: a `#[test]` per name in a module `tokio` (a 2-worker multi-thread runtime) and
/// one in a module `smol`, each wrapped in `guarded(..)`, a deadlock guard the calling file
/// defines (`async fn guarded<T>(body: impl Future<Output = T>) -> T`; async-io's timer
/// works on both runtimes). The calling crate needs `tokio`, `smol`, `netconf-tokio` and
/// `netconf-smol`.
#[macro_export]
macro_rules! on_each_runtime {
    ($($test:ident),* $(,)?) => {
        mod tokio {
            $(#[test]
            fn $test() {
                let rt = ::tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(super::guarded(super::$test::<netconf_tokio::Tokio>()));
            })*
        }
        mod smol {
            $(#[test]
            fn $test() {
                ::smol::block_on(super::guarded(super::$test::<netconf_smol::Smol>()));
            })*
        }
    };
}

/// The README's examples, compiled as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
