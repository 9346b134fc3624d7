//! `stanctl store inspect`: what is on disk, per channel and per slice.

use crate::crypto::aead::Backend;
use crate::crypto::envelope::PayloadKind;
use crate::crypto::keys::Key;
use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::layout::StoreLayout;
use crate::format::side::{self, Subscription};
use crate::ops::scan::{
    self, Counts, Damage, HashMode, KeyOutcome, NonceRun, ScanConfig, SliceScan,
};
use crate::ops::{Phase, Sink};
use serde::Serialize;

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
    pub records: Option<Vec<RecordReport>>,
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
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InspectOptions {
    pub crc: Crc32,
    pub backend: Backend,
    /// Also list every record.
    pub records: bool,
}

struct SliceOut {
    scan: SliceScan,
    records: Option<Vec<RecordReport>>,
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

pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
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
        detail: opts.records,
        hash: if opts.records {
            HashMode::Delivered { encryption: true }
        } else {
            HashMode::None
        },
        progress: Some(&advance),
    };
    sink.start(Phase::Inspect, crate::ops::store_bytes(layout));
    let scanned = scan::scan_store(layout, &cfg, |_ctx, mut s, _data| {
        let records = opts.records.then(|| {
            let recs = std::mem::take(&mut s.records);
            recs.iter()
                .map(|r| record_report(s.n, r, keys))
                .collect::<Vec<_>>()
        });
        SliceOut { scan: s, records }
    })?;
    sink.finish();

    let mut damage = meta.damage.clone();
    let mut channels = Vec::new();
    let mut total = Counts::default();
    let (mut tf, mut tl) = (0, 0);
    let mut reused = Vec::new();
    let mut notes = Vec::new();
    for (ch, layout_ch) in scanned.into_iter().zip(&layout.channels) {
        let mut c = Counts::with_keys(keys.len());
        let (mut first, mut last) = (0, 0);
        let mut slices = Vec::new();
        let mut nonces: Vec<NonceRun> = Vec::new();
        let mut records = opts.records.then(Vec::new);
        for so in ch.slices {
            let s = so.scan;
            c.add(&s.counts);
            merge_range(&mut first, &mut last, s.first_seq, s.last_seq);
            damage.extend(s.damage.iter().cloned());
            damage.extend(index_damage(&ch.name, &s));
            nonces.extend_from_slice(&s.nonces);
            if let (Some(all), Some(r)) = (records.as_mut(), so.records) {
                all.extend(r);
            }
            slices.push(SliceReport {
                slice: s.n,
                file: s.dat.clone(),
                index_file: s.idx.clone(),
                index_entries: s.index.present.then_some(s.index.entries.len() as u64),
                stats: stats(&s.counts, s.first_seq, s.last_seq, keys),
            });
        }
        reused.extend(find_reuse(&ch.name, &mut nonces, keys));
        for p in &layout_ch.orphan_idx {
            damage.push(Damage {
                channel: Some(ch.name.clone()),
                file: crate::format::layout::rel(&layout.root, p),
                offset: None,
                seq: None,
                kind: "orphan-index",
                detail: "index file without its data file; the server ignores it".into(),
            });
        }
        for p in &layout_ch.bad_names {
            damage.push(Damage {
                channel: Some(ch.name.clone()),
                file: crate::format::layout::rel(&layout.root, p),
                offset: None,
                seq: None,
                kind: "bad-slice-name",
                detail: "the server refuses to start: \"message log has an invalid name\"".into(),
            });
        }
        for p in &layout_ch.bak {
            notes.push(format!(
                "{}: a slice being archived (.bak); the server does not read it, and neither does inspect",
                crate::format::layout::rel(&layout.root, p)
            ));
        }
        for p in &layout_ch.temp {
            notes.push(format!(
                "{}: left by an interrupted stanctl run; rerun the same command to finish it",
                crate::format::layout::rel(&layout.root, p)
            ));
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
        notes.push(format!("no record's CRC matches polynomial {:#010x}: is that the server's -file_crc_poly? (the default is IEEE, 0xedb88320)", crc.poly()));
    }
    if meta.no_server_info {
        notes.push("server.dat holds no ServerInfo record: the server would start as a NEW store and recover none of these channels (run verify)".into());
    }
    if meta.clustered() {
        notes.push(format!(
            "clustered node {:?}: its Raft logs (raft.log) are elsewhere and were not checked",
            meta.server.node_id
        ));
    }
    if layout.truncate_lock {
        notes.push(
            ".truncate.lck present: a server is (or was) running with truncate-on-unexpected-EOF"
                .into(),
        );
    }
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
    })
}

fn record_report(slice: u64, r: &scan::RecordInfo, keys: &[Key]) -> RecordReport {
    let class = if r.parse_error.is_some() {
        "bad-record".to_string()
    } else {
        class_name(r.kind).to_string()
    };
    let (key, length) = match r.key {
        KeyOutcome::Opened(i) => (Some(keys[i as usize].id.clone()), r.plain_len as u64),
        KeyOutcome::Unopened(crate::crypto::envelope::NonceOrigin::Unknown) => {
            (Some("unopened-lookalike".into()), r.data_len as u64)
        }
        KeyOutcome::Unopened(_) => (Some("unopened-wrong-key".into()), r.data_len as u64),
        KeyOutcome::NotTried => (None, r.data_len as u64),
    };
    RecordReport {
        slice,
        offset: r.offset,
        seq: r.seq,
        class,
        key,
        crc_ok: r.crc_ok,
        length,
        sha256: r.sha256.map(|h| hex(&h)),
    }
}

