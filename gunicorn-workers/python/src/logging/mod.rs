//! Logging on the Python side of a worker: the access-log record of each request
//! ([`access`]).

pub mod access;
