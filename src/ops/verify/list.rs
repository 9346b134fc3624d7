//! `--list`'s lines, one per message, in bounded memory: each slice encodes
//! its MSG lines as its lookups make them (in sequence order), and beyond
//! `FLUSH_AT` bytes appends them to an unnamed temporary file shared by all
//! slices; the report reads them back, merging each channel's slices by
//! sequence, as it prints. A line costs its size on disk (about 90 bytes
//! plus subject and reply for a delivered message) instead of ~200 bytes
//! of memory.

use super::*;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

/// A slice's encoded lines go to the file beyond this many bytes.
const FLUSH_AT: usize = 64 << 10;
/// Fewer bytes than this at the end of a slice stay in memory.
const KEEP_BELOW: usize = 4 << 10;

/// The temporary file the slices' lines go to (opened on first use).
#[derive(Debug, Default)]
pub struct Spill {
    file: Mutex<Option<(std::fs::File, u64)>>,
}

impl Spill {
    fn append(&self, bytes: &[u8]) -> io::Result<(u64, u64)> {
        let mut f = self.file.lock().expect("not poisoned");
        if f.is_none() {
            *f = Some((crate::crypto::nonce::spill_file()?, 0));
        }
        let (file, end) = f.as_mut().expect("just opened");
        file.write_all_at(bytes, *end)?;
        let at = *end;
        *end += bytes.len() as u64;
        Ok((at, bytes.len() as u64))
    }

    fn read(&self, (at, len): (u64, u64), buf: &mut Vec<u8>) -> io::Result<()> {
        let f = self.file.lock().expect("not poisoned");
        let (file, _) = f
            .as_ref()
            .ok_or_else(|| io::Error::other("no spill file"))?;
        buf.resize(len as usize, 0);
        file.read_exact_at(buf, at)
    }
}

/// The MSG lines of one slice, in sequence order.
#[derive(Debug, Clone, Default)]
pub(super) struct SliceLines {
    /// (offset, length) of each run of lines in the spill file, then `tail`.
    chunks: Vec<(u64, u64)>,
    tail: Vec<u8>,
    /// The failures' problems, referred to by number.
    problems: Vec<Problem>,
    /// The sequence of the first line.
    first: Option<u64>,
}

/// Encodes a slice's lines as its lookups make them.
pub(super) struct ListWriter<'s> {
    spill: &'s Spill,
    lines: SliceLines,
    err: Option<io::Error>,
}

impl<'s> ListWriter<'s> {
    pub(super) fn new(spill: &'s Spill) -> Self {
        ListWriter {
            spill,
            lines: SliceLines::default(),
            err: None,
        }
    }

    pub(super) fn push(&mut self, seq: u64, outcome: Outcome) {
        let l = &mut self.lines;
        l.first.get_or_insert(seq);
        let b = &mut l.tail;
        b.extend_from_slice(&seq.to_le_bytes());
        match outcome {
            Outcome::NotFound => b.push(0),
            Outcome::Delivered {
                len,
                sha256,
                subject,
                reply,
                timestamp,
            } => {
                b.push(1);
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&sha256);
                b.extend_from_slice(&timestamp.to_le_bytes());
                for s in [subject, reply] {
                    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
            }
            Outcome::Failed(p, len) => {
                // Runs of one problem (a wrong key for a whole slice) share it.
                let n = match l.problems.iter().rev().take(8).position(|q| *q == p) {
                    Some(back) => l.problems.len() - 1 - back,
                    None => {
                        l.problems.push(p);
                        l.problems.len() - 1
                    }
                };
                b.push(2);
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&(n as u32).to_le_bytes());
            }
        }
        if l.tail.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.err.is_some() || self.lines.tail.is_empty() {
            return;
        }
        match self.spill.append(&self.lines.tail) {
            Ok(c) => self.lines.chunks.push(c),
            Err(e) => self.err = Some(e),
        }
        self.lines.tail.clear();
    }

    pub(super) fn finish(mut self) -> io::Result<SliceLines> {
        if self.lines.tail.len() >= KEEP_BELOW {
            self.flush();
        }
        self.lines.tail.shrink_to_fit();
        match self.err {
            Some(e) => Err(e),
            None => Ok(self.lines),
        }
    }
}

/// A channel's part of `--list`: its CHANNEL line, then its messages.
#[derive(Debug, Clone)]
pub(super) struct ChannelLines {
    pub(super) channel: Line,
    pub(super) name: String,
    pub(super) slices: Vec<SliceLines>,
    /// Sequences between slices (not found), sorted; after the slices'
    /// lines of the same sequence.
    pub(super) gaps: Vec<u64>,
}

/// Every line of `--list`, in order: `head` (the server's log lines and
/// the SERVER line, or the RECOVER-ERROR line), then each channel's.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    pub(super) head: Vec<Line>,
    pub(super) channels: Vec<ChannelLines>,
    pub(super) spill: Arc<Spill>,
}

impl Lines {
    /// Hands each line to `f`, in order (the MSG lines read back from the
    /// temporary file as they come).
    pub fn try_for_each(&self, mut f: impl FnMut(&Line) -> io::Result<()>) -> io::Result<()> {
        for l in &self.head {
            f(l)?;
        }
        for ch in &self.channels {
            f(&ch.channel)?;
            let mut merged = Merge::new(ch, &self.spill)?;
            while let Some((seq, outcome)) = merged.next()? {
                f(&Line::Msg {
                    channel: ch.name.clone(),
                    seq,
                    outcome,
                })?;
            }
        }
        Ok(())
    }

