//! Every word the tool prints, one module per output: the human tables
//! (`inspect`, `verify`, `rewrite`), `--list` (in `verify`) and `--json`.
//! Operations hand over typed reports; the sentences are made here.

pub mod inspect;
pub mod json;
pub mod rewrite;
pub mod settings;
pub mod verify;
pub mod words;

use crate::error::Error;
use crate::ops::rewrite::Operation;
use crate::ops::{Phase, Warning};
use comfy_table::presets::{ASCII_FULL_CONDENSED, UTF8_FULL_CONDENSED};
use comfy_table::{CellAlignment, ContentArrangement, Table};
use std::io::{self, IsTerminal};
use std::sync::OnceLock;

/// How the human output is laid out: the width to fit (the terminal's; for
/// a pipe or file, `COLUMNS` when set, else none) and whether box-drawing
/// characters may be used (only on a terminal: a pipe gets ASCII).
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    pub width: Option<usize>,
    pub unicode: bool,
}

pub fn fit() -> Fit {
    static FIT: OnceLock<Fit> = OnceLock::new();
    *FIT.get_or_init(|| {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c >= 20);
        let tty = io::stdout().is_terminal();
        let width = if tty {
            terminal_size::terminal_size_of(io::stdout())
                .map(|(w, _)| w.0 as usize)
                .filter(|&w| w >= 20)
                .or(columns)
        } else {
            columns
        };
        Fit {
            width,
            unicode: tty,
        }
    })
}

pub fn table(header: &[&str]) -> Table {
    let f = fit();
    let mut t = Table::new();
    t.load_preset(if f.unicode {
        UTF8_FULL_CONDENSED
    } else {
        ASCII_FULL_CONDENSED
    });
    match f.width {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(w.min(u16::MAX as usize) as u16);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t.set_header(header.iter().copied());
    t
}

/// Words wrapped to the output's width (when it has one), continuation
/// lines indented by `indent`. Paths and commands are never broken.
pub fn wrap(text: &str, indent: &str) -> String {
    let Some(width) = fit().width else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        let mut at_start = true;
        for word in line.split(' ') {
            let n = word.chars().count();
            if !at_start && col + 1 + n > width {
                out.push('\n');
                out.push_str(indent);
                col = indent.len();
                at_start = true;
            }
            if !at_start {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += n;
            at_start = false;
        }
    }
    out
}

/// A byte count for people: `999468048` is `953.2 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// A table too wide for the output split into tables that fit: the first
/// `lead` columns (the names) start each part, the other columns follow in
/// order as many as fit. Columns from `numbers_from` on are right-aligned.
pub fn fitted_tables(
    header: &[String],
    rows: &[Vec<String>],
    lead: usize,
    numbers_from: usize,
) -> Vec<Table> {
    let col_width = |i: usize| {
        std::iter::once(&header[i])
            .chain(rows.iter().map(|r| &r[i]))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
            + 3 // padding on both sides and a border
    };
    let widths: Vec<usize> = (0..header.len()).map(col_width).collect();
    let lead_w: usize = 1 + widths[..lead].iter().sum::<usize>();
    let mut parts: Vec<Vec<usize>> = Vec::new();
    match fit().width {
        Some(max) if 1 + widths.iter().sum::<usize>() > max => {
            let mut cur: Vec<usize> = Vec::new();
            let mut w = lead_w;
            for (i, &cw) in widths.iter().enumerate().skip(lead) {
                if !cur.is_empty() && w + cw > max {
                    parts.push(std::mem::take(&mut cur));
                    w = lead_w;
                }
                cur.push(i);
                w += cw;
            }
            if !cur.is_empty() {
                parts.push(cur);
            }
        }
        _ => parts.push((lead..header.len()).collect()),
    }
    parts
        .into_iter()
        .map(|cols| {
            let idx: Vec<usize> = (0..lead).chain(cols).collect();
            let hdr: Vec<&str> = idx.iter().map(|&i| header[i].as_str()).collect();
            let mut t = table(&hdr);
            for r in rows {
                t.add_row(idx.iter().map(|&i| r[i].clone()).collect::<Vec<_>>());
            }
            let first_number = idx
                .iter()
                .position(|&i| i >= numbers_from)
                .unwrap_or(idx.len());
            align_numbers(&mut t, first_number);
            t
        })
        .collect()
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

/// Runs a printer on stdout, buffered: stdout is line-buffered, and a
/// listing of millions of records would otherwise cost a write(2) a line.
pub fn stdout(f: impl FnOnce(&mut Stdout) -> io::Result<()>) -> Result<(), Error> {
    let mut out = buffered_stdout();
    f(&mut out)
        .and_then(|()| io::Write::flush(&mut out))
        .or_else(stdout_error)
}

/// What the printers write to.
pub type Stdout = io::BufWriter<io::StdoutLock<'static>>;

pub fn buffered_stdout() -> Stdout {
    io::BufWriter::with_capacity(1 << 16, io::stdout().lock())
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
        Phase::Check | Phase::CheckAndStage(..) => "check",
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
        Warning::SecretReadableByOthers { path } => format!(
            "{}: holds an encryption key (or is read with one) and other users may read it; restrict it to its owner (chmod go-rwx {})",
            path.display(),
            path.display()
        ),
    }
}
pub mod raft;
pub mod raft_list;
