//! The check: every record judged before the first write.

use super::*;
use crate::format::damage::DamageKind;
use crate::ops::scan::RecordSink;

/// The check's verdict on one slice.
pub(super) struct SlicePlan {
    pub(super) tally: Tally,
    pub(super) rewrite: bool,
    pub(super) refused: Vec<Refusal>,
    /// What the write pass does with each record, in file order (only when
    /// the slice is rewritten): the check's decision, carried, not re-derived.
    pub(super) actions: Actions,
    /// What --keep-damaged carries over byte for byte.
    pub(super) kept: Vec<Kept>,
    /// Salvage: records are framed by `Planned::frame` (the index's offset
    /// and size), not by their headers, and the bytes from here to the end
    /// of the data file are copied as they are.
    pub(super) tail_from: Option<u64>,
    /// One-pass `--output`: the new .dat and .idx the check already wrote
    /// (staged under temporary names in the output), to be moved into place.
    pub(super) staged: Option<Staged>,
    /// One-pass `--output`: why staging the slice failed (an I/O error).
    pub(super) stage_error: Option<Error>,
}

/// Where a record is, as the server frames it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame {
    pub(super) offset: u64,
    /// The payload's size (the index entry's).
    pub(super) size: u32,
    pub(super) timestamp: i64,
}

/// The planned records of a slice as runs of consecutive sequences with one
/// action: kept for every slice between the check and the write, so they
/// must not grow with the records (a slice the rule treats alike, the
/// usual case, is one run; the worst case, alternating actions, is 24 bytes
/// a record). Salvage's frames, one per record, are kept beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Actions {
    runs: Vec<ActionRun>,
    /// Salvage only: the frame of every planned record, in order.
    frames: Vec<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ActionRun {
    first_seq: u64,
    len: u64,
    action: Action,
}

impl Actions {
    /// Adds the next record. Either every record has a frame or none has.
    pub(super) fn push(&mut self, p: Planned) {
        if let Some(f) = p.frame {
            self.frames.push(f);
        }
        if let Some(r) = self.runs.last_mut() {
            if r.action == p.action && r.first_seq.checked_add(r.len) == Some(p.seq) {
                r.len += 1;
                return;
            }
        }
        self.runs.push(ActionRun {
            first_seq: p.seq,
            len: 1,
            action: p.action,
        });
    }

    /// Every planned record, in file order.
    pub(super) fn iter(&self) -> impl Iterator<Item = Planned> + '_ {
        self.runs
            .iter()
            .flat_map(|r| (0..r.len).map(move |i| (r.first_seq + i, r.action)))
            .enumerate()
            .map(|(i, (seq, action))| Planned {
                seq,
                action,
                frame: self.frames.get(i).copied(),
            })
    }
}

impl FromIterator<Planned> for Actions {
    fn from_iter<I: IntoIterator<Item = Planned>>(it: I) -> Self {
        let mut a = Actions::default();
        for p in it {
            a.push(p);
        }
        a
    }
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

/// The check of one slice, fed one record at a time by the scanner (no
/// table of the slice's records is kept, except for `--keep-damaged`'s
/// salvage), then finished with the scan's damage and index facts.
pub(super) struct PlanSink<'j> {
    job: &'j Job<'j>,
    channel: String,
    file: String,
    tally: Tally,
    /// Refusals of single records, in file order.
    refused: Vec<Refusal>,
    actions: Actions,
    /// Length of the new .dat: version, records (field 4 resized); any zero
    /// tail is dropped.
    dat_after: u64,
    /// Whether the rewrite writes an index for this slice (see `writes_index`).
    writes_index: bool,
    /// One-pass `--output`: writes each planned record as it is judged.
    stage: Option<Stager<'j>>,
    /// The sequence of the slice's first record and the largest of all (0
    /// for a record that does not parse), for `--keep-damaged`'s report of
    /// a slice it keeps whole: no table of the records is kept.
    first_seq: Option<u64>,
    max_seq: u64,
}

/// Every slice gets its index written, except an archived slice that has
/// none (`msgs.N.dat.bak` without `msgs.N.idx.bak`): the server never reads
/// it, and the archive script or the operator may have removed the index on
/// purpose, so the rewrite converts the `.dat.bak` and invents no file.
pub(super) fn writes_index(sf: &SliceFiles) -> bool {
    !sf.archived || sf.idx.is_some()
}

