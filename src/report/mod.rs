//! Every word the tool prints, one module per output: the human tables
//! (`inspect`, `verify`, `rewrite`), `--list` (in `verify`) and `--json`.
//! Operations hand over typed reports; the sentences are made here.

pub mod inspect;
pub mod json;
pub mod rewrite;
pub mod verify;
pub mod words;

use crate::error::Error;
use crate::ops::rewrite::Operation;
use crate::ops::{Phase, Warning};
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, ContentArrangement, Table};
use std::io;

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    t
}

/// Right-aligns every column from `from` on (the numbers).
pub fn align_numbers(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// An output error, unless the reader went away (`| head`, `grep -q`): that
/// is no failure of the command, whose exit code stands.
pub fn stdout_error(e: io::Error) -> Result<(), Error> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        })
    }
}

/// Runs a printer on stdout.
pub fn stdout(f: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>) -> Result<(), Error> {
    f(&mut io::stdout().lock()).or_else(stdout_error)
}

pub fn operation_name(o: Operation) -> &'static str {
    match o {
        Operation::Encrypt => "encrypt",
        Operation::Decrypt => "decrypt",
        Operation::Rekey => "rekey",
    }
}

/// The label of a progress bar.
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Inspect => "inspect",
        Phase::Verify => "verify",
        Phase::Check => "check",
        Phase::Write(o) => operation_name(o),
    }
}

pub fn warning(w: &Warning) -> String {
    match w {
        Warning::OwnerNotKept { path, uid, gid, error } => format!(
            "{}: could not keep its owner (uid {uid}, gid {gid}): {error}; make sure the server's user can read and write it, or run as the store's owner",
            path.display()
        ),
        Warning::NotCopied { path } => {
            format!("{}: not a regular file; not copied", path.display())
        }
    }
}
pub mod raft;
pub mod raft_list;
