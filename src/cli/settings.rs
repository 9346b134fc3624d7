//! The server's settings for one command, each resolved with its source, in
//! the server's precedence: a flag wins over the configuration file
//! (`--config`), which wins over the server's default. For the key,
//! `NATS_STREAMING_ENCRYPTION_KEY` (set and non-empty) wins over both once
//! encryption is on, as in the server.
//!
//! The only place that reads `--config`: the file is read by `config` exactly
//! as the server reads it, refused unless it selects the file store (or says
//! nothing about the store type), and warned about when it holds a key and
//! other users may read it. Commands take what they need from [`Common`] and
//! [`VerifySettings`]; `report::settings` prints the block.

use super::args::{CipherArg, CommonArgs, KeyArgs, NodeArgs, VerifyArgs};
use super::keys;
use crate::config::{self, ConfigError, Location, Origin, ServerConfig, Setting};
use crate::crypto::aead::Cipher;
use crate::crypto::keys::{Key, KeyOrigin, ENV_VAR};
use crate::error::Error;
use crate::format::crc::{self, Crc32};
use crate::ops::node::NodeOptions;
use crate::ops::{Sink, Warning};
use crate::report::settings::{Block, Name, Row, Source, Value};
use std::path::{Path, PathBuf};

/// The server's default read buffer (`DefaultFileStoreOptions.ReadBufferSize`).
pub const DEFAULT_READ_BUFFER_SIZE: u64 = crate::ops::verify::DEFAULT_READ_BUFFER_SIZE;

/// A setting's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Resolved<T> {
    fn flag(value: T, flag: &'static str) -> Self {
        Resolved {
            value,
            source: Source::Flag(flag),
        }
    }

    fn default(value: T) -> Self {
        Resolved {
            value,
            source: Source::Default,
        }
    }

    fn file(value: T, origin: &Origin) -> Self {
        Resolved {
            value,
            source: source_of(origin),
        }
    }
}

/// The Settings block's source for a line of the configuration file.
pub fn source_of(o: &Origin) -> Source {
    Source::Config {
        file: o.pos.source.to_string(),
        line: o.pos.line,
        key: o.key.clone(),
    }
}

/// What every store command resolves.
#[derive(Debug)]
pub struct Common {
    /// `--config FILE` and what it says, when given.
    pub config: Option<(PathBuf, ServerConfig)>,
    pub dir: Resolved<PathBuf>,
    pub crc: Resolved<Crc32>,
    /// `file_options { crc }`: whether the server checks record CRCs.
    pub file_crc: Resolved<bool>,
    /// `cluster { log_path }`: the Raft log directory of a clustered node
    /// (flags win over it in [`node`]).
    pub cluster_log_path: Option<Resolved<PathBuf>>,
    /// `cluster { node_id }`.
    pub node_id: Option<Resolved<String>>,
    /// A `cluster { }` block: the file makes the server clustered.
    pub clustered: bool,
}

impl Common {
    pub fn server_config(&self) -> Option<&ServerConfig> {
        self.config.as_ref().map(|(_, c)| c)
    }
}

/// Reads `--config` as the server does; refuses store types other than
/// file; warns (through `sink`) about each file read for a key that other
/// users may read.
pub fn load_config(path: &Path, sink: &dyn Sink) -> Result<ServerConfig, Error> {
    let cfg = read_config(path, sink)?;
    cfg.check_file_store()?;
    Ok(cfg)
}

/// Reads `--config` as the server does and warns (through `sink`) about
/// each file read for a key that other users may read; any store type.
fn read_config(path: &Path, sink: &dyn Sink) -> Result<ServerConfig, Error> {
    let cfg = ServerConfig::load(path, &config::process_env)?;
    let readable = cfg
        .key_files_readable_by_others()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    for p in readable {
        sink.warn(Warning::SecretReadableByOthers { path: p });
    }
    Ok(cfg)
}

