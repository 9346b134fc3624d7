//! encrypt / decrypt / rekey: one record-rewriting pipeline with a rule per
//! payload.
//!
//! 1. Check: the shared scanner reads every slice and `decide` judges every
//!    record. Anything the rule cannot handle refuses the whole run before
//!    the first write.
//! 2. Write: each slice that changes is rewritten into temp files beside the
//!    originals (or into `--output`), changing only field 4 of each record,
//!    then swapped in with an order that keeps the store readable by the
//!    server at every instant (see `swap_in`).
//!
//! Nonces come from `NonceGen` (deterministic), so a rerun after a crash
//! writes exactly the bytes an uninterrupted run would have written.

use crate::aead::{Backend, ChannelAead, Cipher};
use crate::app::{self, EXIT_OK};
use crate::cli::{CommonArgs, DecryptArgs, EncryptArgs, RekeyArgs, RewriteArgs};
use crate::crc::Crc32;
use crate::envelope::{self, NonceOrigin, PayloadKind, OVERHEAD};
use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::keys::{self, Key, KeyOrigin};
use crate::lock::{self, StoreLock};
use crate::nonce::NonceGen;
use crate::progress::Progress;
use crate::proto::{self, MsgView};
use crate::record::{self, Event, FileVersion, Records, VERSION_LEN};
use crate::scan::{
    self, ChannelCtx, HashMode, KeyOutcome, RecordInfo, ScanConfig, SliceData, SliceEnd, SliceScan,
};
use crate::store::{self, ChannelLayout, Mapped, SliceFiles, StoreLayout, TEMP_SUFFIX};
use rayon::prelude::*;
use serde::Serialize;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What to do with each payload. The keys live in `Job::keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// keys = [the key]: plaintext is sealed with it and `cipher`.
    Encrypt { cipher: Cipher },
    /// keys = every key given: envelopes any of them opens become plaintext.
    Decrypt,
    /// keys = [new key, old keys...]: envelopes an old key opens are re-sealed
    /// with the new key, keeping their cipher unless `cipher` is set.
    Rekey { cipher: Option<Cipher> },
}

impl Rule {
    pub fn operation(&self) -> &'static str {
        match self {
            Rule::Encrypt { .. } => "encrypt",
            Rule::Decrypt => "decrypt",
            Rule::Rekey { .. } => "rekey",
        }
    }
}

/// A rule with its keys. For `Encrypt` and `Rekey`, `keys[0]` is the key
/// new envelopes are sealed with.
pub struct Job {
    pub rule: Rule,
    pub keys: Vec<Key>,
    pub assume_plaintext: bool,
    pub crc: Crc32,
    pub backend: Backend,
}

/// What a payload is, as far as the given keys can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Empty,
    Plain,
    /// First byte 1 or 2, 13 bytes or fewer: no envelope can be that short.
    Short,
    /// Opened by `keys[i]`.
    Opened(usize),
    Unopened(NonceOrigin),
}

/// What happens to a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Keep,
    Encrypt,
    Decrypt,
    Rekey,
}

const AMBIGUOUS: &str = "starts with byte 1 or 2 like an envelope, but no given key opens it and its nonce is not one the server or stanctl writes: most likely plaintext. If it is plaintext, rerun with --assume-plaintext; otherwise give the key that encrypted it";
const WRONG_KEY: &str = "an envelope no given key opens: give the key that encrypted it (--key-file, repeatable for decrypt and rekey)";

/// The rule applied to one payload; `Err` is why it cannot be handled.
pub fn decide(rule: Rule, seen: Seen, assume_plaintext: bool) -> Result<Change, &'static str> {
    Ok(match (seen, rule) {
        (Seen::Empty, _) => Change::Keep,
        (Seen::Plain, Rule::Encrypt { .. }) => Change::Encrypt,
        (Seen::Plain, _) => Change::Keep,
        // keys[0] is the target key: its envelopes are already what we want.
        (Seen::Opened(0), Rule::Encrypt { .. } | Rule::Rekey { .. }) => Change::Keep,
        (Seen::Opened(_), Rule::Decrypt) => Change::Decrypt,
        (Seen::Opened(_), Rule::Rekey { .. }) => Change::Rekey,
        (Seen::Opened(_), Rule::Encrypt { .. }) => unreachable!("encrypt has one key"),
        // Decrypting leaves plaintext as it is, so a payload that only looks
        // like an envelope needs no decision: keeping its bytes loses
        // nothing, and a rerun after success (or a crash) stays a no-op.
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), Rule::Decrypt) => Change::Keep,
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), _) if !assume_plaintext => {
            return Err(AMBIGUOUS)
        }
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), Rule::Encrypt { .. }) => {
            Change::Encrypt
        }
        (Seen::Short | Seen::Unopened(NonceOrigin::Unknown), _) => Change::Keep,
        // A nonce in the server's or stanctl's scheme: a real envelope, even
        // with --assume-plaintext (sealing it again would bury it).
        (Seen::Unopened(_), _) => return Err(WRONG_KEY),
    })
}

/// `Seen` from what the scanner recorded.
fn seen_of(info: &RecordInfo) -> Seen {
    match (info.kind, info.key) {
        (PayloadKind::Empty, _) => Seen::Empty,
        (PayloadKind::Plain, _) => Seen::Plain,
        (PayloadKind::Short(_), _) => Seen::Short,
        (PayloadKind::Envelope(_), KeyOutcome::Opened(i)) => Seen::Opened(i as usize),
        (PayloadKind::Envelope(_), KeyOutcome::Unopened(o)) => Seen::Unopened(o),
        // Every rule has at least one key, so the scanner always tries.
        (PayloadKind::Envelope(_), KeyOutcome::NotTried) => Seen::Unopened(NonceOrigin::Unknown),
    }
}

/// `Seen` while writing, the same way the scanner judged it; an opened
/// plaintext is left in `scratch[..len]`.
fn observe(aeads: &[ChannelAead], data: &[u8], seq: u64, scratch: &mut Vec<u8>) -> (Seen, usize) {
    match envelope::classify(data) {
        PayloadKind::Empty => (Seen::Empty, 0),
        PayloadKind::Plain => (Seen::Plain, 0),
        PayloadKind::Short(_) => (Seen::Short, 0),
        PayloadKind::Envelope(c) => match envelope::open_any(aeads, c, data, scratch) {
            Some((i, pt)) => (Seen::Opened(i), pt.len()),
            None => (
                Seen::Unopened(envelope::nonce_origin(envelope::nonce(data), seq)),
                0,
            ),
        },
    }
}

/// Bytes field 4 takes in a record for a payload of `n` bytes (absent when empty).
fn field4_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 + proto::varint_len(n as u64) + n
    }
}

// ---------------------------------------------------------------- report

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub records: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub encrypted: u64,
    pub decrypted: u64,
    pub rekeyed: u64,
    /// Bytes of the slice files (.dat and .idx) before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub slices_rewritten: u64,
}

impl Tally {
    fn count(&mut self, c: Change) {
        self.records += 1;
        match c {
            Change::Keep => self.unchanged += 1,
            Change::Encrypt => self.encrypted += 1,
            Change::Decrypt => self.decrypted += 1,
            Change::Rekey => self.rekeyed += 1,
        }
        if c != Change::Keep {
            self.changed += 1;
        }
    }

    fn add(&mut self, o: &Tally) {
        self.records += o.records;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
        self.encrypted += o.encrypted;
        self.decrypted += o.decrypted;
        self.rekeyed += o.rekeyed;
        self.bytes_before += o.bytes_before;
        self.bytes_after += o.bytes_after;
        self.slices_rewritten += o.slices_rewritten;
    }
}

/// One record (or file) the run cannot handle.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub channel: String,
    pub file: String,
    pub seq: Option<u64>,
    pub offset: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelReport {
    pub name: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, Serialize)]
pub struct RewriteReport {
    pub schema: &'static str,
    pub operation: &'static str,
    pub store: String,
    pub output: Option<String>,
    pub dry_run: bool,
    pub channels: Vec<ChannelReport>,
    pub totals: Tally,
    pub refused: Vec<Refusal>,
}

pub const SCHEMA: &str = "stanctl.rewrite/1";

// ------------------------------------------------------------------ check

/// The check's verdict on one slice.
struct SlicePlan {
    tally: Tally,
    rewrite: bool,
    refused: Vec<Refusal>,
}

/// Scanner damage that makes a slice impossible to rewrite faithfully.
fn refuses(kind: &str) -> bool {
    matches!(
        kind,
        "crc-mismatch"
            | "truncated-record"
            | "bad-record"
            | "unsupported-version"
            | "version-cut-short"
    )
}

fn plan_slice(job: &Job, ctx: &ChannelCtx<'_>, scan: SliceScan, data: SliceData<'_>) -> SlicePlan {
    let idx_len = data.idx.map_or(0, |i| i.len() as u64);
    let mut tally = Tally {
        bytes_before: scan.dat_len + idx_len,
        ..Tally::default()
    };
    let mut refused: Vec<Refusal> = scan
        .damage
        .iter()
        .filter(|d| refuses(d.kind))
        .map(|d| Refusal {
            channel: ctx.name.clone(),
            file: d.file.clone(),
            seq: d.seq,
            offset: d.offset,
            reason: format!(
                "{}: {}; run `stanctl store verify` to see what the server does with it, and repair the store first",
                d.kind, d.detail
            ),
        })
        .collect();
    // The new .dat: version, records (field 4 resized), then any zero tail
    // copied as it is.
    let mut dat_after = VERSION_LEN as u64;
    let mut index_matches = idx_len == (VERSION_LEN + scan.records.len() * 32) as u64
        && data
            .idx
            .is_some_and(|i| record::file_version(i) == FileVersion::Supported);
    for (i, info) in scan.records.iter().enumerate() {
        if !info.crc_ok || info.parse_error.is_some() {
            continue; // already refused as damage
        }
        let change = match decide(job.rule, seen_of(info), job.assume_plaintext) {
            Ok(c) => c,
            Err(why) => {
                refused.push(Refusal {
                    channel: ctx.name.clone(),
                    file: scan.dat.clone(),
                    seq: Some(info.seq),
                    offset: Some(info.offset),
                    reason: why.to_string(),
                });
                continue;
            }
        };
        tally.count(change);
        let old = info.data_len as usize;
        let new = match change {
            Change::Keep | Change::Rekey => old,
            Change::Encrypt => old + OVERHEAD,
            Change::Decrypt => info.plain_len as usize,
        };
        let size = info.size as usize - field4_len(old) + field4_len(new);
        dat_after += (record::HEADER_LEN + size) as u64;
        if index_matches {
            let e = IndexEntry::new(info.seq, info.offset, info.timestamp, info.size, &job.crc);
            let at = VERSION_LEN + i * 32;
            index_matches = data.idx.is_some_and(|b| b[at..at + 32] == e.to_bytes());
        }
    }
    if let SliceEnd::ZeroPadding { len, .. } = scan.end {
        dat_after += len;
    }
    let rewrite = scan.version == FileVersion::Supported
        && refused.is_empty()
        && (tally.changed > 0 || !index_matches);
    if rewrite {
        tally.slices_rewritten = 1;
        tally.bytes_after = dat_after + (VERSION_LEN + scan.records.len() * 32) as u64;
    } else {
        tally.bytes_after = tally.bytes_before;
    }
    SlicePlan {
        tally,
        rewrite,
        refused,
    }
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// In place we never write through a symlink: the rename would replace the
/// link, not its target, and the store would silently fork.
fn symlink_refusals(root: &Path, ch: &ChannelLayout, sf: &SliceFiles) -> Vec<Refusal> {
    let mut paths = vec![ch.dir.clone(), sf.dat.clone()];
    paths.extend(sf.idx.clone());
    paths
        .into_iter()
        .filter(|p| is_symlink(p))
        .map(|p| Refusal {
            channel: ch.display_name(),
            file: store::rel(root, &p),
            seq: None,
            offset: None,
            reason: "is a symbolic link: stanctl never rewrites through a symlink in place; use --output DIR, or replace the link with the real directory or file".into(),
        })
        .collect()
}

/// Every slice's plan, per channel, in layout order.
fn check(layout: &StoreLayout, job: &Job, in_place: bool) -> Result<Vec<Vec<SlicePlan>>> {
    let bar = Progress::bytes(crate::progress::store_bytes(layout), "check");
    let inc = |n| bar.inc(n);
    let cfg = ScanConfig {
        crc: job.crc.clone(),
        keys: &job.keys,
        backend: job.backend,
        detail: true,
        hash: HashMode::None,
        progress: Some(&inc),
    };
    let scans = scan::scan_store(layout, &cfg, |ctx, scan, data| {
        plan_slice(job, ctx, scan, data)
    })?;
    bar.finish();
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

// ------------------------------------------------------------------ write

/// Test-only crash hook: with `STANCTL_TEST_ABORT_AT_STEP=N` in the
/// environment the process aborts right before its N-th write step (each
/// create, write+fsync, unlink, rename and directory fsync counts one, from
/// 1). The crash-safety tests use it to stop the run at every step; nothing
/// else should set it.
const ABORT_ENV: &str = "STANCTL_TEST_ABORT_AT_STEP";
static STEPS: AtomicU64 = AtomicU64::new(0);

fn step() {
    static ABORT_AT: OnceLock<Option<u64>> = OnceLock::new();
    let at = *ABORT_AT.get_or_init(|| std::env::var(ABORT_ENV).ok()?.parse().ok());
    let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if at == Some(n) {
        std::process::abort();
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    step();
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn mode_of(p: &Path) -> Result<u32> {
    Ok(fs::metadata(p).map_err(io(p))?.permissions().mode() & 0o7777)
}

/// Creates `path` (truncating a leftover) with the given permissions,
/// whatever the umask.
fn create(path: &Path, mode: u32) -> Result<BufWriter<File>> {
    step();
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

fn finish(w: BufWriter<File>, path: &Path) -> Result<()> {
    step();
    let f = w.into_inner().map_err(|e| io(path)(e.into_error()))?;
    f.sync_all().map_err(io(path))
}

/// Buffers reused for every record a thread rewrites.
#[derive(Default)]
struct Bufs {
    plain: Vec<u8>,
    sealed: Vec<u8>,
    payload: Vec<u8>,
    record: Vec<u8>,
}

/// The keys of one channel, ready to open and seal.
struct ChannelKeys {
    aeads: Vec<ChannelAead>,
    /// Nonces under keys[0], the key new envelopes are sealed with.
    nonces: NonceGen,
}

impl ChannelKeys {
    fn new(job: &Job, channel: &[u8]) -> Self {
        let ks: Vec<_> = job.keys.iter().map(|k| k.channel_key(channel)).collect();
        ChannelKeys {
            aeads: ks
                .iter()
                .map(|k| ChannelAead::new(k, job.backend))
                .collect(),
            nonces: NonceGen::new(&ks[0]),
        }
    }
}

/// Streams the rewritten slice: records with only field 4 changed, then
/// their index. Returns an error only if the store changed since the check.
fn rewrite_records(
    job: &Job,
    keys: &ChannelKeys,
    dat: &[u8],
    bufs: &mut Bufs,
    dat_out: &mut impl Write,
    idx_out: &mut impl Write,
    dat_path: &Path,
) -> Result<()> {
    let changed = |what: String| {
        Error::Refused(format!(
            "{}: {what}; the store changed since the check (is something else writing to it?)",
            dat_path.display()
        ))
    };
    let wio = |e: std::io::Error| io(dat_path)(e);
    dat_out.write_all(&dat[..VERSION_LEN]).map_err(wio)?;
    idx_out
        .write_all(&record::FILE_VERSION.to_le_bytes())
        .map_err(wio)?;
    let mut offset = VERSION_LEN as u64;
    for ev in Records::new(dat, false) {
        let r = match ev {
            Event::Record(r) => r,
            Event::ZeroPadding { offset: at, .. } => {
                dat_out.write_all(&dat[at as usize..]).map_err(wio)?;
                break;
            }
            Event::Truncated { offset: at, .. } => {
                return Err(changed(format!("record cut short at offset {at}")))
            }
        };
        let m = MsgView::parse(r.payload).map_err(|e| changed(e.to_string()))?;
        let (seen, plain_len) = observe(&keys.aeads, m.data, m.sequence, &mut bufs.plain);
        let change = decide(job.rule, seen, job.assume_plaintext)
            .map_err(|why| changed(format!("seq {}: {why}", m.sequence)))?;
        let new_data: &[u8] = match (change, job.rule) {
            (Change::Keep, _) => m.data,
            (Change::Decrypt, _) => &bufs.plain[..plain_len],
            (Change::Encrypt, Rule::Encrypt { cipher }) => {
                let n = keys.nonces.nonce(m.sequence, m.data);
                envelope::seal(&keys.aeads[0], cipher, &n, m.data, &mut bufs.sealed);
                &bufs.sealed
            }
            (Change::Rekey, Rule::Rekey { cipher }) => {
                let pt = &bufs.plain[..plain_len];
                let cipher = cipher.unwrap_or_else(|| match envelope::classify(m.data) {
                    PayloadKind::Envelope(c) => c,
                    _ => unreachable!("an opened payload is an envelope"),
                });
                let n = keys.nonces.nonce(m.sequence, pt);
                envelope::seal(&keys.aeads[0], cipher, &n, pt, &mut bufs.sealed);
                &bufs.sealed
            }
            _ => unreachable!("decide yields only the rule's own change"),
        };
        let (payload, crc) = if change == Change::Keep {
            (r.payload, r.crc)
        } else {
            proto::replace_data(r.payload, m.data_field.clone(), new_data, &mut bufs.payload);
            (&bufs.payload[..], job.crc.checksum(&bufs.payload))
        };
        bufs.record.clear();
        record::write_record(&mut bufs.record, 0, crc, payload);
        dat_out.write_all(&bufs.record).map_err(wio)?;
        let e = IndexEntry::new(
            m.sequence,
            offset,
            m.timestamp,
            payload.len() as u32,
            &job.crc,
        );
        idx_out.write_all(&e.to_bytes()).map_err(wio)?;
        offset += bufs.record.len() as u64;
    }
    Ok(())
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(p.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// `msgs.N.idx` beside `msgs.N.dat`, whether or not it exists.
fn idx_path(sf: &SliceFiles) -> PathBuf {
    sf.idx
        .clone()
        .unwrap_or_else(|| sf.dat.with_extension("idx"))
}

/// Writes the rewritten slice to `dat_to` and `idx_to`, fsynced, with the
/// permissions of the originals.
fn write_slice(
    job: &Job,
    ch: &ChannelLayout,
    sf: &SliceFiles,
    dat_to: &Path,
    idx_to: &Path,
    bufs: &mut Bufs,
) -> Result<()> {
    let keys = ChannelKeys::new(job, &ch.name);
    let dat = Mapped::open(&sf.dat)?;
    let dat_mode = mode_of(&sf.dat)?;
    let idx_mode = match &sf.idx {
        Some(p) => mode_of(p)?,
        None => dat_mode,
    };
    let mut d = create(dat_to, dat_mode)?;
    let mut i = create(idx_to, idx_mode)?;
    rewrite_records(job, &keys, dat.bytes(), bufs, &mut d, &mut i, &sf.dat)?;
    finish(d, dat_to)?;
    finish(i, idx_to)
}

/// Swaps the new files in. At every instant the server can read the slice:
/// (a) the old index goes first, so the old .dat is never paired with a new
/// index nor the new .dat with the old one (the server rebuilds a missing
/// index from the .dat); (b) the new .dat replaces the old atomically;
/// (c) the new index arrives last. The directory is fsynced after each step
/// so the order also holds on disk after a power loss.
fn swap_in(ch: &ChannelLayout, sf: &SliceFiles, dat_tmp: &Path, idx_tmp: &Path) -> Result<()> {
    let idx = idx_path(sf);
    if let Some(old) = &sf.idx {
        step();
        fs::remove_file(old).map_err(io(old))?;
        fsync_dir(&ch.dir)?;
    }
    step();
    fs::rename(dat_tmp, &sf.dat).map_err(io(&sf.dat))?;
    fsync_dir(&ch.dir)?;
    step();
    fs::rename(idx_tmp, &idx).map_err(io(&idx))?;
    fsync_dir(&ch.dir)
}

fn rewrite_in_place(job: &Job, ch: &ChannelLayout, sf: &SliceFiles, bufs: &mut Bufs) -> Result<()> {
    let dat_tmp = with_suffix(&sf.dat, TEMP_SUFFIX);
    let idx_tmp = with_suffix(&idx_path(sf), TEMP_SUFFIX);
    if let Err(e) = write_slice(job, ch, sf, &dat_tmp, &idx_tmp, bufs) {
        // Best effort: a failed write (disk full) leaves the originals as
        // they were; the next run would remove these anyway.
        let _ = fs::remove_file(&dat_tmp);
        let _ = fs::remove_file(&idx_tmp);
        return Err(e);
    }
    swap_in(ch, sf, &dat_tmp, &idx_tmp)
}

/// Leftovers of an interrupted run: never swapped in, so safe to drop.
fn remove_stale_temps(layout: &StoreLayout) -> Result<()> {
    for ch in &layout.channels {
        for t in &ch.temp {
            step();
            fs::remove_file(t).map_err(io(t))?;
        }
        if !ch.temp.is_empty() {
            fsync_dir(&ch.dir)?;
        }
    }
    Ok(())
}

type Work<'a> = Vec<(&'a ChannelLayout, &'a SliceFiles, &'a SlicePlan)>;

fn work<'a>(layout: &'a StoreLayout, plans: &'a [Vec<SlicePlan>]) -> Work<'a> {
    layout
        .channels
        .iter()
        .zip(plans)
        .flat_map(|(ch, ps)| ch.slices.iter().zip(ps).map(move |(sf, p)| (ch, sf, p)))
        .collect()
}

fn write_in_place(
    layout: &StoreLayout,
    job: &Job,
    plans: &[Vec<SlicePlan>],
    bar: &Progress,
) -> Result<()> {
    remove_stale_temps(layout)?;
    work(layout, plans)
        .into_par_iter()
        .filter(|w| w.2.rewrite)
        .try_for_each_init(Bufs::default, |bufs, (ch, sf, plan)| {
            rewrite_in_place(job, ch, sf, bufs)?;
            bar.inc(plan.tally.bytes_before);
            Ok(())
        })
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    step();
    fs::copy(from, to).map_err(io(to))?;
    step();
    File::open(to).and_then(|f| f.sync_all()).map_err(io(to))
}

fn make_dir(to: &Path, like: &Path) -> Result<()> {
    step();
    fs::create_dir_all(to).map_err(io(to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode_of(like)?)).map_err(io(to))
}

/// Files of `dir` copied as they are: everything but the lock files, our
/// temp files, and the slices in `skip` (written separately).
fn copy_side_files(dir: &Path, to: &Path, skip: &[PathBuf]) -> Result<()> {
    for ent in fs::read_dir(dir).map_err(io(dir))? {
        let p = ent.map_err(io(dir))?.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let runtime = name == store::LOCK_FILE || name == store::TRUNCATE_LOCK_FILE;
        if p.is_dir() || runtime || name.ends_with(TEMP_SUFFIX) || skip.contains(&p) {
            continue;
        }
        copy_file(&p, &to.join(p.file_name().unwrap_or_default()))?;
    }
    Ok(())
}

fn check_output(root: &Path, out: &Path) -> Result<()> {
    match fs::read_dir(out) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::Usage(format!(
                    "--output {} exists and is not empty; give a new or empty directory",
                    out.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(out)(e)),
    }
    // Resolve the deepest existing ancestor: the output must not land inside
    // the source, which we promise not to touch.
    let src = fs::canonicalize(root).map_err(io(root))?;
    let mut anc = out.to_path_buf();
    while !anc.exists() {
        if !anc.pop() {
            break;
        }
    }
    let anc = fs::canonicalize(if anc.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &anc
    })
    .map_err(io(out))?;
    if anc.starts_with(&src) {
        return Err(Error::Usage(format!(
            "--output {} is inside the store; choose a directory outside it",
            out.display()
        )));
    }
    Ok(())
}

fn write_output(
    layout: &StoreLayout,
    job: &Job,
    plans: &[Vec<SlicePlan>],
    out: &Path,
    bar: &Progress,
) -> Result<()> {
    make_dir(out, &layout.root)?;
    copy_side_files(&layout.root, out, &[])?;
    for ch in &layout.channels {
        let to = out.join(ch.dir.file_name().unwrap_or_default());
        make_dir(&to, &ch.dir)?;
        let slices: Vec<PathBuf> = ch
            .slices
            .iter()
            .flat_map(|s| std::iter::once(s.dat.clone()).chain(s.idx.clone()))
            .collect();
        copy_side_files(&ch.dir, &to, &slices)?;
    }
    work(layout, plans).into_par_iter().try_for_each_init(
        Bufs::default,
        |bufs, (ch, sf, plan)| {
            let to = out.join(ch.dir.file_name().unwrap_or_default());
            let name = |p: &Path| to.join(p.file_name().unwrap_or_default());
            if plan.rewrite {
                write_slice(job, ch, sf, &name(&sf.dat), &name(&idx_path(sf)), bufs)?;
            } else {
                copy_file(&sf.dat, &name(&sf.dat))?;
                if let Some(i) = &sf.idx {
                    copy_file(i, &name(i))?;
                }
            }
            bar.inc(plan.tally.bytes_before);
            Ok::<(), Error>(())
        },
    )?;
    for ch in &layout.channels {
        fsync_dir(&out.join(ch.dir.file_name().unwrap_or_default()))?;
    }
    fsync_dir(out)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent)?;
    }
    Ok(())
}

// -------------------------------------------------------------------- run

pub struct Options {
    pub output: Option<PathBuf>,
    pub dry_run: bool,
}

/// Refuses a clustered node's store: its Raft log holds the same messages
/// encrypted with the same key, and this tool does not rewrite it.
fn refuse_clustered(layout: &StoreLayout, crc: &Crc32) -> Result<()> {
    let meta = crate::meta::read(layout, crc)?;
    if meta.clustered() {
        return Err(Error::Refused(format!(
            "{} belongs to clustered node {:?}: its Raft logs (raft.log) hold the same messages encrypted with the same key and are not handled; rewriting the file store alone would leave the node unable to replay its log. Nothing was written.",
            layout.root.display(),
            meta.server.node_id
        )));
    }
    Ok(())
}

/// Checks every record, then (unless refused or dry-run) writes.
pub fn run(dir: &Path, job: &Job, opts: &Options) -> Result<RewriteReport> {
    let layout = StoreLayout::discover(dir)?;
    if let Some(out) = &opts.output {
        check_output(&layout.root, out)?;
    }
    // Held until the end of the run, so no server starts on a half-written store.
    let _lock = if opts.dry_run {
        if let Some(pid) = lock::holder(&layout.root)? {
            return Err(Error::Locked {
                path: layout.root.clone(),
                pid,
            });
        }
        None
    } else {
        Some(StoreLock::acquire(&layout.root)?)
    };
    // Read the layout again under the lock: what we check is what we write.
    let layout = StoreLayout::discover(&layout.root)?;
    refuse_clustered(&layout, &job.crc)?;
    let plans = check(&layout, job, opts.output.is_none())?;
    let report = report(&layout, job, opts, &plans);
    if !report.refused.is_empty() || opts.dry_run {
        return Ok(report);
    }
    // Bytes of the slices the bar will count (every slice is copied with --output).
    let total = plans
        .iter()
        .flatten()
        .filter(|p| opts.output.is_some() || p.rewrite)
        .map(|p| p.tally.bytes_before)
        .sum();
    let bar = Progress::bytes(total, job.rule.operation());
    match &opts.output {
        Some(out) => write_output(&layout, job, &plans, out, &bar)?,
        None => write_in_place(&layout, job, &plans, &bar)?,
    }
    bar.finish();
    Ok(report)
}

fn report(
    layout: &StoreLayout,
    job: &Job,
    opts: &Options,
    plans: &[Vec<SlicePlan>],
) -> RewriteReport {
    let mut totals = Tally::default();
    let mut refused = Vec::new();
    let channels = layout
        .channels
        .iter()
        .zip(plans)
        .map(|(ch, ps)| {
            let mut tally = Tally::default();
            for p in ps {
                tally.add(&p.tally);
                refused.extend(p.refused.iter().cloned());
            }
            totals.add(&tally);
            ChannelReport {
                name: ch.display_name(),
                tally,
            }
        })
        .collect();
    RewriteReport {
        schema: SCHEMA,
        operation: job.rule.operation(),
        store: layout.root.display().to_string(),
        output: opts.output.as_ref().map(|p| p.display().to_string()),
        dry_run: opts.dry_run,
        channels,
        totals,
        refused,
    }
}

// -------------------------------------------------------------------- CLI

fn render(r: &RewriteReport, out: &mut impl Write) -> std::io::Result<()> {
    let class = match r.operation {
        "encrypt" => "Encrypted",
        "decrypt" => "Decrypted",
        _ => "Rekeyed",
    };
    let header = [
        "Channel",
        "Records",
        class,
        "Unchanged",
        "Bytes before",
        "Bytes after",
        "Slices rewritten",
    ];
    let mut t = crate::render::table(&header);
    let row = |name: &str, s: &Tally| {
        vec![
            name.to_string(),
            s.records.to_string(),
            s.changed.to_string(),
            s.unchanged.to_string(),
            s.bytes_before.to_string(),
            s.bytes_after.to_string(),
            s.slices_rewritten.to_string(),
        ]
    };
    for c in &r.channels {
        t.add_row(row(&c.name, &c.tally));
    }
    t.add_row(row("total", &r.totals));
    crate::render::align_numbers(&mut t, 1);
    writeln!(out, "{t}")?;
    let what = match (&r.output, r.dry_run, r.totals.slices_rewritten) {
        (_, true, n) => format!("dry run: {n} slice(s) would be rewritten; nothing was written"),
        (Some(o), false, _) => format!("wrote a converted copy to {o}; the source is untouched"),
        (None, false, 0) => "nothing to do: the store is already as requested".to_string(),
        (None, false, n) => format!("rewrote {n} slice(s) in place"),
    };
    writeln!(out, "{what}")
}

fn print_refusals(r: &RewriteReport) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "stanctl: refusing to {}: {} problem(s); nothing was written:",
        r.operation,
        r.refused.len()
    );
    // Every entry is in --json; a terminal only needs enough to act on.
    const SHOWN: usize = 20;
    for f in r.refused.iter().take(SHOWN) {
        let at = match (f.seq, f.offset) {
            (Some(s), Some(o)) => format!(" seq {s} (offset {o})"),
            (None, Some(o)) => format!(" offset {o}"),
            _ => String::new(),
        };
        let _ = writeln!(err, "  {} {}{at}: {}", f.channel, f.file, f.reason);
    }
    if r.refused.len() > SHOWN {
        let more = r.refused.len() - SHOWN;
        let _ = writeln!(err, "  ... and {more} more (--json lists them all)");
    }
}

fn finish_cli(dir: &Path, job: Job, rw: &RewriteArgs, common: &CommonArgs) -> Result<i32> {
    let opts = Options {
        output: rw.output.clone(),
        dry_run: rw.dry_run,
    };
    let r = run(dir, &job, &opts)?;
    if common.json {
        app::print_json(&r)?;
    }
    if !r.refused.is_empty() {
        print_refusals(&r);
        return Err(Error::Refused(format!(
            "{} record(s) or file(s) cannot be handled (listed above); the store is unchanged",
            r.refused.len()
        )));
    }
    if !common.json {
        render(&r, &mut std::io::stdout().lock()).map_err(io(Path::new("<stdout>")))?;
    }
    Ok(EXIT_OK)
}

fn job(rule: Rule, keys: Vec<Key>, rw: &RewriteArgs, common: &CommonArgs) -> Result<Job> {
    Ok(Job {
        rule,
        keys,
        assume_plaintext: rw.assume_plaintext,
        crc: app::crc_of(common)?,
        backend: app::backend_of(common),
    })
}

pub fn cli_encrypt(a: EncryptArgs) -> Result<i32> {
    let keys = app::load_keys(&a.keys, true)?;
    if keys.len() != 1 {
        return Err(Error::Usage(format!(
            "encrypt takes exactly one key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY); got {}",
            keys.len()
        )));
    }
    let rule = Rule::Encrypt {
        cipher: a.cipher.into(),
    };
    let j = job(rule, keys, &a.rewrite, &a.common)?;
    finish_cli(&a.common.dir, j, &a.rewrite, &a.common)
}

pub fn cli_decrypt(a: DecryptArgs) -> Result<i32> {
    let keys = app::load_keys(&a.keys, true)?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "decrypt needs at least one key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let j = job(Rule::Decrypt, keys, &a.rewrite, &a.common)?;
    finish_cli(&a.common.dir, j, &a.rewrite, &a.common)
}

fn new_key(a: &RekeyArgs) -> Result<Key> {
    match (&a.new_key_file, &a.new_key) {
        (Some(p), None) => {
            let m = keys::read_key_file(p)?;
            Ok(Key::from_material(
                "new key",
                KeyOrigin::File(p.clone()),
                &m,
            ))
        }
        (None, Some(k)) if !k.is_empty() => {
            app::warn("a key given with --new-key is visible to other users of this machine (process list, shell history); prefer --new-key-file");
            Ok(Key::from_material(
                "new key",
                KeyOrigin::CommandLine,
                k.as_bytes(),
            ))
        }
        (None, Some(_)) => Err(keys::KeyError::EmptyKey("--new-key".into()).into()),
        _ => Err(Error::Usage(
            "give the new key with exactly one of --new-key-file or --new-key".into(),
        )),
    }
}

pub fn cli_rekey(a: RekeyArgs) -> Result<i32> {
    let old = app::load_keys(&a.keys, true)?;
    if old.is_empty() {
        return Err(Error::Usage(
            "rekey needs at least one old key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let mut keys = vec![new_key(&a)?];
    keys.extend(old);
    let rule = Rule::Rekey {
        cipher: a.cipher.map(Into::into),
    };
    let j = job(rule, keys, &a.rewrite, &a.common)?;
    finish_cli(&a.common.dir, j, &a.rewrite, &a.common)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENC: Rule = Rule::Encrypt {
        cipher: Cipher::Aes,
    };
    const REKEY: Rule = Rule::Rekey { cipher: None };

    #[test]
    fn rules_per_payload() {
        use Seen::*;
        assert_eq!(decide(ENC, Plain, false), Ok(Change::Encrypt));
        assert_eq!(decide(ENC, Empty, false), Ok(Change::Keep));
        assert_eq!(decide(ENC, Opened(0), false), Ok(Change::Keep));
        assert_eq!(decide(Rule::Decrypt, Opened(1), false), Ok(Change::Decrypt));
        assert_eq!(decide(Rule::Decrypt, Plain, false), Ok(Change::Keep));
        assert_eq!(decide(REKEY, Opened(0), false), Ok(Change::Keep));
        assert_eq!(decide(REKEY, Opened(2), false), Ok(Change::Rekey));
        assert_eq!(decide(REKEY, Plain, false), Ok(Change::Keep));
    }

    #[test]
    fn ambiguous_needs_assume_plaintext() {
        let look = Seen::Unopened(NonceOrigin::Unknown);
        for rule in [ENC, REKEY] {
            assert_eq!(decide(rule, look, false), Err(AMBIGUOUS));
            assert_eq!(decide(rule, Seen::Short, false), Err(AMBIGUOUS));
        }
        // Decrypt keeps them as they are: nothing to decide, and reruns stay no-ops.
        assert_eq!(decide(Rule::Decrypt, look, false), Ok(Change::Keep));
        assert_eq!(decide(Rule::Decrypt, Seen::Short, false), Ok(Change::Keep));
        assert_eq!(decide(ENC, look, true), Ok(Change::Encrypt));
        assert_eq!(decide(ENC, Seen::Short, true), Ok(Change::Encrypt));
        assert_eq!(decide(Rule::Decrypt, look, true), Ok(Change::Keep));
        assert_eq!(decide(REKEY, Seen::Short, true), Ok(Change::Keep));
    }

    #[test]
    fn real_envelopes_under_unknown_keys_are_always_refused() {
        for o in [NonceOrigin::Server, NonceOrigin::Stanctl] {
            for rule in [ENC, Rule::Decrypt, REKEY] {
                assert_eq!(decide(rule, Seen::Unopened(o), true), Err(WRONG_KEY));
            }
        }
    }

    #[test]
    fn field4_sizes() {
        assert_eq!(field4_len(0), 0);
        assert_eq!(field4_len(5), 7);
        assert_eq!(field4_len(200), 203);
    }
}
