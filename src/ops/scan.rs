//! The scanner shared by `inspect`, `verify` and the rewrite check: reads
//! every slice once (memory-mapped, in parallel) through `format::record` and
//! records what is on disk. `examine` is the one place a record is judged
//! (CRC, message, payload class, which key opens it); `verify` turns these
//! facts into the server's outcome, the rewrite check into a plan.

use crate::crypto::aead::{Backend, Cipher};
use crate::crypto::envelope::{self, PayloadKind};
use crate::crypto::keys::Key;
use crate::crypto::nonce::{self, push_nonce, NonceOrigin, NonceRun};
use crate::crypto::ChannelKeys;
use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::damage::{Damage, DamageKind, RecordFacts};
use crate::format::index::{self, IndexEntry, IndexEvent};
use crate::format::layout::{rel, ChannelLayout, Mapped, SliceFiles, StoreLayout};
use crate::format::proto::{MsgView, ProtoError};
use crate::format::record::{self, Event, FileVersion, Records};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::Path;

/// What to hash for each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMode {
    None,
    /// SHA-256 of what a subscriber receives: with encryption on, the opened
    /// plaintext (no hash when no key opens it); with it off, the raw payload.
    Delivered {
        encryption: bool,
    },
}

pub struct ScanConfig<'a> {
    pub crc: Crc32,
    pub keys: &'a [Key],
    pub backend: Backend,
    pub hash: HashMode,
    /// The consumer needs the plaintext of every envelope a key opens (the
    /// rewrite's one-pass check stages it from the scratch buffer, see
    /// `RecordSink::record_full`). Else the scanner only learns whether an
    /// envelope opens, from its tag alone where that is faster
    /// (`ChannelAead::authenticates`).
    pub plaintext: bool,
    /// Called with the number of bytes scanned, as slices finish.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Asked before each slice is begun: when it answers true, the slices
    /// not yet begun are skipped (those in hand are finished), so the
    /// result lacks them; the caller that asked to stop discards it.
    pub stop: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// One channel with its keys, derived once per run.
pub struct ChannelCtx<'a> {
    pub layout: &'a ChannelLayout,
    pub name: String,
    pub keys: ChannelKeys,
}

/// Every channel of the store with its keys; `sealing` also derives the
/// nonces of `keys[0]` (for a rewrite that seals).
pub fn channels<'a>(
    layout: &'a StoreLayout,
    keys: &[Key],
    backend: Backend,
    sealing: bool,
) -> Vec<ChannelCtx<'a>> {
    layout
        .channels
        .par_iter()
        .map(|ch| ChannelCtx {
            layout: ch,
            name: ch.display_name(),
            keys: ChannelKeys::derive(keys, &ch.name, backend, sealing),
        })
        .collect()
}

/// Whether a key opened an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    /// No keys given, or not an envelope.
    NotTried,
    Opened(u8),
    Unopened(NonceOrigin),
}

#[derive(Debug, Clone)]
pub struct RecordInfo {
    pub offset: u64,
    /// Payload size from the header.
    pub size: u32,
    pub crc_ok: bool,
    /// The CRC in the record's header.
    pub crc_header: u32,
    /// The CRC computed over the payload (differs from the header's when damaged).
    pub crc_actual: u32,
    /// The protobuf error, if the payload does not parse.
    pub parse_error: Option<ProtoError>,
    pub seq: u64,
    pub timestamp: i64,
    pub subject: Range<usize>,
    pub reply: Range<usize>,
    pub kind: PayloadKind,
    pub data_len: u32,
    pub key: KeyOutcome,
    /// Length of the opened plaintext (envelopes opened by a key).
    pub plain_len: u32,
    /// The class of the opened plaintext (envelopes opened by a key): what
    /// the payload is on disk once decrypted.
    pub plain_kind: Option<PayloadKind>,
    pub sha256: Option<[u8; 32]>,
    /// The payload field appears more than once in the record.
    pub data_repeated: bool,
    /// Who probably wrote the envelope (envelopes only; None otherwise).
    pub nonce_origin: Option<NonceOrigin>,
}

