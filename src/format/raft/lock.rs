//! The running server's lock on its Raft log: bbolt takes
//! `flock(LOCK_EX | LOCK_NB)` on `raft.log` when it opens it read-write
//! (`bolt_unix.go`), so holding the same lock keeps the node from starting
//! on the file while we read or replace it.

use super::error::RaftError;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct RaftLogLock {
    _file: File,
    pub path: PathBuf,
}

impl RaftLogLock {
    /// Takes the exclusive lock without waiting; `Locked` if a server (or
    /// another stanctl) has the file open through bbolt. Never creates it.
    pub fn acquire(path: &Path) -> Result<RaftLogLock, RaftError> {
        let file = File::open(path).map_err(|source| RaftError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: a valid, open file descriptor.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(RaftError::Locked {
                    path: path.to_path_buf(),
                });
            }
            return Err(RaftError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
        Ok(RaftLogLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }
}
