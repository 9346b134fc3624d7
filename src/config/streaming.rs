//! The streaming server's settings from a parsed configuration, as
//! nats-streaming-server v0.25.6 reads them in `ProcessConfigFile`
//! (`server/conf.go`):
//!
//! - a `streaming` map (any case), when present, is the only part read;
//!   otherwise the top-level keys are;
//! - keys are matched case-insensitively, with every alias the server knows;
//! - every key the server knows is type-checked, including settings this
//!   tool does not use, and a wrong type is rejected with the server's text
//!   (`parameter "x" value is expected to be bool, got string`); durations go
//!   through Go's `time.ParseDuration`, channel names through the server's
//!   validity check;
//! - keys the server does not know are ignored, as it ignores them;
//! - `encryption_key` turns encryption on.
//!
//! The server walks Go maps, whose order is random: when one setting is given
//! twice (`dir` and `datastore`, `DIR` and `dir`, `file` and `file_options`
//! both setting `crc`) with different values, which one the server uses is
//! not defined. That is reported as [`ConfigError::Ambiguous`] rather than
//! answered with a guess. Not modelled: the NATS server's own reading of the
//! same file (its `port`, `cluster`, ... settings), and `truncate_bad_eof`,
//! which the server only takes as a command-line flag.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::duration::parse_go_duration;
use super::error::{ConfigError, Location, Pos, REDACTED};
use super::parser::{is_secret_key, parse_file, Document, EnvLookup};
use super::tree::{Entry, Map, Node, Value};

/// Where a setting was found: the key as written and its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub key: String,
    pub pos: Pos,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ({})", self.pos.source, self.pos.line, self.key)
    }
}

/// A setting's value and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// Key material from the configuration file: wiped on drop, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

impl SecretKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretKey(Zeroizing::new(bytes))
    }

    /// The key bytes, for handing to the key derivation.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The server's store types (`store`), upper-cased as the server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    File,
    Memory,
    Sql,
}

impl StoreType {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::File => "FILE",
            StoreType::Memory => "MEMORY",
            StoreType::Sql => "SQL",
        }
    }
}

/// The cipher named by `encryption_cipher`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes,
    ChaCha,
    /// An empty name: the server picks AES on amd64 and 386, ChaCha
    /// elsewhere.
    PlatformDefault,
}

/// The environment variable whose value, when set and not empty, the server
/// uses as the key instead of `encryption_key`.
pub const ENCRYPTION_KEY_ENV: &str = "NATS_STREAMING_ENCRYPTION_KEY";

/// `file_options { ... }` (alias `file`). Integers are the server's int64;
/// durations are nanoseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileOptions {
    /// `compact`, `compact_enabled`
    pub compact_enabled: Option<Setting<bool>>,
    /// `compact_frag`, `compact_fragmentation`
    pub compact_fragmentation: Option<Setting<i64>>,
    /// `compact_interval` (seconds)
    pub compact_interval: Option<Setting<i64>>,
    /// `compact_min_size`
    pub compact_min_size: Option<Setting<i64>>,
    /// `buffer_size`
    pub buffer_size: Option<Setting<i64>>,
    /// `crc`, `do_crc`
    pub do_crc: Option<Setting<bool>>,
    /// `crc_poly`
    pub crc_poly: Option<Setting<i64>>,
    /// `sync`, `do_sync`, `sync_on_flush`
    pub do_sync: Option<Setting<bool>>,
    /// `slice_max_msgs`, `slice_max_count`, `slice_msgs`, `slice_count`
    pub slice_max_msgs: Option<Setting<i64>>,
    /// `slice_max_bytes`, `slice_max_size`, `slice_bytes`, `slice_size`
    pub slice_max_bytes: Option<Setting<i64>>,
    /// `slice_max_age`, `slice_age`, `slice_max_time`, `slice_time_limit`
    pub slice_max_age: Option<Setting<i64>>,
    /// `slice_archive_script`, `slice_archive`, `slice_script`
    pub slice_archive_script: Option<Setting<String>>,
    /// `file_descriptors_limit`, `fds_limit`
    pub file_descriptors_limit: Option<Setting<i64>>,
    /// `parallel_recovery`
    pub parallel_recovery: Option<Setting<i64>>,
    /// `file_read_buffer_size`, `read_buffer_size`
    pub read_buffer_size: Option<Setting<i64>>,
    /// `file_auto_sync`, `auto_sync`
    pub auto_sync: Option<Setting<i64>>,
}