/// How a slice's data file ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SliceEnd {
    Clean,
    ZeroPadding {
        offset: u64,
        len: u64,
    },
    Truncated {
        offset: u64,
        expected: Option<u32>,
        available: u64,
    },
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub records: u64,
    /// Bytes of the records (headers included).
    pub bytes: u64,
    pub empty: u64,
    pub plaintext: u64,
    pub aes: u64,
    pub chacha: u64,
    /// Envelopes too short to decrypt (13 bytes or fewer).
    pub short: u64,
    pub crc_errors: u64,
    pub bad_records: u64,
    /// Per key (in the order keys were given): envelopes it opened.
    pub opened: Vec<u64>,
    /// Envelopes no key opened that look like real envelopes (wrong key).
    pub unopened_wrong_key: u64,
    /// Envelopes no key opened that look like plaintext starting with 1 or 2.
    pub unopened_lookalike: u64,
    /// The key that opened the slice's last envelope: tried first on the
    /// next (`ChannelKeys::open`). Not a count.
    #[serde(skip)]
    pub last_opened: usize,
}

impl Counts {
    pub fn with_keys(n: usize) -> Self {
        Counts {
            opened: vec![0; n],
            ..Default::default()
        }
    }

    pub fn add(&mut self, o: &Counts) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.empty += o.empty;
        self.plaintext += o.plaintext;
        self.aes += o.aes;
        self.chacha += o.chacha;
        self.short += o.short;
        self.crc_errors += o.crc_errors;
        self.bad_records += o.bad_records;
        if self.opened.len() < o.opened.len() {
            self.opened.resize(o.opened.len(), 0);
        }
        for (a, b) in self.opened.iter_mut().zip(&o.opened) {
            *a += b;
        }
        self.unopened_wrong_key += o.unopened_wrong_key;
        self.unopened_lookalike += o.unopened_lookalike;
    }
}

/// What the index file holds and how it compares with the data file.
#[derive(Debug, Clone, Default)]
pub struct IndexScan {
    pub present: bool,
    pub version: Option<FileVersion>,
    /// How many entries there are before the first padding / partial entry
    /// / end. The entries themselves are not kept (32 bytes a record: 320 MB
    /// for a slice of 10 million messages): `entry` reads them from the
    /// mapped index.
    pub n_entries: usize,
    /// The last of them.
    pub last_entry: Option<IndexEntry>,
    /// Entries whose CRC is wrong (their positions).
    pub bad_crc: Vec<usize>,
    pub padding_at: Option<u64>,
    pub partial_at: Option<u64>,
    /// Byte length of the index file.
    pub len: u64,
    /// The first entry that disagrees with the data file's record at the same
    /// position: (position, what the data file has).
    pub mismatch: Option<(usize, RecordFacts)>,
}

impl IndexScan {
    /// Entry `i` (of the `n_entries`), read from the index file's bytes
    /// `idx` (`SliceData::idx`).
    pub fn entry(&self, idx: Option<&[u8]>, i: usize) -> Option<IndexEntry> {
        if i >= self.n_entries {
            return None;
        }
        index::entry_bytes(idx?, i).map(IndexEntry::parse)
    }
}

pub struct SliceScan {
    pub n: u64,
    pub dat: String,
    pub idx: Option<String>,
    /// Where the index is, or would be when it is missing.
    pub idx_file: String,
    pub dat_len: u64,
    pub version: FileVersion,
    pub counts: Counts,
    pub first_seq: u64,
    pub last_seq: u64,
    pub end: SliceEnd,
    pub index: IndexScan,
    pub nonces: Vec<NonceRun>,
    pub damage: Vec<Damage>,
}

/// A slice with its files still mapped, handed to the per-slice consumer.
pub struct SliceData<'m> {
    pub dat: &'m [u8],
    pub idx: Option<&'m [u8]>,
}

pub struct ChannelScan<T> {
    pub name: String,
    pub raw_name: Vec<u8>,
    pub slices: Vec<T>,
}

/// Nonce runs a consumer takes from a slice's scan at a time (see
/// `SliceScanner::take_settled_nonces`): one run per envelope of stanctl's
/// own, so a slice's runs would otherwise grow with its records (320 MB for
/// 10 million envelopes).
pub const NONCE_BATCH: usize = 4096;

/// Receives the facts of each record, in file order, while a slice is
/// scanned: a consumer that needs every record sees each one here, and none
/// is kept (a table of them would grow with the slice: a million-message
/// slice is a million `RecordInfo`s).
pub trait RecordSink {
    fn record(&mut self, info: &RecordInfo);

