//! One slice: the steps of its verdict (versions, recovery, end of file,
//! lookups), each in its own module, in the order the server takes them.

use super::lookup::look_up_all;
use super::recovery::{end_of_file, index_use, recover, versions_ok};
use super::verdict::{Slice, SliceVerdict};
use super::*;

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
        dat: s.dat.clone(),
        log: Vec::new(),
        stored_plaintext: s.counts.plaintext,
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
    let used = index_use(&s, &data, &st.crc, st.file_crc);
    let Some(entries) = recover(&sl, &used, &mut v) else {
        return v;
    };
    end_of_file(&sl, &used, &mut v);
    look_up_all(&sl, ctx, &entries, &used, &mut v, scratch);
    v
}
