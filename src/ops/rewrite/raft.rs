//! The Raft log of a clustered node, rewritten with its store as one unit.
//!
//! Check: every entry of `logs` is judged by the same rule as a store
//! record (`rule::decide`); any entry the rule cannot handle refuses the
//! whole run, store included, before anything is written.
//!
//! Write (in place), while holding the server's `flock` on `raft.log`:
//! 1. remove a leftover `raft.log.stanctl-tmp`;
//! 2. write the new log to `raft.log.stanctl-tmp` (bbolt 1.3.x format, same
//!    page size; only the Data of command entries changes);
//! 3. fsync it, give it the mode and owner of `raft.log`, and lock it;
//! 4. rename it over `raft.log`;
//! 5. fsync the directory.
//!
//! A stop asked for (`Sink::cancelled`: SIGINT/SIGTERM) is honoured until
//! step 4: the temp file is removed and the log is as it was. After the
//! rename the log is converted and the run goes on.
//!
//! The log is written before the store (see `super::run`). A log in which
//! nothing changes is not rewritten, so a rerun after a crash at any step
//! finds either the old log (and writes it) or the new one (and leaves it).
//! Nonces: `RaftKey::nonce_gen` (marker 0xF5, never one the server wrote or
//! will write), deterministic, so a rerun writes the same bytes.

use super::write::{fsync_dir, io, keep_owner, like, step};
use super::*;
use crate::crypto::raft::{data_kind, seal, RaftKey};
use crate::format::raft::{rewrite_log, DataEdit, RaftLog, RaftLogLock};
use crate::ops::node::seen_of_entry;
use crate::ops::Meter;

/// The check of a log: what would change, and what cannot be handled.
pub(super) struct LogPlan {
    pub path: PathBuf,
    /// Bytes of the entries (keys and values): the progress total.
    pub entry_bytes: u64,
    pub tally: Tally,
    pub refused: Vec<Refusal>,
}

pub(super) fn raft_keys(job: &Job) -> Vec<RaftKey> {
    job.keys
        .iter()
        .map(|k| RaftKey::from_key(k, job.backend))
        .collect()
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

/// Judges every entry of the log at `path`.
pub(super) fn check_log(path: &Path, keys: &[RaftKey], job: &Job) -> Result<LogPlan> {
    let log = RaftLog::open(path)?;
    let mut plan = LogPlan {
        path: path.to_path_buf(),
        entry_bytes: log.entry_bytes()?,
        tally: Tally::default(),
        refused: Vec::new(),
    };
    let bytes = fs::metadata(path).map_err(io(path))?.len();
    plan.tally.bytes_before = bytes;
    plan.tally.bytes_after = bytes;
    let mut scratch = Vec::new();
    let mut meter = Meter::phase(job.sink, Phase::Check, plan.entry_bytes);
    log.entries(|e| {
        let view = match e {
            Ok(v) => v,
            Err(bad) => {
                let why = bad.to_error().to_string();
                plan.refused
                    .push(refusal(path, None, Refused::RaftEntry(why)));
                return Ok::<(), Error>(());
            }
        };
        meter.add(view.size());
        let seen = seen_of_entry(&view, keys, &mut scratch);
        plan.tally.saw(seen);
        match decide(job.rule, seen, job.assume_plaintext) {
            Ok(c) => {
                plan.tally.count(c);
                plan.tally.kept_cipher(job.rule, seen, c);
            }
            Err(r) => {
                plan.tally.records += 1;
                plan.refused.push(refusal(path, Some(view.index), r));
            }
        }
        Ok(())
    })?;
    drop(meter);
    Ok(plan)
}

/// How a log write ended.
pub(super) enum LogWritten {
    /// Written (in place: the new log's lock, none when nothing changed).
    Done(Option<RaftLogLock>),
    /// Stopped as asked before the log was replaced; no temp file is left.
    Cancelled,
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

/// Writes the rewritten log to `dst` (which must not exist); on a stop
/// asked for, `dst` is removed (`rewrite_log` removes it on any error).
/// Counts into the write phase the caller started (of `plan.entry_bytes`).
fn write_log(plan: &LogPlan, keys: &[RaftKey], job: &Job, dst: &Path) -> Result<LogWritten> {
    let log = RaftLog::open(&plan.path)?;
    let gen = keys[0].nonce_gen();
    let mut scratch = Vec::new();
    let mut meter = Meter::within(job.sink);
    let written = rewrite_log(&log, dst, |view, data| {
        if job.sink.cancelled() {
            return Err(Stop::Cancelled);
        }
        meter.add(view.size());
        let seen = seen_of_entry(view, keys, &mut scratch);
        let change = decide(job.rule, seen, job.assume_plaintext).map_err(|_| {
            Error::Refused(format!(
                "raft log entry {} changed since the check",
                view.index
            ))
        })?;
        let plaintext: &[u8] = match (change, seen) {
            (Change::Keep, _) => return Ok::<_, Stop>(DataEdit::Keep),
            (Change::Encrypt, _) => view.data(),
            // seen_of_entry left the plaintext of what it opened in `scratch`.
            (Change::Decrypt | Change::Rekey, Seen::Opened(..)) => &scratch,
            (Change::Decrypt | Change::Rekey, _) => {
                return Err(Stop::Failed(Error::Refused(format!(
                    "raft log entry {} changed since the check",
                    view.index
                ))))
            }
        };
        match change {
            Change::Decrypt => data.extend_from_slice(plaintext),
            Change::Encrypt | Change::Rekey => {
                let cipher = match (job.rule, data_kind(view)) {
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
                let nonce = gen.nonce(cipher, view.index, plaintext);
                seal(&keys[0], cipher, &nonce, plaintext, data);
            }
            Change::Keep => {}
        }
        Ok(DataEdit::Replace)
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
/// when no entry changes.
pub(super) fn write_in_place(plan: &LogPlan, keys: &[RaftKey], job: &Job) -> Result<LogWritten> {
    let path = &plan.path;
    let tmp = temp_path(path);
    if tmp.exists() {
        step();
        fs::remove_file(&tmp).map_err(io(&tmp))?;
    }
    if plan.tally.changed == 0 {
        return Ok(LogWritten::Done(None));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let like = like(path)?;
    step();
    if let LogWritten::Cancelled = write_log(plan, keys, job, &tmp)? {
        return Ok(LogWritten::Cancelled);
    }
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
        fs::remove_file(&tmp).map_err(io(&tmp))?;
        return Ok(LogWritten::Cancelled);
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    fsync_dir(&dir)?;
    Ok(LogWritten::Done(Some(lock)))
}

/// Writes the rewritten log to `dst` (`--output`), creating its directory;
/// a stop asked for removes the partial `dst`.
pub(super) fn write_to(
    plan: &LogPlan,
    keys: &[RaftKey],
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
