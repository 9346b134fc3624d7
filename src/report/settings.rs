//! The Settings block: each setting a command runs with, its value and where
//! it came from (a flag, the environment, a line of the server's
//! configuration file, or the default). `cli::settings` resolves them; the
//! words are here. Key material never appears: a key is shown by its source.

use super::words;
use crate::crypto::aead::Cipher;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::io::{self, Write};
use std::path::PathBuf;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (or the DIR argument), named as typed.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A line of the configuration file (or of a file it includes): the key
    /// as written there.
    Config {
        file: String,
        line: u32,
        key: String,
    },
    /// Neither given nor configured: the server's default.
    Default,
}

/// The settings a Settings block can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Dir,
    Encryption,
    Key,
    Cipher,
    CrcPoly,
    FileCrc,
    ReadBufferSize,
    TruncateOnEof,
    ClusterLogPath,
    RaftLog,
    NodeId,
}

/// A setting's value, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Path(PathBuf),
    OnOff(bool),
    /// The key's source ("key file F", "configuration file F line N"), or
    /// none. Never its bytes.
    Key(Option<String>),
    Cipher(Cipher),
    /// A CRC-32 polynomial in Go's reversed form.
    Poly(u32),
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: Name,
    pub value: Value,
    pub source: Source,
}

/// The settings of one run, in the order they are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    /// `--config FILE`, when given.
    pub config: Option<PathBuf>,
    pub rows: Vec<Row>,
}

impl Block {
    pub fn get(&self, name: Name) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

pub fn name(n: Name) -> &'static str {
    match n {
        Name::Dir => "store directory",
        Name::Encryption => "encryption",
        Name::Key => "key",
        Name::Cipher => "cipher",
        Name::CrcPoly => "CRC polynomial",
        Name::FileCrc => "file CRC",
        Name::ReadBufferSize => "file read buffer size",
        Name::TruncateOnEof => "truncate-on-EOF",
        Name::ClusterLogPath => "cluster log path",
        Name::RaftLog => "Raft log",
        Name::NodeId => "cluster node ID",
    }
}

/// The setting's name in `--json`.
pub fn json_name(n: Name) -> &'static str {
    match n {
        Name::Dir => "dir",
        Name::Encryption => "encryption",
        Name::Key => "key",
        Name::Cipher => "cipher",
        Name::CrcPoly => "crc_poly",
        Name::FileCrc => "file_crc",
        Name::ReadBufferSize => "read_buffer_size",
        Name::TruncateOnEof => "truncate_on_eof",
        Name::ClusterLogPath => "cluster_log_path",
        Name::RaftLog => "raft_log",
        Name::NodeId => "node_id",
    }
}

pub fn value(v: &Value) -> String {
    match v {
        Value::Path(p) => p.display().to_string(),
        Value::OnOff(b) => if *b { "on" } else { "off" }.to_string(),
        // The summary line names the key's source; its bytes are never shown.
        Value::Key(Some(_)) => "given (not shown)".to_string(),
        Value::Key(None) => "none".to_string(),
        Value::Cipher(c) => words::cipher_name(*c).to_string(),
        Value::Poly(p) => format!("{p:#010x}"),
        Value::Bytes(0) => "0 (no read-ahead)".to_string(),
        Value::Bytes(n) => format!("{n} bytes"),
        Value::Text(t) => t.clone(),
    }
}

pub fn source(s: &Source) -> String {
    match s {
        Source::Flag("DIR") => "argument DIR".to_string(),
        Source::Flag(f) => format!("flag {f}"),
        Source::Env(v) => format!("environment {v}"),
        Source::Config { file, line, key } => format!("{file}:{line} ({key})"),
        Source::Default => "default".to_string(),
    }
}

/// The human Settings block: a summary line (encryption and where the key
/// comes from), then one line per setting with its source.
pub fn block(b: &Block, out: &mut impl Write) -> io::Result<()> {
    let mut head = String::from("Settings:");
    if let Some(Row {
        value: Value::OnOff(on),
        ..
    }) = b.get(Name::Encryption)
    {
        head.push_str(if *on {
            " encryption on"
        } else {
            " encryption off"
        });
        if let Some(Row {
            value: Value::Key(k),
            ..
        }) = b.get(Name::Key)
        {
            match k {
                Some(src) => head.push_str(&format!(", key from {src}")),
                None => head.push_str(", no key"),
            }
        }
        if let Some(Row {
            value: Value::Cipher(c),
            ..
        }) = b.get(Name::Cipher)
        {
            head.push_str(&format!(
                "; the cipher ({}) only chooses how new messages are written",
                words::cipher_name(*c)
            ));
        }
    }
    writeln!(out, "{}", super::wrap(&head, "  "))?;
    if let Some(c) = &b.config {
        let line = format!(
            "  (configuration file {}: flags win over it, and NATS_STREAMING_ENCRYPTION_KEY over its key)",
            c.display()
        );
        writeln!(out, "{}", super::wrap(&line, "   "))?;
    }
    // "name value", then the source in a column.
    let cells: Vec<(String, String)> = b
        .rows
        .iter()
        .map(|r| {
            (
                format!("{} {}", name(r.name), value(&r.value)),
                source(&r.source),
            )
        })
        .collect();
    let w = cells
        .iter()
        .map(|c| c.0.chars().count())
        .max()
        .unwrap_or(0)
        .min(44);
    let width = super::fit().width;
    for (nv, s) in cells {
        let line = format!("  {nv:<w$}  from {s}");
        if width.is_some_and(|wd| line.chars().count() > wd) {
            // Too wide for the output: the source on a line of its own.
            writeln!(out, "{}", super::wrap(&format!("  {nv}"), "    "))?;
            writeln!(out, "{}", super::wrap(&format!("    from {s}"), "      "))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Setting", 7)?;
        st.serialize_field("setting", json_name(self.name))?;
        match &self.value {
            Value::Path(p) => st.serialize_field("value", &p.display().to_string())?,
            Value::OnOff(b) => st.serialize_field("value", b)?,
            Value::Key(k) => st.serialize_field("value", k)?,
            Value::Cipher(c) => st.serialize_field("value", words::cipher_name(*c))?,
            Value::Poly(p) => st.serialize_field("value", &format!("{p:#010x}"))?,
            Value::Bytes(n) => st.serialize_field("value", n)?,
            Value::Text(t) => st.serialize_field("value", t)?,
        }
        let (kind, flag, file, line, key) = match &self.source {
            Source::Flag(f) => ("flag", Some(*f), None, None, None),
            Source::Env(v) => ("environment", Some(*v), None, None, None),
            Source::Config { file, line, key } => (
                "config",
                None,
                Some(file.as_str()),
                Some(*line),
                Some(key.as_str()),
            ),
            Source::Default => ("default", None, None, None, None),
        };
        st.serialize_field("source", kind)?;
        st.serialize_field("name", &flag)?;
        st.serialize_field("file", &file)?;
        st.serialize_field("line", &line)?;
        st.serialize_field("key", &key)?;
        st.end()
    }
}
