//! `stanctl store verify`: what the server will do with this store and these
//! settings, predicted before it starts.
//!
//! It replays the server's recovery (FORMAT.md and the server's file store):
//! per slice, trust the index if every entry reads and the last one matches
//! the data file, else rebuild it from the data file, where a bad CRC, an
//! undecodable record or a record cut short stops the start. Then it looks up
//! every sequence the way a subscriber's delivery does: index entry by
//! position, record at its offset, CRC, decode, decrypt.

use crate::aead::{Backend, Cipher};
use crate::app::{self, EXIT_AT_RISK, EXIT_OK, EXIT_WONT_START};
use crate::cli::VerifyArgs;
use crate::crc::Crc32;
use crate::envelope::{self, NonceOrigin, PayloadKind};
use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::inspect::{find_reuse, hex};
use crate::keys::Key;
use crate::meta;
use crate::record::{Event, FileVersion, HEADER_LEN};
use crate::scan::{
    self, ChannelCtx, Counts, HashMode, KeyOutcome, NonceUse, RecordInfo, ScanConfig, SliceData,
    SliceEnd, SliceScan,
};
use crate::store::StoreLayout;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

pub const SCHEMA: &str = "stanctl.verify/1";

/// The server's settings the prediction is for.
pub struct Settings {
    pub encryption: bool,
    pub cipher: Cipher,
    pub key: Option<Key>,
    pub crc: Crc32,
    pub truncate_on_eof: bool,
    pub list: bool,
    pub backend: Backend,
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

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::WillNotStart => "WILL NOT START",
            Severity::Fails => "FAILS",
            Severity::Ciphertext => "CIPHERTEXT",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub channel: Option<String>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Messages concerned (0 when the finding is about a file).
    pub count: u64,
    pub file: Option<String>,
    pub offset: Option<u64>,
    pub what: String,
    pub remedy: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivered {
    pub messages: u64,
    pub plaintext: u64,
    pub empty: u64,
    pub ciphertext: u64,
    pub failed: u64,
    /// Records the server drops at start-up (truncate-on-EOF): not delivered,
    /// not reported, gone.
    pub lost: u64,
}

impl Delivered {
    fn add(&mut self, o: &Delivered) {
        self.messages += o.messages;
        self.plaintext += o.plaintext;
        self.empty += o.empty;
        self.ciphertext += o.ciphertext;
        self.failed += o.failed;
        self.lost += o.lost;
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
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: &'static str,
    pub store: String,
    pub settings: SettingsReport,
    /// "ok", "at-risk" or "will-not-start".
    pub verdict: &'static str,
    pub exit_code: i32,
    pub cluster_id: String,
    pub clients: u64,
    pub channels: Vec<ChannelVerdict>,
    pub totals: Delivered,
    pub findings: Vec<Finding>,
    /// With --list: one line per message, in the conformance files' format.
    #[serde(skip)]
    pub lines: Vec<String>,
}

/// Why one message is not delivered as plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    WrongKey(Cipher),
    Lookalike(Cipher),
    Short,
    Crc(u32, u32),
    BadRecord(String),
    /// Looked up, not there: why, and what would help.
    NotFound(String, &'static str),
    Ciphertext,
    /// Encryption off: plaintext starting with 1 or 2, fine now, fails once it is on.
    LookalikeLater,
}

impl Problem {
    fn severity(&self) -> Severity {
        match self {
            Problem::Ciphertext => Severity::Ciphertext,
            Problem::LookalikeLater => Severity::Warning,
            _ => Severity::Fails,
        }
    }

