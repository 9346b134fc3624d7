//! Early writeback of new files: every writer of a new store or Raft-log
//! file starts the disk writes of what it has written as it goes, so the
//! fsync or `syncfs` that makes them durable does not write them all at the
//! end while nothing else happens.

use std::fs::File;

/// Written bytes after which a writer starts their writeback.
pub const STEP: u64 = 8 << 20;

/// Starts the writeback of `len` bytes of `f` from `offset` (`len` 0: to
/// the end) and returns at once (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`;
/// elsewhere nothing). Errors are ignored: this is a hint, and a failed
/// write shows in the fsync or `syncfs` that follows.
pub fn start(f: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: a valid open descriptor; the call only reads its arguments.
        let _ =
            unsafe { libc::sync_file_range(f.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, offset, len);
}
