//! `stanctl store inspect`: what is on disk, per channel and per slice.

use crate::crypto::aead::Backend;
use crate::crypto::envelope::PayloadKind;
use crate::crypto::keys::Key;
use crate::crypto::nonce::NonceLogs;
use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::damage::{Damage, DamageKind};
use crate::format::hex;
use crate::format::index;
use crate::format::layout::StoreLayout;
use crate::format::record::FileVersion;
use crate::format::side::{self, Subscription};
use crate::ops::scan::{self, Counts, HashMode, KeyOutcome, ScanConfig, SliceScan};
use crate::ops::spill::{self, Fields, Spill, Spilled};
use crate::ops::{Phase, Sink};
use serde::Serialize;
use std::sync::Arc;

pub const SCHEMA: &str = "stanctl.inspect/1";

#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayloadCounts {
    pub empty: u64,
    pub plaintext: u64,
    pub aes: u64,
    pub chacha: u64,
    pub short: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyCount {
    pub key: String,
    pub opened: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unopened {
    /// Envelopes with a server's or stanctl's nonce that no key opens.
    pub wrong_key: u64,
    /// Payloads that start with 1 or 2 but look like plaintext.
    pub plaintext_lookalike: u64,
}

/// The counts shared by channel, slice and store rows.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub messages: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: u64,
    pub payloads: PayloadCounts,
    /// Per key given, in order; empty without keys.
    pub opened: Vec<KeyCount>,
    /// Present only when keys were given.
    pub unopened: Option<Unopened>,
    pub crc_errors: u64,
    pub bad_records: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SliceReport {
    pub slice: u64,
    pub file: String,
    pub index_file: Option<String>,
    pub index_entries: Option<u64>,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    pub slice: u64,
    pub offset: u64,
    pub seq: u64,
    /// empty, plaintext, aes, chacha, short-aes, short-chacha, bad-record
    pub class: String,
    /// The key that opened it, "unopened-wrong-key", "unopened-lookalike" or null.
    pub key: Option<String>,
    pub crc_ok: bool,
    /// Length of the payload as a subscriber would receive it (opened, when a key opens it).
    pub length: u64,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NonceReuse {
    pub channel: String,
    pub key: Option<String>,
    pub cipher: crate::crypto::aead::Cipher,
    /// The first nonce used twice.
    pub nonce: String,
    /// The two sequences that use it.
    pub seqs: Vec<u64>,
    /// How many consecutive nonces the two runs share (1 for a single reuse).
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelReport {
    pub name: String,
    #[serde(flatten)]
    pub stats: Stats,
    pub slices: Vec<SliceReport>,
    pub subscriptions: Vec<Subscription>,
    pub bak_files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Records>,
}

/// `--records`' rows of one channel, in slice order and, within a slice, in
/// file order, in bounded memory: each slice encodes its rows as its records
/// are read into a `crate::ops::spill` listing (beyond 64 KiB, an unnamed
/// temporary file shared by all slices, about 60 bytes a record); they are
/// read back, a row at a time, as they are printed. Serializes as the list
/// of its rows.
#[derive(Debug, Clone)]
pub struct Records {
    slices: Vec<SliceRecords>,
    /// The keys' ids, by the number a row names its key with.
    key_ids: Arc<[String]>,
    spill: Arc<Spill>,
}

#[derive(Debug, Clone)]
struct SliceRecords {
    slice: u64,
    rows: Spilled,
    count: u64,
}

impl Records {
    /// How many rows.
    pub fn len(&self) -> u64 {
        self.slices.iter().map(|s| s.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands each row to `f`, in order (read back from the temporary file
    /// as they come).
    pub fn try_for_each(
        &self,
        mut f: impl FnMut(&RecordReport) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for s in &self.slices {
            let mut rows = spill::Reader::new(&s.rows, &self.spill);
            while let Some(r) = rows.next(|b| decode_row(s.slice, b, &self.key_ids))? {
                f(&r)?;
            }
        }
        Ok(())
    }

    /// All rows in memory (for tests and small stores).
    pub fn to_vec(&self) -> std::io::Result<Vec<RecordReport>> {
        let mut out = Vec::new();
        self.try_for_each(|r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }
}

impl Serialize for Records {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.len() as usize))?;
        let mut err = None;
        let read = self.try_for_each(|r| {
            seq.serialize_element(r).map_err(|e| {
                let io = std::io::Error::other(e.to_string());
                err = Some(e);
                io
            })
        });
        if let Some(e) = err {
            return Err(e);
        }
        read.map_err(S::Error::custom)?;
        seq.end()
    }
}

/// The classes a row names, by the number it is encoded with.
const CLASSES: [&str; 7] = [
    "empty",
    "plaintext",
    "aes",
    "chacha",
    "short-aes",
    "short-chacha",
    "bad-record",
];

/// A row as `--records` keeps it: offset, seq, length (8 bytes each),
/// class, key (0 none, 1 opened by the key numbered in the next 4 bytes,
/// 2 wrong key, 3 lookalike), CRC ok, then 0 or 1 and the SHA-256.
fn encode_row(b: &mut Vec<u8>, r: &scan::RecordInfo) {
    let class = if r.parse_error.is_some() {
        "bad-record"
    } else {
        class_name(r.kind)
    };
    let class = CLASSES.iter().position(|c| *c == class).expect("a class");
    let length = match r.key {
        KeyOutcome::Opened(_) => r.plain_len as u64,
        _ => r.data_len as u64,
    };
    b.extend_from_slice(&r.offset.to_le_bytes());
    b.extend_from_slice(&r.seq.to_le_bytes());
    b.extend_from_slice(&length.to_le_bytes());
    b.push(class as u8);
    match r.key {
        KeyOutcome::NotTried => b.push(0),
        KeyOutcome::Opened(i) => {
            b.push(1);
            b.extend_from_slice(&(i as u32).to_le_bytes());
        }
        KeyOutcome::Unopened(crate::crypto::nonce::NonceOrigin::Unknown) => b.push(3),
        KeyOutcome::Unopened(_) => b.push(2),
    }
    b.push(r.crc_ok as u8);
    match &r.sha256 {
        Some(h) => {
            b.push(1);
            b.extend_from_slice(h);
        }
        None => b.push(0),
    }
}

fn decode_row(slice: u64, b: &[u8], key_ids: &[String]) -> std::io::Result<(RecordReport, usize)> {
    let mut f = Fields::new(b, "--records");
    let offset = f.u64()?;
    let seq = f.u64()?;
    let length = f.u64()?;
    let class = CLASSES.get(f.u8()? as usize).ok_or_else(|| f.bad())?;
    let key = match f.u8()? {
        0 => None,
        1 => {
            let i = f.u32()? as usize;
            Some(key_ids.get(i).ok_or_else(|| f.bad())?.clone())
        }
        2 => Some("unopened-wrong-key".to_string()),
        3 => Some("unopened-lookalike".to_string()),
        _ => return Err(f.bad()),
    };
    let crc_ok = f.u8()? != 0;
    let sha256 = match f.u8()? {
        0 => None,
        1 => Some(hex(f.take(32)?)),
        _ => return Err(f.bad()),
    };
    let row = RecordReport {
        slice,
        offset,
        seq,
        class: class.to_string(),
        key,
        crc_ok,
        length,
        sha256,
    };
    Ok((row, f.used()))
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub schema: &'static str,
    pub store: String,
    pub cluster_id: String,
    pub node_id: Option<String>,
    pub clustered: bool,
    pub clients: u64,
    pub locked_by_pid: Option<i64>,
    pub crc_poly: String,
    pub keys: Vec<KeyInfo>,
    pub channels: Vec<ChannelReport>,
    pub totals: Stats,
    pub damage: Vec<Damage>,
    pub reused_nonces: Vec<NonceReuse>,
    pub notes: Vec<Note>,
    /// A clustered node's Raft log, when given (`crate::ops::node::inspect_node`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raft_log: Option<crate::ops::node::RaftLogInspect>,
    /// Plaintext messages stored on disk, in live and archived slices.
    pub plaintext_on_disk: crate::ops::archived::PlaintextOnDisk,
}

/// Something worth knowing that is not damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A slice being archived (`.bak`), at this path.
    Bak(String),
    /// A leftover of an interrupted stanctl run, at this path.
    Temp(String),
    NoCrcMatches {
        poly: u32,
    },
    NoServerInfo,
    Clustered {
        node_id: String,
    },
    TruncateLock,
}

#[derive(Debug, Clone)]
pub struct InspectOptions {
    pub crc: Crc32,
    pub backend: Backend,
    /// Also list every record.
    pub records: bool,
}

/// What the report needs of a slice, kept while the other slices are
/// scanned: not the slice's record table, which grows with its records (the
/// scan keeps no index entries: the damage reads the few it names from the
/// mapped index while the slice is at hand).
struct SliceOut {
    scan: SliceScan,
    /// The index problems, worked out while the entries were at hand.
    index_damage: Vec<Damage>,
    index_entries: Option<u64>,
    records: Option<SliceRecords>,
}

pub fn class_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Empty => "empty",
        PayloadKind::Plain => "plaintext",
        PayloadKind::Envelope(crate::crypto::aead::Cipher::Aes) => "aes",
        PayloadKind::Envelope(crate::crypto::aead::Cipher::ChaCha) => "chacha",
        PayloadKind::Short(crate::crypto::aead::Cipher::Aes) => "short-aes",
        PayloadKind::Short(crate::crypto::aead::Cipher::ChaCha) => "short-chacha",
    }
}

fn stats(c: &Counts, first: u64, last: u64, keys: &[Key]) -> Stats {
    Stats {
        messages: c.records,
        first_seq: first,
        last_seq: last,
        bytes: c.bytes,
        payloads: PayloadCounts {
            empty: c.empty,
            plaintext: c.plaintext,
            aes: c.aes,
            chacha: c.chacha,
            short: c.short,
        },
        opened: keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyCount {
                key: k.id.clone(),
                opened: c.opened.get(i).copied().unwrap_or(0),
            })
            .collect(),
        unopened: (!keys.is_empty()).then_some(Unopened {
            wrong_key: c.unopened_wrong_key,
            plaintext_lookalike: c.unopened_lookalike,
        }),
        crc_errors: c.crc_errors,
        bad_records: c.bad_records,
    }
}

