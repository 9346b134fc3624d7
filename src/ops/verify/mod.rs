//! `stanctl store verify`: what the server will do with this store and these
//! settings, predicted before it starts.
//!
//! It replays the server's recovery (FORMAT.md and the server's file store):
//! per slice, trust the index if every entry reads and the last one matches
//! the data file, else rebuild it from the data file, where a bad CRC, an
//! undecodable record or a record cut short stops the start. Then it looks up
//! every sequence the way a subscriber's delivery does: index entry by
//! position, record at its offset, CRC, decode, decrypt.

use crate::crypto::aead::{Backend, Cipher};
use crate::crypto::envelope::PayloadKind;
use crate::crypto::keys::Key;
use crate::crypto::nonce::NonceOrigin;
use crate::crypto::nonce::{NonceLogs, Reuse};
use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::damage::DamageKind;
use crate::format::index::IndexEntry;
use crate::format::layout::StoreLayout;
use crate::format::proto::ProtoError;
use crate::format::record::FileVersion;
use crate::format::side;
use crate::ops::scan::{
    self, ChannelCtx, Counts, HashMode, KeyOutcome, RecordInfo, ScanConfig, SliceData, SliceEnd,
    SliceScan,
};
use crate::ops::{Phase, Sink};
use serde::Serialize;
use sha2::{Digest, Sha256};

mod list;
mod lookup;
mod problem;
mod recovery;
mod side_files;
mod slice;
mod source;
mod verdict;

pub use list::Lines;
use problem::*;
pub use problem::{BadRecord, NotFound, NotFoundRemedy, Problem};
use side_files::side_file_findings;
use slice::verify_slice;
use verdict::{finding, SliceVerdict};

pub const SCHEMA: &str = "stanctl.verify/1";

/// The server's settings the prediction is for (the key comes separately).
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub encryption: bool,
    pub cipher: Cipher,
    pub crc: Crc32,
    pub truncate_on_eof: bool,
    /// The server's `file_crc` option (`-file_crc`; default true): off, no
    /// record or index CRC is checked, except the start-up check of each
    /// slice's last record.
    pub file_crc: bool,
    /// The server's `file_read_buffer_size` in bytes (default
    /// [`DEFAULT_READ_BUFFER_SIZE`]); 0 turns the read-ahead of lookups off.
    pub read_buffer_size: u64,
    /// Gather one line per message (`--list`).
    pub list: bool,
    pub backend: Backend,
}

/// The server's default `file_read_buffer_size`: 2 MiB.
pub const DEFAULT_READ_BUFFER_SIZE: u64 = 2 * 1024 * 1024;

/// The options with the server's key, as every step of the prediction sees them.
/// Reads through to the options (`st.encryption`, `st.crc`, ...).
pub(crate) struct Settings<'a> {
    pub options: &'a VerifyOptions,
    pub key: Option<&'a Key>,
}

impl std::ops::Deref for Settings<'_> {
    type Target = VerifyOptions;
    fn deref(&self) -> &VerifyOptions {
        self.options
    }
}

impl Settings<'_> {
    /// The server's key as a key set (empty or one).
    pub fn keys(&self) -> &[Key] {
        self.key.map_or(&[], std::slice::from_ref)
    }
}

/// What the server will do: start and deliver everything, start with
/// messages at risk, or refuse to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    AtRisk,
    WillNotStart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// The server refuses to start.
    WillNotStart,
    /// Messages whose delivery fails.
    Fails,
    /// Messages delivered as ciphertext (encryption off).
    Ciphertext,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub channel: Option<String>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Messages concerned (0 when the finding is about a file).
    pub count: u64,
    pub file: Option<String>,
    pub offset: Option<u64>,
    pub kind: FindingKind,
}