    /// Nonce runs of the slice, as they settle (every `NONCE_BATCH`, then
    /// the rest once the slice is read): `SliceScan::nonces` is then empty.
    /// By default they are dropped (a consumer that checks no reuse).
    fn nonces(&mut self, _runs: Vec<NonceRun>) {}

    /// `record`, with the record's bytes, its parsed message (None when it
    /// does not parse) and, when a key opened its envelope, the plaintext
    /// (so a consumer that rewrites the record need not parse or open it
    /// again).
    fn record_full(
        &mut self,
        info: &RecordInfo,
        _r: &record::Record<'_>,
        _m: Option<&MsgView<'_>>,
        _opened: Option<&[u8]>,
    ) {
        self.record(info)
    }
}

impl RecordSink for () {
    fn record(&mut self, _: &RecordInfo) {}
}

/// How far apart the scanner gives back the pages it has read (see
/// `Mapped::release_before`): the mapped part of a slice a thread holds stays
/// under this, whatever the slice's size.
const RELEASE_EVERY: u64 = 8 << 20;
/// At most this many bytes of the next record are prefetched while a
/// record's envelope is checked (`examine_msg`'s `ahead`): the check spreads
/// them over its work, a chunk per chunk hashed (`AesGcmTag::check_ahead`).
const MAX_AHEAD: usize = 64 << 10;

