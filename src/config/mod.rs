//! The streaming server's configuration file, read as the server reads it.
//!
//! `lexer` and `parser` implement the NATS configuration format (the `conf`
//! package of nats-server v2.9.24, which nats-streaming-server v0.25.6
//! builds with) and produce a value tree (`tree`); `streaming` maps that
//! tree to the server's settings as its `ProcessConfigFile` does. Nothing
//! here prints, touches a store or knows the command line: callers get typed
//! settings with their origins, or a `ConfigError` pointing at file, line
//! and column.

pub mod error;
pub mod lexer;
pub mod parser;
pub mod tree;

pub use error::{ConfigError, Location, Pos, Source};
pub use parser::{parse_bytes, parse_file, Document, EnvLookup, Limits};
pub use tree::{Entry, Map, Node, Text, Value};