impl<'j> PlanSink<'j> {
    pub(super) fn new(
        job: &'j Job<'j>,
        channel: String,
        file: String,
        stage: Option<Stager<'j>>,
    ) -> Self {
        PlanSink {
            job,
            channel,
            file,
            tally: Tally::default(),
            refused: Vec::new(),
            actions: Actions::default(),
            dat_after: VERSION_LEN as u64,
            writes_index: true,
            stage,
            first_seq: None,
            max_seq: 0,
        }
    }

    /// For a slice whose index is not written (see `writes_index`).
    pub(super) fn writes_index(mut self, yes: bool) -> Self {
        self.writes_index = yes;
        self
    }

    fn refuse(&mut self, info: &RecordInfo, reason: Refused) {
        self.refused.push(Refusal {
            archived: false,
            channel: self.channel.clone(),
            file: self.file.clone(),
            seq: Some(info.seq),
            offset: Some(info.offset),
            reason,
        });
    }
}

impl RecordSink for PlanSink<'_> {
    fn record(&mut self, info: &RecordInfo) {
        self.judge(info);
    }

    fn record_full(
        &mut self,
        info: &RecordInfo,
        r: &record::Record<'_>,
        m: Option<&proto::MsgView<'_>>,
        opened: Option<&[u8]>,
    ) {
        let action = self.judge(info);
        if let Some(st) = &mut self.stage {
            match (action, m) {
                (Some(a), Some(m)) => st.put(r, m, a, opened),
                // The slice is refused: its staged files will be removed.
                _ => st.abandon(),
            }
        }
    }
}

impl PlanSink<'_> {
    /// Judges one record and plans it; the action planned, or None when the
    /// record is refused (or already refused as damage).
    fn judge(&mut self, info: &RecordInfo) -> Option<Action> {
        let job = self.job;
        self.first_seq.get_or_insert(info.seq);
        self.max_seq = self.max_seq.max(info.seq);
        if !info.crc_ok || info.parse_error.is_some() {
            self.tally.records += 1;
            self.tally.plaintext(info, None);
            return None; // already refused as damage
        }
        if info.data_repeated {
            // Only the last copy would be rewritten; an earlier one could
            // stay behind in plaintext.
            self.tally.records += 1;
            self.tally.plaintext(info, None);
            self.refuse(info, Refused::DataRepeated);
            return None;
        }
        let seen = seen_of(info);
        self.tally.saw(seen);
        let change = match decide(job.rule, seen, job.assume_plaintext) {
            Ok(c) => c,
            Err(why) => {
                self.tally.records += 1;
                self.tally.plaintext(info, None);
                self.refuse(info, why);
                return None;
            }
        };
        self.tally.count(change);
        self.tally.kept_cipher(job.rule, seen, change);
        self.tally.plaintext(info, Some(change));
        let action = Action::of(change, job.rule, info);
        self.actions.push(Planned {
            seq: info.seq,
            action,
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
            self.refuse(info, Refused::TooLarge);
            return None;
        }
        self.dat_after += record::record_len(size as u64);
        Some(action)
    }
}

