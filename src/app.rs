//! Runs a parsed command line: loads keys, calls the operation, prints the
//! result, and returns the exit code. The binary is a thin wrapper over this.

use crate::aead::Backend;
use crate::cli::{Cli, Command, CommonArgs, KeyArgs, StoreCommand};
use crate::crc::{self, Crc32};
use crate::error::Error;
use crate::keys::{self, Key, KeyOrigin};
use crate::progress::Progress;
use crate::store::StoreLayout;
use std::io::Write;
use zeroize::Zeroizing;

pub const EXIT_OK: i32 = 0;
pub const EXIT_AT_RISK: i32 = 1;
pub const EXIT_WONT_START: i32 = 2;
pub const EXIT_LOCKED: i32 = 3;
pub const EXIT_REFUSED: i32 = 4;
pub const EXIT_USAGE: i32 = 64;
pub const EXIT_IO: i32 = 74;

pub fn exit_code(e: &Error) -> i32 {
    match e {
        Error::Locked { .. } => EXIT_LOCKED,
        Error::Refused(_) => EXIT_REFUSED,
        Error::Usage(_) => EXIT_USAGE,
        Error::Key(
            keys::KeyError::Empty(_) | keys::KeyError::EmptyKey(_) | keys::KeyError::TooLarge(_),
        ) => EXIT_USAGE,
        Error::Io { .. } | Error::NotAStore { .. } | Error::Key(_) => EXIT_IO,
    }
}

pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "stanctl: warning: {msg}");
}

const CMDLINE_WARNING: &str = "a key given with --key is visible to other users of this machine (process list, shell history); prefer --key-file or NATS_STREAMING_ENCRYPTION_KEY";

/// Every key the user gave, numbered K1, K2, ... in this order: key files,
/// --key values, then NATS_STREAMING_ENCRYPTION_KEY.
/// Key indexes are stored in a byte (u8::MAX meaning "no key").
pub const MAX_KEYS: usize = 254;

pub fn load_keys(args: &KeyArgs, with_env: bool) -> Result<Vec<Key>, Error> {
    let given = args.key_files.len() + args.keys.len();
    if given > MAX_KEYS {
        return Err(Error::Usage(format!(
            "at most {MAX_KEYS} keys at once; got {given}"
        )));
    }
    let mut out = Vec::new();
    let next = |origin: KeyOrigin, material: &[u8], out: &mut Vec<Key>| {
        let id = format!("K{}", out.len() + 1);
        out.push(Key::from_material(id, origin, material));
    };
    for p in &args.key_files {
        let m = keys::read_key_file(p)?;
        next(KeyOrigin::File(p.clone()), &m, &mut out);
    }
    if !args.keys.is_empty() {
        warn(CMDLINE_WARNING);
    }
    for k in &args.keys {
        let m = Zeroizing::new(k.as_bytes().to_vec());
        if m.is_empty() {
            return Err(keys::KeyError::EmptyKey("--key".into()).into());
        }
        next(KeyOrigin::CommandLine, &m, &mut out);
    }
    if with_env {
        if let Some(m) = keys::env_key() {
            if out.len() == MAX_KEYS {
                return Err(Error::Usage(format!(
                    "at most {MAX_KEYS} keys at once, NATS_STREAMING_ENCRYPTION_KEY included"
                )));
            }
            next(KeyOrigin::Env, &m, &mut out);
        }
    }
    Ok(out)
}

/// The one key the server would use: NATS_STREAMING_ENCRYPTION_KEY when set
/// and non-empty, else the configured key (--key-file or --key).
pub fn server_key(args: &KeyArgs) -> Result<Option<Key>, Error> {
    let configured = args.key_files.len() + args.keys.len();
    if configured > 1 {
        return Err(Error::Usage(
            "the server runs with one key: give at most one --key-file or --key".into(),
        ));
    }
    if let Some(m) = keys::env_key() {
        if configured == 1 {
            warn("NATS_STREAMING_ENCRYPTION_KEY is set: the server uses it and ignores the configured key, and so does this prediction");
        }
        return Ok(Some(Key::from_material("K1", KeyOrigin::Env, &m)));
    }
    let mut ks = load_keys(args, false)?;
    Ok(ks.pop())
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

/// An output error, unless the reader went away (`| head`, `grep -q`): that
/// is no failure of the command, whose exit code stands.
pub fn stdout_error(e: std::io::Error) -> Result<(), Error> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        })
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .or_else(stdout_error)
}

/// What kind of command failed, for the advice that follows an error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    InPlace,
    Output,
}

pub fn run(cli: Cli) -> i32 {
    let rewrite_kind = |r: &crate::cli::RewriteArgs| {
        if r.output.is_some() {
            Kind::Output
        } else {
            Kind::InPlace
        }
    };
    let (r, kind) = match cli.command {
        Command::Store(StoreCommand::Inspect(a)) => (inspect(a), Kind::Read),
        Command::Store(StoreCommand::Verify(a)) => (crate::verify::cli(a), Kind::Read),
        Command::Store(StoreCommand::Encrypt(a)) => {
            let k = rewrite_kind(&a.rewrite);
            (crate::rewrite::cli_encrypt(a), k)
        }
        Command::Store(StoreCommand::Decrypt(a)) => {
            let k = rewrite_kind(&a.rewrite);
            (crate::rewrite::cli_decrypt(a), k)
        }
        Command::Store(StoreCommand::Rekey(a)) => {
            let k = rewrite_kind(&a.rewrite);
            (crate::rewrite::cli_rekey(a), k)
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "stanctl: error: {e}");
            if let Some(hint) = hint(&e, kind) {
                let _ = writeln!(std::io::stderr(), "stanctl: {hint}");
            }
            exit_code(&e)
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
        Error::Key(keys::KeyError::Read { .. }) => {
            Some("give --key-file the path of a readable regular file that holds the key")
        }
        _ => None,
    }
}

fn inspect(a: crate::cli::InspectArgs) -> Result<i32, Error> {
    let crc = crc_of(&a.common)?;
    let keys = load_keys(&a.keys, true)?;
    let layout = StoreLayout::discover(&a.common.dir)?;
    if let Some(pid) = crate::lock::holder(&layout.root)? {
        warn(&format!(
            "a running process (pid {pid}) holds the store's lock: what you see may change under you; stop the server for a stable view"
        ));
    }
    let bar = Progress::bytes(crate::progress::store_bytes(&layout), "inspect");
    let inc = |n| bar.inc(n);
    let report = crate::inspect::run(
        &layout,
        &keys,
        crc,
        backend_of(&a.common),
        &crate::inspect::InspectOptions { records: a.records },
        Some(&inc),
    )?;
    bar.finish();
    if a.common.json {
        print_json(&report)?;
    } else {
        crate::render::inspect(&report, a.by_slice, &mut std::io::stdout().lock())
            .or_else(stdout_error)?;
    }
    Ok(EXIT_OK)
}