fn merge_range(first: &mut u64, last: &mut u64, f: u64, l: u64) {
    if f != 0 && (*first == 0 || f < *first) {
        *first = f;
    }
    *last = (*last).max(l);
}

/// What the store holds, with every key in `keys` tried on every envelope.
pub fn run(
    layout: &StoreLayout,
    keys: &[Key],
    opts: &InspectOptions,
    sink: &dyn Sink,
) -> Result<InspectReport> {
    let crc = &opts.crc;
    let locked_by_pid = crate::format::lock::holder(&layout.root)?;
    let meta = side::read(layout, crc)?;
    let advance = |n| sink.advance(n);
    let cfg = ScanConfig {
        crc: crc.clone(),
        keys,
        backend: opts.backend,
        hash: if opts.records {
            HashMode::Delivered { encryption: true }
        } else {
            HashMode::None
        },
        plaintext: false,
        progress: Some(&advance),
        stop: None,
    };
    sink.start(Phase::Inspect, crate::ops::store_bytes(layout));
    let ctxs = scan::channels(layout, keys, opts.backend, false);
    // Every channel's nonces, for the reuse check: spilled to a temporary
    // file beyond a budget instead of growing with the store.
    let nonce_logs = NonceLogs::new(ctxs.len());
    // `--records`' rows, likewise spilled.
    let rows_spill = Arc::new(Spill::default());
    let key_ids: Arc<[String]> = keys.iter().map(|k| k.id.clone()).collect();
    let spill_err = spill::temp_dir_failed;
    // Each slice is read a record at a time: its nonce runs go to the reuse
    // check as they settle and `--records`' rows are made as the records
    // are read, so nothing of the slice grows with its records but the
    // listing asked for.
    let scanned = scan::scan_channels_stepwise(
        layout,
        &ctxs,
        &cfg,
        |ctx, mut sc, data| -> Result<SliceOut> {
            let ci = ctxs
                .iter()
                .position(|c| std::ptr::eq(c, ctx))
                .expect("one of ctxs");
            let n = sc.scan().n;
            let mut rows = opts
                .records
                .then(|| (spill::Writer::new(&rows_spill), 0u64));
            while let Some(r) = sc.next_record() {
                if let Some((w, count)) = rows.as_mut() {
                    encode_row(w.buf(), &r);
                    w.done();
                    *count += 1;
                }
                if sc.scan().nonces.len() >= scan::NONCE_BATCH {
                    let runs = sc.take_settled_nonces();
                    nonce_logs.add(ci, &runs).map_err(spill_err)?;
                }
            }
            let runs = sc.take_all_nonces();
            nonce_logs.add(ci, &runs).map_err(spill_err)?;
            let records = match rows {
                Some((w, count)) => Some(SliceRecords {
                    slice: n,
                    rows: w.finish().map_err(spill_err)?,
                    count,
                }),
                None => None,
            };
            let mut s = sc.finish();
            let index_damage = index_damage(&ctx.name, &s, data.idx);
            let index_entries = s.index.present.then_some(s.index.n_entries as u64);
            s.index.bad_crc = Vec::new();
            Ok(SliceOut {
                scan: s,
                index_damage,
                index_entries,
                records,
            })
        },
    )?;
    sink.finish();
    // Archived slices' envelopes count in the reuse check too.
    let add = |ci, runs: &[_]| nonce_logs.add(ci, runs).map_err(spill_err);
    crate::ops::archived::nonces(layout, keys, opts.backend, crc, &add)?;

    let mut damage = meta.damage.clone();
    let mut channels = Vec::new();
    let mut total = Counts::default();
    let (mut tf, mut tl) = (0, 0);
    let mut reused = Vec::new();
    let mut notes = Vec::new();
    for (ci, (ch, layout_ch)) in scanned.into_iter().zip(&layout.channels).enumerate() {
        let mut c = Counts::with_keys(keys.len());
        let (mut first, mut last) = (0, 0);
        let mut slices = Vec::new();
        let mut records = opts.records.then(|| Records {
            slices: Vec::new(),
            key_ids: key_ids.clone(),
            spill: rows_spill.clone(),
        });
        for so in ch.slices {
            let so = so?;
            let s = so.scan;
            c.add(&s.counts);
            merge_range(&mut first, &mut last, s.first_seq, s.last_seq);
            damage.extend(s.damage.iter().cloned());
            damage.extend(so.index_damage);
            if let (Some(all), Some(r)) = (records.as_mut(), so.records) {
                all.slices.push(r);
            }
            slices.push(SliceReport {
                slice: s.n,
                file: s.dat.clone(),
                index_file: s.idx.clone(),
                index_entries: so.index_entries,
                stats: stats(&s.counts, s.first_seq, s.last_seq, keys),
            });
        }
        let channel_reuse = nonce_logs.reuse(ci).map_err(spill_err)?;
        reused.extend(channel_reuse.into_iter().map(|r| NonceReuse {
            channel: ch.name.clone(),
            key: keys.get(r.key as usize).map(|k| k.id.clone()),
            cipher: r.cipher,
            nonce: hex(&r.nonce),
            seqs: r.seqs.to_vec(),
            count: r.count,
        }));
        for p in &layout_ch.orphan_idx {
            damage.push(Damage {
                channel: Some(ch.name.clone()),
                file: crate::format::layout::rel(&layout.root, p),
                offset: None,
                seq: None,
                kind: DamageKind::OrphanIndex,
            });
        }
        for p in &layout_ch.bad_names {
            damage.push(Damage {
                channel: Some(ch.name.clone()),
                file: crate::format::layout::rel(&layout.root, p),
                offset: None,
                seq: None,
                kind: DamageKind::BadSliceName,
            });
        }
        for p in &layout_ch.bak {
            notes.push(Note::Bak(crate::format::layout::rel(&layout.root, p)));
        }
        for p in &layout_ch.temp {
            notes.push(Note::Temp(crate::format::layout::rel(&layout.root, p)));
        }
        total.add(&c);
        merge_range(&mut tf, &mut tl, first, last);
        channels.push(ChannelReport {
            name: ch.name.clone(),
            stats: stats(&c, first, last, keys),
            slices,
            subscriptions: meta.subs.get(&ch.raw_name).cloned().unwrap_or_default(),
            bak_files: layout_ch
                .bak
                .iter()
                .map(|p| crate::format::layout::rel(&layout.root, p))
                .collect(),
            records,
        });
    }
    if total.opened.len() < keys.len() {
        total.opened.resize(keys.len(), 0);
    }
    if total.records > 0 && total.crc_errors == total.records {
        notes.push(Note::NoCrcMatches { poly: crc.poly() });
    }
    if meta.no_server_info {
        notes.push(Note::NoServerInfo);
    }
    if meta.clustered() {
        notes.push(Note::Clustered {
            node_id: meta.server.node_id.clone(),
        });
    }
    if layout.truncate_lock {
        notes.push(Note::TruncateLock);
    }
    let plaintext_on_disk = crate::ops::archived::PlaintextOnDisk::of_store(
        layout,
        channels
            .iter()
            .map(|c| (c.name.clone(), c.stats.payloads.plaintext)),
    );
    Ok(InspectReport {
        schema: SCHEMA,
        store: layout.root.display().to_string(),
        cluster_id: meta.server.cluster_id.clone(),
        node_id: meta.clustered().then(|| meta.server.node_id.clone()),
        clustered: meta.clustered(),
        clients: meta.clients,
        locked_by_pid,
        crc_poly: format!("{:#010x}", crc.poly()),
        keys: keys
            .iter()
            .map(|k| KeyInfo {
                id: k.id.clone(),
                source: k.origin.to_string(),
            })
            .collect(),
        channels,
        totals: stats(&total, tf, tl, keys),
        damage,
        reused_nonces: reused,
        notes,
        raft_log: None,
        plaintext_on_disk,
    })
}

