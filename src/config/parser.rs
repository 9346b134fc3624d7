//! Parser for the NATS configuration format: tokens to a value tree, with
//! variables and includes resolved as nats-server v2.9.24's `conf` package
//! does (the version nats-streaming-server v0.25.6 builds with).
//!
//! Like the reference, the parser keeps a stack of open maps and arrays and a
//! separate stack of keys waiting for their value; a value is stored under
//! the most recent waiting key. Keeping that shape keeps the reference's
//! results on odd input too (a size with an unknown unit such as `1kbb`
//! stores nothing, and its key then waits for the next value).
//!
//! Variables (`$NAME`) are looked up in the enclosing maps, innermost first,
//! then in the environment through a caller-supplied function; an
//! environment value is parsed as `pk=VALUE`, like the reference does.
//! `include FILE` is read relative to the including file's directory and
//! its keys are merged into the current map; included files have their own
//! variable scope.
//!
//! Deviations, all on input the server cannot run with: include cycles and
//! environment variable cycles are errors here (the server recurses until it
//! crashes), and the bounds in [`Limits`] reject files large enough to
//! exhaust memory or stack.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::error::{ConfigError, Location, Pos, Source, REDACTED};
use super::lexer::{Lexer, Token, TokenKind};
use super::tree::{Map, Node, Text, Value};

/// How environment variables are looked up: a function from name to value,
/// so that tests need not change the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for callers that want it. A value that is not
/// UTF-8 is converted lossily (the server would take its bytes as they are).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Bounds that keep a hostile or broken file from exhausting memory, stack
/// or time. Real server configurations are a few kilobytes with a handful of
/// includes, so each bound leaves orders of magnitude of headroom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file read (bigger files are refused before parsing).
    pub max_file_bytes: u64,
    /// Total bytes read across all files and environment values, since one
    /// small file may be included many times.
    pub max_total_bytes: u64,
    /// Files (or environment values) being parsed inside one another.
    pub max_include_depth: usize,
    /// Maps and arrays inside one another; the tree is dropped and cloned
    /// recursively, so depth must stay well below what the stack can hold.
    pub max_nesting: usize,
    /// Values in all trees built; variables copy whole maps, so without a
    /// bound a few lines could build an exponentially large tree.
    pub max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 4 << 20,
            max_total_bytes: 64 << 20,
            max_include_depth: 16,
            max_nesting: 128,
            max_values: 1_000_000,
        }
    }
}

/// A parsed configuration file.
#[derive(Debug)]
pub struct Document {
    pub root: Map,
    /// Every file read, the top file first (for permission checks).
    pub files: Vec<PathBuf>,
}

/// Reads and parses `path` as the server would, with default limits.
pub fn parse_file(path: &Path, env: EnvLookup<'_>) -> Result<Document, ConfigError> {
    parse_file_with_limits(path, env, Limits::default())
}

