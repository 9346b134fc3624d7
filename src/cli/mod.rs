//! The command line: arguments in, one exit code out. Each command turns its
//! arguments into an operation's options, runs it, and hands the report to a
//! printer; this module dispatches and maps the outcome to an exit code.

pub mod args;
pub mod commands;
pub mod exit;
pub mod keys;
pub mod man;
pub mod progress;

use crate::crypto::aead::Backend;
use crate::crypto::keys::KeyError;
use crate::error::Error;
use crate::format::crc::{self, Crc32};
use args::{Cli, Command, CommonArgs, RaftCommand, StoreCommand};
use exit::ExitCode;
use std::io::Write;

pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "stanctl: warning: {msg}");
}

pub fn crc_of(common: &CommonArgs) -> Result<Crc32, Error> {
    crc::parse_poly(&common.crc_poly)
        .map(Crc32::new)
        .map_err(Error::Usage)
}

pub fn backend_of(common: &CommonArgs) -> Backend {
    if common.rustcrypto {
        Backend::RustCrypto
    } else {
        Backend::default()
    }
}

/// What kind of command failed, for the advice that follows an error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    InPlace,
    Output,
}

pub fn run(cli: Cli) -> ExitCode {
    let rewrite_kind = |r: &args::RewriteArgs| {
        if r.output.is_some() {
            Kind::Output
        } else {
            Kind::InPlace
        }
    };
    let raft_kind = |r: &args::RaftRewriteArgs| {
        if r.output.is_some() {
            Kind::Output
        } else {
            Kind::InPlace
        }
    };
    let (r, kind) = match cli.command {
        Command::Raft(RaftCommand::Verify(a)) => (commands::raft::verify(a), Kind::Read),
        Command::Raft(RaftCommand::Encrypt(a)) => {
            let k = raft_kind(&a.rewrite);
            (commands::raft::encrypt(a), k)
        }
        Command::Raft(RaftCommand::Decrypt(a)) => {
            let k = raft_kind(&a.rewrite);
            (commands::raft::decrypt(a), k)
        }
        Command::Raft(RaftCommand::Rekey(a)) => {
            let k = raft_kind(&a.rewrite);
            (commands::raft::rekey(a), k)
        }
        Command::Store(StoreCommand::Inspect(a)) => (commands::inspect::run(a), Kind::Read),
        Command::Store(StoreCommand::Verify(a)) => (commands::verify::run(a), Kind::Read),
        Command::Store(StoreCommand::Encrypt(a)) => {
            let k = rewrite_kind(&a.rewrite);
            (commands::rewrite::encrypt(a), k)
        }
        Command::Store(StoreCommand::Decrypt(a)) => {
            let k = rewrite_kind(&a.rewrite);
            (commands::rewrite::decrypt(a), k)
        }
        Command::Store(StoreCommand::Rekey(a)) => {
            let k = rewrite_kind(&a.rewrite);
            (commands::rewrite::rekey(a), k)
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "stanctl: error: {e}");
            if let Some(hint) = hint(&e, kind) {
                let _ = writeln!(std::io::stderr(), "stanctl: {hint}");
            }
            ExitCode::of_error(&e)
        }
    }
}

fn hint(e: &Error, kind: Kind) -> Option<&'static str> {
    match e {
        Error::NotAStore { .. } => {
            Some("give the directory the server runs with -dir (it holds server.dat)")
        }
        Error::Locked { .. } => {
            Some("stop nats-streaming-server (or the other stanctl) and run this again")
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            Some("run as the user that owns the store, or fix the file permissions")
        }
        Error::Io { .. } => Some(match kind {
            Kind::Read => "fix the problem with the file named above (its type, permissions), then run the command again",
            Kind::InPlace => "fix the problem named above (space, permissions, a file's type), then run the same command again: an interrupted encrypt/decrypt/rekey leaves every slice readable, and a rerun finishes it",
            Kind::Output => "the source store is untouched; fix the problem named above, delete the partial --output directory, and run the command again",
        }),
        Error::Key(KeyError::Read { .. }) => {
            Some("give --key-file the path of a readable regular file that holds the key")
        }
        _ => None,
    }
}
