//! A minimal protobuf walker for the few messages the store holds.
//!
//! It borrows from the input and never allocates, so hostile input costs
//! nothing but an error. Unknown fields are skipped, as gogo-protobuf does.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("truncated varint at byte {0}")]
    TruncatedVarint(usize),
    #[error("varint longer than 10 bytes at byte {0}")]
    VarintOverflow(usize),
    #[error("field at byte {at} claims {len} bytes, only {left} remain")]
    TruncatedField { at: usize, len: u64, left: usize },
    #[error("illegal wire type {wire} for field {field} at byte {at}")]
    BadWireType { field: u64, wire: u8, at: usize },
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
}

/// Reads a varint at `pos`; returns the value and the position after it.
#[inline]
pub fn read_varint(buf: &[u8], pos: usize) -> Result<(u64, usize), ProtoError> {
    // One byte (tags, small lengths and counts): most varints of a record.
    match buf.get(pos) {
        Some(&b) if b < 0x80 => Ok((b as u64, pos + 1)),
        _ => read_varint_long(buf, pos),
    }
}

/// `read_varint` for `MsgView::parse`'s fast path: None where
/// `read_varint` fails (the caller then walks the message again to name the
/// error). (Reading eight bytes at once and packing their 7-bit groups took
/// more instructions per record than this loop.)
#[inline]
fn varint_fast(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let b = buf.get(pos..)?;
    match b.first() {
        Some(&x) if x < 0x80 => return Some((x as u64, pos + 1)),
        None => return None,
        _ => {}
    }
    let mut v = 0u64;
    for (i, &x) in b.iter().take(10).enumerate() {
        v |= ((x & 0x7f) as u64) << (7 * i);
        if x < 0x80 {
            // The tenth byte holds only the top bit of a u64.
            return (i < 9 || x <= 1).then_some((v, pos + i + 1));
        }
    }
    None
}

fn read_varint_long(buf: &[u8], mut pos: usize) -> Result<(u64, usize), ProtoError> {
    let start = pos;
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let Some(&b) = buf.get(pos) else {
            return Err(ProtoError::TruncatedVarint(start));
        };
        pos += 1;
        if shift == 63 && b > 1 {
            return Err(ProtoError::VarintOverflow(start));
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok((v, pos));
        }
        shift += 7;
        if shift > 63 {
            return Err(ProtoError::VarintOverflow(start));
        }
    }
}

pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// One field: its number, and either a varint value or a byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Varint(u64),
    Bytes(Range<usize>),
    Fixed64(u64),
    Fixed32(u32),
    /// A (deprecated) group: its contents, skipped as gogo-protobuf skips them.
    Group(Range<usize>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub number: u64,
    /// Byte offset of the tag.
    pub start: usize,
    pub value: Value,
}

/// Iterates the fields of one message.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        pos: 0,
        failed: false,
    }
}

