#![forbid(unsafe_code)]
pub mod datastore;
pub mod defaults;
pub mod diff;
pub mod edit;
pub mod filter;
pub mod notification;
pub mod tree;
