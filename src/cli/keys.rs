//! Every key the user gives, read from its source: key files, --key values
//! and NATS_STREAMING_ENCRYPTION_KEY. The only place that reads key material.

use super::args::{KeyArgs, NewKeyArgs};
use super::warn;
use crate::crypto::keys::{Key, KeyError, KeyOrigin, ENV_VAR, MAX_KEY_FILE};
use crate::error::Error;
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

const CMDLINE_WARNING: &str = "a key given with --key is visible to other users of this machine (process list, shell history); prefer --key-file or NATS_STREAMING_ENCRYPTION_KEY";

/// Key indexes are stored in a byte (u8::MAX meaning "no key").
pub const MAX_KEYS: usize = 254;

/// Every key the user gave, numbered K1, K2, ... in this order: key files,
/// --key values, the configuration file's `encryption_key` (`config`, built
/// by `cli::settings::config_key`; renumbered here), then
/// NATS_STREAMING_ENCRYPTION_KEY (when `with_env`).
pub fn load_keys(args: &KeyArgs, with_env: bool, config: Option<Key>) -> Result<Vec<Key>, Error> {
    let given = args.key_files.len() + args.keys.len() + usize::from(config.is_some());
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
        let m = read_key_file(p)?;
        next(KeyOrigin::File(p.clone()), &m, &mut out);
    }
    if !args.keys.is_empty() {
        warn(CMDLINE_WARNING);
    }
    for k in &args.keys {
        let m = Zeroizing::new(k.as_bytes().to_vec());
        if m.is_empty() {
            return Err(KeyError::EmptyKey("--key".into()).into());
        }
        next(KeyOrigin::CommandLine, &m, &mut out);
    }
    if let Some(mut k) = config {
        k.id = format!("K{}", out.len() + 1);
        out.push(k);
    }
    if with_env {
        if let Some(m) = env_key() {
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
/// and non-empty, else the configured key (--key-file or --key, or the
/// configuration file's `encryption_key` given as `config`).
pub fn server_key(args: &KeyArgs, config: Option<Key>) -> Result<Option<Key>, Error> {
    let configured = args.key_files.len() + args.keys.len() + usize::from(config.is_some());
    if configured > 1 {
        return Err(Error::Usage(
            "the server runs with one key: give at most one --key-file or --key".into(),
        ));
    }
    if let Some(m) = env_key() {
        if configured == 1 {
            warn("NATS_STREAMING_ENCRYPTION_KEY is set: the server uses it and ignores the configured key, and so does this prediction");
        }
        return Ok(Some(Key::from_material("K1", KeyOrigin::Env, &m)));
    }
    let mut ks = load_keys(args, false, config)?;
    Ok(ks.pop())
}

/// rekey's new key: --new-key-file or --new-key.
pub fn new_key(a: &NewKeyArgs) -> Result<Key, Error> {
    match (&a.new_key_file, &a.new_key) {
        (Some(p), None) => {
            let m = read_key_file(p)?;
            Ok(Key::from_material(
                "new key",
                KeyOrigin::File(p.to_path_buf()),
                &m,
            ))
        }
        (None, Some(k)) if !k.is_empty() => {
            warn("a key given with --new-key is visible to other users of this machine (process list, shell history); prefer --new-key-file");
            Ok(Key::from_material(
                "new key",
                KeyOrigin::CommandLine,
                k.as_bytes(),
            ))
        }
        (None, Some(_)) => Err(KeyError::EmptyKey("--new-key".into()).into()),
        _ => Err(Error::Usage(
            "give the new key with exactly one of --new-key-file or --new-key".into(),
        )),
    }
}

/// Reads a key file (`-`: standard input): its bytes with one trailing
/// newline (`\n` or `\r\n`) removed. Whitespace left at the end after that
/// is part of the key; a warning says so, since editors and `echo` add it.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(64));
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_KEY_FILE + 1)
            .read_to_end(&mut buf)
            .map_err(err)?;
    } else {
        let f = std::fs::File::open(path).map_err(err)?;
        f.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut buf)
            .map_err(err)?;
    }
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge(path.to_path_buf()));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    if let Some(&b) = buf.last().filter(|b| b.is_ascii_whitespace()) {
        let what = match b {
            b'\n' => "a second newline",
            b'\r' => "a carriage return",
            b'\t' => "a tab",
            _ => "a space",
        };
        warn(&format!(
            "key file {}: the key ends with {what} (after the one trailing newline stanctl removes); it is kept as part of the key. If that is not meant, remove it from the file",
            path.display()
        ));
    }
    Ok(buf)
}

/// Reads `NATS_STREAMING_ENCRYPTION_KEY` the way the server does: set and
/// non-empty, or absent.
pub fn env_key() -> Option<Zeroizing<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let v = std::env::var_os(ENV_VAR)?;
    let bytes = Zeroizing::new(v.as_bytes().to_vec());
    drop(v);
    if bytes.is_empty() {
        None
    } else {
        Some(bytes)
    }
}
