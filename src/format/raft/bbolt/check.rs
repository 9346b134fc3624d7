//! Structural check of a whole file, the reader's counterpart of bbolt's
//! `tx.Check`: every page below the high-water mark is a meta page, the
//! freelist, free, or reachable exactly once; keys ascend in every bucket.

use super::bucket::{Item, Visited};
use super::error::{show_key, BoltError};
use super::read::Db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckProblem {
    /// Neither reachable nor on the freelist (bbolt: "unreachable unfreed").
    Unreachable(u64),
    /// Reachable and also on the freelist.
    ReachableFreed(u64),
    /// Two nodes claim the page (one node's overflow runs into another).
    Overlap(u64),
    /// A key not above the one before it in the same bucket.
    KeyOrder { key: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// High-water mark.
    pub pages: u64,
    pub reachable: u64,
    /// `None` when the file keeps no freelist (NoFreelistSync): then
    /// unreachable pages are free pages, not problems.
    pub free: Option<u64>,
    pub values: u64,
    pub buckets: u64,
    pub problems: Vec<CheckProblem>,
}

/// Walks every bucket and accounts for every page. Fails on the first
/// structural error the reader meets; collects page-accounting problems.
pub fn check(db: &Db) -> Result<CheckReport, BoltError> {
    let high = db.meta().pgid;
    let mut report = CheckReport {
        pages: high,
        ..CheckReport::default()
    };
    let mut visited = Visited::default();
    let mut last_keys: Vec<Option<Vec<u8>>> = vec![None];
    let mut problems = Vec::new();
    db.walk(&mut visited, |item| {
        let key = match item {
            Item::Value { key, .. } => {
                report.values += 1;
                key
            }
            Item::Bucket { key, .. } => {
                report.buckets += 1;
                key
            }
            Item::EndBucket => {
                last_keys.pop();
                return Ok::<(), BoltError>(());
            }
        };
        if let Some(Some(last)) = last_keys.last() {
            if key <= last.as_slice() {
                problems.push(CheckProblem::KeyOrder { key: show_key(key) });
            }
        }
        if let Some(slot) = last_keys.last_mut() {
            *slot = Some(key.to_vec());
        }
        if let Item::Bucket { .. } = item {
            last_keys.push(None);
        }
        Ok(())
    })?;
    report.problems = problems;

    // Mark every page each reachable node covers, overflow included. Pages
    // past the file cannot be reachable, so the map is bounded by the file.
    let in_file = db.bytes().len() / db.page_size() + 1;
    let mut owner = vec![false; usize::try_from(high).unwrap_or(usize::MAX).min(in_file)];
    mark(&mut owner, 0, &mut report.problems);
    mark(&mut owner, 1, &mut report.problems);
    let mut pages: Vec<u64> = visited.pages().iter().copied().collect();
    pages.sort_unstable();
    for id in pages {
        let (header, _) = db.page_span(id)?;
        report.reachable += 1 + header.overflow as u64;
        for p in id..=id + header.overflow as u64 {
            mark(&mut owner, p, &mut report.problems);
        }
    }
    if let Some(free) = db.freelist()? {
        let fl = db.meta().freelist;
        let (header, _) = db.page_span(fl)?;
        for p in fl..=fl + header.overflow as u64 {
            mark(&mut owner, p, &mut report.problems);
        }
        report.free = Some(free.len() as u64);
        for id in free {
            match owner.get(id as usize) {
                Some(true) => report.problems.push(CheckProblem::ReachableFreed(id)),
                Some(false) => mark(&mut owner, id, &mut report.problems),
                None => {}
            }
        }
        for (id, seen) in owner.iter().enumerate() {
            if !seen {
                report.problems.push(CheckProblem::Unreachable(id as u64));
            }
        }
    }
    Ok(report)
}

fn mark(owner: &mut [bool], id: u64, problems: &mut Vec<CheckProblem>) {
    match usize::try_from(id).ok().and_then(|i| owner.get_mut(i)) {
        Some(slot) if *slot => problems.push(CheckProblem::Overlap(id)),
        Some(slot) => *slot = true,
        None => {}
    }
}
