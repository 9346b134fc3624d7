//! The layout of a store directory: which channels, slices and side files
//! exist, in the order the tool reports them. Nothing here reads records.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const SERVER_FILE: &str = "server.dat";
pub const CLIENTS_FILE: &str = "clients.dat";
pub const SUBS_FILE: &str = "subs.dat";
pub const LOCK_FILE: &str = ".rootdir.lck";
pub const TRUNCATE_LOCK_FILE: &str = ".truncate.lck";

#[derive(Debug, Clone)]
pub struct SliceFiles {
    /// N of `msgs.N.dat`.
    pub n: u64,
    pub dat: PathBuf,
    /// `msgs.N.idx` if present.
    pub idx: Option<PathBuf>,
    /// An archived slice: `msgs.N.dat.bak` with its `msgs.N.idx.bak` (if
    /// present), as the server's slice archiving renames them. The server
    /// never reads it again; only the rewrites handle it (see
    /// `StoreLayout::with_archived_slices`).
    pub archived: bool,
}

impl SliceFiles {
    /// `msgs.N.idx` beside `msgs.N.dat`, whether or not it exists. Built from
    /// the file name alone: the channel's directory may itself end in `.dat`.
    pub fn idx_path(&self) -> PathBuf {
        match (&self.idx, self.archived) {
            (Some(p), _) => p.clone(),
            (None, false) => self.dat.with_extension("idx"),
            // The server's rename appends `.bak` to `msgs.N.idx`.
            (None, true) => self.dat.with_file_name(format!("msgs.{}.idx.bak", self.n)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChannelLayout {
    /// The directory name: the channel name, as raw bytes.
    pub name: Vec<u8>,
    pub dir: PathBuf,
    pub slices: Vec<SliceFiles>,
    pub subs: Option<PathBuf>,
    /// `msgs.N.idx` without a `msgs.N.dat`.
    pub orphan_idx: Vec<PathBuf>,
    /// `*.bak`: slices being archived; the server does not read them.
    pub bak: Vec<PathBuf>,
    /// The archived slices among `bak`: each regular file `msgs.N.dat.bak`
    /// with its `msgs.N.idx.bak` when there is one, by N. Not slices the
    /// server loads: only the rewrites convert them.
    pub archived: Vec<SliceFiles>,
    /// Files named like `msgs.*.dat` that the server cannot parse.
    pub bad_names: Vec<PathBuf>,
    /// Leftovers of an interrupted stanctl run: `*.stanctl-tmp` files and
    /// a one-pass rewrite's staging directory (`STAGING_DIR`).
    pub temp: Vec<PathBuf>,
}

impl ChannelLayout {
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

#[derive(Debug, Clone)]
pub struct StoreLayout {
    pub root: PathBuf,
    pub server_dat: PathBuf,
    pub clients_dat: Option<PathBuf>,
    pub lock_file: Option<PathBuf>,
    /// Present only while a server runs with truncate-on-unexpected-EOF.
    pub truncate_lock: bool,
    pub channels: Vec<ChannelLayout>,
}

/// Suffix of the files stanctl writes before renaming them into place.
pub const TEMP_SUFFIX: &str = ".stanctl-tmp";

/// Where a one-pass rewrite stages the new slices before it puts them in
/// place: `OUT/.stanctl-staging/<channel>/` with `--output`, and
/// `<channel>/.stanctl-staging/` in place (`--one-pass`). In a channel
/// directory the server skips it (it recovers only `msgs.N.dat` files and
/// skips subdirectories), so it is listed with the leftovers (`temp`).
pub const STAGING_DIR: &str = ".stanctl-staging";

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl StoreLayout {
    pub fn discover(root: &Path) -> Result<StoreLayout> {
        let meta = match std::fs::metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotAStore {
                    path: root.to_path_buf(),
                    why: "it does not exist".into(),
                })
            }
            r => r.map_err(|e| io_err(root, e))?,
        };
        if !meta.is_dir() {
            return Err(Error::NotAStore {
                path: root.to_path_buf(),
                why: "it is not a directory".into(),
            });
        }
        let server_dat = root.join(SERVER_FILE);
        // Something that is not a file there fails later, when it is read.
        if !server_dat.exists() {
            return Err(Error::NotAStore {
                path: root.to_path_buf(),
                why: format!("it has no {SERVER_FILE}"),
            });
        }
        let clients = root.join(CLIENTS_FILE);
        let lock = root.join(LOCK_FILE);
        let mut channels = Vec::new();
        let rd = std::fs::read_dir(root).map_err(|e| io_err(root, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| io_err(root, e))?;
            // The server recovers every directory as a channel. A symlink is
            // read through but never written through (see rewrite).
            let ft = ent.file_type().map_err(|e| io_err(&ent.path(), e))?;
            let is_dir = ft.is_dir() || (ft.is_symlink() && ent.path().is_dir());
            if !is_dir {
                continue;
            }
            channels.push(Self::channel(ent.file_name(), ent.path())?);
        }
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(StoreLayout {
            root: root.to_path_buf(),
            server_dat,
            clients_dat: clients.exists().then_some(clients),
            lock_file: lock.exists().then_some(lock),
            truncate_lock: root.join(TRUNCATE_LOCK_FILE).exists(),
            channels,
        })
    }

    fn channel(name: OsString, dir: PathBuf) -> Result<ChannelLayout> {
        let mut slices: Vec<SliceFiles> = Vec::new();
        let mut idx_seen: Vec<(u64, PathBuf)> = Vec::new();
        let mut ch = ChannelLayout {
            name: name.as_bytes().to_vec(),
            dir: dir.clone(),
            slices: Vec::new(),
            subs: None,
            orphan_idx: Vec::new(),
            bak: Vec::new(),
            archived: Vec::new(),
            bad_names: Vec::new(),
            temp: Vec::new(),
        };
        let rd = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| io_err(&dir, e))?;
            let path = ent.path();
            let fname = ent.file_name();
            let fname = fname.as_bytes();
            // A directory is skipped unless it bears a store file's name: the
            // server would fail on it, and so must we (when it is read).
            if fname == STAGING_DIR.as_bytes() {
                // A one-pass rewrite's staging, left by a crash.
                ch.temp.push(path);
                continue;
            }
            let store_name = fname == SUBS_FILE.as_bytes()
                || (fname.starts_with(b"msgs.")
                    && (fname.ends_with(b".dat") || fname.ends_with(b".idx")));
            if path.is_dir() && !store_name {
                continue;
            }
            if fname == SUBS_FILE.as_bytes() {
                ch.subs = Some(path);
            } else if fname.ends_with(TEMP_SUFFIX.as_bytes()) {
                ch.temp.push(path);
            } else if fname.ends_with(b".bak") {
                ch.bak.push(path);
            } else if let Some(mid) = fname.strip_prefix(b"msgs.") {
                if let Some(num) = mid.strip_suffix(b".dat") {
                    match parse_num(num) {
                        Some(n) => slices.push(SliceFiles {
                            n,
                            dat: path,
                            idx: None,
                            archived: false,
                        }),
                        None => ch.bad_names.push(path),
                    }
                } else if let Some(num) = mid.strip_suffix(b".idx") {
                    if let Some(n) = parse_num(num) {
                        idx_seen.push((n, path));
                    }
                }
            }
        }
        slices.sort_by_key(|s| s.n);
        for (n, p) in idx_seen {
            match slices.binary_search_by_key(&n, |s| s.n) {
                Ok(i) => slices[i].idx = Some(p),
                Err(_) => ch.orphan_idx.push(p),
            }
        }
        ch.slices = slices;
        ch.bak.sort();
        ch.archived = archived_slices(&ch.bak);
        ch.orphan_idx.sort();
        ch.temp.sort();
        Ok(ch)
    }
}

