//! Read-only access to a bbolt file through a memory map: meta selection
//! and page lookup with every bound checked. Buckets and traversal are in
//! `bucket.rs`.

use super::error::BoltError;
use super::meta::{self, Meta, MetaProblem};
use super::page::{freelist_ids, NodePage, PageHeader, PageOrigin, PAGE_HEADER_SIZE};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const MIN_PAGE_SIZE: u32 = 1024;
const MAX_PAGE_SIZE: u32 = 1 << 24;

/// Bytes of pages handed out (`page_span`) after which the mapped file's
/// pages are given back to the kernel (see `Db::note_read`): a traversal
/// reads every page of the log once, and each page it touched would
/// otherwise stay resident until the end (a 328 MB log was 320 MiB of RSS).
const RELEASE_EVERY: u64 = 8 << 20;

enum Bytes {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An open bbolt database, read-only.
pub struct Db {
    bytes: Bytes,
    page_size: usize,
    meta: Meta,
    meta_page: usize,
    metas: [Result<Meta, MetaProblem>; 2],
    /// Bytes handed out by `page_span` since the pages were last given back.
    read_since_release: AtomicU64,
}

impl Db {
    /// Maps the file read-only. The caller should hold the Raft log lock
    /// (`raft::lock`) so no server writes the file while it is mapped.
    pub fn open(path: &Path) -> Result<Db, BoltError> {
        let io = |source| BoltError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < (PAGE_HEADER_SIZE + meta::META_SIZE) as u64 {
            return Err(BoltError::FileTooSmall { len });
        }
        // SAFETY: the map is read-only; the file is not modified while
        // mapped as long as the caller holds the lock the server takes.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Db::from_bytes_inner(Bytes::Map(map))
    }

    /// A database held in memory (tests, fuzzing).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Db, BoltError> {
        if bytes.len() < PAGE_HEADER_SIZE + meta::META_SIZE {
            return Err(BoltError::FileTooSmall {
                len: bytes.len() as u64,
            });
        }
        Db::from_bytes_inner(Bytes::Owned(bytes))
    }