/// The settings every store command shares: DIR, --crc-poly, the file
/// options, the cluster settings.
pub fn common(a: &CommonArgs, sink: &dyn Sink) -> Result<Common, Error> {
    let config = match &a.config {
        Some(p) => Some((p.clone(), load_config(p, sink)?)),
        None => None,
    };
    let cfg = config.as_ref().map(|(_, c)| c);
    if let Some(c) = cfg.filter(|c| c.encryption_enabled()) {
        // The server refuses to start with a cipher it does not know.
        c.cipher()?;
    }
    if let Some(s) = cfg.and_then(|c| c.file.read_buffer_size.as_ref()) {
        // The server refuses to start with a negative read buffer.
        read_buffer_size(s)?;
    }
    let dir = match (&a.dir, cfg.and_then(|c| c.dir.as_ref())) {
        (Some(d), _) => Resolved::flag(d.clone(), "DIR"),
        // As the server: a relative `dir` is taken against the working
        // directory, not against the configuration file.
        (None, Some(s)) => Resolved::file(s.value.clone(), &s.origin),
        (None, None) => {
            return Err(Error::Usage(match &config {
                Some((p, _)) => format!(
                    "no store directory: give DIR, or set `dir` in {}",
                    p.display()
                ),
                None => "no store directory: give DIR (or --config FILE with a `dir` setting)"
                    .to_string(),
            }))
        }
    };
    let crc = match (&a.crc_poly, cfg.and_then(|c| c.file.crc_poly.as_ref())) {
        (Some(p), _) => Resolved::flag(
            crc::parse_poly(p).map(Crc32::new).map_err(Error::Usage)?,
            "--crc-poly",
        ),
        (None, Some(s)) => Resolved::file(Crc32::new(config_poly(s)?), &s.origin),
        (None, None) => Resolved::default(Crc32::ieee()),
    };
    let file = cfg.map(|c| &c.file);
    let file_crc = match file.and_then(|f| f.do_crc.as_ref()) {
        Some(s) => Resolved::file(s.value, &s.origin),
        None => Resolved::default(true),
    };
    let cluster = cfg.and_then(|c| c.cluster.as_ref());
    let clustered = cluster.is_some();
    let cluster_log_path = cluster
        .and_then(|c| c.log_path.as_ref())
        .map(|s| Resolved::file(s.value.clone(), &s.origin));
    let node_id = cluster
        .and_then(|c| c.node_id.as_ref())
        .map(|s| Resolved::file(s.value.clone(), &s.origin));
    Ok(Common {
        config,
        dir,
        crc,
        file_crc,
        cluster_log_path,
        node_id,
        clustered,
    })
}

/// `crc_poly` from the file: the server takes the low 32 bits of an int64;
/// stanctl refuses values that do not fit rather than guess what was meant.
fn config_poly(s: &Setting<i64>) -> Result<u32, Error> {
    match u32::try_from(s.value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConfigError::Setting {
            at: Location {
                pos: s.origin.pos.clone(),
                text: format!("{}: {}", s.origin.key, s.value),
            },
            message: "crc_poly must be a CRC-32 polynomial in Go's reversed form, between 1 and 0xffffffff (3988292384 is IEEE)".to_string(),
        }
        .into()),
    }
}

/// `read_buffer_size` from the file: the server's ReadBufferSize option
/// refuses a negative size.
fn read_buffer_size(s: &Setting<i64>) -> Result<u64, Error> {
    u64::try_from(s.value).map_err(|_| {
        ConfigError::Setting {
            at: Location {
                pos: s.origin.pos.clone(),
                text: format!("{}: {}", s.origin.key, s.value),
            },
            message: "read buffer size value must be a positive number".to_string(),
        }
        .into()
    })
}

/// The cipher the file names, as the server picks it (an empty name: AES
/// on amd64 and 386, ChaCha elsewhere).
fn config_cipher(cfg: &ServerConfig) -> Result<Option<Resolved<Cipher>>, Error> {
    Ok(cfg.cipher()?.map(|s| {
        let c = match s.value {
            config::Cipher::Aes => Cipher::Aes,
            config::Cipher::ChaCha => Cipher::ChaCha,
            config::Cipher::PlatformDefault => {
                if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
                    Cipher::Aes
                } else {
                    Cipher::ChaCha
                }
            }
        };
        Resolved::file(c, &s.origin)
    }))
}

