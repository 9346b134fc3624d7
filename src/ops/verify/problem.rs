//! Why a message is not delivered as plaintext, and findings grouped by kind.

use super::*;

/// Why one message is not delivered as plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    WrongKey(Cipher),
    Lookalike(Cipher),
    Short,
    Crc {
        expected: u32,
        actual: u32,
    },
    BadRecord(BadRecord),
    /// Looked up, not there: why, and what would help.
    NotFound(NotFound, NotFoundRemedy),
    Ciphertext,
    /// Encryption off: plaintext starting with 1 or 2, fine now, fails once it is on.
    LookalikeLater,
    /// Delivered, but only because the server's read-ahead serves it (the
    /// batch read frames records by the index's sizes from the batch's first
    /// offset, and never looks at a header's size or a later entry's
    /// offset); a lookup that reads it alone fails with this problem.
    ReadAheadOnly(Box<Problem>),
}

/// Why the record an index entry points to cannot be delivered: the
/// server's single-record read (`readMsgRecord`) and decode, in the order
/// it checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRecord {
    /// Nothing at the entry's offset: `EOF`.
    Eof,
    /// Fewer than 8 + the index's size bytes at the offset: `unexpected EOF`.
    UnexpectedEof,
    /// A zero header (size 0, CRC 0): `end of file padded with zeros`.
    ZeroHeader,
    /// The header's size is not the index's: `expected size to be I, got H`.
    SizeMismatch { index_size: u32, header_size: u32 },
    /// The payload does not decode; `gogo`: the server's own error, when
    /// stanctl's reader and the server's agree on the failure.
    Undecodable(ProtoError, Option<crate::format::proto::GogoError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFound {
    /// The entry at the sequence's position holds another sequence.
    NoEntryAt(u64),
    /// The index ends before the sequence.
    NoEntryPast(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundRemedy {
    RebuildIndex,
    GapsInDat,
}

impl Problem {
    pub(super) fn severity(&self) -> Severity {
        match self {
            Problem::Ciphertext => Severity::Ciphertext,
            Problem::LookalikeLater | Problem::ReadAheadOnly(_) => Severity::Warning,
            _ => Severity::Fails,
        }
    }

    /// Problems of one kind group into one finding.
    pub(super) fn same_kind(&self, o: &Problem) -> bool {
        match (self, o) {
            (Problem::Crc { .. }, Problem::Crc { .. }) => false,
            (Problem::BadRecord(_), Problem::BadRecord(_)) => false,
            (Problem::ReadAheadOnly(_), Problem::ReadAheadOnly(_)) => false,
            (Problem::NotFound(_, a), Problem::NotFound(_, b)) => a == b,
            _ => self == o,
        }
    }
}

/// Groups consecutive messages with the same problem into one finding.
pub(super) struct Runs<'a> {
    pub(super) channel: &'a str,
    pub(super) file: &'a str,
    pub(super) open: Option<(Problem, u64, u64, u64, u64)>,
    pub(super) out: Vec<Finding>,
}

impl<'a> Runs<'a> {
    pub(super) fn new(channel: &'a str, file: &'a str) -> Self {
        Runs {
            channel,
            file,
            open: None,
            out: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, p: Problem, seq: u64, offset: u64) {
        if let Some((q, _, last, n, _)) = &mut self.open {
            // Messages delivered fine in between do not split a run.
            if q.same_kind(&p) {
                *last = seq;
                *n += 1;
                return;
            }
        }
        self.flush();
        self.open = Some((p, seq, seq, 1, offset));
    }

    /// `n` messages `first..=last` with the same problem, at once.
    pub(super) fn push_range(&mut self, p: Problem, first: u64, last: u64, n: u64) {
        self.flush();
        self.open = Some((p, first, last, n, 0));
        self.flush();
    }

    pub(super) fn flush(&mut self) {
        if let Some((p, first, last, n, offset)) = self.open.take() {
            self.out.push(Finding {
                severity: p.severity(),
                channel: Some(self.channel.to_string()),
                first_seq: Some(first),
                last_seq: Some(last),
                count: n,
                file: Some(self.file.to_string()),
                offset: Some(offset),
                kind: FindingKind::Delivery(p),
            });
        }
    }
}

/// `--list` prints at most this many "not found" lines for one gap.
pub(super) const LIST_MISSING_CAP: usize = 10_000;

/// One finding for a problem that continues from one slice into the next.
pub(super) fn merge_or_push(list: &mut Vec<Finding>, f: Finding) {
    if let Some(prev) = list.last_mut() {
        if prev.severity == f.severity
            && prev.kind == f.kind
            && prev.last_seq.is_some()
            && f.first_seq.is_some()
        {
            prev.last_seq = f.last_seq;
            prev.count = prev.count.saturating_add(f.count);
            if prev.file != f.file {
                prev.file = prev.file.take().map(|p| {
                    if p.ends_with(" ...") {
                        p
                    } else {
                        format!("{p} ...")
                    }
                });
            }
            return;
        }
    }
    list.push(f);
}
