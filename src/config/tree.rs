//! The value tree a configuration file parses into: what the server's
//! `conf.ParseFile` returns, plus the position of every key and value.

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

use super::error::Pos;

/// String bytes from the file. Strings may hold key material and need not be
/// UTF-8 (`\xNN` escapes insert raw bytes), so they are bytes, wiped on drop
/// and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Text(pub Zeroizing<Vec<u8>>);

impl Text {
    pub fn new(bytes: Vec<u8>) -> Self {
        Text(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} bytes)", self.0.len())
    }
}

/// A value, with the types the server's parser produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(Text),
    /// Sizes with units are already multiplied out (`1k` = 1000, `1kb` = 1024).
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// A Zulu ISO 8601 date-time, kept as written (validated).
    Datetime(String),
    Array(Vec<Node>),
    Map(Map),
}

impl Value {
    /// The Go reflect kind name the server's type checks print.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "int64",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Datetime(_) => "struct",
            Value::Array(_) => "slice",
            Value::Map(_) => "map",
        }
    }

    /// Number of values in this value, itself included (for the size bound).
    pub fn weight(&self) -> usize {
        match self {
            Value::Array(a) => 1 + a.iter().map(|n| n.value.weight()).sum::<usize>(),
            Value::Map(m) => {
                1 + m
                    .entries
                    .iter()
                    .map(|e| e.node.value.weight())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }

    /// The value as Go's `%v` prints it (used in the server's messages).
    pub fn go_format(&self) -> String {
        match self {
            Value::String(t) => t.to_string_lossy(),
            Value::Integer(i) => i.to_string(),
            Value::Float(x) => go_float(*x),
            Value::Bool(b) => b.to_string(),
            Value::Datetime(s) => s.replace('T', " ").replace('Z', " +0000 UTC"),
            Value::Array(a) => {
                let items: Vec<String> = a.iter().map(|n| n.value.go_format()).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Map(m) => {
                // Go prints maps with sorted keys.
                let mut items: Vec<(String, String)> = m
                    .entries
                    .iter()
                    .map(|e| (e.key.clone(), e.node.value.go_format()))
                    .collect();
                items.sort();
                let items: Vec<String> =
                    items.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", items.join(" "))
            }
        }
    }
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`), close
/// enough for messages: shortest representation, exponent for large values.
fn go_float(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e21 || x.abs() < 1e-4) {
        let s = format!("{x:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{x}")
    }
}

/// A value and where it is (for a value copied from a variable, where the
/// `$NAME` reference is; the entry's key has its own position).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// One `key: value` of a map.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key as written (case kept: the tree is case-sensitive like the
    /// server's; its settings code lower-cases when it matches). Keys that
    /// are not UTF-8 are converted lossily; no key the server knows is.
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
}

/// A map. Keys are unique (a later assignment replaces an earlier one, as in
/// a Go map); entries keep the order of their first assignment. Indexed, so
/// a file with many keys costs linear time, not quadratic.
#[derive(Clone, Debug, Default)]
pub struct Map {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).and_then(|i| self.entries.get(*i))
    }

    /// Sets `key`, replacing the value (and position) of an existing entry.
    pub fn insert(&mut self, key: String, key_pos: Pos, node: Node) {
        if let Some(e) = self.index.get(&key).and_then(|i| self.entries.get_mut(*i)) {
            e.key_pos = key_pos;
            e.node = node;
            return;
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push(Entry { key, key_pos, node });
    }

    /// The entries, in the order of their first assignment.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Takes the entries out, in order.
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}
