//! `inspect`'s human output.

use super::{align_numbers, table as new_table, words};
use crate::ops::inspect::{InspectReport, Stats};
use std::io::{self, Write};

fn stat_cells(s: &Stats, slices: Option<usize>) -> Vec<String> {
    let mut v = vec![
        s.messages.to_string(),
        s.first_seq.to_string(),
        s.last_seq.to_string(),
    ];
    if let Some(n) = slices {
        v.push(n.to_string());
    }
    v.extend([
        super::human_bytes(s.bytes),
        s.payloads.empty.to_string(),
        s.payloads.plaintext.to_string(),
        s.payloads.aes.to_string(),
        s.payloads.chacha.to_string(),
        s.payloads.short.to_string(),
    ]);
    for k in &s.opened {
        v.push(k.opened.to_string());
    }
    if let Some(u) = &s.unopened {
        v.push((u.wrong_key + u.plaintext_lookalike).to_string());
    }
    v
}

pub fn table(r: &InspectReport, by_slice: bool, out: &mut impl Write) -> io::Result<()> {
    let line = format!(
        "Store {}: cluster {:?}, {} client(s){}",
        r.store,
        r.cluster_id,
        r.clients,
        match &r.node_id {
            Some(n) => format!(", clustered node {n:?}"),
            None => String::new(),
        }
    );
    writeln!(out, "{}", super::wrap(&line, "  "))?;
    if let Some(pid) = r.locked_by_pid {
        writeln!(out, "LOCKED by a running process (pid {pid})")?;
    }
    for k in &r.keys {
        writeln!(out, "Key {} = {}", k.id, k.source)?;
    }
    let mut header: Vec<String> = if by_slice {
        vec!["Channel".into(), "Slice".into()]
    } else {
        vec!["Channel".into()]
    };
    header.extend(["Msgs", "First", "Last"].map(String::from));
    if !by_slice {
        header.push("Slices".into());
    }
    header.extend(["Bytes", "Empty", "Plain", "AES", "ChaCha", "Short"].map(String::from));
    for k in &r.keys {
        header.push(k.id.clone());
    }
    if !r.keys.is_empty() {
        header.push("Unopened".into());
    }
    let mut rows = Vec::new();
    for c in &r.channels {
        if by_slice {
            for s in &c.slices {
                let mut row = vec![c.name.clone(), s.slice.to_string()];
                row.extend(stat_cells(&s.stats, None));
                rows.push(row);
            }
        } else {
            let mut row = vec![c.name.clone()];
            row.extend(stat_cells(&c.stats, Some(c.slices.len())));
            rows.push(row);
        }
    }
    let lead = if by_slice { 2 } else { 1 };
    for t in super::fitted_tables(&header, &rows, lead, 1) {
        writeln!(out, "{t}")?;
    }

    let subs: Vec<_> = r
        .channels
        .iter()
        .flat_map(|c| c.subscriptions.iter().map(move |s| (c, s)))
        .collect();
    if !subs.is_empty() {
        let mut t = new_table(&[
            "Channel",
            "Sub",
            "Client",
            "Durable",
            "Queue",
            "Last sent",
            "Pending",
        ]);
        for (c, s) in subs {
            t.add_row(vec![
                c.name.clone(),
                s.id.to_string(),
                s.client_id.clone(),
                s.durable_name.clone(),
                s.queue_group.clone(),
                s.last_sent.to_string(),
                s.pending.to_string(),
            ]);
        }
        align_numbers(&mut t, 5);
        writeln!(out, "Subscriptions:\n{t}")?;
    }

    if !r.damage.is_empty() {
        let mut t = new_table(&["File", "Offset", "Seq", "Kind", "What"]);
        for d in &r.damage {
            t.add_row(vec![
                d.file.clone(),
                d.offset.map_or("-".into(), |o| o.to_string()),
                d.seq.map_or("-".into(), |s| s.to_string()),
                words::damage_name(&d.kind).to_string(),
                words::damage_detail(&d.kind),
            ]);
        }
        writeln!(out, "Damage:\n{t}")?;
    }
    for n in &r.reused_nonces {
        let line = format!(
            "REUSED NONCE in {} ({} {}): {} at seqs {:?}{}: a nonce used twice under one key breaks the cipher's secrecy and integrity; rekey this channel",
            n.channel,
            words::cipher_name(n.cipher),
            n.key.as_deref().unwrap_or("unknown key"),
            n.nonce,
            n.seqs,
            if n.count > 1 { format!(" (and the {} nonces after it)", n.count - 1) } else { String::new() }
        );
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    for note in &r.notes {
        let line = format!("Note: {}", words::note(note));
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    for c in &r.channels {
        if let Some(recs) = &c.records {
            writeln!(out, "Records of {}:", c.name)?;
            writeln!(out, "slice\toffset\tseq\tclass\tkey\tcrc\tlength\tsha256")?;
            recs.try_for_each(|x| {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    x.slice,
                    x.offset,
                    x.seq,
                    x.class,
                    x.key.as_deref().unwrap_or("-"),
                    if x.crc_ok { "ok" } else { "BAD" },
                    x.length,
                    x.sha256.as_deref().unwrap_or("-")
                )
            })?;
        }
    }
    let t = &r.totals;
    let enc = t.payloads.aes + t.payloads.chacha;
    let mut summary = format!(
        "Summary: {} channel(s), {} message(s) in {}: {} plaintext, {} empty, {} that the server takes for envelopes ({} AES, {} ChaCha), {} too short to be one; {} damage finding(s)",
        r.channels.len(),
        t.messages,
        super::human_bytes(t.bytes),
        t.payloads.plaintext,
        t.payloads.empty,
        enc,
        t.payloads.aes,
        t.payloads.chacha,
        t.payloads.short,
        r.damage.len()
    );
    if let Some(u) = &t.unopened {
        let opened: u64 = t.opened.iter().map(|k| k.opened).sum();
        summary.push_str(&format!(
            "; of those envelopes the keys open {opened}, {} are under another key, {} are plaintext that only looks like an envelope",
            u.wrong_key, u.plaintext_lookalike
        ));
    }
    writeln!(out, "{}", super::wrap(&summary, "  "))?;
    let envelopes = t.payloads.aes + t.payloads.chacha;
    for (k, o) in r.keys.iter().zip(&t.opened) {
        if o.opened == 0 && envelopes > 0 {
            let line = words::key_opens_none(&k.id, &k.source, envelopes);
            writeln!(out, "{}", super::wrap(&line, "  "))?;
        }
    }
    let plain = words::plaintext_on_disk(Some(&r.plaintext_on_disk), words::PlaintextSaid::Inspect);
    writeln!(out, "{}", super::wrap(&plain, "  "))?;
    if !r.damage.is_empty() {
        let (cmd, note) = verify_command(r);
        let line =
            format!("Next: run `{cmd}`{note} to see what the server will do with this damage.");
        writeln!(out, "{}", super::wrap(&line, "  "))?;
    }
    Ok(())
}

/// The verify command for this store, with the key the server runs with
/// (verify takes the server's one key: of several, the operator picks it),
/// and a note on it.
fn verify_command(r: &InspectReport) -> (String, String) {
    use super::rewrite::shell_word;
    let files: Vec<&str> = r
        .keys
        .iter()
        .filter_map(|k| k.source.strip_prefix("key file "))
        .collect();
    let env = r.keys.iter().any(|k| k.source.starts_with('$'));
    let base = format!("stanctl store verify {}", shell_word(&r.store));
    match (files.as_slice(), env) {
        ([], false) => (
            base,
            " (add --key-file FILE if the server runs with encryption)".into(),
        ),
        ([], true) => (
            format!("{base} --encrypt"),
            " (with NATS_STREAMING_ENCRYPTION_KEY set as now)".into(),
        ),
        ([f], _) => (
            format!("{base} --key-file {}", shell_word(f)),
            String::new(),
        ),
        (many, _) => (
            format!("{base} --key-file FILE"),
            format!(
                " (FILE: the key the server runs with, of {})",
                many.iter()
                    .map(|f| shell_word(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}
