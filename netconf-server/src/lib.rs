#![forbid(unsafe_code)]
pub mod edit;
pub mod filter;
pub mod tree;
