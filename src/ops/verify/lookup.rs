//! Every lookup a subscriber's delivery does: index entry by position,
//! record at its offset, CRC, decode, decrypt; and what is delivered.

use super::list::{ListWriter, Spill};
use super::source::Source;
use super::verdict::SliceVerdict;
use super::*;
use crate::format::index::ENTRY_LEN;
use crate::format::record::{Header, Record, HEADER_LEN};

/// The entries of the index the server trusts, read from the mapped file
/// as the lookups need them (none is copied).
#[derive(Clone, Copy)]
pub(super) struct Ents<'m> {
    idx: &'m [u8],
    n: usize,
}

impl<'m> Ents<'m> {
    pub(super) fn new(idx: Option<&'m [u8]>, ix: &crate::ops::scan::IndexScan) -> Self {
        Ents {
            idx: idx.unwrap_or(&[]),
            n: ix.n_entries,
        }
    }

    pub(super) fn get(&self, i: usize) -> Option<IndexEntry> {
        if i >= self.n {
            return None;
        }
        crate::format::index::entry_bytes(self.idx, i).map(IndexEntry::parse)
    }

    pub(super) fn len(&self) -> usize {
        self.n
    }

    pub(super) fn last(&self) -> Option<IndexEntry> {
        self.get(self.n.checked_sub(1)?)
    }
}

/// What the lookups of one slice add up to: counts, `--list` lines and
/// findings (runs of messages with one problem), kept apart from the
/// slice's verdict until the recovery is known to let them happen.
pub(super) struct Walk<'a> {
    delivered: Delivered,
    lines: ListWriter<'a>,
    runs: Runs<'a>,
    /// What helps a message not found; the trusted index's is only known
    /// once every record is read (see `finish`).
    remedy: NotFoundRemedy,
    first_seq: u64,
    last_seq: u64,
}

impl<'a> Walk<'a> {
    pub(super) fn new(
        ch: &'a str,
        file: &'a str,
        remedy: NotFoundRemedy,
        spill: &'a Spill,
    ) -> Self {
        Walk {
            delivered: Delivered::default(),
            lines: ListWriter::new(spill),
            runs: Runs::new(ch, file),
            remedy,
            first_seq: 0,
            last_seq: 0,
        }
    }

    pub(super) fn span(&mut self, first: u64, last: u64) {
        self.first_seq = first;
        self.last_seq = last;
    }

    /// One sequence looked up.
    pub(super) fn outcome(
        &mut self,
        data: &SliceData<'_>,
        st: &Settings,
        seq: u64,
        outcome: Lookup,
    ) -> Option<RecordInfo> {
        self.delivered.messages += 1;
        match outcome {
            Lookup::Found(r) => {
                deliver(self, data, seq, &r, st);
                return Some(r);
            }
            Lookup::Missing(why) => {
                self.delivered.failed += 1;
                self.runs.push(Problem::NotFound(why, self.remedy), seq, 0);
                if st.list {
                    self.lines.push(seq, Outcome::NotFound);
                }
            }
            Lookup::Bad(p, offset) => {
                self.delivered.failed += 1;
                if st.list {
                    self.lines.push(seq, Outcome::Failed(p.clone(), 0));
                }
                self.runs.push(p, seq, offset);
            }
        }
        None
    }

    /// `n` sequences `from..=last` past the last entry: none is found.
    pub(super) fn missing_past(&mut self, from: u64, last: u64, n: u64, st: &Settings) {
        self.delivered.messages = self.delivered.messages.saturating_add(n);
        self.delivered.failed = self.delivered.failed.saturating_add(n);
        self.runs.push_range(
            Problem::NotFound(NotFound::NoEntryPast(from.saturating_sub(1)), self.remedy),
            from,
            last,
            n,
        );
        if st.list {
            for seq in (from..=last).take(LIST_MISSING_CAP) {
                self.lines.push(seq, Outcome::NotFound);
            }
        }
    }

    /// Adds the lookups to the slice's verdict, with the remedy for
    /// messages not found now that it is known.
    pub(super) fn finish(
        mut self,
        v: &mut SliceVerdict,
        remedy: NotFoundRemedy,
    ) -> std::io::Result<()> {
        self.runs.flush();
        for f in &mut self.runs.out {
            if let FindingKind::Delivery(Problem::NotFound(_, r)) = &mut f.kind {
                *r = remedy;
            }
        }
        v.first_seq = self.first_seq;
        v.last_seq = self.last_seq;
        v.delivered.add(&self.delivered);
        v.lines = self.lines.finish()?;
        v.findings.extend(self.runs.out);
        Ok(())
    }
}

