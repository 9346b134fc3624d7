//! The raft.Log value as hashicorp/go-msgpack v2.1.1 writes it for the NATS
//! Streaming server (`MsgpackHandle{}`: old-spec raw strings, no str8, no
//! bin): a map `AppendedAt, Data, Extensions, Index, Term, Type`.
//!
//! Decoding keeps the byte span of the Data value so a rewrite can replace
//! just that value and keep every other byte as it is. Hand-written rather
//! than `rmp`: we need spans of values, and `rmp`'s writer picks str8 for
//! 32..=255-byte strings, a form go-msgpack never writes here.

use super::time::Timestamp;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgpackError {
    #[error("msgpack: value ends early at byte {at}")]
    Truncated { at: usize },
    #[error("msgpack: expected {expected} at byte {at}, found marker {marker:#04x}")]
    Unexpected {
        expected: &'static str,
        at: usize,
        marker: u8,
    },
    #[error("msgpack: {field} value {value} does not fit")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("msgpack: nesting deeper than {0}")]
    TooDeep(usize),
    #[error("msgpack: AppendedAt holds {len} bytes, not a 4, 8 or 12-byte timestamp")]
    BadTime { len: usize },
    #[error("msgpack: {0} trailing bytes after the map")]
    Trailing(usize),
    #[error("msgpack: Data of {0} bytes is longer than a str32 can say")]
    DataTooLong(usize),
}

/// How a byte-string value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawForm {
    Nil,
    FixStr,
    Str8,
    Str16,
    Str32,
    Bin8,
    Bin16,
    Bin32,
}

/// The decoded raft.Log, borrowing from the value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord<'a> {
    pub index: u64,
    pub term: u64,
    pub log_type: u8,
    /// `None` when written as nil (go's nil slice).
    pub data: Option<&'a [u8]>,
    /// Header and payload of the Data value within the value bytes; an
    /// empty range at the end when the map has no Data key.
    pub data_span: Range<usize>,
    pub data_form: RawForm,
    pub extensions: Option<&'a [u8]>,
    /// `None` when nil (go's zero time).
    pub appended_at: Option<Timestamp>,
}

impl LogRecord<'_> {
    /// Data as the server sees it (nil and empty alike).
    pub fn data_bytes(&self) -> &[u8] {
        self.data.unwrap_or(&[])
    }
}

