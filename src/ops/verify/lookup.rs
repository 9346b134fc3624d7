//! Every lookup a subscriber's delivery does: index entry by position,
//! record at its offset, CRC, decode, decrypt; and what is delivered.

use super::recovery::IndexUse;
use super::verdict::{Slice, SliceVerdict};
use super::*;
use crate::format::index::ENTRY_LEN;
use crate::format::record::{Header, Record, HEADER_LEN};

/// Every sequence of the slice looked up as a delivery does.
pub(super) fn look_up_all(
    sl: &Slice<'_>,
    ctx: &ChannelCtx<'_>,
    entries: &[(u64, Option<&IndexEntry>)],
    used: &IndexUse<'_>,
    v: &mut SliceVerdict,
    scratch: &mut Vec<u8>,
) {
    let (s, ch, data, st) = (sl.s, sl.ch, sl.data, sl.st);
    let trusted = matches!(used, IndexUse::Trusted(_));
    let Some(&(first, _)) = entries.first() else {
        return;
    };
    let last = entries.last().map_or(first, |e| e.0);
    v.first_seq = first;
    v.last_seq = last;

    let mut runs = Runs::new(ch, &s.dat);
    // A rebuilt index keeps each record at its position, so removing the
    // index only helps when the data file's sequences are consecutive.
    let dat_consecutive = s
        .records
        .windows(2)
        .all(|w| w[1].seq == w[0].seq.wrapping_add(1));
    let not_found_remedy = if trusted && dat_consecutive {
        NotFoundRemedy::RebuildIndex
    } else {
        NotFoundRemedy::GapsInDat
    };
    // The server looks each sequence of [first, last] up by its position in
    // the index; past the last entry there is nothing to find. Walking only
    // the entries keeps a hostile sequence gap (say 2^40) from costing 2^40
    // iterations: the rest is counted in one go.
    let span = (last as u128).saturating_sub(first as u128) + 1;
    let walk = span.min(entries.len() as u128) as usize;
    let mut reader = Reader {
        s,
        data,
        ctx,
        st,
        scratch,
        last,
        cache: std::collections::VecDeque::new(),
    };
    for (pos, &(eseq, entry)) in entries.iter().enumerate().take(walk) {
        let seq = first + pos as u64;
        let outcome = match (entry, used) {
            (Some(_), IndexUse::Trusted(ents)) => reader.lookup(ents, pos, seq),
            _ if eseq == seq => Lookup::Found(s.records[pos].clone()),
            _ => Lookup::Missing(NotFound::NoEntryAt(seq)),
        };
        v.delivered.messages += 1;
        match outcome {
            Lookup::Found(r) => {
                deliver(v, &mut runs, ch, data, seq, &r, st);
                if let (Some(_), IndexUse::Trusted(ents)) = (entry, used) {
                    if let Some((p, offset)) = reader.latent(ents, pos, seq, &r) {
                        runs.push(Problem::ReadAheadOnly(Box::new(p)), seq, offset);
                    }
                }
            }
            Lookup::Missing(why) => {
                v.delivered.failed += 1;
                runs.push(Problem::NotFound(why, not_found_remedy), seq, 0);
                if st.list {
                    v.lines.push((seq, not_found_line(ch, seq)));
                }
            }
            Lookup::Bad(p, offset) => {
                v.delivered.failed += 1;
                if st.list {
                    let line = msg_line(ch, seq, Outcome::Failed(p.clone(), 0));
                    v.lines.push((seq, line));
                }
                runs.push(p, seq, offset);
            }
        }
    }
    let missing = span - walk as u128;
    if missing > 0 {
        let from = first + walk as u64;
        let n = u64::try_from(missing).unwrap_or(u64::MAX);
        v.delivered.messages = v.delivered.messages.saturating_add(n);
        v.delivered.failed = v.delivered.failed.saturating_add(n);
        runs.push_range(
            Problem::NotFound(
                NotFound::NoEntryPast(from.saturating_sub(1)),
                not_found_remedy,
            ),
            from,
            last,
            n,
        );
        if st.list {
            for seq in (from..=last).take(LIST_MISSING_CAP) {
                v.lines.push((seq, not_found_line(ch, seq)));
            }
        }
    }
    runs.flush();
    v.findings.extend(runs.out);
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
struct Reader<'a, 'b> {
    s: &'a SliceScan,
    data: &'a SliceData<'a>,
    ctx: &'a ChannelCtx<'a>,
    st: &'a Settings<'a>,
    scratch: &'b mut Vec<u8>,
    /// The slice's last sequence (its last index entry's).
    last: u64,
    /// (seq, message) cached by the last read-ahead, in sequence order.
    cache: std::collections::VecDeque<(u64, RecordInfo)>,
}

impl Reader<'_, '_> {
    fn lookup(&mut self, ents: &[IndexEntry], pos: usize, seq: u64) -> Lookup {
        while self.cache.front().is_some_and(|c| c.0 < seq) {
            self.cache.pop_front();
        }
        if self.cache.front().is_some_and(|c| c.0 == seq) {
            let (_, info) = self.cache.pop_front().expect("checked");
            return Lookup::Found(info);
        }
        if self.st.read_buffer_size > 0 && seq != self.last {
            if let Some(info) = self.read_ahead(ents, pos, seq) {
                return Lookup::Found(info);
            }
        }
        self.single(ents, pos, seq)
    }

    /// For a message the read-ahead or the cache served: what the
    /// single-record read would have said, when its index entry's offset or
    /// the header's size disagrees with what the batch read.
    fn latent(
        &mut self,
        ents: &[IndexEntry],
        pos: usize,
        seq: u64,
        served: &RecordInfo,
    ) -> Option<(Problem, u64)> {
        let e = ents.get(pos)?;
        let header = Header::at(self.data.dat, served.offset as usize, false)?;
        if e.offset == served.offset && header.size == e.size {
            return None;
        }
        match self.single(ents, pos, seq) {
            Lookup::Bad(p, offset) => Some((p, offset)),
            Lookup::Missing(_) | Lookup::Found(_) => None,
        }
    }

    /// `readAheadMsgs`: Some(record 0) when the whole batch reads, after
    /// caching the others; None when it fails (what it decoded before the
    /// failure stays cached).
    fn read_ahead(&mut self, ents: &[IndexEntry], pos: usize, seq: u64) -> Option<RecordInfo> {
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
            let e = ents.get(pos + i as usize)?;
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
        let start = ents[pos].offset;
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
    fn single(&mut self, ents: &[IndexEntry], pos: usize, seq: u64) -> Lookup {
        let Some(e) = ents.get(pos).filter(|e| e.seq == seq) else {
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
        let s = self.s;
        if let Ok(i) = s.records.binary_search_by_key(&(at as u64), |r| r.offset) {
            if s.records[i].size == size {
                return s.records[i].clone();
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

pub(super) fn deliver(
    v: &mut SliceVerdict,
    runs: &mut Runs<'_>,
    ch: &str,
    data: &SliceData<'_>,
    seq: u64,
    r: &RecordInfo,
    st: &Settings,
) {
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
        v.delivered.opened += 1;
    }
    if ok {
        match (&problem, r.kind) {
            (Some(Problem::Ciphertext), _) => v.delivered.ciphertext += 1,
            (_, PayloadKind::Empty) => v.delivered.empty += 1,
            _ => v.delivered.plaintext += 1,
        }
    } else {
        v.delivered.failed += 1;
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
        v.lines.push((seq, msg_line(ch, seq, outcome)));
    }
    if let Some(p) = problem {
        runs.push(p, seq, r.offset);
    }
}