/// Scans every slice of these channels in parallel, each with a
/// `RecordSink` (made by `begin` before the slice is read) that sees every
/// record and its nonce runs, and hands the slice's facts with its sink to
/// `consume` while its files are still mapped.
pub fn scan_channels_with<T, S, B, F>(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    cfg: &ScanConfig<'_>,
    begin: B,
    consume: F,
) -> Result<Vec<ChannelScan<T>>>
where
    T: Send,
    S: RecordSink,
    B: Fn(&ChannelCtx<'_>, &SliceFiles) -> S + Sync,
    F: Fn(&ChannelCtx<'_>, SliceScan, SliceData<'_>, S) -> T + Sync,
{
    drive(layout, ctxs, cfg, |ctx, sf, mut scanner, data| {
        let mut sink = begin(ctx, sf);
        while let Some((info, r, msg)) = scanner.step() {
            sink.record_full(&info, &r, msg.as_ref(), scanner.opened(&info));
            if scanner.s.nonces.len() >= NONCE_BATCH {
                sink.nonces(scanner.take_settled_nonces());
            }
        }
        sink.nonces(scanner.take_all_nonces());
        consume(ctx, scanner.finish(), data, sink)
    })
}

/// Scans every slice of these channels in parallel and hands each one,
/// before any record is read, to `consume` as a `SliceScanner`: the
/// consumer pulls the records one by one as it needs them (none is kept
/// unless it keeps it) and calls `SliceScanner::finish` for the slice's
/// facts. The index's entries are not kept either (no scan keeps them:
/// `IndexScan::entry` reads them from the mapped file).
pub fn scan_channels_stepwise<T, F>(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    cfg: &ScanConfig<'_>,
    consume: F,
) -> Result<Vec<ChannelScan<T>>>
where
    T: Send,
    F: Fn(&ChannelCtx<'_>, SliceScanner<'_>, SliceData<'_>) -> T + Sync,
{
    drive(layout, ctxs, cfg, |ctx, _, scanner, data| {
        consume(ctx, scanner, data)
    })
}

/// The parallel driver of the `scan_channels*` functions: maps each slice,
/// makes its scanner and hands both to `per_slice`.
fn drive<T, F>(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    cfg: &ScanConfig<'_>,
    per_slice: F,
) -> Result<Vec<ChannelScan<T>>>
where
    T: Send,
    F: Fn(&ChannelCtx<'_>, &SliceFiles, SliceScanner<'_>, SliceData<'_>) -> T + Sync,
{
    let jobs: Vec<(usize, &SliceFiles)> = ctxs
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.layout.slices.iter().map(move |s| (i, s)))
        .collect();
    let results: Vec<Result<Option<(usize, T)>>> = jobs
        .par_iter()
        .map_init(Vec::new, |scratch, &(ci, sf)| {
            if cfg.stop.is_some_and(|stop| stop()) {
                return Ok(None);
            }
            let ctx = &ctxs[ci];
            let dat = Mapped::open(&sf.dat)?;
            let idx = match &sf.idx {
                Some(p) => Some(Mapped::open(p)?),
                None => None,
            };
            // Each window is mapped as the one behind is given back (the
            // first once the index is read: `SliceScanner::new`).
            let release_dat = |at| {
                dat.release_before(at);
                dat.populate(at, RELEASE_EVERY);
            };
            let release_idx = |at| {
                if let Some(m) = &idx {
                    m.release_before(at)
                }
            };
            let scanner = SliceScanner::new(
                &layout.root,
                ctx,
                sf,
                (dat.bytes(), &release_dat),
                idx.as_ref()
                    .map(|m| (m.bytes(), &release_idx as &dyn Fn(u64))),
                cfg,
                scratch,
            );
            let data = SliceData {
                dat: dat.bytes(),
                idx: idx.as_ref().map(|m| m.bytes()),
            };
            let t = per_slice(ctx, sf, scanner, data);
            if let Some(p) = cfg.progress {
                p(dat.bytes().len() as u64 + idx.as_ref().map_or(0, |m| m.bytes().len() as u64));
            }
            Ok(Some((ci, t)))
        })
        .collect();
    let mut out: Vec<ChannelScan<T>> = ctxs
        .iter()
        .map(|c| ChannelScan {
            name: c.name.clone(),
            raw_name: c.layout.name.clone(),
            slices: Vec::with_capacity(c.layout.slices.len()),
        })
        .collect();
    for r in results {
        if let Some((ci, t)) = r? {
            out[ci].slices.push(t);
        }
    }
    Ok(out)
}

/// Bytes of a mapped file, and how to give back its pages before an offset.
type Releasing<'a> = (&'a [u8], &'a dyn Fn(u64));

/// One slice being scanned, a record at a time: `new` reads the versions
/// and the index, each `next_record` reads, examines and checks one record
/// of the data file (damage, sequence order, index agreement, counts and
/// nonces are gathered as it goes), `finish` reads the rest and returns the
/// slice's facts. The pages of the data file behind the read position are
/// given back every `RELEASE_EVERY` bytes (and the index's, once read).
pub struct SliceScanner<'a> {
    s: SliceScan,
    ctx: &'a ChannelCtx<'a>,
    cfg: &'a ScanConfig<'a>,
    dat: &'a [u8],
    release: &'a dyn Fn(u64),
    idx: Option<Releasing<'a>>,
    records: Option<Records<'a>>,
    prev_seq: Option<u64>,
    released: u64,
    idx_released: u64,
    scratch: &'a mut Vec<u8>,
}

impl<'a> SliceScanner<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        root: &Path,
        ctx: &'a ChannelCtx<'a>,
        sf: &SliceFiles,
        (dat, release): Releasing<'a>,
        idx: Option<Releasing<'a>>,
        cfg: &'a ScanConfig<'a>,
        scratch: &'a mut Vec<u8>,
    ) -> Self {
        let s = SliceScan {
            n: sf.n,
            dat: rel(root, &sf.dat),
            idx: sf.idx.as_ref().map(|p| rel(root, p)),
            idx_file: rel(root, &sf.idx_path()),
            dat_len: dat.len() as u64,
            version: record::file_version(dat),
            counts: Counts::with_keys(cfg.keys.len()),
            first_seq: 0,
            last_seq: 0,
            end: SliceEnd::Clean,
            index: IndexScan::default(),
            nonces: Vec::new(),
            damage: Vec::new(),
        };
        let mut sc = SliceScanner {
            s,
            ctx,
            cfg,
            dat,
            release,
            idx,
            records: None,
            prev_seq: None,
            released: 0,
            idx_released: 0,
            scratch,
        };
        if let Some(kind) = DamageKind::of_version(sc.s.version) {
            sc.damage(Some(0), None, kind);
        }
        if let Some((idx, release_idx)) = sc.idx {
            sc.s.index = scan_index(idx, &cfg.crc, release_idx);
            release_idx(idx.len() as u64);
            sc.idx_released = idx.len() as u64;
        }
        // Nothing of the data file is mapped yet: this maps its first window
        // (see `drive`), now that the index's pages are given back.
        release(0);
        if sc.s.version != FileVersion::Supported {
            return sc;
        }
        sc.records = Some(Records::new(dat, false));
        sc
    }

    /// The slice's facts so far: its files' versions and index are read
    /// (entries not kept, see `IndexScan::entry`); the rest fills in
    /// as records are read.
    pub fn scan(&self) -> &SliceScan {
        &self.s
    }

    /// The nonce runs gathered so far that no later record can extend (all
    /// but the last), taken out of the scan.
    pub fn take_settled_nonces(&mut self) -> Vec<NonceRun> {
        let last = self.s.nonces.pop();
        let settled = std::mem::take(&mut self.s.nonces);
        self.s.nonces.extend(last);
        settled
    }

    /// Every nonce run gathered so far, taken out of the scan (once no
    /// record is left to extend the last one).
    pub fn take_all_nonces(&mut self) -> Vec<NonceRun> {
        std::mem::take(&mut self.s.nonces)
    }

    fn damage(&mut self, offset: Option<u64>, seq: Option<u64>, kind: DamageKind) {
        self.s.damage.push(Damage {
            channel: Some(self.ctx.name.clone()),
            file: self.s.dat.clone(),
            offset,
            seq,
            kind,
        })
    }

    /// The plaintext of the envelope of the record just stepped over, when a
    /// key opened it.
    fn opened(&self, info: &RecordInfo) -> Option<&[u8]> {
        // The plaintext is in `scratch` only when the scanner opened the envelope.
        let cfg = self.cfg;
        let kept = cfg.plaintext || matches!(cfg.hash, HashMode::Delivered { encryption: true });
        (kept && matches!(info.key, KeyOutcome::Opened(_)))
            .then(|| &self.scratch[..info.plain_len as usize])
    }

    /// Reads the rest of the slice and returns its facts.
    pub fn finish(mut self) -> SliceScan {
        while self.next_record().is_some() {}
        self.s
    }

    /// The next record of the data file, examined; None at its end (clean,
    /// zero padding or a record cut short: `SliceScan::end`).
    pub fn next_record(&mut self) -> Option<RecordInfo> {
        self.step().map(|(info, _, _)| info)
    }

    /// `next_record`, with the record's bytes and its parsed message (None
    /// when it does not parse); `opened` gives the plaintext of an envelope
    /// a key opened, until the next step.
    #[inline]
    fn step(&mut self) -> Option<(RecordInfo, record::Record<'a>, Option<MsgView<'a>>)> {
        let dat = self.dat;
        let ev = self.records.as_mut()?.next();
        let r = match ev {
            None => {
                self.records = None;
                return None;
            }
            Some(Event::Record(r)) => r,
            Some(Event::ZeroPadding { offset, len }) => {
                self.records = None;
                self.s.end = SliceEnd::ZeroPadding { offset, len };
                if !record::zero_from(dat, offset) {
                    self.damage(Some(offset), None, DamageKind::DataAfterPadding);
                }
                let kind = DamageKind::ZeroPadding {
                    len,
                    side_file: false,
                };
                self.damage(Some(offset), None, kind);
                return None;
            }
            Some(Event::Truncated {
                offset,
                expected,
                available,
            }) => {
                self.records = None;
                self.s.end = SliceEnd::Truncated {
                    offset,
                    expected,
                    available,
                };
                let kind = if record::is_dangling_header(expected, available) {
                    DamageKind::DanglingHeader
                } else {
                    DamageKind::TruncatedRecord {
                        expected,
                        available,
                    }
                };
                self.damage(Some(offset), None, kind);
                return None;
            }
        };
        let s = &mut self.s;
        // The next record's bytes, if it is as long as this one.
        let end = (r.offset + r.size_on_disk()).min(dat.len() as u64) as usize;
        let ahead = &dat[end..(end + r.payload.len().min(MAX_AHEAD)).min(dat.len())];
        let (info, msg) = examine_msg(
            &r,
            self.ctx,
            self.cfg,
            self.scratch,
            &mut s.counts,
            &mut s.nonces,
            ahead,
        );
        match &info.parse_error {
            Some(e) => {
                let kind = DamageKind::BadRecord(e.clone());
                self.damage(Some(r.offset), None, kind);
            }
            None => {
                if !info.crc_ok {
                    let kind = DamageKind::CrcMismatch {
                        expected: r.crc,
                        actual: info.crc_actual,
                    };
                    self.damage(Some(r.offset), Some(info.seq), kind);
                }
                if self.s.first_seq == 0 {
                    self.s.first_seq = info.seq;
                }
                if let Some(p) = self.prev_seq {
                    if info.seq <= p {
                        let kind = DamageKind::SequenceOrder {
                            seq: info.seq,
                            prev: p,
                        };
                        self.damage(Some(r.offset), Some(info.seq), kind);
                    }
                }
                self.prev_seq = Some(info.seq);
                self.s.last_seq = self.s.last_seq.max(info.seq);
            }
        }
        // Full index check, on the fly: entry i must describe record i.
        let pos = (self.s.counts.records - 1) as usize;
        if self.s.index.mismatch.is_none() {
            let idx = self.idx.map(|(b, _)| b);
            if let Some(e) = self.s.index.entry(idx, pos) {
                if e.seq != info.seq
                    || e.offset != info.offset
                    || e.size != info.size
                    || e.timestamp != info.timestamp
                {
                    let facts = RecordFacts {
                        seq: info.seq,
                        offset: info.offset,
                        size: info.size,
                        timestamp: info.timestamp,
                    };
                    self.s.index.mismatch = Some((pos, facts));
                }
            }
        }
        if r.offset - self.released >= RELEASE_EVERY {
            (self.release)(r.offset);
            self.released = r.offset;
            // The index, read again entry by entry when it is not kept.
            if let Some((_, release_idx)) = self.idx {
                release_idx(index::entry_offset(pos));
            }
        }
        Some((info, r, msg))
    }
}