    fn describe(&self) -> (String, String) {
        match self {
            Problem::WrongKey(c) => (
                format!("{} envelopes the server's key does not open: \"{}\"", c.name(), c.open_error()),
                "start the server with the key that wrote them (NATS_STREAMING_ENCRYPTION_KEY wins over the configured key); `stanctl store inspect DIR --key-file K...` tells which key opens them, `stanctl store rekey` moves them to this key".into(),
            ),
            Problem::Lookalike(c) => (
                format!("plaintext starting with byte {} that the server tries to decrypt: \"{}\"", c.code(), c.open_error()),
                "`stanctl store encrypt DIR --cipher C --assume-plaintext` encrypts these payloads so the server can read them with encryption on; or run the server without encryption".into(),
            ),
            Problem::Short => (
                "payloads of at most 13 bytes starting with 1 or 2: \"trying to decrypt data that is not\"".into(),
                "`stanctl store encrypt DIR --cipher C --assume-plaintext` encrypts them; or run the server without encryption".into(),
            ),
            Problem::Crc(e, g) => (
                format!("corrupted data, expected crc to be {e:#010x}, got {g:#010x}"),
                "the record is damaged on disk: restore this slice from a backup; otherwise the message is lost".into(),
            ),
            Problem::BadRecord(e) => (
                format!("the record does not decode as a message: {e}"),
                "the record is damaged on disk: restore this slice from a backup".into(),
            ),
            Problem::NotFound(why, remedy) => (format!("message not found: {why}"), remedy.to_string()),
            Problem::Ciphertext => (
                "envelopes delivered as they are: subscribers silently receive ciphertext".into(),
                "start the server with -encrypt and the key, or `stanctl store decrypt DIR --key-file K`".into(),
            ),
            Problem::LookalikeLater => (
                "plaintext starting with byte 1 or 2: delivered now, but FAILS once encryption is on".into(),
                "before turning encryption on, run `stanctl store encrypt DIR --cipher C --assume-plaintext`".into(),
            ),
        }
    }

    /// Problems of one kind group into one finding.
    fn same_kind(&self, o: &Problem) -> bool {
        match (self, o) {
            (Problem::Crc(..), Problem::Crc(..)) => false,
            (Problem::BadRecord(_), Problem::BadRecord(_)) => false,
            (Problem::NotFound(_, a), Problem::NotFound(_, b)) => a == b,
            _ => self == o,
        }
    }

    fn error_text(&self, len: u32) -> String {
        match self {
            Problem::WrongKey(c) | Problem::Lookalike(c) => c.open_error().to_string(),
            Problem::Short => envelope::short_error(len as usize),
            Problem::Crc(e, g) => {
                format!("corrupted data, expected crc to be {e:#010x}, got {g:#010x}")
            }
            Problem::BadRecord(e) => e.clone(),
            Problem::NotFound(..) => "message not found".into(),
            Problem::Ciphertext | Problem::LookalikeLater => String::new(),
        }
    }
}

/// Groups consecutive messages with the same problem into one finding.
struct Runs<'a> {
    channel: &'a str,
    file: &'a str,
    open: Option<(Problem, u64, u64, u64, u64)>,
    out: Vec<Finding>,
}

impl<'a> Runs<'a> {
    fn new(channel: &'a str, file: &'a str) -> Self {
        Runs {
            channel,
            file,
            open: None,
            out: Vec::new(),
        }
    }

    fn push(&mut self, p: Problem, seq: u64, offset: u64) {
        if let Some((q, _, last, n, _)) = &mut self.open {
            // Messages delivered fine in between do not split a run.
            if q.same_kind(&p) {
                *last = seq;
                *n += 1;
                return;
            }
        }
        self.flush();
        self.open = Some((p, seq, seq, 1, offset));
    }

    /// `n` messages `first..=last` with the same problem, at once.
    fn push_range(&mut self, p: Problem, first: u64, last: u64, n: u64) {
        self.flush();
        self.open = Some((p, first, last, n, 0));
        self.flush();
    }

