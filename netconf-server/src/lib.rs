#![forbid(unsafe_code)]
pub mod tree;