/// A cipher: the flag, else the file's `encryption_cipher`.
pub fn cipher(flag: Option<CipherArg>, common: &Common) -> Result<Option<Resolved<Cipher>>, Error> {
    cipher_in(flag, common.server_config())
}

/// [`cipher`] with the configuration file itself (the Raft log commands).
pub fn cipher_in(
    flag: Option<CipherArg>,
    cfg: Option<&ServerConfig>,
) -> Result<Option<Resolved<Cipher>>, Error> {
    if let Some(c) = flag {
        return Ok(Some(Resolved::flag(c.into(), "--cipher")));
    }
    match cfg {
        Some(cfg) => config_cipher(cfg),
        None => Ok(None),
    }
}

/// The key `encryption_key` gives (none when absent or empty), named by
/// the file and line that hold it (numbered K1 here; `keys::load_keys`
/// numbers it among the others).
pub fn config_key(common: &Common) -> Option<Key> {
    file_key(common.server_config())
}

/// [`config_key`] with the configuration file itself (the Raft log commands).
pub fn file_key(cfg: Option<&ServerConfig>) -> Option<Key> {
    let s = cfg?.encryption_key.as_ref()?;
    if s.value.is_empty() {
        return None;
    }
    let origin = KeyOrigin::Config {
        file: PathBuf::from(s.origin.pos.source.to_string()),
        line: s.origin.pos.line,
    };
    Some(Key::from_material("K1", origin, s.value.expose()))
}

/// Where a clustered node's Raft log is: `--raft-log` or
/// `--cluster-log-path`, else the file's `cluster { log_path }`, else, when
/// the file makes the server clustered (a `cluster { }` block) without
/// `log_path`, the server's default: `<cluster id>/<node id>` under the
/// working directory (as a relative `dir`), the ids from the store's
/// `server.dat`. Without a file saying so, the node's log is reported as
/// not given (a clustered store alone does not say where the server ran).
#[derive(Debug)]
pub struct NodeSettings {
    pub options: NodeOptions,
    /// The Settings block's row for the log, when one is given.
    pub row: Option<Row>,
}

pub fn node(n: &NodeArgs, c: &Common) -> NodeSettings {
    let mut options = n.options();
    let row = if let Some(p) = &n.raft_log {
        Some(row(
            Name::RaftLog,
            &Resolved::flag(p.clone(), "--raft-log"),
            |p| Value::Path(p.clone()),
        ))
    } else if let Some(p) = &n.cluster_log_path {
        Some(row(
            Name::ClusterLogPath,
            &Resolved::flag(p.clone(), "--cluster-log-path"),
            |p| Value::Path(p.clone()),
        ))
    } else if let Some(r) = &c.cluster_log_path {
        options.cluster_log_path = Some(r.value.clone());
        Some(row(Name::ClusterLogPath, r, |p| Value::Path(p.clone())))
    } else if c.clustered {
        options.server_default = true;
        Some(Row {
            name: Name::ClusterLogPath,
            value: Value::Text("<cluster id>/<node id>".into()),
            source: Source::Default,
        })
    } else {
        None
    };
    NodeSettings { options, row }
}

/// What `verify` resolves beyond [`Common`].
#[derive(Debug)]
pub struct VerifySettings {
    pub encryption: Resolved<bool>,
    pub cipher: Resolved<Cipher>,
    pub truncate_on_eof: Resolved<bool>,
    /// `--file-crc`/`--no-file-crc`, else the file's `crc`.
    pub file_crc: Resolved<bool>,
    /// `--file-read-buffer-size`, else the file's `read_buffer_size`.
    pub read_buffer_size: Resolved<u64>,
    /// The key the server would use, when encryption is on.
    pub key: Option<Key>,
    /// Where the key came from (`Default` with no key).
    pub key_source: Source,
}

