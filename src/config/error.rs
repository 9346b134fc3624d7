//! Errors from reading a configuration file: each points at a source, line
//! and column, with the offending text (redacted when it may be a secret).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a piece of configuration text came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A configuration file (the path as the server would open it).
    File(Arc<PathBuf>),
    /// The value of an environment variable referenced as `$NAME`.
    Env(Arc<str>),
    /// Text given directly (tests, `parse_str`).
    Text,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Text => f.write_str("<text>"),
        }
    }
}

/// A position in a source: 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pos {
    pub source: Source,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source, self.line, self.column)
    }
}

/// A position with the text found there, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub pos: Pos,
    /// The offending text (a trimmed source line or value), or
    /// `REDACTED` when it may hold key material.
    pub text: String,
}

/// What error messages show instead of text that may be a secret.
pub const REDACTED: &str = "<redacted>";

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pos)
    }
}

impl Location {
    fn near(&self) -> String {
        if self.text.is_empty() {
            String::new()
        } else {
            format!(" (at `{}`)", self.text)
        }
    }
}

/// An error reading or interpreting a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or read.
    #[error("cannot read configuration file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },

    /// The lexer or parser rejected the text; `message` is the server's.
    #[error("{at}: {message}{}", at.near())]
    Syntax { at: Location, message: String },

    /// `$NAME` is defined neither in an enclosing map nor in the environment.
    #[error("{at}: variable reference for '{name}' can not be found{}", at.near())]
    UndefinedVariable { at: Location, name: String },

    /// An environment variable's value refers back to itself.
    #[error("{at}: variable reference for '{name}' could not be parsed: variable reference cycle for '{name}'{}", at.near())]
    VariableCycle { at: Location, name: String },

    /// An environment variable's value is not valid configuration text.
    #[error("{at}: variable reference for '{name}' could not be parsed: {inner}")]
    BadVariable {
        at: Location,
        name: String,
        /// The error in the included file or variable value (already part
        /// of this error's message, so not reported as a `source()`).
        inner: Box<ConfigError>,
    },

    /// An included file could not be read or parsed.
    #[error("{at}: error parsing include file '{include}', {inner}")]
    Include {
        at: Location,
        include: String,
        /// The error in the included file or variable value (already part
        /// of this error's message, so not reported as a `source()`).
        inner: Box<ConfigError>,
    },

    /// A file includes itself, directly or through other files.
    #[error("{at}: include cycle: {} is already being read{}", path.display(), at.near())]
    IncludeCycle { at: Location, path: PathBuf },

    /// A bound that protects against hostile files was exceeded.
    #[error("{at}: {what}{}", at.near())]
    Limit { at: Location, what: String },

    /// The server rejects this setting (wrong type, bad value); `message`
    /// is the server's own text.
    #[error("{at}: {message}{}", at.near())]
    Setting { at: Location, message: String },

    /// A store type the server knows but this tool cannot work on.
    #[error("{at}: store type {value:?} is not supported: stanctl works on file stores only (store: file){}", at.near())]
    UnsupportedStore { at: Location, value: String },

    /// The same setting is given twice with different values; the server
    /// reads keys in random order, so which one wins is not defined.
    #[error("{at}: {setting} is also set at {other} with a different value; the server would pick one at random{}", at.near())]
    Ambiguous {
        at: Location,
        other: Pos,
        setting: String,
    },
}

impl ConfigError {
    /// Where the error is, following includes and variables to the file
    /// that holds the offending text (`None` for an unreadable top file).
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Include { at, inner, .. } | ConfigError::BadVariable { at, inner, .. } => {
                inner.location().or(Some(at))
            }
            ConfigError::Syntax { at, .. }
            | ConfigError::UndefinedVariable { at, .. }
            | ConfigError::VariableCycle { at, .. }
            | ConfigError::IncludeCycle { at, .. }
            | ConfigError::Limit { at, .. }
            | ConfigError::Setting { at, .. }
            | ConfigError::UnsupportedStore { at, .. }
            | ConfigError::Ambiguous { at, .. } => Some(at),
        }
    }

    /// The innermost error (inside includes and variables).
    pub fn innermost(&self) -> &ConfigError {
        match self {
            ConfigError::Include { inner, .. } | ConfigError::BadVariable { inner, .. } => {
                inner.innermost()
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_can_cross_threads_and_carry_one_message() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<ConfigError>();
        let inner = ConfigError::Read {
            path: PathBuf::from("x.conf"),
            reason: "missing".to_string(),
        };
        let at = Location {
            pos: Pos {
                source: Source::Text,
                line: 2,
                column: 3,
            },
            text: "include x.conf".to_string(),
        };
        let e = ConfigError::Include {
            at,
            include: "x.conf".to_string(),
            inner: Box::new(inner),
        };
        assert_eq!(
            e.to_string(),
            "<text>:2:3: error parsing include file 'x.conf', cannot read configuration file x.conf: missing"
        );
        // The inner error is in the message, not repeated as a source.
        assert!(std::error::Error::source(&e).is_none());
    }
}