/// Every sequence of a slice whose index the server trusts, looked up as a
/// delivery does, pulling the records from `src` as the lookups reach them.
pub(super) fn look_up_trusted(
    ctx: &ChannelCtx<'_>,
    data: &SliceData<'_>,
    st: &Settings,
    ents: Ents<'_>,
    src: &mut Source<'_, '_>,
    walk: &mut Walk<'_>,
    scratch: &mut Vec<u8>,
) {
    let (Some(first), Some(last)) = (ents.get(0), ents.last()) else {
        return;
    };
    let (first, last) = (first.seq, last.seq);
    walk.span(first, last);
    // The server looks each sequence of [first, last] up by its position in
    // the index; past the last entry there is nothing to find. Walking only
    // the entries keeps a hostile sequence gap (say 2^40) from costing 2^40
    // iterations: the rest is counted in one go.
    let span = (last as u128).saturating_sub(first as u128) + 1;
    let n = span.min(ents.len() as u128) as usize;
    let mut reader = Reader {
        ents,
        src,
        data,
        ctx,
        st,
        scratch,
        last,
        cache: std::collections::VecDeque::new(),
    };
    for pos in 0..n {
        let seq = first + pos as u64;
        let outcome = reader.lookup(pos, seq);
        if let Some(r) = walk.outcome(data, st, seq, outcome) {
            if let Some((p, offset)) = reader.latent(pos, seq, &r) {
                walk.runs
                    .push(Problem::ReadAheadOnly(Box::new(p)), seq, offset);
            }
        }
    }
    let missing = span - n as u128;
    if missing > 0 {
        let from = first + n as u64;
        walk.missing_past(from, last, u64::try_from(missing).unwrap_or(u64::MAX), st);
    }
}

/// Every sequence of a slice whose index the server rebuilds from the data
/// file: the record at each position, as the scan read it (`n`: how many
/// records it read; `first`, `last`: their first and last sequence).
pub(super) fn look_up_rebuilt(
    ctx: &ChannelCtx<'_>,
    data: &SliceData<'_>,
    st: &Settings,
    (n, first, last): (u64, u64, u64),
    walk: &mut Walk<'_>,
    scratch: &mut Vec<u8>,
) {
    walk.span(first, last);
    let span = (last as u128).saturating_sub(first as u128) + 1;
    let n = span.min(n as u128) as usize;
    let records = crate::format::record::Records::new(data.dat, false).filter_map(|ev| match ev {
        crate::format::record::Event::Record(r) => Some(r),
        _ => None,
    });
    for (pos, r) in records.take(n).enumerate() {
        let info = examine_again(&r, ctx, st, scratch);
        rebuilt_lookup(walk, data, st, first, pos as u64, info);
    }
    let missing = span - n as u128;
    if missing > 0 {
        let from = first + n as u64;
        walk.missing_past(from, last, u64::try_from(missing).unwrap_or(u64::MAX), st);
    }
}

/// The lookup of the sequence at position `pos` of a rebuilt index: the
/// record there, if it has that sequence.
pub(super) fn rebuilt_lookup(
    walk: &mut Walk<'_>,
    data: &SliceData<'_>,
    st: &Settings,
    first: u64,
    pos: u64,
    r: RecordInfo,
) {
    let seq = first.wrapping_add(pos);
    let outcome = if r.seq == seq {
        Lookup::Found(r)
    } else {
        Lookup::Missing(NotFound::NoEntryAt(seq))
    };
    walk.outcome(data, st, seq, outcome);
}

pub(super) enum Lookup {
    Found(RecordInfo),
    Missing(NotFound),
    Bad(Problem, u64),
}

/// The server's lookups of one slice whose index it trusts
/// (`FileMsgStore.lookup`), in sequence order, with the message cache they
/// fill. A lookup is served from the cache when an earlier read-ahead put
/// the message there (nothing is checked then); else, unless the read
/// buffer is 0 or the sequence is the slice's last, by a read-ahead: a
/// batch of records from this one on, framed by the INDEX's sizes from the
/// first entry's offset, each CRC-checked against its header and decoded,
/// and cached one by one until one fails; if the read-ahead fails, by the
/// single-record read, which also compares the header's size with the
/// index's. Only the cache's next messages are kept: a batch is a run of
/// consecutive sequences, consumed in order.
struct Reader<'a, 'b, 's, 'n> {
    ents: Ents<'a>,
    src: &'b mut Source<'s, 'n>,
    data: &'a SliceData<'a>,
    ctx: &'a ChannelCtx<'a>,
    st: &'a Settings<'a>,
    scratch: &'b mut Vec<u8>,
    /// The slice's last sequence (its last index entry's).
    last: u64,
    /// (seq, message) cached by the last read-ahead, in sequence order.
    cache: std::collections::VecDeque<(u64, RecordInfo)>,
}