/// Whether a key was given with --key-file/--key, and with which flag.
fn key_flag(k: &KeyArgs) -> Option<&'static str> {
    if !k.key_files.is_empty() {
        Some("--key-file")
    } else if !k.keys.is_empty() {
        Some("--key")
    } else {
        None
    }
}

/// verify's settings: encryption (--encrypt/--no-encrypt, a key flag, the
/// file's `encrypt` or `encryption_key`), the cipher, truncate-on-EOF
/// (a flag only: the server has no configuration key for it) and the key.
pub fn verify(a: &VerifyArgs, common: &Common) -> Result<VerifySettings, Error> {
    let cfg = common.server_config();
    let encryption = encryption(a.encrypt, a.no_encrypt, &a.keys, cfg);
    let cipher = cipher(a.cipher, common)?.unwrap_or_else(|| Resolved::default(Cipher::Aes));
    let truncate_on_eof = if a.truncate_on_eof {
        Resolved::flag(true, "--truncate-on-eof")
    } else {
        Resolved::default(false)
    };
    let (key, key_source) = server_key(encryption.value, &a.keys, cfg)?;
    let file_crc = if a.no_file_crc {
        Resolved::flag(false, "--no-file-crc")
    } else if let Some(b) = a.file_crc {
        Resolved::flag(b, "--file-crc")
    } else {
        common.file_crc.clone()
    };
    let read_buffer_size = match (
        a.file_read_buffer_size,
        cfg.and_then(|c| c.file.read_buffer_size.as_ref()),
    ) {
        (Some(n), _) => Resolved::flag(n, "--file-read-buffer-size"),
        (None, Some(s)) => Resolved::file(read_buffer_size(s)?, &s.origin),
        (None, None) => Resolved::default(DEFAULT_READ_BUFFER_SIZE),
    };
    Ok(VerifySettings {
        encryption,
        cipher,
        truncate_on_eof,
        file_crc,
        read_buffer_size,
        key,
        key_source,
    })
}

/// Encryption on or off, as the server decides it: --encrypt/--no-encrypt,
/// a key flag, the file's `encrypt` or `encryption_key`.
fn encryption(
    encrypt: bool,
    no_encrypt: bool,
    keys: &KeyArgs,
    cfg: Option<&ServerConfig>,
) -> Resolved<bool> {
    if no_encrypt {
        Resolved::flag(false, "--no-encrypt")
    } else if encrypt {
        Resolved::flag(true, "--encrypt")
    } else if let Some(f) = key_flag(keys) {
        Resolved::flag(true, f)
    } else if let Some(cfg) = cfg {
        match (&cfg.encrypt, &cfg.encryption_key) {
            (Some(e), _) if e.value => Resolved::file(true, &e.origin),
            // A key turns encryption on, even with `encrypt: false`.
            (_, Some(k)) => Resolved::file(true, &k.origin),
            (Some(e), None) => Resolved::file(false, &e.origin),
            (None, None) => Resolved::default(false),
        }
    } else {
        Resolved::default(false)
    }
}

/// The key the server would use when encryption is on (the environment's
/// over a configured one), and where it came from (`Default`: no key).
fn server_key(
    encryption: bool,
    keys: &KeyArgs,
    cfg: Option<&ServerConfig>,
) -> Result<(Option<Key>, Source), Error> {
    Ok(if encryption {
        let flag = key_flag(keys);
        let file_key = if flag.is_none() { file_key(cfg) } else { None };
        match keys::server_key(keys, file_key)? {
            Some(k) => {
                let src = match &k.origin {
                    KeyOrigin::Env => Source::Env(ENV_VAR),
                    KeyOrigin::File(_) => Source::Flag("--key-file"),
                    KeyOrigin::CommandLine => Source::Flag("--key"),
                    KeyOrigin::Config { .. } => cfg
                        .and_then(|c| c.encryption_key.as_ref())
                        .map_or(Source::Default, |s| source_of(&s.origin)),
                };
                (Some(k), src)
            }
            None => (None, Source::Default),
        }
    } else {
        (None, Source::Default)
    })
}