    fn flush(&mut self) {
        if let Some((p, first, last, n, offset)) = self.open.take() {
            let (what, remedy) = p.describe();
            self.out.push(Finding {
                severity: p.severity(),
                channel: Some(self.channel.to_string()),
                first_seq: Some(first),
                last_seq: Some(last),
                count: n,
                file: Some(self.file.to_string()),
                offset: Some(offset),
                what,
                remedy,
            });
        }
    }
}

/// The server's view of one slice after recovery.
struct SliceVerdict {
    first_seq: u64,
    last_seq: u64,
    delivered: Delivered,
    findings: Vec<Finding>,
    /// (seq, MSG line) with --list.
    lines: Vec<(u64, String)>,
    /// Records scanned and records whose CRC does not match.
    crc_tally: (u64, u64),
    nonces: Vec<NonceUse>,
}

fn finding(
    sev: Severity,
    channel: &str,
    file: &str,
    offset: Option<u64>,
    what: String,
    remedy: String,
) -> Finding {
    Finding {
        severity: sev,
        channel: Some(channel.to_string()),
        first_seq: None,
        last_seq: None,
        count: 0,
        file: Some(file.to_string()),
        offset,
        what,
        remedy,
    }
}

/// How the server will come by the slice's index.
enum IndexUse<'a> {
    Trusted(&'a [IndexEntry]),
    Rebuilt(String),
}

fn index_use<'a>(s: &'a SliceScan, data: &SliceData<'_>, crc: &Crc32) -> IndexUse<'a> {
    let ix = &s.index;
    if !ix.present {
        return IndexUse::Rebuilt("no index file".into());
    }
    if let Some(&i) = ix.bad_crc.first() {
        return IndexUse::Rebuilt(format!("index entry {} has a bad CRC", i + 1));
    }
    if ix.partial_at.is_some() {
        return IndexUse::Rebuilt("the index ends with a partial entry".into());
    }
    let Some(last) = ix.entries.last() else {
        return IndexUse::Trusted(&ix.entries);
    };
    // The server's last-entry check: record readable at the offset (CRC
    // always checked), same size, decodes, same sequence.
    let ok = match scan::record_at(data.dat, last.offset) {
        Some(Event::Record(r)) => {
            crc.checksum(r.payload) == r.crc
                && r.payload.len() as u64 == last.size as u64
                && crate::proto::MsgView::parse(r.payload).is_ok_and(|m| m.sequence == last.seq)
        }
        _ => false,
    };
    if ok {
        IndexUse::Trusted(&ix.entries)
    } else {
        IndexUse::Rebuilt(format!(
            "its last entry (seq {}) does not match the data file",
            last.seq
        ))
    }
}

/// The seq of a record cut short, when its first field made it to disk.
fn cut_seq(dat: &[u8], offset: u64) -> Option<u64> {
    let start = offset as usize + HEADER_LEN;
    let part = dat.get(start..)?;
    match crate::proto::fields(part).next()? {
        Ok(f) if f.number == 1 => match f.value {
            crate::proto::Value::Varint(v) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

fn verify_slice(
    ctx: &ChannelCtx<'_>,
    mut s: SliceScan,
    data: SliceData<'_>,
    st: &Settings,
    scratch: &mut Vec<u8>,
) -> SliceVerdict {
    let ch = ctx.name.as_str();
    let mut v = SliceVerdict {
        first_seq: 0,
        last_seq: 0,
        delivered: Delivered::default(),
        findings: Vec::new(),
        lines: Vec::new(),
        crc_tally: (s.counts.records, s.counts.crc_errors),
        nonces: std::mem::take(&mut s.nonces),
    };
    let idx_file = s
        .idx
        .clone()
        .unwrap_or_else(|| s.dat.replace(".dat", ".idx"));
    let refuse =
        |v: &mut SliceVerdict, file: &str, offset: Option<u64>, what: String, remedy: &str| {
            v.findings.push(finding(
                Severity::WillNotStart,
                ch,
                file,
                offset,
                what,
                remedy.to_string(),
            ));
        };
    // Every existing file passes the server's version check first.
    if let Some(why) = crate::record::version_error(s.version) {
        let remedy = if s.version == FileVersion::Empty {
            "remove the empty file (and its .idx): it holds no message"
        } else {
            "restore this slice from a backup, or move it out of the store (its messages are then lost)"
        };
        refuse(&mut v, &s.dat, Some(0), why, remedy);
        return v;
    }
    if let Some(why) = s.index.version.and_then(crate::record::version_error) {
        refuse(
            &mut v,
            &idx_file,
            Some(0),
            why,
            "remove the .idx file: the server rebuilds it from the .dat",
        );
        return v;
    }
    if let Some(at) = s.index.padding_at {
        v.findings.push(finding(
            Severity::Warning,
            ch,
            &idx_file,
            Some(at),
            "zero entry in the index: the server truncates the index here".into(),
            "none needed".into(),
        ));
    }

    // Which records the server sees, as (seq, record position in s.records).
    let used = index_use(&s, &data, &st.crc);
    let entries: Vec<(u64, Option<&IndexEntry>)>;
    match &used {
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
                    file: Some(idx_file.clone()),
                    offset: None,
                    what: format!("{hidden} record(s) after the last index entry: the server trusts the index and never sees them"),
                    remedy: "remove the .idx file so the server rebuilds it from the .dat".into(),
                });
            }
        }
        IndexUse::Rebuilt(why) => {
            if s.index.present || s.counts.records > 0 {
                v.findings.push(finding(
                    Severity::Warning,
                    ch,
                    &idx_file,
                    None,
                    format!("the server rebuilds this index from the data file at start-up: {why}"),
                    "none needed (the start takes longer); the rebuild is what the server does anyway".into(),
                ));
            }
            // Recovery from the data file reads every record with its CRC.
            // The server checks each record's CRC, then decodes it.
            for r in &s.records {
                if r.crc_ok {
                    if let Some(e) = &r.parse_error {
                        refuse(&mut v, &s.dat, Some(r.offset), format!("while rebuilding the index: the record does not decode: {e}"), "restore this slice from a backup; or truncate the .dat before this offset (the messages from here on are lost)");
                        return v;
                    }
                    continue;
                }
                {
                    refuse(
                        &mut v,
                        &s.dat,
                        Some(r.offset),
                        format!("while rebuilding the index: seq {}: corrupted data, expected crc to be {:#010x}, got {:#010x}", r.seq, header_crc(data.dat, r.offset), r.crc_actual),
                        "restore this slice from a backup; a valid .idx would let the server start (the message then fails alone)",
                    );
                    return v;
                }
            }
            entries = s.records.iter().map(|r| (r.seq, None)).collect();
            match s.end {
                SliceEnd::Truncated {
                    offset,
                    expected,
                    available,
                } if crate::record::is_dangling_header(expected, available) => {
                    // io.EOF for the server: a clean end, but a trap for later.
                    v.findings.push(finding(
                        Severity::Warning,
                        ch,
                        &s.dat,
                        Some(offset),
                        scan::DANGLING.into(),
                        format!("truncate {} to {offset} bytes before starting", s.dat),
                    ));
                }
                SliceEnd::Truncated { offset, .. } => {
                    let lost = cut_seq(data.dat, offset)
                        .map_or("the partial record".to_string(), |q| format!("seq {q}"));
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
                            what: format!("record cut short (unexpected EOF): the server truncates the file at offset {offset}, which drops {lost} (lost, not reported by the server)"),
                            remedy: "accept the loss, or restore the slice from a backup before starting".into(),
                        });
                    } else {
                        refuse(
                            &mut v,
                            &s.dat,
                            Some(offset),
                            format!("unexpected EOF: record cut short at offset {offset}"),
                            &format!("restart with the truncate-on-EOF option (-file_truncate_bad_eof): it truncates {} at offset {offset}, which drops {lost}; or restore the slice from a backup", s.dat),
                        );
                        return v;
                    }
                }
                _ => {}
            }
        }
    }
    let trusted = matches!(used, IndexUse::Trusted(_));
    // Where the last indexed record ends: damage before it sits between
    // records the server still delivers, and must not be cut off.
    let indexed_end = match &used {
        IndexUse::Trusted(e) => e
            .last()
            .map_or(0, |l| l.offset + HEADER_LEN as u64 + l.size as u64),
        IndexUse::Rebuilt(_) => 0,
    };
    match s.end {
        SliceEnd::ZeroPadding { offset, .. } | SliceEnd::Truncated { offset, .. } if trusted && offset < indexed_end => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            "damage between indexed records (a zero or broken record header): the server reads records through its index and steps over it, but an index rebuild would stop here".into(),
            format!("do NOT truncate {}: the records after offset {offset} are indexed and delivered; keep the .idx file", s.dat),
        )),
        SliceEnd::ZeroPadding { offset, len } if trusted => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            format!("{len} zero bytes after the last indexed record: the server trusts the index, never reads them, and appends new messages after them; a later index rebuild stops at the zeros and loses those new messages"),
            format!("truncate {} to {offset} bytes before starting", s.dat),
        )),
        SliceEnd::ZeroPadding { offset, len } => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            format!("{len} zero bytes at the end: the server truncates them while rebuilding the index"),
            "none needed: no message is lost".into(),
        )),
        SliceEnd::Truncated { offset, .. } if trusted => v.findings.push(finding(
            Severity::Warning,
            ch,
            &s.dat,
            Some(offset),
            "a partial record after the last indexed record: the server trusts the index, never reads it, and appends new messages after it; a later index rebuild stops there".into(),
            format!("truncate {} to {offset} bytes before starting", s.dat),
        )),
        _ => {}
    }
    let Some(&(first, _)) = entries.first() else {
        return v;
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
        REMEDY_REBUILD_INDEX
    } else {
        REMEDY_GAPS_IN_DAT
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
            lookup(&s, &data, entry, pos, ctx, st, scratch)
        } else {
            Lookup::Missing(format!("no index entry for seq {seq} at its position"))
        };
        v.delivered.messages += 1;
        match outcome {
            Lookup::Found(r) => deliver(&mut v, &mut runs, ch, &data, &r, st),
            Lookup::Missing(why) => {
                v.delivered.failed += 1;
                runs.push(Problem::NotFound(why, not_found_remedy), seq, 0);
                if st.list {
                    v.lines
                        .push((seq, format!("MSG\t{ch}\t{seq}\terr\tmessage not found")));
                }
            }
            Lookup::Bad(p, offset) => {
                v.delivered.failed += 1;
                if st.list {
                    v.lines
                        .push((seq, format!("MSG\t{ch}\t{seq}\terr\t{}", p.error_text(0))));
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
                format!("the index has no entry past seq {}", from.saturating_sub(1)),
                not_found_remedy,
            ),
            from,
            last,
            n,
        );
        if st.list {
            for seq in (from..=last).take(LIST_MISSING_CAP) {
                v.lines
                    .push((seq, format!("MSG\t{ch}\t{seq}\terr\tmessage not found")));
            }
        }
    }
    runs.flush();
    v.findings.extend(runs.out);
    v
}

