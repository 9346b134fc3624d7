//! The check: every record judged before the first write.

use super::*;
use crate::format::damage::DamageKind;

/// The check's verdict on one slice.
pub(super) struct SlicePlan {
    pub(super) tally: Tally,
    pub(super) rewrite: bool,
    pub(super) refused: Vec<Refusal>,
    /// What the write pass does with each record, in file order (only when
    /// the slice is rewritten): the check's decision, carried, not re-derived.
    pub(super) actions: Vec<Planned>,
    /// What --keep-damaged carries over byte for byte.
    pub(super) kept: Vec<Kept>,
    /// Salvage: records are framed by `Planned::frame` (the index's offset
    /// and size), not by their headers, and the bytes from here to the end
    /// of the data file are copied as they are.
    pub(super) tail_from: Option<u64>,
}

/// Where a record is, as the server frames it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame {
    pub(super) offset: u64,
    /// The payload's size (the index entry's).
    pub(super) size: u32,
    pub(super) timestamp: i64,
}

/// The check's decision on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Planned {
    /// The record's sequence, to tell the write pass meets the same record.
    pub(super) seq: u64,
    pub(super) action: Action,
    /// Salvage only: where the record is.
    pub(super) frame: Option<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Keep,
    /// Salvage: copy the record's bytes as they are.
    Verbatim,
    /// Seal the plaintext with `keys[0]` and this cipher.
    Encrypt(Cipher),
    /// Open with `keys[key]`.
    Decrypt {
        key: u8,
    },
    /// Open with `keys[key]`, seal with `keys[0]` and this cipher.
    Rekey {
        key: u8,
        cipher: Cipher,
    },
}

impl Action {
    fn of(change: Change, rule: Rule, info: &RecordInfo) -> Action {
        let opened_by = match info.key {
            KeyOutcome::Opened(k) => k,
            _ => u8::MAX,
        };
        let own_cipher = match info.kind {
            PayloadKind::Envelope(c) => Some(c),
            _ => None,
        };
        match (change, rule) {
            (Change::Keep, _) => Action::Keep,
            (Change::Encrypt, Rule::Encrypt { cipher }) => Action::Encrypt(cipher),
            (Change::Decrypt, _) => Action::Decrypt { key: opened_by },
            (Change::Rekey, Rule::Rekey { cipher }) => Action::Rekey {
                key: opened_by,
                cipher: cipher
                    .or(own_cipher)
                    .expect("an opened payload is an envelope"),
            },
            _ => unreachable!("decide yields only the rule's own change"),
        }
    }
}