/// Index problems as damage, in the server's terms.
pub fn index_damage(channel: &str, s: &SliceScan) -> Vec<Damage> {
    let mut out = Vec::new();
    let file = s.idx_file.clone();
    let mut d = |offset: Option<u64>, seq: Option<u64>, kind: &'static str, detail: String| {
        out.push(Damage {
            channel: Some(channel.to_string()),
            file: file.clone(),
            offset,
            seq,
            kind,
            detail,
        })
    };
    let ix = &s.index;
    if !ix.present {
        if s.counts.records > 0 {
            d(
                None,
                None,
                "index-missing",
                "no index file; the server rebuilds it from the data file".into(),
            );
        }
        return out;
    }
    if let Some((kind, detail)) = ix.version.and_then(crate::ops::scan::version_damage) {
        d(Some(0), None, kind, detail);
    }
    for &i in &ix.bad_crc {
        let e = &ix.entries[i];
        d(
            Some(4 + 32 * i as u64),
            Some(e.seq),
            "index-crc",
            "index entry CRC mismatch; the server rebuilds the index".into(),
        );
    }
    if let Some(at) = ix.partial_at {
        d(
            Some(at),
            None,
            "index-partial-entry",
            "index ends with a partial entry; the server rebuilds the index".into(),
        );
    }
    if let Some(at) = ix.padding_at {
        d(
            Some(at),
            None,
            "index-padding",
            "zero entry; the server truncates the index here".into(),
        );
    }
    // Full comparison with the data file (the server only checks the last entry).
    let n = ix.entries.len() as u64;
    if n != s.counts.records && ix.version == Some(crate::format::record::FileVersion::Supported) {
        let why = if n < s.counts.records {
            "records past the last entry are invisible to a server that trusts this index"
        } else {
            "entries past the last record: the server's last-entry check fails and it rebuilds the index"
        };
        d(
            None,
            None,
            "index-count",
            format!(
                "index has {n} entries, data file {} records: {why}",
                s.counts.records
            ),
        );
    }
    if let Some((i, (seq, off, size, ts))) = ix.mismatch {
        let e = &ix.entries[i];
        d(
            Some(4 + 32 * i as u64),
            Some(e.seq),
            "index-mismatch",
            format!(
                "entry says seq {} at offset {} size {} ts {}, data file has seq {seq} at {off} size {size} ts {ts}",
                e.seq, e.offset, e.size, e.timestamp
            ),
        );
    }
    out
}

/// Nonces used twice in a channel under one key (or, without keys, twice at
/// all): runs of one key, cipher and prefix whose counters overlap. One
/// entry per overlap, naming its first nonce and the two sequences using it.
pub fn find_reuse(channel: &str, runs: &mut [NonceRun], keys: &[Key]) -> Vec<NonceReuse> {
    runs.sort_unstable_by_key(|r| (r.key, r.cipher, r.prefix, r.first, r.first_seq));
    let mut out = Vec::new();
    // The run reaching furthest so far in the current (key, cipher, prefix) group.
    let mut reach: Option<NonceRun> = None;
    for r in runs.iter() {
        match reach {
            Some(p)
                if (p.key, p.cipher, p.prefix) == (r.key, r.cipher, r.prefix)
                    && r.first <= p.last() =>
            {
                let shared = p.last().min(r.last()) - r.first + 1;
                out.push(NonceReuse {
                    channel: channel.to_string(),
                    key: keys.get(r.key as usize).map(|k| k.id.clone()),
                    cipher: r.cipher,
                    nonce: hex(&r.nonce_at(r.first)),
                    seqs: vec![p.first_seq + (r.first - p.first), r.first_seq],
                    count: shared,
                });
                if r.last() > p.last() {
                    reach = Some(*r);
                }
            }
            _ => reach = Some(*r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::Cipher;
    use crate::ops::scan::push_nonce;

    fn nonce(prefix: u8, counter: u64) -> [u8; 12] {
        let mut n = [prefix; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        n
    }

    #[test]
    fn server_nonces_compress_into_runs() {
        let mut runs = Vec::new();
        for seq in 1..=1000 {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(7, seq + 100), seq);
        }
        assert_eq!(runs.len(), 1);
        assert!(find_reuse("c", &mut runs, &[]).is_empty());
    }

    #[test]
    fn overlaps_are_found_with_their_sequences() {
        let mut runs = Vec::new();
        // seqs 1..=10 with counters 1..=10; then seqs 20..=24 reuse counters 5..=9.
        for seq in 1..=10 {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(1, seq), seq);
        }
        for (i, seq) in (20..=24).enumerate() {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(1, 5 + i as u64), seq);
        }
        // Same counters under another prefix, cipher or key: no reuse.
        push_nonce(&mut runs, 0, Cipher::Aes, &nonce(2, 5), 30);
        push_nonce(&mut runs, 0, Cipher::ChaCha, &nonce(1, 5), 31);
        push_nonce(&mut runs, 1, Cipher::Aes, &nonce(1, 5), 32);
        let r = find_reuse("c", &mut runs, &[]);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].seqs, vec![5, 20]);
        assert_eq!(r[0].count, 5);
        assert_eq!(r[0].nonce, hex(&nonce(1, 5)));
    }

    #[test]
    fn a_nonce_used_three_times_is_reported_twice() {
        let mut runs = Vec::new();
        for seq in [3, 9, 15] {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(4, 42), seq);
        }
        let r = find_reuse("c", &mut runs, &[]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].seqs, vec![3, 9]);
        assert_eq!(r[1].seqs, vec![3, 15]);
    }
}