fn row<T>(name: Name, r: &Resolved<T>, value: impl FnOnce(&T) -> Value) -> Row {
    Row {
        name,
        value: value(&r.value),
        source: r.source.clone(),
    }
}

/// The rows every command shares, after the command's own (the Raft log's
/// row comes from [`node`]).
fn common_rows(c: &Common, rows: &mut Vec<Row>) {
    rows.push(row(Name::CrcPoly, &c.crc, |p| Value::Poly(p.poly())));
    if let Some(n) = &c.node_id {
        rows.push(row(Name::NodeId, n, |n| Value::Text(n.clone())));
    }
}

/// verify's Settings block.
pub fn verify_block(c: &Common, v: &VerifySettings, n: &NodeSettings) -> Block {
    let mut rows = vec![
        row(Name::Dir, &c.dir, |d| Value::Path(d.clone())),
        row(Name::Encryption, &v.encryption, |b| Value::OnOff(*b)),
    ];
    if v.encryption.value {
        rows.push(Row {
            name: Name::Key,
            value: Value::Key(v.key.as_ref().map(|k| k.origin.to_string())),
            source: v.key_source.clone(),
        });
        rows.push(row(Name::Cipher, &v.cipher, |c| Value::Cipher(*c)));
    }
    rows.push(row(Name::TruncateOnEof, &v.truncate_on_eof, |b| {
        Value::OnOff(*b)
    }));
    rows.push(row(Name::FileCrc, &v.file_crc, |b| Value::OnOff(*b)));
    rows.push(row(Name::ReadBufferSize, &v.read_buffer_size, |n| {
        Value::Bytes(*n)
    }));
    rows.extend(n.row.clone());
    common_rows(c, &mut rows);
    Block {
        config: c.config.as_ref().map(|(p, _)| p.clone()),
        rows,
    }
}

/// `stanctl raft ... --config FILE`: the server's configuration file, read
/// as the store commands read it (same warnings), for what applies to a
/// Raft log: encryption, the key, the cipher. Any store type is accepted
/// (a clustered node's log is the same under each); the file's CRC and
/// file options do not apply (the log has no record CRCs), nor do `dir`
/// and `cluster { log_path }` (LOG names the file).
pub fn raft_config(
    path: Option<&Path>,
    sink: &dyn Sink,
) -> Result<Option<(PathBuf, ServerConfig)>, Error> {
    let Some(p) = path else { return Ok(None) };
    let cfg = read_config(p, sink)?;
    if cfg.encryption_enabled() {
        // The server refuses to start with a cipher it does not know.
        cfg.cipher()?;
    }
    Ok(Some((p.to_path_buf(), cfg)))
}

/// What `raft verify` resolves: encryption and the key, as `verify` does.
#[derive(Debug)]
pub struct RaftVerifySettings {
    pub encryption: Resolved<bool>,
    pub key: Option<Key>,
    pub key_source: Source,
}

pub fn raft_verify(
    encrypt: bool,
    no_encrypt: bool,
    keys: &KeyArgs,
    cfg: Option<&ServerConfig>,
) -> Result<RaftVerifySettings, Error> {
    let encryption = encryption(encrypt, no_encrypt, keys, cfg);
    let (key, key_source) = server_key(encryption.value, keys, cfg)?;
    Ok(RaftVerifySettings {
        encryption,
        key,
        key_source,
    })
}

/// raft verify's Settings block: the log, encryption, the key.
pub fn raft_verify_block(log: &Path, config: Option<&Path>, v: &RaftVerifySettings) -> Block {
    let mut rows = vec![
        row(
            Name::RaftLog,
            &Resolved::flag(log.to_path_buf(), "LOG"),
            |p| Value::Path(p.clone()),
        ),
        row(Name::Encryption, &v.encryption, |b| Value::OnOff(*b)),
    ];
    if v.encryption.value {
        rows.push(Row {
            name: Name::Key,
            value: Value::Key(v.key.as_ref().map(|k| k.origin.to_string())),
            source: v.key_source.clone(),
        });
    }
    Block {
        config: config.map(Path::to_path_buf),
        rows,
    }
}