    fn from_bytes_inner(bytes: Bytes) -> Result<Db, BoltError> {
        let b: &[u8] = match &bytes {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        };
        let m0 = Meta::parse(b);
        // bbolt takes the page size from meta 0 if it validates, else
        // searches for meta 1 at every page size from 1 KiB to 16 MiB.
        let page_size = match m0.and_then(|m| m.validate().map(|()| m)) {
            Ok(m) => m.page_size,
            Err(e0) => {
                let found = (0..=14).map(|i| 1024u32 << i).find(|&ps| {
                    b.get(ps as usize..)
                        .and_then(|rest| Meta::parse(rest).ok())
                        .is_some_and(|m| m.validate().is_ok() && m.page_size == ps)
                });
                match found {
                    Some(ps) => ps,
                    None => {
                        let e1 = b
                            .get(4096..)
                            .map_or(Err(MetaProblem::Missing), Meta::parse)
                            .and_then(|m| m.validate());
                        return Err(BoltError::NoValidMeta {
                            meta0: e0,
                            meta1: e1.err().unwrap_or(MetaProblem::Missing),
                        });
                    }
                }
            }
        };
        if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(BoltError::BadPageSize(page_size));
        }
        let m1 = b
            .get(page_size as usize..)
            .map_or(Err(MetaProblem::Missing), Meta::parse);
        let (meta_page, meta) = meta::choose(&m0, &m1)
            .map_err(|[meta0, meta1]| BoltError::NoValidMeta { meta0, meta1 })?;
        if meta.page_size != page_size {
            return Err(BoltError::PageSizeMismatch {
                which: meta_page,
                found: meta.page_size,
                expected: page_size,
            });
        }
        Ok(Db {
            bytes,
            page_size: page_size as usize,
            meta,
            meta_page,
            metas: [m0, m1],
            read_since_release: AtomicU64::new(0),
        })
    }

    /// Counts `len` bytes of pages read; past `RELEASE_EVERY`, unmaps every
    /// page of the file from this process. The bytes stay valid (slices
    /// handed out keep pointing into the mapping): the pages stay in the
    /// page cache and the next read of one maps it back (a minor fault), so
    /// a page read again (a branch near the root) costs a fault, not I/O.
    /// Resident memory then stays near `RELEASE_EVERY` whatever the size of
    /// the log, instead of growing to it.
    fn note_read(&self, len: u64) {
        let Bytes::Map(m) = &self.bytes else { return };
        let n = self
            .read_since_release
            .fetch_add(len, Relaxed)
            .saturating_add(len);
        if n >= RELEASE_EVERY {
            self.read_since_release.store(0, Relaxed);
            // SAFETY: a read-only shared mapping of a file: MADV_DONTNEED
            // only drops page-table entries; the contents are read again
            // from the file on the next access (never zero-filled, which only
            // happens to private anonymous memory).
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The meta bbolt would use.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Which meta page (0 or 1) is in use.
    pub fn meta_page(&self) -> usize {
        self.meta_page
    }

    /// Both metas as parsed, each with its own verdict, for reports.
    pub fn metas(&self) -> [Result<Meta, MetaProblem>; 2] {
        [
            self.metas[0].and_then(|m| m.validate().map(|()| m)),
            self.metas[1].and_then(|m| m.validate().map(|()| m)),
        ]
    }

    /// The raw bytes of page `pgid` and its overflow pages, checked against
    /// the high-water mark and the file's end.
    pub fn page_span(&self, pgid: u64) -> Result<(PageHeader, &[u8]), BoltError> {
        let high_water = self.meta.pgid;
        if pgid >= high_water {
            return Err(BoltError::PageOutOfRange { pgid, high_water });
        }
        let b = self.bytes();
        let file_len = b.len() as u64;
        let ps = self.page_size as u64;
        let beyond = |overflow| BoltError::PageBeyondFile {
            pgid,
            overflow,
            file_len,
        };
        let start = pgid.checked_mul(ps).ok_or_else(|| beyond(0))?;
        let head = usize::try_from(start)
            .ok()
            .and_then(|s| b.get(s..s.checked_add(PAGE_HEADER_SIZE)?))
            .ok_or_else(|| beyond(0))?;
        let header = PageHeader::parse(head)?;
        if header.id != pgid {
            return Err(BoltError::PageIdMismatch {
                pgid,
                found: header.id,
            });
        }
        let overflow = header.overflow as u64;
        // pgid * page_size did not overflow, so pgid < 2^54: no wrap here.
        let last = pgid + overflow;
        if last >= high_water {
            return Err(BoltError::PageOutOfRange {
                pgid: last,
                high_water,
            });
        }
        let end = (last + 1)
            .checked_mul(ps)
            .filter(|&e| e <= file_len)
            .ok_or_else(|| beyond(overflow))?;
        self.note_read(end - start);
        Ok((header, &b[start as usize..end as usize]))
    }

    /// A branch or leaf page of a tree.
    pub fn node(&self, pgid: u64) -> Result<NodePage<'_>, BoltError> {
        if pgid < 2 {
            return Err(BoltError::MetaPageInTree { pgid });
        }
        let (_, bytes) = self.page_span(pgid)?;
        NodePage::new(PageOrigin::File(pgid), bytes)
    }

    /// The page ids on the freelist page; `None` when the file keeps no
    /// freelist (bbolt then rebuilds it by scanning).
    pub fn freelist(&self) -> Result<Option<Vec<u64>>, BoltError> {
        if self.meta.freelist == meta::NO_FREELIST {
            return Ok(None);
        }
        let (_, bytes) = self.page_span(self.meta.freelist)?;
        freelist_ids(self.meta.freelist, bytes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::raft::bbolt::{Item, Visited, Writer};

    /// The resident size (kB) of this process's mapping that starts at `at`,
    /// from /proc/self/smaps.
    fn resident_kb(at: *const u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", at as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        assert!(lines.next().is_some(), "no mapping at {start}");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A walk that reads every byte of a 40 MB log leaves at most about
    /// `RELEASE_EVERY` of it mapped in (it was the whole file): mapped file
    /// pages count in the resident set (issue 13), and the values handed
    /// out stay readable after their pages are given back.
    #[test]
    fn a_walk_gives_back_the_pages_it_has_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("raft.log");
        let mut w = Writer::create(&p, 4096).unwrap();
        w.enter(b"logs").unwrap();
        let value = |i: u64| vec![(i % 251) as u8 + 1; 4000];
        let n = 10_000u64;
        for i in 0..n {
            w.put(&i.to_be_bytes(), &value(i)).unwrap();
        }
        w.leave(0).unwrap();
        w.finish(0, 1).unwrap();
        let db = Db::open(&p).unwrap();
        assert!(db.bytes().len() > 40_000_000);
        let (mut values, mut sum) = (0u64, 0u64);
        let mut first = None;
        db.walk(&mut Visited::default(), |item| {
            if let Item::Value { key, value } = item {
                values += 1;
                sum += value.iter().map(|&b| b as u64).sum::<u64>();
                first.get_or_insert((key, value));
            }
            Ok::<(), BoltError>(())
        })
        .unwrap();
        assert_eq!(values, n);
        assert_eq!(sum, (0..n).map(|i| ((i % 251) + 1) * 4000).sum::<u64>());
        let kb = resident_kb(db.bytes().as_ptr());
        assert!(kb <= (RELEASE_EVERY >> 10) + 1024, "{kb} kB resident");
        // A value from before the last release reads back the same.
        let (key, v) = first.unwrap();
        assert_eq!((key, v), (&0u64.to_be_bytes()[..], &value(0)[..]));
    }
}
