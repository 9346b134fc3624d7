//! Writes a fresh bbolt 1.3.x file in one pass, from items given in key
//! order: leaves are written as they fill, branch levels are built once a
//! bucket ends, so memory holds one pending leaf per open bucket plus one
//! (first key, page id) pair per written page.
//!
//! Layout: pages 0 and 1 are the metas (written last), tree pages follow in
//! the order they fill, then one empty freelist page. Every page below the
//! high-water mark is reachable or is the freelist, as bbolt's `Check` wants.
//! Small buckets without sub-buckets are inlined as bbolt does (at most a
//! quarter page). Leaves are filled up to a page; bbolt reads any fill.

use super::error::{show_key, BoltError};
use super::meta::{Meta, MAGIC, VERSION};
use super::page::{
    PageHeader, BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, ELEMENT_SIZE, FLAG_BRANCH, FLAG_FREELIST,
    FLAG_LEAF, FLAG_META, MAX_ELEMENTS, PAGE_HEADER_SIZE,
};
use crate::format::writeback;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// bbolt's limits (`MaxKeySize`, `MaxValueSize`).
pub const MAX_KEY_SIZE: usize = 32768;
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;

/// What the writer produced, for reports and invariant checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// High-water mark: pages in the file.
    pub pages: u64,
    pub leaf_pages: u64,
    pub branch_pages: u64,
    /// Extra pages taken by nodes larger than a page.
    pub overflow_pages: u64,
    pub inline_buckets: u64,
    pub values: u64,
    pub buckets: u64,
}

struct ChildRef {
    first_key: Vec<u8>,
    pgid: u64,
}

/// One open bucket: its pending leaf and the pages written so far.
struct Level {
    key: Vec<u8>,
    /// (flags, key length, value length) per pending item; the bytes are
    /// in `data`, key then value, as they will sit on the page.
    items: Vec<(u32, usize, usize)>,
    data: Vec<u8>,
    leaves: Vec<ChildRef>,
    has_subbucket: bool,
    last_key: Option<Vec<u8>>,
}

impl Level {
    fn new(key: Vec<u8>) -> Level {
        Level {
            key,
            items: Vec::new(),
            data: Vec::new(),
            leaves: Vec::new(),
            has_subbucket: false,
            last_key: None,
        }
    }

    fn pending_size(&self) -> usize {
        PAGE_HEADER_SIZE + self.items.len() * ELEMENT_SIZE + self.data.len()
    }

    fn check_order(&mut self, key: &[u8]) -> Result<(), BoltError> {
        if key.is_empty() {
            return Err(BoltError::EmptyKey);
        }
        if key.len() > MAX_KEY_SIZE {
            return Err(BoltError::TooLarge {
                what: "key",
                len: key.len(),
            });
        }
        if self.last_key.as_deref().is_some_and(|last| key <= last) {
            return Err(BoltError::KeyOrder { key: show_key(key) });
        }
        match &mut self.last_key {
            Some(k) => {
                k.clear();
                k.extend_from_slice(key);
            }
            None => self.last_key = Some(key.to_vec()),
        }
        Ok(())
    }
}

/// The file being written. Pages are built in place at the end of one
/// buffer (`reserve`), written with one write(2) per `BUF` bytes; every
/// `writeback::STEP` bytes written, their writeback is started without
/// waiting (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`), so the disk
/// writes while the rest is built and the final fsync waits only for the
/// tail. That is a hint: durability and write errors come from the fsync.
struct Out {
    file: File,
    buf: Vec<u8>,
    /// Bytes written to the file.
    written: u64,
    /// Bytes whose writeback has been started.
    started: u64,
}

impl Out {
    const BUF: usize = 1 << 20;

    fn new(file: File) -> Out {
        Out {
            file,
            buf: Vec::with_capacity(Self::BUF),
            written: 0,
            started: 0,
        }
    }

