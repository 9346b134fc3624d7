//! The operations. Each takes options, a key set and a progress sink and
//! returns a typed report; none prints, parses arguments or picks an exit code.

use std::path::PathBuf;

pub mod archived;
pub mod inspect;
pub mod rewrite;
pub mod scan;
pub mod spill;
pub mod verify;

/// Where an operation reports its progress and what the operator should know
/// while it runs. Called from worker threads.
pub trait Sink: Sync {
    /// A phase begins that will process `total` bytes.
    fn start(&self, _phase: Phase, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
    fn warn(&self, _w: Warning) {}
    /// The operator asked to stop (SIGINT/SIGTERM). A rewrite checks this
    /// between slices while it writes (`Phase::Write`) or stages
    /// (`Phase::CheckAndStage`): the slices in hand are finished, no new
    /// one starts.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A phase's progress, told to a sink in batches (one `advance` per MiB,
/// not one per item). Dropping it tells the rest; a meter made by
/// [`Meter::phase`] also ends the phase (`Sink::finish`).
pub(crate) struct Meter<'a> {
    sink: &'a dyn Sink,
    pending: u64,
    finish: bool,
}

impl<'a> Meter<'a> {
    const BATCH: u64 = 1 << 20;

    /// Starts `phase` of `total` bytes; the drop finishes it.
    pub(crate) fn phase(sink: &'a dyn Sink, phase: Phase, total: u64) -> Meter<'a> {
        sink.start(phase, total);
        Meter {
            sink,
            pending: 0,
            finish: true,
        }
    }

    /// Counts into a phase the caller started and finishes.
    pub(crate) fn within(sink: &'a dyn Sink) -> Meter<'a> {
        Meter {
            sink,
            pending: 0,
            finish: false,
        }
    }

    pub(crate) fn add(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= Self::BATCH {
            self.sink.advance(std::mem::take(&mut self.pending));
        }
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        if self.pending > 0 {
            self.sink.advance(self.pending);
        }
        if self.finish {
            self.sink.finish();
        }
    }
}

/// A sink that drops everything (tests, library callers).
pub struct Silent;
impl Sink for Silent {}

/// The three rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Encrypt,
    Decrypt,
    Rekey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Inspect,
    Verify,
    /// A rewrite's check pass.
    Check,
    /// A one-pass rewrite's check, which stages the converted slices as it
    /// judges them (under the output, or in place in each channel's
    /// staging directory): it writes (only there), so a stop is asked for,
    /// not forced, and what was staged is removed.
    CheckAndStage(Operation, StagedIn),
    /// A rewrite's write pass.
    Write(Operation),
}

/// Where a check stages the slices: a one-pass check, or `--keep-damaged`'s
/// guard (which writes the salvaged store to the output, or to a scratch
/// copy, and checks it before the write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagedIn {
    /// `--output DIR`: under `DIR/.stanctl-staging`.
    Output,
    /// `--one-pass` in place: in each channel's `.stanctl-staging`.
    Store,
    /// `--keep-damaged` in place: its guard writes a scratch copy of the
    /// store in `$TMPDIR` and checks it (the store's files are not written).
    Scratch,
    /// A Raft log rewritten in place: its check writes the new log as
    /// `raft.log.stanctl-tmp` beside it.
    RaftLog,
}

/// Something an operation could not do as well as it wanted, without failing.
#[derive(Debug)]
pub enum Warning {
    /// A rewritten file could not be given its original owner.
    OwnerNotKept {
        path: PathBuf,
        uid: u32,
        gid: u32,
        error: std::io::Error,
    },
    /// With --output, a side file that is not a regular file is not copied.
    NotCopied { path: PathBuf },
    /// A configuration file read for a key (the server's `encryption_key`)
    /// that users other than its owner may read. Raised by the command
    /// layer, which reads configuration files, through the same sink.
    SecretReadableByOthers { path: PathBuf },
}

/// Bytes of all slice files, for a progress total.
pub fn store_bytes(layout: &crate::format::layout::StoreLayout) -> u64 {
    let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    layout
        .channels
        .iter()
        .flat_map(|c| &c.slices)
        .map(|s| len(&s.dat) + s.idx.as_deref().map_or(0, len))
        .sum()
}
pub mod node;
pub mod raft_census;