const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, MsgpackError> {
        let v = *self
            .b
            .get(self.at)
            .ok_or(MsgpackError::Truncated { at: self.at })?;
        self.at += 1;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
            .ok_or(MsgpackError::Truncated { at: self.at })?;
        self.at += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
    }

    fn unexpected(&self, expected: &'static str, marker: u8) -> MsgpackError {
        MsgpackError::Unexpected {
            expected,
            at: self.at.saturating_sub(1),
            marker,
        }
    }

    fn map_len(&mut self) -> Result<usize, MsgpackError> {
        let m = self.byte()?;
        match m {
            0x80..=0x8f => Ok((m & 0x0f) as usize),
            0xde => Ok(self.be(2)? as usize),
            0xdf => Ok(self.be(4)? as usize),
            _ => Err(self.unexpected("a map", m)),
        }
    }

    /// A str/bin/nil value: payload and form.
    fn raw(&mut self, what: &'static str) -> Result<(Option<&'a [u8]>, RawForm), MsgpackError> {
        let m = self.byte()?;
        let (len, form) = match m {
            0xc0 => return Ok((None, RawForm::Nil)),
            0xa0..=0xbf => ((m & 0x1f) as usize, RawForm::FixStr),
            0xd9 => (self.be(1)? as usize, RawForm::Str8),
            0xda => (self.be(2)? as usize, RawForm::Str16),
            0xdb => (self.be(4)? as usize, RawForm::Str32),
            0xc4 => (self.be(1)? as usize, RawForm::Bin8),
            0xc5 => (self.be(2)? as usize, RawForm::Bin16),
            0xc6 => (self.be(4)? as usize, RawForm::Bin32),
            _ => return Err(self.unexpected(what, m)),
        };
        Ok((Some(self.take(len)?), form))
    }

    fn uint(&mut self, field: &'static str) -> Result<u64, MsgpackError> {
        let m = self.byte()?;
        let v: i128 = match m {
            0x00..=0x7f => m as i128,
            0xcc => self.be(1)? as i128,
            0xcd => self.be(2)? as i128,
            0xce => self.be(4)? as i128,
            0xcf => self.be(8)? as i128,
            0xd0 => self.be(1)? as u8 as i8 as i128,
            0xd1 => self.be(2)? as u16 as i16 as i128,
            0xd2 => self.be(4)? as u32 as i32 as i128,
            0xd3 => self.be(8)? as i64 as i128,
            0xe0..=0xff => m as i8 as i128,
            _ => return Err(self.unexpected("an unsigned integer", m)),
        };
        u64::try_from(v).map_err(|_| MsgpackError::OutOfRange {
            field,
            value: v as u64,
        })
    }

    fn time(&mut self) -> Result<Option<Timestamp>, MsgpackError> {
        let m = *self
            .b
            .get(self.at)
            .ok_or(MsgpackError::Truncated { at: self.at })?;
        // go-msgpack writes the msgpack timestamp payload as a raw string
        // under the old spec; accept the timestamp extension (-1) too.
        let payload = match m {
            0xd6 | 0xd7 | 0xc7 => {
                self.at += 1;
                let len = match m {
                    0xd6 => 4,
                    0xd7 => 8,
                    _ => self.be(1)? as usize,
                };
                let ty = self.byte()?;
                if ty != 0xff {
                    return Err(self.unexpected("the timestamp extension", ty));
                }
                self.take(len)?
            }
            _ => match self.raw("a time")? {
                (None, _) => return Ok(None),
                (Some(p), _) => p,
            },
        };
        decode_timestamp(payload).map(Some)
    }

    fn skip(&mut self, depth: usize) -> Result<(), MsgpackError> {
        if depth > MAX_DEPTH {
            return Err(MsgpackError::TooDeep(MAX_DEPTH));
        }
        let m = self.byte()?;
        let (skip, items): (usize, usize) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * (m & 0x0f) as usize),
            0x90..=0x9f => (0, (m & 0x0f) as usize),
            0xa0..=0xbf => ((m & 0x1f) as usize, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 | 0xca => (4, 0),
            0xcf | 0xd3 | 0xcb => (8, 0),
            0xd9 | 0xc4 => (self.be(1)? as usize, 0),
            0xda | 0xc5 => (self.be(2)? as usize, 0),
            0xdb | 0xc6 => (self.be(4)? as usize, 0),
            0xdc => (0, self.be(2)? as usize),
            0xdd => (0, self.be(4)? as usize),
            0xde => (0, 2 * self.be(2)? as usize),
            0xdf => (0, 2 * self.be(4)? as usize),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xc7 => (self.be(1)? as usize + 1, 0),
            0xc8 => (self.be(2)? as usize + 1, 0),
            0xc9 => (self.be(4)? as usize + 1, 0),
            _ => return Err(self.unexpected("a value", m)),
        };
        self.take(skip)?;
        // Each item needs at least one byte: a hostile count ends here.
        if items > self.b.len() - self.at {
            return Err(MsgpackError::Truncated { at: self.b.len() });
        }
        for _ in 0..items {
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

/// The msgpack timestamp formats: 32-bit seconds; 30-bit nanoseconds and
/// 34-bit seconds; 32-bit nanoseconds and 64-bit signed seconds.
fn decode_timestamp(p: &[u8]) -> Result<Timestamp, MsgpackError> {
    let be = |s: &[u8]| s.iter().fold(0u64, |a, &x| (a << 8) | x as u64);
    match p.len() {
        4 => Ok(Timestamp {
            secs: be(p) as i64,
            nanos: 0,
        }),
        8 => {
            let v = be(p);
            Ok(Timestamp {
                secs: (v & ((1 << 34) - 1)) as i64,
                nanos: (v >> 34) as u32,
            })
        }
        12 => Ok(Timestamp {
            secs: be(&p[4..]) as i64,
            nanos: be(&p[..4]) as u32,
        }),
        len => Err(MsgpackError::BadTime { len }),
    }
}

/// Decodes a raft.Log value. Unknown keys are skipped, as go-msgpack does.
pub fn decode_log(value: &[u8]) -> Result<LogRecord<'_>, MsgpackError> {
    let mut r = Reader { b: value, at: 0 };
    let n = r.map_len()?;
    if n > value.len() {
        return Err(MsgpackError::Truncated { at: value.len() });
    }
    let mut rec = LogRecord {
        index: 0,
        term: 0,
        log_type: 0,
        data: None,
        data_span: value.len()..value.len(),
        data_form: RawForm::Nil,
        extensions: None,
        appended_at: None,
    };
    for _ in 0..n {
        let (key, _) = r.raw("a field name")?;
        match key.unwrap_or(&[]) {
            b"AppendedAt" => rec.appended_at = r.time()?,
            b"Data" => {
                let start = r.at;
                let (data, form) = r.raw("Data bytes")?;
                rec.data = data;
                rec.data_form = form;
                rec.data_span = start..r.at;
            }
            b"Extensions" => rec.extensions = r.raw("Extensions bytes")?.0,
            b"Index" => rec.index = r.uint("Index")?,
            b"Term" => rec.term = r.uint("Term")?,
            b"Type" => {
                let t = r.uint("Type")?;
                rec.log_type = u8::try_from(t).map_err(|_| MsgpackError::OutOfRange {
                    field: "Type",
                    value: t,
                })?;
            }
            _ => r.skip(0)?,
        }
    }
    if r.at != value.len() {
        return Err(MsgpackError::Trailing(value.len() - r.at));
    }
    Ok(rec)
}

