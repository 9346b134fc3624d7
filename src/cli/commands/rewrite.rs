//! `stanctl store encrypt|decrypt|rekey`: arguments to a rule and its keys.

use crate::cli::args::{CommonArgs, DecryptArgs, EncryptArgs, NodeArgs, RekeyArgs, RewriteArgs};
use crate::cli::exit::ExitCode;
use crate::cli::progress::Terminal;
use crate::cli::settings::{self, Common};
use crate::cli::{backend_of, keys, warn};
use crate::crypto::keys::Key;
use crate::error::Error;
use crate::ops::rewrite::{self, RewriteOptions, Rule};
use crate::report;

fn options(
    rule: Rule,
    rw: &RewriteArgs,
    assume_plaintext: bool,
    args: &CommonArgs,
    common: &Common,
    node: &NodeArgs,
) -> Result<RewriteOptions, Error> {
    if let Some(out) = &rw.output {
        // A file there (a key file given by mistake) is never the user's
        // output directory: refuse before anything reads or writes it.
        if std::fs::metadata(out).is_ok_and(|m| !m.is_dir()) {
            return Err(Error::Usage(format!(
                "--output {} exists and is not a directory; give a new directory (stanctl creates it) or an empty one",
                out.display()
            )));
        }
    }
    Ok(RewriteOptions {
        rule,
        assume_plaintext,
        crc: common.crc.value.clone(),
        backend: backend_of(args),
        output: rw.output.clone(),
        dry_run: rw.dry_run,
        node: settings::node(node, common).options,
        keep_damaged: rw.keep_damaged,
        one_pass: rw.one_pass,
    })
}

/// Runs `rule` as the arguments ask, with these keys, and reports.
fn convert(
    rule: Rule,
    rw: &RewriteArgs,
    assume_plaintext: bool,
    args: &CommonArgs,
    common: &Common,
    node: &NodeArgs,
    keys: &[Key],
) -> Result<ExitCode, Error> {
    let opts = options(rule, rw, assume_plaintext, args, common, node)?;
    finish(args, common, keys, &opts)
}

fn finish(
    args: &CommonArgs,
    common: &Common,
    keys: &[Key],
    opts: &RewriteOptions,
) -> Result<ExitCode, Error> {
    let sink = Terminal::for_rewrite(args.quiet);
    let r = rewrite::run(&common.dir.value, keys, opts, &sink)?;
    if let Some(i) = &r.interrupted {
        if args.json {
            let _ = report::json::print(&report::json::Rewrite(&r));
        }
        let _ = report::rewrite::interrupted(&r, i, &rerun_command(), &mut std::io::stderr());
        return Ok(ExitCode::Interrupted);
    }
    if r.refused.is_empty() && !r.dry_run {
        // The store is converted: a report that cannot be printed (a full
        // disk behind stdout) must not read as a failed rewrite.
        let printed = if args.json {
            report::json::print(&report::json::Rewrite(&r))
        } else if args.quiet {
            Ok(())
        } else {
            report::stdout(|out| report::rewrite::table(&r, out))
        };
        if let Err(e) = printed {
            crate::cli::warn(&report::rewrite::unprinted(&r, &e));
        }
        return Ok(ExitCode::Ok);
    }
    if args.json {
        report::json::print(&report::json::Rewrite(&r))?;
    }
    if !r.refused.is_empty() {
        report::rewrite::refusals(&r, &mut std::io::stderr().lock());
        return Err(Error::Refused(format!(
            "{} record(s) or file(s) cannot be handled (listed above); the store is unchanged",
            r.refused.len()
        )));
    }
    if !args.json && !args.quiet {
        report::stdout(|out| report::rewrite::table(&r, out))?;
    }
    Ok(ExitCode::Ok)
}

/// encrypt's key from the configuration file, given no key flag: none
/// (with a warning) when NATS_STREAMING_ENCRYPTION_KEY is set, since the
/// server then encrypts with the variable.
pub(super) fn encrypt_file_key(
    k: &crate::cli::args::KeyArgs,
    file_key: Option<Key>,
) -> Option<Key> {
    let flag_keys = !k.key_files.is_empty() || !k.keys.is_empty();
    if file_key.is_some() && !flag_keys && keys::env_key().is_some() {
        // The server encrypts with the variable, not with encryption_key.
        warn("NATS_STREAMING_ENCRYPTION_KEY is set: the server uses it and ignores the configuration file's encryption_key, and so does encrypt");
        return None;
    }
    file_key
}

