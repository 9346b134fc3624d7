//! Library errors. Each carries the path it concerns; none carries key bytes.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a NATS Streaming file store: {why}")]
    NotAStore { path: PathBuf, why: String },
    #[error(transparent)]
    Key(#[from] crate::crypto::keys::KeyError),
    /// The server's configuration file (--config) cannot be read or the
    /// server would reject it; the message points at file, line and column.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("the store {path} is locked by a running process (pid {pid}); stop the server first")]
    Locked { path: PathBuf, pid: i64 },
    #[error("{0}")]
    Refused(String),
    /// The temporary directory (`$TMPDIR`) failed a spill file.
    #[error("{}", crate::report::words::temp_dir_failed(.0))]
    TempDir(crate::ops::spill::TempDirFailed),
    /// A clustered node's Raft log cannot be read or locked.
    #[error(transparent)]
    Raft(#[from] crate::format::raft::RaftError),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
