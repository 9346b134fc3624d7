//! Entries of the `logs` bucket: key (big-endian index) and decoded value,
//! in index order, with what the server's detection makes of their Data.

use super::bbolt::{self, BoltError, Db, Item};
use super::error::{RaftError, Stop};
use super::msgpack::{decode_log, LogRecord, MsgpackError};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const LOGS_BUCKET: &[u8] = b"logs";
/// A `logs` key: the index, big-endian.
const INDEX_KEY_LEN: usize = 8;
pub const CONF_BUCKET: &[u8] = b"conf";
pub const CHANNELS_BUCKET: &[u8] = b"channels";

/// raft v1.6.0 `LogType` numbers the server's log uses.
pub const LOG_COMMAND: u8 = 0;
pub const LOG_NOOP: u8 = 1;
pub const LOG_BARRIER: u8 = 4;
pub const LOG_CONFIGURATION: u8 = 5;

/// A Raft log file (the server's `raft.log`), open read-only.
pub struct RaftLog {
    db: Db,
    path: PathBuf,
}

/// One decoded entry.
#[derive(Debug, Clone)]
pub struct EntryView<'a> {
    /// The index the key says (the server looks entries up by key).
    pub index: u64,
    /// The whole stored value.
    pub value: &'a [u8],
    pub record: LogRecord<'a>,
}

impl<'a> EntryView<'a> {
    /// Bytes of the entry's key and value in the log, as
    /// [`RaftLog::entry_bytes`] counts them.
    pub fn size(&self) -> u64 {
        (INDEX_KEY_LEN + self.value.len()) as u64
    }

    pub fn term(&self) -> u64 {
        self.record.term
    }

    pub fn log_type(&self) -> u8 {
        self.record.log_type
    }

    pub fn appended_at(&self) -> Option<super::time::Timestamp> {
        self.record.appended_at
    }

    pub fn data(&self) -> &'a [u8] {
        self.record.data.unwrap_or(&[])
    }

    /// Where the Data value (msgpack header and payload) sits in `value`.
    pub fn data_span(&self) -> Range<usize> {
        self.record.data_span.clone()
    }

    /// The index field disagrees with the key (never written by the server).
    pub fn index_mismatch(&self) -> bool {
        self.record.index != self.index
    }

    /// A LogCommand: the only type whose Data the server encrypts. What
    /// the Data is (plaintext, envelope) is judged in `crypto::raft`.
    pub fn is_command(&self) -> bool {
        self.record.log_type == LOG_COMMAND
    }
}

/// An item of `logs` that is not a decodable entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadEntry<'a> {
    /// Key not 8 bytes: the server never looks it up.
    Key { key: &'a [u8] },
    /// A nested bucket inside `logs`.
    Bucket { key: &'a [u8] },
    /// The value does not decode.
    Value {
        index: u64,
        value: &'a [u8],
        error: MsgpackError,
    },
}

impl BadEntry<'_> {
    pub fn to_error(&self) -> RaftError {
        let show = bbolt::error::show_key;
        match self {
            BadEntry::Key { key } => RaftError::BadIndexKey { key: show(key) },
            BadEntry::Bucket { key } => RaftError::NestedBucket { key: show(key) },
            BadEntry::Value { index, error, .. } => RaftError::Entry {
                index: *index,
                source: error.clone(),
            },
        }
    }
}

pub fn index_of_key(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

/// Decodes one `logs` item.
pub fn decode_entry<'a>(key: &'a [u8], value: &'a [u8]) -> Result<EntryView<'a>, BadEntry<'a>> {
    let index = index_of_key(key).ok_or(BadEntry::Key { key })?;
    decode_value(index, value)
}

/// Decodes the value of the `logs` item at `index`.
fn decode_value(index: u64, value: &[u8]) -> Result<EntryView<'_>, BadEntry<'_>> {
    match decode_log(value) {
        Ok(record) => Ok(EntryView {
            index,
            value,
            record,
        }),
        Err(error) => Err(BadEntry::Value {
            index,
            value,
            error,
        }),
    }
}

impl RaftLog {
    pub fn open(path: &Path) -> Result<RaftLog, RaftError> {
        Ok(RaftLog {
            db: Db::open(path)?,
            path: path.to_path_buf(),
        })
    }

    pub fn from_db(db: Db, path: PathBuf) -> RaftLog {
        RaftLog { db, path }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// First and last index, as the server's `FirstIndex`/`LastIndex`
    /// (first and last key of `logs`); `None` when empty.
    pub fn index_range(&self) -> Result<Option<(u64, u64)>, RaftError> {
        let logs = self.db.top_bucket(LOGS_BUCKET)?;
        // The server reads any key with binary.BigEndian (8 bytes or panic).
        let show = bbolt::error::show_key;
        match self.db.first_last(&logs)? {
            None => Ok(None),
            Some(super::bbolt::KeyRange { first: f, last: l }) => {
                let first = index_of_key(f).ok_or(RaftError::BadIndexKey { key: show(f) })?;
                let last = index_of_key(l).ok_or(RaftError::BadIndexKey { key: show(l) })?;
                Ok(Some((first, last)))
            }
        }
    }

    /// Bytes of every item of `logs` (key and value), without decoding
    /// any: the total of a progress bar that advances by
    /// [`EntryView::size`] per entry.
    pub fn entry_bytes(&self) -> Result<u64, RaftError> {
        let logs = self.db.top_bucket(LOGS_BUCKET)?;
        let mut n = 0u64;
        self.db.for_each(&logs, |item| {
            if let Item::Value { key, value } = item {
                n += (key.len() + value.len()) as u64;
            }
            Ok::<(), BoltError>(())
        })?;
        Ok(n)
    }

    /// Every item of `logs` in key (index) order.
    pub fn entries<'a, E: From<RaftError>>(
        &'a self,
        mut f: impl FnMut(Result<EntryView<'a>, BadEntry<'a>>) -> Result<(), E>,
    ) -> Result<(), E> {
        let logs = self.db.top_bucket(LOGS_BUCKET).map_err(RaftError::from)?;
        self.db
            .for_each(&logs, |item| {
                match item {
                    Item::Value { key, value } => f(decode_entry(key, value)),
                    Item::Bucket { key, .. } => f(Err(BadEntry::Bucket { key })),
                    Item::EndBucket => Ok(()),
                }
                .map_err(Stop::Caller)
            })
            .map_err(Stop::into_caller)
    }

    /// The entry the server's `GetLog(index)` reads, if present.
    pub fn entry(
        &self,
        index: u64,
    ) -> Result<Option<Result<EntryView<'_>, BadEntry<'_>>>, RaftError> {
        let logs = self.db.top_bucket(LOGS_BUCKET)?;
        let key = index.to_be_bytes();
        Ok(self
            .db
            .get(&logs, &key)?
            .map(|value| decode_value(index, value)))
    }

    /// A `conf` value read as the server's `GetUint64` (e.g. `CurrentTerm`).
    pub fn stable_u64(&self, key: &[u8]) -> Result<Option<u64>, RaftError> {
        let conf = self.db.top_bucket(CONF_BUCKET)?;
        match self.db.get(&conf, key)? {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v)
                .map(|b| Some(u64::from_be_bytes(b)))
                .map_err(|_| RaftError::BadStableValue {
                    key: bbolt::error::show_key(key),
                    len: v.len(),
                }),
        }
    }

    /// A raw `conf` value (`LastVoteCand` is a string).
    pub fn stable(&self, key: &[u8]) -> Result<Option<&[u8]>, BoltError> {
        let conf = self.db.top_bucket(CONF_BUCKET)?;
        self.db.get(&conf, key)
    }
}