const REMEDY_REBUILD_INDEX: &str =
    "remove the slice's .idx file so the server rebuilds it from the .dat";
const REMEDY_GAPS_IN_DAT: &str = "the data file itself has gaps or repeated sequences, and the server finds messages by position: no index rebuild helps; restore the slice from a backup";
const REMEDY_MISSING_SLICE: &str = "no slice holds these sequences (a slice file is missing or was removed): restore it from a backup";

/// `--list` prints at most this many "not found" lines for one gap.
const LIST_MISSING_CAP: usize = 10_000;

/// The sequences no slice covers between the first and the last one.
fn gaps(ranges: &mut [(u64, u64)]) -> Vec<(u64, u64)> {
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

/// One finding for a problem that continues from one slice into the next.
fn merge_or_push(list: &mut Vec<Finding>, f: Finding) {
    if let Some(prev) = list.last_mut() {
        if prev.severity == f.severity
            && prev.what == f.what
            && prev.last_seq.is_some()
            && f.first_seq.is_some()
        {
            prev.last_seq = f.last_seq;
            prev.count += f.count;
            if prev.file != f.file {
                prev.file = prev.file.take().map(|p| {
                    if p.ends_with(" ...") {
                        p
                    } else {
                        format!("{p} ...")
                    }
                });
            }
            return;
        }
    }
    list.push(f);
}

fn header_crc(dat: &[u8], offset: u64) -> u32 {
    let o = offset as usize + 4;
    dat.get(o..o + 4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()))
}

