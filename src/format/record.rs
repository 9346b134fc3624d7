//! Records of `.dat` files: `u32 header, u32 crc, payload`.
//!
//! The iterator borrows from a mapped file and never allocates; a hostile
//! size field only yields a `Truncated` event. Every offset into a data file
//! is computed here: callers get `Header` and `Record` views.

use super::crc::Crc32;
use super::proto::{MsgView, ProtoError};

/// Bytes of the file version that starts every `.dat` and `.idx`.
pub const VERSION_LEN: usize = 4;
pub const HEADER_LEN: usize = 8;
pub const FILE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileVersion {
    /// A zero-length file. The server writes the version only into files it
    /// creates; an existing empty file fails its version check.
    Empty,
    /// Fewer than 4 bytes.
    CutShort(usize),
    Supported,
    Unsupported(u32),
}

/// A record header followed by no payload byte at all: Go's `io.ReadFull`
/// then returns `io.EOF`, which the server's recovery takes for a clean end
/// of file, not for a record cut short.
pub fn is_dangling_header(expected: Option<u32>, available: u64) -> bool {
    expected.is_some_and(|e| e > 0) && available == 0
}

pub fn file_version(data: &[u8]) -> FileVersion {
    match data.len() {
        0 => FileVersion::Empty,
        n if n < VERSION_LEN => FileVersion::CutShort(n),
        _ => match u32::from_le_bytes(data[..4].try_into().unwrap()) {
            FILE_VERSION => FileVersion::Supported,
            v => FileVersion::Unsupported(v),
        },
    }
}

/// A record header: `u32 size, u32 crc`; in typed files (clients.dat,
/// subs.dat) the size's top byte is the record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub rtype: u8,
    pub size: u32,
    pub crc: u32,
}

impl Header {
    /// The header at `offset`, if all 8 bytes are there.
    #[inline]
    pub fn at(data: &[u8], offset: usize, typed: bool) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = data
            .get(offset..offset.checked_add(HEADER_LEN)?)?
            .try_into()
            .ok()?;
        let first = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let crc = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let (rtype, size) = if typed {
            ((first >> 24) as u8, first & 0x00ff_ffff)
        } else {
            (0, first)
        };
        Some(Header { rtype, size, crc })
    }

    /// A zero header: the server truncates the file here.
    pub fn is_zero(&self) -> bool {
        self.size == 0 && self.rtype == 0 && self.crc == 0
    }
}

/// One whole record: a view of its header and payload in the mapped file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the header in the file.
    pub offset: u64,
    /// Record type (typed files only; 0 for message slices).
    pub rtype: u8,
    pub crc: u32,
    pub payload: &'a [u8],
}

/// Bytes a record with a payload of `payload_len` bytes takes, header included.
pub fn record_len(payload_len: u64) -> u64 {
    HEADER_LEN as u64 + payload_len
}

/// The version bytes that start every file the server writes.
pub fn version_bytes() -> [u8; VERSION_LEN] {
    FILE_VERSION.to_le_bytes()
}

/// Whether every byte from `offset` to the end is zero (a zero tail, as
/// opposed to a zero header with data after it).
pub fn zero_from(data: &[u8], offset: u64) -> bool {
    usize::try_from(offset)
        .ok()
        .and_then(|o| data.get(o..))
        .is_none_or(|t| t.iter().all(|&b| b == 0))
}

/// What made it to disk of the payload of a record cut short at `offset`.
pub fn cut_payload(data: &[u8], offset: u64) -> &[u8] {
    usize::try_from(offset)
        .ok()
        .and_then(|o| data.get(o.checked_add(HEADER_LEN)?..))
        .unwrap_or(&[])
}

impl<'a> Record<'a> {
    pub fn end(&self) -> u64 {
        self.offset + record_len(self.payload.len() as u64)
    }

    /// Bytes of the record, header included.
    pub fn size_on_disk(&self) -> u64 {
        record_len(self.payload.len() as u64)
    }

    /// Offset of the payload's first byte in the file.
    pub fn payload_offset(&self) -> u64 {
        self.offset + HEADER_LEN as u64
    }

    /// The record of a message slice at `offset`, read the way the server's
    /// lookup reads it (header, then payload), or what stops the read.
    pub fn at(data: &'a [u8], offset: u64) -> Option<Event<'a>> {
        let offset = usize::try_from(offset).ok().filter(|&o| o <= data.len())?;
        Records::at(data, offset, false).next()
    }

    /// The payload as a message (slices only).
    pub fn message(&self) -> Result<MsgView<'a>, ProtoError> {
        MsgView::parse(self.payload)
    }

