//! Errors of the Raft log layer. None carries key bytes.

use super::bbolt::BoltError;
use super::msgpack::MsgpackError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("raft log: {0}")]
    Bolt(#[from] BoltError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("raft log {path} is locked by a running server; stop the node first")]
    Locked { path: PathBuf },
    #[error("raft log entry {index}: {source}")]
    Entry {
        index: u64,
        #[source]
        source: MsgpackError,
    },
    #[error("raft log: key {key} in bucket logs is not an 8-byte index")]
    BadIndexKey { key: String },
    #[error("raft log: bucket logs holds a nested bucket {key}")]
    NestedBucket { key: String },
    #[error("raft log: conf value {key} is {len} bytes, not 8")]
    BadStableValue { key: String, len: usize },
}

/// A traversal stopped by the file or by the caller's callback; lets
/// callbacks with their own error type run inside bbolt walks.
pub(crate) enum Stop<E> {
    Raft(RaftError),
    Caller(E),
}

impl<E> From<BoltError> for Stop<E> {
    fn from(e: BoltError) -> Self {
        Stop::Raft(RaftError::Bolt(e))
    }
}

impl<E: From<RaftError>> Stop<E> {
    pub(crate) fn into_caller(self) -> E {
        match self {
            Stop::Raft(e) => E::from(e),
            Stop::Caller(e) => e,
        }
    }
}
