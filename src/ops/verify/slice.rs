//! One slice: the steps of its verdict (versions, recovery, end of file,
//! lookups), each in its own module, in the order the server takes them.
//! The records are pulled from the scanner as the steps need them (see
//! `source`): the lookups go along with the scan instead of after it, so no
//! step holds the slice's records.

use super::list::Spill;
use super::lookup::{look_up_rebuilt, look_up_trusted, rebuilt_lookup, Ents, Walk};
use super::recovery::{
    end_of_file, hidden_records, index_log, index_use, rebuild_refusal, rebuilt, versions_ok,
    IndexUse,
};
use super::source::{NonceOut, Source};
use super::verdict::{Slice, SliceVerdict};
use super::*;
use crate::ops::scan::SliceScanner;

/// The server's verdict on one slice: its files' versions, how it recovers
/// the index, what the end of its data file holds, then every lookup. The
/// slice's nonce runs go to `nonces` (the channel's reuse check).
pub(super) fn verify_slice(
    ctx: &ChannelCtx<'_>,
    scanner: SliceScanner<'_>,
    data: SliceData<'_>,
    st: &Settings,
    nonces: NonceOut<'_>,
    spill: &Spill,
) -> std::io::Result<SliceVerdict> {
    let mut scratch = Vec::new();
    let mut src = Source::new(scanner, nonces);
    let dat = src.scan().dat.clone();
    let mut v = SliceVerdict {
        first_seq: 0,
        last_seq: 0,
        delivered: Delivered::default(),
        findings: Vec::new(),
        lines: Default::default(),
        crc_tally: (0, 0),
        dat: dat.clone(),
        log: Vec::new(),
        stored_plaintext: 0,
    };
    let data = &data;
    // Versions and the index are read before any record.
    if !versions_ok(&view(&ctx.name, src.scan(), data, st), &mut v) {
        let (s, _) = src.finish()?;
        v.crc_tally = (s.counts.records, s.counts.crc_errors);
        v.stored_plaintext = s.counts.plaintext;
        return Ok(v);
    }
    let used = index_use(src.scan(), data, &st.crc, st.file_crc);
    match used {
        IndexUse::Trusted => {
            let ents = Ents::new(data.idx, &src.scan().index);
            let entries = ents.len() as u64;
            src.noted = Some((entries, None));
            let mut walk = Walk::new(&ctx.name, &dat, NotFoundRemedy::RebuildIndex, spill);
            look_up_trusted(ctx, data, st, ents, &mut src, &mut walk, &mut scratch);
            let (s, tally) = src.finish()?;
            v.crc_tally = (s.counts.records, s.counts.crc_errors);
            v.stored_plaintext = s.counts.plaintext;
            let sl = view(&ctx.name, &s, data, st);
            hidden_records(&sl, entries, (tally.noted, tally.last_seq), &mut v);
            end_of_file(&sl, ents.last().as_ref(), &mut v);
            // A rebuilt index keeps each record at its position, so removing
            // the index only helps when the data file's sequences are consecutive.
            let remedy = if tally.consecutive {
                NotFoundRemedy::RebuildIndex
            } else {
                NotFoundRemedy::GapsInDat
            };
            walk.finish(&mut v, remedy)?;
        }
        IndexUse::Rebuilt(why) => {
            index_log(&view(&ctx.name, src.scan(), data, st), why, &mut v);
            // Each record is looked up as it is read, unless one before it
            // stops the start; the lookups count only if none does.
            let mut walk = Walk::new(&ctx.name, &dat, NotFoundRemedy::GapsInDat, spill);
            let mut refusal = None;
            let mut pos = 0u64;
            while let Some(r) = src.pull() {
                if refusal.is_some() {
                    continue;
                }
                refusal = rebuild_refusal(&dat, &r, st);
                if refusal.is_none() {
                    let first = src.first_seq.unwrap_or(r.seq);
                    rebuilt_lookup(&mut walk, data, st, first, pos, r);
                    pos += 1;
                }
            }
            let (s, tally) = src.finish()?;
            v.crc_tally = (s.counts.records, s.counts.crc_errors);
            v.stored_plaintext = s.counts.plaintext;
            let sl = view(&ctx.name, &s, data, st);
            if !rebuilt(&sl, why, refusal, &mut v) {
                return Ok(v);
            }
            end_of_file(&sl, None, &mut v);
            if let (Some(first), Some(last)) = (tally.first_seq, tally.last_seq) {
                let span = (last as u128).saturating_sub(first as u128) + 1;
                if span < tally.records as u128 {
                    // The server walks only [first, last]: fewer positions
                    // than records (sequences out of order). Rare: walk again,
                    // examining the records anew.
                    walk = Walk::new(&ctx.name, &dat, NotFoundRemedy::GapsInDat, spill);
                    let n = (tally.records, first, last);
                    look_up_rebuilt(ctx, data, st, n, &mut walk, &mut scratch);
                } else {
                    walk.span(first, last);
                    let missing = span - tally.records as u128;
                    if missing > 0 {
                        let n = u64::try_from(missing).unwrap_or(u64::MAX);
                        walk.missing_past(first + tally.records, last, n, st);
                    }
                }
            }
            walk.finish(&mut v, NotFoundRemedy::GapsInDat)?;
        }
    }
    Ok(v)
}

fn view<'a>(
    ch: &'a str,
    s: &'a SliceScan,
    data: &'a SliceData<'a>,
    st: &'a Settings<'a>,
) -> Slice<'a> {
    Slice {
        ch,
        idx_file: s.idx_file.clone(),
        s,
        data,
        st,
    }
}