enum Lookup {
    Found(RecordInfo),
    Missing(String),
    Bad(Problem, u64),
}

/// Reads the record an index entry points to. Records the scanner already
/// examined are found by offset; anything else is read afresh.
fn lookup(
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
        Err(_) => match scan::record_at(data.dat, e.offset) {
            Some(Event::Record(r)) => {
                let cfg = scan_cfg(st);
                let mut c = Counts::with_keys(ctx.aeads.len());
                scan::examine(&r, ctx, &cfg, scratch, &mut c, &mut Vec::new())
            }
            _ => {
                return Lookup::Bad(
                    Problem::BadRecord(format!(
                        "unexpected EOF reading the record at offset {}",
                        e.offset
                    )),
                    e.offset,
                )
            }
        },
    };
    if !info.crc_ok {
        return Lookup::Bad(
            Problem::Crc(header_crc(data.dat, info.offset), info.crc_actual),
            info.offset,
        );
    }
    // The server decodes as many bytes as the INDEX says, never comparing
    // them with the record's own size (the CRC covered the whole record).
    if e.size < info.size {
        let start = info.offset as usize + HEADER_LEN;
        let prefix = crate::record::Record {
            offset: info.offset,
            rtype: 0,
            crc: 0,
            payload: &data.dat[start..start + e.size as usize],
        };
        let cfg = scan_cfg(st);
        let mut c = Counts::with_keys(ctx.aeads.len());
        let mut p = scan::examine(&prefix, ctx, &cfg, scratch, &mut c, &mut Vec::new());
        p.crc_ok = true;
        return match &p.parse_error {
            Some(err) => Lookup::Bad(
                Problem::BadRecord(format!(
                    "the index's size ({} of {} bytes) cuts the record: {err}",
                    e.size, info.size
                )),
                info.offset,
            ),
            None => Lookup::Found(p),
        };
    }
    if let Some(err) = &info.parse_error {
        return Lookup::Bad(Problem::BadRecord(err.to_string()), info.offset);
    }
    if e.size > info.size {
        // The server decodes stale bytes past the record: unpredictable.
        return Lookup::Bad(
            Problem::BadRecord(format!(
                "index says {} bytes, the record has {}: the server decodes bytes past the record",
                e.size, info.size
            )),
            info.offset,
        );
    }
    Lookup::Found(info)
}