/// The check's verdict on one slice, from what its sink saw of each record.
pub(super) fn plan_slice(
    ctx: &ChannelCtx<'_>,
    scan: SliceScan,
    data: SliceData<'_>,
    sink: PlanSink<'_>,
) -> SlicePlan {
    let idx_len = data.idx.map_or(0, |i| i.len() as u64);
    let PlanSink {
        job,
        mut tally,
        refused: record_refusals,
        mut actions,
        dat_after,
        writes_index,
        stage,
        first_seq,
        max_seq,
        ..
    } = sink;
    tally.bytes_before = scan.dat_len + idx_len;
    let mut refused: Vec<Refusal> = scan
        .damage
        .iter()
        .filter(|d| d.kind.refuses_rewrite())
        .map(|d| Refusal {
            archived: false,
            channel: ctx.name.clone(),
            file: d.file.clone(),
            seq: d.seq,
            offset: d.offset,
            reason: Refused::Damage(d.kind.clone()),
        })
        .collect();
    refused.extend(record_refusals);
    if job.keep_damaged && !refused.is_empty() {
        let before = tally.bytes_before;
        let seqs = first_seq.map(|f| (f, max_seq));
        return salvage(job, ctx, &scan, &data, refused, before, writes_index, seqs);
    }
    let rewrite_ok = scan.version == FileVersion::Supported && refused.is_empty();
    // The index is kept only if it is byte for byte the one the write would
    // make: one entry per record, each with the record's seq, offset, time
    // and size and a good CRC (the scan compared them as it went). With any
    // refusal the slice is not rewritten, whatever the index holds.
    let records = scan.counts.records as usize;
    let ix = &scan.index;
    let index_matches = !writes_index
        || (ix.version == Some(FileVersion::Supported)
            && idx_len == index::file_len(records)
            && ix.n_entries == records
            && ix.bad_crc.is_empty()
            && ix.mismatch.is_none());
    // A zero tail is dropped: the server truncates it on an index rebuild,
    // and kept behind a trusted new index it would become a trap (the server
    // appends after it, a later rebuild loses what it appended).
    let rewrite = rewrite_ok && (tally.changed > 0 || !index_matches);
    // One-pass: keep the staged files of a slice that is rewritten, remove
    // the others (a slice left as it is gets copied byte for byte).
    let (staged, stage_error) = match stage.map(|st| st.finish(rewrite, dat_after)) {
        Some(Ok(files)) => (files, None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    if rewrite {
        tally.slices_rewritten = 1;
        tally.bytes_after = dat_after
            + if writes_index {
                index::file_len(records)
            } else {
                0
            };
    } else {
        tally.bytes_after = tally.bytes_before;
        tally.plaintext_after = tally.plaintext_before;
        actions = Actions::default();
    }
    SlicePlan {
        tally,
        rewrite,
        refused,
        actions,
        kept: Vec::new(),
        tail_from: None,
        staged,
        stage_error,
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
    let entry = |i| ix.entry(data.idx, i);
    let first = entry(0)?;
    let mut at = VERSION_LEN as u64;
    for i in 0..ix.n_entries {
        let e = entry(i)?;
        if e.offset != at || e.seq != first.seq.checked_add(i as u64)? {
            return None;
        }
        at = e.record_end();
    }
    if at > data.dat.len() as u64 {
        return None;
    }
    // The server's start-up check of the last record (CRC always on).
    let last = ix.last_entry?;
    match record::Record::at(data.dat, last.offset) {
        Some(Event::Record(r))
            if r.payload.len() as u64 == last.size as u64
                && r.message().is_ok_and(|m| m.sequence == last.seq) => {}
        _ => return None,
    }
    Some(
        (0..ix.n_entries)
            .filter_map(entry)
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

/// The records of a data file framed by their headers, as the scanner reads
/// them (read again here rather than kept from the scan: only a slice
/// salvaged needs them).
fn header_frames(dat: &[u8]) -> Vec<(u64, Frame)> {
    let mut frames = Vec::new();
    for ev in record::Records::new(dat, false) {
        let Event::Record(r) = ev else { break };
        let (seq, timestamp) =
            proto::MsgView::parse(r.payload).map_or((0, 0), |m| (m.sequence, m.timestamp));
        let f = Frame {
            offset: r.offset,
            size: r.payload.len() as u32,
            timestamp,
        };
        frames.push((seq, f));
    }
    frames
}

/// `--keep-damaged`: frame the slice as the server does (by a trusted
/// index; by the headers when the server rebuilds the index and every
/// record reads whole), convert every record the rule handles, keep the
/// others byte for byte with their index size, and copy the tail. A slice
/// that cannot be framed so is carried over whole. `seqs`: the first
/// record's sequence and the largest (see `PlanSink::first_seq`).
#[allow(clippy::too_many_arguments)]
fn salvage(
    job: &Job,
    ctx: &ChannelCtx<'_>,
    scan: &SliceScan,
    data: &SliceData<'_>,
    refused: Vec<Refusal>,
    bytes_before: u64,
    writes_index: bool,
    seqs: Option<(u64, u64)>,
) -> SlicePlan {
    let dat = data.dat;
    let damaged = scan.damage.iter().any(|d| d.kind.refuses_rewrite());
    let frames = trusted_frames(scan, data)
        .filter(|_| last_crc_ok(job, scan, data))
        .or_else(|| {
            (!damaged && scan.version == FileVersion::Supported).then(|| header_frames(dat))
        });
    let mut tally = Tally {
        bytes_before,
        bytes_after: bytes_before,
        ..Tally::default()
    };
    let Some(frames) = frames else {
        tally.records = scan.counts.records;
        tally.kept = tally.records;
        tally.plaintext_before = scan.counts.plaintext;
        tally.plaintext_after = scan.counts.plaintext;
        let first = refused
            .into_iter()
            .next()
            .expect("salvage runs on refusals");
        return SlicePlan {
            tally,
            rewrite: false,
            refused: Vec::new(),
            actions: Actions::default(),
            kept: vec![Kept {
                channel: ctx.name.clone(),
                file: scan.dat.clone(),
                seq: None,
                offset: None,
                len: bytes_before,
                what: KeptWhat::Slice(first.reason),
                range: seqs,
                archived: false,
            }],
            tail_from: None,
            staged: None,
            stage_error: None,
        };
    };
    let cfg = ScanConfig {
        crc: job.crc.clone(),
        keys: job.keys,
        backend: job.backend,
        hash: HashMode::None,
        plaintext: true,
        progress: None,
        stop: None,
    };
    let mut scratch = Vec::new();
    let mut counts = scan::Counts::with_keys(job.keys.len());
    let mut kept = Vec::new();
    let mut actions = Actions::default();
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
                tally.plaintext(&info, Some(c));
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
                tally.plaintext(&info, None);
                dat_after += (end - start) as u64;
                kept.push(Kept {
                    channel: ctx.name.clone(),
                    file: scan.dat.clone(),
                    seq: Some(seq),
                    offset: Some(f.offset),
                    len: (end - start) as u64,
                    what: KeptWhat::Record(why),
                    range: None,
                    archived: false,
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
            archived: false,
        });
    }
    let rewrite = tally.changed > 0 || tally.headers_repaired > 0;
    if rewrite {
        tally.slices_rewritten = 1;
        let idx_after = if writes_index {
            index::file_len(frames.len())
        } else {
            0
        };
        tally.bytes_after = dat_after + tail + idx_after;
    } else {
        tally.plaintext_after = tally.plaintext_before;
        actions = Actions::default();
    }
    SlicePlan {
        tally,
        rewrite,
        refused: Vec::new(),
        actions,
        kept,
        tail_from: Some(tail_from),
        staged: None,
        stage_error: None,
    }
}

/// The start-up check of the last record also checks its CRC.
fn last_crc_ok(job: &Job, scan: &SliceScan, data: &SliceData<'_>) -> bool {
    scan.index.last_entry.is_some_and(|last| {
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
            archived: false,
            channel: ch.display_name(),
            file: layout::rel(root, &p),
            seq: None,
            offset: None,
            reason: Refused::Symlink,
        })
        .collect()
}

/// Every slice's plan, per channel, in layout order.
/// With `staging` (one-pass `--output` or `--one-pass`), each slice's new
/// files are written under it as the records are judged (see `Stager`;
/// in place, not a slice behind a symbolic link: see `stage::stages`), and a stop the
/// operator asks for (`Sink::cancelled`) is honoured between slices: None
/// then (the caller removes what was staged). The caller starts the phase
/// (`Phase::Check`, or `Phase::CheckAndStage` before it creates the staging
/// directory); the check finishes it.
pub(super) fn check(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    job: &Job,
    in_place: bool,
    staging: Option<&Staging>,
) -> Result<Option<Vec<Vec<SlicePlan>>>> {
    let advance = |n| job.sink.advance(n);
    let stop = || job.sink.cancelled();
    let cfg = ScanConfig {
        crc: job.crc.clone(),
        keys: job.keys,
        backend: job.backend,
        hash: HashMode::None,
        // The one-pass check stages opened envelopes from their plaintext.
        plaintext: true,
        progress: Some(&advance),
        stop: staging
            .is_some()
            .then_some(&stop as &(dyn Fn() -> bool + Sync)),
    };
    let scans = scan::scan_channels_with(
        layout,
        ctxs,
        &cfg,
        |ctx, sf| {
            // The same channel, with the lifetime of `ctxs` (the sink keeps its keys).
            let ctx = ctxs
                .iter()
                .find(|c| std::ptr::eq(*c, ctx))
                .expect("the scanner hands out ctxs' own channels");
            let stage = staging
                .filter(|s| s.dir.is_some() || super::stage::stages(ctx.layout, sf))
                .map(|s| Stager::new(job, &ctx.keys, sf, &s.dir_for(ctx.layout)));
            let rel = layout::rel(&layout.root, &sf.dat);
            PlanSink::new(job, ctx.name.clone(), rel, stage).writes_index(writes_index(sf))
        },
        plan_slice,
    )?;
    job.sink.finish();
    // Asked to stop: the plans lack the slices never begun.
    if staging.is_some() && job.sink.cancelled() {
        return Ok(None);
    }
    let mut plans: Vec<Vec<SlicePlan>> = scans.into_iter().map(|c| c.slices).collect();
    if let Some(e) = plans
        .iter_mut()
        .flatten()
        .find_map(|p| p.stage_error.take())
    {
        return Err(e);
    }
    if in_place {
        for (ch, ps) in layout.channels.iter().zip(&mut plans) {
            for (sf, p) in ch.slices.iter().zip(ps.iter_mut()) {
                if p.rewrite {
                    p.refused.extend(symlink_refusals(&layout.root, ch, sf));
                }
            }
        }
    }
    Ok(Some(plans))
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
            plain_kind: Some(PayloadKind::Plain),
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
