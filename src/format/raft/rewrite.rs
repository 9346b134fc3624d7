//! Rewrites a Raft log into a new bbolt file: same buckets, keys, values and
//! sequences, except the Data of the entries the caller changes. Only the
//! Data value's bytes change within an entry (header re-chosen as
//! go-msgpack would for the new length).
//!
//! The caller writes to a temporary path beside the log, then fsyncs and
//! renames it over `raft.log` while holding `RaftLogLock`.

use super::bbolt::{BoltError, Item, Visited, WriteStats, Writer};
use super::entry::{decode_entry, EntryView, RaftLog, LOGS_BUCKET};
use super::error::RaftError;
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

/// What the walk hands the writer, in key order.
enum Op<'a> {
    Enter(&'a [u8]),
    Leave(u64),
    /// A value as stored (in the source's map).
    Put(&'a [u8], &'a [u8]),
    /// A value with the Data the caller changed.
    PutNew(&'a [u8], Vec<u8>),
}

enum Msg<'a> {
    Ops(Vec<Op<'a>>),
    /// The walk is complete: write the rest and the metas.
    Finish {
        root_sequence: u64,
        txid: u64,
    },
}

/// Ops per batch, and bytes of changed values per batch: a few batches
/// are in flight at most (`QUEUE`), so memory stays small.
const BATCH_OPS: usize = 512;
const BATCH_BYTES: usize = 256 << 10;
const QUEUE: usize = 4;

/// Why the walk stopped early.
enum Halt<E> {
    Raft(RaftError),
    Caller(E),
    /// The writer stopped (its error is what it returns).
    WriterGone,
}

impl<E> From<BoltError> for Halt<E> {
    fn from(e: BoltError) -> Self {
        Halt::Raft(RaftError::from(e))
    }
}

/// Two threads: this one walks the source and calls `f` (decode, open,
/// seal, splice), a second one builds and writes the pages (`Writer`:
/// copies and write(2)), so the two halves of the work overlap. The
/// writer gets the same calls in the same order as one thread would make
/// them: the bytes are the same.
fn write<E, F>(src: &RaftLog, w: Writer, f: &mut F) -> Result<RewriteStats, E>
where
    E: From<RaftError>,
    F: FnMut(&EntryView<'_>, &mut Vec<u8>) -> Result<DataEdit, E>,
{
    let db = src.db();
    let bolt = |e: BoltError| E::from(RaftError::from(e));
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg<'_>>(QUEUE);
        let writer = scope.spawn(move || -> Result<Option<WriteStats>, BoltError> {
            let mut w = w;
            for msg in rx {
                match msg {
                    Msg::Ops(ops) => {
                        for op in ops {
                            match op {
                                Op::Enter(key) => w.enter(key)?,
                                Op::Leave(seq) => w.leave(seq)?,
                                Op::Put(key, value) => w.put(key, value)?,
                                Op::PutNew(key, value) => w.put(key, &value)?,
                            }
                        }
                    }
                    Msg::Finish {
                        root_sequence,
                        txid,
                    } => return w.finish(root_sequence, txid).map(Some),
                }
            }
            // The walk stopped: nothing is finished.
            Ok(None)
        });
        let mut stats = RewriteStats::default();
        // (key, sequence) of each open bucket, outermost first.
        let mut path: Vec<(&[u8], u64)> = Vec::new();
        let mut data = Vec::new();
        let mut visited = Visited::default();
        let mut batch: Vec<Op<'_>> = Vec::with_capacity(BATCH_OPS);
        let mut batch_bytes = 0usize;
        let walked = db.walk(&mut visited, |item| -> Result<(), Halt<E>> {
            match item {
                Item::Bucket { key, bucket } => {
                    if path.len() == 1 && path[0].0 == LOGS_BUCKET {
                        return Err(Halt::Raft(RaftError::NestedBucket {
                            key: super::bbolt::error::show_key(key),
                        }));
                    }
                    batch.push(Op::Enter(key));
                    path.push((key, bucket.sequence));
                }
                Item::EndBucket => {
                    let (_, seq) = path.pop().unwrap_or_default();
                    batch.push(Op::Leave(seq));
                }
                Item::Value { key, value } => {
                    let mut op = Op::Put(key, value);
                    if path.len() == 1 && path[0].0 == LOGS_BUCKET {
                        let view =
                            decode_entry(key, value).map_err(|b| Halt::Raft(b.to_error()))?;
                        stats.entries += 1;
                        data.clear();
                        if f(&view, &mut data).map_err(Halt::Caller)? == DataEdit::Replace {
                            let mut out = Vec::with_capacity(value.len() + 16);
                            splice_data(value, &view.record, &data, &mut out).map_err(
                                |source| {
                                    Halt::Raft(RaftError::Entry {
                                        index: view.index,
                                        source,
                                    })
                                },
                            )?;
                            stats.replaced += 1;
                            batch_bytes += out.len();
                            op = Op::PutNew(key, out);
                        }
                    }
                    batch.push(op);
                }
            }
            if batch.len() >= BATCH_OPS || batch_bytes >= BATCH_BYTES {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_OPS));
                batch_bytes = 0;
                tx.send(Msg::Ops(full)).map_err(|_| Halt::WriterGone)?;
            }
            Ok(())
        });
        let walked = walked.and_then(|()| {
            let meta = db.meta();
            tx.send(Msg::Ops(std::mem::take(&mut batch)))
                .and_then(|()| {
                    tx.send(Msg::Finish {
                        root_sequence: meta.root_sequence,
                        txid: meta.txid,
                    })
                })
                .map_err(|_| Halt::WriterGone)
        });
        drop(tx);
        let written = match writer.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match (walked, written) {
            (Ok(()), Ok(Some(bolt_stats))) => {
                stats.bolt = bolt_stats;
                Ok(stats)
            }
            (Ok(()), Ok(None)) => Err(bolt(BoltError::Misuse("writer ended early"))),
            (Ok(()) | Err(Halt::WriterGone), Err(e)) => Err(bolt(e)),
            (Err(Halt::WriterGone), Ok(_)) => Err(bolt(BoltError::Misuse("writer ended early"))),
            (Err(Halt::Raft(e)), _) => Err(E::from(e)),
            (Err(Halt::Caller(e)), _) => Err(e),
        }
    })
}
