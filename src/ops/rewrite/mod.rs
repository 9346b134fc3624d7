//! encrypt / decrypt / rekey: one record-rewriting pipeline with a rule per
//! payload.
//!
//! 1. Check: the shared scanner reads every slice and `decide` judges every
//!    record. Anything the rule cannot handle refuses the whole run before
//!    the first write.
//! 2. Write: each slice that changes is rewritten into temp files beside the
//!    originals (or into `--output`), changing only field 4 of each record as
//!    the check decided (`plan::Action`: the key that opened it, the cipher
//!    to seal with; nothing is judged again), then swapped in with an order that keeps the store readable by the
//!    server at every instant (see `swap_in`).
//!
//! With `--output`, or in place with `--one-pass`, the check also stages
//! each slice's new files as it judges the records (every envelope opened
//! once: `Stager`; in place, in each channel's `.stanctl-staging`, see
//! `stage`), and the write only moves them into place (in place, through
//! the same `swap_in`).
//!
//! Nonces come from `NonceGen` (deterministic), so a rerun after a crash
//! writes exactly the bytes an uninterrupted run would have written.

use crate::crypto::aead::{Backend, Cipher};
use crate::crypto::envelope::{self, PayloadKind, OVERHEAD};
use crate::crypto::keys::Key;
use crate::crypto::nonce::NonceOrigin;
use crate::crypto::ChannelKeys;
use crate::error::{Error, Result};
use crate::format::crc::Crc32;
use crate::format::index::{self, IndexEntry};
use crate::format::layout::{self, ChannelLayout, Mapped, SliceFiles, StoreLayout, TEMP_SUFFIX};
use crate::format::lock::{self, StoreLock};
use crate::format::proto;
use crate::format::record::{self, Event, FileVersion, Records, VERSION_LEN};
use crate::ops::node::LogLocation;
use crate::ops::scan::{
    self, ChannelCtx, HashMode, KeyOutcome, RecordInfo, ScanConfig, SliceData, SliceScan,
};
pub use crate::ops::Operation;
use crate::ops::{Phase, Sink, StagedIn, Warning};

/// With `--output DIR`, a clustered node is written as `DIR/store` (the
/// server's -dir) and `DIR/raft/<cluster id>/raft.log` (so `DIR/raft` is
/// its -cluster_log_path).
pub const NODE_STORE_DIR: &str = "store";
pub const NODE_RAFT_DIR: &str = "raft";
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod guard;
mod plan;
mod raft;
mod report;
mod rule;
mod stage;
mod write;

use plan::*;
pub use report::*;
pub use rule::*;
pub use stage::StagingSpace;
use write::*;

/// What a rewrite does and where it writes. The keys come separately:
/// for `Encrypt` and `Rekey`, `keys[0]` is the key new envelopes are sealed with.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    pub rule: Rule,
    /// Payloads that only look like envelopes are plaintext (see `decide`).
    pub assume_plaintext: bool,
    pub crc: Crc32,
    pub backend: Backend,
    /// Write a converted copy here and leave the source untouched.
    pub output: Option<PathBuf>,
    /// Check and report; write nothing.
    pub dry_run: bool,
    /// Where a clustered node's Raft log is (rewritten with the store).
    pub node: crate::ops::node::NodeOptions,
    /// Salvage (`--keep-damaged`): carry every record the rewrite cannot
    /// handle over byte for byte (a slice that cannot be framed: whole),
    /// convert the others, and list what was kept.
    pub keep_damaged: bool,
    /// In place, read the store once (`--one-pass`): the check stages every
    /// slice's new files in the store (see `stage`), which needs free space
    /// for them all. Not with `keep_damaged` (its salvage frames records
    /// after the check); `output` always reads the store once.
    pub one_pass: bool,
}

