//! `verify`'s human output and `--list`.

use super::{align_numbers, table as new_table};
use crate::ops::verify::{Severity, Verdict, VerifyReport};
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
    r.lines.iter().try_for_each(|l| writeln!(out, "{l}"))
}

pub fn table(r: &VerifyReport, out: &mut impl Write) -> io::Result<()> {
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
        ),
        Verdict::Ok => format!(
            "VERDICT: OK: all {} message(s) will be delivered as plaintext ({} empty)",
            t.messages, t.empty
        ),
    };
    writeln!(out, "{verdict}")?;
    let s = &r.settings;
    writeln!(
        out,
        "Settings: encryption {}{}",
        if s.encryption { "on" } else { "off" },
        match (&s.key, s.encryption) {
            (Some(k), true) => format!(
                ", key from {k}; the cipher ({}) only chooses how new messages are written",
                s.cipher.name()
            ),
            _ => String::new(),
        }
    )?;
    writeln!(
        out,
        "          CRC polynomial {}, truncate-on-EOF {}",
        s.crc_poly,
        if s.truncate_on_eof { "on" } else { "off" }
    )?;
    let mut tb = new_table(&[
        "Channel",
        "First",
        "Last",
        "Msgs",
        "Plaintext",
        "Empty",
        "Ciphertext",
        "Fail",
        "Subs",
    ]);
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
            d.failed.to_string(),
            c.subscriptions.to_string(),
        ]);
    }
    align_numbers(&mut tb, 1);
    writeln!(out, "{tb}")?;
    // Findings as a list: a table with sentences in two columns is
    // unreadable at terminal width.
    if !r.findings.is_empty() {
        writeln!(out, "Findings ({}):", r.findings.len())?;
        for f in &r.findings {
            let mut head = format!("  {:<14}", severity_label(f.severity));
            if let Some(c) = &f.channel {
                head.push_str(&format!(" {c}"));
            }
            match (f.first_seq, f.last_seq) {
                (Some(a), Some(b)) if a == b => head.push_str(&format!(" seq {a}")),
                (Some(a), Some(b)) => {
                    head.push_str(&format!(" seqs {a}-{b} ({} messages)", f.count))
                }
                _ => {}
            }
            if let Some(file) = &f.file {
                head.push_str(&format!("  {file}"));
                if let Some(o) = f.offset {
                    head.push_str(&format!(" offset {o}"));
                }
            }
            writeln!(out, "{head}")?;
            writeln!(out, "      what: {}", f.what)?;
            writeln!(out, "      fix:  {}", f.remedy)?;
        }
        // The verdict again, where the eye ends up.
        writeln!(out, "{verdict}")?;
    }
    Ok(())
}
