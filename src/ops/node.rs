//! A clustered node as one unit: its file store and its Raft log
//! (`<cluster_log_path>/<cluster id>/raft.log`).
//!
//! `locate` finds the log from the options (`--cluster-log-path DIR` or
//! `--raft-log FILE`) and the store's `server.dat`; `verify_log` replays
//! what the server's log store returns for every entry and turns it into
//! findings that join the store's in one node verdict. The rewrite of a
//! node (log and store) lives in `ops::rewrite::raft`.

use crate::crypto::aead::Cipher;
use crate::crypto::envelope::PayloadKind;
use crate::crypto::keys::Key;
use crate::crypto::nonce::NonceOrigin;
use crate::crypto::raft::{data_kind, nonce_origin, serve, DataKind, RaftKey, ServeError, Served};
use crate::format::raft::bbolt::{self, CheckProblem};
use crate::format::raft::entry::{EntryView, RaftLog};
use crate::format::raft::error::RaftError;
use crate::format::raft::layout::{default_cluster_log_path, raft_log_path};
use crate::format::side::StoreMeta;
use crate::ops::raft_census::{census, Census};
use crate::ops::verify::{Finding, FindingKind, Severity};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where a node's Raft log is: the server's `-cluster_log_path`, or the
/// file itself. Plain typed fields (a configuration file's
/// `cluster { log_path }` maps onto `cluster_log_path`).
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// The server's `cluster_log_path`: the log is `DIR/<cluster id>/raft.log`.
    pub cluster_log_path: Option<PathBuf>,
    /// The log file itself (wins over `cluster_log_path`).
    pub raft_log: Option<PathBuf>,
    /// Neither is given, and the server's configuration file makes it
    /// clustered (`cluster { }`) without `log_path`: the log is where the
    /// server puts it by default, under `cluster_log_path`
    /// `<cluster id>/<node id>` relative to the working directory (as the
    /// file's relative `dir` is), the ids being the store's (`server.dat`),
    /// which the server uses on restart.
    pub server_default: bool,
}

/// Where the Raft log of a store is, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLocation {
    /// Not a clustered node's store, and no log was given.
    NotClustered,
    /// A clustered node's store, and neither option was given.
    NotGiven {
        node_id: String,
    },
    At(PathBuf),
}

/// The log of the store described by `meta`, as the options say.
pub fn locate(meta: &StoreMeta, opts: &NodeOptions) -> LogLocation {
    if let Some(p) = &opts.raft_log {
        return LogLocation::At(p.clone());
    }
    if let Some(dir) = &opts.cluster_log_path {
        return LogLocation::At(raft_log_path(dir, &meta.server.cluster_id));
    }
    if meta.clustered() && opts.server_default {
        let (cluster, node) = (&meta.server.cluster_id, &meta.server.node_id);
        return LogLocation::At(raft_log_path(
            &default_cluster_log_path(cluster, node),
            cluster,
        ));
    }
    if meta.clustered() {
        LogLocation::NotGiven {
            node_id: meta.server.node_id.clone(),
        }
    } else {
        LogLocation::NotClustered
    }
}

/// What the Raft log says about the node, as facts for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftFinding {
    /// A clustered node's store and no log given.
    NotGiven { node_id: String },
    /// The log cannot be opened or read (the text of the error).
    Unreadable(String),
    /// Pages the structural check cannot account for.
    Damage(Vec<CheckProblem>),
    /// Entries the server's log store returns an error for.
    Fails(ServeError),
    /// Encryption off: command envelopes served as their raw bytes.
    ServedRaw,
    /// Items of `logs` that do not decode (first error's text).
    BadEntries(String),
}

/// The verify facts of one log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RaftLogVerify {
    pub path: String,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub entries: u64,
    /// Served without error: plaintext, opened, or not a command.
    pub served: u64,
    /// Served with an error.
    pub failed: u64,
    /// Envelopes served raw (encryption off).
    pub served_raw: u64,
    /// Items of `logs` that do not decode.
    pub bad: u64,
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

fn finding(
    sev: Severity,
    path: &Path,
    range: Option<(u64, u64)>,
    count: u64,
    f: RaftFinding,
) -> Finding {
    Finding {
        severity: sev,
        channel: None,
        first_seq: range.map(|r| r.0),
        last_seq: range.map(|r| r.1),
        count,
        file: Some(path.display().to_string()),
        offset: None,
        kind: FindingKind::Raft(f),
    }
}