fn deliver(
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
            PayloadKind::Envelope(_) => match origin_of(data.dat, r) {
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
        let mut line = String::with_capacity(160);
        if ok {
            let sha = r.sha256.unwrap_or_else(|| Sha256::digest([]).into());
            let text = |rg: &std::ops::Range<usize>| {
                String::from_utf8_lossy(&data.dat[rg.clone()]).into_owned()
            };
            let _ = write!(
                line,
                "MSG\t{ch}\t{seq}\tok\t{len}\t{}\t{}\t{}\t{}",
                hex(&sha),
                text(&r.subject),
                text(&r.reply),
                r.timestamp
            );
        } else {
            let p = problem.as_ref().expect("failed deliveries have a problem");
            let _ = write!(line, "MSG\t{ch}\t{seq}\terr\t{}", p.error_text(r.data_len));
        }
        v.lines.push((seq, line));
    }
    if let Some(p) = problem {
        runs.push(p, seq, r.offset);
    }
}

/// The nonce origin of an envelope, read back from the record.
fn origin_of(dat: &[u8], r: &RecordInfo) -> NonceOrigin {
    let payload =
        &dat[r.offset as usize + HEADER_LEN..r.offset as usize + HEADER_LEN + r.size as usize];
    match crate::proto::MsgView::parse(payload) {
        Ok(m) if m.data.len() > 13 => envelope::nonce_origin(envelope::nonce(m.data), r.seq),
        _ => NonceOrigin::Unknown,
    }
}

fn scan_cfg(st: &Settings) -> ScanConfig<'_> {
    ScanConfig {
        crc: st.crc.clone(),
        keys: if st.encryption {
            st.key.as_slice()
        } else {
            &[]
        },
        backend: st.backend,
        detail: true,
        hash: if st.list {
            HashMode::Delivered {
                encryption: st.encryption,
            }
        } else {
            HashMode::None
        },
        progress: None,
    }
}

