//! Archived slices (`msgs.N.dat.bak`, left by the server's slice archiving):
//! the server does not read them and the rewrites do not convert them, so
//! the reports say how many plaintext messages they still hold, and where.

use crate::crypto::envelope::{self, PayloadKind};
use crate::format::layout::{self, Mapped, StoreLayout};
use crate::format::record::{Event, Records};

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

/// Every archived data file of the store with its counts (files that cannot
/// be read count as holding nothing known; the server ignores them too).
pub fn census(layout: &StoreLayout) -> Vec<Archived> {
    let mut out = Vec::new();
    for ch in &layout.channels {
        for p in &ch.bak {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if !name.ends_with(".dat.bak") {
                continue; // an index holds no payload
            }
            let Ok(m) = Mapped::open(p) else { continue };
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
                file: layout::rel(&layout.root, p),
                messages,
                plaintext,
            });
        }
    }
    out
}