/// The finding for a clustered node's store with no log given.
pub fn not_given(node_id: &str) -> Finding {
    Finding {
        severity: Severity::Warning,
        channel: None,
        first_seq: None,
        last_seq: None,
        count: 0,
        file: Some(crate::format::layout::SERVER_FILE.into()),
        offset: None,
        kind: FindingKind::Raft(RaftFinding::NotGiven {
            node_id: node_id.to_string(),
        }),
    }
}

/// A range of indexes with a count and the first example.
struct Span<T> {
    first: Option<(u64, T)>,
    last: u64,
    count: u64,
}

impl<T> Span<T> {
    fn new() -> Self {
        Span {
            first: None,
            last: 0,
            count: 0,
        }
    }

    fn add(&mut self, i: u64, t: T) {
        if self.first.is_none() {
            self.first = Some((i, t));
        }
        self.last = i;
        self.count += 1;
    }
}

/// Every entry as the server's log store returns it, with `key` when
/// encryption is on. Never fails: a log that cannot be read is a finding.
pub fn verify_log(
    path: &Path,
    key: Option<&RaftKey>,
    sink: &dyn crate::ops::Sink,
) -> RaftLogVerify {
    let mut r = RaftLogVerify {
        path: path.display().to_string(),
        ..RaftLogVerify::default()
    };
    if let Err(e) = verify_into(path, key, sink, &mut r) {
        r.findings.push(finding(
            Severity::WillNotStart,
            path,
            None,
            0,
            RaftFinding::Unreadable(e.to_string()),
        ));
    }
    r
}

fn verify_into(
    path: &Path,
    key: Option<&RaftKey>,
    sink: &dyn crate::ops::Sink,
    r: &mut RaftLogVerify,
) -> Result<(), RaftError> {
    let log = RaftLog::open(path)?;
    let range = log.index_range()?;
    r.first_index = range.map(|x| x.0);
    r.last_index = range.map(|x| x.1);
    let check = bbolt::check(log.db())?;
    if !check.problems.is_empty() {
        let n = check.problems.len() as u64;
        r.findings.push(finding(
            Severity::Warning,
            path,
            None,
            n,
            RaftFinding::Damage(check.problems.into_iter().take(10).collect()),
        ));
    }
    let mut auth: Span<ServeError> = Span::new();
    let mut short: Span<ServeError> = Span::new();
    let mut raw: Span<()> = Span::new();
    let mut bad: Span<String> = Span::new();
    let mut scratch = Vec::new();
    // The bar counts the bytes of the entries (the file also holds free
    // and branch pages, which the walk does not read).
    let mut meter = crate::ops::Meter::phase(sink, crate::ops::Phase::Verify, log.entry_bytes()?);
    log.entries(|e| {
        let view = match e {
            Ok(v) => v,
            Err(b) => {
                r.bad += 1;
                let i = match &b {
                    crate::format::raft::BadEntry::Value { index, .. } => *index,
                    _ => 0,
                };
                bad.add(i, b.to_error().to_string());
                return Ok::<(), RaftError>(());
            }
        };
        r.entries += 1;
        meter.add(view.size());
        match serve(&view, key, &mut scratch) {
            Ok(Served::AsStored) => {
                if key.is_none()
                    && matches!(
                        data_kind(&view),
                        DataKind::Command(PayloadKind::Envelope(_) | PayloadKind::Short(_))
                    )
                {
                    r.served_raw += 1;
                    raw.add(view.index, ());
                }
                r.served += 1;
            }
            Ok(Served::Opened(_)) => r.served += 1,
            Err(err) => {
                r.failed += 1;
                match err {
                    ServeError::AuthFailed { .. } => auth.add(view.index, err),
                    ServeError::NotAnEnvelope { .. } => short.add(view.index, err),
                }
            }
        }
        Ok(())
    })?;
    drop(meter);
    for s in [auth, short] {
        if let Some((first, err)) = s.first {
            r.findings.push(finding(
                Severity::Fails,
                path,
                Some((first, s.last)),
                s.count,
                RaftFinding::Fails(err),
            ));
        }
    }
    if let Some((first, ())) = raw.first {
        r.findings.push(finding(
            Severity::Fails,
            path,
            Some((first, raw.last)),
            raw.count,
            RaftFinding::ServedRaw,
        ));
    }
    if let Some((first, text)) = bad.first {
        r.findings.push(finding(
            Severity::Fails,
            path,
            Some((first, bad.last)),
            bad.count,
            RaftFinding::BadEntries(text),
        ));
    }
    Ok(())
}

