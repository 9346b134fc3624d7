//! `stanctl store verify`: the server's settings from the command line and
//! its configuration file (`cli::settings`).

use crate::cli::args::VerifyArgs;
use crate::cli::exit::ExitCode;
use crate::cli::progress::Terminal;
use crate::cli::{backend_of, keys, settings, warn};
use crate::error::Error;
use crate::format::layout::StoreLayout;
use crate::ops::node;
use crate::ops::verify::VerifyOptions;
use crate::report;

pub fn run(a: VerifyArgs) -> Result<ExitCode, Error> {
    let sink = Terminal::new(a.common.quiet);
    let common = settings::common(&a.common, &sink)?;
    // As in the server: encryption is on with -encrypt or a configured key;
    // the environment variable only replaces the key once it is on.
    let v = settings::verify(&a, &common)?;
    let encryption = v.encryption.value;
    let flag_key = !a.keys.key_files.is_empty() || !a.keys.keys.is_empty();
    if a.no_encrypt && flag_key {
        warn("--no-encrypt: the key given is not used (a server without encryption delivers envelopes as they are)");
    }
    if !encryption && keys::env_key().is_some() && !a.no_encrypt {
        warn("NATS_STREAMING_ENCRYPTION_KEY is set, but the server only uses it with -encrypt or a configured key: this prediction is for a server WITHOUT encryption (pass --encrypt if yours runs with -encrypt)");
    }
    let layout = StoreLayout::discover(&common.dir.value)?;
    if let Some(pid) = crate::format::lock::holder(&layout.root)? {
        return Err(Error::Locked {
            path: layout.root.clone(),
            pid,
        });
    }
    let opts = VerifyOptions {
        encryption,
        cipher: v.cipher.value,
        crc: common.crc.value.clone(),
        truncate_on_eof: v.truncate_on_eof.value,
        file_crc: v.file_crc.value,
        read_buffer_size: v.read_buffer_size.value,
        list: a.list,
        backend: backend_of(&a.common),
    };
    let ns = settings::node(&a.node, &common);
    let r = node::verify_node(&layout, v.key.as_ref(), &opts, &ns.options, &sink)?;
    let code = ExitCode::of_verdict(r.verdict);
    let block = settings::verify_block(&common, &v, &ns);
    if a.common.json {
        report::json::print(&report::json::Verify(&r, code.code(), &block))?;
    } else if a.common.quiet {
    } else if a.list {
        report::stdout(|out| report::verify::list(&r, out))?;
        if let Some(raft) = &r.raft {
            let rk = if encryption {
                node::raft_key(v.key.as_ref(), opts.backend)
            } else {
                None
            };
            report::raft::list(raft, rk.as_ref())?;
        }
    } else {
        report::stdout(|out| report::verify::table(&r, &block, out))?;
        if let Some(raft) = &r.raft {
            report::stdout(|out| report::raft::verify_summary(raft, out))?;
        }
    }
    Ok(code)
}
