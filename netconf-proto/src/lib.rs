#![forbid(unsafe_code)]
pub mod error;
pub mod framing;
pub mod operations;
pub mod xml;
