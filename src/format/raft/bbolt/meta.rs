//! The meta page (bbolt 1.3.x): which tree is current. Two copies, pages 0
//! and 1; a writer alternates between them, so the newer one that validates
//! (magic, version, FNV-1a 64 checksum) is the database.

use super::page::{u32_at, u64_at, PAGE_HEADER_SIZE};

pub const MAGIC: u32 = 0xED0C_DAED;
pub const VERSION: u32 = 2;
/// `meta.freelist` when the freelist is not stored (NoFreelistSync, as the
/// NATS Streaming server opens its Raft log by default).
pub const NO_FREELIST: u64 = u64::MAX;
/// Meta fields before the checksum: the bytes the checksum covers.
pub const META_FIELDS_SIZE: usize = 56;
pub const META_SIZE: usize = META_FIELDS_SIZE + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub magic: u32,
    pub version: u32,
    pub page_size: u32,
    pub flags: u32,
    /// The root bucket: root page id and sequence.
    pub root: u64,
    pub root_sequence: u64,
    pub freelist: u64,
    /// High-water mark: the first page id past the database.
    pub pgid: u64,
    pub txid: u64,
    pub checksum: u64,
}

/// Why a meta page was rejected, in bbolt's order of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetaProblem {
    #[error("file too short to hold it")]
    Missing,
    #[error("bad magic {0:#010x}")]
    Magic(u32),
    #[error("version {0}, expected 2")]
    Version(u32),
    #[error("checksum mismatch (stored {stored:#018x}, computed {computed:#018x})")]
    Checksum { stored: u64, computed: u64 },
}

/// FNV-1a, 64 bits: bbolt's meta checksum.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Meta {
    /// Reads the meta from the start of a page (`page` holds at least the
    /// page header and the meta, else `Missing`).
    pub fn parse(page: &[u8]) -> Result<Meta, MetaProblem> {
        let m = page
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE)
            .ok_or(MetaProblem::Missing)?;
        Ok(Meta {
            magic: u32_at(m, 0),
            version: u32_at(m, 4),
            page_size: u32_at(m, 8),
            flags: u32_at(m, 12),
            root: u64_at(m, 16),
            root_sequence: u64_at(m, 24),
            freelist: u64_at(m, 32),
            pgid: u64_at(m, 40),
            txid: u64_at(m, 48),
            checksum: u64_at(m, 56),
        })
    }

    /// The meta fields as stored; the checksum covers the first 56 bytes.
    pub fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.root.to_le_bytes());
        b[24..32].copy_from_slice(&self.root_sequence.to_le_bytes());
        b[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        b[40..48].copy_from_slice(&self.pgid.to_le_bytes());
        b[48..56].copy_from_slice(&self.txid.to_le_bytes());
        b[56..64].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    pub fn compute_checksum(&self) -> u64 {
        fnv1a64(&self.encode()[..META_FIELDS_SIZE])
    }

    /// Sets the checksum from the other fields.
    pub fn seal(mut self) -> Meta {
        self.checksum = self.compute_checksum();
        self
    }

    /// bbolt's `meta.validate`, same checks, same order.
    pub fn validate(&self) -> Result<(), MetaProblem> {
        if self.magic != MAGIC {
            return Err(MetaProblem::Magic(self.magic));
        }
        if self.version != VERSION {
            return Err(MetaProblem::Version(self.version));
        }
        let computed = self.compute_checksum();
        if self.checksum != computed {
            return Err(MetaProblem::Checksum {
                stored: self.checksum,
                computed,
            });
        }
        Ok(())
    }
}

/// bbolt's choice between the two metas: the higher txid if it validates,
/// else the other if it validates. Returns which page (0 or 1) won.
pub fn choose(
    m0: &Result<Meta, MetaProblem>,
    m1: &Result<Meta, MetaProblem>,
) -> Result<(usize, Meta), [MetaProblem; 2]> {
    let valid = |m: &Result<Meta, MetaProblem>| -> Result<Meta, MetaProblem> {
        let m = (*m)?;
        m.validate().map(|()| m)
    };
    match (valid(m0), valid(m1)) {
        (Ok(a), Ok(b)) => Ok(if b.txid > a.txid { (1, b) } else { (0, a) }),
        (Ok(a), Err(_)) => Ok((0, a)),
        (Err(_), Ok(b)) => Ok((1, b)),
        (Err(e0), Err(e1)) => Err([e0, e1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    fn sample(txid: u64) -> Meta {
        Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            root_sequence: 0,
            freelist: 2,
            pgid: 4,
            txid,
            checksum: 0,
        }
        .seal()
    }

    #[test]
    fn newer_valid_meta_wins_and_bad_one_falls_back() {
        let (a, b) = (sample(4), sample(5));
        assert_eq!(choose(&Ok(a), &Ok(b)), Ok((1, b)));
        let mut bad = b;
        bad.root = 9;
        assert_eq!(choose(&Ok(a), &Ok(bad)), Ok((0, a)));
        let mut bad0 = a;
        bad0.magic = 1;
        assert!(matches!(
            choose(&Ok(bad0), &Ok(bad)),
            Err([MetaProblem::Magic(1), MetaProblem::Checksum { .. }])
        ));
    }

    #[test]
    fn encode_parse_round_trip() {
        let m = sample(7);
        let mut page = vec![0u8; 128];
        page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE].copy_from_slice(&m.encode());
        assert_eq!(Meta::parse(&page), Ok(m));
        assert_eq!(Meta::parse(&page[..40]), Err(MetaProblem::Missing));
    }
}