impl Iterator for Fields<'_> {
    type Item = Result<Field, ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl Fields<'_> {
    fn step(&mut self) -> Result<Field, ProtoError> {
        let start = self.pos;
        let (tag, p) = read_varint(self.buf, self.pos)?;
        let number = tag >> 3;
        let wire = (tag & 7) as u8;
        if number == 0 {
            return Err(ProtoError::FieldZero(start));
        }
        let (value, next) = match wire {
            0 => {
                let (v, p2) = read_varint(self.buf, p)?;
                (Value::Varint(v), p2)
            }
            1 => {
                let b = self.take_bytes(p, 8)?;
                (
                    Value::Fixed64(u64::from_le_bytes(b.try_into().unwrap())),
                    p + 8,
                )
            }
            2 => {
                let (len, p2) = read_varint(self.buf, p)?;
                let left = self.buf.len() - p2;
                if len > left as u64 {
                    return Err(ProtoError::TruncatedField {
                        at: start,
                        len,
                        left,
                    });
                }
                let end = p2 + len as usize;
                (Value::Bytes(p2..end), end)
            }
            5 => {
                let b = self.take_bytes(p, 4)?;
                (
                    Value::Fixed32(u32::from_le_bytes(b.try_into().unwrap())),
                    p + 4,
                )
            }
            3 => {
                let end = self.skip_group(p)?;
                (Value::Group(p..end), end)
            }
            _ => {
                return Err(ProtoError::BadWireType {
                    field: number,
                    wire,
                    at: start,
                })
            }
        };
        self.pos = next;
        Ok(Field {
            number,
            start,
            value,
        })
    }

    /// Skips a group's fields up to its end-group tag; returns the position
    /// after it. Iterative, so hostile nesting cannot exhaust the stack.
    fn skip_group(&self, mut q: usize) -> Result<usize, ProtoError> {
        let mut depth = 1usize;
        loop {
            let at = q;
            let (tag, q2) = read_varint(self.buf, q)?;
            q = q2;
            match tag & 7 {
                0 => q = read_varint(self.buf, q)?.1,
                1 => q += self.take_bytes(q, 8)?.len(),
                2 => {
                    let (len, q3) = read_varint(self.buf, q)?;
                    let left = self.buf.len() - q3;
                    if len > left as u64 {
                        return Err(ProtoError::TruncatedField { at, len, left });
                    }
                    q = q3 + len as usize;
                }
                3 => depth += 1,
                4 => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(q);
                    }
                }
                5 => q += self.take_bytes(q, 4)?.len(),
                w => {
                    return Err(ProtoError::BadWireType {
                        field: tag >> 3,
                        wire: w as u8,
                        at,
                    })
                }
            }
        }
    }

    fn take_bytes(&self, p: usize, n: usize) -> Result<&[u8], ProtoError> {
        self.buf.get(p..p + n).ok_or(ProtoError::TruncatedField {
            at: p,
            len: n as u64,
            left: self.buf.len().saturating_sub(p),
        })
    }
}

fn expect_varint(f: &Field) -> Result<u64, ProtoError> {
    match f.value {
        Value::Varint(v) => Ok(v),
        _ => Err(ProtoError::BadWireType {
            field: f.number,
            wire: wire_of(&f.value),
            at: f.start,
        }),
    }
}

fn expect_bytes(f: &Field) -> Result<Range<usize>, ProtoError> {
    match &f.value {
        Value::Bytes(r) => Ok(r.clone()),
        v => Err(ProtoError::BadWireType {
            field: f.number,
            wire: wire_of(v),
            at: f.start,
        }),
    }
}

fn wire_of(v: &Value) -> u8 {
    match v {
        Value::Varint(_) => 0,
        Value::Fixed64(_) => 1,
        Value::Bytes(_) => 2,
        Value::Fixed32(_) => 5,
        Value::Group(_) => 3,
    }
}

/// A message record (MsgProto), borrowed from the record payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgView<'a> {
    pub sequence: u64,
    pub subject: &'a [u8],
    pub reply: &'a [u8],
    pub data: &'a [u8],
    /// Where field 4 sits in the record: tag start .. end of value. `None`
    /// when the payload is empty (proto3 omits it).
    pub data_field: Option<Range<usize>>,
    pub timestamp: i64,
    pub redelivered: bool,
    /// Where subject and reply sit in the record payload.
    pub subject_at: Range<usize>,
    pub reply_at: Range<usize>,
    /// Field 4 appears more than once (the last one counts, as in gogo-protobuf).
    pub data_repeated: bool,
}

