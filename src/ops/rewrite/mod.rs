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
use crate::ops::scan::{
    self, ChannelCtx, HashMode, KeyOutcome, RecordInfo, ScanConfig, SliceData, SliceScan,
};
pub use crate::ops::Operation;
use crate::ops::{Phase, Sink, Warning};
use rayon::prelude::*;
use serde::Serialize;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

mod plan;
mod report;
mod rule;
mod write;

use plan::*;
pub use report::*;
pub use rule::*;
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
}

/// A clustered node's store is refused: its Raft log holds the same
/// messages encrypted with the same key, and this tool does not rewrite it.
fn clustered_refusal(layout: &StoreLayout, crc: &Crc32) -> Result<Option<Refusal>> {
    let meta = crate::format::side::read(layout, crc)?;
    Ok(meta.clustered().then(|| Refusal {
        channel: String::new(),
        file: layout::SERVER_FILE.into(),
        seq: None,
        offset: None,
        reason: Refused::Clustered {
            node_id: meta.server.node_id.clone(),
        },
    }))
}

/// Checks every record, then (unless refused or dry-run) writes.
pub fn run(
    dir: &Path,
    keys: &[Key],
    opts: &RewriteOptions,
    sink: &dyn Sink,
) -> Result<RewriteReport> {
    let job = &Job {
        rule: opts.rule,
        keys,
        assume_plaintext: opts.assume_plaintext,
        crc: opts.crc.clone(),
        backend: opts.backend,
        sink,
    };
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
    if let Some(r) = clustered_refusal(&layout, &job.crc)? {
        let mut rep = report(&layout, job, opts, &[]);
        rep.refused.push(r);
        return Ok(rep);
    }
    // Channel keys (and the sealing key's nonces) derived once, for both passes.
    let sealing = job.rule != Rule::Decrypt;
    let ctxs = scan::channels(&layout, keys, job.backend, sealing);
    let plans = check(&layout, &ctxs, job, opts.output.is_none())?;
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
    sink.start(Phase::Write(job.rule.operation()), total);
    match &opts.output {
        Some(out) => write_output(&layout, &ctxs, job, &plans, out)?,
        None => write_in_place(&layout, &ctxs, job, &plans)?,
    }
    sink.finish();
    Ok(report)
}

fn report(
    layout: &StoreLayout,
    job: &Job,
    opts: &RewriteOptions,
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
