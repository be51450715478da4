#![forbid(unsafe_code)]
pub mod error;
pub mod operations;
pub mod xml;