impl<'a> MsgView<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, ProtoError> {
        // Every record is parsed once per command, and a record of a tiny
        // message is mostly tags and varints: the fast path takes what the
        // server writes (fields 1-7 and 10 with their own wire types) and
        // leaves anything else, errors included, to the general walk, so
        // both give the same answer on every input.
        match Self::parse_fast(buf) {
            Some(m) => Ok(m),
            None => Self::parse_fields(buf),
        }
    }

    /// `parse` of a well-formed message of known fields; None for anything
    /// else (an unknown field, another wire type, any error), which
    /// `parse_fields` then walks.
    #[inline]
    fn parse_fast(buf: &'a [u8]) -> Option<Self> {
        let mut m = MsgView::default();
        let mut pos = 0;
        while pos < buf.len() {
            let start = pos;
            let (tag, p) = varint_fast(buf, pos)?;
            pos = p;
            match tag {
                // (field << 3) | wire: varints 1, 5, 6, 7, 10; bytes 2, 3, 4.
                0x08 | 0x28 | 0x30 | 0x38 | 0x50 => {
                    let (v, p) = varint_fast(buf, pos)?;
                    pos = p;
                    match tag {
                        0x08 => m.sequence = v,
                        0x28 => m.timestamp = v as i64,
                        0x30 => m.redelivered = v != 0,
                        _ => {}
                    }
                }
                0x12 | 0x1a | 0x22 => {
                    let (len, p) = varint_fast(buf, pos)?;
                    if len > (buf.len() - p) as u64 {
                        return None;
                    }
                    let r = p..p + len as usize;
                    pos = r.end;
                    match tag {
                        0x12 => {
                            m.subject = &buf[r.clone()];
                            m.subject_at = r;
                        }
                        0x1a => {
                            m.reply = &buf[r.clone()];
                            m.reply_at = r;
                        }
                        _ => {
                            m.data_repeated |= m.data_field.is_some();
                            m.data = &buf[r.clone()];
                            m.data_field = Some(start..r.end);
                        }
                    }
                }
                _ => return None,
            }
        }
        Some(m)
    }

    /// The general walk: every field, unknown ones skipped, errors named.
    fn parse_fields(buf: &'a [u8]) -> Result<Self, ProtoError> {
        let mut m = MsgView::default();
        for f in fields(buf) {
            let f = f?;
            match f.number {
                1 => m.sequence = expect_varint(&f)?,
                2 => {
                    m.subject_at = expect_bytes(&f)?;
                    m.subject = &buf[m.subject_at.clone()];
                }
                3 => {
                    m.reply_at = expect_bytes(&f)?;
                    m.reply = &buf[m.reply_at.clone()];
                }
                4 => {
                    let r = expect_bytes(&f)?;
                    m.data_repeated |= m.data_field.is_some();
                    m.data = &buf[r.clone()];
                    m.data_field = Some(f.start..r.end);
                }
                5 => m.timestamp = expect_varint(&f)? as i64,
                6 => m.redelivered = expect_varint(&f)? != 0,
                // redeliveryCount and CRC32: unused here, but gogo-protobuf
                // rejects them with any other wire type, and so must we.
                7 | 10 => {
                    expect_varint(&f)?;
                }
                _ => {}
            }
        }
        Ok(m)
    }
}

/// Builds a record payload identical to `orig` except for field 4, which
/// becomes `new_data` (absent when empty, as the server writes it).
pub fn replace_data(orig: &[u8], field: Option<Range<usize>>, new_data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    append_replaced_data(orig, field, new_data, out)
}

/// `replace_data`, appending to what `out` already holds (a record header,
/// so the record is built without another copy).
pub fn append_replaced_data(
    orig: &[u8],
    field: Option<Range<usize>>,
    new_data: &[u8],
    out: &mut Vec<u8>,
) {
    append_replaced_with(orig, field, new_data.len(), out, |o| {
        o.extend_from_slice(new_data)
    })
}

