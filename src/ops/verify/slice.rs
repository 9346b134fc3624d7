//! One slice as the server recovers it, and every lookup in it.

use super::*;
use crate::format::record::Record;

/// The server's view of one slice after recovery.
pub(super) struct SliceVerdict {
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) delivered: Delivered,
    pub(super) findings: Vec<Finding>,
    /// (seq, MSG line) with --list.
    pub(super) lines: Vec<(u64, Line)>,
    /// Records scanned and records whose CRC does not match.
    pub(super) crc_tally: (u64, u64),
    pub(super) nonces: Vec<NonceRun>,
}

pub(super) fn finding(
    sev: Severity,
    channel: &str,
    file: &str,
    offset: Option<u64>,
    kind: FindingKind,
) -> Finding {
    Finding {
        severity: sev,
        channel: Some(channel.to_string()),
        first_seq: None,
        last_seq: None,
        count: 0,
        file: Some(file.to_string()),
        offset,
        kind,
    }
}

/// How the server will come by the slice's index.
pub(super) enum IndexUse<'a> {
    Trusted(&'a [IndexEntry]),
    Rebuilt(RebuildReason),
}

pub(super) fn index_use<'a>(s: &'a SliceScan, data: &SliceData<'_>, crc: &Crc32) -> IndexUse<'a> {
    let ix = &s.index;
    if !ix.present {
        return IndexUse::Rebuilt(RebuildReason::NoIndex);
    }
    if let Some(&i) = ix.bad_crc.first() {
        return IndexUse::Rebuilt(RebuildReason::BadEntryCrc(i + 1));
    }
    if ix.partial_at.is_some() {
        return IndexUse::Rebuilt(RebuildReason::PartialEntry);
    }
    let Some(last) = ix.entries.last() else {
        return IndexUse::Trusted(&ix.entries);
    };
    // The server's last-entry check: record readable at the offset (CRC
    // always checked), same size, decodes, same sequence.
    let ok = match Record::at(data.dat, last.offset) {
        Some(Event::Record(r)) => {
            r.crc_ok(crc)
                && r.payload.len() as u64 == last.size as u64
                && r.message().is_ok_and(|m| m.sequence == last.seq)
        }
        _ => false,
    };
    if ok {
        IndexUse::Trusted(&ix.entries)
    } else {
        IndexUse::Rebuilt(RebuildReason::LastEntryMismatch(last.seq))
    }
}

