//! `verify`'s human output and `--list`.

use super::words;
use super::{align_numbers, table as new_table};
use crate::format::hex;
use crate::ops::verify::{FindingKind, Line, Outcome, Problem, Severity, Verdict, VerifyReport};
use std::io::{self, Write};

pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::WillNotStart => "WILL NOT START",
        Severity::Fails => "FAILS",
        Severity::Ciphertext => "CIPHERTEXT",
        Severity::Warning => "warning",
    }
}

/// `--list`: one line per message, in the conformance files' format.
pub fn list(r: &VerifyReport, out: &mut impl Write) -> io::Result<()> {
    r.lines.try_for_each(|l| {
        match l {
            Line::Log(l) => {
                for text in words::log_lines(l, &r.store) {
                    writeln!(out, "ERR: {text}")?;
                }
            }
            Line::Server {
                cluster_id,
                clients,
            } => writeln!(out, "SERVER\t{cluster_id}\tclients={clients}")?,
            Line::Channel {
                name,
                first,
                last,
                subs,
            } => writeln!(
                out,
                "CHANNEL\t{name}\tfirst={first}\tlast={last}\tsubs={subs}"
            )?,
            Line::Msg {
                channel,
                seq,
                outcome,
            } => match outcome {
                Outcome::Delivered {
                    len,
                    sha256,
                    subject,
                    reply,
                    timestamp,
                } => writeln!(
                    out,
                    "MSG\t{channel}\t{seq}\tok\t{len}\t{}\t{subject}\t{reply}\t{timestamp}",
                    hex(sha256)
                )?,
                Outcome::Failed(p, len) => writeln!(
                    out,
                    "MSG\t{channel}\t{seq}\terr\t{}",
                    words::lookup_error(p, *len)
                )?,
                Outcome::NotFound => {
                    writeln!(out, "MSG\t{channel}\t{seq}\terr\tmessage not found")?
                }
            },
            Line::RecoverError(f) => match words::server_recover_error(f, &r.store) {
                Some(text) => writeln!(out, "RECOVER-ERROR\t{text}")?,
                None => writeln!(
                    out,
                    "RECOVER-ERROR\t{} ({}{})",
                    words::finding(f).0,
                    f.file.as_deref().unwrap_or("-"),
                    f.offset.map_or(String::new(), |o| format!(" offset {o}"))
                )?,
            },
        }
        Ok(())
    })
}

