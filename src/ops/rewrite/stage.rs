//! `--one-pass` in place: the check stages each slice's new files in its
//! channel's own `.stanctl-staging/` directory as it judges the records
//! (every envelope opened once); nothing of the store changes until every
//! record of every slice is checked and staged. Then the staged files are
//! made durable (one `syncfs` per file system) and swapped in slice by
//! slice by the write pass's own sequence (`rewrite_in_place`, `swap_in`),
//! with the staged files as its temp files.
//!
//! Why a directory per channel: the server recovers every directory of the
//! store's root as a channel (nats-streaming-server v0.25.6,
//! `FileStore.getChannelsDir`), so a staging directory there would be a
//! bogus channel; in a channel directory it skips subdirectories
//! (`newFileMsgStore` reads only `msgs.N.dat` files), and the rename into
//! place stays on the slice's own file system. The layout lists a leftover
//! one with the temp files (`ChannelLayout::temp`): inspect and verify name
//! it, and a rerun removes it first.
//!
//! The cost is disk: at the end of the check the new files of every slice
//! that changes are on disk beside the old ones, so the run first checks
//! the free space against an estimate (`space`) and refuses when it does
//! not fit.

use super::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

/// What staging needs on one file system, and what it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagingSpace {
    /// A directory on that file system (the store's root when its channels
    /// are on the same one).
    pub path: String,
    /// The estimate: the new files of every slice, plus `margin`.
    pub needed: u64,
    /// Left free on purpose, included in `needed`: 64 MiB and 1 % of the
    /// slices, so the server is not started on a full file system.
    pub margin: u64,
    /// Free space for an unprivileged user (`statvfs`' `f_bavail`).
    pub available: u64,
}

impl StagingSpace {
    pub fn fits(&self) -> bool {
        self.needed <= self.available
    }
}

const MARGIN_FIXED: u64 = 64 << 20;
/// The smallest record the estimate assumes in a slice without an index.
const MIN_RECORD: u64 = 16;

/// Whether the slice is staged: never through a symbolic link (an in-place
/// rewrite refuses a linked slice it would rewrite; see `symlink_refusals`).
pub(super) fn stages(ch: &ChannelLayout, sf: &SliceFiles) -> bool {
    !plan::is_symlink(&ch.dir)
        && !plan::is_symlink(&sf.dat)
        && !sf.idx.as_deref().is_some_and(plan::is_symlink)
}

/// The space `--one-pass` needs per file system: for each slice it may
/// stage, its new `.dat` (the old size; with encrypt, plus an envelope's
/// overhead per record, the records counted from the index or, without
/// one, as if every record were 16 bytes) and its new index, each rounded
/// up to 4 KiB, plus the margin. A clustered node's Raft log (`log`) counts
/// too: its new copy is written beside it while every slice is staged.
pub(super) fn space(
    layout: &StoreLayout,
    job: &Job,
    log: Option<&Path>,
) -> Result<Vec<StagingSpace>> {
    let round = |n: u64| n.div_ceil(4096) * 4096;
    let len = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).map_err(io(p));
    let grows = matches!(job.rule, Rule::Encrypt { .. });
    // By device, in the order met: the store's root first.
    let mut by_dev: Vec<(u64, PathBuf, u64)> = vec![(dev(&layout.root)?, layout.root.clone(), 0)];
    for ch in &layout.channels {
        let mut need = 0u64;
        for sf in ch.slices.iter().filter(|sf| stages(ch, sf)) {
            let dat = len(&sf.dat);
            let idx = sf.idx.as_deref().map_or(0, len);
            let records = match sf.idx {
                Some(_) => index::max_entries(idx as usize) as u64,
                None => dat.saturating_sub(VERSION_LEN as u64) / MIN_RECORD,
            };
            let idx_after = match writes_index(sf) {
                true => idx.max(index::file_len(records as usize)),
                false => 0,
            };
            let grow = if grows {
                records.saturating_mul(OVERHEAD as u64 + 2)
            } else {
                0
            };
            need = need
                .saturating_add(round(dat.saturating_add(grow)))
                .saturating_add(round(idx_after));
        }
        if need == 0 {
            continue;
        }
        let d = dev(&ch.dir)?;
        match by_dev.iter_mut().find(|(x, _, _)| *x == d) {
            Some(e) => e.2 = e.2.saturating_add(need),
            None => by_dev.push((d, ch.dir.clone(), need)),
        }
    }
    if let Some(log) = log {
        let need = round(len(log));
        let d = dev(log)?;
        match by_dev.iter_mut().find(|(x, _, _)| *x == d) {
            Some(e) => e.2 = e.2.saturating_add(need),
            None => by_dev.push((d, log.parent().unwrap_or(log).to_path_buf(), need)),
        }
    }
    by_dev
        .into_iter()
        // A file system with nothing to stage is not asked for a margin.
        .filter(|(_, _, need)| *need > 0)
        .map(|(_, p, need)| {
            let margin = MARGIN_FIXED + need / 100;
            Ok(StagingSpace {
                path: p.display().to_string(),
                needed: need.saturating_add(margin),
                margin,
                available: available(&p)?,
            })
        })
        .collect()
}

/// Free space on the file system of `p` for an unprivileged user.
fn available(p: &Path) -> Result<u64> {
    // Test-only (the `test-hooks` feature): pretend the file system has
    // this much free space.
    #[cfg(feature = "test-hooks")]
    if let Some(n) = std::env::var("STANCTL_TEST_FREE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Ok(n);
    }
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| io(p)(e.into()))?;
    // SAFETY: a NUL-terminated path and a zeroed struct statvfs fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io(p)(std::io::Error::last_os_error()));
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Before the check stages anything: the leftovers of an interrupted run
/// (temp files, staging directories) are removed, and each channel that
/// is not a link stages in its own `.stanctl-staging/`.
pub(super) fn begin(layout: &StoreLayout) -> Result<Staging> {
    remove_stale_temps(layout)?;
    let dirs = layout
        .channels
        .iter()
        .filter(|c| !plan::is_symlink(&c.dir))
        .map(|c| c.dir.join(STAGING_DIR))
        .collect();
    Ok(Staging::in_store(dirs))
}

/// Everything staged reaches the disk before the first swap: one `syncfs`
/// per file system holding a staging directory (the staged files were
/// only flushed; the writeback overlapped the check).
pub(super) fn make_durable(s: &Staging) -> Result<()> {
    let mut synced: Vec<u64> = Vec::new();
    for d in &s.in_place {
        let Ok(m) = fs::symlink_metadata(d) else {
            continue;
        };
        if m.is_dir() && !synced.contains(&m.dev()) {
            syncfs(d)?;
            synced.push(m.dev());
        }
    }
    Ok(())
}

/// After the swap: the staging directories (empty, or holding the staged
/// files of slices that were not swapped in) are removed.
pub(super) fn end(s: &mut Staging) -> Result<()> {
    for d in std::mem::take(&mut s.in_place) {
        if !fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        step();
        fs::remove_dir_all(&d).map_err(io(&d))?;
        if let Some(ch) = d.parent() {
            fsync_dir(ch)?;
        }
    }
    Ok(())
}