    /// `n` zeroed bytes at the end of what is pending, to be filled in
    /// place (what is pending is written first when they do not fit).
    fn reserve(&mut self, n: usize) -> std::io::Result<&mut [u8]> {
        if !self.buf.is_empty() && self.buf.len() + n > Self::BUF {
            self.flush()?;
        }
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        Ok(&mut self.buf[at..])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.written - self.started >= writeback::STEP {
            writeback::start(&self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(())
    }
}

pub struct Writer {
    out: Out,
    path: PathBuf,
    page_size: usize,
    next_pgid: u64,
    stack: Vec<Level>,
    stats: WriteStats,
}

impl Writer {
    /// Creates `path` (which must not exist) for a database of `page_size`.
    pub fn create(path: &Path, page_size: usize) -> Result<Writer, BoltError> {
        if !page_size.is_power_of_two() || !(1024..=1 << 24).contains(&page_size) {
            return Err(BoltError::BadPageSize(
                page_size.min(u32::MAX as usize) as u32
            ));
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| BoltError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut w = Writer {
            out: Out::new(file),
            path: path.to_path_buf(),
            page_size,
            next_pgid: 2,
            stack: vec![Level::new(Vec::new())],
            stats: WriteStats::default(),
        };
        // Room for the two metas, written once the root is known.
        w.reserve(2 * page_size)?;
        Ok(w)
    }

    fn io(&self, source: std::io::Error) -> BoltError {
        BoltError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// `n` zeroed bytes of the file, next in line, to fill in place.
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], BoltError> {
        match self.out.reserve(n) {
            Ok(b) => Ok(b),
            Err(source) => Err(BoltError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn top(&mut self) -> &mut Level {
        // The root level is pushed at creation and popped only by `finish`.
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    /// Adds a value to the current bucket; keys must ascend.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), BoltError> {
        if self.stack.len() == 1 {
            return Err(BoltError::Misuse("values in the root bucket"));
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(BoltError::TooLarge {
                what: "value",
                len: value.len(),
            });
        }
        self.top().check_order(key)?;
        self.stats.values += 1;
        self.push_item(0, key, value)
    }

    /// Opens the nested bucket `key` in the current bucket; its items follow,
    /// then `leave`.
    pub fn enter(&mut self, key: &[u8]) -> Result<(), BoltError> {
        let top = self.top();
        top.check_order(key)?;
        top.has_subbucket = true;
        self.stack.push(Level::new(key.to_vec()));
        self.stats.buckets += 1;
        Ok(())
    }

    /// Closes the current bucket, recording its sequence.
    pub fn leave(&mut self, sequence: u64) -> Result<(), BoltError> {
        // The root level (index 0) is closed only by `finish`.
        let mut level = match self.stack.len() {
            0 | 1 => None,
            _ => self.stack.pop(),
        }
        .ok_or(BoltError::Misuse("leave without enter"))?;
        let key = std::mem::take(&mut level.key);
        let mut value = Vec::with_capacity(BUCKET_HEADER_SIZE);
        if level.leaves.is_empty()
            && !level.has_subbucket
            && level.pending_size() <= self.page_size / 4
        {
            // bbolt's `inlineable`: the single leaf goes into the value.
            value.extend_from_slice(&0u64.to_le_bytes());
            value.extend_from_slice(&sequence.to_le_bytes());
            let start = value.len();
            value.resize(start + level.pending_size(), 0);
            fill_leaf(&mut value[start..], 0, &level);
            self.stats.inline_buckets += 1;
        } else {
            let root = self.close_tree(level)?;
            value.extend_from_slice(&root.to_le_bytes());
            value.extend_from_slice(&sequence.to_le_bytes());
        }
        self.push_item(BUCKET_LEAF_FLAG, &key, &value)
    }

    /// Writes the rest and both metas, then syncs the file. `txid` is the
    /// transaction id to record (the metas get it and the next one).
    pub fn finish(mut self, root_sequence: u64, txid: u64) -> Result<WriteStats, BoltError> {
        if self.stack.len() != 1 {
            return Err(BoltError::Misuse("finish with a bucket still open"));
        }
        let Some(level) = self.stack.pop() else {
            return Err(BoltError::Misuse("finish twice"));
        };
        let root = self.close_tree(level)?;
        // An empty freelist: nothing is free in a freshly written file.
        let freelist = self.next_pgid;
        let page = self.reserve(self.page_size)?;
        PageHeader {
            id: freelist,
            flags: FLAG_FREELIST,
            count: 0,
            overflow: 0,
        }
        .encode(page);
        self.next_pgid += 1;
        self.stats.pages = self.next_pgid;

        // Meta page i carries an id with txid % 2 == i, as bbolt alternates.
        let base = txid.saturating_add(2) & !1;
        let mut metas = vec![0u8; 2 * self.page_size];
        for i in 0..2u64 {
            let meta = Meta {
                magic: MAGIC,
                version: VERSION,
                page_size: self.page_size as u32,
                flags: 0,
                root,
                root_sequence,
                freelist,
                pgid: self.next_pgid,
                txid: base + i,
                checksum: 0,
            }
            .seal();
            let at = i as usize * self.page_size;
            PageHeader {
                id: i,
                flags: FLAG_META,
                count: 0,
                overflow: 0,
            }
            .encode(&mut metas[at..]);
            metas[at + PAGE_HEADER_SIZE..at + PAGE_HEADER_SIZE + super::meta::META_SIZE]
                .copy_from_slice(&meta.encode());
        }
        self.out.flush().map_err(|e| self.io(e))?;
        let file = &mut self.out.file;
        let r = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&metas))
            .and_then(|()| file.sync_all());
        r.map_err(|e| self.io(e))?;
        Ok(self.stats)
    }

    fn push_item(&mut self, flags: u32, key: &[u8], value: &[u8]) -> Result<(), BoltError> {
        let ps = self.page_size;
        let item = ELEMENT_SIZE + key.len() + value.len();
        let top = self.top();
        let full = !top.items.is_empty()
            && (top.pending_size() + item > ps || top.items.len() >= MAX_ELEMENTS);
        if full {
            self.flush_leaf()?;
        }
        let top = self.top();
        top.items.push((flags, key.len(), value.len()));
        top.data.extend_from_slice(key);
        top.data.extend_from_slice(value);
        Ok(())
    }

    /// Writes the current bucket's pending leaf as a page.
    fn flush_leaf(&mut self) -> Result<(), BoltError> {
        let last = self.stack.len() - 1;
        let level = std::mem::replace(&mut self.stack[last], Level::new(Vec::new()));
        let r = self.write_leaf(&level);
        let mut level = level;
        if let Ok(child) = &r {
            level.leaves.push(ChildRef {
                first_key: first_key(&level).to_vec(),
                pgid: *child,
            });
        }
        level.items.clear();
        level.data.clear();
        self.stack[last] = level;
        r.map(|_| ())
    }

    fn write_leaf(&mut self, level: &Level) -> Result<u64, BoltError> {
        let size = level.pending_size();
        let (pgid, span) = self.allocate(size)?;
        let page = self.reserve(span * self.page_size)?;
        fill_leaf(page, pgid, level);
        set_overflow(page, span);
        self.stats.leaf_pages += 1;
        self.stats.overflow_pages += span as u64 - 1;
        Ok(pgid)
    }

    /// Flushes the pending leaf and builds branch levels over `leaves`;
    /// returns the root page id.
    fn close_tree(&mut self, mut level: Level) -> Result<u64, BoltError> {
        let mut children = std::mem::take(&mut level.leaves);
        // An empty bucket still needs its (empty) root leaf.
        if !level.items.is_empty() || children.is_empty() {
            let pgid = self.write_leaf(&level)?;
            children.push(ChildRef {
                first_key: first_key(&level).to_vec(),
                pgid,
            });
        }
        while children.len() > 1 {
            children = self.write_branch_level(children)?;
        }
        children
            .first()
            .map(|c| c.pgid)
            .ok_or(BoltError::Misuse("bucket without a root page"))
    }

    fn write_branch_level(&mut self, children: Vec<ChildRef>) -> Result<Vec<ChildRef>, BoltError> {
        let ps = self.page_size;
        // Group children into pages, each filled up to a page.
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        let mut size = PAGE_HEADER_SIZE;
        for (i, c) in children.iter().enumerate() {
            let item = ELEMENT_SIZE + c.first_key.len();
            if i > start && (size + item > ps || i - start >= MAX_ELEMENTS) {
                groups.push(start..i);
                start = i;
                size = PAGE_HEADER_SIZE;
            }
            size += item;
        }
        groups.push(start..children.len());
        // A lone child in the last branch borrows one from its neighbour.
        let n = groups.len();
        if n >= 2 && groups[n - 1].len() == 1 && groups[n - 2].len() > 2 {
            groups[n - 2].end -= 1;
            groups[n - 1].start -= 1;
        }
        let mut parents = Vec::with_capacity(groups.len());
        for g in groups {
            let kids = &children[g];
            let size = PAGE_HEADER_SIZE
                + kids
                    .iter()
                    .map(|c| ELEMENT_SIZE + c.first_key.len())
                    .sum::<usize>();
            let (pgid, span) = self.allocate(size)?;
            let page = self.reserve(span * ps)?;
            PageHeader {
                id: pgid,
                flags: FLAG_BRANCH,
                count: kids.len() as u16,
                overflow: 0,
            }
            .encode(page);
            let mut off = PAGE_HEADER_SIZE + kids.len() * ELEMENT_SIZE;
            for (i, c) in kids.iter().enumerate() {
                let at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
                page[at..at + 4].copy_from_slice(&((off - at) as u32).to_le_bytes());
                page[at + 4..at + 8].copy_from_slice(&(c.first_key.len() as u32).to_le_bytes());
                page[at + 8..at + 16].copy_from_slice(&c.pgid.to_le_bytes());
                page[off..off + c.first_key.len()].copy_from_slice(&c.first_key);
                off += c.first_key.len();
            }
            set_overflow(page, span);
            self.stats.branch_pages += 1;
            self.stats.overflow_pages += span as u64 - 1;
            parents.push(ChildRef {
                first_key: kids[0].first_key.clone(),
                pgid,
            });
        }
        Ok(parents)
    }

    /// The next free page id and how many pages a node of `size` takes.
    fn allocate(&mut self, size: usize) -> Result<(u64, usize), BoltError> {
        let span = size.div_ceil(self.page_size).max(1);
        if span - 1 > u32::MAX as usize {
            return Err(BoltError::TooLarge {
                what: "node",
                len: size,
            });
        }
        let pgid = self.next_pgid;
        self.next_pgid += span as u64;
        Ok((pgid, span))
    }
}

fn first_key(level: &Level) -> &[u8] {
    match level.items.first() {
        Some(&(_, k, _)) => &level.data[..k],
        None => &[],
    }
}

fn set_overflow(page: &mut [u8], span: usize) {
    page[12..16].copy_from_slice(&((span - 1) as u32).to_le_bytes());
}

/// Lays out a leaf node: header, elements, then keys and values in order.
/// `out` is at least `level.pending_size()` bytes.
fn fill_leaf(out: &mut [u8], pgid: u64, level: &Level) {
    let n = level.items.len();
    PageHeader {
        id: pgid,
        flags: FLAG_LEAF,
        count: n as u16,
        overflow: 0,
    }
    .encode(out);
    let data_start = PAGE_HEADER_SIZE + n * ELEMENT_SIZE;
    out[data_start..data_start + level.data.len()].copy_from_slice(&level.data);
    let mut off = data_start;
    for (i, &(flags, k, v)) in level.items.iter().enumerate() {
        let at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        out[at..at + 4].copy_from_slice(&flags.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&((off - at) as u32).to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&(k as u32).to_le_bytes());
        out[at + 12..at + 16].copy_from_slice(&(v as u32).to_le_bytes());
        off += k + v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::raft::bbolt::{check, Db, Item, Visited};

    fn items(db: &Db) -> Vec<String> {
        let mut v = Vec::new();
        db.walk(&mut Visited::default(), |i| {
            v.push(match i {
                Item::Value { key, value } => format!("{key:?}={}", value.len()),
                Item::Bucket { key, bucket } => format!("[{key:?} seq {}", bucket.sequence),
                Item::EndBucket => "]".to_string(),
            });
            Ok::<(), BoltError>(())
        })
        .unwrap();
        v
    }

    #[test]
    fn nested_inline_empty_and_multi_level_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        let mut w = Writer::create(&p, 1024).unwrap();
        let mut want = Vec::new();
        w.enter(b"a").unwrap();
        want.push("[[97] seq 7".to_string());
        w.enter(b"a1").unwrap();
        w.put(b"k", b"small").unwrap();
        w.leave(1).unwrap();
        want.extend(["[[97, 49] seq 1".into(), "[107]=5".into(), "]".into()]);
        w.enter(b"a2").unwrap();
        w.leave(0).unwrap();
        want.extend(["[[97, 50] seq 0".into(), "]".into()]);
        w.put(b"b", &[1u8; 5000]).unwrap();
        want.push("[98]=5000".into());
        w.leave(7).unwrap();
        want.push("]".into());
        // Enough keys for three levels of 1 KiB branches.
        w.enter(b"z").unwrap();
        want.push("[[122] seq 0".into());
        for i in 0u64..20_000 {
            w.put(&i.to_be_bytes(), &[i as u8; 200]).unwrap();
            want.push(format!("{:?}=200", i.to_be_bytes()));
        }
        w.leave(0).unwrap();
        want.push("]".into());
        let stats = w.finish(0, 41).unwrap();
        let db = Db::open(&p).unwrap();
        assert_eq!(items(&db), want);
        let r = check(&db).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.reachable + 3, r.pages);
        assert_eq!(stats.inline_buckets, 2, "a1 and a2 are inline, a is not");
        assert!(stats.branch_pages > 100, "{stats:?}");
        assert_eq!(stats.overflow_pages, 4, "{stats:?}");
        assert_eq!(db.meta().txid, 43);
        let z = db.top_bucket(b"z").unwrap();
        assert_eq!(
            db.get(&z, &19_999u64.to_be_bytes()).unwrap(),
            Some(&[31u8; 200][..])
        );
        assert_eq!(db.get(&z, &20_000u64.to_be_bytes()).unwrap(), None);
        if let Some(keep) = std::env::var_os("RAFT_KEEP_OUTPUT") {
            std::fs::copy(&p, std::path::Path::new(&keep).join("nested.db")).unwrap();
        }
    }

    #[test]
    fn misuse_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(&dir.path().join("t.db"), 4096).unwrap();
        assert!(matches!(w.put(b"x", b"y"), Err(BoltError::Misuse(_))));
        w.enter(b"b").unwrap();
        w.put(b"2", b"").unwrap();
        assert!(matches!(w.put(b"1", b""), Err(BoltError::KeyOrder { .. })));
        assert!(matches!(w.put(b"2", b""), Err(BoltError::KeyOrder { .. })));
        assert!(matches!(w.put(b"", b""), Err(BoltError::EmptyKey)));
        w.leave(0).unwrap();
        assert!(matches!(w.enter(b"a"), Err(BoltError::KeyOrder { .. })));
        assert!(matches!(w.leave(0), Err(BoltError::Misuse(_))));
        assert!(
            Writer::create(&dir.path().join("t.db"), 4096).is_err(),
            "never overwrites"
        );
        assert!(matches!(
            Writer::create(&dir.path().join("u.db"), 3000),
            Err(BoltError::BadPageSize(3000))
        ));
    }
}