/// Checks every record, then (unless refused or dry-run) writes.
pub fn run(
    dir: &Path,
    keys: &[Key],
    opts: &RewriteOptions,
    sink: &dyn Sink,
) -> Result<RewriteReport> {
    let job = &Job::new(opts, keys, opts.keep_damaged, sink);
    if opts.one_pass && opts.keep_damaged {
        return Err(Error::Usage(
            "--one-pass cannot be combined with --keep-damaged (the salvage frames records after the check, in two passes); drop --one-pass".into(),
        ));
    }
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
    // Archived slices (`msgs.N.dat.bak`) go through the same check and write
    // as the live ones: they hold the same records under the same keys.
    let layout = StoreLayout::discover(&layout.root)?.with_archived_slices();
    // A clustered node: its Raft log is checked and written with the store.
    let meta = crate::format::side::read(&layout, &job.crc)?;
    let log_path = match crate::ops::node::locate(&meta, &opts.node) {
        LogLocation::NotClustered => None,
        LogLocation::NotGiven { node_id } => {
            let mut rep = report(&layout, job, opts, &[]);
            rep.refused.push(Refusal {
                archived: false,
                channel: String::new(),
                file: layout::SERVER_FILE.into(),
                seq: None,
                offset: None,
                reason: Refused::RaftLogNotGiven { node_id },
            });
            return Ok(rep);
        }
        LogLocation::At(p) => Some(p),
    };
    // The server's flock on raft.log: refuse when held, hold it while writing.
    let _log_lock = match &log_path {
        Some(p) => {
            crate::ops::node::must_exist(p, &opts.node)?;
            let l = crate::format::raft::RaftLogLock::acquire(p)?;
            (!opts.dry_run).then_some(l)
        }
        None => None,
    };
    // --one-pass in place: room for every slice's new files, or a refusal
    // before anything is read or written (a dry run reports it too).
    let in_store = opts.one_pass && opts.output.is_none();
    let space = match in_store {
        true => stage::space(&layout, job, log_path.as_deref())?,
        false => Vec::new(),
    };
    if let Some(short) = space.iter().find(|s| !s.fits()) {
        let mut rep = report(&layout, job, opts, &[]);
        rep.refused.push(Refusal {
            archived: false,
            channel: String::new(),
            file: short.path.clone(),
            seq: None,
            offset: None,
            reason: Refused::NoRoomToStage(short.clone()),
        });
        rep.staging_space = space;
        return Ok(rep);
    }
    let rkeys = raft::raft_keys(job);
    // In place, the log's check also writes its new copy beside it (see
    // `raft::check_log`); a refusal, or a stop asked for, removes it.
    let build_log = opts.output.is_none() && !opts.dry_run && !job.keep_damaged;
    let mut log_plan = match &log_path {
        Some(p) => Some(raft::check_log(p, &rkeys, job, build_log)?),
        None => None,
    };
    if log_plan.as_ref().is_some_and(|lp| lp.stopped) {
        return Ok(stopped_in_check(&layout, job, opts, None));
    }
    // The log's check ran as a staging phase (a signal asks it to stop):
    // honour a stop asked for during the store's check too.
    let log_staged = build_log && log_plan.is_some();
    // Channel keys (and the sealing key's nonces) derived once, for both passes.
    let sealing = job.rule != Rule::Decrypt;
    let ctxs = scan::channels(&layout, keys, job.backend, sealing);
    // One pass with --output (and in place with --one-pass): the check
    // writes each slice under a staging directory (the output's; in place,
    // each channel's) as it judges its records, so every envelope is
    // opened once; a refusal, or a stop the operator asks for during the
    // check, removes what was staged (see `Staging`). --dry-run writes
    // nothing, and --keep-damaged's salvage frames records after the
    // check: both keep the two passes.
    let one_pass = (opts.output.is_some() || in_store) && !opts.dry_run && !job.keep_damaged;
    // Started before the staging directory exists: from here a signal asks
    // the check to stop (and clean up) instead of ending the process.
    let phase = match (one_pass, in_store) {
        (true, false) => Phase::CheckAndStage(job.rule.operation(), StagedIn::Output),
        (true, true) => Phase::CheckAndStage(job.rule.operation(), StagedIn::Store),
        (false, _) => Phase::Check,
    };
    sink.start(phase, crate::ops::store_bytes(&layout));
    let mut staging = match &opts.output {
        Some(out) if one_pass => {
            clear_interrupted_output(out)?;
            Some(Staging::create(out, &layout.root)?)
        }
        None if one_pass => Some(stage::begin(&layout)?),
        _ => None,
    };
    let staged_in = staging.as_ref().and_then(|s| s.dir.clone());
    let checked = check(&layout, &ctxs, job, opts.output.is_none(), staging.as_ref())?;
    let plans = match checked {
        // A stop asked for after the last slice was checked is honoured
        // here too, before anything is moved into place.
        Some(p) if !((one_pass || log_staged) && sink.cancelled()) => p,
        _ => return Ok(stopped_in_check(&layout, job, opts, staging)),
    };
    let mut report = report(&layout, job, opts, &plans);
    report.staging_space = space;
    // With --output, a node is written as DIR/store and DIR/raft/<cluster id>/raft.log.
    let (store_out, log_out) = match (&opts.output, &log_plan) {
        (Some(out), Some(_)) => (
            Some(out.join(NODE_STORE_DIR)),
            Some(crate::format::raft::layout::raft_log_path(
                &out.join(NODE_RAFT_DIR),
                &meta.server.cluster_id,
            )),
        ),
        (out, _) => (out.clone(), None),
    };
    if let Some(lp) = &log_plan {
        report.refused.extend(lp.refused.iter().cloned());
        // In place, the rename would replace a link with a file.
        let is_link = fs::symlink_metadata(&lp.path).is_ok_and(|m| m.file_type().is_symlink());
        if opts.output.is_none() && is_link {
            report.refused.push(Refusal {
                archived: false,
                channel: String::new(),
                file: lp.path.display().to_string(),
                seq: None,
                offset: None,
                reason: Refused::Symlink,
            });
        }
        report.raft_log = Some(RaftLogReport {
            path: lp.path.display().to_string(),
            output: log_out.as_ref().map(|p| p.display().to_string()),
            tally: lp.tally.clone(),
        });
    }
    let mut checked = report.totals.clone();
    checked.add(&report.archived_totals);
    if let Some(lp) = &log_plan {
        checked.add(&lp.tally);
    }
    report.keys_opening_none = keys_opening_none(job, &checked, &report.refused);
    report.other_cipher = other_cipher(job, &checked);
    if !report.refused.is_empty() || opts.dry_run {
        return Ok(report);
    }
    // Slices the write pass will write (every slice is copied with --output).
    let slices_total = plans
        .iter()
        .flatten()
        .filter(|p| opts.output.is_some() || p.rewrite)
        .count() as u64;
    // --keep-damaged: the guard writes the salvaged store (to a scratch copy,
    // or to the store's output) and checks it before anything else is
    // written, so a refusal leaves a node's log as it was too.
    // Only records kept in live slices: the server never reads an
    // archived slice, so no verdict of its records can change.
    let kept: Vec<Kept> = layout
        .channels
        .iter()
        .zip(&plans)
        .flat_map(|(ch, ps)| ch.slices.iter().zip(ps))
        .filter(|(sf, _)| !sf.archived)
        .flat_map(|(_, p)| p.kept.iter().cloned())
        .collect();
    let mut salvaged_to_output = false;
    if !kept.is_empty() {
        let to = opts.output.as_deref().zip(store_out.as_deref());
        match salvage_guard(&layout, &ctxs, job, &plans, to, &kept)? {
            Guarded::Refused(refused) => {
                report.refused = refused;
                return Ok(report);
            }
            Guarded::Stopped => return Ok(stopped_in_check(&layout, job, opts, None)),
            Guarded::Written => salvaged_to_output = true,
            Guarded::Safe => {}
        }
    }
    // The log first: its write is one rename, and a failure there (a full
    // disk) leaves the whole node untouched. Then the store, slice by slice.
    // A crash anywhere leaves each part old or new (the store per slice);
    // a rerun of the same command skips what is done and finishes the rest.
    if let Some(s) = staging.as_mut() {
        s.commit_begins();
        // In place: the staged files reach the disk before the first swap.
        stage::make_durable(s)?;
    }
    let mut _new_log_lock = None;
    if let Some(lp) = log_plan.as_mut() {
        // Writing from here: a stop asked for is honoured at a safe point.
        // A log the check wrote is only renamed: nothing to count.
        let total = if lp.built.is_some() {
            0
        } else {
            lp.entry_bytes
        };
        sink.start(Phase::Write(job.rule.operation()), total);
        let written = match &log_out {
            Some(dst) => raft::write_to(lp, &rkeys, job, dst)?,
            None => raft::write_in_place(lp, &rkeys, job)?,
        };
        match written {
            raft::LogWritten::Done(lock) => _new_log_lock = lock,
            raft::LogWritten::Cancelled => {
                sink.finish();
                report.interrupted = Some(Interrupted {
                    slices_done: 0,
                    slices_total,
                    during: StoppedDuring::Write,
                });
                return Ok(report);
            }
        }
        if let Some(r) = report.raft_log.as_mut() {
            let written = log_out.as_ref().unwrap_or(&lp.path);
            if log_out.is_some() || lp.tally.changed > 0 {
                r.tally.slices_rewritten = 1;
                r.tally.bytes_after = fs::metadata(written).map_err(write::io(written))?.len();
            }
        }
    }
    // Bytes of the slices the bar will count (every slice is copied with --output).
    let total = plans
        .iter()
        .flatten()
        .filter(|p| opts.output.is_some() || p.rewrite)
        .map(|p| p.tally.bytes_before)
        .sum();
    if salvaged_to_output {
        // The store's output is written and checked by the guard.
        sink.finish();
        return Ok(report);
    }
    if sink.cancelled() {
        sink.finish();
        report.interrupted = Some(Interrupted {
            slices_done: 0,
            slices_total,
            during: StoppedDuring::Write,
        });
        return Ok(report);
    }
    sink.start(Phase::Write(job.rule.operation()), total);
    let slices_done = match &store_out {
        Some(out) => write_output(&layout, &ctxs, job, &plans, out, staged_in.as_deref())?,
        None => write_in_place(&layout, &ctxs, job, &plans, staging.is_some())?,
    };
    if let (None, Some(s)) = (&store_out, staging.as_mut()) {
        // Every slice swapped in (or, when stopped, old): the rest goes.
        stage::end(s)?;
    }
    sink.finish();
    if slices_done < slices_total {
        report.interrupted = Some(Interrupted {
            slices_done,
            slices_total,
            during: StoppedDuring::Write,
        });
    }
    Ok(report)
}