pub fn run(
    layout: &StoreLayout,
    st: &Settings,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<VerifyReport> {
    let meta = meta::read(layout, &st.crc)?;
    let mut cfg = scan_cfg(st);
    cfg.progress = progress;
    let scanned = scan::scan_store(layout, &cfg, |ctx, s, data| {
        let mut scratch = Vec::new();
        verify_slice(ctx, s, data, st, &mut scratch)
    })?;

    let mut findings = Vec::new();
    for d in &meta.damage {
        // A header with no payload is io.EOF, a clean end, for the server.
        let start = !matches!(d.kind, "zero-padding" | "dangling-header");
        let remedy = match (d.kind, d.file.as_str()) {
            ("zero-padding", _) => "none needed".to_string(),
            ("dangling-header", f) => format!("truncate {f} at this offset before starting"),
            ("empty-file", crate::store::SERVER_FILE) => "restore server.dat from a backup (without it the server starts as a new store and recovers nothing)".into(),
            ("empty-file", f) => format!("remove the empty {f}: the server creates it anew (it held nothing)"),
            _ => "restore this file from a backup".into(),
        };
        findings.push(Finding {
            severity: if start {
                Severity::WillNotStart
            } else {
                Severity::Warning
            },
            channel: d.channel.clone(),
            first_seq: None,
            last_seq: None,
            count: 0,
            file: Some(d.file.clone()),
            offset: d.offset,
            what: d.detail.clone(),
            remedy,
        });
    }
    if st.encryption && st.key.is_none() {
        findings.push(Finding {
            severity: Severity::WillNotStart,
            channel: None,
            first_seq: None,
            last_seq: None,
            count: 0,
            file: None,
            offset: None,
            what: "encryption is on but no key is configured".into(),
            remedy: "give the server its key (NATS_STREAMING_ENCRYPTION_KEY or the configured key), and this command --key-file".into(),
        });
    }
    let mut channels = Vec::new();
    let mut totals = Delivered::default();
    let mut crc_tally = (0u64, 0u64);
    let mut lines = Vec::new();
    for (ch, lay) in scanned.into_iter().zip(&layout.channels) {
        let name = ch.name.clone();
        let mut d = Delivered::default();
        let (mut first, mut last) = (0u64, 0u64);
        let mut nonces = Vec::new();
        let mut ch_lines = Vec::new();
        let mut ch_findings: Vec<Finding> = Vec::new();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for sv in ch.slices {
            d.add(&sv.delivered);
            crc_tally.0 += sv.crc_tally.0;
            crc_tally.1 += sv.crc_tally.1;
            if sv.first_seq != 0 {
                ranges.push((sv.first_seq, sv.last_seq));
            }
            if sv.first_seq != 0 && (first == 0 || sv.first_seq < first) {
                first = sv.first_seq;
            }
            last = last.max(sv.last_seq);
            for f in sv.findings {
                merge_or_push(&mut ch_findings, f);
            }
            nonces.extend(sv.nonces);
            ch_lines.extend(sv.lines);
        }
        // Sequences between slices are looked up too, and no slice has them;
        // unless a slice stops the start: its messages are no gap.
        let refused = ch_findings
            .iter()
            .any(|f| f.severity == Severity::WillNotStart);
        let gaps = if refused {
            Vec::new()
        } else {
            gaps(&mut ranges)
        };
        for (from, to) in gaps {
            let n = to - from + 1;
            d.messages += n;
            d.failed += n;
            ch_findings.push(Finding {
                severity: Severity::Fails,
                channel: Some(name.clone()),
                first_seq: Some(from),
                last_seq: Some(to),
                count: n,
                file: None,
                offset: None,
                what: "message not found: between the last sequence of one slice and the first of the next".into(),
                remedy: REMEDY_MISSING_SLICE.into(),
            });
            if st.list {
                for seq in (from..=to).take(LIST_MISSING_CAP) {
                    ch_lines.push((seq, format!("MSG\t{name}\t{seq}\terr\tmessage not found")));
                }
            }
        }
        findings.extend(ch_findings);
        for reuse in find_reuse(&name, &mut nonces, st.key.as_slice()) {
            findings.push(Finding {
                severity: Severity::Warning,
                channel: Some(name.clone()),
                first_seq: reuse.seqs.first().copied(),
                last_seq: reuse.seqs.last().copied(),
                count: reuse.seqs.len() as u64,
                file: None,
                offset: None,
                what: format!("nonce {} used {} times under one key ({}): breaks the secrecy and integrity of these messages", reuse.nonce, reuse.seqs.len(), reuse.cipher.name()),
                remedy: "`stanctl store rekey` this channel (it writes fresh nonces)".into(),
            });
        }
        for p in lay.bak.iter().chain(&lay.orphan_idx).chain(&lay.temp) {
            findings.push(finding(
                Severity::Warning,
                &name,
                &crate::store::rel(&layout.root, p),
                None,
                "not read by the server".into(),
                "none needed; remove it when you no longer need it".into(),
            ));
        }
        for p in &lay.bad_names {
            findings.push(finding(
                Severity::WillNotStart,
                &name,
                &crate::store::rel(&layout.root, p),
                None,
                "message log has an invalid name".into(),
                "rename or move the file out of the channel directory".into(),
            ));
        }
        let subs = meta.subs.get(&ch.raw_name).map_or(0, |v| v.len() as u64);
        if st.list {
            ch_lines.sort_by_key(|l| l.0);
            lines.push(format!(
                "CHANNEL\t{name}\tfirst={first}\tlast={last}\tsubs={subs}"
            ));
            lines.extend(ch_lines.into_iter().map(|l| l.1));
        }
        totals.add(&d);
        channels.push(ChannelVerdict {
            name,
            first_seq: first,
            last_seq: last,
            subscriptions: subs,
            delivered: d,
        });
    }
    if meta.clustered() {
        findings.push(Finding {
            severity: Severity::Warning,
            channel: None,
            first_seq: None,
            last_seq: None,
            count: 0,
            file: Some(crate::store::SERVER_FILE.into()),
            offset: None,
            what: format!(
                "clustered node {:?}: its Raft logs are elsewhere and were NOT checked",
                meta.server.node_id
            ),
            remedy: "check the node's raft.log with the server itself".into(),
        });
    }
    if crc_tally.0 > 0 && crc_tally.0 == crc_tally.1 {
        findings.push(Finding {
            severity: Severity::Warning,
            channel: None,
            first_seq: None,
            last_seq: None,
            count: 0,
            file: None,
            offset: None,
            what: format!("no record's CRC matches polynomial {:#010x}: is that the server's -file_crc_poly? (the default is IEEE, 0xedb88320)", st.crc.poly()),
            remedy: "give --crc-poly the polynomial the server runs with".into(),
        });
    }
    if meta.no_server_info {
        // recoverServerInfo meets io.EOF: no state recovered at all.
        let stored = totals.messages;
        findings.push(Finding {
            severity: Severity::Fails,
            channel: None,
            first_seq: None,
            last_seq: None,
            count: stored,
            file: Some(crate::store::SERVER_FILE.into()),
            offset: None,
            what: format!("server.dat holds no ServerInfo record: the server starts as a NEW store and recovers no channel, client or subscription; none of the {stored} stored message(s) is delivered"),
            remedy: "restore server.dat from a backup before starting".into(),
        });
        totals = Delivered {
            messages: stored,
            failed: stored,
            ..Delivered::default()
        };
        lines.clear();
    }
    findings.sort_by_key(|f| f.severity);
    let wont_start = findings
        .iter()
        .any(|f| f.severity == Severity::WillNotStart);
    let at_risk = findings
        .iter()
        .any(|f| matches!(f.severity, Severity::Fails | Severity::Ciphertext));
    let (verdict, exit_code) = if wont_start {
        ("will-not-start", EXIT_WONT_START)
    } else if at_risk {
        ("at-risk", EXIT_AT_RISK)
    } else {
        ("ok", EXIT_OK)
    };
    if st.list {
        let mut head = Vec::new();
        if wont_start {
            // The server stops at the first channel it cannot recover; it
            // reports no server line and delivers nothing.
            if let Some(f) = findings
                .iter()
                .find(|f| f.severity == Severity::WillNotStart)
            {
                head.push(format!(
                    "RECOVER-ERROR\t{} ({}{})",
                    f.what,
                    f.file.as_deref().unwrap_or("-"),
                    f.offset.map_or(String::new(), |o| format!(" offset {o}"))
                ));
            }
            lines = head;
        } else {
            let clients = if meta.no_server_info { 0 } else { meta.clients };
            head.push(format!(
                "SERVER\t{}\tclients={clients}",
                meta.server.cluster_id
            ));
            head.extend(lines);
            lines = head;
        }
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
        },
        verdict,
        exit_code,
        cluster_id: meta.server.cluster_id.clone(),
        clients: meta.clients,
        channels,
        totals,
        findings,
        lines,
    })
}

