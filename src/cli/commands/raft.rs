//! `stanctl raft verify|encrypt|decrypt|rekey LOG`: a stand-alone Raft log.

use crate::cli::args::{
    RaftCommonArgs, RaftDecryptArgs, RaftEncryptArgs, RaftRekeyArgs, RaftRewriteArgs,
    RaftVerifyArgs,
};
use crate::cli::exit::ExitCode;
use crate::cli::progress::Terminal;
use crate::cli::{keys, warn};
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

pub fn verify(a: RaftVerifyArgs) -> Result<ExitCode, Error> {
    let configured = !a.keys.key_files.is_empty() || !a.keys.keys.is_empty();
    let encryption = !a.no_encrypt && (a.encrypt || configured);
    let key = if encryption {
        keys::server_key(&a.keys, None)?
    } else {
        None
    };
    if a.no_encrypt && configured {
        warn("--no-encrypt: the key given is not used (a server without encryption serves envelopes as they are)");
    }
    let rk = node::raft_key(key.as_ref(), backend(&a.common));
    let v = node::verify_log(&a.common.log, rk.as_ref(), &Terminal::new(a.common.quiet));
    let verdict = verdict_of(&v.findings);
    let code = ExitCode::of_verdict(verdict);
    if a.common.json {
        report::json::print(&report::json::RaftVerify(&v, verdict, code.code()))?;
    } else if a.common.quiet {
    } else if a.list {
        report::raft::list(&v, rk.as_ref())?;
    } else {
        report::stdout(|out| report::raft::verify_table(&v, verdict, out))?;
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
        // A Raft log has no slices to salvage.
        keep_damaged: false,
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
    let keys = keys::load_keys(&a.keys, true, None)?;
    if keys.len() != 1 {
        return Err(Error::Usage(format!(
            "encrypt takes exactly one key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY); got {}",
            keys.len()
        )));
    }
    let cipher: Cipher = a.cipher.into();
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
    let keys = keys::load_keys(&a.keys, true, None)?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "decrypt needs at least one key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY)"
                .into(),
        ));
    }
    let opts = options(Rule::Decrypt, &a.rewrite, false, &a.common);
    finish(&a.common, &keys, &opts)
}

pub fn rekey(a: RaftRekeyArgs) -> Result<ExitCode, Error> {
    let old = keys::load_keys(&a.keys, true, None)?;
    if old.is_empty() {
        return Err(Error::Usage(
            "rekey needs at least one old key (--key-file, --key or NATS_STREAMING_ENCRYPTION_KEY)"
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