pub(super) fn plan_slice(
    job: &Job,
    ctx: &ChannelCtx<'_>,
    scan: SliceScan,
    data: SliceData<'_>,
) -> SlicePlan {
    let idx_len = data.idx.map_or(0, |i| i.len() as u64);
    let mut tally = Tally {
        bytes_before: scan.dat_len + idx_len,
        ..Tally::default()
    };
    let mut refused: Vec<Refusal> = scan
        .damage
        .iter()
        .filter(|d| d.kind.refuses_rewrite())
        .map(|d| Refusal {
            channel: ctx.name.clone(),
            file: d.file.clone(),
            seq: d.seq,
            offset: d.offset,
            reason: Refused::Damage(d.kind.clone()),
        })
        .collect();
    // The new .dat: version, records (field 4 resized), then any zero tail
    // copied as it is.
    let mut dat_after = VERSION_LEN as u64;
    let mut actions = Vec::with_capacity(scan.records.len());
    let mut index_matches = idx_len == index::file_len(scan.records.len())
        && data
            .idx
            .is_some_and(|i| record::file_version(i) == FileVersion::Supported);
    for (i, info) in scan.records.iter().enumerate() {
        if !info.crc_ok || info.parse_error.is_some() {
            tally.records += 1;
            continue; // already refused as damage
        }
        if info.data_repeated {
            // Only the last copy would be rewritten; an earlier one could
            // stay behind in plaintext.
            tally.records += 1;
            refused.push(Refusal {
                channel: ctx.name.clone(),
                file: scan.dat.clone(),
                seq: Some(info.seq),
                offset: Some(info.offset),
                reason: Refused::DataRepeated,
            });
            continue;
        }
        let change = match decide(job.rule, seen_of(info), job.assume_plaintext) {
            Ok(c) => c,
            Err(why) => {
                tally.records += 1;
                refused.push(Refusal {
                    channel: ctx.name.clone(),
                    file: scan.dat.clone(),
                    seq: Some(info.seq),
                    offset: Some(info.offset),
                    reason: why,
                });
                continue;
            }
        };
        tally.count(change);
        let asked = match job.rule {
            Rule::Encrypt { cipher }
            | Rule::Rekey {
                cipher: Some(cipher),
            } => Some(cipher),
            _ => None,
        };
        if let (Change::Keep, KeyOutcome::Opened(0), PayloadKind::Envelope(c), Some(a)) =
            (change, info.key, info.kind, asked)
        {
            if c != a {
                tally.kept_other_cipher += 1;
            }
        }
        actions.push(Planned {
            seq: info.seq,
            action: Action::of(change, job.rule, info),
            frame: None,
        });
        let old = info.data_len as usize;
        let new = match change {
            Change::Keep | Change::Rekey => old,
            Change::Encrypt => old + OVERHEAD,
            Change::Decrypt => info.plain_len as usize,
        };
        let size = info.size as usize - field4_len(old) + field4_len(new);
        if size > u32::MAX as usize {
            // The record header holds a u32 size.
            refused.push(Refusal {
                channel: ctx.name.clone(),
                file: scan.dat.clone(),
                seq: Some(info.seq),
                offset: Some(info.offset),
                reason: Refused::TooLarge,
            });
            continue;
        }
        dat_after += record::record_len(size as u64);
        if index_matches {
            let e = IndexEntry::new(info.seq, info.offset, info.timestamp, info.size, &job.crc);
            index_matches = data
                .idx
                .and_then(|b| index::entry_bytes(b, i))
                .is_some_and(|b| *b == e.to_bytes());
        }
    }
    if job.keep_damaged && !refused.is_empty() {
        return salvage(job, ctx, &scan, &data, refused, tally.bytes_before);
    }
    // A zero tail is dropped: the server truncates it on an index rebuild,
    // and kept behind a trusted new index it would become a trap (the server
    // appends after it, a later rebuild loses what it appended).
    let rewrite = scan.version == FileVersion::Supported
        && refused.is_empty()
        && (tally.changed > 0 || !index_matches);
    if rewrite {
        tally.slices_rewritten = 1;
        tally.bytes_after = dat_after + index::file_len(scan.records.len());
    } else {
        tally.bytes_after = tally.bytes_before;
        actions = Vec::new();
    }
    SlicePlan {
        tally,
        rewrite,
        refused,
        actions,
        kept: Vec::new(),
        tail_from: None,
    }
}

/// The records of a slice whose index the server trusts, framed by the
/// index, when the index is also laid out as the server writes it (entries
/// in sequence, each record right after the previous one): a rewrite can
/// then move records without changing how the server frames any of them.
/// None for anything else.
fn trusted_frames(scan: &SliceScan, data: &SliceData<'_>) -> Option<Vec<(u64, Frame)>> {
    let ix = &scan.index;
    let idx_ok = data
        .idx
        .is_some_and(|i| record::file_version(i) == FileVersion::Supported);
    if scan.version != FileVersion::Supported
        || !idx_ok
        || !ix.bad_crc.is_empty()
        || ix.partial_at.is_some()
        || ix.padding_at.is_some()
    {
        return None;
    }
    let first = ix.entries.first()?;
    let mut at = VERSION_LEN as u64;
    for (i, e) in ix.entries.iter().enumerate() {
        if e.offset != at || e.seq != first.seq.checked_add(i as u64)? {
            return None;
        }
        at = e.record_end();
    }
    if at > data.dat.len() as u64 {
        return None;
    }
    // The server's start-up check of the last record (CRC always on).
    let last = ix.entries.last()?;
    match record::Record::at(data.dat, last.offset) {
        Some(Event::Record(r))
            if r.payload.len() as u64 == last.size as u64
                && r.message().is_ok_and(|m| m.sequence == last.seq) => {}
        _ => return None,
    }
    Some(
        ix.entries
            .iter()
            .map(|e| {
                let f = Frame {
                    offset: e.offset,
                    size: e.size,
                    timestamp: e.timestamp,
                };
                (e.seq, f)
            })
            .collect(),
    )
}

