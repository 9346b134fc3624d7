//! How the server recovers a slice at start-up: version checks, trusting or
//! rebuilding the index, and what the end of the data file means. Issue 11's
//! read-ahead and file_crc settings change this module.

use super::verdict::{finding, refuse, Slice, SliceVerdict};
use super::*;

/// How the server will come by the slice's index.
pub(super) enum IndexUse {
    Trusted,
    Rebuilt(RebuildReason),
}

/// Decided before any record is read: from the index and the record its
/// last entry points to.
pub(super) fn index_use(
    s: &SliceScan,
    data: &SliceData<'_>,
    crc: &Crc32,
    file_crc: bool,
) -> IndexUse {
    let ix = &s.index;
    if !ix.present {
        return IndexUse::Rebuilt(RebuildReason::NoIndex);
    }
    // With file_crc off the server reads entries without checking their CRC.
    if let Some(&i) = ix.bad_crc.first().filter(|_| file_crc) {
        return IndexUse::Rebuilt(RebuildReason::BadEntryCrc(i + 1));
    }
    if ix.partial_at.is_some() {
        return IndexUse::Rebuilt(RebuildReason::PartialEntry);
    }
    // No entry (the version alone, or a zero entry first): the server
    // recovers from the data file (recoverOneMsgFile: lastIndex == nil).
    let Some(last) = &ix.last_entry else {
        return IndexUse::Rebuilt(RebuildReason::NoEntries);
    };
    // The server's last-entry check: record readable at the offset (CRC
    // always checked, whatever file_crc says), same size, decodes, same sequence.
    let ok = last_message_error(data.dat, last, crc).is_none();
    if ok {
        IndexUse::Trusted
    } else {
        IndexUse::Rebuilt(RebuildReason::LastEntryMismatch(last.seq))
    }
}

/// `ensureLastMsgAndIndexMatch`: why the record the last entry points to
/// fails the start-up check (readRecord with the entry's size and the CRC
/// always checked, then the decode and the sequence), or None.
pub(super) fn last_message_error(
    dat: &[u8],
    e: &IndexEntry,
    crc: &Crc32,
) -> Option<LastMessageError> {
    use crate::format::record::{Header, HEADER_LEN};
    let at = usize::try_from(e.offset).ok().filter(|&o| o <= dat.len());
    let rest = at.map_or(&[][..], |o| &dat[o..]);
    if rest.is_empty() {
        return Some(LastMessageError::Eof);
    }
    let Some(h) = Header::at(rest, 0, false) else {
        return Some(LastMessageError::UnexpectedEof);
    };
    if h.size == 0 && h.crc == 0 {
        return Some(LastMessageError::ZeroHeader);
    }
    if e.size > 0 && h.size != e.size {
        return Some(LastMessageError::Size {
            expected: e.size,
            got: h.size,
        });
    }
    let avail = rest.len() - HEADER_LEN;
    if h.size > 0 && avail == 0 {
        return Some(LastMessageError::Eof);
    }
    if (h.size as usize) > avail {
        return Some(LastMessageError::UnexpectedEof);
    }
    let payload = &rest[HEADER_LEN..HEADER_LEN + h.size as usize];
    let actual = crc.checksum(payload);
    if actual != h.crc {
        return Some(LastMessageError::Crc {
            expected: h.crc,
            actual,
        });
    }
    match crate::format::proto::MsgView::parse(payload) {
        Err(err) => Some(LastMessageError::Decode(
            err,
            crate::format::proto::gogo_msg_error(payload),
        )),
        Ok(m) if m.sequence != e.seq => Some(LastMessageError::Sequence {
            index: e.seq,
            data: m.sequence,
        }),
        Ok(_) => None,
    }
}

/// The server's log lines when it gives up on a slice's index.
pub(super) fn index_log(sl: &Slice<'_>, why: RebuildReason, v: &mut SliceVerdict) {
    let (s, idx) = (sl.s, sl.idx_file.clone());
    let why = match why {
        RebuildReason::NoIndex | RebuildReason::NoEntries => return,
        RebuildReason::PartialEntry => IndexLogError::UnexpectedEof,
        RebuildReason::BadEntryCrc(n) => {
            let Some(b) = sl
                .data
                .idx
                .and_then(|i| crate::format::index::entry_bytes(i, n - 1))
            else {
                return;
            };
            let e = IndexEntry::parse(b);
            IndexLogError::Crc {
                expected: e.crc,
                actual: sl.st.crc.checksum(IndexEntry::crc_input(b)),
            }
        }
        RebuildReason::LastEntryMismatch(_) => {
            let Some(last) = &s.index.last_entry else {
                return;
            };
            let Some(e) = last_message_error(sl.data.dat, last, &sl.st.crc) else {
                return;
            };
            v.log.push(LogLine::LastMessage {
                dat: s.dat.clone(),
                why: e.clone(),
            });
            IndexLogError::LastMessage {
                dat: s.dat.clone(),
                why: e,
            }
        }
    };
    v.log.push(LogLine::IndexError { idx, why });
}

