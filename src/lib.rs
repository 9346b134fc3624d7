//! stanctl: offline maintenance of NATS Streaming file datastores.
//!
//! See the code map in README.md. Bottom up:
//! - `format`: the on-disk file store (records, index, protobuf views, CRC,
//!   side files, directory layout, lock). Reads and writes bytes; judges nothing.
//! - `crypto`: AEAD backends, the envelope, keys and their derivation, nonces.
//! - `ops`: the operations (inspect, verify, rewrite) over the scanner; they
//!   take options, keys and a progress sink, and return typed reports.
//! - `report`: every word the tool prints: tables, `--list`, JSON.
//! - `config`: the server's configuration file (NATS conf format), read as
//!   the server reads it; used by the command layer, never by the operations.
//! - `cli`: arguments, key loading, one command per file, exit codes.

pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod format;
pub mod ops;
pub mod report;

pub use error::{Error, Result};