/// Index problems as damage, in the server's terms; `idx` is the index
/// file's bytes (`SliceData::idx`), where the entries named are read.
pub fn index_damage(channel: &str, s: &SliceScan, idx: Option<&[u8]>) -> Vec<Damage> {
    let mut out = Vec::new();
    let mut d = |offset: Option<u64>, seq: Option<u64>, kind: DamageKind| {
        out.push(Damage {
            channel: Some(channel.to_string()),
            file: s.idx_file.clone(),
            offset,
            seq,
            kind,
        })
    };
    let ix = &s.index;
    if !ix.present {
        if s.counts.records > 0 {
            d(None, None, DamageKind::IndexMissing);
        }
        return out;
    }
    if let Some(kind) = ix.version.and_then(DamageKind::of_version) {
        d(Some(0), None, kind);
    }
    for &i in &ix.bad_crc {
        d(
            Some(index::entry_offset(i)),
            ix.entry(idx, i).map(|e| e.seq),
            DamageKind::IndexCrc,
        );
    }
    if let Some(at) = ix.partial_at {
        d(Some(at), None, DamageKind::IndexPartialEntry);
    }
    if let Some(at) = ix.padding_at {
        d(Some(at), None, DamageKind::IndexPadding);
    }
    // Full comparison with the data file (the server only checks the last entry).
    let n = ix.n_entries as u64;
    if n != s.counts.records && ix.version == Some(FileVersion::Supported) {
        let kind = DamageKind::IndexCount {
            entries: n,
            records: s.counts.records,
        };
        d(None, None, kind);
    }
    if let Some((i, data)) = ix.mismatch {
        // The scan found it among the `n_entries`: the file holds it.
        if let Some(entry) = ix.entry(idx, i) {
            let kind = DamageKind::IndexMismatch { entry, data };
            d(Some(index::entry_offset(i)), Some(entry.seq), kind);
        }
    }
    out
}
