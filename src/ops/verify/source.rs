//! The records of one slice as verify's steps pull them from the scanner:
//! one at a time, in file order, none kept but a window around the lookup
//! in progress. Whatever verify learns of the data file as a whole (how many
//! records, their first and last sequence, whether they are consecutive) is
//! gathered as the records go by, and the nonce runs go to the reuse check
//! as they settle. Verify's memory per slice is then this window, not the
//! slice: see `WINDOW_SLACK`.

use super::*;
use crate::crypto::nonce::NonceRun;
use crate::ops::scan::SliceScanner;
use std::collections::VecDeque;

/// Nonce runs a slice hands to the reuse check at a time.
const NONCE_BATCH: usize = 4096;

/// Bytes of the data file kept examined beyond the read-ahead's span (see
/// `Source::find`).
pub(super) const WINDOW_SLACK: u64 = 64 << 10;

/// Where the settled nonce runs of a slice go (the channel's reuse check).
pub(super) type NonceOut<'n> = &'n (dyn Fn(&[NonceRun]) -> std::io::Result<()> + Sync);

pub(super) struct Source<'a, 'n> {
    sc: SliceScanner<'a>,
    nonces: NonceOut<'n>,
    nonce_err: Option<std::io::Error>,
    /// Examined records kept for lookups, in file order.
    window: VecDeque<RecordInfo>,
    /// Records let go from the window's front so far: `window[i]` is the
    /// `popped + i`th record kept.
    popped: u64,
    /// The record after the one `find` returned last (counted as `popped`):
    /// lookups mostly go forward one record at a time, so it is tried before
    /// a binary search of the window (tens of thousands of tiny records).
    hint: u64,
    /// Offset of the last record pulled.
    frontier: Option<u64>,
    done: bool,
    /// Records pulled so far.
    pub(super) pulled: u64,
    /// Sequence of the first and of the last record (0 for a record that
    /// does not decode, as the scanner says).
    pub(super) first_seq: Option<u64>,
    pub(super) last_seq: Option<u64>,
    /// Whether every record's sequence is the previous one's plus one.
    pub(super) consecutive: bool,
    /// (position, its record's sequence) for one position asked in advance.
    pub(super) noted: Option<(u64, Option<u64>)>,
}

impl<'a, 'n> Source<'a, 'n> {
    pub(super) fn new(sc: SliceScanner<'a>, nonces: NonceOut<'n>) -> Self {
        Source {
            sc,
            nonces,
            nonce_err: None,
            window: VecDeque::new(),
            popped: 0,
            hint: 0,
            frontier: None,
            done: false,
            pulled: 0,
            first_seq: None,
            last_seq: None,
            consecutive: true,
            noted: None,
        }
    }

    /// The slice's facts so far (versions and index before any pull).
    pub(super) fn scan(&self) -> &SliceScan {
        self.sc.scan()
    }

    /// The next record of the data file (not kept).
    pub(super) fn pull(&mut self) -> Option<RecordInfo> {
        if self.done {
            return None;
        }
        let Some(r) = self.sc.next_record() else {
            self.done = true;
            return None;
        };
        if let Some(p) = self.last_seq {
            self.consecutive &= r.seq == p.wrapping_add(1);
        }
        if self.first_seq.is_none() {
            self.first_seq = Some(r.seq);
        }
        self.last_seq = Some(r.seq);
        if let Some((pos, seq)) = &mut self.noted {
            if *pos == self.pulled {
                *seq = Some(r.seq);
            }
        }
        self.pulled += 1;
        self.frontier = Some(r.offset);
        if self.sc.scan().nonces.len() >= NONCE_BATCH {
            self.flush_nonces(false);
        }
        Some(r)
    }

    fn flush_nonces(&mut self, all: bool) {
        let runs = if all {
            self.sc.take_all_nonces()
        } else {
            self.sc.take_settled_nonces()
        };
        if self.nonce_err.is_none() && !runs.is_empty() {
            if let Err(e) = (self.nonces)(&runs) {
                self.nonce_err = Some(e);
            }
        }
    }

    /// The examined record at offset `at`, if the data file has one there
    /// (as the scan frames it) and it is still in the window. Records from
    /// `at - span` on are kept as the scan moves to `at`; earlier ones are
    /// let go (a lookup that goes back to them examines them again: same
    /// facts, more work). `span` is the read-ahead's reach.
    pub(super) fn find(&mut self, at: u64, span: u64) -> Option<&RecordInfo> {
        let floor = at.saturating_sub(span.saturating_add(WINDOW_SLACK));
        while self.window.front().is_some_and(|r| r.offset < floor) {
            self.window.pop_front();
            self.popped += 1;
        }
        while !self.done && self.frontier.is_none_or(|f| f < at) {
            if let Some(r) = self.pull() {
                if r.offset >= floor {
                    self.window.push_back(r);
                }
            }
        }
        // Offsets are strictly increasing (file order): the hint, when it is
        // the record at `at`, is what the search would find.
        let h = self.hint.wrapping_sub(self.popped);
        let i = match usize::try_from(h).ok().and_then(|h| self.window.get(h)) {
            Some(r) if r.offset == at => h as usize,
            _ => self.window.binary_search_by_key(&at, |r| r.offset).ok()?,
        };
        self.hint = self.popped + i as u64 + 1;
        self.window.get(i)
    }

    /// Lets go of the records before `offset` (no lookup to come needs them).
    pub(super) fn release_before(&mut self, offset: u64) {
        while self.window.front().is_some_and(|r| r.offset < offset) {
            self.window.pop_front();
            self.popped += 1;
        }
    }

    /// Reads the rest of the slice; its facts, or the error of the nonce spill.
    pub(super) fn finish(mut self) -> std::io::Result<(SliceScan, Tally)> {
        self.window.clear();
        while self.pull().is_some() {}
        self.flush_nonces(true);
        if let Some(e) = self.nonce_err {
            return Err(e);
        }
        let tally = Tally {
            records: self.pulled,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            consecutive: self.consecutive,
            noted: self.noted.and_then(|n| n.1),
        };
        Ok((self.sc.finish(), tally))
    }
}

/// What the pulls learnt of the data file as a whole.
pub(super) struct Tally {
    pub(super) records: u64,
    pub(super) first_seq: Option<u64>,
    pub(super) last_seq: Option<u64>,
    pub(super) consecutive: bool,
    /// The sequence of the record at the position noted in advance.
    pub(super) noted: Option<u64>,
}