/// Reads and parses `path` with the given limits.
pub fn parse_file_with_limits(
    path: &Path,
    env: EnvLookup<'_>,
    limits: Limits,
) -> Result<Document, ConfigError> {
    let mut session = Session::new(env, limits);
    let canonical = std::fs::canonicalize(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let data = session.read(path).map_err(|reason| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    session.include_stack.push(canonical);
    let source = Source::File(Arc::new(path.to_path_buf()));
    let root = Parser::new(&mut session, &data, source, go_dir(path)).run()?;
    Ok(Document {
        root,
        files: session.files,
    })
}

/// Parses configuration text (includes are relative to the current
/// directory, as for the server's `conf.Parse`).
pub fn parse_bytes(input: &[u8], env: EnvLookup<'_>) -> Result<Map, ConfigError> {
    parse_bytes_with_limits(input, env, Limits::default())
}

/// Parses configuration text with the given limits.
pub fn parse_bytes_with_limits(
    input: &[u8],
    env: EnvLookup<'_>,
    limits: Limits,
) -> Result<Map, ConfigError> {
    let mut session = Session::new(env, limits);
    if input.len() as u64 > limits.max_file_bytes {
        return Err(ConfigError::Limit {
            at: Location {
                pos: Pos {
                    source: Source::Text,
                    line: 1,
                    column: 1,
                },
                text: String::new(),
            },
            what: format!("text is larger than {} bytes", limits.max_file_bytes),
        });
    }
    Parser::new(&mut session, input, Source::Text, PathBuf::from(".")).run()
}

/// State shared by a file and everything it includes.
struct Session<'e> {
    env: EnvLookup<'e>,
    limits: Limits,
    /// Canonical paths of the files being parsed, outermost first.
    include_stack: Vec<PathBuf>,
    /// Environment variables being expanded, to stop cycles.
    env_stack: Vec<String>,
    /// Nested parsers (includes and environment values).
    depth: usize,
    values: usize,
    bytes_read: u64,
    files: Vec<PathBuf>,
}

impl<'e> Session<'e> {
    fn new(env: EnvLookup<'e>, limits: Limits) -> Self {
        Session {
            env,
            limits,
            include_stack: Vec::new(),
            env_stack: Vec::new(),
            depth: 0,
            values: 0,
            bytes_read: 0,
            files: Vec::new(),
        }
    }

    /// Reads a whole file within the size bounds, into memory that is wiped
    /// on drop (the file may hold a key).
    fn read(&mut self, path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if meta.is_dir() {
            return Err("is a directory".to_string());
        }
        let max = self.limits.max_file_bytes;
        let hint = usize::try_from(meta.len().min(max)).unwrap_or(0);
        // Sized up front so the buffer is not reallocated (leaving unwiped
        // copies) while reading.
        let mut buf = Zeroizing::new(Vec::with_capacity(hint.saturating_add(1)));
        file.take(max.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        if buf.len() as u64 > max {
            return Err(format!("file is larger than {max} bytes"));
        }
        self.bytes_read = self.bytes_read.saturating_add(buf.len() as u64);
        if self.bytes_read > self.limits.max_total_bytes {
            return Err(format!(
                "more than {} bytes read across included files",
                self.limits.max_total_bytes
            ));
        }
        self.files.push(path.to_path_buf());
        Ok(buf)
    }
}

/// An open map or array.
enum Ctx {
    Map(Map, Pos),
    Array(Vec<Node>, Pos),
}

struct Parser<'s, 'e, 'i> {
    session: &'s mut Session<'e>,
    lexer: Lexer<'i>,
    input: &'i [u8],
    source: Source,
    /// Directory includes are relative to.
    dir: PathBuf,
    ctxs: Vec<Ctx>,
    /// Keys waiting for their value.
    keys: Vec<(String, Pos)>,
    /// Nesting of the place this input's top level lands in (an included
    /// file's keys are merged where the include is), so that the nesting
    /// bound holds for the merged tree.
    base_depth: usize,
}

impl<'s, 'e, 'i> Parser<'s, 'e, 'i> {
    fn new(session: &'s mut Session<'e>, input: &'i [u8], source: Source, dir: PathBuf) -> Self {
        let root = Pos {
            source: source.clone(),
            line: 1,
            column: 1,
        };
        Parser {
            session,
            lexer: Lexer::new(input),
            input,
            source,
            dir,
            ctxs: vec![Ctx::Map(Map::default(), root)],
            keys: Vec::new(),
            base_depth: 0,
        }
    }

    fn run(mut self) -> Result<Map, ConfigError> {
        let mut prev: Option<Token> = None;
        loop {
            let t = self.lexer.next_token();
            if t.kind == TokenKind::Eof {
                // A key with no value is an error, except a lone `}` (the
                // end of a file wrapped in braces, JSON style).
                if let Some(p) =
                    prev.filter(|p| p.kind == TokenKind::Key && p.text.as_slice() != b"}")
                {
                    return Err(ConfigError::Syntax {
                        at: self.location(p.line, p.column),
                        message: format!(
                            "config is invalid: key '{}' has no value",
                            p.text_lossy()
                        ),
                    });
                }
                break;
            }
            self.process(&t)?;
            prev = Some(t);
        }
        match self.ctxs.into_iter().next() {
            Some(Ctx::Map(m, _)) => Ok(m),
            _ => Err(ConfigError::Syntax {
                at: Location {
                    pos: Pos {
                        source: self.source,
                        line: 1,
                        column: 1,
                    },
                    text: String::new(),
                },
                message: "BUG in parser, context stack empty".to_string(),
            }),
        }
    }

    fn pos(&self, t: &Token) -> Pos {
        Pos {
            source: self.source.clone(),
            line: t.line,
            column: t.column,
        }
    }

    /// A location in this input, with its line as the offending text unless
    /// the line or the key being read may hold a secret.
    fn location(&self, line: u32, column: u32) -> Location {
        let raw = self.lexer.line_index().line_text(self.input, line);
        let text = Zeroizing::new(String::from_utf8_lossy(raw).trim().to_string());
        let waiting = self.keys.last().map(|(k, _)| k.as_str()).unwrap_or("");
        // Environment values are often secrets and the variable's name says
        // nothing about how it is used, so their text is never shown.
        let from_env = matches!(self.source, Source::Env(_));
        let text = if from_env || is_secret_key(waiting) || is_secret_key(first_word(&text)) {
            REDACTED.to_string()
        } else {
            shorten(&text)
        };
        Location {
            pos: Pos {
                source: self.source.clone(),
                line,
                column,
            },
            text,
        }
    }

    fn at(&self, t: &Token) -> Location {
        self.location(t.line, t.column)
    }

    /// An error about token `t`; when its text may be a secret, messages
    /// that quote it (`integer '...' is out of the range`) do not.
    fn syntax(&self, t: &Token, message: String) -> ConfigError {
        let at = self.at(t);
        let message = if at.text == REDACTED && t.kind != TokenKind::Error && !t.text.is_empty() {
            message.replace(&t.text_lossy(), REDACTED)
        } else {
            message
        };
        ConfigError::Syntax { at, message }
    }

    /// A lexer error. At the end of the input inside a map or array, the
    /// thing to fix is the map or array left open, so that is where it points.
    fn lexer_error(&self, t: &Token) -> ConfigError {
        let message = t.text_lossy();
        let open = match self.ctxs.last() {
            Some(Ctx::Map(_, pos)) if self.ctxs.len() > 1 => Some(("map", pos)),
            Some(Ctx::Array(_, pos)) => Some(("array", pos)),
            _ => None,
        };
        match open {
            Some((what, pos)) if t.offset >= self.input.len() => ConfigError::Syntax {
                at: self.location(pos.line, pos.column),
                message: format!("{message} (unterminated {what}: it opens here)"),
            },
            _ => self.syntax(t, message),
        }
    }

    fn process(&mut self, t: &Token) -> Result<(), ConfigError> {
        match t.kind {
            TokenKind::Error => Err(self.lexer_error(t)),
            TokenKind::Key => {
                let pos = self.pos(t);
                self.keys.push((t.text_lossy(), pos));
                Ok(())
            }
            TokenKind::MapStart => {
                self.open(t)?;
                let pos = self.pos(t);
                self.ctxs.push(Ctx::Map(Map::default(), pos));
                Ok(())
            }
            TokenKind::ArrayStart => {
                self.open(t)?;
                let pos = self.pos(t);
                self.ctxs.push(Ctx::Array(Vec::new(), pos));
                Ok(())
            }
            TokenKind::MapEnd | TokenKind::ArrayEnd => {
                // The lexer only closes what it opened, so the root is never
                // popped; checked anyway rather than trusted.
                if self.ctxs.len() < 2 {
                    return Err(self.syntax(t, "BUG in parser, context stack empty".to_string()));
                }
                let node = match self.ctxs.pop() {
                    Some(Ctx::Map(m, pos)) => Node {
                        value: Value::Map(m),
                        pos,
                    },
                    Some(Ctx::Array(a, pos)) => Node {
                        value: Value::Array(a),
                        pos,
                    },
                    None => {
                        return Err(self.syntax(t, "BUG in parser, context stack empty".to_string()))
                    }
                };
                self.set_value(t, node)
            }
            TokenKind::String => {
                let v = Value::String(Text::new(t.text.to_vec()));
                self.set_scalar(t, v)
            }
            TokenKind::Integer => match parse_integer(&t.text) {
                Ok(Some(n)) => self.set_scalar(t, Value::Integer(n)),
                // An unknown unit: the reference stores nothing.
                Ok(None) => Ok(()),
                Err(message) => Err(self.syntax(t, message)),
            },
            TokenKind::Float => {
                let s = t.text_lossy();
                match s.parse::<f64>() {
                    Ok(x) if x.is_finite() => self.set_scalar(t, Value::Float(x)),
                    Ok(_) => Err(self.syntax(t, format!("float '{s}' is out of the range"))),
                    Err(_) => Err(self.syntax(t, format!("expected float, but got '{s}'"))),
                }
            }
            TokenKind::Bool => {
                let s = t.text_lossy().to_lowercase();
                let b = match s.as_str() {
                    "true" | "yes" | "on" => true,
                    "false" | "no" | "off" => false,
                    _ => {
                        return Err(self.syntax(
                            t,
                            format!("expected boolean value, but got '{}'", t.text_lossy()),
                        ))
                    }
                };
                self.set_scalar(t, Value::Bool(b))
            }
            TokenKind::Datetime => {
                let s = t.text_lossy();
                if valid_zulu_datetime(&s) {
                    self.set_scalar(t, Value::Datetime(s))
                } else {
                    Err(self.syntax(
                        t,
                        format!("expected Zulu formatted DateTime, but got '{s}'"),
                    ))
                }
            }
            TokenKind::Variable => self.variable(t),
            TokenKind::Include => self.include(t),
            TokenKind::Text | TokenKind::CommentStart | TokenKind::Eof => Ok(()),
        }
    }

    /// How deep the innermost open map or array is in the merged tree.
    fn depth(&self) -> usize {
        self.base_depth + self.ctxs.len()
    }

    fn open(&mut self, t: &Token) -> Result<(), ConfigError> {
        if self.depth() > self.session.limits.max_nesting {
            return Err(ConfigError::Limit {
                at: self.at(t),
                what: format!(
                    "maps and arrays nested more than {} deep",
                    self.session.limits.max_nesting
                ),
            });
        }
        self.count(t, 1)
    }

    /// Counts `n` new values against the bound.
    fn count(&mut self, t: &Token, n: usize) -> Result<(), ConfigError> {
        let total = self.session.values.saturating_add(n);
        if total > self.session.limits.max_values {
            return Err(ConfigError::Limit {
                at: self.at(t),
                what: format!("more than {} values", self.session.limits.max_values),
            });
        }
        self.session.values = total;
        Ok(())
    }

    fn set_scalar(&mut self, t: &Token, value: Value) -> Result<(), ConfigError> {
        self.count(t, 1)?;
        let pos = self.pos(t);
        self.set_value(t, Node { value, pos })
    }

    /// Stores a finished value in the open array, or in the open map under
    /// the most recent waiting key.
    fn set_value(&mut self, t: &Token, node: Node) -> Result<(), ConfigError> {
        match self.ctxs.last_mut() {
            Some(Ctx::Array(a, _)) => {
                a.push(node);
                Ok(())
            }
            Some(Ctx::Map(m, _)) => match self.keys.pop() {
                Some((key, key_pos)) => {
                    m.insert(key, key_pos, node);
                    Ok(())
                }
                None => Err(self.syntax(t, "BUG in parser, keys stack empty".to_string())),
            },
            None => Err(self.syntax(t, "BUG in parser, context stack empty".to_string())),
        }
    }

    fn variable(&mut self, t: &Token) -> Result<(), ConfigError> {
        let name = t.text_lossy();
        // Unquoted bcrypt hashes (`$2a$...`) are strings, not variables.
        if t.text.starts_with(b"2a$") {
            let mut bytes = b"$".to_vec();
            bytes.extend_from_slice(&t.text);
            let v = Value::String(Text::new(bytes));
            return self.set_scalar(t, v);
        }
        let found = self.ctxs.iter().rev().find_map(|c| match c {
            Ctx::Map(m, _) => m.get(&name).map(|e| e.node.value.clone()),
            Ctx::Array(..) => None,
        });
        let value = match found {
            Some(v) => v,
            None => self.env_variable(t, &name)?,
        };
        // Copies of maps and arrays count towards the bounds like the
        // originals did.
        if depth(&value) + self.depth() > self.session.limits.max_nesting {
            return Err(ConfigError::Limit {
                at: self.at(t),
                what: format!(
                    "maps and arrays nested more than {} deep",
                    self.session.limits.max_nesting
                ),
            });
        }
        self.count(t, value.weight())?;
        let pos = self.pos(t);
        self.set_value(t, Node { value, pos })
    }

    /// `$NAME` not defined in the file: the environment, whose value is
    /// parsed as the text `pk=VALUE`.
    fn env_variable(&mut self, t: &Token, name: &str) -> Result<Value, ConfigError> {
        if self.session.env_stack.iter().any(|n| n == name) {
            return Err(ConfigError::VariableCycle {
                at: self.at(t),
                name: name.to_string(),
            });
        }
        let Some(raw) = (self.session.env)(name) else {
            return Err(ConfigError::UndefinedVariable {
                at: self.at(t),
                name: name.to_string(),
            });
        };
        let text = Zeroizing::new(format!("pk={raw}").into_bytes());
        drop(Zeroizing::new(raw.into_bytes()));
        if let Err(what) = self.enter(text.len() as u64) {
            return Err(ConfigError::Limit {
                at: self.at(t),
                what,
            });
        }
        self.session.env_stack.push(name.to_string());
        let source = Source::Env(Arc::from(name));
        let base_depth = self.depth().saturating_sub(1);
        let mut sub = Parser::new(self.session, &text, source, PathBuf::from("."));
        sub.base_depth = base_depth;
        let parsed = sub.run();
        self.session.env_stack.pop();
        self.session.depth = self.session.depth.saturating_sub(1);
        let map = parsed.map_err(|e| ConfigError::BadVariable {
            at: self.at(t),
            name: name.to_string(),
            inner: Box::new(e),
        })?;
        match map.into_entries().into_iter().find(|e| e.key == "pk") {
            Some(e) => Ok(e.node.value),
            None => Err(ConfigError::UndefinedVariable {
                at: self.at(t),
                name: name.to_string(),
            }),
        }
    }

    /// Accounts for a nested parse; the caller decrements `depth` after.
    fn enter(&mut self, bytes: u64) -> Result<(), String> {
        let limits = self.session.limits;
        if self.session.depth >= limits.max_include_depth {
            return Err(format!(
                "includes and environment variables nested more than {} deep",
                limits.max_include_depth
            ));
        }
        self.session.bytes_read = self.session.bytes_read.saturating_add(bytes);
        if self.session.bytes_read > limits.max_total_bytes {
            return Err(format!(
                "more than {} bytes read across included files",
                limits.max_total_bytes
            ));
        }
        self.session.depth += 1;
        Ok(())
    }

    fn include(&mut self, t: &Token) -> Result<(), ConfigError> {
        let include = t.text_lossy();
        let path = go_join(&self.dir, &t.text);
        let wrap = |at: Location, e: ConfigError| ConfigError::Include {
            at,
            include: include.clone(),
            inner: Box::new(e),
        };
        let canonical = match std::fs::canonicalize(&path) {
            Ok(c) => c,
            Err(e) => {
                let read = ConfigError::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                return Err(wrap(self.at(t), read));
            }
        };
        if self.session.include_stack.contains(&canonical) {
            return Err(ConfigError::IncludeCycle {
                at: self.at(t),
                path,
            });
        }
        if let Err(what) = self.enter(0) {
            return Err(ConfigError::Limit {
                at: self.at(t),
                what,
            });
        }
        let data = match self.session.read(&path) {
            Ok(d) => d,
            Err(reason) => {
                self.session.depth = self.session.depth.saturating_sub(1);
                let read = ConfigError::Read {
                    path: path.clone(),
                    reason,
                };
                return Err(wrap(self.at(t), read));
            }
        };
        self.session.include_stack.push(canonical);
        let source = Source::File(Arc::new(path.clone()));
        let base_depth = self.depth().saturating_sub(1);
        let mut sub = Parser::new(self.session, &data, source, go_dir(&path));
        sub.base_depth = base_depth;
        let parsed = sub.run();
        self.session.include_stack.pop();
        self.session.depth = self.session.depth.saturating_sub(1);
        let map = parsed.map_err(|e| wrap(self.at(t), e))?;
        // The included keys land in the current map, as if written here.
        for e in map.into_entries() {
            self.keys.push((e.key, e.key_pos));
            self.set_value(t, e.node)?;
        }
        Ok(())
    }
}

/// Nesting depth of maps and arrays in a value.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(|n| depth(&n.value)).max().unwrap_or(0),
        Value::Map(m) => 1 + m.iter().map(|e| depth(&e.node.value)).max().unwrap_or(0),
        _ => 0,
    }
}