/// The human report: verdict, the Settings block (each setting with its
/// source), the channels, the findings.
pub fn table(
    r: &VerifyReport,
    settings: &super::settings::Block,
    out: &mut impl Write,
) -> io::Result<()> {
    let t = &r.totals;
    let verdict = match r.verdict {
        Verdict::WillNotStart => "VERDICT: WILL NOT START: the server refuses to start on this store".to_string(),
        Verdict::AtRisk => format!(
            "VERDICT: AT RISK: the server starts, but {} of {} message(s) are at risk: {} fail, {} delivered as ciphertext{}",
            t.failed.saturating_add(t.ciphertext).saturating_add(t.lost),
            t.messages.saturating_add(t.lost),
            t.failed,
            t.ciphertext,
            if t.lost > 0 { format!(", {} lost at start-up", t.lost) } else { String::new() }
        ) + &match &r.raft {
            Some(l) if l.failed + l.served_raw + l.bad > 0 => format!(
                "; the Raft log holds {} entr(ies) the node cannot apply",
                l.failed + l.served_raw + l.bad
            ),
            _ => String::new(),
        },
        Verdict::Ok => format!(
            "VERDICT: OK: all {} message(s) will be delivered as plaintext ({} empty)",
            t.messages, t.empty
        ),
    };
    writeln!(out, "{}", super::wrap(&verdict, "  "))?;
    let s = &r.settings;
    // A wrong key is one cause, not many damaged messages: say it plainly.
    let wrong_key: u64 = r
        .findings
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Delivery(Problem::WrongKey(_))))
        .map(|f| f.count)
        .sum();
    if let (Some(k), true, 0, 1..) = (&s.key, s.encryption, t.opened, wrong_key) {
        let line = format!(
            "The key ({k}) opens none of the {wrong_key} envelope(s): it is not the key that wrote them (a key file with stray whitespace at its end gives a different key)."
        );
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    super::settings::block(settings, out)?;
    let mut tb = new_table(&[
        "Channel", "First", "Last", "Msgs", "Plain", "Empty", "Cipher", "Fail", "Subs",
    ]);
    // Per-message failures presume a start: a server that will not start
    // fails none of them one by one (--json keeps the counts).
    let stops = matches!(r.verdict, Verdict::WillNotStart);
    for c in &r.channels {
        let d = &c.delivered;
        tb.add_row(vec![
            c.name.clone(),
            c.first_seq.to_string(),
            c.last_seq.to_string(),
            d.messages.to_string(),
            d.plaintext.to_string(),
            d.empty.to_string(),
            d.ciphertext.to_string(),
            if stops {
                "-".to_string()
            } else {
                d.failed.to_string()
            },
            c.subscriptions.to_string(),
        ]);
    }
    align_numbers(&mut tb, 1);
    writeln!(out, "{tb}")?;
    if stops && !r.channels.is_empty() {
        writeln!(
            out,
            "(Fail: - as the server does not start; --json counts failures after a start)"
        )?;
    }
    // What is stored in plaintext (Plain above is what is delivered so).
    let said = words::PlaintextSaid::Verify {
        encryption: s.encryption,
    };
    let plain = words::plaintext_on_disk(Some(&r.plaintext_on_disk), said);
    writeln!(out, "{}", super::wrap(&plain, "  "))?;
    // Findings as a list: a table with sentences in two columns is
    // unreadable at terminal width.
    if !r.findings.is_empty() {
        // When the server will not start, what would happen to single
        // messages after a start is beside the point (and often caused by
        // the same mistake): the reasons it will not start come alone.
        let stops = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::WillNotStart)
            .count();
        let shown: Vec<_> = r
            .findings
            .iter()
            .filter(|f| stops == 0 || f.severity == Severity::WillNotStart)
            .collect();
        writeln!(out, "Findings ({}):", shown.len())?;
        for f in shown {
            let mut head = format!("  {:<14}", severity_label(f.severity));
            let (unit, units) = match f.kind {
                crate::ops::verify::FindingKind::Raft(_) => ("entry", "entries"),
                _ => ("seq", "seqs"),
            };
            if let Some(c) = &f.channel {
                head.push_str(&format!(" {c}"));
            }
            match (f.first_seq, f.last_seq) {
                (Some(a), Some(b)) if a == b => head.push_str(&format!(" {unit} {a}")),
                (Some(a), Some(b)) => head.push_str(&format!(
                    " {units} {a}-{b} ({} {})",
                    f.count,
                    if unit == "seq" { "messages" } else { "entries" }
                )),
                _ => {}
            }
            if let Some(file) = &f.file {
                // A problem that runs on into the next slices names its first.
                match file.strip_suffix(" ...") {
                    Some(first) => head.push_str(&format!("  from {first} on (several slices)")),
                    None => head.push_str(&format!("  {file}")),
                }
                if let Some(o) = f.offset {
                    head.push_str(&format!(" offset {o}"));
                }
            }
            let (what, remedy) = words::finding(f);
            writeln!(out, "{}", super::wrap(&head, "      "))?;
            writeln!(
                out,
                "{}",
                super::wrap(&format!("      what: {what}"), "            ")
            )?;
            writeln!(
                out,
                "{}",
                super::wrap(&format!("      fix:  {remedy}"), "            ")
            )?;
        }
        let hidden = r.findings.len() - stops;
        if stops > 0 && hidden > 0 {
            let line = format!(
                "  ({hidden} other finding(s) about messages after a start are not shown: fix the above and run verify again; --json lists them all)"
            );
            writeln!(out, "{}", super::wrap(&line, "   "))?;
        }
        // The verdict again, where the eye ends up.
        writeln!(out, "{}", super::wrap(&verdict, "  "))?;
    }
    Ok(())
}