impl StoreLayout {
    /// The store as the rewrites see it: each channel's archived slices
    /// appended to its slices (flagged `archived`), so the one pipeline that
    /// checks and writes slices converts them with the same rule.
    pub fn with_archived_slices(mut self) -> StoreLayout {
        for ch in &mut self.channels {
            let archived = std::mem::take(&mut ch.archived);
            ch.slices.extend(archived);
        }
        self
    }
}

/// `msgs.N.dat.bak` (a regular file: a FIFO or device is left alone) paired
/// with `msgs.N.idx.bak` by N, the way the server pairs a live slice.
fn archived_slices(bak: &[PathBuf]) -> Vec<SliceFiles> {
    let num = |p: &Path, ext: &[u8]| {
        let name = p.file_name()?.as_bytes();
        parse_num(name.strip_prefix(b"msgs.")?.strip_suffix(ext)?)
    };
    let regular = |p: &&PathBuf| std::fs::metadata(p).is_ok_and(|m| m.is_file());
    let mut out: Vec<SliceFiles> = bak
        .iter()
        .filter(regular)
        .filter_map(|p| {
            Some(SliceFiles {
                n: num(p, b".dat.bak")?,
                dat: p.clone(),
                idx: None,
                archived: true,
            })
        })
        .collect();
    out.sort_by_key(|s| s.n);
    for p in bak.iter().filter(regular) {
        if let Some(n) = num(p, b".idx.bak") {
            if let Some(s) = out.iter_mut().find(|s| s.n == n && s.idx.is_none()) {
                s.idx = Some(p.clone());
            }
        }
    }
    out
}

