//! Key material and the server's key derivation. Keys are read from their
//! sources (files, --key, the environment) in `cli::keys`.
//!
//! Key bytes live in `Zeroizing` buffers, are never formatted (Debug prints
//! only the key's label), and never appear in an error.

use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The environment variable the server reads its key from.
pub const ENV_VAR: &str = "NATS_STREAMING_ENCRYPTION_KEY";
/// A key file larger than this is refused (keys are short; a large file is a mistake).
pub const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum KeyOrigin {
    File(PathBuf),
    Env,
    CommandLine,
    /// `encryption_key` in the server's configuration file (the file that
    /// holds the key, which may be an included one, and its line).
    Config {
        file: PathBuf,
        line: u32,
    },
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::File(p) => write!(f, "key file {}", p.display()),
            KeyOrigin::Env => write!(f, "${ENV_VAR}"),
            KeyOrigin::CommandLine => write!(f, "--key"),
            KeyOrigin::Config { file, line } => {
                write!(f, "configuration file {} line {line}", file.display())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {0} is empty; a key needs at least one byte")]
    Empty(PathBuf),
    #[error("key file {0} is larger than 64 KiB; is this really a key?")]
    TooLarge(PathBuf),
    #[error("the key given by {0} is empty")]
    EmptyKey(String),
}

/// A key as the server uses it: its master hash `M = SHA-256(material)`.
pub struct Key {
    /// A short name for reports: K1, K2, ... in the order given.
    pub id: String,
    pub origin: KeyOrigin,
    master: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, {})", self.id, self.origin)
    }
}

impl Key {
    pub fn from_material(id: impl Into<String>, origin: KeyOrigin, material: &[u8]) -> Key {
        let mut m = Zeroizing::new([0u8; 32]);
        m.copy_from_slice(&Sha256::digest(material));
        Key {
            id: id.into(),
            origin,
            master: m,
        }
    }

    /// `K_c = SHA-256(Z || M || "." || channel)`, `Z` being `33 + len(channel)`
    /// zero bytes: the server builds the buffer with a length where it meant a
    /// capacity, and the zeros became part of every channel key.
    pub fn channel_key(&self, channel: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut h = Sha256::new();
        let zeros = [0u8; 64];
        let mut z = 32 + 1 + channel.len();
        while z > 0 {
            let n = z.min(zeros.len());
            h.update(&zeros[..n]);
            z -= n;
        }
        h.update(&self.master[..]);
        h.update(b".");
        h.update(channel);
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&h.finalize());
        k
    }

    /// The master hash `SHA-256(material)`: the Raft log's key as it is
    /// (`crate::crypto::raft::RaftKey::from_key`). Never formatted.
    pub(crate) fn master(&self) -> &Zeroizing<[u8; 32]> {
        &self.master
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn format_md_vectors() {
        let k = Key::from_material("K1", KeyOrigin::CommandLine, b"conformance-key-1");
        assert_eq!(
            hex(&k.master()[..]),
            "1e186e43bf058a1189dfc5b4e2b6faa13f88ede219aa1dea8643109d3351426c"
        );
        assert_eq!(
            hex(&k.channel_key(b"orders")[..]),
            "216fd96aabeab3b5394ac2842f3a5570680954b8515ac2e390b979bc3bc077f2"
        );
        assert_eq!(
            hex(&k.channel_key(b"sensors.temp")[..]),
            "3d6e5038f884c734a0e1a39c67d37953da972231920d8aeb18e75491a3fb4f38"
        );
    }

    #[test]
    fn debug_never_shows_material() {
        let k = Key::from_material("K1", KeyOrigin::CommandLine, b"conformance-key-1");
        let s = format!("{k:?}");
        assert!(!s.contains("conformance"));
        assert!(!s.contains("1e186e43"));
    }
}