/// Stopped during a one-pass check, as the operator asked: what was staged
/// goes, and the output with it when this run created it (`Staging`'s drop,
/// as on a refusal); the report says nothing was written.
fn stopped_in_check(
    layout: &StoreLayout,
    job: &Job,
    opts: &RewriteOptions,
    staging: Option<Staging>,
) -> RewriteReport {
    drop(staging);
    let mut report = report(layout, job, opts, &[]);
    report.interrupted = Some(Interrupted {
        slices_done: 0,
        slices_total: layout.channels.iter().map(|c| c.slices.len() as u64).sum(),
        during: StoppedDuring::Check,
    });
    report
}

/// What `--keep-damaged`'s guard found.
enum Guarded {
    /// A kept record's verdict would change: the run refuses (the scratch
    /// copy, or the output, is removed).
    Refused(Vec<Refusal>),
    /// The output is written and checked: nothing more to do.
    Written,
    /// In place: safe to rewrite the store (the scratch copy is removed).
    Safe,
    /// The operator asked to stop: the scratch copy, or what was written
    /// to the output, is removed.
    Stopped,
}

/// Writes the salvaged store to a scratch copy (or to `output`: (the
/// output, the store's output in it: `DIR/store` for a node)), runs
/// verify's model on it and on the source, and says whether a kept
/// record's verdict would change.
///
/// A signal asks it to stop between slices and between verify's runs
/// (`Phase::CheckAndStage`, started here). The output is marked unfinished
/// (`OUT/.stanctl-staging`) until the check accepts it, so a second signal
/// or a crash leaves an output the rerun writes anew; the scratch copy is
/// `$TMPDIR/stanctl-guard-<store>`, one name per store (under its lock), so
/// the rerun removes a copy left that way.
fn salvage_guard(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    job: &Job,
    plans: &[Vec<SlicePlan>],
    output: Option<(&Path, &Path)>,
    kept: &[Kept],
) -> Result<Guarded> {
    let op = job.rule.operation();
    let at = match output {
        Some(_) => StagedIn::Output,
        None => StagedIn::Scratch,
    };
    job.sink.start(Phase::CheckAndStage(op, at), 0);
    let stop = guard::StopOnly(job.sink);
    let quiet = Job {
        rule: job.rule,
        keys: job.keys,
        assume_plaintext: job.assume_plaintext,
        crc: job.crc.clone(),
        backend: job.backend,
        keep_damaged: true,
        sink: &stop,
    };
    let (scratch, marked) = match output {
        Some((out, store_out)) => {
            clear_interrupted_output(out)?;
            let marked = Staging::create(out, &layout.root)?;
            (store_out.to_path_buf(), Some((out, marked)))
        }
        None => {
            let scratch = guard::scratch_dir(&layout.root)?;
            if fs::symlink_metadata(&scratch).is_ok() {
                fs::remove_dir_all(&scratch).map_err(write::io(&scratch))?;
            }
            (scratch, None)
        }
    };
    let outcome =
        write_output(layout, ctxs, &quiet, plans, &scratch, None).and_then(|_| {
            match stop.cancelled() {
                true => Ok(None),
                false => {
                    guard::check_kept(&layout.root, &scratch, kept, &job.crc, job.backend, &stop)
                }
            }
        });
    let discard = |marked: Option<(&Path, Staging)>| -> Result<()> {
        match marked {
            // What this run wrote to the output, then (dropping the staging)
            // the marker and the directories the run created.
            Some((out, s)) => {
                guard::empty_but_marker(out)?;
                drop(s);
                Ok(())
            }
            None => fs::remove_dir_all(&scratch).map_err(write::io(&scratch)),
        }
    };
    // A failure to write the scratch copy is the temporary directory's.
    let outcome = match outcome {
        Err(Error::Io { path, source }) if marked.is_none() && path.starts_with(&scratch) => {
            Err(guard::scratch_failed(source))
        }
        o => o,
    };
    let refused = match outcome {
        Ok(Some(r)) => r,
        Ok(None) => {
            discard(marked)?;
            job.sink.finish();
            return Ok(Guarded::Stopped);
        }
        Err(e) => {
            let _ = discard(marked);
            return Err(e);
        }
    };
    job.sink.finish();
    if !refused.is_empty() {
        discard(marked)?;
        return Ok(Guarded::Refused(refused));
    }
    match marked {
        // Checked: the output is no longer unfinished.
        Some((out, mut s)) => {
            s.commit_begins();
            let dir = out.join(STAGING_DIR);
            fs::remove_dir(&dir).map_err(write::io(&dir))?;
            fsync_dir(out)?;
            Ok(Guarded::Written)
        }
        None => {
            discard(None)?;
            Ok(Guarded::Safe)
        }
    }
}

