//! A clustered node's Raft log in the reports: the `--list` lines of
//! verify and the section of inspect's table.

use crate::crypto::raft::RaftKey;
use crate::error::Error;
use crate::format::raft::RaftLog;
use crate::ops::node::{RaftLogInspect, RaftLogVerify};
use std::io::{self, Write};
use std::path::Path;

/// The RAFTLOG, LOG and CONF lines of the log verify read, as the server's
/// dump prints them (`fixtures/clustered/expected/*.raft.*.tsv`). A log
/// that cannot be opened prints one `RAFTLOG-ERROR` line.
pub fn list(v: &RaftLogVerify, key: Option<&RaftKey>) -> Result<(), Error> {
    let out = &mut super::buffered_stdout();
    let r = list_to(Path::new(&v.path), key, out).and_then(|()| out.flush());
    r.or_else(super::stdout_error)
}

pub fn list_to(path: &Path, key: Option<&RaftKey>, out: &mut dyn Write) -> io::Result<()> {
    let log = match RaftLog::open(path) {
        Ok(l) => l,
        Err(e) => return writeln!(out, "RAFTLOG-ERROR\t{e}"),
    };
    let mut err = Ok(());
    let r = crate::report::raft_list::for_each_line(&log, key, |l| {
        if err.is_ok() {
            err = writeln!(out, "{l}");
        }
    });
    err?;
    if let Err(e) = r {
        writeln!(out, "RAFTLOG-ERROR\t{e}")?;
    }
    Ok(())
}

/// inspect's section for one log.
pub fn inspect_section(r: &RaftLogInspect, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "Raft log {}", r.path)?;
    if let Some(e) = &r.error {
        return writeln!(out, "  cannot be read: {e}");
    }
    let c = &r.census;
    match (c.first, c.last) {
        (Some(f), Some(l)) => writeln!(out, "  indexes {f}..{l}, {} entries", c.entries)?,
        _ => writeln!(out, "  empty (no entries)")?,
    }
    writeln!(
        out,
        "  entries: {} commands, {} other (configuration, noop: never encrypted)",
        c.entries - c.not_command,
        c.not_command
    )?;
    writeln!(
        out,
        "  command data: empty {}  plaintext {}  AES {}  ChaCha {}  short {}",
        c.empty, c.plaintext, c.aes, c.chacha, c.short
    )?;
    if !r.opened_by.is_empty() {
        let per: Vec<String> = r
            .opened_by
            .iter()
            .map(|k| format!("{} {}", k.key, k.opened))
            .collect();
        writeln!(
            out,
            "  opened by: {}; unopened: {} wrong key, {} plaintext lookalike",
            per.join("  "),
            r.unopened_wrong_key,
            r.unopened_lookalike
        )?;
    }
    for n in &r.reused_nonces {
        writeln!(
            out,
            "  nonce {} used twice under {} ({}), by indexes {} and {}: breaks the secrecy of these entries; rekey the node",
            n.nonce,
            n.key.as_deref().unwrap_or("an unknown key"),
            n.cipher,
            n.indexes[0],
            n.indexes[1]
        )?;
    }
    if c.index_mismatch > 0 {
        writeln!(
            out,
            "  {} entries whose Index field disagrees with their key",
            c.index_mismatch
        )?;
    }
    if c.bad > 0 {
        writeln!(out, "  {} items of bucket logs do not decode:", c.bad)?;
        for e in &c.bad_examples {
            writeln!(out, "    {e}")?;
        }
    }
    if r.damage.is_empty() {
        writeln!(out, "  bbolt structure: ok")?;
    } else {
        writeln!(out, "  bbolt structure: {} problem(s):", r.damage.len())?;
        for d in r.damage.iter().take(10) {
            writeln!(out, "    {d}")?;
        }
    }
    Ok(())
}

/// verify's summary of a log (after a node's table, or alone).
pub fn verify_summary(v: &RaftLogVerify, out: &mut dyn Write) -> io::Result<()> {
    let range = match (v.first_index, v.last_index) {
        (Some(f), Some(l)) => format!("indexes {f}..{l}"),
        _ => "no entries".into(),
    };
    writeln!(
        out,
        "Raft log {}: {range}, {} entries: {} served, {} fail, {} envelopes served raw, {} undecodable",
        v.path, v.entries, v.served, v.failed, v.served_raw, v.bad
    )
}

/// A stand-alone log's verify: the summary, the findings, the verdict.
pub fn verify_table(
    v: &RaftLogVerify,
    verdict: crate::ops::verify::Verdict,
    settings: &super::settings::Block,
    out: &mut dyn Write,
) -> io::Result<()> {
    verify_summary(v, out)?;
    super::settings::block(settings, &mut &mut *out)?;
    for f in &v.findings {
        let (what, remedy) = super::words::finding(f);
        let at = match (f.first_seq, f.last_seq) {
            (Some(a), Some(b)) => format!(" (entries {a}-{b}, {} in all)", f.count),
            _ => String::new(),
        };
        writeln!(out, "  {what}{at}")?;
        writeln!(out, "      fix:  {remedy}")?;
    }
    let v = match verdict {
        crate::ops::verify::Verdict::Ok => "VERDICT: OK: every entry is served",
        crate::ops::verify::Verdict::AtRisk => "VERDICT: AT RISK: entries the node cannot apply",
        crate::ops::verify::Verdict::WillNotStart => {
            "VERDICT: WILL NOT START: the log cannot be read"
        }
    };
    writeln!(out, "{v}")
}
