//! Clustered nodes' Raft log (`<cluster_log_path>/<cluster id>/raft.log`):
//! a bbolt 1.3.x database whose `logs` bucket maps 8-byte big-endian indexes
//! to go-msgpack raft.Log values; LogCommand Data may hold the file store's
//! envelope under `SHA-256(key material)`.
//!
//! Modules: `bbolt` (the file: read, check, write), `msgpack` (the value),
//! `entry` (entries in index order and their Data kind), `rewrite` (a new
//! file with changed Data), `lock` (the server's flock), `layout` (paths),
//! `time` (AppendedAt as text). Elsewhere by layer: the raft key and what
//! the server serves in `crypto::raft`, counts in `ops::raft_census`, the
//! `--list` lines in `report::raft_list`. This layer reads and writes
//! bytes; what an entry's Data is (plaintext, AES, ChaCha) is judged in
//! `crypto::raft::data_kind`.
//!
//! The bbolt and msgpack code is written here, not taken from crates:
//! `bbolt-rs` 1.3.10 reads pages through unchecked pointer arithmetic on the
//! map (only a `debug_assert` guards a page id), so a hostile page id reads
//! out of bounds instead of failing; it also brings clap, bumpalo and fs4
//! and cannot choose the page size of a file it writes. `rmp` has no byte
//! spans for values, and its writer uses str8, which go-msgpack's old-spec
//! mode never writes.

pub mod bbolt;

pub mod entry;
pub mod error;
pub mod layout;

pub mod lock;
pub mod msgpack;
pub mod rewrite;
pub mod time;

pub use entry::{BadEntry, EntryView, RaftLog};
pub use error::RaftError;
pub use lock::RaftLogLock;
pub use rewrite::{rewrite_log, DataEdit, RewriteStats};