fn report(
    layout: &StoreLayout,
    job: &Job,
    opts: &RewriteOptions,
    plans: &[Vec<SlicePlan>],
) -> RewriteReport {
    let mut totals = Tally::default();
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    let mut archived = Vec::new();
    let mut archived_totals = Tally::default();
    let channels = layout
        .channels
        .iter()
        .zip(plans)
        .map(|(ch, ps)| {
            let mut tally = Tally::default();
            for (sf, p) in ch.slices.iter().zip(ps) {
                if sf.archived {
                    archived_totals.add(&p.tally);
                    archived.push(ArchivedSlice {
                        channel: ch.display_name(),
                        file: layout::rel(&layout.root, &sf.dat),
                        index_file: sf.idx.as_ref().map(|i| layout::rel(&layout.root, i)),
                        tally: p.tally.clone(),
                    });
                } else {
                    tally.add(&p.tally);
                }
                refused.extend(p.refused.iter().map(|r| Refusal {
                    archived: sf.archived,
                    ..r.clone()
                }));
                kept.extend(p.kept.iter().map(|k| Kept {
                    archived: sf.archived,
                    ..k.clone()
                }));
            }
            totals.add(&tally);
            ChannelReport {
                name: ch.display_name(),
                tally,
            }
        })
        .collect();
    RewriteReport {
        channels,
        totals,
        refused,
        keep_damaged: opts.keep_damaged,
        kept,
        archived,
        archived_totals,
        one_pass: (opts.output.is_some() || opts.one_pass) && !opts.keep_damaged,
        ..RewriteReport::new(
            job.rule.operation(),
            layout.root.display().to_string(),
            opts.output.as_ref().map(|p| p.display().to_string()),
            opts.dry_run,
        )
    }
}

