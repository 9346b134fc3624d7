//! bbolt's on-disk page layout (bbolt 1.3.x, little-endian): the 16-byte page
//! header, the 16-byte branch and leaf elements, and bounds-checked readers
//! over a page's bytes. Nothing here trusts a count or offset from the file.

use super::error::BoltError;

pub const PAGE_HEADER_SIZE: usize = 16;
pub const ELEMENT_SIZE: usize = 16;
/// The bucket value prefix: root page id and sequence.
pub const BUCKET_HEADER_SIZE: usize = 16;

pub const FLAG_BRANCH: u16 = 0x01;
pub const FLAG_LEAF: u16 = 0x02;
pub const FLAG_META: u16 = 0x04;
pub const FLAG_FREELIST: u16 = 0x10;

/// Leaf element flag: the value is a bucket header (and maybe an inline page).
pub const BUCKET_LEAF_FLAG: u32 = 0x01;

/// bbolt panics when a node has 0xFFFF or more elements, so no valid page does.
pub const MAX_ELEMENTS: usize = 0xFFFE;

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[off..off + 2]);
    u16::from_le_bytes(a)
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub id: u64,
    pub flags: u16,
    pub count: u16,
    pub overflow: u32,
}

impl PageHeader {
    /// `b` must hold at least the header (callers check the span first).
    pub fn parse(b: &[u8]) -> Result<PageHeader, BoltError> {
        if b.len() < PAGE_HEADER_SIZE {
            return Err(BoltError::ShortPage { len: b.len() });
        }
        Ok(PageHeader {
            id: u64_at(b, 0),
            flags: u16_at(b, 8),
            count: u16_at(b, 10),
            overflow: u32_at(b, 12),
        })
    }

    pub fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..10].copy_from_slice(&self.flags.to_le_bytes());
        out[10..12].copy_from_slice(&self.count.to_le_bytes());
        out[12..16].copy_from_slice(&self.overflow.to_le_bytes());
    }
}

/// Where a page's bytes came from: the file (with its id) or a bucket value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOrigin {
    File(u64),
    Inline,
}

impl std::fmt::Display for PageOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageOrigin::File(id) => write!(f, "page {id}"),
            PageOrigin::Inline => f.write_str("inline page"),
        }
    }
}

/// A branch or leaf page, its header checked against its byte span.
#[derive(Debug, Clone, Copy)]
pub struct NodePage<'a> {
    pub origin: PageOrigin,
    pub header: PageHeader,
    /// The page and its overflow pages (or the inline page's bytes).
    pub bytes: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafElement<'a> {
    pub flags: u32,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchElement<'a> {
    pub key: &'a [u8],
    pub child: u64,
}

impl<'a> NodePage<'a> {
    pub fn new(origin: PageOrigin, bytes: &'a [u8]) -> Result<NodePage<'a>, BoltError> {
        let header = PageHeader::parse(bytes)?;
        if header.flags != FLAG_BRANCH && header.flags != FLAG_LEAF {
            return Err(BoltError::UnexpectedPageType {
                origin,
                flags: header.flags,
                expected: "branch or leaf",
            });
        }
        let need = PAGE_HEADER_SIZE + header.count as usize * ELEMENT_SIZE;
        if need > bytes.len() {
            return Err(BoltError::ElementsPastPage {
                origin,
                count: header.count,
            });
        }
        Ok(NodePage {
            origin,
            header,
            bytes,
        })
    }

    pub fn is_leaf(&self) -> bool {
        self.header.flags == FLAG_LEAF
    }

    pub fn count(&self) -> usize {
        self.header.count as usize
    }

    fn slice(&self, index: usize, start: usize, len: usize) -> Result<&'a [u8], BoltError> {
        start
            .checked_add(len)
            .and_then(|end| self.bytes.get(start..end))
            .ok_or(BoltError::ElementPastPage {
                origin: self.origin,
                index,
            })
    }

    /// Element `index` of a leaf page (`index < count`, checked).
    pub fn leaf(&self, index: usize) -> Result<LeafElement<'a>, BoltError> {
        let at = self.element_at(index)?;
        let b = self.bytes;
        let flags = u32_at(b, at);
        let pos = u32_at(b, at + 4) as usize;
        let ksize = u32_at(b, at + 8) as usize;
        let vsize = u32_at(b, at + 12) as usize;
        // `pos` counts from the element itself, as bbolt writes it.
        let start = at.checked_add(pos).ok_or(BoltError::ElementPastPage {
            origin: self.origin,
            index,
        })?;
        let key = self.slice(index, start, ksize)?;
        let value = self.slice(index, start + ksize, vsize)?;
        Ok(LeafElement { flags, key, value })
    }

    /// Element `index` of a branch page.
    pub fn branch(&self, index: usize) -> Result<BranchElement<'a>, BoltError> {
        let at = self.element_at(index)?;
        let b = self.bytes;
        let pos = u32_at(b, at) as usize;
        let ksize = u32_at(b, at + 4) as usize;
        let child = u64_at(b, at + 8);
        let start = at.checked_add(pos).ok_or(BoltError::ElementPastPage {
            origin: self.origin,
            index,
        })?;
        let key = self.slice(index, start, ksize)?;
        Ok(BranchElement { key, child })
    }

    fn element_at(&self, index: usize) -> Result<usize, BoltError> {
        if index >= self.count() {
            return Err(BoltError::ElementPastPage {
                origin: self.origin,
                index,
            });
        }
        Ok(PAGE_HEADER_SIZE + index * ELEMENT_SIZE)
    }
}

/// The page ids a freelist page lists. A count of 0xFFFF means the real
/// count is the first u64 after the header.
pub fn freelist_ids(pgid: u64, bytes: &[u8]) -> Result<Vec<u64>, BoltError> {
    let header = PageHeader::parse(bytes)?;
    if header.flags != FLAG_FREELIST {
        return Err(BoltError::UnexpectedPageType {
            origin: PageOrigin::File(pgid),
            flags: header.flags,
            expected: "freelist",
        });
    }
    let (skip, count) = if header.count == 0xFFFF {
        if bytes.len() < PAGE_HEADER_SIZE + 8 {
            return Err(BoltError::FreelistPastPage {
                pgid,
                count: u64::MAX,
            });
        }
        (1usize, u64_at(bytes, PAGE_HEADER_SIZE))
    } else {
        (0, header.count as u64)
    };
    let room = ((bytes.len() - PAGE_HEADER_SIZE) / 8).saturating_sub(skip) as u64;
    if count > room {
        return Err(BoltError::FreelistPastPage { pgid, count });
    }
    let base = PAGE_HEADER_SIZE + skip * 8;
    Ok((0..count as usize)
        .map(|i| u64_at(bytes, base + i * 8))
        .collect())
}