    /// All lines in memory (for tests and small stores).
    pub fn to_vec(&self) -> io::Result<Vec<Line>> {
        let mut out = Vec::new();
        self.try_for_each(|l| {
            out.push(l.clone());
            Ok(())
        })?;
        Ok(out)
    }
}

/// One slice's lines read back.
struct Reader<'a> {
    lines: &'a SliceLines,
    spill: &'a Spill,
    next_chunk: usize,
    buf: Vec<u8>,
    pos: usize,
    in_tail: bool,
}

impl<'a> Reader<'a> {
    fn new(lines: &'a SliceLines, spill: &'a Spill) -> Self {
        Reader {
            lines,
            spill,
            next_chunk: 0,
            buf: Vec::new(),
            pos: 0,
            in_tail: false,
        }
    }

    fn next(&mut self) -> io::Result<Option<(u64, Outcome)>> {
        loop {
            let bytes: &[u8] = if self.in_tail {
                &self.lines.tail
            } else {
                &self.buf
            };
            if self.pos < bytes.len() {
                let (seq, o, used) = decode(&bytes[self.pos..], &self.lines.problems)?;
                self.pos += used;
                return Ok(Some((seq, o)));
            }
            if self.in_tail {
                return Ok(None);
            }
            self.pos = 0;
            match self.lines.chunks.get(self.next_chunk) {
                Some(&c) => {
                    self.spill.read(c, &mut self.buf)?;
                    self.next_chunk += 1;
                }
                None => {
                    self.buf = Vec::new();
                    self.in_tail = true;
                }
            }
        }
    }
}

fn decode(b: &[u8], problems: &[Problem]) -> io::Result<(u64, Outcome, usize)> {
    let bad = || io::Error::other("--list spill file: bad line");
    let mut at = 0usize;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        let s = b.get(at..at + n).ok_or_else(bad)?;
        at += n;
        Ok(s)
    };
    let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
    let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
    let seq = u64_(take(8)?);
    let outcome = match take(1)?[0] {
        0 => Outcome::NotFound,
        1 => {
            let len = u32_(take(4)?);
            let sha256: [u8; 32] = take(32)?.try_into().expect("32 bytes");
            let timestamp = u64_(take(8)?) as i64;
            let mut text = || -> io::Result<String> {
                let n = u32_(take(4)?) as usize;
                Ok(String::from_utf8_lossy(take(n)?).into_owned())
            };
            let subject = text()?;
            let reply = text()?;
            Outcome::Delivered {
                len,
                sha256,
                subject,
                reply,
                timestamp,
            }
        }
        2 => {
            let len = u32_(take(4)?);
            let n = u32_(take(4)?) as usize;
            Outcome::Failed(problems.get(n).ok_or_else(bad)?.clone(), len)
        }
        _ => return Err(bad()),
    };
    Ok((seq, outcome, at))
}

/// A channel's MSG lines in sequence order, as a stable sort of its slices'
/// lines (in slice order) followed by the gaps' would put them: a merge by
/// (sequence, slice), which only reads a slice once the merge reaches its
/// first sequence (slices rarely overlap, so few are read at once).
struct Merge<'a> {
    readers: Vec<Reader<'a>>,
    /// Slices not read yet, by (first sequence, slice), smallest last.
    pending: Vec<(u64, usize)>,
    /// (sequence, stream) of each read stream's next line; stream
    /// `readers.len()` is the gaps.
    heads: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>>,
    current: Vec<Option<Outcome>>,
    gaps: std::iter::Peekable<std::slice::Iter<'a, u64>>,
}

impl<'a> Merge<'a> {
    fn new(ch: &'a ChannelLines, spill: &'a Spill) -> io::Result<Self> {
        let readers: Vec<Reader<'a>> = ch.slices.iter().map(|l| Reader::new(l, spill)).collect();
        let mut pending: Vec<(u64, usize)> = ch
            .slices
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.first.map(|f| (f, i)))
            .collect();
        pending.sort_unstable_by(|a, b| b.cmp(a));
        let n = readers.len();
        let mut m = Merge {
            readers,
            pending,
            heads: Default::default(),
            current: (0..n).map(|_| None).collect(),
            gaps: ch.gaps.iter().peekable(),
        };
        if let Some(&&g) = m.gaps.peek() {
            m.heads.push(std::cmp::Reverse((g, n)));
        }
        Ok(m)
    }

    fn advance(&mut self, i: usize) -> io::Result<()> {
        if let Some((seq, o)) = self.readers[i].next()? {
            self.current[i] = Some(o);
            self.heads.push(std::cmp::Reverse((seq, i)));
        }
        Ok(())
    }

    fn next(&mut self) -> io::Result<Option<(u64, Outcome)>> {
        // Every slice whose first line may come next is read from.
        while let Some(&(first, i)) = self.pending.last() {
            match self.heads.peek() {
                Some(std::cmp::Reverse((seq, _))) if first > *seq => break,
                _ => {
                    self.pending.pop();
                    self.advance(i)?;
                }
            }
        }
        let Some(std::cmp::Reverse((seq, i))) = self.heads.pop() else {
            return Ok(None);
        };
        if i == self.readers.len() {
            self.gaps.next();
            if let Some(&&g) = self.gaps.peek() {
                self.heads.push(std::cmp::Reverse((g, i)));
            }
            return Ok(Some((seq, Outcome::NotFound)));
        }
        let o = self.current[i].take().expect("a head has its line");
        self.advance(i)?;
        Ok(Some((seq, o)))
    }
}
