//! The Raft log of a clustered node, rewritten with its store as one unit.
//!
//! Check: every entry of `logs` is judged by the same rule as a store
//! record (`rule::decide`); any entry the rule cannot handle refuses the
//! whole run, store included, before the log or the store changes.
//!
//! In place (not a dry run, not `--keep-damaged`), the check also writes
//! the new log as it judges, so every entry is read and opened once
//! (`check_log`): it removes a leftover `raft.log.stanctl-tmp`, judges up
//! to the first entry that changes (a log with nothing to change is only
//! read), then writes `raft.log.stanctl-tmp` (bbolt 1.3.x format, same page
//! size; only the Data of command entries changes) while judging every
//! entry, and fsyncs it. A refusal (of the log or, later, of the store), an
//! error or a stop asked for removes it (`TempLog`'s drop); the server
//! never reads that name. Then the write, while holding the server's
//! `flock` on `raft.log`:
//! 1. (two passes only: remove a leftover temp file and write it now);
//! 2. give it the mode and owner of `raft.log`, fsync it, and lock it;
//! 3. rename it over `raft.log`;
//! 4. fsync the directory.
//!
//! A stop asked for (`Sink::cancelled`: SIGINT/SIGTERM) is honoured until
//! step 3: the temp file is removed and the log is as it was. After the
//! rename the log is converted and the run goes on.
//!
//! The log is replaced before the store is written (see `super::run`). A
//! log in which nothing changes is not rewritten, so a rerun after a crash
//! at any step finds either the old log (and writes it) or the new one
//! (and leaves it), and removes a leftover temp file.
//! Nonces: `RaftKey::nonce_gen` (marker 0xF5, never one the server wrote or
//! will write), deterministic, so a rerun writes the same bytes.

use super::write::{fsync_dir, io, keep_owner, like, step};
use super::*;
use crate::crypto::nonce::{NonceGen, NonceHasher};
use crate::crypto::raft::{data_kind, seal, RaftKey};
use crate::format::raft::{rewrite_log, DataEdit, EntryView, RaftLog, RaftLogLock};
use crate::ops::node::seen_of_entry;
use crate::ops::Meter;

/// The check of a log: what would change, and what cannot be handled.
pub(super) struct LogPlan {
    pub path: PathBuf,
    /// Bytes of the entries (keys and values): the progress total.
    pub entry_bytes: u64,
    pub tally: Tally,
    pub refused: Vec<Refusal>,
    /// In place, the new log the check wrote as it judged the entries
    /// (`raft.log.stanctl-tmp`, complete and fsynced); removed when the
    /// plan is dropped unless the write renamed it over the log.
    pub built: Option<TempLog>,
    /// The operator asked to stop while the check wrote the new log: it
    /// is removed, nothing else was written.
    pub stopped: bool,
}

/// The new log a one-pass check wrote beside the old one.
pub(super) struct TempLog {
    path: PathBuf,
    renamed: bool,
}

impl Drop for TempLog {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The keys of a rewrite as the log uses them: `keys[0]` seals; for each,
/// the first key of the same material (an envelope opened by a repeated
/// key is said to open under the first, whatever the order tried).
pub(super) struct LogKeys {
    keys: Vec<RaftKey>,
    first_same: Vec<usize>,
}

pub(super) fn raft_keys(job: &Job) -> LogKeys {
    let keys: Vec<RaftKey> = job
        .keys
        .iter()
        .map(|k| RaftKey::from_key(k, job.backend))
        .collect();
    let first_same = (0..keys.len())
        .map(|i| (0..i).find(|&j| keys[j].same_key(&keys[i])).unwrap_or(i))
        .collect();
    LogKeys { keys, first_same }
}

fn refusal(path: &Path, index: Option<u64>, reason: Refused) -> Refusal {
    Refusal {
        archived: false,
        channel: String::new(),
        file: path.display().to_string(),
        seq: index,
        offset: None,
        reason,
    }
}

/// Judges entries in index order; an envelope is tried first with the key
/// that opened the previous one (`seen_of_entry`).
struct Judge<'a> {
    keys: &'a LogKeys,
    rule: Rule,
    assume_plaintext: bool,
    last: usize,
    /// The plaintext of the envelope the last `judge` opened.
    scratch: Vec<u8>,
}

