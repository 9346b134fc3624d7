//! The rewrites' human output.

use super::words;
use crate::crypto::aead::Cipher;
use crate::crypto::keys::KeyOrigin;
use crate::ops::rewrite::{Operation, RewriteReport, StoppedDuring, Tally};
use std::io::{self, Write};

pub fn table(r: &RewriteReport, out: &mut impl Write) -> io::Result<()> {
    let class = match r.operation {
        Operation::Encrypt => "Encrypted",
        Operation::Decrypt => "Decrypted",
        Operation::Rekey => "Rekeyed",
    };
    let header: Vec<String> = [
        "Channel", "Records", class, "Same", "Before", "After", "Slices",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let row = |name: &str, s: &Tally| {
        vec![
            name.to_string(),
            s.records.to_string(),
            s.changed.to_string(),
            s.unchanged.to_string(),
            super::human_bytes(s.bytes_before),
            super::human_bytes(s.bytes_after),
            s.slices_rewritten.to_string(),
        ]
    };
    for c in &r.channels {
        rows.push(row(&c.name, &c.tally));
    }
    rows.push(row("total", &r.totals));
    if !r.archived.is_empty() {
        rows.push(row(words::ARCHIVED_ROW, &r.archived_totals));
    }
    for t in super::fitted_tables(&header, &rows, 1, 1) {
        writeln!(out, "{t}")?;
    }
    let legend = if r.archived.is_empty() {
        words::REWRITE_LEGEND.to_string()
    } else {
        format!("{}; {}", words::REWRITE_LEGEND, words::ARCHIVED_LEGEND)
    };
    writeln!(out, "{}", super::wrap(&format!("({legend})"), " "))?;
    let left_other_cipher = r.other_cipher.is_some();
    // Archived slices count too: a run that rewrote only those did something.
    let slices = r.totals.slices_rewritten + r.archived_totals.slices_rewritten;
    let what = match (&r.output, r.dry_run, slices) {
        (_, true, n) => format!("dry run: {n} slice(s) would be rewritten; nothing was written"),
        (Some(o), false, _) => format!("wrote a converted copy to {o}; the source is untouched"),
        (None, false, 0) if left_other_cipher => "nothing was rewritten".to_string(),
        (None, false, 0) => "nothing to do: the store is already as requested".to_string(),
        (None, false, n) if r.one_pass => format!("rewrote {n} slice(s) in place in one pass"),
        (None, false, n) => format!("rewrote {n} slice(s) in place"),
    };
    writeln!(out, "{what}")?;
    for s in &r.staging_space {
        let line = words::staging_space(s, r.dry_run);
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    if let Some(line) = archived(r) {
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    if let Some(line) = plaintext(r) {
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    raft_line(r, out)?;
    other_cipher(r, out)?;
    kept(r, out)
}

/// encrypt: the envelopes it left in the other cipher, and the one command
/// that converts them (keys named by their sources, never their bytes).
pub fn other_cipher(r: &RewriteReport, out: &mut impl Write) -> io::Result<()> {
    let Some(oc) = &r.other_cipher else {
        return Ok(());
    };
    let (cipher, other) = match oc.cipher {
        Cipher::Aes => ("AES", "CHACHA"),
        Cipher::ChaCha => ("CHACHA", "AES"),
    };
    // A stand-alone Raft log is its own "store".
    let raft = r.raft_log.as_ref().is_some_and(|l| l.path == r.store);
    let target = match (&r.output, r.dry_run) {
        (Some(o), false) => o,
        _ => &r.store,
    };
    let env = crate::crypto::keys::ENV_VAR;
    // (before the command, its key options, a note after it)
    let (pipe, keys, note) = match &oc.origin {
        KeyOrigin::File(p) => {
            let f = shell_word(&p.to_string_lossy());
            (
                String::new(),
                format!("--key-file {f} --new-key-file {f}"),
                String::new(),
            )
        }
        // The variable is rekey's old key as it is encrypt's; the new key
        // comes through a pipe (printf is a shell builtin: the key never
        // shows in the process list).
        KeyOrigin::Env => (
            format!("printf %s \"${env}\" | "),
            "--new-key-file -".to_string(),
            format!(" (with {env} set as now)"),
        ),
        KeyOrigin::CommandLine => (
            String::new(),
            "--key KEY --new-key KEY".to_string(),
            " (KEY: the key you gave with --key)".to_string(),
        ),
        KeyOrigin::Config { file, line } => (
            String::new(),
            format!(
                "--config {} --new-key-file KEYFILE",
                shell_word(&file.to_string_lossy())
            ),
            format!(
                " (KEYFILE: a file holding the encryption_key of {} line {line})",
                file.display()
            ),
        ),
    };
    let command = format!(
        "{pipe}stanctl {} rekey {} {keys} --cipher {cipher}",
        if raft { "raft" } else { "store" },
        shell_word(target)
    );
    let line = format!(
        "NOT done: {n} envelope(s) already under {key} ({origin}) are {other}, not the {cipher} asked for, and were left as they were: encrypt seals plaintext and never re-seals an envelope its key opens. To convert them to {cipher}, run `{command}`{note}.",
        n = oc.envelopes,
        key = oc.key,
        origin = oc.origin,
    );
    writeln!(out, "{}", super::wrap(&line, "  "))
}

/// The Raft log's line of a rewrite (a node's, or a stand-alone log's).
pub fn raft_line(r: &RewriteReport, out: &mut impl Write) -> io::Result<()> {
    let class = match r.operation {
        Operation::Encrypt => "Encrypted",
        Operation::Decrypt => "Decrypted",
        Operation::Rekey => "Rekeyed",
    };
    if let Some(l) = &r.raft_log {
        let done = match (r.dry_run, &l.output, l.tally.changed) {
            (true, _, 0) | (false, None, 0) => "nothing to change".to_string(),
            (true, _, _) => "would be rewritten".to_string(),
            (false, Some(o), _) => format!("written to {o}"),
            (false, None, _) => "rewritten in place".to_string(),
        };
        writeln!(
            out,
            "Raft log {}: {} entries, {} {}, {} unchanged; {} -> {} bytes; {done}",
            l.path,
            l.tally.records,
            l.tally.changed,
            class.to_lowercase(),
            l.tally.unchanged,
            l.tally.bytes_before,
            l.tally.bytes_after,
        )?;
    }
    Ok(())
}

/// `--keep-damaged`: what was carried over byte for byte, and what that means.
pub fn kept(r: &RewriteReport, out: &mut impl Write) -> io::Result<()> {
    if r.kept.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Kept byte for byte (--keep-damaged): {} item(s); {} damaged header size(s) rewritten from the index",
        r.kept.len(),
        r.totals.headers_repaired
    )?;
    for k in &r.kept {
        let at = match (k.seq, k.offset) {
            (Some(s), Some(o)) => format!("{} seq {s} (offset {o}, {} bytes)", k.file, k.len),
            (None, Some(o)) => format!("{} offset {o} ({} bytes)", k.file, k.len),
            _ => format!("{} ({} bytes)", k.file, k.len),
        };
        writeln!(out, "  - {} {at}: {}", k.channel, words::kept_item(k))?;
    }
    writeln!(
        out,
        "Note: the kept records still hold what they held: envelopes under the OLD key, plaintext, or damaged bytes. The server gives each of them the verdict it gave before (a damaged record fails as it failed; an envelope no key opened still fails). Run `stanctl store verify` with the server's settings to see them; restore them from a backup if you have one."
    )
}

/// What the run did to archived slices, if the store has any.
pub fn archived(r: &RewriteReport) -> Option<String> {
    (!r.archived.is_empty()).then(|| {
        words::archived_slices(
            r.operation,
            r.dry_run,
            !r.counts_apply(),
            r.archived.len() as u64,
            &r.archived_totals,
        )
    })
}

/// The plaintext the run leaves on disk, and where (a store's run only).
pub fn plaintext(r: &RewriteReport) -> Option<String> {
    if r.store_less() {
        return None;
    }
    let said = words::PlaintextSaid::Rewrite {
        op: r.operation,
        dry_run: r.dry_run,
        refused: !r.counts_apply(),
    };
    Some(words::plaintext_on_disk(
        r.plaintext_on_disk().as_ref(),
        said,
    ))
}

/// What an interrupted rewrite did, and the command that finishes it
/// (`rerun`: the command line as given, keys named by their sources).
pub fn interrupted(
    r: &RewriteReport,
    i: &crate::ops::rewrite::Interrupted,
    rerun: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    let op = super::operation_name(r.operation);
    // A stand-alone Raft log: one file, replaced whole or not at all.
    if r.raft_log.as_ref().is_some_and(|l| l.path == r.store) {
        let said = words::interrupted_raft_log(op, &r.store, r.output.as_deref());
        writeln!(out, "stanctl: {said}")?;
        writeln!(out, "stanctl: {}", words::TO_FINISH_RERUN)?;
        return writeln!(out, "  {rerun}");
    }
    if let StoppedDuring::Check = i.during {
        let said = match &r.output {
            Some(o) => words::interrupted_in_check(op, o, &r.store),
            None => words::interrupted_in_check_in_place(op, r.keep_damaged, r.one_pass, &r.store),
        };
        writeln!(out, "stanctl: {said}")?;
        writeln!(out, "stanctl: {}", words::TO_FINISH_RERUN)?;
        return writeln!(out, "  {rerun}");
    }
    let (done, total) = (i.slices_done, i.slices_total);
    match &r.output {
        None => {
            let said = words::interrupted_in_place(op, done, total);
            writeln!(out, "stanctl: {said}")?;
            writeln!(out, "stanctl: {}", words::TO_FINISH_RERUN_SKIPPING)?;
            writeln!(out, "  {rerun}")
        }
        Some(o) => {
            let said = words::interrupted_to_output(op, done, total, o);
            writeln!(out, "stanctl: {said}")?;
            writeln!(out, "stanctl: {}", words::TO_FINISH_DELETE_AND_RERUN)?;
            writeln!(out, "  rm -r -- {} && {rerun}", shell_word(o))
        }
    }
}

/// A word as a POSIX shell reads it back.
pub fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The warning when a finished rewrite's report could not be printed.
pub fn unprinted(r: &RewriteReport, e: &crate::error::Error) -> String {
    let done = match &r.output {
        Some(o) => format!("wrote a converted copy to {o}"),
        None => format!(
            "rewrote {} slice(s) in place",
            r.totals.slices_rewritten + r.archived_totals.slices_rewritten
        ),
    };
    format!(
        "the {} finished ({done}; {} record(s) changed), but its report could not be printed ({e}); run `stanctl store inspect` to see the result",
        super::operation_name(r.operation),
        r.totals.changed + r.archived_totals.changed
    )
}

/// Why a rewrite refused, grouped by reason (on stderr: the command fails).
pub fn refusals(r: &RewriteReport, err: &mut impl Write) {
    let _ = writeln!(
        err,
        "stanctl: refusing to {}: {} problem(s); nothing was written:",
        super::operation_name(r.operation),
        r.refused.len()
    );
    // One line per reason, then where: the same reason for 75 records is
    // one problem to act on. Every entry is in --json.
    const SHOWN: usize = 8;
    let mut i = 0;
    while i < r.refused.len() {
        let reason = words::refusal_reason(&r.refused[i]);
        let n = r.refused[i..]
            .iter()
            .take_while(|f| words::refusal_reason(f) == reason)
            .count();
        let _ = writeln!(err, "{}", super::wrap(&format!("  - {reason}"), "    "));
        let places: Vec<String> = r.refused[i..i + n]
            .iter()
            .take(SHOWN)
            .map(|f| match (f.seq, f.offset) {
                (Some(s), Some(o)) => format!("{} seq {s} (offset {o})", f.file),
                (None, Some(o)) => format!("{} offset {o}", f.file),
                (Some(i), None) => format!("{} entry {i}", f.file),
                _ => f.file.clone(),
            })
            .collect();
        let more = if n > SHOWN {
            format!(" and {} more", n - SHOWN)
        } else {
            String::new()
        };
        let _ = writeln!(
            err,
            "{}",
            super::wrap(&format!("    at {}{more}", places.join(", ")), "      ")
        );
        i += n;
    }
    if let Some(line) = plaintext(r) {
        let _ = writeln!(err, "{}", super::wrap(&format!("stanctl: {line}"), "  "));
    }
    for k in &r.keys_opening_none {
        let line = words::key_opens_none(&k.key, &k.origin, k.envelopes);
        let _ = writeln!(err, "{}", super::wrap(&format!("stanctl: {line}"), "  "));
    }
    // The way out, when there is one the tool knows.
    let wrong_key = r
        .refused
        .iter()
        .any(|f| f.reason == crate::ops::rewrite::Refused::WrongKey);
    if wrong_key && r.operation == Operation::Encrypt {
        let _ = writeln!(
            err,
            "stanctl: hint: encrypt seals with one key and keeps the envelopes already under it; to bring envelopes under other keys to this key first, run `stanctl store rekey {s} --key-file OTHER_KEY... --new-key-file KEY`, then this encrypt again",
            s = shell_word(&r.store)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::rewrite::{Interrupted, RaftLogReport};

    fn report(output: Option<&str>, raft_alone: bool) -> RewriteReport {
        let store = "/s/store".to_string();
        let mut r = RewriteReport::new(
            Operation::Encrypt,
            store.clone(),
            output.map(String::from),
            false,
        );
        r.raft_log = raft_alone.then(|| RaftLogReport {
            path: store,
            output: output.map(String::from),
            tally: Tally::default(),
        });
        r
    }

    fn said(r: &RewriteReport, during: StoppedDuring) -> String {
        let i = Interrupted {
            slices_done: 3,
            slices_total: 8,
            during,
        };
        let mut out = Vec::new();
        interrupted(r, &i, "stanctl store encrypt /s/store -k k1", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The interrupt sentences, byte for byte (they were moved to `words`
    /// unchanged; tests/operator.rs signals real runs).
    #[test]
    fn interrupted_says_what_it_said() {
        let cmd = "  stanctl store encrypt /s/store -k k1\n";
        assert_eq!(
            said(&report(None, false), StoppedDuring::Write),
            format!("stanctl: interrupted: encrypt rewrote 3 of 8 slice(s) in place and stopped between slices; every slice is either converted or as it was, the server can read the store, and no temporary file is left\nstanctl: to finish, run the same command again (it skips the finished slices):\n{cmd}")
        );
        assert_eq!(
            said(&report(Some("/o u t"), false), StoppedDuring::Write),
            "stanctl: interrupted: encrypt wrote 3 of 8 slice(s) to /o u t; the source is untouched and the copy is incomplete\nstanctl: to finish, delete the partial copy and run the same command again:\n  rm -r -- '/o u t' && stanctl store encrypt /s/store -k k1\n"
        );
        assert_eq!(
            said(&report(Some("/o"), false), StoppedDuring::Check),
            format!("stanctl: interrupted, nothing written to /o: encrypt stopped during the check and removed what it had staged; /s/store is untouched\nstanctl: to finish, run the same command again:\n{cmd}")
        );
        let mut one_pass = report(None, false);
        one_pass.one_pass = true;
        assert_eq!(
            said(&one_pass, StoppedDuring::Check),
            format!("stanctl: interrupted, nothing changed: encrypt --one-pass stopped during the check and removed what it had staged; /s/store is as it was\nstanctl: to finish, run the same command again:\n{cmd}")
        );
        // In place without --one-pass, only a node's log check writes.
        assert_eq!(
            said(&report(None, false), StoppedDuring::Check),
            format!("stanctl: interrupted, nothing changed: encrypt stopped during the check and removed the new copy of the Raft log it was writing; /s/store and its log are as they were\nstanctl: to finish, run the same command again:\n{cmd}")
        );
        assert_eq!(
            said(&report(None, true), StoppedDuring::Write),
            format!("stanctl: interrupted: raft encrypt stopped before replacing the log; /s/store is unchanged and no temporary file is left\nstanctl: to finish, run the same command again:\n{cmd}")
        );
        assert_eq!(
            said(&report(Some("/o.log"), true), StoppedDuring::Write),
            format!("stanctl: interrupted: raft encrypt stopped before finishing /o.log and removed it; /s/store is untouched\nstanctl: to finish, run the same command again:\n{cmd}")
        );
    }
}