/// The command: settings from the command line, the lock check, output.
pub fn cli(a: VerifyArgs) -> Result<i32, Error> {
    let crc = app::crc_of(&a.common)?;
    // As in the server: encryption is on with -encrypt or a configured key;
    // the environment variable only replaces the key once it is on.
    let configured = !a.keys.key_files.is_empty() || !a.keys.keys.is_empty();
    let encryption = !a.no_encrypt && (a.encrypt || configured);
    let key = if encryption {
        app::server_key(&a.keys)?
    } else {
        None
    };
    if a.no_encrypt && configured {
        app::warn("--no-encrypt: the key given is not used (a server without encryption delivers envelopes as they are)");
    }
    if !encryption && crate::keys::env_key().is_some() && !a.no_encrypt {
        app::warn("NATS_STREAMING_ENCRYPTION_KEY is set, but the server only uses it with -encrypt or a configured key: this prediction is for a server WITHOUT encryption (pass --encrypt if yours runs with -encrypt)");
    }
    let layout = StoreLayout::discover(&a.common.dir)?;
    if let Some(pid) = crate::lock::holder(&layout.root)? {
        return Err(Error::Locked {
            path: layout.root.clone(),
            pid,
        });
    }
    let st = Settings {
        encryption,
        cipher: a.cipher.into(),
        key,
        crc,
        truncate_on_eof: a.truncate_on_eof,
        list: a.list,
        backend: app::backend_of(&a.common),
    };
    let bar = crate::progress::Progress::bytes(crate::progress::store_bytes(&layout), "verify");
    let inc = |n| bar.inc(n);
    let report = run(&layout, &st, Some(&inc))?;
    bar.finish();
    let mut out = std::io::stdout().lock();
    if a.common.json {
        app::print_json(&report)?;
    } else if a.list {
        use std::io::Write;
        report
            .lines
            .iter()
            .try_for_each(|l| writeln!(out, "{l}"))
            .or_else(app::stdout_error)?;
    } else {
        crate::render::verify(&report, &mut out).or_else(app::stdout_error)?;
    }
    Ok(report.exit_code)
}
