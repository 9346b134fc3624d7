//! The exit codes: one enum. `--help`, the man pages and the README's table
//! are generated from it or tested against it.

use crate::error::Error;
use crate::ops::verify::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok,
    AtRisk,
    WontStart,
    Locked,
    Refused,
    Usage,
    Io,
    Interrupted,
}

impl ExitCode {
    pub const ALL: [ExitCode; 8] = [
        ExitCode::Ok,
        ExitCode::AtRisk,
        ExitCode::WontStart,
        ExitCode::Locked,
        ExitCode::Refused,
        ExitCode::Usage,
        ExitCode::Io,
        ExitCode::Interrupted,
    ];

    pub const fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::AtRisk => 1,
            ExitCode::WontStart => 2,
            ExitCode::Locked => 3,
            ExitCode::Refused => 4,
            ExitCode::Usage => 64,
            ExitCode::Io => 74,
            ExitCode::Interrupted => 130,
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Ok => "success; for verify: every message will be delivered as plaintext (or empty)",
            ExitCode::AtRisk => "verify: the server starts, but some messages are at risk (fail, are delivered as ciphertext, or are lost at start-up)",
            ExitCode::WontStart => "verify: the server will refuse to start on this store",
            ExitCode::Locked => "the store is locked by a running server (or another stanctl)",
            ExitCode::Refused => "a rewrite was refused before writing anything (records or Raft log entries it cannot handle, a clustered store whose Raft log was not given, too little free space for --one-pass)",
            ExitCode::Usage => "usage error (bad option or value, wrong number of keys, empty key, non-empty --output), or a --config file the server would reject (syntax, include, type, store type: the error names file:line:column)",
            ExitCode::Io => "I/O error (missing file, permission denied, disk full, a file of the wrong type; an unreadable --config file), or the directory is not a store",
            ExitCode::Interrupted => "a rewrite stopped on SIGINT or SIGTERM (Ctrl-C): every slice is converted or as it was (a Raft log: as it was; a store's --output copy: not begun if stopped during the check, else incomplete); stderr gives the command that finishes the job",
        }
    }

    /// The outcome of a failed command.
    pub fn of_error(e: &Error) -> ExitCode {
        use crate::config::ConfigError;
        use crate::crypto::keys::KeyError;
        use crate::format::raft::RaftError;
        match e {
            Error::Config(ConfigError::Read { .. }) => ExitCode::Io,
            Error::Config(_) => ExitCode::Usage,
            Error::Locked { .. } | Error::Raft(RaftError::Locked { .. }) => ExitCode::Locked,
            Error::Refused(_) => ExitCode::Refused,
            Error::Usage(_) => ExitCode::Usage,
            Error::Key(KeyError::Empty(_) | KeyError::EmptyKey(_) | KeyError::TooLarge(_)) => {
                ExitCode::Usage
            }
            Error::Io { .. }
            | Error::TempDir(_)
            | Error::NotAStore { .. }
            | Error::Key(_)
            | Error::Raft(_) => ExitCode::Io,
        }
    }

    pub fn of_verdict(v: Verdict) -> ExitCode {
        match v {
            Verdict::Ok => ExitCode::Ok,
            Verdict::AtRisk => ExitCode::AtRisk,
            Verdict::WillNotStart => ExitCode::WontStart,
        }
    }
}

/// The codes a command can return (`stanctl`: all of them).
pub fn codes_of(command: &str) -> Vec<ExitCode> {
    use ExitCode::*;
    match command {
        "inspect" => vec![Ok, Usage, Io],
        "verify" => vec![Ok, AtRisk, WontStart, Locked, Usage, Io],
        "encrypt" | "decrypt" | "rekey" => vec![Ok, Locked, Refused, Usage, Io, Interrupted],
        "completions" => vec![Ok, Usage],
        _ => ExitCode::ALL.to_vec(),
    }
}

/// The "EXIT CODES" section of `--help` for a command (`inspect`,
/// `verify`, ...; `stanctl` for the top level).
pub fn help_text(command: &str) -> String {
    let mut s = String::from("EXIT CODES:");
    for c in codes_of(command) {
        s.push_str(&format!("\n  {:<3} {}", c.code(), c.meaning()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut v: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        v.dedup();
        assert_eq!(v.len(), ExitCode::ALL.len());
    }
}