impl Reader<'_, '_, '_, '_> {
    fn lookup(&mut self, pos: usize, seq: u64) -> Lookup {
        while self.cache.front().is_some_and(|c| c.0 < seq) {
            self.cache.pop_front();
        }
        if self.cache.front().is_some_and(|c| c.0 == seq) {
            let (_, info) = self.cache.pop_front().expect("checked");
            return Lookup::Found(info);
        }
        if self.st.read_buffer_size > 0 && seq != self.last {
            if let Some(e) = self.ents.get(pos) {
                // No lookup to come goes back before this one (unless the
                // index does: those records are examined again).
                self.src.release_before(e.offset);
            }
            if let Some(info) = self.read_ahead(pos, seq) {
                return Lookup::Found(info);
            }
        }
        self.single(pos, seq)
    }

    /// For a message the read-ahead or the cache served: what the
    /// single-record read would have said, when its index entry's offset or
    /// the header's size disagrees with what the batch read.
    fn latent(&mut self, pos: usize, seq: u64, served: &RecordInfo) -> Option<(Problem, u64)> {
        let e = self.ents.get(pos)?;
        let header = Header::at(self.data.dat, served.offset as usize, false)?;
        if e.offset == served.offset && header.size == e.size {
            return None;
        }
        match self.single(pos, seq) {
            Lookup::Bad(p, offset) => Some((p, offset)),
            Lookup::Missing(_) | Lookup::Found(_) => None,
        }
    }

    /// `readAheadMsgs`: Some(record 0) when the whole batch reads, after
    /// caching the others; None when it fails (what it decoded before the
    /// failure stays cached).
    fn read_ahead(&mut self, pos: usize, seq: u64) -> Option<RecordInfo> {
        let rb = self.st.read_buffer_size;
        let n_idx = (rb / ENTRY_LEN as u64)
            .max(1)
            .min(self.last.saturating_sub(seq).saturating_add(1));
        // Index entries first: any bad one fails the batch before any data
        // is read. (A trusted index's entries all passed their CRC check
        // at start-up, or CRCs are off; zero entries ended the index there.)
        let mut sizes: Vec<u32> = Vec::new();
        let mut total = 0u64;
        for i in 0..n_idx {
            let e = self.ents.get(pos + i as usize)?;
            if e.is_padding() || e.seq != seq.wrapping_add(i) {
                return None;
            }
            let rec = e.size as u64 + HEADER_LEN as u64;
            if i > 0 && total + rec > rb {
                break;
            }
            total += rec;
            sizes.push(e.size);
        }
        let start = self.ents.get(pos)?.offset;
        let dat = self.data.dat;
        let end = start.checked_add(total)?;
        if end > dat.len() as u64 {
            return None;
        }
        // The data, framed by the index's sizes; the header's size field is
        // never looked at.
        let mut at = start as usize;
        let mut first = None;
        for (i, &size) in sizes.iter().enumerate() {
            let info = self.framed(at, size);
            if (self.st.file_crc && !info.crc_ok) || info.parse_error.is_some() {
                return None;
            }
            if i == 0 {
                first = Some(info);
            } else {
                self.cache.push_back((seq + i as u64, info));
            }
            at += HEADER_LEN + size as usize;
        }
        first
    }

    /// `readMsgRecord` and the decode: the record at the entry's offset,
    /// read as 8 + the index's size bytes.
    fn single(&mut self, pos: usize, seq: u64) -> Lookup {
        let Some(e) = self.ents.get(pos).filter(|e| e.seq == seq) else {
            // The server walks the index back for the sequence; a trusted
            // index with this entry elsewhere is not modelled: not found.
            return Lookup::Missing(NotFound::NoEntryAt(seq));
        };
        let dat = self.data.dat;
        let bad = |b: BadRecord| Lookup::Bad(Problem::BadRecord(b), e.offset);
        let avail = (dat.len() as u64).saturating_sub(e.offset);
        if avail == 0 {
            return bad(BadRecord::Eof);
        }
        if avail < HEADER_LEN as u64 + e.size as u64 {
            return bad(BadRecord::UnexpectedEof);
        }
        let at = e.offset as usize;
        let h = Header::at(dat, at, false).expect("8 bytes are there");
        if h.size == 0 && h.crc == 0 {
            return bad(BadRecord::ZeroHeader);
        }
        if h.size != e.size {
            return bad(BadRecord::SizeMismatch {
                index_size: e.size,
                header_size: h.size,
            });
        }
        let info = self.framed(at, e.size);
        if self.st.file_crc && !info.crc_ok {
            let p = Problem::Crc {
                expected: info.crc_header,
                actual: info.crc_actual,
            };
            return Lookup::Bad(p, info.offset);
        }
        if let Some(err) = &info.parse_error {
            let payload = &dat[at + HEADER_LEN..at + HEADER_LEN + e.size as usize];
            let gogo = crate::format::proto::gogo_msg_error(payload);
            let bad = BadRecord::Undecodable(err.clone(), gogo);
            return Lookup::Bad(Problem::BadRecord(bad), info.offset);
        }
        Lookup::Found(info)
    }

