//! `stanctl raft verify|encrypt|decrypt|rekey LOG`: a stand-alone Raft log.

use crate::cli::args::{
    RaftCommonArgs, RaftDecryptArgs, RaftEncryptArgs, RaftRekeyArgs, RaftRewriteArgs,
    RaftVerifyArgs,
};
use crate::cli::exit::ExitCode;
use crate::cli::progress::Terminal;
use crate::cli::{keys, settings, warn};
use crate::config::ServerConfig;
use crate::crypto::aead::{Backend, Cipher};
use crate::crypto::keys::Key;
use crate::error::Error;
use crate::format::crc::Crc32;
use crate::ops::node;
use crate::ops::rewrite::{self, RewriteOptions, Rule};
use crate::ops::verify::verdict_of;
use crate::report;

fn backend(c: &RaftCommonArgs) -> Backend {
    if c.rustcrypto {
        Backend::RustCrypto
    } else {
        Backend::default()
    }
}

/// `--config`, read as the store commands read it (warnings through `sink`).
fn config(c: &RaftCommonArgs, sink: &Terminal) -> Result<Option<ServerConfig>, Error> {
    Ok(settings::raft_config(c.config.as_deref(), sink)?.map(|(_, cfg)| cfg))
}

pub fn verify(a: RaftVerifyArgs) -> Result<ExitCode, Error> {
    let sink = Terminal::new(a.common.quiet);
    let cfg = config(&a.common, &sink)?;
    let s = settings::raft_verify(a.encrypt, a.no_encrypt, &a.keys, cfg.as_ref())?;
    let configured = !a.keys.key_files.is_empty() || !a.keys.keys.is_empty();
    if a.no_encrypt && configured {
        warn("--no-encrypt: the key given is not used (a server without encryption serves envelopes as they are)");
    }
    let rk = node::raft_key(s.key.as_ref(), backend(&a.common));
    let v = node::verify_log(&a.common.log, rk.as_ref(), &sink);
    let verdict = verdict_of(&v.findings);
    let code = ExitCode::of_verdict(verdict);
    let block = settings::raft_verify_block(&a.common.log, a.common.config.as_deref(), &s);
    if a.common.json {
        report::json::print(&report::json::RaftVerify(&v, verdict, code.code(), &block))?;
    } else if a.common.quiet {
    } else if a.list {
        report::raft::list(&v, rk.as_ref())?;
    } else {
        report::stdout(|out| report::raft::verify_table(&v, verdict, &block, out))?;
    }
    Ok(code)
}

fn options(
    rule: Rule,
    rw: &RaftRewriteArgs,
    assume_plaintext: bool,
    c: &RaftCommonArgs,
) -> RewriteOptions {
    RewriteOptions {
        rule,
        assume_plaintext,
        crc: Crc32::ieee(),
        backend: backend(c),
        output: rw.output.clone(),
        dry_run: rw.dry_run,
        node: node::NodeOptions::default(),
        // A Raft log has no slices to salvage, and is one file: checked,
        // then written (its write is one rename).
        keep_damaged: false,
        one_pass: false,
    }
}

fn finish(c: &RaftCommonArgs, keys: &[Key], opts: &RewriteOptions) -> Result<ExitCode, Error> {
    let r = rewrite::run_log(&c.log, keys, opts, &Terminal::for_rewrite(c.quiet))?;
    if let Some(i) = &r.interrupted {
        if c.json {
            let _ = report::json::print(&report::json::Rewrite(&r));
        }
        let rerun = super::rewrite::rerun_command();
        let _ = report::rewrite::interrupted(&r, i, &rerun, &mut std::io::stderr());
        return Ok(ExitCode::Interrupted);
    }
    if c.json {
        report::json::print(&report::json::Rewrite(&r))?;
    }
    if !r.refused.is_empty() {
        report::rewrite::refusals(&r, &mut std::io::stderr().lock());
        return Err(Error::Refused(format!(
            "{} entr(ies) cannot be handled (listed above); the log is unchanged",
            r.refused.len()
        )));
    }
    if !c.json && !c.quiet {
        report::stdout(|out| {
            report::rewrite::raft_line(&r, out)?;
            report::rewrite::other_cipher(&r, out)
        })?;
    }
    Ok(ExitCode::Ok)
}

pub fn encrypt(a: RaftEncryptArgs) -> Result<ExitCode, Error> {
    let cfg = config(&a.common, &Terminal::new(a.common.quiet))?;
    let file_key = super::rewrite::encrypt_file_key(&a.keys, settings::file_key(cfg.as_ref()));
    let keys = keys::load_keys(&a.keys, true, file_key)?;
    if keys.len() != 1 {
        return Err(Error::Usage(format!(
            "encrypt takes exactly one key (--key-file, --key, --config with encryption_key, or NATS_STREAMING_ENCRYPTION_KEY); got {}",
            keys.len()
        )));
    }
    let Some(cipher) = settings::cipher_in(a.cipher, cfg.as_ref())? else {
        return Err(Error::Usage(
            "encrypt needs a cipher: give --cipher AES|CHACHA (or --config with encryption_cipher)"
                .into(),
        ));
    };
    let cipher: Cipher = cipher.value;
    let opts = options(
        Rule::Encrypt { cipher },
        &a.rewrite,
        a.assume.assume_plaintext,
        &a.common,
    );
    finish(&a.common, &keys, &opts)
}

pub fn decrypt(a: RaftDecryptArgs) -> Result<ExitCode, Error> {
    if a.assume_plaintext {
        warn("--assume-plaintext does nothing with decrypt (it keeps command data that only looks like an envelope anyway); drop it");
    }
    let cfg = config(&a.common, &Terminal::new(a.common.quiet))?;
    let keys = keys::load_keys(&a.keys, true, settings::file_key(cfg.as_ref()))?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "decrypt needs at least one key (--key-file, --key, --config with encryption_key, or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let opts = options(Rule::Decrypt, &a.rewrite, false, &a.common);
    finish(&a.common, &keys, &opts)
}

pub fn rekey(a: RaftRekeyArgs) -> Result<ExitCode, Error> {
    let cfg = config(&a.common, &Terminal::new(a.common.quiet))?;
    let old = keys::load_keys(&a.keys, true, settings::file_key(cfg.as_ref()))?;
    if old.is_empty() {
        return Err(Error::Usage(
            "rekey needs at least one old key (--key-file, --key, --config with encryption_key, or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let mut all = vec![keys::new_key(&a.new_key)?];
    all.extend(old);
    let rule = Rule::Rekey {
        cipher: a.cipher.map(Into::into),
    };
    let opts = options(rule, &a.rewrite, a.assume.assume_plaintext, &a.common);
    finish(&a.common, &all, &opts)
}