/// The seq of a record cut short, when its first field made it to disk.
pub(super) fn cut_seq(dat: &[u8], offset: u64) -> Option<u64> {
    let part = crate::format::record::cut_payload(dat, offset);
    match crate::format::proto::fields(part).next()? {
        Ok(f) if f.number == 1 => match f.value {
            crate::format::proto::Value::Varint(v) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// Every existing file passes the server's version check first.
pub(super) fn versions_ok(sl: &Slice<'_>, v: &mut SliceVerdict) -> bool {
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

/// Records after the last entry of a trusted index (`records`: how many
/// the data file holds; `first_hidden`, `last`: the sequences of the first
/// of them and of the data file's last record).
pub(super) fn hidden_records(
    sl: &Slice<'_>,
    entries: u64,
    (first_hidden, last): (Option<u64>, Option<u64>),
    v: &mut SliceVerdict,
) {
    let s = sl.s;
    let hidden = s.counts.records.saturating_sub(entries);
    if hidden > 0 && s.index.mismatch.is_none() {
        // Counted as failed so the verdict line agrees with the finding.
        v.delivered.messages += hidden;
        v.delivered.failed += hidden;
        v.findings.push(Finding {
            severity: Severity::Fails,
            channel: Some(sl.ch.to_string()),
            first_seq: first_hidden,
            last_seq: last,
            count: hidden,
            file: Some(sl.idx_file.clone()),
            offset: None,
            kind: FindingKind::HiddenRecords { hidden },
        });
    }
}

/// Recovery from the data file reads every record with its CRC (unless
/// file_crc is off), then decodes it: why this record stops the start
/// (and the server's log line for it), if it does.
pub(super) fn rebuild_refusal(
    dat: &str,
    r: &RecordInfo,
    st: &Settings,
) -> Option<(FindingKind, u64, Option<LogLine>)> {
    if r.crc_ok || !st.file_crc {
        let e = r.parse_error.as_ref()?;
        return Some((FindingKind::RebuildUndecodable(e.clone()), r.offset, None));
    }
    let log = LogLine::Corrupted {
        file: dat.to_string(),
        expected: r.crc_header,
        actual: r.crc_actual,
    };
    let kind = FindingKind::RebuildCrc {
        seq: r.seq,
        expected: r.crc_header,
        actual: r.crc_actual,
    };
    Some((kind, r.offset, Some(log)))
}

/// A rebuilt index, once every record is read: the warning that the server
/// rebuilds it, then the first record that stops the start (`refusal`), or
/// what the end of the data file does. False when the start stops here.
pub(super) fn rebuilt(
    sl: &Slice<'_>,
    why: RebuildReason,
    refusal: Option<(FindingKind, u64, Option<LogLine>)>,
    v: &mut SliceVerdict,
) -> bool {
    let (s, ch, data, st, idx_file) = (sl.s, sl.ch, sl.data, sl.st, sl.idx_file.as_str());
    let empty = matches!(why, RebuildReason::NoEntries);
    if (s.index.present && !empty) || s.counts.records > 0 {
        v.findings.push(finding(
            Severity::Warning,
            ch,
            idx_file,
            None,
            FindingKind::IndexRebuilt(why),
        ));
    }
    if let Some((kind, offset, log)) = refusal {
        v.log.extend(log);
        refuse(sl, v, &s.dat, Some(offset), kind);
        return false;
    }
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
        SliceEnd::Truncated {
            offset,
            expected,
            available,
        } => {
            v.log.push(LogLine::UnexpectedEof {
                file: s.dat.clone(),
                offset,
                expected,
                available,
                truncated: st.truncate_on_eof,
            });
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
                refuse(sl, v, &s.dat, Some(offset), kind);
                return false;
            }
        }
        _ => {}
    }
    true
}

/// What the end of the data file means for the server (`last_entry`: the
/// last entry of the index it trusts; None when it rebuilds the index).
pub(super) fn end_of_file(sl: &Slice<'_>, last_entry: Option<&IndexEntry>, v: &mut SliceVerdict) {
    let (s, ch) = (sl.s, sl.ch);
    let trusted = last_entry.is_some();
    // Where the last indexed record ends: damage before it sits between
    // records the server still delivers, and must not be cut off.
    let indexed_end = last_entry.map_or(0, |l| l.record_end());
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
