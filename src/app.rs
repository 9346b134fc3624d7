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
pub fn load_keys(args: &KeyArgs, with_env: bool) -> Result<Vec<Key>, Error> {
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

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(|e| Error::Io {
        path: "<stdout>".into(),
        source: e.into(),
    })?;
    let _ = writeln!(out);
    Ok(())
}

pub fn run(cli: Cli) -> i32 {
    let r = match cli.command {
        Command::Store(StoreCommand::Inspect(a)) => inspect(a),
        Command::Store(StoreCommand::Verify(a)) => crate::verify::cli(a),
        Command::Store(StoreCommand::Encrypt(a)) => crate::rewrite::cli_encrypt(a),
        Command::Store(StoreCommand::Decrypt(a)) => crate::rewrite::cli_decrypt(a),
        Command::Store(StoreCommand::Rekey(a)) => crate::rewrite::cli_rekey(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "stanctl: error: {e}");
            if let Some(hint) = hint(&e) {
                let _ = writeln!(std::io::stderr(), "stanctl: {hint}");
            }
            exit_code(&e)
        }
    }
}

fn hint(e: &Error) -> Option<&'static str> {
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
        Error::Io { .. } => Some(
            "fix the problem with the file named above (space, permissions, its type), then run the same command again: an interrupted encrypt/decrypt/rekey leaves every slice readable, and a rerun finishes it",
        ),
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
        crate::render::inspect(&report, a.by_slice, &mut std::io::stdout().lock()).map_err(
            |e| Error::Io {
                path: "<stdout>".into(),
                source: e,
            },
        )?;
    }
    Ok(EXIT_OK)
}
