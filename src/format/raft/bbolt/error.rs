//! Everything that can be wrong with a bbolt file, as facts with the page
//! they concern. Reading never panics: every bound from the file is checked
//! and ends in one of these.

use super::meta::MetaProblem;
use super::page::PageOrigin;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BoltError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file is {len} bytes: too short for a bbolt database")]
    FileTooSmall { len: u64 },
    #[error("no valid meta page: meta 0: {meta0}; meta 1: {meta1}")]
    NoValidMeta {
        meta0: MetaProblem,
        meta1: MetaProblem,
    },
    #[error("meta page size {0} is not a power of two between 1 KiB and 16 MiB")]
    BadPageSize(u32),
    #[error("meta {which} says page size {found}, but meta 0 says {expected}")]
    PageSizeMismatch {
        which: usize,
        found: u32,
        expected: u32,
    },
    #[error("page {pgid} is past the high-water mark {high_water}")]
    PageOutOfRange { pgid: u64, high_water: u64 },
    #[error(
        "page {pgid} (+{overflow} overflow pages) is past the end of the file ({file_len} bytes)"
    )]
    PageBeyondFile {
        pgid: u64,
        overflow: u64,
        file_len: u64,
    },
    #[error("page {pgid} identifies itself as page {found}")]
    PageIdMismatch { pgid: u64, found: u64 },
    #[error("page {pgid} is a meta page and cannot be part of a tree")]
    MetaPageInTree { pgid: u64 },
    #[error("page {pgid} is referenced twice (a cycle or a shared subtree)")]
    PageRevisited { pgid: u64 },
    #[error("B+tree deeper than {limit} levels at page {pgid}")]
    TreeTooDeep { pgid: u64, limit: usize },
    #[error("buckets nested deeper than {limit}")]
    BucketsTooDeep { limit: usize },
    #[error("page header needs 16 bytes, only {len} there")]
    ShortPage { len: usize },
    #[error("{origin} has flags {flags:#06x}, expected a {expected} page")]
    UnexpectedPageType {
        origin: PageOrigin,
        flags: u16,
        expected: &'static str,
    },
    #[error("{origin} has {count} elements: more than the page holds")]
    ElementsPastPage { origin: PageOrigin, count: u16 },
    #[error("{origin}: element {index} points past the end of the page")]
    ElementPastPage { origin: PageOrigin, index: usize },
    #[error("{origin} is a branch page with no elements")]
    EmptyBranch { origin: PageOrigin },
    #[error("freelist page {pgid} lists {count} ids: more than the page holds")]
    FreelistPastPage { pgid: u64, count: u64 },
    #[error("bucket value for key {key:?} is {len} bytes: shorter than a bucket header")]
    ShortBucketValue { key: String, len: usize },
    #[error("bucket {0:?} not found")]
    BucketNotFound(String),
    #[error("key {0:?} is a bucket, not a value")]
    NotAValue(String),
    #[error("key {0:?} is a value, not a bucket")]
    NotABucket(String),
    #[error("writer: key {key:?} is not greater than the previous key in its bucket")]
    KeyOrder { key: String },
    #[error("writer: empty key")]
    EmptyKey,
    #[error("writer: {what} of {len} bytes is too large for bbolt")]
    TooLarge { what: &'static str, len: usize },
    #[error("writer: {0}")]
    Misuse(&'static str),
}

/// Keys in errors: printable as text when they are, hex otherwise.
pub fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_string(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}
