//! The streaming server's configuration file, read as the server reads it.
//!
//! `lexer` and `parser` implement the NATS configuration format (the `conf`
//! package of nats-server v2.9.24, which nats-streaming-server v0.25.6
//! builds with) and produce a value tree (`tree`); `streaming` maps that
//! tree to the server's settings as its `ProcessConfigFile` does, with Go's
//! duration syntax from `duration`. Nothing here prints, touches a store or
//! knows the command line: callers get typed settings with their origins,
//! or a `ConfigError` pointing at file, line and column.
//!
//! ```no_run
//! use stanctl::config::{process_env, ServerConfig};
//! let cfg = ServerConfig::load("nats-streaming.conf".as_ref(), &process_env)?;
//! cfg.check_file_store()?;
//! if let Some(dir) = &cfg.dir {
//!     println!("store directory {} from {}", dir.value.display(), dir.origin);
//! }
//! # Ok::<(), stanctl::config::ConfigError>(())
//! ```

pub mod duration;
pub mod error;
pub mod lexer;
pub mod parser;
pub mod streaming;
pub mod tree;

pub use error::{ConfigError, Location, Pos, Source, REDACTED};
pub use parser::{
    parse_bytes, parse_bytes_with_limits, parse_file, parse_file_with_limits, process_env,
    Document, EnvLookup, Limits,
};
pub use streaming::{
    readable_by_others, Cipher, ClusterSettings, EffectiveKey, FileOptions, Origin, SecretKey,
    ServerConfig, Setting, SettingLine, StoreType, ENCRYPTION_KEY_ENV,
};
pub use tree::{Entry, Map, Node, Text, Value};
