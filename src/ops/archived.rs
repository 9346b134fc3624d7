//! Archived slices (`msgs.N.dat.bak`, left by the server's slice archiving)
//! and the plaintext on disk. The server never reads an archived slice
//! again; the rewrites convert them with the live ones (see
//! `StoreLayout::with_archived_slices`), every report says how many
//! plaintext messages remain on disk and where (`PlaintextOnDisk`), and
//! the nonce-reuse check of `inspect` and `verify` counts their envelopes
//! too (`nonces`).

use crate::crypto::envelope::{self, PayloadKind};
use crate::crypto::nonce::NonceRun;
use crate::error::Result;
use crate::format::layout::{self, ChannelLayout, Mapped, SliceFiles, StoreLayout};
use crate::format::record::{Event, Records};
use crate::ops::scan::{self, HashMode, ScanConfig};

/// One archived data file and the messages in it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Archived {
    /// Relative to the store.
    pub file: String,
    pub messages: u64,
    /// Non-empty payloads that are not envelopes: readable by anyone who
    /// can read the file.
    pub plaintext: u64,
}

/// Every archived data file of the store with its counts: the archived
/// slices the rewrites convert (regular files `msgs.N.dat.bak`). A file
/// that cannot be read counts as holding nothing known.
pub fn census(layout: &StoreLayout) -> Vec<Archived> {
    let mut out = Vec::new();
    for ch in &layout.channels {
        for sf in &ch.archived {
            let Ok(m) = Mapped::open(&sf.dat) else {
                continue;
            };
            let (mut messages, mut plaintext) = (0, 0);
            for ev in Records::new(m.bytes(), false) {
                let Event::Record(r) = ev else { continue };
                let Ok(msg) = r.message() else { continue };
                messages += 1;
                if envelope::classify(msg.data) == PayloadKind::Plain {
                    plaintext += 1;
                }
            }
            out.push(Archived {
                file: layout::rel(&layout.root, &sf.dat),
                messages,
                plaintext,
            });
        }
    }
    out
}

/// How many plaintext messages (non-empty payloads whose first byte is
/// neither 1 nor 2: inspect's Plain) are on disk, and where:
/// per channel in its live slices, per archived data file. Only places that
/// hold some are listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlaintextOnDisk {
    pub messages: u64,
    pub live: Vec<LivePlaintext>,
    pub archived: Vec<ArchivedPlaintext>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LivePlaintext {
    pub channel: String,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchivedPlaintext {
    /// The `.dat.bak`, relative to the store.
    pub file: String,
    pub messages: u64,
}

impl PlaintextOnDisk {
    /// From (channel, plaintext in its live slices) and (archived file,
    /// plaintext in it).
    pub fn new(
        live: impl IntoIterator<Item = (String, u64)>,
        archived: impl IntoIterator<Item = (String, u64)>,
    ) -> PlaintextOnDisk {
        let live: Vec<LivePlaintext> = live
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(channel, messages)| LivePlaintext { channel, messages })
            .collect();
        let archived: Vec<ArchivedPlaintext> = archived
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(file, messages)| ArchivedPlaintext { file, messages })
            .collect();
        PlaintextOnDisk {
            messages: live.iter().map(|l| l.messages).sum::<u64>()
                + archived.iter().map(|a| a.messages).sum::<u64>(),
            live,
            archived,
        }
    }

    /// With the live slices' counts per channel, and the archived slices'
    /// read from disk (`census`).
    pub fn of_store(
        layout: &StoreLayout,
        live: impl IntoIterator<Item = (String, u64)>,
    ) -> PlaintextOnDisk {
        let archived = census(layout).into_iter().map(|a| (a.file, a.plaintext));
        PlaintextOnDisk::new(live, archived)
    }

    /// Plaintext messages in archived slices.
    pub fn in_archived(&self) -> u64 {
        self.archived.iter().map(|a| a.messages).sum()
    }
}

/// The nonce runs of every archived slice, handed to `add(channel, runs)`
/// (`channel`: its index in `layout.channels`) for the nonce-reuse check of
/// `inspect` and `verify`, under the same `keys` (their indexes) as the
/// live slices' runs. The server never reads an archived slice, but a nonce
/// an archived envelope shares with another under the same key leaks both
/// plaintexts all the same. A file that cannot be opened holds no known
/// nonce (as in `census`); its index is not read.
pub fn nonces(
    layout: &StoreLayout,
    keys: &[crate::crypto::keys::Key],
    backend: crate::crypto::aead::Backend,
    crc: &crate::format::crc::Crc32,
    add: &(dyn Fn(usize, &[NonceRun]) -> Result<()> + Sync),
) -> Result<()> {
    if layout.channels.iter().all(|c| c.archived.is_empty()) {
        return Ok(());
    }
    // The channels with archived slices, as a store whose slices they are.
    let mut at = Vec::new();
    let mut archived = layout.clone();
    archived.channels = Vec::new();
    for (i, ch) in layout.channels.iter().enumerate() {
        let slices: Vec<SliceFiles> = ch
            .archived
            .iter()
            .filter(|sf| std::fs::File::open(&sf.dat).is_ok())
            .map(|sf| SliceFiles {
                idx: None,
                ..sf.clone()
            })
            .collect();
        if !slices.is_empty() {
            at.push(i);
            archived.channels.push(ChannelLayout {
                slices,
                ..ch.clone()
            });
        }
    }
    if archived.channels.is_empty() {
        return Ok(());
    }
    let ctxs = scan::channels(&archived, keys, backend, false);
    let cfg = ScanConfig {
        crc: crc.clone(),
        keys,
        backend,
        hash: HashMode::None,
        plaintext: false,
        progress: None,
        stop: None,
    };
    let scanned = scan::scan_channels_stepwise(&archived, &ctxs, &cfg, |ctx, mut sc, _| {
        let ci = at[ctxs
            .iter()
            .position(|c| std::ptr::eq(c, ctx))
            .expect("one of ctxs")];
        while sc.next_record().is_some() {
            if sc.scan().nonces.len() >= scan::NONCE_BATCH {
                add(ci, &sc.take_settled_nonces())?;
            }
        }
        add(ci, &sc.take_all_nonces())
    })?;
    scanned
        .into_iter()
        .flat_map(|ch| ch.slices)
        .collect::<Result<()>>()
}