    /// The record at `at` framed by `size` payload bytes (the bytes must be
    /// there), judged by the scanner's examiner: the scanned record when it
    /// is the same, else examined afresh.
    fn framed(&mut self, at: usize, size: u32) -> RecordInfo {
        if let Some(r) = self.src.find(at as u64, self.st.read_buffer_size) {
            if r.size == size {
                return r.clone();
            }
        }
        let dat = self.data.dat;
        let crc = Header::at(dat, at, false).expect("8 bytes are there").crc;
        let r = Record {
            offset: at as u64,
            rtype: 0,
            crc,
            payload: &dat[at + HEADER_LEN..at + HEADER_LEN + size as usize],
        };
        examine_again(&r, self.ctx, self.st, self.scratch)
    }
}

/// A record the sequential scan did not see as such, judged by the same
/// examiner (counts and nonces are not the scan's: they are dropped).
pub(super) fn examine_again(
    r: &Record<'_>,
    ctx: &ChannelCtx<'_>,
    st: &Settings,
    scratch: &mut Vec<u8>,
) -> RecordInfo {
    let cfg = scan_cfg(st);
    let mut c = Counts::with_keys(ctx.keys.aeads.len());
    scan::examine(r, ctx, &cfg, scratch, &mut c, &mut Vec::new())
}

fn deliver(w: &mut Walk<'_>, data: &SliceData<'_>, seq: u64, r: &RecordInfo, st: &Settings) {
    let problem = if !st.encryption {
        match r.kind {
            PayloadKind::Empty => None,
            PayloadKind::Plain => None,
            PayloadKind::Short(_) => Some(Problem::LookalikeLater),
            PayloadKind::Envelope(_) => match r.nonce_origin.unwrap_or(NonceOrigin::Unknown) {
                NonceOrigin::Unknown => Some(Problem::LookalikeLater),
                _ => Some(Problem::Ciphertext),
            },
        }
    } else {
        match (r.kind, r.key) {
            (PayloadKind::Empty | PayloadKind::Plain, _) => None,
            (PayloadKind::Short(_), _) => Some(Problem::Short),
            (PayloadKind::Envelope(_), KeyOutcome::Opened(_)) => None,
            (PayloadKind::Envelope(c), KeyOutcome::Unopened(NonceOrigin::Unknown)) => {
                Some(Problem::Lookalike(c))
            }
            // No key (the server refuses to start then) or a wrong one.
            (PayloadKind::Envelope(c), _) => Some(Problem::WrongKey(c)),
        }
    };
    // What is delivered: counted, and listed with --list.
    let (ok, len) = match (&problem, r.kind) {
        (None, PayloadKind::Envelope(_)) => (true, r.plain_len),
        (None, _) => (true, r.data_len),
        (Some(Problem::Ciphertext | Problem::LookalikeLater), _) => (true, r.data_len),
        (Some(_), _) => (false, r.data_len),
    };
    if problem.is_none() && matches!(r.kind, PayloadKind::Envelope(_)) {
        w.delivered.opened += 1;
    }
    if ok {
        match (&problem, r.kind) {
            (Some(Problem::Ciphertext), _) => w.delivered.ciphertext += 1,
            (_, PayloadKind::Empty) => w.delivered.empty += 1,
            _ => w.delivered.plaintext += 1,
        }
    } else {
        w.delivered.failed += 1;
    }
    if st.list {
        let outcome = if ok {
            let text = |rg: &std::ops::Range<usize>| {
                String::from_utf8_lossy(&data.dat[rg.clone()]).into_owned()
            };
            Outcome::Delivered {
                len,
                sha256: r.sha256.unwrap_or_else(|| Sha256::digest([]).into()),
                subject: text(&r.subject),
                reply: text(&r.reply),
                timestamp: r.timestamp,
            }
        } else {
            let p = problem.clone().expect("failed deliveries have a problem");
            Outcome::Failed(p, r.data_len)
        };
        w.lines.push(seq, outcome);
    }
    if let Some(p) = problem {
        w.runs.push(p, seq, r.offset);
    }
}