/// What a finding is about, with its facts. `file` and `offset` of the
/// finding say where; `report::words` says it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// Damage in server.dat, clients.dat or a subs.dat.
    SideFile(DamageKind),
    /// Encryption on and no key.
    NoKey,
    /// Sequences between the last of one slice and the first of the next.
    MissingBetweenSlices,
    NonceReuse(Reuse),
    /// A .bak, orphan index or leftover temp file.
    NotRead,
    BadSliceName,
    /// The node's Raft log (`crate::ops::node`).
    Raft(crate::ops::node::RaftFinding),
    /// No record's CRC matches the polynomial.
    NoCrcMatches {
        poly: u32,
    },
    /// server.dat holds no ServerInfo: the server starts as a new store.
    NoServerInfo {
        stored: u64,
    },
    /// server.dat holds no ServerInfo but channel directories exist: the
    /// server refuses to start ("no server state recovered but channels present").
    NoServerButChannels {
        channels: u64,
    },
    /// A data file's version the server refuses.
    DatVersion(FileVersion),
    /// An index file's version the server refuses.
    IdxVersion(FileVersion),
    IndexPadding,
    /// Records after the last entry of a trusted index.
    HiddenRecords {
        hidden: u64,
    },
    IndexRebuilt(RebuildReason),
    /// Recovery from the data file meets a record that does not decode.
    RebuildUndecodable(ProtoError),
    /// Recovery from the data file meets a bad CRC.
    RebuildCrc {
        seq: u64,
        expected: u32,
        actual: u32,
    },
    /// A header with no payload at the end of a slice's data file.
    DanglingHeader,
    /// A record cut short, dropped by truncate-on-EOF (`lost`: its seq if known).
    CutShortLost {
        lost: Option<u64>,
    },
    /// A record cut short: the server refuses to start.
    CutShortRefused {
        lost: Option<u64>,
    },
    DamageBetweenIndexed,
    ZerosAfterIndexed {
        len: u64,
    },
    ZerosAtEnd {
        len: u64,
    },
    PartialAfterIndexed,
    /// A message not delivered as plaintext.
    Delivery(Problem),
}

/// Why the server rebuilds a slice's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildReason {
    NoIndex,
    /// The index holds no entry (its version only, or a zero entry first).
    NoEntries,
    /// Entry `n` (from 1) has a bad CRC.
    BadEntryCrc(usize),
    PartialEntry,
    /// The last entry (of this seq) does not match the data file.
    LastEntryMismatch(u64),
}

/// A line of the server's recovery log (its `ERR:` lines), as typed facts;
/// files are relative to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// `Verification of last message for file "..." failed: ...`
    LastMessage { dat: String, why: LastMessageError },
    /// `Error with index file "...": ... Truncating and recovering from data file`
    IndexError { idx: String, why: IndexLogError },
    /// handleUnexpectedEOF for a record cut short (`truncated`: with
    /// truncate-on-EOF, which logs only the first line).
    UnexpectedEof {
        file: String,
        offset: u64,
        expected: Option<u32>,
        available: u64,
        truncated: bool,
    },
    /// handleUnexpectedEOF for a CRC mismatch: `Corrupted record in file ...`
    Corrupted {
        file: String,
        expected: u32,
        actual: u32,
    },
    /// recoverServerInfo: `Server file "..." corrupted: ...` and the advice.
    ServerFileCorrupted(DamageKind),
}

/// Why the start-up check of a slice's last record fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastMessageError {
    Eof,
    UnexpectedEof,
    ZeroHeader,
    Size { expected: u32, got: u32 },
    Crc { expected: u32, actual: u32 },
    Decode(ProtoError, Option<crate::format::proto::GogoError>),
    Sequence { index: u64, data: u64 },
}

/// Why the server gives up on an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLogError {
    Crc { expected: u32, actual: u32 },
    UnexpectedEof,
    LastMessage { dat: String, why: LastMessageError },
}

/// Where a log line or refusal falls in the server's start-up order.
pub(crate) type RecoveryKey = (u8, String, u8, String);

/// One line of `--list`, in the conformance files' format.
#[derive(Debug, Clone)]
pub enum Line {
    /// A line of the server's recovery log (`ERR:`).
    Log(LogLine),
    Server {
        cluster_id: String,
        clients: u64,
    },
    Channel {
        name: String,
        first: u64,
        last: u64,
        subs: u64,
    },
    Msg {
        channel: String,
        seq: u64,
        outcome: Outcome,
    },
    /// The server stops at the first channel it cannot recover.
    RecoverError(Finding),
}