/// The header go-msgpack writes for a `[]byte` of `len` bytes: fixstr,
/// str16 or str32 (the old spec has no str8).
pub fn data_header(len: usize, out: &mut Vec<u8>) -> Result<(), MsgpackError> {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        let n = u32::try_from(len).map_err(|_| MsgpackError::DataTooLong(len))?;
        out.push(0xdb);
        out.extend_from_slice(&n.to_be_bytes());
    }
    Ok(())
}

/// `value` with its Data value replaced by `data`, every other byte kept.
/// Empty data keeps a nil Data nil (as go's nil slice stays nil).
pub fn splice_data(
    value: &[u8],
    rec: &LogRecord<'_>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), MsgpackError> {
    if rec.data_span.is_empty() || rec.data_span.end > value.len() {
        // No Data key at all: nothing to replace in place.
        return Err(MsgpackError::Unexpected {
            expected: "a Data field",
            at: value.len(),
            marker: 0,
        });
    }
    out.clear();
    out.reserve(value.len() + data.len() + 5);
    out.extend_from_slice(&value[..rec.data_span.start]);
    if data.is_empty() && rec.data.is_none() {
        out.push(0xc0);
    } else {
        data_header(data.len(), out)?;
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&value[rec.data_span.end..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Entry 21 of plain.log, a LogConfiguration (type 5).
    const CMD: &str = "86aa417070656e6465644174a8000000546553f100a444617461b46366672d6e6f742d656e637279707465642d3231aa457874656e73696f6e73c0a5496e64657815a45465726d03a45479706505";

    #[test]
    fn decodes_go_msgpack_log() {
        let v = hex(CMD);
        let r = decode_log(&v).unwrap();
        assert_eq!((r.index, r.term, r.log_type), (21, 3, 5));
        assert_eq!(r.data, Some(&b"cfg-not-encrypted-21"[..]));
        assert_eq!(r.data_form, RawForm::FixStr);
        assert_eq!(r.extensions, None);
        let t = r.appended_at.unwrap();
        assert_eq!(
            crate::format::raft::time::rfc3339_nano(t),
            "2023-11-14T22:13:20.000000021Z"
        );
    }

    #[test]
    fn splice_changes_only_data() {
        let v = hex(CMD);
        let r = decode_log(&v).unwrap();
        let mut out = Vec::new();
        for len in [0usize, 5, 31, 32, 255, 256, 65535, 65536] {
            let data = vec![7u8; len];
            splice_data(&v, &r, &data, &mut out).unwrap();
            let r2 = decode_log(&out).unwrap();
            assert_eq!(r2.data_bytes(), &data[..]);
            assert_eq!(&out[..r.data_span.start], &v[..r.data_span.start]);
            assert_eq!(&out[r2.data_span.end..], &v[r.data_span.end..]);
            let form = match len {
                0..=31 => RawForm::FixStr,
                32..=65535 => RawForm::Str16,
                _ => RawForm::Str32,
            };
            assert_eq!(r2.data_form, form, "len {len}");
        }
        // Splicing the same data back gives the same bytes.
        splice_data(&v, &r, r.data_bytes(), &mut out).unwrap();
        assert_eq!(out, v);
    }

    #[test]
    fn hostile_values_are_errors() {
        let v = hex(CMD);
        for cut in 0..v.len() {
            assert!(decode_log(&v[..cut]).is_err(), "cut {cut}");
        }
        assert!(decode_log(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_log(&[0x81, 0xa1, b'X', 0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        let mut deep = vec![0x81, 0xa1, b'X'];
        deep.extend(std::iter::repeat_n(0x91, 100));
        deep.push(0xc0);
        assert_eq!(decode_log(&deep), Err(MsgpackError::TooDeep(MAX_DEPTH)));
    }
}
