//! The Raft log's encryption: the file store's envelope, keyed with the
//! master hash `SHA-256(material)` itself (no per-channel derivation), and
//! applied only to LogCommand entries with non-empty Data.

use crate::crypto::aead::{Backend, ChannelAead, Cipher, NONCE_LEN};
use crate::crypto::envelope::{self, PayloadKind};
use crate::crypto::nonce::NonceGen;
use crate::crypto::nonce::{nonce_origin as origin_of, NonceOrigin};
use crate::format::raft::entry::EntryView;
use zeroize::Zeroizing;

/// A key as the server's Raft log uses it. Never formatted.
pub struct RaftKey {
    aead: ChannelAead,
    hash: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RaftKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaftKey(..)")
    }
}

impl RaftKey {
    /// `material` as given to the server (`-encryption_key` or the env var).
    pub fn from_material(material: &[u8], backend: Backend) -> RaftKey {
        let key = crate::crypto::keys::Key::from_material(
            "raft",
            crate::crypto::keys::KeyOrigin::CommandLine,
            material,
        );
        RaftKey::from_key(&key, backend)
    }

    /// The Raft log's key for a loaded key (its master hash, no per-channel
    /// derivation).
    pub fn from_key(key: &crate::crypto::keys::Key, backend: Backend) -> RaftKey {
        let m = key.master().clone();
        RaftKey {
            aead: ChannelAead::new(&m, backend),
            hash: m,
        }
    }

    /// stanctl's nonces for envelopes under this key (`crate::crypto::nonce`):
    /// call `nonce(index, plaintext)`. Its marker byte 0xF5 sits where the
    /// server's nonce has the top byte of its index counter, which stays
    /// below 0x80, so no nonce of ours repeats one the server wrote.
    pub fn nonce_gen(&self) -> NonceGen {
        NonceGen::new(&self.hash)
    }

    /// Whether both are the same key (the same master hash).
    pub fn same_key(&self, other: &RaftKey) -> bool {
        self.hash[..] == other.hash[..]
    }
}

/// What the server does with an entry's Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// Not a LogCommand: served as stored, never encrypted or decrypted.
    NotCommand,
    /// A LogCommand: the file store's detection applies.
    Command(PayloadKind),
}

/// The server's detection applied to an entry.
pub fn data_kind(view: &EntryView<'_>) -> DataKind {
    if view.is_command() {
        DataKind::Command(envelope::classify(view.data()))
    } else {
        DataKind::NotCommand
    }
}

/// Who probably wrote an entry's envelope (for telling a wrong key from
/// plaintext that starts with 1 or 2). The server's raft nonce counter
/// starts at the last index + 1 when it opens the log and counts encrypted
/// entries, so it sits at or below the entry's index, as the file store's
/// does below the sequence. `None` when the Data is no envelope.
pub fn nonce_origin(view: &EntryView<'_>) -> Option<NonceOrigin> {
    match data_kind(view) {
        DataKind::Command(PayloadKind::Envelope(_)) => {
            Some(origin_of(envelope::nonce(view.data()), view.index))
        }
        _ => None,
    }
}

/// What the server serves for an entry: the stored Data or its plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Served as stored (`EntryView::data`).
    AsStored,
    /// Opened: the plaintext is in the scratch buffer.
    Opened(Cipher),
}

/// The errors the server's `GetLog` returns for an entry; their words are
/// `report::words::serve_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeError {
    NotAnEnvelope { len: usize, cipher: Cipher },
    AuthFailed { cipher: Cipher },
}

/// What the server's log store returns for `view`: with `key` (encryption
/// on) it opens command envelopes; without (encryption off) it serves every
/// entry as stored, envelopes included.
pub fn serve(
    view: &EntryView<'_>,
    key: Option<&RaftKey>,
    scratch: &mut Vec<u8>,
) -> Result<Served, ServeError> {
    let Some(key) = key else {
        return Ok(Served::AsStored);
    };
    match data_kind(view) {
        DataKind::NotCommand
        | DataKind::Command(PayloadKind::Empty)
        | DataKind::Command(PayloadKind::Plain) => Ok(Served::AsStored),
        DataKind::Command(PayloadKind::Short(cipher)) => Err(ServeError::NotAnEnvelope {
            len: view.data().len(),
            cipher,
        }),
        DataKind::Command(PayloadKind::Envelope(cipher)) => {
            match envelope::open(&key.aead, cipher, view.data(), scratch) {
                Some(p) => {
                    let n = p.len();
                    scratch.truncate(n);
                    Ok(Served::Opened(cipher))
                }
                None => Err(ServeError::AuthFailed { cipher }),
            }
        }
    }
}

/// Seals `plaintext` into an envelope under `key` with the caller's nonce
/// (stanctl's nonce scheme lives in `crate::crypto::nonce`; the log layer makes none).
pub fn seal(
    key: &RaftKey,
    cipher: Cipher,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    envelope::seal(&key.aead, cipher, nonce, plaintext, out);
}