/// An integer token: digits with an optional unit. `Ok(None)` for a unit the
/// reference does not know (it then stores nothing). Units without `b`/`i`
/// are powers of 1000, with them powers of 1024; like the server's int64
/// arithmetic, a product that overflows wraps around.
fn parse_integer(text: &[u8]) -> Result<Option<i64>, String> {
    let shown = String::from_utf8_lossy(text).into_owned();
    // The reference counts leading digit and '-' characters, then uses the
    // count as a byte index; we do the same.
    let count = shown
        .chars()
        .take_while(|c| super::lexer::is_go_digit(*c) || *c == '-')
        .count();
    let digits = text.get(..count.min(text.len())).unwrap_or(&[]);
    let rest = text.get(count.min(text.len())..).unwrap_or(&[]);
    let digits = std::str::from_utf8(digits).unwrap_or("x");
    let num: i64 = match digits.parse() {
        Ok(n) => n,
        Err(e) => {
            return Err(match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    format!("integer '{shown}' is out of the range")
                }
                _ => format!("expected integer, but got '{shown}'"),
            })
        }
    };
    let suffix = String::from_utf8_lossy(rest).trim().to_lowercase();
    let (base, power): (i64, u32) = match suffix.as_str() {
        "" => (1, 0),
        "k" => (1000, 1),
        "kb" | "ki" | "kib" => (1024, 1),
        "m" => (1000, 2),
        "mb" | "mi" | "mib" => (1024, 2),
        "g" => (1000, 3),
        "gb" | "gi" | "gib" => (1024, 3),
        "t" => (1000, 4),
        "tb" | "ti" | "tib" => (1024, 4),
        "p" => (1000, 5),
        "pb" | "pi" | "pib" => (1024, 5),
        "e" => (1000, 6),
        "eb" | "ei" | "eib" => (1024, 6),
        _ => return Ok(None),
    };
    Ok(Some((0..power).fold(num, |acc, _| acc.wrapping_mul(base))))
}

