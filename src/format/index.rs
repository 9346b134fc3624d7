//! Index files (`msgs.N.idx`): fixed 32-byte entries after the version.

use crate::format::crc::Crc32;

pub const ENTRY_LEN: usize = 32;

/// Byte offset of entry `i` (from 0) in an index file.
pub fn entry_offset(i: usize) -> u64 {
    (crate::format::record::VERSION_LEN + ENTRY_LEN * i) as u64
}

/// The bytes of entry `i` of an index file, if the file holds them.
pub fn entry_bytes(data: &[u8], i: usize) -> Option<&[u8; ENTRY_LEN]> {
    let at = usize::try_from(entry_offset(i)).ok()?;
    data.get(at..at.checked_add(ENTRY_LEN)?)?.try_into().ok()
}

/// How many entries an index file of `len` bytes holds at most.
pub fn max_entries(len: usize) -> usize {
    len.saturating_sub(crate::format::record::VERSION_LEN) / ENTRY_LEN
}

/// Length of an index file with `n` entries.
pub fn file_len(n: usize) -> u64 {
    entry_offset(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub seq: u64,
    pub offset: u64,
    pub timestamp: i64,
    pub size: u32,
    pub crc: u32,
}

impl IndexEntry {
    pub fn parse(b: &[u8; ENTRY_LEN]) -> Self {
        IndexEntry {
            seq: u64::from_le_bytes(b[0..8].try_into().unwrap()),
            offset: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            timestamp: i64::from_le_bytes(b[16..24].try_into().unwrap()),
            size: u32::from_le_bytes(b[24..28].try_into().unwrap()),
            crc: u32::from_le_bytes(b[28..32].try_into().unwrap()),
        }
    }

    /// An entry as the server writes it, CRC included.
    pub fn new(seq: u64, offset: u64, timestamp: i64, size: u32, crc: &Crc32) -> Self {
        let mut e = IndexEntry {
            seq,
            offset,
            timestamp,
            size,
            crc: 0,
        };
        let b = e.to_bytes();
        e.crc = crc.checksum(Self::crc_input(&b));
        e
    }

    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.timestamp.to_le_bytes());
        b[24..28].copy_from_slice(&self.size.to_le_bytes());
        b[28..32].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Where the record this entry describes ends in the data file.
    pub fn record_end(&self) -> u64 {
        self.offset
            .saturating_add(crate::format::record::record_len(self.size as u64))
    }

    /// The bytes of the entry the CRC covers.
    pub fn crc_input(b: &[u8; ENTRY_LEN]) -> &[u8] {
        &b[..28]
    }

    pub fn is_padding(&self) -> bool {
        self.seq == 0 && self.offset == 0 && self.timestamp == 0 && self.size == 0 && self.crc == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexEvent {
    Entry {
        /// Position of the entry in the file (byte offset).
        at: u64,
        entry: IndexEntry,
        crc_ok: bool,
    },
    /// An all-zero entry: the server truncates the index here.
    Padding { at: u64 },
    /// Fewer than 32 bytes left.
    Partial { at: u64, len: u64 },
}

/// Walks the entries of an index file (the whole file, version included).
pub struct Entries<'a> {
    data: &'a [u8],
    pos: usize,
    crc: &'a Crc32,
    done: bool,
}

pub fn entries<'a>(data: &'a [u8], crc: &'a Crc32) -> Entries<'a> {
    Entries {
        data,
        pos: crate::format::record::VERSION_LEN.min(data.len()),
        crc,
        done: false,
    }
}

impl Iterator for Entries<'_> {
    type Item = IndexEvent;

    fn next(&mut self) -> Option<IndexEvent> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let at = self.pos as u64;
        let rest = &self.data[self.pos..];
        if rest.len() < ENTRY_LEN {
            self.done = true;
            return Some(IndexEvent::Partial {
                at,
                len: rest.len() as u64,
            });
        }
        let b: &[u8; ENTRY_LEN] = rest[..ENTRY_LEN].try_into().unwrap();
        let entry = IndexEntry::parse(b);
        self.pos += ENTRY_LEN;
        // The server treats an all-zero entry (CRC included) as padding.
        if entry.is_padding() {
            self.done = true;
            return Some(IndexEvent::Padding { at });
        }
        let crc_ok = self.crc.checksum(IndexEntry::crc_input(b)) == entry.crc;
        Some(IndexEvent::Entry { at, entry, crc_ok })
    }
}