/// `--keep-damaged`: frame the slice as the server does (by a trusted
/// index; by the headers when the server rebuilds the index and every
/// record reads whole), convert every record the rule handles, keep the
/// others byte for byte with their index size, and copy the tail. A slice
/// that cannot be framed so is carried over whole.
fn salvage(
    job: &Job,
    ctx: &ChannelCtx<'_>,
    scan: &SliceScan,
    data: &SliceData<'_>,
    refused: Vec<Refusal>,
    bytes_before: u64,
) -> SlicePlan {
    let dat = data.dat;
    let damaged = scan.damage.iter().any(|d| d.kind.refuses_rewrite());
    let frames = trusted_frames(scan, data)
        .filter(|_| last_crc_ok(job, scan, data))
        .or_else(|| {
            (!damaged && scan.version == FileVersion::Supported).then(|| {
                scan.records
                    .iter()
                    .map(|r| {
                        let f = Frame {
                            offset: r.offset,
                            size: r.size,
                            timestamp: r.timestamp,
                        };
                        (r.seq, f)
                    })
                    .collect()
            })
        });
    let mut tally = Tally {
        bytes_before,
        bytes_after: bytes_before,
        ..Tally::default()
    };
    let Some(frames) = frames else {
        tally.records = scan.records.len() as u64;
        tally.kept = tally.records;
        let first = refused
            .into_iter()
            .next()
            .expect("salvage runs on refusals");
        return SlicePlan {
            tally,
            rewrite: false,
            refused: Vec::new(),
            actions: Vec::new(),
            kept: vec![Kept {
                channel: ctx.name.clone(),
                file: scan.dat.clone(),
                seq: None,
                offset: None,
                len: bytes_before,
                what: KeptWhat::Slice(first.reason),
                range: scan.records.first().map(|f| {
                    let last = scan.records.iter().map(|r| r.seq).max().unwrap_or(f.seq);
                    (f.seq, last)
                }),
            }],
            tail_from: None,
        };
    };
    let cfg = ScanConfig {
        crc: job.crc.clone(),
        keys: job.keys,
        backend: job.backend,
        detail: true,
        hash: HashMode::None,
        progress: None,
    };
    let mut scratch = Vec::new();
    let mut counts = scan::Counts::with_keys(job.keys.len());
    let mut kept = Vec::new();
    let mut actions = Vec::with_capacity(frames.len());
    let mut dat_after = VERSION_LEN as u64;
    let mut tail_from = VERSION_LEN as u64;
    for &(seq, f) in &frames {
        let start = f.offset as usize;
        let end = f.offset as usize + record::HEADER_LEN + f.size as usize;
        tail_from = end as u64;
        let header = record::Header::at(dat, start, false).expect("framed inside the file");
        let r = record::Record {
            offset: f.offset,
            rtype: 0,
            crc: header.crc,
            payload: &dat[start + record::HEADER_LEN..end],
        };
        let info = scan::examine(&r, ctx, &cfg, &mut scratch, &mut counts, &mut Vec::new());
        let change = if !info.crc_ok {
            Err(Refused::Damage(DamageKind::CrcMismatch {
                expected: info.crc_header,
                actual: info.crc_actual,
            }))
        } else if let Some(e) = &info.parse_error {
            Err(Refused::Damage(DamageKind::BadRecord(e.clone())))
        } else if info.data_repeated {
            Err(Refused::DataRepeated)
        } else {
            decide(job.rule, seen_of(&info), job.assume_plaintext)
        };
        let change = change.and_then(|c| {
            let old = info.data_len as usize;
            let new = match c {
                Change::Keep | Change::Rekey => old,
                Change::Encrypt => old + OVERHEAD,
                Change::Decrypt => info.plain_len as usize,
            };
            let size = info.size as usize - field4_len(old) + field4_len(new);
            if size > u32::MAX as usize {
                Err(Refused::TooLarge)
            } else {
                Ok((c, size as u64))
            }
        });
        match change {
            Ok((c, size)) => {
                tally.count(c);
                if header.size != f.size {
                    tally.headers_repaired += 1;
                }
                dat_after += record::record_len(size);
                actions.push(Planned {
                    seq,
                    action: Action::of(c, job.rule, &info),
                    frame: Some(f),
                });
            }
            Err(why) => {
                tally.records += 1;
                tally.kept += 1;
                dat_after += (end - start) as u64;
                kept.push(Kept {
                    channel: ctx.name.clone(),
                    file: scan.dat.clone(),
                    seq: Some(seq),
                    offset: Some(f.offset),
                    len: (end - start) as u64,
                    what: KeptWhat::Record(why),
                    range: None,
                });
                actions.push(Planned {
                    seq,
                    action: Action::Verbatim,
                    frame: Some(f),
                });
            }
        }
    }
    let tail = (dat.len() as u64).saturating_sub(tail_from);
    if tail > 0 {
        kept.push(Kept {
            channel: ctx.name.clone(),
            file: scan.dat.clone(),
            seq: None,
            offset: Some(tail_from),
            len: tail,
            what: KeptWhat::Tail,
            range: None,
        });
    }
    let rewrite = tally.changed > 0 || tally.headers_repaired > 0;
    if rewrite {
        tally.slices_rewritten = 1;
        tally.bytes_after = dat_after + tail + index::file_len(frames.len());
    } else {
        actions = Vec::new();
    }
    SlicePlan {
        tally,
        rewrite,
        refused: Vec::new(),
        actions,
        kept,
        tail_from: Some(tail_from),
    }
}

