//! What the steps of a slice's verdict share: the slice and the verdict
//! they add to.

use super::*;

/// The server's view of one slice after recovery.
pub(super) struct SliceVerdict {
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) delivered: Delivered,
    pub(super) findings: Vec<Finding>,
    /// The MSG lines with --list.
    pub(super) lines: super::list::SliceLines,
    /// Records scanned and records whose CRC does not match.
    pub(super) crc_tally: (u64, u64),
    /// The data file (relative), and the server's log lines for this slice.
    pub(super) dat: String,
    pub(super) log: Vec<LogLine>,
    /// Plaintext payloads stored in the slice (for `PlaintextOnDisk`).
    pub(super) stored_plaintext: u64,
}

pub(super) fn finding(
    sev: Severity,
    channel: &str,
    file: &str,
    offset: Option<u64>,
    kind: FindingKind,
) -> Finding {
    Finding {
        severity: sev,
        channel: Some(channel.to_string()),
        first_seq: None,
        last_seq: None,
        count: 0,
        file: Some(file.to_string()),
        offset,
        kind,
    }
}

/// What a slice's checks need to know of it.
pub(super) struct Slice<'a> {
    pub(super) ch: &'a str,
    pub(super) s: &'a SliceScan,
    pub(super) data: &'a SliceData<'a>,
    pub(super) st: &'a Settings<'a>,
    pub(super) idx_file: String,
}

pub(super) fn refuse(
    sl: &Slice<'_>,
    v: &mut SliceVerdict,
    file: &str,
    offset: Option<u64>,
    kind: FindingKind,
) {
    v.findings
        .push(finding(Severity::WillNotStart, sl.ch, file, offset, kind));
}