/// `append_replaced_data` for new data of `len` bytes that `fill` appends to
/// `out` where it belongs (so it can be produced in place, e.g. sealed,
/// without a copy); `fill` must append exactly `len` bytes.
pub fn append_replaced_with(
    orig: &[u8],
    field: Option<Range<usize>>,
    len: usize,
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    let at = match field {
        Some(r) => r,
        None => {
            // Field 4 absent: insert it before the first field numbered > 4
            // so fields stay in number order.
            let mut insert_at = orig.len();
            for f in fields(orig).flatten() {
                if f.number > 4 {
                    insert_at = f.start;
                    break;
                }
            }
            insert_at..insert_at
        }
    };
    out.reserve(orig.len() - at.len() + len + 11);
    out.extend_from_slice(&orig[..at.start]);
    // Empty data: no field 4, as the server writes it.
    if len > 0 {
        out.push(0x22);
        write_varint(out, len as u64);
        let start = out.len();
        fill(out);
        assert_eq!(out.len() - start, len, "fill appended the announced length");
    }
    out.extend_from_slice(&orig[at.end..]);
}

/// Length of the payload that `replace_data` would produce.
pub fn replaced_len(orig_len: usize, field: Option<&Range<usize>>, new_data_len: usize) -> usize {
    let old = field.map_or(0, |r| r.len());
    let new = if new_data_len == 0 {
        0
    } else {
        1 + varint_len(new_data_len as u64) + new_data_len
    };
    orig_len - old + new
}

/// ServerInfo from server.dat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub cluster_id: String,
    pub node_id: String,
}

impl ServerInfo {
    pub fn parse(buf: &[u8]) -> Result<Self, ProtoError> {
        let mut s = ServerInfo::default();
        for f in fields(buf) {
            let f = f?;
            match f.number {
                1 => s.cluster_id = String::from_utf8_lossy(&buf[expect_bytes(&f)?]).into_owned(),
                9 => s.node_id = String::from_utf8_lossy(&buf[expect_bytes(&f)?]).into_owned(),
                _ => {}
            }
        }
        Ok(s)
    }
}

/// The client ID (field 1) of a ClientInfo (`delete` false) or a
/// ClientDelete, decoded as the server's generated code does: every field it
/// declares must have its wire type, and the last field 1 wins.
pub fn client_id(buf: &[u8], delete: bool) -> Result<&[u8], ProtoError> {
    let mut id = 0..0;
    for f in fields(buf) {
        let f = f?;
        match (f.number, delete) {
            (1, _) => id = expect_bytes(&f)?,
            (2 | 3, false) => {
                expect_bytes(&f)?;
            }
            (4..=6, false) => {
                expect_varint(&f)?;
            }
            _ => {}
        }
    }
    Ok(&buf[id])
}

/// SubState from subs.dat (record type 1 and 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubState {
    pub id: u64,
    pub client_id: String,
    pub queue_group: String,
    pub inbox: String,
    pub durable_name: String,
    pub last_sent: u64,
    pub is_durable: bool,
    pub is_closed: bool,
}

impl SubState {
    pub fn parse(buf: &[u8]) -> Result<Self, ProtoError> {
        let mut s = SubState::default();
        let text = |r: Range<usize>| String::from_utf8_lossy(&buf[r]).into_owned();
        for f in fields(buf) {
            let f = f?;
            match f.number {
                1 => s.id = expect_varint(&f)?,
                2 => s.client_id = text(expect_bytes(&f)?),
                3 => s.queue_group = text(expect_bytes(&f)?),
                4 => s.inbox = text(expect_bytes(&f)?),
                5 => {
                    expect_bytes(&f)?;
                }
                6 | 7 => {
                    expect_varint(&f)?;
                }
                8 => s.durable_name = text(expect_bytes(&f)?),
                9 => s.last_sent = expect_varint(&f)?,
                10 => s.is_durable = expect_varint(&f)? != 0,
                11 => s.is_closed = expect_varint(&f)? != 0,
                _ => {}
            }
        }
        Ok(s)
    }
}

