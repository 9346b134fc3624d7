//! The command line: arguments in, one exit code out. Each command turns its
//! arguments into an operation's options, runs it, and hands the report to a
//! printer; this module dispatches and maps the outcome to an exit code.

pub mod args;
pub mod commands;
pub mod exit;
pub mod keys;
pub mod man;
pub mod progress;
pub mod settings;

use crate::crypto::aead::Backend;
use crate::crypto::keys::KeyError;
use crate::error::Error;
use args::{Cli, Command, CommonArgs, RaftCommand, StoreCommand};
use exit::ExitCode;
use std::io::Write;

pub fn warn(msg: &str) {
    let line = crate::report::wrap(&format!("stanctl: warning: {msg}"), "  ");
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A completion script on stdout.
fn completions(shell: args::ShellArg) -> Result<ExitCode, Error> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let sh = match shell {
        args::ShellArg::Bash => Shell::Bash,
        args::ShellArg::Zsh => Shell::Zsh,
        args::ShellArg::Fish => Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut Cli::command(), "stanctl", &mut buf);
    crate::report::stdout(|out| out.write_all(&buf))?;
    Ok(ExitCode::Ok)
}

/// A line for the operator on stderr (what happens, what to do next).
pub fn note(msg: &str) {
    let line = crate::report::wrap(&format!("stanctl: {msg}"), "  ");
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn backend_of(common: &CommonArgs) -> Backend {
    if common.rustcrypto {
        Backend::RustCrypto
    } else {
        Backend::default()
    }
}

/// What kind of command failed, for the advice that follows an error.
#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Read,
    InPlace,
    /// A copy to this directory (which the run found missing or empty).
    Output(std::path::PathBuf),
}

pub fn run(cli: Cli) -> ExitCode {
    let rewrite_kind = |r: &args::RewriteArgs| {
        if let Some(o) = &r.output {
            Kind::Output(o.clone())
        } else {
            Kind::InPlace
        }
    };
    let raft_kind = |r: &args::RaftRewriteArgs| {
        if let Some(o) = &r.output {
            Kind::Output(o.clone())
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
        Command::Completions { shell } => (completions(shell), Kind::Read),
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
            note(&format!("error: {e}"));
            if let Some(hint) = hint(&e, &kind) {
                note(&format!("hint: {hint}"));
            }
            ExitCode::of_error(&e)
        }
    }
}

fn hint(e: &Error, kind: &Kind) -> Option<String> {
    let s = |t: &str| Some(t.to_string());
    match e {
        Error::NotAStore { .. } => {
            s("give the directory the server runs with -dir (it holds server.dat)")
        }
        Error::Locked { .. } => {
            s("stop nats-streaming-server (or the other stanctl) and run this again")
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            s("run as the user that owns the store, or fix the file permissions")
        }
        Error::Io { .. } => match kind {
            Kind::Read => s("fix the problem with the file named above (its type, permissions), then run the command again"),
            Kind::InPlace => s("fix the problem named above (space, permissions, a file's type), then run the same command again: an interrupted encrypt/decrypt/rekey leaves every slice readable, and a rerun finishes it"),
            // The run refuses an --output that is not new or empty, so
            // anything in it now was written by this run.
            Kind::Output(out) if has_entries(out) => Some(format!(
                "the source store is untouched; {} holds a partial copy written by this run: delete that directory, fix the problem named above, and run the command again",
                out.display()
            )),
            Kind::Output(out) => Some(format!(
                "the source store is untouched and nothing was written to {}; fix the problem named above and run the command again",
                out.display()
            )),
        },
        Error::TempDir(t) => s(crate::report::words::temp_dir_hint(t.used_for)),
        Error::Key(KeyError::Read { .. }) => {
            s("give --key-file the path of a readable regular file that holds the key")
        }
        Error::Config(crate::config::ConfigError::Read { .. }) => {
            s("give --config the path of the server's configuration file, readable by this user")
        }
        Error::Config(_) => {
            s("fix the configuration file at the place named above, then run the command again")
        }
        _ => None,
    }
}

/// A directory with at least one entry (false for anything else).
fn has_entries(dir: &std::path::Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.is_dir())
        && std::fs::read_dir(dir).is_ok_and(|mut r| r.next().is_some())
}