/// What a subscriber gets for one sequence.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        len: u32,
        sha256: [u8; 32],
        subject: String,
        reply: String,
        timestamp: i64,
    },
    /// The lookup fails with this problem (`len`: the payload's length).
    Failed(Problem, u32),
    NotFound,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivered {
    pub messages: u64,
    pub plaintext: u64,
    pub empty: u64,
    pub ciphertext: u64,
    pub failed: u64,
    /// Envelopes the server's key opens (delivered, counted in `plaintext`).
    pub opened: u64,
    /// Records the server drops at start-up (truncate-on-EOF): not delivered,
    /// not reported, gone.
    pub lost: u64,
}

impl Delivered {
    fn add(&mut self, o: &Delivered) {
        // Saturating: a hostile sequence range can count up to u64::MAX.
        self.messages = self.messages.saturating_add(o.messages);
        self.plaintext = self.plaintext.saturating_add(o.plaintext);
        self.opened = self.opened.saturating_add(o.opened);
        self.empty = self.empty.saturating_add(o.empty);
        self.ciphertext = self.ciphertext.saturating_add(o.ciphertext);
        self.failed = self.failed.saturating_add(o.failed);
        self.lost = self.lost.saturating_add(o.lost);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelVerdict {
    pub name: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub subscriptions: u64,
    #[serde(flatten)]
    pub delivered: Delivered,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsReport {
    pub encryption: bool,
    pub cipher: Cipher,
    pub key: Option<String>,
    pub crc_poly: String,
    pub truncate_on_eof: bool,
    pub file_crc: bool,
    pub file_read_buffer_size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: &'static str,
    pub store: String,
    pub settings: SettingsReport,
    pub verdict: Verdict,
    pub cluster_id: String,
    pub clients: u64,
    pub channels: Vec<ChannelVerdict>,
    pub totals: Delivered,
    pub findings: Vec<Finding>,
    /// With --list: one line per message (read back from a temporary file
    /// as they are printed: `Lines::try_for_each`).
    #[serde(skip)]
    pub lines: Lines,
    /// A clustered node's Raft log, when found (`crate::ops::node::verify_node`).
    pub raft: Option<crate::ops::node::RaftLogVerify>,
    /// Plaintext messages stored on disk, in live and archived slices
    /// (whatever the server delivers).
    pub plaintext_on_disk: crate::ops::archived::PlaintextOnDisk,
}

/// The sequences no slice covers between the first and the last one.
pub(super) fn gaps(ranges: &mut [(u64, u64)]) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out = Vec::new();
    let mut covered: Option<u64> = None;
    for &(f, l) in ranges.iter() {
        if let Some(c) = covered {
            if f > c.saturating_add(1) {
                out.push((c + 1, f - 1));
            }
        }
        covered = Some(covered.map_or(l, |c| c.max(l)));
    }
    out
}

/// What the scanner must gather for these settings.
pub(super) fn scan_cfg<'a>(st: &'a Settings<'_>) -> ScanConfig<'a> {
    ScanConfig {
        crc: st.crc.clone(),
        keys: if st.encryption { st.keys() } else { &[] },
        backend: st.backend,
        hash: if st.list {
            HashMode::Delivered {
                encryption: st.encryption,
            }
        } else {
            HashMode::None
        },
        plaintext: false,
        progress: None,
        stop: None,
    }
}

/// A finding about the store as a whole (no channel, no sequence range).
fn store_finding(
    severity: Severity,
    file: Option<&str>,
    offset: Option<u64>,
    kind: FindingKind,
) -> Finding {
    Finding {
        severity,
        channel: None,
        first_seq: None,
        last_seq: None,
        count: 0,
        file: file.map(str::to_string),
        offset,
        kind,
    }
}

/// One channel put together from its slices.
struct ChannelOut {
    verdict: ChannelVerdict,
    findings: Vec<Finding>,
    /// The CHANNEL line and its MSG lines, with --list.
    lines: Option<list::ChannelLines>,
    /// Records scanned, and those whose CRC does not match.
    crc_tally: (u64, u64),
    /// The server's log lines for this channel's slices.
    log: Vec<(RecoveryKey, LogLine)>,
    /// Plaintext payloads stored in the channel's slices.
    stored_plaintext: u64,
}

/// `reuse`: the nonces the channel uses twice (`NonceLogs::reuse`).
fn channel_out(
    ch: scan::ChannelScan<std::io::Result<SliceVerdict>>,
    lay: &crate::format::layout::ChannelLayout,
    root: &std::path::Path,
    meta: &side::StoreMeta,
    st: &Settings,
    reuse: impl FnOnce() -> std::io::Result<Vec<Reuse>>,
) -> std::io::Result<ChannelOut> {
    let name = ch.name.clone();
    let mut d = Delivered::default();
    let (mut first, mut last) = (0u64, 0u64);
    let mut ch_lines = Vec::new();
    let mut gap_lines = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut crc_tally = (0, 0);
    let mut log = Vec::new();
    let mut stored_plaintext = 0;
    for sv in ch.slices {
        let sv = sv?;
        stored_plaintext += sv.stored_plaintext;
        for l in sv.log {
            log.push(((6, name.clone(), 0, sv.dat.clone()), l));
        }
        d.add(&sv.delivered);
        crc_tally.0 += sv.crc_tally.0;
        crc_tally.1 += sv.crc_tally.1;
        if sv.first_seq != 0 {
            ranges.push((sv.first_seq, sv.last_seq));
            if first == 0 || sv.first_seq < first {
                first = sv.first_seq;
            }
        }
        last = last.max(sv.last_seq);
        for f in sv.findings {
            merge_or_push(&mut findings, f);
        }
        ch_lines.push(sv.lines);
    }
    // Sequences between slices are looked up too, and no slice has them;
    // unless a slice stops the start: its messages are no gap.
    let refused = findings
        .iter()
        .any(|f| f.severity == Severity::WillNotStart);
    let gaps = if refused {
        Vec::new()
    } else {
        gaps(&mut ranges)
    };
    for (from, to) in gaps {
        let n = to - from + 1;
        d.messages = d.messages.saturating_add(n);
        d.failed = d.failed.saturating_add(n);
        findings.push(Finding {
            severity: Severity::Fails,
            channel: Some(name.clone()),
            first_seq: Some(from),
            last_seq: Some(to),
            count: n,
            file: None,
            offset: None,
            kind: FindingKind::MissingBetweenSlices,
        });
        if st.list {
            for seq in (from..=to).take(LIST_MISSING_CAP) {
                gap_lines.push(seq);
            }
        }
    }
    for reuse in reuse()? {
        findings.push(Finding {
            severity: Severity::Warning,
            channel: Some(name.clone()),
            first_seq: Some(reuse.seqs[0]),
            last_seq: Some(reuse.seqs[1]),
            count: reuse.count,
            file: None,
            offset: None,
            kind: FindingKind::NonceReuse(reuse),
        });
    }
    for p in lay.bak.iter().chain(&lay.orphan_idx).chain(&lay.temp) {
        findings.push(finding(
            Severity::Warning,
            &name,
            &crate::format::layout::rel(root, p),
            None,
            FindingKind::NotRead,
        ));
    }
    for p in &lay.bad_names {
        findings.push(finding(
            Severity::WillNotStart,
            &name,
            &crate::format::layout::rel(root, p),
            None,
            FindingKind::BadSliceName,
        ));
    }
    let subs = meta.subs.get(&ch.raw_name).map_or(0, |v| v.len() as u64);
    // Gaps can overlap (a slice whose last sequence is below its first):
    // in order, as the lines' merge by sequence needs them.
    gap_lines.sort_unstable();
    let lines = st.list.then(|| list::ChannelLines {
        channel: Line::Channel {
            name: name.clone(),
            first,
            last,
            subs,
        },
        name: name.clone(),
        slices: ch_lines,
        gaps: gap_lines,
    });
    Ok(ChannelOut {
        verdict: ChannelVerdict {
            name,
            first_seq: first,
            last_seq: last,
            subscriptions: subs,
            delivered: d,
        },
        findings,
        lines,
        crc_tally,
        log,
        stored_plaintext,
    })
}

/// Where in the server's start-up (`FileStore.Recover`) a refusal comes
/// from: the first one in this order is the error it reports. The key
/// first, then the files' versions (server.dat, clients.dat), server.dat's
/// record, no state with channels, clients.dat's records, then each channel
/// in name order: its message slices (in directory order), then its subs.dat.
fn recovery_order(f: &Finding) -> RecoveryKey {
    use crate::format::layout::{CLIENTS_FILE, SERVER_FILE};
    let file = f.file.clone().unwrap_or_default();
    let version = matches!(f.kind, FindingKind::SideFile(DamageKind::Version(_)));
    let phase = match &f.kind {
        FindingKind::NoKey => 0,
        FindingKind::SideFile(_) if file == SERVER_FILE && version => 1,
        FindingKind::SideFile(_) if file == CLIENTS_FILE && version => 2,
        FindingKind::SideFile(_) if file == SERVER_FILE => 3,
        FindingKind::NoServerButChannels { .. } => 4,
        FindingKind::SideFile(_) if file == CLIENTS_FILE => 5,
        _ => 6,
    };
    let subs = u8::from(matches!(f.kind, FindingKind::SideFile(_)));
    (phase, f.channel.clone().unwrap_or_default(), subs, file)
}

/// The verdict, from the findings.
pub(crate) fn verdict_of(findings: &[Finding]) -> Verdict {
    if findings
        .iter()
        .any(|f| f.severity == Severity::WillNotStart)
    {
        Verdict::WillNotStart
    } else if findings
        .iter()
        .any(|f| matches!(f.severity, Severity::Fails | Severity::Ciphertext))
    {
        Verdict::AtRisk
    } else {
        Verdict::Ok
    }
}

/// Predicts what the server does with this store under `opts` and `key`
/// (the one key the server runs with, if any).
pub fn run(
    layout: &StoreLayout,
    key: Option<&Key>,
    opts: &VerifyOptions,
    sink: &dyn Sink,
) -> Result<VerifyReport> {
    let st = &Settings { options: opts, key };
    let meta = side::read_with(layout, &st.crc, st.file_crc)?;
    let mut cfg = scan_cfg(st);
    let advance = |n| sink.advance(n);
    cfg.progress = Some(&advance);
    // A sink that asks to stop (the rewrite guard's) gets a report that
    // lacks the slices not begun: the caller discards it.
    let stop = || sink.cancelled();
    cfg.stop = Some(&stop);
    sink.start(Phase::Verify, crate::ops::store_bytes(layout));
    let ctxs = scan::channels(layout, cfg.keys, cfg.backend, false);
    // Every channel's nonces, for the reuse check: spilled to a temporary
    // file beyond a budget instead of growing with the store.
    let nonce_logs = NonceLogs::new(ctxs.len());
    // --list's MSG lines, spilled to a temporary file as they are made.
    let spill = std::sync::Arc::new(list::Spill::default());
    let spill_err = crate::ops::spill::temp_dir_failed;
    let scanned = scan::scan_channels_stepwise(layout, &ctxs, &cfg, |ctx, scanner, data| {
        let ci = ctxs
            .iter()
            .position(|c| std::ptr::eq(c, ctx))
            .expect("one of ctxs");
        let nonces = |runs: &[_]| nonce_logs.add(ci, runs);
        verify_slice(ctx, scanner, data, st, &nonces, &spill)
    })?;
    sink.finish();
    // Archived slices' envelopes count in the reuse check too.
    let add = |ci, runs: &[_]| nonce_logs.add(ci, runs).map_err(spill_err);
    crate::ops::archived::nonces(layout, cfg.keys, cfg.backend, &cfg.crc, &add)?;

    let (mut findings, mut log) = side_file_findings(&meta, st);
    let mut channels = Vec::new();
    let mut totals = Delivered::default();
    let mut crc_tally = (0u64, 0u64);
    let mut lines = Vec::new();
    let mut stored_plaintext = Vec::new();
    for (ci, (ch, lay)) in scanned.into_iter().zip(&layout.channels).enumerate() {
        let reuse = || nonce_logs.reuse(ci);
        let out = channel_out(ch, lay, &layout.root, &meta, st, reuse).map_err(spill_err)?;
        stored_plaintext.push((out.verdict.name.clone(), out.stored_plaintext));
        totals.add(&out.verdict.delivered);
        crc_tally.0 += out.crc_tally.0;
        crc_tally.1 += out.crc_tally.1;
        findings.extend(out.findings);
        log.extend(out.log);
        lines.extend(out.lines);
        channels.push(out.verdict);
    }
    if crc_tally.0 > 0 && crc_tally.0 == crc_tally.1 {
        findings.push(store_finding(
            Severity::Warning,
            None,
            None,
            FindingKind::NoCrcMatches {
                poly: st.crc.poly(),
            },
        ));
    }
    if meta.no_server_info && !layout.channels.is_empty() {
        // recoverServerInfo meets io.EOF, and channel directories exist:
        // Recover returns ErrNoSrvButChannels.
        findings.push(store_finding(
            Severity::WillNotStart,
            Some(crate::format::layout::SERVER_FILE),
            None,
            FindingKind::NoServerButChannels {
                channels: layout.channels.len() as u64,
            },
        ));
    } else if meta.no_server_info {
        // recoverServerInfo meets io.EOF: no state recovered at all.
        let stored = totals.messages;
        let mut f = store_finding(
            Severity::Fails,
            Some(crate::format::layout::SERVER_FILE),
            None,
            FindingKind::NoServerInfo { stored },
        );
        f.count = stored;
        findings.push(f);
        totals = Delivered {
            messages: stored,
            failed: stored,
            ..Delivered::default()
        };
        lines.clear();
    }
    findings.sort_by_key(|f| f.severity);
    let verdict = verdict_of(&findings);
    let mut list_lines = Lines::default();
    if st.list {
        // The recovery log, in the server's order, up to where it stops.
        log.sort_by(|a, b| a.0.cmp(&b.0));
        let stop = findings
            .iter()
            .filter(|f| f.severity == Severity::WillNotStart)
            .min_by_key(|f| recovery_order(f));
        let stop_key = stop.map(recovery_order);
        let log_lines: Vec<Line> = log
            .into_iter()
            .filter(|(k, _)| {
                stop_key
                    .as_ref()
                    .is_none_or(|s| k.0 < s.0 || (k.0 == s.0 && (&k.1, k.2) <= (&s.1, s.2)))
            })
            .map(|(_, l)| Line::Log(l))
            .collect();
        list_lines = if verdict == Verdict::WillNotStart {
            // The server stops at the first channel it cannot recover; it
            // reports no server line and delivers nothing.
            let mut head = log_lines;
            head.extend(stop.map(|f| Line::RecoverError(f.clone())));
            Lines {
                head,
                channels: Vec::new(),
                spill,
            }
        } else {
            let clients = if meta.no_server_info { 0 } else { meta.clients };
            let mut head = log_lines;
            head.push(Line::Server {
                cluster_id: meta.server.cluster_id.clone(),
                clients,
            });
            Lines {
                head,
                channels: lines,
                spill,
            }
        };
    }
    Ok(VerifyReport {
        schema: SCHEMA,
        store: layout.root.display().to_string(),
        settings: SettingsReport {
            encryption: st.encryption,
            cipher: st.cipher,
            key: st.key.as_ref().map(|k| k.origin.to_string()),
            crc_poly: format!("{:#010x}", st.crc.poly()),
            truncate_on_eof: st.truncate_on_eof,
            file_crc: st.file_crc,
            file_read_buffer_size: st.read_buffer_size,
        },
        verdict,
        cluster_id: meta.server.cluster_id.clone(),
        clients: meta.clients,
        channels,
        totals,
        findings,
        lines: list_lines,
        raft: None,
        plaintext_on_disk: crate::ops::archived::PlaintextOnDisk::of_store(
            layout,
            stored_plaintext,
        ),
    })
}