/// SubStateUpdate / SubStateDelete: (1 ID, 2 seqno).
pub fn sub_update(buf: &[u8]) -> Result<(u64, u64), ProtoError> {
    let (mut id, mut seq) = (0, 0);
    for f in fields(buf) {
        let f = f?;
        match f.number {
            1 => id = expect_varint(&f)?,
            2 => seq = expect_varint(&f)?,
            _ => {}
        }
    }
    Ok((id, seq))
}

/// Why the server's generated (gogo-protobuf) `MsgProto.Unmarshal` rejects
/// a payload: the facts of its error text (`report::words::gogo_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GogoError {
    /// `unexpected EOF`
    UnexpectedEof,
    /// `proto: integer overflow`
    IntegerOverflow,
    /// `proto: MsgProto: wiretype end group for non-group`
    EndGroupForNonGroup,
    /// `proto: MsgProto: illegal tag F (wire type W)` (W: the whole tag varint).
    IllegalTag { field: i32, wire: u64 },
    /// `proto: wrong wireType = W for field NAME`
    WrongWireType { wire: u8, field: &'static str },
    /// `proto: negative length found during unmarshaling`
    NegativeLength,
    /// `proto: illegal wireType W` (skipping an unknown field)
    IllegalWireType(u8),
    /// `proto: unexpected end of group`
    UnexpectedEndOfGroup,
}

/// A varint as gogo decodes it: (value, next position).
fn gogo_varint(buf: &[u8], mut i: usize) -> Result<(u64, usize), GogoError> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        if shift >= 64 {
            return Err(GogoError::IntegerOverflow);
        }
        let &b = buf.get(i).ok_or(GogoError::UnexpectedEof)?;
        i += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Ok((v, i));
        }
        shift += 7;
    }
}

/// gogo's `skipProtocol`: the length of the unknown field at the start of `buf`.
fn gogo_skip(buf: &[u8]) -> Result<usize, GogoError> {
    let l = buf.len();
    let mut i = 0usize;
    let mut depth = 0u32;
    while i < l {
        let (wire, next) = gogo_varint(buf, i)?;
        i = next;
        match wire & 7 {
            0 => {
                let (_, next) = gogo_varint(buf, i)?;
                i = next;
            }
            1 => i = i.saturating_add(8),
            2 => {
                let (len, next) = gogo_varint(buf, i)?;
                if len > i64::MAX as u64 {
                    return Err(GogoError::NegativeLength);
                }
                i = next.saturating_add(len as usize);
            }
            3 => depth += 1,
            4 => {
                if depth == 0 {
                    return Err(GogoError::UnexpectedEndOfGroup);
                }
                depth -= 1;
            }
            5 => i = i.saturating_add(4),
            w => return Err(GogoError::IllegalWireType(w as u8)),
        }
        if depth == 0 {
            return Ok(i);
        }
    }
    Err(GogoError::UnexpectedEof)
}

/// The error the server's `MsgProto.Unmarshal` returns for `buf`, if any.
pub fn gogo_msg_error(buf: &[u8]) -> Option<GogoError> {
    gogo_msg(buf).err()
}

