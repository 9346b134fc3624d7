//! The three commands: arguments to a `Job`, then output.

use super::*;

pub(super) fn render(r: &RewriteReport, out: &mut impl Write) -> std::io::Result<()> {
    let class = match r.operation {
        "encrypt" => "Encrypted",
        "decrypt" => "Decrypted",
        _ => "Rekeyed",
    };
    let header = [
        "Channel",
        "Records",
        class,
        "Unchanged",
        "Slice file bytes before",
        "after",
        "Slices rewritten",
    ];
    let mut t = crate::render::table(&header);
    let row = |name: &str, s: &Tally| {
        vec![
            name.to_string(),
            s.records.to_string(),
            s.changed.to_string(),
            s.unchanged.to_string(),
            s.bytes_before.to_string(),
            s.bytes_after.to_string(),
            s.slices_rewritten.to_string(),
        ]
    };
    for c in &r.channels {
        t.add_row(row(&c.name, &c.tally));
    }
    t.add_row(row("total", &r.totals));
    crate::render::align_numbers(&mut t, 1);
    writeln!(out, "{t}")?;
    let what = match (&r.output, r.dry_run, r.totals.slices_rewritten) {
        (_, true, n) => format!("dry run: {n} slice(s) would be rewritten; nothing was written"),
        (Some(o), false, _) => format!("wrote a converted copy to {o}; the source is untouched"),
        (None, false, 0) => "nothing to do: the store is already as requested".to_string(),
        (None, false, n) => format!("rewrote {n} slice(s) in place"),
    };
    writeln!(out, "{what}")
}

pub(super) fn print_refusals(r: &RewriteReport) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "stanctl: refusing to {}: {} problem(s); nothing was written:",
        r.operation,
        r.refused.len()
    );
    // One line per reason, then where: the same reason for 75 records is
    // one problem to act on. Every entry is in --json.
    const SHOWN: usize = 8;
    let mut i = 0;
    while i < r.refused.len() {
        let reason = &r.refused[i].reason;
        let n = r.refused[i..]
            .iter()
            .take_while(|f| &f.reason == reason)
            .count();
        let _ = writeln!(err, "  - {reason}");
        let places: Vec<String> = r.refused[i..i + n]
            .iter()
            .take(SHOWN)
            .map(|f| match (f.seq, f.offset) {
                (Some(s), Some(o)) => format!("{} seq {s} (offset {o})", f.file),
                (None, Some(o)) => format!("{} offset {o}", f.file),
                _ => f.file.clone(),
            })
            .collect();
        let more = if n > SHOWN {
            format!(" and {} more", n - SHOWN)
        } else {
            String::new()
        };
        let _ = writeln!(err, "    at {}{more}", places.join(", "));
        i += n;
    }
}

pub(super) fn finish_cli(
    dir: &Path,
    job: Job,
    rw: &RewriteArgs,
    common: &CommonArgs,
) -> Result<i32> {
    let opts = Options {
        output: rw.output.clone(),
        dry_run: rw.dry_run,
    };
    let r = run(dir, &job, &opts)?;
    if common.json {
        app::print_json(&r)?;
    }
    if !r.refused.is_empty() {
        print_refusals(&r);
        return Err(Error::Refused(format!(
            "{} record(s) or file(s) cannot be handled (listed above); the store is unchanged",
            r.refused.len()
        )));
    }
    if !common.json {
        render(&r, &mut std::io::stdout().lock()).or_else(app::stdout_error)?;
    }
    Ok(EXIT_OK)
}

pub(super) fn job(
    rule: Rule,
    keys: Vec<Key>,
    rw: &RewriteArgs,
    common: &CommonArgs,
) -> Result<Job> {
    Ok(Job {
        rule,
        keys,
        assume_plaintext: rw.assume_plaintext,
        crc: app::crc_of(common)?,
        backend: app::backend_of(common),
    })
}

pub fn cli_encrypt(a: EncryptArgs) -> Result<i32> {
    let keys = app::load_keys(&a.keys, true)?;
    if keys.len() != 1 {
        let given: Vec<String> = keys
            .iter()
            .map(|k| format!("{} = {}", k.id, k.origin))
            .collect();
        return Err(Error::Usage(format!(
            "encrypt takes exactly one key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY); got {}{}{}",
            keys.len(),
            if given.is_empty() { "" } else { ": " },
            given.join(", ")
        )));
    }
    let rule = Rule::Encrypt {
        cipher: a.cipher.into(),
    };
    let j = job(rule, keys, &a.rewrite, &a.common)?;
    finish_cli(&a.common.dir, j, &a.rewrite, &a.common)
}

pub fn cli_decrypt(a: DecryptArgs) -> Result<i32> {
    let keys = app::load_keys(&a.keys, true)?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "decrypt needs at least one key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let j = job(Rule::Decrypt, keys, &a.rewrite, &a.common)?;
    finish_cli(&a.common.dir, j, &a.rewrite, &a.common)
}

pub(super) fn new_key(a: &RekeyArgs) -> Result<Key> {
    match (&a.new_key_file, &a.new_key) {
        (Some(p), None) => {
            let m = keys::read_key_file(p)?;
            Ok(Key::from_material(
                "new key",
                KeyOrigin::File(p.clone()),
                &m,
            ))
        }
        (None, Some(k)) if !k.is_empty() => {
            app::warn("a key given with --new-key is visible to other users of this machine (process list, shell history); prefer --new-key-file");
            Ok(Key::from_material(
                "new key",
                KeyOrigin::CommandLine,
                k.as_bytes(),
            ))
        }
        (None, Some(_)) => Err(keys::KeyError::EmptyKey("--new-key".into()).into()),
        _ => Err(Error::Usage(
            "give the new key with exactly one of --new-key-file or --new-key".into(),
        )),
    }
}

pub fn cli_rekey(a: RekeyArgs) -> Result<i32> {
    let old = app::load_keys(&a.keys, true)?;
    if old.is_empty() {
        return Err(Error::Usage(
            "rekey needs at least one old key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let mut keys = vec![new_key(&a)?];
    keys.extend(old);
    let rule = Rule::Rekey {
        cipher: a.cipher.map(Into::into),
    };
    let j = job(rule, keys, &a.rewrite, &a.common)?;
    finish_cli(&a.common.dir, j, &a.rewrite, &a.common)
}