/// `cluster { ... }`: its presence makes the server clustered.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    /// The (first) `cluster` key.
    pub origin: Origin,
    /// `node_id`
    pub node_id: Option<Setting<String>>,
    /// `bootstrap`
    pub bootstrap: Option<Setting<bool>>,
    /// `peers`
    pub peers: Option<Setting<Vec<String>>>,
    /// `log_path`: the Raft log directory (relative paths as for `dir`).
    pub log_path: Option<Setting<PathBuf>>,
    /// `sync`
    pub sync: Option<Setting<bool>>,
}

/// The streaming server's settings from its configuration file, each with
/// its origin. `None` means the file does not set it (the server's default
/// or its command line then decides).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Every file read, the top file first.
    pub files: Vec<PathBuf>,
    /// The `streaming` map the settings were read from, if any.
    pub streaming_map: Option<Origin>,
    /// `id`, `cid`, `cluster_id`
    pub cluster_id: Option<Setting<String>>,
    /// `st`, `store_type`, `store`, `storetype`
    pub store_type: Option<Setting<StoreType>>,
    /// `dir`, `datastore`, as written: the server takes a relative path
    /// against its working directory, not against the configuration file.
    pub dir: Option<Setting<PathBuf>>,
    /// `encrypt`
    pub encrypt: Option<Setting<bool>>,
    /// `encryption_cipher`, as written (`AES`, `CHACHA`, any case; empty
    /// means the server picks by platform).
    pub encryption_cipher: Option<Setting<String>>,
    /// `encryption_key`
    pub encryption_key: Option<Setting<SecretKey>>,
    /// `file`, `file_options`
    pub file: FileOptions,
    /// `cluster`
    pub cluster: Option<ClusterSettings>,
}

/// The key the server would use, and where it comes from.
#[derive(Debug)]
pub enum EffectiveKey {
    /// `NATS_STREAMING_ENCRYPTION_KEY`, which takes precedence.
    Env(SecretKey),
    /// `encryption_key` from the file.
    File(Setting<SecretKey>),
}

impl ServerConfig {
    /// Reads `path` and everything it includes, and maps it to settings.
    pub fn load(path: &Path, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let doc = parse_file(path, env)?;
        Self::from_document(&doc)
    }

    /// Maps a parsed document to settings.
    pub fn from_document(doc: &Document) -> Result<Self, ConfigError> {
        let mut cfg = Self::from_map(&doc.root)?;
        cfg.files = doc.files.clone();
        Ok(cfg)
    }

    /// Maps a parsed top-level map to settings.
    pub fn from_map(root: &Map) -> Result<Self, ConfigError> {
        let mut cfg = ServerConfig {
            files: Vec::new(),
            streaming_map: None,
            cluster_id: None,
            store_type: None,
            dir: None,
            encrypt: None,
            encryption_cipher: None,
            encryption_key: None,
            file: FileOptions::default(),
            cluster: None,
        };
        let mut scope = root;
        let mut streaming: Option<&Entry> = None;
        for e in root.iter().filter(|e| e.key.to_lowercase() == "streaming") {
            let Value::Map(m) = &e.node.value else {
                return Err(setting_error(
                    e,
                    format!(
                        "expected streaming section to be a map/struct, got {}",
                        e.node.value.go_format()
                    ),
                ));
            };
            if let Some(first) = streaming {
                if first.node.value != e.node.value {
                    return Err(ambiguous(e, first, "the streaming section"));
                }
            }
            streaming = Some(e);
            scope = m;
        }
        cfg.streaming_map = streaming.map(origin);
        for e in scope.iter() {
            cfg.top_level(e)?;
        }
        cfg.check_encrypt_against_key()?;
        Ok(cfg)
    }