/// The seq of a record cut short, when its first field made it to disk.
pub(super) fn cut_seq(dat: &[u8], offset: u64) -> Option<u64> {
    let start = offset as usize + HEADER_LEN;
    let part = dat.get(start..)?;
    match crate::format::proto::fields(part).next()? {
        Ok(f) if f.number == 1 => match f.value {
            crate::format::proto::Value::Varint(v) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// What a slice's checks need to know of it.
struct Slice<'a> {
    ch: &'a str,
    s: &'a SliceScan,
    data: &'a SliceData<'a>,
    st: &'a Settings<'a>,
    idx_file: String,
}

/// The server's verdict on one slice: its files' versions, how it recovers
/// the index, what the end of its data file holds, then every lookup.
pub(super) fn verify_slice(
    ctx: &ChannelCtx<'_>,
    mut s: SliceScan,
    data: SliceData<'_>,
    st: &Settings,
    scratch: &mut Vec<u8>,
) -> SliceVerdict {
    let mut v = SliceVerdict {
        first_seq: 0,
        last_seq: 0,
        delivered: Delivered::default(),
        findings: Vec::new(),
        lines: Vec::new(),
        crc_tally: (s.counts.records, s.counts.crc_errors),
        nonces: std::mem::take(&mut s.nonces),
    };
    let sl = Slice {
        ch: ctx.name.as_str(),
        idx_file: s.idx_file.clone(),
        s: &s,
        data: &data,
        st,
    };
    if !versions_ok(&sl, &mut v) {
        return v;
    }
    let used = index_use(&s, &data, &st.crc);
    let Some(entries) = recover(&sl, &used, &mut v) else {
        return v;
    };
    end_of_file(&sl, &used, &mut v);
    look_up_all(&sl, ctx, &entries, &used, &mut v, scratch);
    v
}

fn refuse(
    sl: &Slice<'_>,
    v: &mut SliceVerdict,
    file: &str,
    offset: Option<u64>,
    kind: FindingKind,
) {
    v.findings
        .push(finding(Severity::WillNotStart, sl.ch, file, offset, kind));
}

/// Every existing file passes the server's version check first.
fn versions_ok(sl: &Slice<'_>, v: &mut SliceVerdict) -> bool {
    let (s, ch, idx_file) = (sl.s, sl.ch, sl.idx_file.as_str());
    if s.version != FileVersion::Supported {
        refuse(sl, v, &s.dat, Some(0), FindingKind::DatVersion(s.version));
        return false;
    }
    if let Some(iv) = s.index.version.filter(|&iv| iv != FileVersion::Supported) {
        refuse(sl, v, idx_file, Some(0), FindingKind::IdxVersion(iv));
        return false;
    }
    if let Some(at) = s.index.padding_at {
        v.findings.push(finding(
            Severity::Warning,
            ch,
            idx_file,
            Some(at),
            FindingKind::IndexPadding,
        ));
    }

    true
}

/// Which records the server sees (seq, index entry when it trusts the
/// index), or None when the recovery stops the start.
fn recover<'a>(
    sl: &Slice<'a>,
    used: &IndexUse<'a>,
    v: &mut SliceVerdict,
) -> Option<Vec<(u64, Option<&'a IndexEntry>)>> {
    let (s, ch, data, st, idx_file) = (sl.s, sl.ch, sl.data, sl.st, sl.idx_file.as_str());
    let refuse = |v: &mut SliceVerdict, file: &str, offset: Option<u64>, kind: FindingKind| {
        refuse(sl, v, file, offset, kind)
    };
    let entries: Vec<(u64, Option<&'a IndexEntry>)>;
    match used {
        IndexUse::Trusted(e) => {
            entries = e.iter().map(|x| (x.seq, Some(x))).collect();
            let hidden = s.counts.records.saturating_sub(e.len() as u64);
            if hidden > 0 && s.index.mismatch.is_none() {
                // Counted as failed so the verdict line agrees with the finding.
                v.delivered.messages += hidden;
                v.delivered.failed += hidden;
                let first_hidden = s.records.get(e.len()).map(|r| r.seq);
                v.findings.push(Finding {
                    severity: Severity::Fails,
                    channel: Some(ch.to_string()),
                    first_seq: first_hidden,
                    last_seq: s.records.last().map(|r| r.seq),
                    count: hidden,
                    file: Some(idx_file.to_string()),
                    offset: None,
                    kind: FindingKind::HiddenRecords { hidden },
                });
            }
        }
        IndexUse::Rebuilt(why) => {
            if s.index.present || s.counts.records > 0 {
                v.findings.push(finding(
                    Severity::Warning,
                    ch,
                    idx_file,
                    None,
                    FindingKind::IndexRebuilt(*why),
                ));
            }
            // Recovery from the data file reads every record with its CRC.
            // The server checks each record's CRC, then decodes it.
            for r in &s.records {
                if r.crc_ok {
                    if let Some(e) = &r.parse_error {
                        let kind = FindingKind::RebuildUndecodable(e.clone());
                        refuse(v, &s.dat, Some(r.offset), kind);
                        return None;
                    }
                    continue;
                }
                let kind = FindingKind::RebuildCrc {
                    seq: r.seq,
                    expected: r.crc_header,
                    actual: r.crc_actual,
                };
                refuse(v, &s.dat, Some(r.offset), kind);
                return None;
            }
            entries = s.records.iter().map(|r| (r.seq, None)).collect();
            match s.end {
                SliceEnd::Truncated {
                    offset,
                    expected,
                    available,
                } if crate::format::record::is_dangling_header(expected, available) => {
                    // io.EOF for the server: a clean end, but a trap for later.
                    v.findings.push(finding(
                        Severity::Warning,
                        ch,
                        &s.dat,
                        Some(offset),
                        FindingKind::DanglingHeader,
                    ));
                }
                SliceEnd::Truncated { offset, .. } => {
                    let lost = cut_seq(data.dat, offset);
                    if st.truncate_on_eof {
                        v.delivered.lost += 1;
                        v.findings.push(Finding {
                            severity: Severity::Fails,
                            channel: Some(ch.to_string()),
                            first_seq: cut_seq(data.dat, offset),
                            last_seq: cut_seq(data.dat, offset),
                            count: 1,
                            file: Some(s.dat.clone()),
                            offset: Some(offset),
                            kind: FindingKind::CutShortLost { lost },
                        });
                    } else {
                        let kind = FindingKind::CutShortRefused { lost };
                        refuse(v, &s.dat, Some(offset), kind);
                        return None;
                    }
                }
                _ => {}
            }
        }
    }
    Some(entries)
}

/// What the end of the data file means for the server.
fn end_of_file(sl: &Slice<'_>, used: &IndexUse<'_>, v: &mut SliceVerdict) {
    let (s, ch) = (sl.s, sl.ch);
    let trusted = matches!(used, IndexUse::Trusted(_));
    // Where the last indexed record ends: damage before it sits between
    // records the server still delivers, and must not be cut off.
    let indexed_end = match used {
        IndexUse::Trusted(e) => e
            .last()
            .map_or(0, |l| l.offset + HEADER_LEN as u64 + l.size as u64),
        IndexUse::Rebuilt(_) => 0,
    };
    match s.end {
        SliceEnd::ZeroPadding { offset, .. } | SliceEnd::Truncated { offset, .. }
            if trusted && offset < indexed_end =>
        {
            v.findings.push(finding(
                Severity::Warning,
                ch,
                &s.dat,
                Some(offset),
                FindingKind::DamageBetweenIndexed,
            ))
        }
        SliceEnd::ZeroPadding { offset, len } if trusted => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            FindingKind::ZerosAfterIndexed { len },
        )),
        SliceEnd::ZeroPadding { offset, len } => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            FindingKind::ZerosAtEnd { len },
        )),
        SliceEnd::Truncated { offset, .. } if trusted => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            FindingKind::PartialAfterIndexed,
        )),
        _ => {}
    }
}

/// Every sequence of the slice looked up as a delivery does.
fn look_up_all(
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
                    let outcome = Outcome::Failed(p.clone(), 0);
                    let channel = ch.to_string();
                    v.lines.push((
                        seq,
                        Line::Msg {
                            channel,
                            seq,
                            outcome,
                        },
                    ));
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
fn examine_again(
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
        let channel = ch.to_string();
        v.lines.push((
            seq,
            Line::Msg {
                channel,
                seq,
                outcome,
            },
        ));
    }
    if let Some(p) = problem {
        runs.push(p, seq, r.offset);
    }
}