/// The inspect facts of one log: counts per class and key, nonce reuse,
/// and the structural check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RaftLogInspect {
    pub path: String,
    /// The log cannot be read (then the rest is empty).
    pub error: Option<String>,
    #[serde(flatten)]
    pub census: Census,
    /// Envelopes each key opened, in the order the keys were given.
    pub opened_by: Vec<KeyCount>,
    /// Envelopes no key opened: with the server's or stanctl's nonce
    /// (wrong key) or any other (plaintext that starts with 1 or 2).
    pub unopened_wrong_key: u64,
    pub unopened_lookalike: u64,
    /// Nonces that appear more than once under one key.
    pub reused_nonces: Vec<RaftNonceReuse>,
    /// Structural problems (bbolt pages), as text.
    pub damage: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyCount {
    pub key: String,
    pub opened: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RaftNonceReuse {
    pub key: Option<String>,
    pub cipher: &'static str,
    pub nonce: String,
    pub indexes: [u64; 2],
}

/// Counts what `path` holds, tries every key on every envelope.
pub fn inspect_log(
    path: &Path,
    keys: &[Key],
    backend: crate::crypto::aead::Backend,
) -> RaftLogInspect {
    let mut r = RaftLogInspect {
        path: path.display().to_string(),
        ..RaftLogInspect::default()
    };
    if let Err(e) = inspect_into(path, keys, backend, &mut r) {
        r.error = Some(e.to_string());
    }
    r
}

fn inspect_into(
    path: &Path,
    keys: &[Key],
    backend: crate::crypto::aead::Backend,
    r: &mut RaftLogInspect,
) -> Result<(), RaftError> {
    let log = RaftLog::open(path)?;
    r.census = census(&log, None)?;
    let check = bbolt::check(log.db())?;
    r.damage = check.problems.iter().map(|p| format!("{p:?}")).collect();
    let rkeys: Vec<RaftKey> = keys.iter().map(|k| RaftKey::from_key(k, backend)).collect();
    r.opened_by = keys
        .iter()
        .map(|k| KeyCount {
            key: k.id.clone(),
            opened: 0,
        })
        .collect();
    // (key index or none, cipher, nonce) -> first index.
    let mut seen: std::collections::HashMap<(Option<usize>, u8, [u8; 12]), u64> =
        std::collections::HashMap::new();
    let mut scratch = Vec::new();
    log.entries(|e| {
        let Ok(view) = e else {
            return Ok::<(), RaftError>(());
        };
        let DataKind::Command(PayloadKind::Envelope(cipher)) = data_kind(&view) else {
            return Ok(());
        };
        let who = rkeys
            .iter()
            .position(|k| matches!(serve(&view, Some(k), &mut scratch), Ok(Served::Opened(_))));
        match who {
            Some(i) => r.opened_by[i].opened += 1,
            None => match nonce_origin(&view) {
                Some(NonceOrigin::Unknown) | None => r.unopened_lookalike += 1,
                Some(_) => r.unopened_wrong_key += 1,
            },
        }
        // Reuse only counts among real envelopes (opened, or a known nonce).
        if who.is_some() || nonce_origin(&view).is_some_and(|o| o != NonceOrigin::Unknown) {
            let nonce = *crate::crypto::envelope::nonce(view.data());
            let code = match cipher {
                Cipher::Aes => 1,
                Cipher::ChaCha => 2,
            };
            match seen.entry((who, code, nonce)) {
                std::collections::hash_map::Entry::Occupied(o) => {
                    if r.reused_nonces.len() < 100 {
                        r.reused_nonces.push(RaftNonceReuse {
                            key: who.map(|i| keys[i].id.clone()),
                            cipher: match cipher {
                                Cipher::Aes => "AES",
                                Cipher::ChaCha => "CHACHA",
                            },
                            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
                            indexes: [*o.get(), view.index],
                        });
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(view.index);
                }
            }
        }
        Ok(())
    })?;
    // The census ran without keys: its key counts are these.
    if !keys.is_empty() {
        r.census.opened = r.opened_by.iter().map(|k| k.opened).sum();
        r.census.not_opened = r.unopened_wrong_key + r.unopened_lookalike;
    }
    Ok(())
}

/// The raft key of the server's key, if any (verify).
pub fn raft_key(key: Option<&Key>, backend: crate::crypto::aead::Backend) -> Option<RaftKey> {
    key.map(|k| RaftKey::from_key(k, backend))
}

/// For the entry rule of rewrites: what `view` is, as far as `keys` tell.
/// An envelope is tried first with the key at `*last` (the one that opened
/// the previous entry; set to the one that opens this one), then the others
/// in order, sparing a full AEAD pass per key that fails (rekey's new key
/// on every old envelope); it is said to open under `first_same[i]`, the
/// first key of the same material as the one that opened it. The answer is
/// the first key in order that opens it, except for a ciphertext crafted
/// to authenticate under two keys (named under the one tried first, the
/// same on every run: entries are judged in index order). On
/// `Seen::Opened`, `scratch` holds the plaintext.
pub(crate) fn seen_of_entry(
    view: &EntryView<'_>,
    keys: &[RaftKey],
    first_same: &[usize],
    last: &mut usize,
    scratch: &mut Vec<u8>,
) -> crate::ops::rewrite::Seen {
    use crate::ops::rewrite::Seen;
    match data_kind(view) {
        DataKind::NotCommand | DataKind::Command(PayloadKind::Empty) => Seen::Empty,
        DataKind::Command(PayloadKind::Plain) => Seen::Plain,
        DataKind::Command(PayloadKind::Short(_)) => Seen::Short,
        DataKind::Command(PayloadKind::Envelope(cipher)) => {
            let order = std::iter::once(*last)
                .filter(|&l| l < keys.len())
                .chain((0..keys.len()).filter(|&i| i != *last));
            for i in order {
                if let Ok(Served::Opened(_)) = serve(view, Some(&keys[i]), scratch) {
                    *last = i;
                    return Seen::Opened(first_same.get(i).copied().unwrap_or(i), cipher);
                }
            }
            Seen::Unopened(nonce_origin(view).unwrap_or(NonceOrigin::Unknown))
        }
    }
}

/// verify of a node: the store as `verify::run` predicts it, then the
/// Raft log served with the same key (encryption on) or raw (off); one
/// verdict over both.
pub fn verify_node(
    layout: &crate::format::layout::StoreLayout,
    key: Option<&Key>,
    opts: &crate::ops::verify::VerifyOptions,
    node: &NodeOptions,
    sink: &dyn crate::ops::Sink,
) -> crate::error::Result<crate::ops::verify::VerifyReport> {
    let mut r = crate::ops::verify::run(layout, key, opts, sink)?;
    let meta = crate::format::side::read(layout, &opts.crc)?;
    match locate(&meta, node) {
        LogLocation::NotClustered => return Ok(r),
        LogLocation::NotGiven { node_id } => r.findings.push(not_given(&node_id)),
        LogLocation::At(p) => {
            must_exist(&p, node)?;
            let rk = if opts.encryption {
                raft_key(key, opts.backend)
            } else {
                None
            };
            let v = verify_log(&p, rk.as_ref(), sink);
            r.findings.extend(v.findings.iter().cloned());
            r.raft = Some(v);
        }
    }
    r.findings.sort_by_key(|f| f.severity);
    r.verdict = crate::ops::verify::verdict_of(&r.findings);
    Ok(r)
}

/// inspect of a node: the store, then (when given) its Raft log.
pub fn inspect_node(
    layout: &crate::format::layout::StoreLayout,
    keys: &[Key],
    opts: &crate::ops::inspect::InspectOptions,
    node: &NodeOptions,
    sink: &dyn crate::ops::Sink,
) -> crate::error::Result<crate::ops::inspect::InspectReport> {
    let mut r = crate::ops::inspect::run(layout, keys, opts, sink)?;
    let meta = crate::format::side::read(layout, &opts.crc)?;
    if let LogLocation::At(p) = locate(&meta, node) {
        must_exist(&p, node)?;
        r.notes
            .retain(|n| !matches!(n, crate::ops::inspect::Note::Clustered { .. }));
        r.raft_log = Some(inspect_log(&p, keys, opts.backend));
    }
    Ok(r)
}

/// A log given but absent is a mistake in the path (the server would start
/// the node with an empty log and rebuild it from its peers): an error, not
/// a verdict. The server's default path, absent, says where it was looked
/// for and how to give the right one.
pub(crate) fn must_exist(p: &Path, opts: &NodeOptions) -> crate::error::Result<()> {
    match std::fs::metadata(p) {
        Ok(_) => Ok(()),
        Err(source)
            if source.kind() == std::io::ErrorKind::NotFound
                && opts.raft_log.is_none()
                && opts.cluster_log_path.is_none()
                && opts.server_default =>
        {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| ".".into());
            Err(crate::error::Error::Usage(format!(
                "{}: no Raft log there. The configuration file sets no cluster log_path, so the log is where the server puts it by default: <cluster id>/<node id>/<cluster id>/raft.log under its working directory (this run's is {cwd}). Run stanctl from the server's working directory, or give --cluster-log-path DIR (the server's -cluster_log_path) or --raft-log FILE",
                p.display()
            )))
        }
        Err(source) => Err(crate::error::Error::Io {
            path: p.to_path_buf(),
            source,
        }),
    }
}