/// encrypt / decrypt / rekey of a stand-alone Raft log (no store): the
/// same rule per entry, the same check before writing, the same in-place
/// swap under the log's flock; `opts.output` is the new log FILE.
pub fn run_log(
    log: &Path,
    keys: &[Key],
    opts: &RewriteOptions,
    sink: &dyn Sink,
) -> Result<RewriteReport> {
    let job = &Job::new(opts, keys, false, sink);
    if let Some(out) = &opts.output {
        if out.exists() {
            return Err(Error::Usage(format!(
                "--output {} exists; give a new file for the rewritten log",
                out.display()
            )));
        }
    }
    let lock = crate::format::raft::RaftLogLock::acquire(log)?;
    let _lock = (!opts.dry_run).then_some(lock);
    let rkeys = raft::raft_keys(job);
    // In place, the check writes the new log as it judges (`check_log`).
    let build = opts.output.is_none() && !opts.dry_run;
    let mut plan = raft::check_log(log, &rkeys, job, build)?;
    let output = opts.output.as_ref().map(|p| p.display().to_string());
    let mut rep = RewriteReport {
        refused: plan.refused.clone(),
        keys_opening_none: keys_opening_none(job, &plan.tally, &plan.refused),
        other_cipher: other_cipher(job, &plan.tally),
        raft_log: Some(RaftLogReport {
            path: log.display().to_string(),
            output: output.clone(),
            tally: plan.tally.clone(),
        }),
        ..RewriteReport::new(
            job.rule.operation(),
            log.display().to_string(),
            output,
            opts.dry_run,
        )
    };
    let is_link = fs::symlink_metadata(log).is_ok_and(|m| m.file_type().is_symlink());
    if opts.output.is_none() && is_link {
        rep.refused.push(Refusal {
            archived: false,
            channel: String::new(),
            file: log.display().to_string(),
            seq: None,
            offset: None,
            reason: Refused::Symlink,
        });
    }
    if plan.stopped {
        // Stopped while the check wrote the new log: it is removed.
        rep.interrupted = Some(Interrupted {
            slices_done: 0,
            slices_total: 1,
            during: StoppedDuring::Check,
        });
        return Ok(rep);
    }
    if !rep.refused.is_empty() || opts.dry_run {
        return Ok(rep);
    }
    let total = if plan.built.is_some() {
        0
    } else {
        plan.entry_bytes
    };
    sink.start(Phase::Write(job.rule.operation()), total);
    let written = match &opts.output {
        Some(dst) => raft::write_to(&plan, &rkeys, job, dst)?,
        None => raft::write_in_place(&mut plan, &rkeys, job)?,
    };
    sink.finish();
    let _new_lock = match written {
        raft::LogWritten::Done(lock) => lock,
        raft::LogWritten::Cancelled => {
            // One file: nothing of it was replaced or left behind.
            rep.interrupted = Some(Interrupted {
                slices_done: 0,
                slices_total: 1,
                during: StoppedDuring::Write,
            });
            return Ok(rep);
        }
    };
    let written = opts.output.as_deref().unwrap_or(log);
    if let Some(r) = rep.raft_log.as_mut() {
        if opts.output.is_some() || plan.tally.changed > 0 {
            r.tally.slices_rewritten = 1;
            r.tally.bytes_after = fs::metadata(written).map_err(write::io(written))?.len();
        }
    }
    Ok(rep)
}
