//! Rewrites a Raft log into a new bbolt file: same buckets, keys, values and
//! sequences, except the Data of the entries the caller changes. Only the
//! Data value's bytes change within an entry (header re-chosen as
//! go-msgpack would for the new length).
//!
//! The caller writes to a temporary path beside the log, then fsyncs and
//! renames it over `raft.log` while holding `RaftLogLock`.

use super::bbolt::{BoltError, Item, Visited, WriteStats, Writer};
use super::entry::{decode_entry, EntryView, RaftLog, LOGS_BUCKET};
use super::error::{RaftError, Stop};
use super::msgpack::splice_data;
use std::path::Path;

/// The caller's decision for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataEdit {
    Keep,
    /// The new Data is in the buffer the callback was given.
    Replace,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteStats {
    pub entries: u64,
    pub replaced: u64,
    pub bolt: WriteStats,
}

/// Writes `dst` (which must not exist) from `src`, calling `f` for every
/// entry of `logs` in index order with a cleared buffer. Any entry that
/// does not decode stops the rewrite (nothing can be spliced into it).
/// On error after `dst` was created, `dst` is removed.
pub fn rewrite_log<E: From<RaftError>>(
    src: &RaftLog,
    dst: &Path,
    mut f: impl FnMut(&EntryView<'_>, &mut Vec<u8>) -> Result<DataEdit, E>,
) -> Result<RewriteStats, E> {
    let bolt = |e: BoltError| E::from(RaftError::from(e));
    // Never remove a file we did not create: a failed create returns here.
    let w = Writer::create(dst, src.db().page_size()).map_err(bolt)?;
    let r = write(src, w, &mut f);
    if r.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    r
}

fn write<E, F>(src: &RaftLog, mut w: Writer, f: &mut F) -> Result<RewriteStats, E>
where
    E: From<RaftError>,
    F: FnMut(&EntryView<'_>, &mut Vec<u8>) -> Result<DataEdit, E>,
{
    let db = src.db();
    let bolt = |e: BoltError| E::from(RaftError::from(e));
    let mut stats = RewriteStats::default();
    // (key, sequence) of each open bucket, outermost first.
    let mut path: Vec<(&[u8], u64)> = Vec::new();
    let mut data = Vec::new();
    let mut value_out = Vec::new();
    let mut visited = Visited::default();
    db.walk(&mut visited, |item| -> Result<(), Stop<E>> {
        match item {
            Item::Bucket { key, bucket } => {
                if path.len() == 1 && path[0].0 == LOGS_BUCKET {
                    return Err(Stop::Raft(RaftError::NestedBucket {
                        key: super::bbolt::error::show_key(key),
                    }));
                }
                w.enter(key)?;
                path.push((key, bucket.sequence));
            }
            Item::EndBucket => {
                let (_, seq) = path.pop().unwrap_or_default();
                w.leave(seq)?;
            }
            Item::Value { key, value } => {
                if path.len() == 1 && path[0].0 == LOGS_BUCKET {
                    let view = decode_entry(key, value).map_err(|b| Stop::Raft(b.to_error()))?;
                    stats.entries += 1;
                    data.clear();
                    if f(&view, &mut data).map_err(Stop::Caller)? == DataEdit::Replace {
                        splice_data(value, &view.record, &data, &mut value_out).map_err(
                            |source| {
                                Stop::Raft(RaftError::Entry {
                                    index: view.index,
                                    source,
                                })
                            },
                        )?;
                        stats.replaced += 1;
                        return Ok(w.put(key, &value_out)?);
                    }
                }
                w.put(key, value)?;
            }
        }
        Ok(())
    })
    .map_err(Stop::into_caller)?;
    let meta = db.meta();
    stats.bolt = w.finish(meta.root_sequence, meta.txid).map_err(bolt)?;
    Ok(stats)
}