/// Parses N the way Go's `strconv.ParseInt(s, 10, 64)` would accept it.
fn parse_num(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b)
        .ok()?
        .parse::<i64>()
        .ok()
        .map(|v| v as u64)
}

/// A read-only view of a file: mapped when it is non-empty.
pub struct Mapped {
    map: Option<memmap2::Mmap>,
    pub path: PathBuf,
}

impl Mapped {
    pub fn open(path: &Path) -> Result<Mapped> {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO planted in the store must not hang
        // (it has no effect on regular files); anything but a regular file
        // is refused before it is read.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let meta = f.metadata().map_err(|e| io_err(path, e))?;
        if !meta.is_file() {
            return Err(io_err(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file; move it out of the store",
                ),
            ));
        }
        let len = meta.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the store is offline (the lock check tells the user
            // otherwise); a concurrent truncation would be a SIGBUS, not UB
            // that we act upon silently.
            let m = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| io_err(path, e))?;
            #[cfg(unix)]
            let _ = m.advise(memmap2::Advice::Sequential);
            Some(m)
        };
        Ok(Mapped {
            map,
            path: path.to_path_buf(),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Unmaps from this process the whole pages before `offset`, so a
    /// sequential reader's resident memory stays bounded instead of growing
    /// to the size of the file. The bytes stay valid: the pages stay in the
    /// page cache and a later read maps them back (a minor fault).
    pub fn release_before(&self, offset: u64) {
        let Some(m) = &self.map else { return };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        let end = offset.min(m.len() as u64) / page * page;
        if end > 0 {
            // SAFETY: a read-only shared mapping of a file: MADV_DONTNEED
            // only drops page-table entries, the contents are read again
            // from the file on the next access (never zero-filled, which only
            // happens to private anonymous memory).
            let _ = unsafe {
                m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, end as usize)
            };
        }
    }

    /// Maps the pages of `[from, from + len)` in one call
    /// (`MADV_POPULATE_READ`, Linux 5.14+) instead of one page fault per
    /// few pages as a reader first touches them: a sequential reader
    /// populates the window it is about to read when it gives back the one
    /// behind it (`release_before`), so what it holds mapped stays the same.
    /// Pages not in the page cache are read from the file. Best effort:
    /// without the call (older kernels, other systems) the reader faults the
    /// pages in as before; an error (a file cut short under us) is left to
    /// the read itself.
    pub fn populate(&self, from: u64, len: u64) {
        let Some(m) = &self.map else { return };
        #[cfg(target_os = "linux")]
        {
            use std::sync::atomic::{AtomicBool, Ordering};
            static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
            if UNSUPPORTED.load(Ordering::Relaxed) {
                return;
            }
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
            let total = m.len() as u64;
            let start = from.min(total) / page * page;
            let end = from.saturating_add(len).min(total);
            if start >= end {
                return;
            }
            // SAFETY: the range lies inside this live mapping (start is
            // page-aligned, as madvise requires); MADV_POPULATE_READ only
            // faults the file's pages in, as reading them would, and changes
            // no byte.
            let r = unsafe {
                libc::madvise(
                    m.as_ptr().add(start as usize) as *mut libc::c_void,
                    (end - start) as usize,
                    libc::MADV_POPULATE_READ,
                )
            };
            if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                UNSUPPORTED.store(true, Ordering::Relaxed);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (m, from, len);
    }
}

/// Path relative to the store root, for reports.
pub fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}