/// Whether `s` is a valid `YYYY-MM-DDTHH:MM:SSZ` date-time, with the range
/// checks of Go's `time.Parse`.
fn valid_zulu_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return false;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 7),
        num(8, 10),
        num(11, 13),
        num(14, 16),
        num(17, 19),
    ) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour < 24 && min < 60 && sec < 60
}

/// Keys whose values are (or may be) secrets: their text never appears in
/// error messages. Matched loosely, so variables named after keys are
/// covered too.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "key",
        "pass",
        "secret",
        "token",
        "seed",
        "credential",
        "source",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The key at the start of a source line (quotes and separators removed).
fn first_word(line: &str) -> &str {
    line.trim_start()
        .split(|c: char| c.is_whitespace() || c == '=' || c == ':')
        .next()
        .unwrap_or("")
        .trim_matches(|c| c == '"' || c == '\'')
}

fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

/// Go's `filepath.Dir`: the directory part, `.` when there is none.
fn go_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Go's `filepath.Join(dir, name)`: unlike `Path::join`, an absolute `name`
/// is still taken relative to `dir`, and the result is cleaned lexically.
fn go_join(dir: &Path, name: &[u8]) -> PathBuf {
    let mut joined = path_bytes(dir);
    if !name.is_empty() {
        if !joined.is_empty() {
            joined.push(b'/');
        }
        joined.extend_from_slice(name);
    }
    bytes_path(&go_clean(&joined))
}

