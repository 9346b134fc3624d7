//! One slice: the steps of its verdict (versions, recovery, end of file,
//! lookups), each in its own module.

use super::lookup::look_up_all;
use super::recovery::{end_of_file, index_use, recover, versions_ok};
use super::*;

/// The server's view of one slice after recovery.
pub(super) struct SliceVerdict {
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) delivered: Delivered,
    pub(super) findings: Vec<Finding>,
    /// (seq, MSG line) with --list.
    pub(super) lines: Vec<(u64, Line)>,
    /// Records scanned and records whose CRC does not match.
    pub(super) crc_tally: (u64, u64),
    pub(super) nonces: Vec<NonceRun>,
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

/// The server's verdict on one slice: its files' versions, how it recovers
/// the index, what the end of its data file holds, then every lookup.
pub(super) fn verify_slice(
    ctx: &ChannelCtx<'_>,
    mut s: SliceScan,
    data: SliceData<'_>,
    st: &Settings,
    scratch: &mut Vec<u8>,
) -> SliceVerdict {
    let mut v = SliceVerdict {
        first_seq: 0,
        last_seq: 0,
        delivered: Delivered::default(),
        findings: Vec::new(),
        lines: Vec::new(),
        crc_tally: (s.counts.records, s.counts.crc_errors),
        nonces: std::mem::take(&mut s.nonces),
    };
    let sl = Slice {
        ch: ctx.name.as_str(),
        idx_file: s.idx_file.clone(),
        s: &s,
        data: &data,
        st,
    };
    if !versions_ok(&sl, &mut v) {
        return v;
    }
    let used = index_use(&s, &data, &st.crc);
    let Some(entries) = recover(&sl, &used, &mut v) else {
        return v;
    };
    end_of_file(&sl, &used, &mut v);
    look_up_all(&sl, ctx, &entries, &used, &mut v, scratch);
    v
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
