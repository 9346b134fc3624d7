//! The server's lock: a POSIX fcntl write lock on `.rootdir.lck`.

use crate::error::{Error, Result};
use crate::format::layout::LOCK_FILE;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

fn flock(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// The pid of another process holding a lock on the store, if any.
/// Never creates the lock file.
pub fn holder(root: &Path) -> Result<Option<i64>> {
    let path = root.join(LOCK_FILE);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let mut fl = flock(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a valid flock struct.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if r != 0 {
        return Err(Error::Io {
            path,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid as i64))
}

/// The store lock, held for as long as this value lives.
pub struct StoreLock {
    _file: File,
    pub path: PathBuf,
}

impl StoreLock {
    /// Takes the same lock the server takes, so neither a server nor another
    /// stanctl can open the store while we write.
    pub fn acquire(root: &Path) -> Result<StoreLock> {
        let path = root.join(LOCK_FILE);
        let existed = path.exists();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
        let fl = flock(libc::F_WRLCK as libc::c_short);
        // SAFETY: valid fd and a valid flock struct.
        let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) {
                let pid = holder(root)?.unwrap_or(-1);
                return Err(Error::Locked {
                    path: root.to_path_buf(),
                    pid,
                });
            }
            return Err(Error::Io { path, source: e });
        }
        if !existed {
            // The server opens this file for writing at start-up: a lock
            // file we create must belong to the store's owner, not to us.
            use std::os::unix::fs::MetadataExt;
            if let Ok(m) = std::fs::metadata(root.join(crate::format::layout::SERVER_FILE)) {
                let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
            }
        }
        Ok(StoreLock { _file: f, path })
    }
}
