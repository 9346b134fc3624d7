//! `stanctl store verify`: the server's settings from the command line.

use crate::cli::args::VerifyArgs;
use crate::cli::exit::ExitCode;
use crate::cli::progress::Terminal;
use crate::cli::{backend_of, crc_of, keys, warn};
use crate::error::Error;
use crate::format::layout::StoreLayout;
use crate::ops::node;
use crate::ops::verify::VerifyOptions;
use crate::report;

pub fn run(a: VerifyArgs) -> Result<ExitCode, Error> {
    let crc = crc_of(&a.common)?;
    // As in the server: encryption is on with -encrypt or a configured key;
    // the environment variable only replaces the key once it is on.
    let configured = !a.keys.key_files.is_empty() || !a.keys.keys.is_empty();
    let encryption = !a.no_encrypt && (a.encrypt || configured);
    let key = if encryption {
        keys::server_key(&a.keys)?
    } else {
        None
    };
    if a.no_encrypt && configured {
        warn("--no-encrypt: the key given is not used (a server without encryption delivers envelopes as they are)");
    }
    if !encryption && keys::env_key().is_some() && !a.no_encrypt {
        warn("NATS_STREAMING_ENCRYPTION_KEY is set, but the server only uses it with -encrypt or a configured key: this prediction is for a server WITHOUT encryption (pass --encrypt if yours runs with -encrypt)");
    }
    let layout = StoreLayout::discover(&a.common.dir)?;
    if let Some(pid) = crate::format::lock::holder(&layout.root)? {
        return Err(Error::Locked {
            path: layout.root.clone(),
            pid,
        });
    }
    let opts = VerifyOptions {
        encryption,
        cipher: a.cipher.into(),
        crc,
        truncate_on_eof: a.truncate_on_eof,
        file_crc: a.file_crc && !a.no_file_crc,
        read_buffer_size: a.file_read_buffer_size,
        list: a.list,
        backend: backend_of(&a.common),
    };
    let r = node::verify_node(
        &layout,
        key.as_ref(),
        &opts,
        &a.node.options(),
        &Terminal::new(a.common.quiet),
    )?;
    let code = ExitCode::of_verdict(r.verdict);
    if a.common.json {
        report::json::print(&report::json::Verify(&r, code.code()))?;
    } else if a.common.quiet {
    } else if a.list {
        report::stdout(|out| report::verify::list(&r, out))?;
        if let Some(raft) = &r.raft {
            let rk = if encryption {
                node::raft_key(key.as_ref(), opts.backend)
            } else {
                None
            };
            report::raft::list(raft, rk.as_ref())?;
        }
    } else {
        report::stdout(|out| report::verify::table(&r, out))?;
        if let Some(raft) = &r.raft {
            report::stdout(|out| report::raft::verify_summary(raft, out))?;
        }
    }
    Ok(code)
}
