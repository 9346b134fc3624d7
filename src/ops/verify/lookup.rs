//! Every lookup a subscriber's delivery does: index entry by position,
//! record at its offset, CRC, decode, decrypt; and what is delivered.

use super::recovery::IndexUse;
use super::verdict::{Slice, SliceVerdict};
use super::*;
use crate::format::record::Record;

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
    for (pos, &(eseq, entry)) in entries.iter().enumerate().take(walk) {
        let seq = first + pos as u64;
        let outcome = if eseq == seq {
            lookup(s, data, entry, pos, ctx, st, scratch)
        } else {
            Lookup::Missing(NotFound::NoEntryAt(seq))
        };
        v.delivered.messages += 1;
        match outcome {
            Lookup::Found(r) => deliver(v, &mut runs, ch, data, &r, st),
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

/// Reads the record an index entry points to. Records the scanner already
/// examined are found by offset; anything else is read afresh.
pub(super) fn lookup(
    s: &SliceScan,
    data: &SliceData<'_>,
    entry: Option<&IndexEntry>,
    pos: usize,
    ctx: &ChannelCtx<'_>,
    st: &Settings,
    scratch: &mut Vec<u8>,
) -> Lookup {
    let Some(e) = entry else {
        return Lookup::Found(s.records[pos].clone());
    };
    let info = match s.records.binary_search_by_key(&e.offset, |r| r.offset) {
        Ok(i) => s.records[i].clone(),
        Err(_) => match Record::at(data.dat, e.offset) {
            Some(Event::Record(r)) => examine_again(&r, ctx, st, scratch),
            _ => {
                let bad = BadRecord::CutShortAt(e.offset);
                return Lookup::Bad(Problem::BadRecord(bad), e.offset);
            }
        },
    };
    if !info.crc_ok {
        let p = Problem::Crc {
            expected: info.crc_header,
            actual: info.crc_actual,
        };
        return Lookup::Bad(p, info.offset);
    }
    // The server decodes as many bytes as the INDEX says, never comparing
    // them with the record's own size (the CRC covered the whole record).
    if e.size < info.size {
        let Some(Event::Record(whole)) = Record::at(data.dat, info.offset) else {
            unreachable!("the scanner read a whole record here");
        };
        let prefix = whole.prefix(e.size).expect("a smaller size");
        let mut p = examine_again(&prefix, ctx, st, scratch);
        p.crc_ok = true;
        return match p.parse_error {
            Some(error) => {
                let bad = BadRecord::IndexSizeCuts {
                    index_size: e.size,
                    record_size: info.size,
                    error,
                };
                Lookup::Bad(Problem::BadRecord(bad), info.offset)
            }
            None => Lookup::Found(p),
        };
    }
    if let Some(err) = &info.parse_error {
        let bad = BadRecord::Undecodable(err.clone());
        return Lookup::Bad(Problem::BadRecord(bad), info.offset);
    }
    if e.size > info.size {
        // The server decodes stale bytes past the record: unpredictable.
        let bad = BadRecord::IndexSizeBeyond {
            index_size: e.size,
            record_size: info.size,
        };
        return Lookup::Bad(Problem::BadRecord(bad), info.offset);
    }
    Lookup::Found(info)
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
    r: &RecordInfo,
    st: &Settings,
) {
    let seq = r.seq;
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