    fn top_level(&mut self, e: &Entry) -> Result<(), ConfigError> {
        let name = e.key.to_lowercase();
        match name.as_str() {
            "id" | "cid" | "cluster_id" => set(&mut self.cluster_id, e, string(e)?, "cluster ID"),
            "discover_prefix" | "ns" | "nats_server" | "nats_server_url" | "credentials"
            | "ft_group" | "ft_group_name" | "syslog_name" | "username" | "user" | "password"
            | "pass" | "token" | "nkey_seed_file" => string(e).map(drop),
            "st" | "store_type" | "store" | "storetype" => {
                let s = string(e)?;
                let st = match s.to_uppercase().as_str() {
                    "FILE" => StoreType::File,
                    "MEMORY" => StoreType::Memory,
                    "SQL" => StoreType::Sql,
                    _ => return Err(setting_error(e, format!("unknown store type: {s}"))),
                };
                set(&mut self.store_type, e, st, "store type")
            }
            "dir" | "datastore" => set(&mut self.dir, e, path_of(e)?, "store directory"),
            "sd"
            | "stan_debug"
            | "sv"
            | "stan_trace"
            | "secure"
            | "partitioning"
            | "replace_durable"
            | "replace_durables"
            | "replace_duplicate_durable"
            | "replace_duplicate_durables" => boolean(e).map(drop),
            "tls" => each_in(e, "TLS", tls_entry),
            "limits" | "store_limits" | "storelimits" => {
                each_in(e, "store limits", store_limits_entry)
            }
            "file" | "file_options" => {
                let file = &mut self.file;
                each_in(e, "file options", |f| file_option(file, f))
            }
            "sql" | "sql_options" => each_in(e, "SQL options", sql_entry),
            "hbi"
            | "hb_interval"
            | "server_to_client_hb_interval"
            | "hbt"
            | "hb_timeout"
            | "server_to_client_hb_timeout" => duration(e).map(drop),
            "hbf" | "hb_fail_count" | "server_to_client_hb_fail_count" => integer(e).map(drop),
            "cluster" => self.cluster_map(e),
            "encrypt" => set(&mut self.encrypt, e, boolean(e)?, "encrypt"),
            "encryption_cipher" => set(
                &mut self.encryption_cipher,
                e,
                string(e)?,
                "encryption cipher",
            ),
            "encryption_key" => {
                let Value::String(t) = &e.node.value else {
                    return Err(type_error(e, "string"));
                };
                let key = SecretKey::new(t.as_bytes().to_vec());
                set(&mut self.encryption_key, e, key, "encryption key")
            }
            // Keys the server does not know are ignored.
            _ => Ok(()),
        }
    }

