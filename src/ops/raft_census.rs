//! What a Raft log holds, counted in one pass: the facts `inspect` and
//! `verify` will report for a clustered node's log.

use crate::crypto::aead::Cipher;
use crate::crypto::envelope::PayloadKind;
use crate::crypto::raft::{data_kind, serve, DataKind, RaftKey, ServeError, Served};
use crate::format::raft::entry::{BadEntry, RaftLog};
use crate::format::raft::error::RaftError;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Census {
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub entries: u64,
    /// Not LogCommand (configuration, noop, barrier): never encrypted.
    pub not_command: u64,
    /// LogCommand with no Data.
    pub empty: u64,
    pub plaintext: u64,
    pub aes: u64,
    pub chacha: u64,
    /// First byte 1 or 2 but no room for a nonce: the server refuses it.
    pub short: u64,
    /// Envelopes the given key opened (0 when no key was given).
    pub opened: u64,
    /// Envelopes the given key did not open.
    pub not_opened: u64,
    /// Entries whose Index field disagrees with their key.
    pub index_mismatch: u64,
    /// Items of `logs` that are not decodable entries.
    pub bad: u64,
    /// The first few bad items, for the report.
    pub bad_examples: Vec<String>,
}

const MAX_EXAMPLES: usize = 10;

/// Counts every entry; with `key`, also tries to open each envelope.
pub fn census(log: &RaftLog, key: Option<&RaftKey>) -> Result<Census, RaftError> {
    let mut c = Census::default();
    if let Some((first, last)) = log.index_range()? {
        c.first = Some(first);
        c.last = Some(last);
    }
    let mut scratch = Vec::new();
    log.entries(|e| {
        let view = match e {
            Ok(v) => v,
            Err(bad) => {
                c.bad += 1;
                if c.bad_examples.len() < MAX_EXAMPLES {
                    c.bad_examples.push(describe(&bad));
                }
                return Ok::<(), RaftError>(());
            }
        };
        c.entries += 1;
        c.index_mismatch += u64::from(view.index_mismatch());
        match data_kind(&view) {
            DataKind::NotCommand => c.not_command += 1,
            DataKind::Command(PayloadKind::Empty) => c.empty += 1,
            DataKind::Command(PayloadKind::Plain) => c.plaintext += 1,
            DataKind::Command(PayloadKind::Short(_)) => c.short += 1,
            DataKind::Command(PayloadKind::Envelope(cipher)) => {
                match cipher {
                    Cipher::Aes => c.aes += 1,
                    Cipher::ChaCha => c.chacha += 1,
                }
                if key.is_some() {
                    match serve(&view, key, &mut scratch) {
                        Ok(Served::Opened(_)) => c.opened += 1,
                        Ok(Served::AsStored) | Err(ServeError::NotAnEnvelope { .. }) => {}
                        Err(ServeError::AuthFailed { .. }) => c.not_opened += 1,
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(c)
}

fn describe(bad: &BadEntry<'_>) -> String {
    bad.to_error().to_string()
}
