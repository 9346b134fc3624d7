//! Damage found on disk, as typed facts: which file, where, what. The words
//! for each kind are in `report::words`.

use super::index::IndexEntry;
use super::proto::ProtoError;
use super::record::FileVersion;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub channel: Option<String>,
    pub file: String,
    pub offset: Option<u64>,
    pub seq: Option<u64>,
    pub kind: DamageKind,
}

/// What the record and index readers meet that the server would stumble on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// A file version the server refuses (never `Supported`).
    Version(FileVersion),
    /// A record whose payload's CRC is not the header's.
    CrcMismatch {
        expected: u32,
        actual: u32,
    },
    /// A message slice record that does not decode as a message.
    BadRecord(ProtoError),
    /// A side-file record of this type that does not decode.
    BadSideRecord {
        rtype: u8,
        error: ProtoError,
    },
    /// A record cut short by the end of the file (`expected`: the payload
    /// size the header announces; None when the header itself is cut).
    TruncatedRecord {
        expected: Option<u32>,
        available: u64,
    },
    /// A header announcing a payload with no payload byte after it: the
    /// server's `io.ReadFull` returns `io.EOF`, a clean end of file.
    DanglingHeader,
    /// A zero header and `len` bytes from it to the end; `side_file` tells a
    /// side file (always truncated here) from a slice (only on a rebuild).
    ZeroPadding {
        len: u64,
        side_file: bool,
    },
    /// Non-zero bytes after a zero header.
    DataAfterPadding,
    /// A message whose sequence does not grow.
    SequenceOrder {
        seq: u64,
        prev: u64,
    },
    /// A side-file record of a type the file does not have (clients.dat:
    /// "invalid client record type"; subs.dat: "unexpected record type").
    UnknownRecordType {
        rtype: u8,
    },
    /// server.dat's record header is all zeros ("end of file padded with
    /// zeros"): unlike the other files, an error there.
    ServerDatZeroHeader,
    /// server.dat is not exactly one record long.
    ServerDatSize {
        size: u64,
        record: u64,
    },
    IndexMissing,
    IndexCrc,
    IndexPartialEntry,
    IndexPadding,
    /// The index and the data file hold different numbers of entries/records.
    IndexCount {
        entries: u64,
        records: u64,
    },
    /// The first index entry that disagrees with the record at its position.
    IndexMismatch {
        entry: IndexEntry,
        data: RecordFacts,
    },
    OrphanIndex,
    BadSliceName,
}

/// What an index entry should say about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFacts {
    pub seq: u64,
    pub offset: u64,
    pub size: u32,
    pub timestamp: i64,
}

impl DamageKind {
    /// The version damage of a file, if the server refuses its version.
    pub fn of_version(v: FileVersion) -> Option<DamageKind> {
        (v != FileVersion::Supported).then_some(DamageKind::Version(v))
    }

    /// Damage a rewrite cannot carry over faithfully.
    pub fn refuses_rewrite(&self) -> bool {
        matches!(
            self,
            DamageKind::CrcMismatch { .. }
                | DamageKind::TruncatedRecord { .. }
                | DamageKind::BadRecord(_)
                | DamageKind::BadSideRecord { .. }
                | DamageKind::UnknownRecordType { .. }
                | DamageKind::ServerDatZeroHeader
                | DamageKind::Version(_)
                | DamageKind::DataAfterPadding
                | DamageKind::DanglingHeader
        )
    }
}
