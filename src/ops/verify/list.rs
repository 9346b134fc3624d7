//! `--list`'s lines, one per message, in bounded memory: each slice encodes
//! its MSG lines as its lookups make them (in sequence order) into a
//! `crate::ops::spill` listing (beyond 64 KiB, an unnamed temporary file
//! shared by all slices); the report reads them back, merging each
//! channel's slices by sequence, as it prints. A line costs its size on disk (about 90 bytes
//! plus subject and reply for a delivered message) instead of ~200 bytes
//! of memory.

use super::*;
use crate::ops::spill::{self, Fields, Spilled, Writer};
use std::io;
use std::sync::Arc;

pub use crate::ops::spill::Spill;

/// The MSG lines of one slice, in sequence order.
#[derive(Debug, Clone, Default)]
pub(super) struct SliceLines {
    lines: Spilled,
    /// The failures' problems, referred to by number.
    problems: Vec<Problem>,
    /// The sequence of the first line.
    first: Option<u64>,
}

/// Encodes a slice's lines as its lookups make them.
pub(super) struct ListWriter<'s> {
    out: Writer<'s>,
    problems: Vec<Problem>,
    first: Option<u64>,
}

impl<'s> ListWriter<'s> {
    pub(super) fn new(spill: &'s Spill) -> Self {
        ListWriter {
            out: Writer::new(spill),
            problems: Vec::new(),
            first: None,
        }
    }

    pub(super) fn push(&mut self, seq: u64, outcome: Outcome) {
        self.first.get_or_insert(seq);
        let problems = &mut self.problems;
        let b = self.out.buf();
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
                let n = match problems.iter().rev().take(8).position(|q| *q == p) {
                    Some(back) => problems.len() - 1 - back,
                    None => {
                        problems.push(p);
                        problems.len() - 1
                    }
                };
                b.push(2);
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&(n as u32).to_le_bytes());
            }
        }
        self.out.done();
    }

    pub(super) fn finish(self) -> io::Result<SliceLines> {
        Ok(SliceLines {
            lines: self.out.finish()?,
            problems: self.problems,
            first: self.first,
        })
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
    inner: spill::Reader<'a>,
}

impl<'a> Reader<'a> {
    fn new(lines: &'a SliceLines, spill: &'a Spill) -> Self {
        Reader {
            lines,
            inner: spill::Reader::new(&lines.lines, spill),
        }
    }

    fn next(&mut self) -> io::Result<Option<(u64, Outcome)>> {
        let problems = &self.lines.problems;
        self.inner.next(|b| decode(b, problems))
    }
}

fn decode(b: &[u8], problems: &[Problem]) -> io::Result<((u64, Outcome), usize)> {
    let mut f = Fields::new(b, "--list");
    let seq = f.u64()?;
    let outcome = match f.u8()? {
        0 => Outcome::NotFound,
        1 => {
            let len = f.u32()?;
            let sha256: [u8; 32] = f.take(32)?.try_into().expect("32 bytes");
            let timestamp = f.u64()? as i64;
            let mut text = || -> io::Result<String> {
                let n = f.u32()? as usize;
                Ok(String::from_utf8_lossy(f.take(n)?).into_owned())
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
            let len = f.u32()?;
            let n = f.u32()? as usize;
            Outcome::Failed(problems.get(n).ok_or_else(|| f.bad())?.clone(), len)
        }
        _ => return Err(f.bad()),
    };
    Ok(((seq, outcome), f.used()))
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