/// Everything the scanner learns about one record: CRC, message fields,
/// payload class, which key opens it. Counts and nonces are accumulated.
pub fn examine(
    r: &record::Record<'_>,
    ctx: &ChannelCtx<'_>,
    cfg: &ScanConfig<'_>,
    scratch: &mut Vec<u8>,
    c: &mut Counts,
    nonces: &mut Vec<NonceRun>,
) -> RecordInfo {
    examine_msg(r, ctx, cfg, scratch, c, nonces, &[]).0
}

/// `examine`, also returning the parsed message (None when it does not
/// parse), for a consumer that needs its fields without parsing again.
/// `ahead`: the bytes the caller reads next (the next record), prefetched
/// while an envelope's tag is checked (`ChannelKeys::opens`); no effect on
/// the answer.
// Inlined into the scanner's step: its result is built in place rather
// than moved (a record of a tiny message is mostly this bookkeeping).
#[inline]
pub fn examine_msg<'r>(
    r: &record::Record<'r>,
    ctx: &ChannelCtx<'_>,
    cfg: &ScanConfig<'_>,
    scratch: &mut Vec<u8>,
    c: &mut Counts,
    nonces: &mut Vec<NonceRun>,
    ahead: &[u8],
) -> (RecordInfo, Option<MsgView<'r>>) {
    c.records += 1;
    c.bytes += r.size_on_disk();
    let crc_actual = cfg.crc.checksum(r.payload);
    let crc_ok = crc_actual == r.crc;
    let mut info = RecordInfo {
        offset: r.offset,
        size: r.payload.len() as u32,
        crc_ok,
        crc_header: r.crc,
        crc_actual,
        parse_error: None,
        seq: 0,
        timestamp: 0,
        subject: 0..0,
        reply: 0..0,
        kind: PayloadKind::Empty,
        data_len: 0,
        key: KeyOutcome::NotTried,
        plain_len: 0,
        plain_kind: None,
        sha256: None,
        data_repeated: false,
        nonce_origin: None,
    };
    if !crc_ok {
        c.crc_errors += 1;
    }
    let msg = match MsgView::parse(r.payload) {
        Err(e) => {
            c.bad_records += 1;
            info.parse_error = Some(e);
            None
        }
        Ok(m) => {
            let base = r.payload_offset() as usize;
            info.seq = m.sequence;
            info.timestamp = m.timestamp;
            info.subject = base + m.subject_at.start..base + m.subject_at.end;
            info.reply = base + m.reply_at.start..base + m.reply_at.end;
            info.data_len = m.data.len() as u32;
            info.data_repeated = m.data_repeated;
            info.kind = envelope::classify(m.data);
            classify_record(
                &mut info, m.data, m.sequence, ctx, cfg, scratch, c, nonces, ahead,
            );
            Some(m)
        }
    };
    (info, msg)
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn classify_record(
    info: &mut RecordInfo,
    data: &[u8],
    seq: u64,
    ctx: &ChannelCtx<'_>,
    cfg: &ScanConfig<'_>,
    scratch: &mut Vec<u8>,
    c: &mut Counts,
    nonces: &mut Vec<NonceRun>,
    ahead: &[u8],
) {
    let want_hash = cfg.hash != HashMode::None;
    let raw_hash = matches!(cfg.hash, HashMode::Delivered { encryption: false });
    match info.kind {
        PayloadKind::Empty => c.empty += 1,
        PayloadKind::Plain => c.plaintext += 1,
        PayloadKind::Short(_) => c.short += 1,
        PayloadKind::Envelope(Cipher::Aes) => c.aes += 1,
        PayloadKind::Envelope(Cipher::ChaCha) => c.chacha += 1,
    }
    if let PayloadKind::Envelope(cipher) = info.kind {
        let nonce = *envelope::nonce(data);
        info.nonce_origin = Some(nonce::nonce_origin(&nonce, seq));
        let mut opened = None;
        if cfg.plaintext || (want_hash && !raw_hash) {
            // The plaintext itself: for the consumer, or for the hash of what
            // a subscriber receives.
            if let Some((i, pt)) = ctx.keys.open(cipher, data, scratch, &mut c.last_opened) {
                opened = Some(i as u8);
                info.plain_len = pt.len() as u32;
                info.plain_kind = Some(envelope::classify(pt));
                if want_hash && !raw_hash {
                    info.sha256 = Some(Sha256::digest(pt).into());
                }
            }
        } else if let Some((i, kind)) =
            ctx.keys
                .opens(cipher, data, scratch, &mut c.last_opened, ahead)
        {
            // Whether it opens and the class of its plaintext: the tag alone
            // (and one block of keystream) where that is faster than opening.
            opened = Some(i as u8);
            info.plain_len = (data.len() - envelope::OVERHEAD) as u32;
            info.plain_kind = Some(kind);
        }
        info.key = match opened {
            Some(i) => {
                c.opened[i as usize] += 1;
                KeyOutcome::Opened(i)
            }
            None if ctx.keys.aeads.is_empty() => KeyOutcome::NotTried,
            None => {
                let o = info.nonce_origin.unwrap_or(NonceOrigin::Unknown);
                if o == NonceOrigin::Unknown {
                    c.unopened_lookalike += 1;
                } else {
                    c.unopened_wrong_key += 1;
                }
                KeyOutcome::Unopened(o)
            }
        };
        // Plaintext that merely looks like an envelope has no nonce to reuse.
        if !matches!(info.key, KeyOutcome::Unopened(NonceOrigin::Unknown)) {
            push_nonce(nonces, opened.unwrap_or(u8::MAX), cipher, &nonce, seq);
        }
    } else if want_hash && !raw_hash && !matches!(info.kind, PayloadKind::Short(_)) {
        info.sha256 = Some(Sha256::digest(data).into());
    }
    if raw_hash {
        info.sha256 = Some(Sha256::digest(data).into());
    }
}

/// Reads the index's entries (keeping none of them), giving back the pages
/// read every `RELEASE_EVERY` bytes: an index of 10 million entries is 320 MB.
fn scan_index(idx: &[u8], crc: &Crc32, release: &dyn Fn(u64)) -> IndexScan {
    let mut s = IndexScan {
        present: true,
        version: Some(record::file_version(idx)),
        len: idx.len() as u64,
        ..Default::default()
    };
    if s.version != Some(FileVersion::Supported) {
        return s;
    }
    let mut released = 0u64;
    for ev in index::entries(idx, crc) {
        match ev {
            IndexEvent::Entry { at, entry, crc_ok } => {
                if at - released >= RELEASE_EVERY {
                    release(at);
                    released = at;
                }
                if !crc_ok {
                    s.bad_crc.push(s.n_entries);
                }
                s.n_entries += 1;
                s.last_entry = Some(entry);
            }
            IndexEvent::Padding { at } => s.padding_at = Some(at),
            IndexEvent::Partial { at, .. } => s.partial_at = Some(at),
        }
    }
    s
}