    /// `encrypt: false` with an empty `encryption_key`: the server sets
    /// encryption off for one and on for the other, in random order, and
    /// the empty key does not turn it on later; so whether it encrypts is
    /// not defined. With a non-empty key it always encrypts.
    fn check_encrypt_against_key(&self) -> Result<(), ConfigError> {
        match (&self.encrypt, &self.encryption_key) {
            (Some(enc), Some(key)) if !enc.value && key.value.is_empty() => {
                Err(ConfigError::Ambiguous {
                    at: Location {
                        pos: enc.origin.pos.clone(),
                        text: format!("{}: false", enc.origin.key),
                    },
                    other: key.origin.pos.clone(),
                    setting: "encryption (an empty encryption_key turns it on)".to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    fn cluster_map(&mut self, e: &Entry) -> Result<(), ConfigError> {
        let Value::Map(m) = &e.node.value else {
            return Err(setting_error(
                e,
                format!(
                    "expected cluster to be a map/struct, got {}",
                    e.node.value.go_format()
                ),
            ));
        };
        let c = self.cluster.get_or_insert_with(|| ClusterSettings {
            origin: origin(e),
            node_id: None,
            bootstrap: None,
            peers: None,
            log_path: None,
            sync: None,
        });
        for f in m.iter() {
            let name = f.key.to_lowercase();
            match name.as_str() {
                "node_id" => set(&mut c.node_id, f, string(f)?, "cluster node ID")?,
                "bootstrap" => set(&mut c.bootstrap, f, boolean(f)?, "cluster bootstrap")?,
                "peers" => set(&mut c.peers, f, peers(f)?, "cluster peers")?,
                "log_path" => set(&mut c.log_path, f, path_of(f)?, "cluster log path")?,
                "sync" => set(&mut c.sync, f, boolean(f)?, "cluster sync")?,
                "log_cache_size" | "log_snapshots" | "trailing_logs" => {
                    integer(f)?;
                }
                "proceed_on_restore_failure"
                | "allow_add_remove_node"
                | "raft_logging"
                | "bolt_free_list_sync"
                | "bolt_free_list_map"
                | "nodes_connections" => {
                    boolean(f)?;
                }
                "raft_heartbeat_timeout"
                | "raft_election_timeout"
                | "raft_lease_timeout"
                | "raft_commit_timeout" => {
                    duration(f)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the server encrypts: `encrypt: true`, or any `encryption_key`
    /// (the server turns encryption on for the key even when it is empty,
    /// and then needs `NATS_STREAMING_ENCRYPTION_KEY`).
    pub fn encryption_enabled(&self) -> bool {
        self.encrypt.as_ref().is_some_and(|s| s.value) || self.encryption_key.is_some()
    }

    /// The cipher the server would use when encrypting, or its error for a
    /// name it does not support ("encryption cipher not supported"). `None`
    /// when the file does not name one.
    pub fn cipher(&self) -> Result<Option<Setting<Cipher>>, ConfigError> {
        let Some(s) = &self.encryption_cipher else {
            return Ok(None);
        };
        let cipher = match s.value.to_uppercase().as_str() {
            "" => Cipher::PlatformDefault,
            "AES" => Cipher::Aes,
            "CHACHA" => Cipher::ChaCha,
            _ => {
                return Err(ConfigError::Setting {
                    at: Location {
                        pos: s.origin.pos.clone(),
                        text: format!("{}: {}", s.origin.key, s.value),
                    },
                    message: "encryption cipher not supported (supported: AES, CHACHA)".to_string(),
                })
            }
        };
        Ok(Some(Setting {
            value: cipher,
            origin: s.origin.clone(),
        }))
    }

    /// The key the server would use when encrypting: a non-empty
    /// `NATS_STREAMING_ENCRYPTION_KEY` first, then `encryption_key`.
    pub fn effective_key(&self, env: EnvLookup<'_>) -> Option<EffectiveKey> {
        if let Some(v) = env(ENCRYPTION_KEY_ENV).filter(|v| !v.is_empty()) {
            return Some(EffectiveKey::Env(SecretKey::new(v.into_bytes())));
        }
        self.encryption_key
            .as_ref()
            .filter(|k| !k.value.is_empty())
            .map(|k| EffectiveKey::File(k.clone()))
    }

    /// An error unless the file selects the file store. A file without
    /// `store` passes: the server's default (MEMORY) may be overridden by
    /// its command line, which the caller knows about and this does not.
    pub fn check_file_store(&self) -> Result<(), ConfigError> {
        match &self.store_type {
            Some(s) if s.value != StoreType::File => Err(ConfigError::UnsupportedStore {
                at: Location {
                    pos: s.origin.pos.clone(),
                    text: format!("{}: {}", s.origin.key, s.value.as_str().to_lowercase()),
                },
                value: s.value.as_str().to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Files read for this configuration that users other than the owner
    /// may read, when the configuration holds a key (any file may hold it,
    /// through includes and variables). The caller warns about each.
    pub fn key_files_readable_by_others(&self) -> std::io::Result<Vec<PathBuf>> {
        if self.encryption_key.is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for f in &self.files {
            if readable_by_others(f)? {
                out.push(f.clone());
            }
        }
        Ok(out)
    }
}

/// One setting the file gives, for a report's Settings block: the server's
/// name for it, its value as text (the key redacted) and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingLine {
    pub name: &'static str,
    pub value: String,
    pub origin: Origin,
}

impl ServerConfig {
    /// Every setting the file gives, in a fixed order. Durations are shown
    /// in nanoseconds, as the server stores them.
    pub fn setting_lines(&self) -> Vec<SettingLine> {
        let mut out = Vec::new();
        let mut add = |name: &'static str, value: Option<(String, &Origin)>| {
            if let Some((value, origin)) = value {
                out.push(SettingLine {
                    name,
                    value,
                    origin: origin.clone(),
                });
            }
        };
        fn show<T: fmt::Display>(s: &Option<Setting<T>>) -> Option<(String, &Origin)> {
            s.as_ref().map(|s| (s.value.to_string(), &s.origin))
        }
        fn show_path(s: &Option<Setting<PathBuf>>) -> Option<(String, &Origin)> {
            s.as_ref()
                .map(|s| (s.value.display().to_string(), &s.origin))
        }
        add("cluster_id", show(&self.cluster_id));
        add(
            "store",
            self.store_type
                .as_ref()
                .map(|s| (s.value.as_str().to_string(), &s.origin)),
        );
        add("dir", show_path(&self.dir));
        add("encrypt", show(&self.encrypt));
        add("encryption_cipher", show(&self.encryption_cipher));
        add(
            "encryption_key",
            self.encryption_key
                .as_ref()
                .map(|s| (REDACTED.to_string(), &s.origin)),
        );
        let f = &self.file;
        add("file_options.compact_enabled", show(&f.compact_enabled));
        add(
            "file_options.compact_fragmentation",
            show(&f.compact_fragmentation),
        );
        add("file_options.compact_interval", show(&f.compact_interval));
        add("file_options.compact_min_size", show(&f.compact_min_size));
        add("file_options.buffer_size", show(&f.buffer_size));
        add("file_options.do_crc", show(&f.do_crc));
        add("file_options.crc_poly", show(&f.crc_poly));
        add("file_options.do_sync", show(&f.do_sync));
        add("file_options.slice_max_msgs", show(&f.slice_max_msgs));
        add("file_options.slice_max_bytes", show(&f.slice_max_bytes));
        add("file_options.slice_max_age", show(&f.slice_max_age));
        add(
            "file_options.slice_archive_script",
            show(&f.slice_archive_script),
        );
        add(
            "file_options.file_descriptors_limit",
            show(&f.file_descriptors_limit),
        );
        add("file_options.parallel_recovery", show(&f.parallel_recovery));
        add("file_options.read_buffer_size", show(&f.read_buffer_size));
        add("file_options.auto_sync", show(&f.auto_sync));
        if let Some(c) = &self.cluster {
            add("cluster", Some(("clustered".to_string(), &c.origin)));
            add("cluster.node_id", show(&c.node_id));
            add("cluster.bootstrap", show(&c.bootstrap));
            add(
                "cluster.peers",
                c.peers.as_ref().map(|s| (s.value.join(","), &s.origin)),
            );
            add("cluster.log_path", show_path(&c.log_path));
            add("cluster.sync", show(&c.sync));
        }
        out
    }
}

/// Whether group or other users may read `path` (mode bits `0o044`).
#[cfg(unix)]
pub fn readable_by_others(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o044 != 0)
}

/// Without Unix mode bits there is nothing to check.
#[cfg(not(unix))]
pub fn readable_by_others(_path: &Path) -> std::io::Result<bool> {
    Ok(false)
}

fn origin(e: &Entry) -> Origin {
    Origin {
        key: e.key.clone(),
        pos: e.key_pos.clone(),
    }
}

/// The location of an entry for messages: `key: value`, the value redacted
/// for keys that may be secrets.
fn entry_location(e: &Entry) -> Location {
    let value = if is_secret_key(&e.key) {
        REDACTED.to_string()
    } else {
        e.node.value.go_format()
    };
    let mut text = format!("{}: {}", e.key, value);
    if text.chars().count() > 80 {
        text = text.chars().take(80).collect::<String>() + "…";
    }
    Location {
        pos: e.key_pos.clone(),
        text,
    }
}

fn setting_error(e: &Entry, message: String) -> ConfigError {
    ConfigError::Setting {
        at: entry_location(e),
        message,
    }
}

fn ambiguous(e: &Entry, first: &Entry, setting: &str) -> ConfigError {
    ConfigError::Ambiguous {
        at: entry_location(e),
        other: first.key_pos.clone(),
        setting: setting.to_string(),
    }
}

/// Stores a setting; a second, different value for it is ambiguous.
fn set<T: PartialEq>(
    slot: &mut Option<Setting<T>>,
    e: &Entry,
    value: T,
    what: &str,
) -> Result<(), ConfigError> {
    if let Some(prev) = slot {
        if prev.value != value {
            return Err(ConfigError::Ambiguous {
                at: entry_location(e),
                other: prev.origin.pos.clone(),
                setting: what.to_string(),
            });
        }
        return Ok(());
    }
    *slot = Some(Setting {
        value,
        origin: origin(e),
    });
    Ok(())
}

/// The server's `checkType` error, with the key as written.
fn type_error(e: &Entry, expected: &str) -> ConfigError {
    type_error_named(e, &e.key, expected)
}

fn type_error_named(e: &Entry, name: &str, expected: &str) -> ConfigError {
    setting_error(
        e,
        format!(
            "parameter {name:?} value is expected to be {expected}, got {}",
            e.node.value.kind_name()
        ),
    )
}

fn string(e: &Entry) -> Result<String, ConfigError> {
    match &e.node.value {
        Value::String(t) => Ok(t.to_string_lossy()),
        _ => Err(type_error(e, "string")),
    }
}

#[cfg(unix)]
fn path_of(e: &Entry) -> Result<PathBuf, ConfigError> {
    use std::os::unix::ffi::OsStrExt;
    match &e.node.value {
        Value::String(t) => Ok(PathBuf::from(std::ffi::OsStr::from_bytes(t.as_bytes()))),
        _ => Err(type_error(e, "string")),
    }
}

#[cfg(not(unix))]
fn path_of(e: &Entry) -> Result<PathBuf, ConfigError> {
    string(e).map(PathBuf::from)
}

fn boolean(e: &Entry) -> Result<bool, ConfigError> {
    match &e.node.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_error(e, "bool")),
    }
}

fn integer(e: &Entry) -> Result<i64, ConfigError> {
    match &e.node.value {
        Value::Integer(i) => Ok(*i),
        _ => Err(type_error(e, "int64")),
    }
}

/// A string the server passes to `time.ParseDuration`; nanoseconds.
fn duration(e: &Entry) -> Result<i64, ConfigError> {
    let s = string(e)?;
    parse_go_duration(&s).map_err(|m| setting_error(e, m))
}

fn peers(e: &Entry) -> Result<Vec<String>, ConfigError> {
    let Value::Array(items) = &e.node.value else {
        return Err(type_error(e, "slice"));
    };
    items
        .iter()
        .map(|n: &Node| match &n.value {
            Value::String(t) => Ok(t.to_string_lossy()),
            // The server's unchecked type assertion panics here.
            other => Err(setting_error(
                e,
                format!(
                    "cluster peers must be strings, got {} (the server would crash on it)",
                    other.kind_name()
                ),
            )),
        })
        .collect()
}

/// Runs `f` on each entry of the map `e` holds, or gives the server's
/// "expected X to be a map/struct" error.
fn each_in(
    e: &Entry,
    what: &str,
    f: impl FnMut(&Entry) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    let Value::Map(m) = &e.node.value else {
        return Err(setting_error(
            e,
            format!(
                "expected {what} to be a map/struct, got {}",
                e.node.value.go_format()
            ),
        ));
    };
    m.iter().try_for_each(f)
}

fn tls_entry(e: &Entry) -> Result<(), ConfigError> {
    match e.key.to_lowercase().as_str() {
        "client_cert" | "client_key" | "client_ca" | "client_cacert" | "server_name"
        | "server_hostname" => string(e).map(drop),
        "skip_verify" | "insecure" => boolean(e).map(drop),
        _ => Ok(()),
    }
}

fn store_limits_entry(e: &Entry) -> Result<(), ConfigError> {
    match e.key.to_lowercase().as_str() {
        "mc" | "max_channels" | "maxchannels" => integer(e).map(drop),
        "channels" | "channels_limits" | "channelslimits" | "per_channel"
        | "per_channel_limits" => {
            let Value::Map(m) = &e.node.value else {
                return Err(setting_error(
                    e,
                    format!(
                        "expected per channel limits to be a map/struct, got {}",
                        e.node.value.go_format()
                    ),
                ));
            };
            for ch in m.iter() {
                let Value::Map(limits) = &ch.node.value else {
                    return Err(setting_error(
                        ch,
                        format!(
                            "expected channel limits to be a map/struct, got {}",
                            ch.node.value.go_format()
                        ),
                    ));
                };
                if !channel_name_valid(&ch.key) {
                    return Err(setting_error(
                        ch,
                        format!("invalid channel name {:?}", ch.key),
                    ));
                }
                limits.iter().try_for_each(channel_limit)?;
            }
            Ok(())
        }
        _ => channel_limit(e),
    }
}

fn channel_limit(e: &Entry) -> Result<(), ConfigError> {
    match e.key.to_lowercase().as_str() {
        "msu" | "max_subs" | "max_subscriptions" | "maxsubscriptions" | "mm" | "max_msgs"
        | "maxmsgs" | "max_count" | "maxcount" | "mb" | "max_bytes" | "maxbytes" => {
            integer(e).map(drop)
        }
        "ma" | "max_age" | "maxage" | "mi" | "max_inactivity" | "maxinactivity" => {
            duration(e).map(drop)
        }
        _ => Ok(()),
    }
}

/// The server's channel name check, with wildcards allowed (per-channel
/// limits may use them).
fn channel_name_valid(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b[0] == b'.' {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let next = b.get(i + 1).copied();
        if c == b'/' {
            return false;
        }
        if c == b'.' && (next.is_none() || next == Some(b'.')) {
            return false;
        }
        if c == b'*' || c == b'>' {
            if i > 0 && b[i - 1] != b'.' {
                return false;
            }
            if c == b'>' && next.is_some() {
                return false;
            }
            if next.is_some_and(|n| n != b'.') {
                return false;
            }
        }
    }
    true
}

fn sql_entry(e: &Entry) -> Result<(), ConfigError> {
    // The server names these by their lower-cased key in its messages.
    let name = e.key.to_lowercase();
    let expect = match name.as_str() {
        "driver" | "source" => "string",
        "no_caching" => "bool",
        "max_open_conns" | "max_conns" | "bulk_insert_limit" => "int64",
        _ => return Ok(()),
    };
    if e.node.value.kind_name() != expect {
        return Err(type_error_named(e, &name, expect));
    }
    Ok(())
}

fn file_option(o: &mut FileOptions, e: &Entry) -> Result<(), ConfigError> {
    match e.key.to_lowercase().as_str() {
        "compact" | "compact_enabled" => set(
            &mut o.compact_enabled,
            e,
            boolean(e)?,
            "file compact_enabled",
        ),
        "compact_frag" | "compact_fragmentation" => set(
            &mut o.compact_fragmentation,
            e,
            integer(e)?,
            "file compact_fragmentation",
        ),
        "compact_interval" => set(
            &mut o.compact_interval,
            e,
            integer(e)?,
            "file compact_interval",
        ),
        "compact_min_size" => set(
            &mut o.compact_min_size,
            e,
            integer(e)?,
            "file compact_min_size",
        ),
        "buffer_size" => set(&mut o.buffer_size, e, integer(e)?, "file buffer_size"),
        "crc" | "do_crc" => set(&mut o.do_crc, e, boolean(e)?, "file crc"),
        "crc_poly" => set(&mut o.crc_poly, e, integer(e)?, "file crc_poly"),
        "sync" | "do_sync" | "sync_on_flush" => set(&mut o.do_sync, e, boolean(e)?, "file sync"),
        "slice_max_msgs" | "slice_max_count" | "slice_msgs" | "slice_count" => {
            set(&mut o.slice_max_msgs, e, integer(e)?, "file slice_max_msgs")
        }
        "slice_max_bytes" | "slice_max_size" | "slice_bytes" | "slice_size" => set(
            &mut o.slice_max_bytes,
            e,
            integer(e)?,
            "file slice_max_bytes",
        ),
        "slice_max_age" | "slice_age" | "slice_max_time" | "slice_time_limit" => {
            set(&mut o.slice_max_age, e, duration(e)?, "file slice_max_age")
        }
        "slice_archive_script" | "slice_archive" | "slice_script" => set(
            &mut o.slice_archive_script,
            e,
            string(e)?,
            "file slice_archive_script",
        ),
        "file_descriptors_limit" | "fds_limit" => set(
            &mut o.file_descriptors_limit,
            e,
            integer(e)?,
            "file file_descriptors_limit",
        ),
        "parallel_recovery" => set(
            &mut o.parallel_recovery,
            e,
            integer(e)?,
            "file parallel_recovery",
        ),
        "file_read_buffer_size" | "read_buffer_size" => set(
            &mut o.read_buffer_size,
            e,
            integer(e)?,
            "file read_buffer_size",
        ),
        "file_auto_sync" | "auto_sync" => set(&mut o.auto_sync, e, duration(e)?, "file auto_sync"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_the_server() {
        for ok in ["foo", "foo.bar", "foo.*", "foo.>", "*", ">", "*.bar"] {
            assert!(channel_name_valid(ok), "{ok}");
        }
        for bad in [
            "",
            ".foo",
            "foo.",
            "foo..bar",
            "foo/bar",
            "foo*",
            "foo.>.bar",
            "f>",
        ] {
            assert!(!channel_name_valid(bad), "{bad}");
        }
    }

    #[test]
    fn secret_key_debug_is_redacted() {
        let k = SecretKey::new(b"hunter2".to_vec());
        assert!(!format!("{k:?}").contains("hunter2"));
    }
}