fn gogo_msg(buf: &[u8]) -> Result<(), GogoError> {
    const FIELDS: [(u64, &str, u8); 8] = [
        (1, "Sequence", 0),
        (2, "Subject", 2),
        (3, "Reply", 2),
        (4, "Data", 2),
        (5, "Timestamp", 0),
        (6, "Redelivered", 0),
        (7, "RedeliveryCount", 0),
        (10, "CRC32", 0),
    ];
    let l = buf.len();
    let mut i = 0usize;
    while i < l {
        let pre = i;
        let (wire, next) = gogo_varint(buf, i)?;
        i = next;
        let field = (wire >> 3) as i32;
        let wt = (wire & 7) as u8;
        if wt == 4 {
            return Err(GogoError::EndGroupForNonGroup);
        }
        if field <= 0 {
            return Err(GogoError::IllegalTag { field, wire });
        }
        match FIELDS.iter().find(|f| f.0 == field as u64) {
            Some(&(_, name, want)) => {
                if wt != want {
                    return Err(GogoError::WrongWireType {
                        wire: wt,
                        field: name,
                    });
                }
                let (v, next) = gogo_varint(buf, i)?;
                i = next;
                if want == 2 {
                    if v > i64::MAX as u64 {
                        return Err(GogoError::NegativeLength);
                    }
                    let post = i.checked_add(v as usize).ok_or(GogoError::NegativeLength)?;
                    if post > l {
                        return Err(GogoError::UnexpectedEof);
                    }
                    i = post;
                }
            }
            None => {
                let skip = gogo_skip(&buf[pre..])?;
                if pre.saturating_add(skip) > l {
                    return Err(GogoError::UnexpectedEof);
                }
                i = pre + skip;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MsgView::parse`'s fast path answers as the general walk does, or
    /// not at all: on messages as the server writes them, with every field
    /// and varint width, and on every cut and one-byte change of them.
    #[test]
    fn fast_parse_agrees_with_the_walk() {
        let mut msgs = Vec::new();
        for seq in [0u64, 1, 127, 128, 1 << 40, u64::MAX] {
            for data_len in [0usize, 1, 40, 200] {
                let mut m = vec![0x08];
                write_varint(&mut m, seq);
                m.extend_from_slice(&[0x12, 3, b'a', b'.', b'b']);
                if seq % 2 == 1 {
                    m.extend_from_slice(&[0x1a, 2, b'r', b'x']);
                }
                if data_len > 0 {
                    m.push(0x22);
                    write_varint(&mut m, data_len as u64);
                    m.extend((0..data_len).map(|i| i as u8));
                }
                m.push(0x28);
                write_varint(&mut m, seq.wrapping_mul(1_000_000_007));
                if seq > 1000 {
                    m.extend_from_slice(&[0x30, 1, 0x38, 3, 0x50, 0x80, 0x01]);
                }
                msgs.push(m);
            }
        }
        // Field 4 twice, an unknown field, a group, a non-canonical tag.
        msgs.push(vec![0x22, 1, 7, 0x22, 2, 8, 9]);
        msgs.push(vec![0x08, 5, 0x48, 1, 0x22, 1, 3]);
        msgs.push(vec![0x08, 5, 0x5b, 0x08, 1, 0x5c, 0x22, 1, 3]);
        msgs.push(vec![0x88, 0x00, 5, 0x22, 1, 3]);
        // Ten-byte varints: the largest u64, and one byte too large.
        let mut max = vec![0x08];
        max.extend_from_slice(&[0xff; 9]);
        max.push(0x01);
        msgs.push(max.clone());
        *max.last_mut().unwrap() = 0x02;
        msgs.push(max);
        let mut checked = 0;
        for m in &msgs {
            let mut variants = vec![m.clone()];
            for cut in 0..m.len() {
                variants.push(m[..cut].to_vec());
            }
            for at in 0..m.len() {
                for b in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, m[at] ^ 0x80] {
                    let mut v = m.clone();
                    v[at] = b;
                    variants.push(v);
                }
            }
            for v in variants {
                let walk = MsgView::parse_fields(&v);
                assert_eq!(MsgView::parse(&v), walk, "{v:02x?}");
                if let Some(fast) = MsgView::parse_fast(&v) {
                    assert_eq!(Ok(fast), walk, "{v:02x?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > msgs.len(), "the fast path took {checked}");
    }

    /// The fast varint reader agrees with `read_varint` on every width,
    /// canonical or not, at the end of the buffer or before more bytes, and
    /// on the overlong and cut ones.
    #[test]
    fn fast_varints_agree() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for bits in 0..64u32 {
            for v in [
                1u64 << bits,
                (1u64 << bits) - 1,
                (1u64 << bits) | 0x55,
                u64::MAX >> bits,
            ] {
                let mut b = Vec::new();
                write_varint(&mut b, v);
                cases.push(b);
            }
        }
        for n in 1..=12 {
            for last in [0x00, 0x01, 0x02, 0x7f, 0x80] {
                let mut b = vec![0xff; n - 1];
                b.push(last);
                cases.push(b);
                let mut b = vec![0x80; n - 1];
                b.push(last);
                cases.push(b);
            }
        }
        for c in cases {
            for tail in [&[][..], &[0x08], &[0xff; 12]] {
                for lead in 0..3 {
                    let mut b = vec![0x01; lead];
                    b.extend_from_slice(&c);
                    b.extend_from_slice(tail);
                    for cut in lead..=b.len() {
                        let b = &b[..cut];
                        assert_eq!(varint_fast(b, lead), read_varint(b, lead).ok(), "{b:02x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn varints() {
        let mut v = Vec::new();
        for x in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            v.clear();
            write_varint(&mut v, x);
            assert_eq!(v.len(), varint_len(x));
            assert_eq!(read_varint(&v, 0).unwrap(), (x, v.len()));
        }
        assert!(read_varint(&[0x80], 0).is_err());
        assert!(read_varint(&[0xff; 11], 0).is_err());
    }

    #[test]
    fn gogo_errors() {
        assert_eq!(gogo_msg_error(&[0x08, 1, 0x28, 5]), None);
        assert_eq!(
            gogo_msg_error(&[0x08, 1, 0, 0]),
            Some(GogoError::IllegalTag { field: 0, wire: 0 })
        );
        assert_eq!(
            gogo_msg_error(&[0x02]),
            Some(GogoError::IllegalTag { field: 0, wire: 2 })
        );
        assert_eq!(
            gogo_msg_error(&[0x12, 5, b'a']),
            Some(GogoError::UnexpectedEof)
        );
        assert_eq!(
            gogo_msg_error(&[0x0a, 0]),
            Some(GogoError::WrongWireType {
                wire: 2,
                field: "Sequence"
            })
        );
        assert_eq!(
            gogo_msg_error(&[0x0c]),
            Some(GogoError::EndGroupForNonGroup)
        );
        assert_eq!(gogo_msg_error(&[0x5b, 0x5c, 0x08, 1]), None);
        assert_eq!(gogo_msg_error(&[0x5e]), Some(GogoError::IllegalWireType(6)));
    }

    #[test]
    fn replace_roundtrip() {
        // seq 1, subject "a", data "xyz", timestamp 5
        let rec = [0x08, 1, 0x12, 1, b'a', 0x22, 3, b'x', b'y', b'z', 0x28, 5];
        let m = MsgView::parse(&rec).unwrap();
        assert_eq!(m.data, b"xyz");
        let mut out = Vec::new();
        replace_data(&rec, m.data_field.clone(), b"", &mut out);
        assert_eq!(out, [0x08, 1, 0x12, 1, b'a', 0x28, 5]);
        assert_eq!(replaced_len(rec.len(), m.data_field.as_ref(), 0), out.len());
        let m2 = MsgView::parse(&out).unwrap();
        let mut back = Vec::new();
        replace_data(&out, m2.data_field, b"xyz", &mut back);
        assert_eq!(back, rec);
        // Filled in place (after what `out` holds), with a 2-byte length,
        // into the present field and the absent one: the same bytes.
        let big = [7u8; 200];
        for (orig, field) in [(&rec[..], m.data_field.clone()), (&out, None)] {
            let mut want = vec![9];
            append_replaced_data(orig, field.clone(), &big, &mut want);
            let mut got = vec![9];
            append_replaced_with(orig, field, big.len(), &mut got, |o| {
                o.extend_from_slice(&big)
            });
            assert_eq!(got, want);
            assert_eq!(&want[..8], [9, 0x08, 1, 0x12, 1, b'a', 0x22, 0xc8]);
            assert_eq!(MsgView::parse(&want[1..]).unwrap().data, big);
        }
    }
}