/// The start-up check of the last record also checks its CRC.
fn last_crc_ok(job: &Job, scan: &SliceScan, data: &SliceData<'_>) -> bool {
    scan.index.entries.last().is_some_and(|last| {
        matches!(record::Record::at(data.dat, last.offset),
            Some(Event::Record(r)) if r.crc_ok(&job.crc))
    })
}

pub(super) fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// In place we never write through a symlink: the rename would replace the
/// link, not its target, and the store would silently fork.
pub(super) fn symlink_refusals(root: &Path, ch: &ChannelLayout, sf: &SliceFiles) -> Vec<Refusal> {
    let mut paths = vec![ch.dir.clone(), sf.dat.clone()];
    paths.extend(sf.idx.clone());
    paths
        .into_iter()
        .filter(|p| is_symlink(p))
        .map(|p| Refusal {
            channel: ch.display_name(),
            file: layout::rel(root, &p),
            seq: None,
            offset: None,
            reason: Refused::Symlink,
        })
        .collect()
}

/// Every slice's plan, per channel, in layout order.
pub(super) fn check(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    job: &Job,
    in_place: bool,
) -> Result<Vec<Vec<SlicePlan>>> {
    let advance = |n| job.sink.advance(n);
    let cfg = ScanConfig {
        crc: job.crc.clone(),
        keys: job.keys,
        backend: job.backend,
        detail: true,
        hash: HashMode::None,
        progress: Some(&advance),
    };
    job.sink
        .start(Phase::Check, crate::ops::store_bytes(layout));
    let scans = scan::scan_channels(layout, ctxs, &cfg, |ctx, scan, data| {
        plan_slice(job, ctx, scan, data)
    })?;
    job.sink.finish();
    let mut plans: Vec<Vec<SlicePlan>> = scans.into_iter().map(|c| c.slices).collect();
    if in_place {
        for (ch, ps) in layout.channels.iter().zip(&mut plans) {
            for (sf, p) in ch.slices.iter().zip(ps.iter_mut()) {
                if p.rewrite {
                    p.refused.extend(symlink_refusals(&layout.root, ch, sf));
                }
            }
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened_by(key: u8, cipher: Cipher) -> RecordInfo {
        RecordInfo {
            offset: 4,
            size: 40,
            crc_ok: true,
            crc_header: 0,
            crc_actual: 0,
            parse_error: None,
            seq: 9,
            timestamp: 1,
            subject: 0..0,
            reply: 0..0,
            kind: PayloadKind::Envelope(cipher),
            data_len: 30,
            key: KeyOutcome::Opened(key),
            plain_len: 1,
            sha256: None,
            data_repeated: false,
            nonce_origin: Some(NonceOrigin::Server),
        }
    }

    /// The plan records what the write pass needs and must not work out
    /// again: the key that opened the envelope and the cipher to seal with.
    #[test]
    fn actions_carry_the_key_and_the_cipher() {
        let chacha_k2 = opened_by(2, Cipher::ChaCha);
        let keep_cipher = Rule::Rekey { cipher: None };
        let to_aes = Rule::Rekey {
            cipher: Some(Cipher::Aes),
        };
        assert_eq!(
            Action::of(Change::Rekey, keep_cipher, &chacha_k2),
            Action::Rekey {
                key: 2,
                cipher: Cipher::ChaCha
            }
        );
        assert_eq!(
            Action::of(Change::Rekey, to_aes, &chacha_k2),
            Action::Rekey {
                key: 2,
                cipher: Cipher::Aes
            }
        );
        assert_eq!(
            Action::of(Change::Decrypt, Rule::Decrypt, &chacha_k2),
            Action::Decrypt { key: 2 }
        );
        let enc = Rule::Encrypt {
            cipher: Cipher::ChaCha,
        };
        assert_eq!(
            Action::of(Change::Encrypt, enc, &chacha_k2),
            Action::Encrypt(Cipher::ChaCha)
        );
        assert_eq!(Action::of(Change::Keep, enc, &chacha_k2), Action::Keep);
    }
}