    /// Whether the payload's CRC is the header's.
    pub fn crc_ok(&self, crc: &Crc32) -> bool {
        crc.checksum(self.payload) == self.crc
    }

    /// The same record with its payload cut to `len` bytes (what a reader
    /// trusting a smaller size sees); None if `len` is larger.
    pub fn prefix(&self, len: u32) -> Option<Record<'a>> {
        Some(Record {
            payload: self.payload.get(..len as usize)?,
            ..*self
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Record(Record<'a>),
    /// A zero header (size 0, crc 0): the server truncates the file here.
    ZeroPadding {
        offset: u64,
        len: u64,
    },
    /// A record cut short by the end of the file ("unexpected EOF").
    Truncated {
        offset: u64,
        /// Payload bytes the header announces (None: the header itself is cut).
        expected: Option<u32>,
        available: u64,
    },
}

/// Walks the records after the file version.
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    typed: bool,
    done: bool,
}

impl<'a> Records<'a> {
    /// `data` is the whole file; iteration starts after the version.
    pub fn new(data: &'a [u8], typed: bool) -> Self {
        Records {
            data,
            pos: VERSION_LEN.min(data.len()),
            typed,
            done: data.len() < VERSION_LEN,
        }
    }

    /// Iterates starting at an arbitrary offset (a record header).
    pub fn at(data: &'a [u8], offset: usize, typed: bool) -> Self {
        Records {
            data,
            pos: offset.min(data.len()),
            typed,
            done: false,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Event<'a>;

    #[inline]
    fn next(&mut self) -> Option<Event<'a>> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let off = self.pos;
        let rest = &self.data[off..];
        if rest.len() < HEADER_LEN {
            self.done = true;
            return Some(Event::Truncated {
                offset: off as u64,
                expected: None,
                available: rest.len() as u64,
            });
        }
        let h = Header::at(self.data, off, self.typed).expect("8 bytes checked above");
        let Header { rtype, size, crc } = h;
        if h.is_zero() {
            self.done = true;
            return Some(Event::ZeroPadding {
                offset: off as u64,
                len: rest.len() as u64,
            });
        }
        let avail = rest.len() - HEADER_LEN;
        if size as u64 > avail as u64 {
            self.done = true;
            return Some(Event::Truncated {
                offset: off as u64,
                expected: Some(size),
                available: avail as u64,
            });
        }
        let payload = &rest[HEADER_LEN..HEADER_LEN + size as usize];
        self.pos = off + HEADER_LEN + size as usize;
        Some(Event::Record(Record {
            offset: off as u64,
            rtype,
            crc,
            payload,
        }))
    }
}

/// Appends a record (header, crc, payload) to `out`.
pub fn write_record(out: &mut Vec<u8>, rtype: u8, crc: u32, payload: &[u8]) {
    out.extend_from_slice(&header_bytes(rtype, crc, payload.len()));
    out.extend_from_slice(payload);
}

/// The 8-byte header of a record of type `rtype` with a payload of `len`
/// bytes (under 2^24 with a type; the caller checks the size fits).
pub fn header_bytes(rtype: u8, crc: u32, len: usize) -> [u8; HEADER_LEN] {
    let first = ((rtype as u32) << 24) | len as u32;
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&first.to_le_bytes());
    h[4..].copy_from_slice(&crc.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_pads_and_truncates() {
        let mut f = 1u32.to_le_bytes().to_vec();
        write_record(&mut f, 0, 7, b"abc");
        f.extend_from_slice(&[0u8; 10]);
        let ev: Vec<_> = Records::new(&f, false).collect();
        assert_eq!(ev.len(), 2);
        assert!(matches!(ev[0], Event::Record(r) if r.payload == b"abc" && r.offset == 4));
        assert_eq!(
            ev[1],
            Event::ZeroPadding {
                offset: 15,
                len: 10
            }
        );

        let mut g = 1u32.to_le_bytes().to_vec();
        write_record(&mut g, 0, 7, b"abcdef");
        g.truncate(g.len() - 2);
        let ev: Vec<_> = Records::new(&g, false).collect();
        assert_eq!(
            ev,
            vec![Event::Truncated {
                offset: 4,
                expected: Some(6),
                available: 4
            }]
        );
    }

    #[test]
    fn hostile_size_is_only_truncation() {
        let mut f = 1u32.to_le_bytes().to_vec();
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&[1, 2, 3, 4, 5]);
        let ev: Vec<_> = Records::new(&f, false).collect();
        assert!(matches!(
            ev[..],
            [Event::Truncated {
                expected: Some(u32::MAX),
                ..
            }]
        ));
    }
}