impl<'a> Judge<'a> {
    fn new(keys: &'a LogKeys, job: &Job) -> Judge<'a> {
        Judge {
            keys,
            rule: job.rule,
            assume_plaintext: job.assume_plaintext,
            last: 0,
            scratch: Vec::new(),
        }
    }

    fn judge(&mut self, view: &EntryView<'_>) -> (Seen, std::result::Result<Change, Refused>) {
        let seen = seen_of_entry(
            view,
            &self.keys.keys,
            &self.keys.first_same,
            &mut self.last,
            &mut self.scratch,
        );
        (seen, decide(self.rule, seen, self.assume_plaintext))
    }
}

impl LogPlan {
    /// Counts a judged entry.
    fn count(
        &mut self,
        rule: Rule,
        index: u64,
        seen: Seen,
        decided: &std::result::Result<Change, Refused>,
    ) {
        self.tally.saw(seen);
        match decided {
            Ok(c) => {
                self.tally.count(*c);
                self.tally.kept_cipher(rule, seen, *c);
            }
            Err(r) => {
                self.tally.records += 1;
                self.refused
                    .push(refusal(&self.path, Some(index), r.clone()));
            }
        }
    }

    /// Forgets what was counted (the sizes stay).
    fn recount(&mut self) {
        let bytes = self.tally.bytes_before;
        self.tally = Tally {
            bytes_before: bytes,
            bytes_after: bytes,
            ..Tally::default()
        };
        self.refused.clear();
    }
}

/// Judges every entry of the log at `path`. With `build` (in place, not a
/// dry run) it also writes the new log, in the same pass, to
/// `raft.log.stanctl-tmp` (a leftover one is removed first): every entry
/// is opened once, and the write only renames it (`write_in_place`). The
/// new log is written from the first entry that changes on: a log in
/// which nothing changes is only read. If the log cannot be written in one
/// pass (an entry refused, one that does not decode, a write error) the
/// temp file is removed and the log is checked as without `build` (the
/// write then writes it in its own pass, and meets the same error).
pub(super) fn check_log(path: &Path, keys: &LogKeys, job: &Job, build: bool) -> Result<LogPlan> {
    let log = RaftLog::open(path)?;
    let mut plan = LogPlan {
        path: path.to_path_buf(),
        entry_bytes: log.entry_bytes()?,
        tally: Tally::default(),
        refused: Vec::new(),
        built: None,
        stopped: false,
    };
    let bytes = fs::metadata(path).map_err(io(path))?.len();
    plan.tally.bytes_before = bytes;
    plan.tally.bytes_after = bytes;
    // A log behind a symbolic link is refused in place: nothing is written.
    let build = build && !fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let phase = match build {
        true => Phase::CheckAndStage(job.rule.operation(), StagedIn::RaftLog),
        false => Phase::Check,
    };
    let mut meter = Meter::phase(job.sink, phase, plan.entry_bytes);
    let tmp = temp_path(path);
    if build && fs::symlink_metadata(&tmp).is_ok() {
        step();
        fs::remove_file(&tmp).map_err(io(&tmp))?;
    }
    // Judge until the first entry that changes (when building), so that a
    // log with nothing to change is not copied.
    let first_change = judge_log(&log, keys, job, &mut plan, &mut meter, build)?;
    let Some(first_change) = first_change else {
        return Ok(plan);
    };
    match build_log(&log, keys, job, &mut plan, &mut meter, first_change, &tmp) {
        Ok(Built::Done) if plan.refused.is_empty() => {
            plan.built = Some(TempLog {
                path: tmp,
                renamed: false,
            });
            return Ok(plan);
        }
        Ok(Built::Done) => {
            // Refused: what was written goes, the counts stand.
            fs::remove_file(&tmp).map_err(io(&tmp))?;
            return Ok(plan);
        }
        Ok(Built::Stopped) => {
            plan.stopped = true;
            return Ok(plan);
        }
        // `rewrite_log` removed the temp file.
        Err(_) => {}
    }
    // Checked as in two passes, from the start.
    plan.recount();
    let mut quiet = Meter::within(&crate::ops::Silent);
    judge_log(&log, keys, job, &mut plan, &mut quiet, false)?;
    Ok(plan)
}

/// Judges the entries into `plan`; with `stop_at_change`, stops at the
/// first that changes while nothing is refused and returns its index.
fn judge_log(
    log: &RaftLog,
    keys: &LogKeys,
    job: &Job,
    plan: &mut LogPlan,
    meter: &mut Meter<'_>,
    stop_at_change: bool,
) -> Result<Option<u64>> {
    /// Ends the walk at the first change.
    enum Walk {
        Failed(Error),
        Change(u64),
    }
    impl From<crate::format::raft::RaftError> for Walk {
        fn from(e: crate::format::raft::RaftError) -> Self {
            Walk::Failed(e.into())
        }
    }
    let mut judge = Judge::new(keys, job);
    let walked = log.entries(|e| {
        let view = match e {
            Ok(v) => v,
            Err(bad) => {
                let why = bad.to_error().to_string();
                plan.refused
                    .push(refusal(&plan.path, None, Refused::RaftEntry(why)));
                return Ok::<(), Walk>(());
            }
        };
        let (seen, decided) = judge.judge(&view);
        let changes = matches!(decided, Ok(c) if c != Change::Keep);
        if stop_at_change && changes && plan.refused.is_empty() {
            return Err(Walk::Change(view.index));
        }
        meter.add(view.size());
        plan.count(job.rule, view.index, seen, &decided);
        Ok(())
    });
    match walked {
        Ok(()) => Ok(None),
        Err(Walk::Change(i)) => Ok(Some(i)),
        Err(Walk::Failed(e)) => Err(e),
    }
}

/// How a one-pass log build ended.
enum Built {
    Done,
    Stopped,
}

/// Why a log write stopped early.
enum Stop {
    Failed(Error),
    Cancelled,
}

impl From<crate::format::raft::RaftError> for Stop {
    fn from(e: crate::format::raft::RaftError) -> Self {
        Stop::Failed(e.into())
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// What a changed entry's Data becomes.
struct Sealer<'a> {
    keys: &'a LogKeys,
    rule: Rule,
    gen: Option<NonceGen>,
    hasher: Option<NonceHasher>,
}

impl<'a> Sealer<'a> {
    fn new(keys: &'a LogKeys, job: &Job) -> Sealer<'a> {
        Sealer {
            keys,
            rule: job.rule,
            gen: keys.keys.first().map(RaftKey::nonce_gen),
            hasher: None,
        }
    }

    /// Writes into `data` the new Data of `view` as `change` says;
    /// `opened` is the plaintext the judge left for an opened envelope.
    fn convert(
        &mut self,
        view: &EntryView<'_>,
        change: Change,
        seen: Seen,
        opened: &[u8],
        data: &mut Vec<u8>,
    ) -> std::result::Result<DataEdit, Stop> {
        let changed = || {
            Stop::Failed(Error::Refused(format!(
                "raft log entry {} changed since the check",
                view.index
            )))
        };
        let plaintext: &[u8] = match (change, seen) {
            (Change::Keep, _) => return Ok(DataEdit::Keep),
            (Change::Encrypt, _) => view.data(),
            (Change::Decrypt | Change::Rekey, Seen::Opened(..)) => opened,
            (Change::Decrypt | Change::Rekey, _) => return Err(changed()),
        };
        match change {
            Change::Decrypt => data.extend_from_slice(plaintext),
            Change::Encrypt | Change::Rekey => {
                let cipher = match (self.rule, data_kind(view)) {
                    (
                        Rule::Encrypt { cipher }
                        | Rule::Rekey {
                            cipher: Some(cipher),
                        },
                        _,
                    ) => cipher,
                    (_, crate::crypto::raft::DataKind::Command(PayloadKind::Envelope(c))) => c,
                    _ => Cipher::Aes,
                };
                let (Some(gen), Some(key)) = (&self.gen, self.keys.keys.first()) else {
                    return Err(changed());
                };
                let nonce = gen.nonce_with(&mut self.hasher, cipher, view.index, plaintext);
                seal(key, cipher, &nonce, plaintext, data);
            }
            Change::Keep => {}
        }
        Ok(DataEdit::Replace)
    }
}

/// The one-pass check from the entry `first_change` on: judges every
/// entry again from the start (those before it changed nothing and were
/// counted) and writes the new log to `tmp`.
fn build_log(
    log: &RaftLog,
    keys: &LogKeys,
    job: &Job,
    plan: &mut LogPlan,
    meter: &mut Meter<'_>,
    first_change: u64,
    tmp: &Path,
) -> std::result::Result<Built, Stop> {
    let mut judge = Judge::new(keys, job);
    let mut sealer = Sealer::new(keys, job);
    // Counted up to here by `judge_log`.
    plan.recount();
    step();
    let written = rewrite_log(log, tmp, |view, data| {
        if job.sink.cancelled() {
            return Err(Stop::Cancelled);
        }
        let (seen, decided) = judge.judge(view);
        if view.index >= first_change {
            meter.add(view.size());
        }
        plan.count(job.rule, view.index, seen, &decided);
        match decided {
            Ok(change) => sealer.convert(view, change, seen, &judge.scratch, data),
            // Refused: the file is removed at the end; go on counting.
            Err(_) => Ok(DataEdit::Keep),
        }
    });
    match written {
        Ok(_) => Ok(Built::Done),
        Err(Stop::Cancelled) => Ok(Built::Stopped),
        Err(e) => Err(e),
    }
}

/// How a log write ended.
pub(super) enum LogWritten {
    /// Written (in place: the new log's lock, none when nothing changed).
    Done(Option<RaftLogLock>),
    /// Stopped as asked before the log was replaced; no temp file is left.
    Cancelled,
}

/// Writes the rewritten log to `dst` (which must not exist); on a stop
/// asked for, `dst` is removed (`rewrite_log` removes it on any error).
/// Counts into the write phase the caller started (of `plan.entry_bytes`).
fn write_log(plan: &LogPlan, keys: &LogKeys, job: &Job, dst: &Path) -> Result<LogWritten> {
    let log = RaftLog::open(&plan.path)?;
    let mut judge = Judge::new(keys, job);
    let mut sealer = Sealer::new(keys, job);
    let mut meter = Meter::within(job.sink);
    let written = rewrite_log(&log, dst, |view, data| {
        if job.sink.cancelled() {
            return Err(Stop::Cancelled);
        }
        meter.add(view.size());
        let (seen, decided) = judge.judge(view);
        let change = decided.map_err(|_| {
            Error::Refused(format!(
                "raft log entry {} changed since the check",
                view.index
            ))
        })?;
        sealer.convert(view, change, seen, &judge.scratch, data)
    });
    match written {
        Ok(_) => Ok(LogWritten::Done(None)),
        Err(Stop::Cancelled) => Ok(LogWritten::Cancelled),
        Err(Stop::Failed(e)) => Err(e),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TEMP_SUFFIX);
    PathBuf::from(s)
}

/// Replaces the log in place (steps in the module doc). Nothing to do
/// when no entry changes. A log the check wrote (`plan.built`) is only
/// made durable and renamed.
pub(super) fn write_in_place(plan: &mut LogPlan, keys: &LogKeys, job: &Job) -> Result<LogWritten> {
    let path = plan.path.clone();
    let tmp = temp_path(&path);
    if plan.built.is_none() {
        if fs::symlink_metadata(&tmp).is_ok() {
            step();
            fs::remove_file(&tmp).map_err(io(&tmp))?;
        }
        if plan.tally.changed == 0 {
            return Ok(LogWritten::Done(None));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let like = like(&path)?;
    if plan.built.is_none() {
        step();
        if let LogWritten::Cancelled = write_log(plan, keys, job, &tmp)? {
            return Ok(LogWritten::Cancelled);
        }
    }
    // From here the temp file is removed on any early return.
    // (`unwrap_or_else`: an unused guard would remove the file as it drops.)
    let mut built = plan.built.take().unwrap_or_else(|| TempLog {
        path: tmp.clone(),
        renamed: false,
    });
    step();
    let f = File::open(&tmp).map_err(io(&tmp))?;
    f.set_permissions(fs::Permissions::from_mode(like.mode()))
        .map_err(io(&tmp))?;
    keep_owner(&f, &tmp, like, job.sink);
    f.sync_all().map_err(io(&tmp))?;
    // The new file is locked before it takes the log's name.
    let lock = RaftLogLock::acquire(&tmp).map_err(Error::from)?;
    step();
    // The last point to stop: after the rename the log is converted.
    if job.sink.cancelled() {
        drop(lock);
        drop(built);
        return Ok(LogWritten::Cancelled);
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    built.renamed = true;
    fsync_dir(&dir)?;
    Ok(LogWritten::Done(Some(lock)))
}

/// Writes the rewritten log to `dst` (`--output`), creating its directory;
/// a stop asked for removes the partial `dst`.
pub(super) fn write_to(
    plan: &LogPlan,
    keys: &LogKeys,
    job: &Job,
    dst: &Path,
) -> Result<LogWritten> {
    if let Some(d) = dst.parent() {
        fs::create_dir_all(d).map_err(io(d))?;
    }
    if let LogWritten::Cancelled = write_log(plan, keys, job, dst)? {
        return Ok(LogWritten::Cancelled);
    }
    File::open(dst)
        .and_then(|f| f.sync_all())
        .map_err(io(dst))?;
    if let Some(d) = dst.parent() {
        fsync_dir(d)?;
    }
    Ok(LogWritten::Done(None))
}
