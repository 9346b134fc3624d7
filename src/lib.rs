//! stanctl: offline maintenance of NATS Streaming file datastores.
//!
//! Layers, bottom up: `crc`, `proto`, `record`, `index` (file formats);
//! `keys`, `aead`, `envelope`, `nonce` (encryption); `store`, `lock`, `meta`
//! (the directory); `scan` (one pass over every slice, shared by all
//! commands); `inspect`, `verify`, `rewrite` (the operations); `cli`, `app`,
//! `render`, `progress` (the command line).

pub mod aead;
pub mod app;
pub mod cli;
pub mod crc;
pub mod envelope;
pub mod error;
pub mod index;
pub mod inspect;
pub mod keys;
pub mod lock;
pub mod meta;
pub mod nonce;
pub mod progress;
pub mod proto;
pub mod raft;
pub mod record;
pub mod render;
pub mod rewrite;
pub mod scan;
pub mod store;
pub mod verify;

pub use error::{Error, Result};