/// Go's `path.Clean`: removes `.`, `..` after a name, and repeated slashes.
fn go_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in p.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::new();
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().replace('\\', "/").into_bytes()
}

#[cfg(not(unix))]
fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_decimal_without_b_or_i_and_binary_with() {
        assert_eq!(parse_integer(b"8k"), Ok(Some(8000)));
        assert_eq!(parse_integer(b"4kb"), Ok(Some(4096)));
        assert_eq!(parse_integer(b"3Ki"), Ok(Some(3072)));
        assert_eq!(parse_integer(b"64MiB"), Ok(Some(64 << 20)));
        assert_eq!(parse_integer(b"2g"), Ok(Some(2_000_000_000)));
        assert_eq!(parse_integer(b"1E"), Ok(Some(1_000_000_000_000_000_000)));
        assert_eq!(parse_integer(b"-2k"), Ok(Some(-2000)));
        assert_eq!(parse_integer(b"1kbb"), Ok(None));
        assert!(
            parse_integer(b"99999999999999999999").is_err_and(|e| e.contains("out of the range"))
        );
        // Go's int64 multiplication wraps.
        assert_eq!(parse_integer(b"9EB"), Ok(Some(9i64.wrapping_mul(1 << 60))));
    }

    #[test]
    fn datetimes_are_range_checked() {
        assert!(valid_zulu_datetime("2016-05-04T18:53:41Z"));
        assert!(valid_zulu_datetime("2024-02-29T00:00:00Z"));
        assert!(!valid_zulu_datetime("2023-02-29T00:00:00Z"));
        assert!(!valid_zulu_datetime("2016-13-04T18:53:41Z"));
        assert!(!valid_zulu_datetime("2016-05-04T24:00:00Z"));
    }

    #[test]
    fn go_join_keeps_absolute_names_under_the_directory() {
        assert_eq!(
            go_join(Path::new("/etc/nats"), b"/x.conf"),
            PathBuf::from("/etc/nats/x.conf")
        );
        assert_eq!(
            go_join(Path::new("."), b"./a/../b.conf"),
            PathBuf::from("b.conf")
        );
        assert_eq!(
            go_join(Path::new("conf"), b"../up.conf"),
            PathBuf::from("up.conf")
        );
        assert_eq!(go_join(Path::new("/"), b"../x"), PathBuf::from("/x"));
        assert_eq!(go_dir(Path::new("nats.conf")), PathBuf::from("."));
        assert_eq!(go_dir(Path::new("/etc/nats.conf")), PathBuf::from("/etc"));
    }

    #[test]
    fn secret_keys_are_recognised_loosely() {
        assert!(is_secret_key("encryption_key"));
        assert!(is_secret_key("ENC_KEY"));
        assert!(is_secret_key("password"));
        assert!(!is_secret_key("dir"));
        assert_eq!(first_word("  \"encryption_key\": \"abc"), "encryption_key");
    }
}