pub fn encrypt(a: EncryptArgs) -> Result<ExitCode, Error> {
    let common = settings::common(&a.common, &Terminal::new(a.common.quiet))?;
    let file_key = encrypt_file_key(&a.keys, settings::config_key(&common));
    let keys = keys::load_keys(&a.keys, true, file_key)?;
    if keys.len() != 1 {
        let given: Vec<String> = keys
            .iter()
            .map(|k| format!("{} = {}", k.id, k.origin))
            .collect();
        let mut msg = format!(
            "encrypt takes exactly one key (--key-file, --key, the configuration file's encryption_key or NATS_STREAMING_ENCRYPTION_KEY); got {}{}{}",
            keys.len(),
            if given.is_empty() { "" } else { ": " },
            given.join(", ")
        );
        if keys.len() > 1 {
            // Envelopes under several keys: the way out is rekey to one.
            let files: Vec<String> = a
                .keys
                .key_files
                .iter()
                .map(|p| report::rewrite::shell_word(&p.to_string_lossy()))
                .collect();
            let dir = report::rewrite::shell_word(&common.dir.value.to_string_lossy());
            let (target, others) = match files.split_first() {
                Some((t, o)) if !o.is_empty() => (t.clone(), o.join(" --key-file ")),
                _ => ("KEY".into(), "OTHER_KEY".into()),
            };
            msg.push_str(&format!(
                ". If the store holds envelopes under several keys, bring them under one first, then encrypt with it: `stanctl store rekey {dir} --key-file {others} --new-key-file {target}` and then `stanctl store encrypt {dir} --key-file {target} --cipher {}`",
                match a.cipher {
                    Some(crate::cli::args::CipherArg::Chacha) => "CHACHA",
                    _ => "AES",
                }
            ));
        }
        return Err(Error::Usage(msg));
    }
    let Some(cipher) = settings::cipher(a.cipher, &common)? else {
        return Err(Error::Usage(
            "encrypt needs a cipher: give --cipher AES|CHACHA (or --config with encryption_cipher)"
                .into(),
        ));
    };
    let rule = Rule::Encrypt {
        cipher: cipher.value,
    };
    convert(
        rule,
        &a.rewrite,
        a.assume.assume_plaintext,
        &a.common,
        &common,
        &a.node,
        &keys,
    )
}

pub fn decrypt(a: DecryptArgs) -> Result<ExitCode, Error> {
    if a.assume_plaintext {
        crate::cli::warn("--assume-plaintext does nothing with decrypt (it keeps payloads that only look like envelopes anyway); drop it");
    }
    let common = settings::common(&a.common, &Terminal::new(a.common.quiet))?;
    let keys = keys::load_keys(&a.keys, true, settings::config_key(&common))?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "decrypt needs at least one key (--key-file, --key, --config with encryption_key, or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    convert(
        Rule::Decrypt,
        &a.rewrite,
        false,
        &a.common,
        &common,
        &a.node,
        &keys,
    )
}

pub fn rekey(a: RekeyArgs) -> Result<ExitCode, Error> {
    let common = settings::common(&a.common, &Terminal::new(a.common.quiet))?;
    let old = keys::load_keys(&a.keys, true, settings::config_key(&common))?;
    if old.is_empty() {
        return Err(Error::Usage(
            "rekey needs at least one old key (--key-file, --key, --config with encryption_key, or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    // keys[0] is the key new envelopes are sealed with.
    let mut all = vec![keys::new_key(&a.new_key)?];
    all.extend(old);
    let rule = Rule::Rekey {
        cipher: a.cipher.map(Into::into),
    };
    convert(
        rule,
        &a.rewrite,
        a.assume.assume_plaintext,
        &a.common,
        &common,
        &a.node,
        &all,
    )
}

/// The command line as given, for the operator to run again: key files
/// are named by their paths; a key given on the command line is replaced
/// by `KEY` (never printed); the environment's key is mentioned, not shown.
pub(crate) fn rerun_command() -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    rerun_words(&args, keys::env_key().is_some())
}

fn rerun_words(args: &[String], env_key: bool) -> String {
    let mut words = Vec::with_capacity(args.len());
    let mut secret_next = false;
    for a in args {
        if secret_next {
            words.push("KEY".to_string());
            secret_next = false;
            continue;
        }
        match a.split_once('=') {
            Some((flag @ ("--key" | "--new-key"), _)) => words.push(format!("{flag}=KEY")),
            _ => {
                secret_next = a == "--key" || a == "--new-key";
                words.push(report::rewrite::shell_word(a));
            }
        }
    }
    let mut cmd = words.join(" ");
    if args.iter().any(|a| {
        a.starts_with("--key") && !a.starts_with("--key-file")
            || a.starts_with("--new-key") && !a.starts_with("--new-key-file")
    }) {
        cmd.push_str("    # KEY: the key you gave on the command line");
    }
    if env_key {
        cmd = format!("{cmd}    # with NATS_STREAMING_ENCRYPTION_KEY set as now");
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::rerun_words;

    #[test]
    fn rerun_names_keys_by_source_never_by_value() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = rerun_words(
            &a(&[
                "stanctl",
                "store",
                "rekey",
                "/s t",
                "--key",
                "sekrit",
                "--new-key=other",
                "--key-file",
                "k1.key",
            ]),
            false,
        );
        assert!(!c.contains("sekrit") && !c.contains("other"), "{c}");
        assert!(
            c.starts_with("stanctl store rekey '/s t' --key KEY --new-key=KEY --key-file k1.key"),
            "{c}"
        );
        assert!(c.contains("# KEY: the key you gave"), "{c}");
        let c = rerun_words(
            &a(&["stanctl", "store", "decrypt", "s", "-k", "k1.key"]),
            true,
        );
        assert_eq!(
            c,
            "stanctl store decrypt s -k k1.key    # with NATS_STREAMING_ENCRYPTION_KEY set as now"
        );
    }
}
