//! The `--list` printer for Raft log lines, in the reference server's
//! conformance format (fixtures/clustered/README.md). Operations return
//! facts; only this module turns them into text.

use crate::crypto::raft::{serve, RaftKey, Served};
use crate::format::raft::entry::{BadEntry, EntryView, RaftLog};
use crate::format::raft::error::RaftError;
use crate::format::raft::time::rfc3339_nano;
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `RAFTLOG\tfirst=<i>\tlast=<i>` (0 and 0 when empty).
pub fn raftlog_line(range: Option<(u64, u64)>) -> String {
    let (f, l) = range.unwrap_or((0, 0));
    format!("RAFTLOG\tfirst={f}\tlast={l}")
}

/// `LOG <index> ok <term> <type> <len> <sha256 of served Data> <AppendedAt>`
/// or `LOG <index> err <server's error text>`.
pub fn log_line(view: &EntryView<'_>, key: Option<&RaftKey>, scratch: &mut Vec<u8>) -> String {
    let i = view.index;
    match serve(view, key, scratch) {
        Err(e) => format!("LOG\t{i}\terr\t{}", super::words::serve_error(&e)),
        Ok(s) => {
            let data: &[u8] = match s {
                Served::AsStored => view.data(),
                Served::Opened(_) => scratch,
            };
            // go's zero time prints as 0001-01-01T00:00:00Z.
            let at = view
                .record
                .appended_at
                .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339_nano);
            format!(
                "LOG\t{i}\tok\t{}\t{}\t{}\t{}\t{at}",
                view.term(),
                view.log_type(),
                data.len(),
                hex(&Sha256::digest(data)),
            )
        }
    }
}

/// Gaps longer than this print as one line (hostile keys could otherwise
/// ask for 2^64 lines).
pub const MAX_GAP_LINES: u64 = 1000;

/// Every line the reference dump prints for a log: RAFTLOG, one LOG per
/// index from first to last (`log not found` for a gap), and CONF
/// CurrentTerm, each handed to `emit` as it is made. One pass over `logs`
/// in key order.
pub fn for_each_line(
    log: &RaftLog,
    key: Option<&RaftKey>,
    mut emit: impl FnMut(String),
) -> Result<(), RaftError> {
    let range = log.index_range()?;
    emit(raftlog_line(range));
    let mut scratch = Vec::new();
    let mut next = range.map_or(0, |(first, _)| first);
    let gap = |emit: &mut dyn FnMut(String), from: u64, to: u64| {
        if to - from >= MAX_GAP_LINES {
            emit(format!("LOG\t{from}-{}\terr\tlog not found", to - 1));
        } else {
            (from..to).for_each(|i| emit(format!("LOG\t{i}\terr\tlog not found")));
        }
    };
    log.entries(|e| {
        let index = match &e {
            Ok(v) => Some(v.index),
            Err(BadEntry::Value { index, .. }) => Some(*index),
            Err(_) => None,
        };
        // Keys that are not 8-byte indexes are never served.
        let Some(i) = index else {
            return Ok::<(), RaftError>(());
        };
        if i > next {
            gap(&mut emit, next, i);
        }
        next = i.saturating_add(1);
        emit(match e {
            Ok(view) => log_line(&view, key, &mut scratch),
            Err(bad) => format!("LOG\t{i}\terr\t{}", bad.to_error()),
        });
        Ok(())
    })?;
    emit(match log.stable_u64(b"CurrentTerm") {
        Ok(Some(t)) => format!("CONF\tCurrentTerm\t{t}\t<nil>"),
        Ok(None) => "CONF\tCurrentTerm\t0\tnot found".to_string(),
        Err(e) => format!("CONF\tCurrentTerm\t0\t{e}"),
    });
    Ok(())
}

/// `for_each_line` collected (tests, small logs).
pub fn list_lines(log: &RaftLog, key: Option<&RaftKey>) -> Result<Vec<String>, RaftError> {
    let mut out = Vec::new();
    for_each_line(log, key, |l| out.push(l))?;
    Ok(out)
}
