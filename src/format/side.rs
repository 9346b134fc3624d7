//! The store's side files: server.dat, clients.dat and each channel's subs.dat.

use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::damage::{Damage, DamageKind};
use crate::format::layout::{rel, Mapped, StoreLayout};
use crate::format::proto::{self, ServerInfo, SubState};
use crate::format::record::{self, Event, Header, Records, HEADER_LEN, VERSION_LEN};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Subscription {
    pub id: u64,
    pub client_id: String,
    pub durable_name: String,
    pub queue_group: String,
    pub inbox: String,
    pub is_durable: bool,
    pub is_closed: bool,
    pub last_sent: u64,
    /// Messages sent and not yet acknowledged.
    pub pending: u64,
}

#[derive(Debug, Clone, Default)]
pub struct StoreMeta {
    pub server: ServerInfo,
    pub clients: u64,
    /// Per channel directory name (raw bytes).
    pub subs: BTreeMap<Vec<u8>, Vec<Subscription>>,
    pub damage: Vec<Damage>,
    /// server.dat holds its version and no ServerInfo: the server starts as
    /// a new store and recovers nothing.
    pub no_server_info: bool,
}

impl StoreMeta {
    pub fn clustered(&self) -> bool {
        !self.server.node_id.is_empty()
    }
}

fn damage(
    root: &Path,
    path: &Path,
    channel: Option<String>,
    offset: Option<u64>,
    kind: DamageKind,
) -> Damage {
    Damage {
        channel,
        file: rel(root, path),
        offset,
        seq: None,
        kind,
    }
}

/// Walks a typed or untyped side file, reporting damage the way the server
/// would meet it; calls `f(type, payload)` for each good record.
fn walk(
    root: &Path,
    path: &Path,
    channel: Option<String>,
    typed: bool,
    crc: &Crc32,
    out: &mut Vec<Damage>,
    mut f: impl FnMut(u8, &[u8]) -> std::result::Result<(), proto::ProtoError>,
) -> Result<u64> {
    let m = Mapped::open(path)?;
    let data = m.bytes();
    let mut push = |offset: u64, kind: DamageKind| {
        out.push(damage(root, path, channel.clone(), Some(offset), kind));
    };
    if let Some(kind) = DamageKind::of_version(record::file_version(data)) {
        push(0, kind);
        return Ok(0);
    }
    let mut n = 0;
    for ev in Records::new(data, typed) {
        match ev {
            Event::Record(r) => {
                n += 1;
                let actual = crc.checksum(r.payload);
                if actual != r.crc {
                    let kind = DamageKind::CrcMismatch {
                        expected: r.crc,
                        actual,
                    };
                    push(r.offset, kind);
                    continue;
                }
                if let Err(error) = f(r.rtype, r.payload) {
                    let kind = DamageKind::BadSideRecord {
                        rtype: r.rtype,
                        error,
                    };
                    push(r.offset, kind);
                }
            }
            Event::ZeroPadding { offset, len } => {
                let kind = DamageKind::ZeroPadding {
                    len,
                    side_file: true,
                };
                push(offset, kind);
            }
            // io.EOF for the server's readRecord: a clean end of file.
            Event::Truncated {
                offset,
                expected,
                available,
            } if record::is_dangling_header(expected, available) => {
                push(offset, DamageKind::DanglingHeader);
            }
            Event::Truncated {
                offset,
                expected,
                available,
            } => {
                let kind = DamageKind::TruncatedRecord {
                    expected,
                    available,
                };
                push(offset, kind);
            }
        }
    }
    Ok(n)
}

pub fn read(layout: &StoreLayout, crc: &Crc32) -> Result<StoreMeta> {
    let root = &layout.root;
    let mut meta = StoreMeta::default();
    let mut dmg = Vec::new();

    let mut server = None;
    walk(
        root,
        &layout.server_dat,
        None,
        false,
        crc,
        &mut dmg,
        |_, p| {
            server = Some(ServerInfo::parse(p)?);
            Ok(())
        },
    )?;
    let size = std::fs::metadata(&layout.server_dat)
        .map(|m| m.len())
        .unwrap_or(0);
    if let Some(s) = server {
        meta.server = s;
    }
    {
        let m = Mapped::open(&layout.server_dat)?;
        let b = m.bytes();
        if let Some(h) = Header::at(b, VERSION_LEN, false) {
            let record = h.size as u64;
            if size != (VERSION_LEN + HEADER_LEN) as u64 + record {
                let kind = DamageKind::ServerDatSize { size, record };
                dmg.push(damage(root, &layout.server_dat, None, Some(0), kind));
            }
        } else if b.len() == VERSION_LEN {
            // Go's readRecord meets io.EOF: "no state recovered".
            meta.no_server_info = true;
        }
    }

    if let Some(cp) = &layout.clients_dat {
        let mut live: BTreeSet<Vec<u8>> = BTreeSet::new();
        walk(root, cp, None, true, crc, &mut dmg, |t, p| {
            let id = proto::client_id(p)?.to_vec();
            match t {
                1 => {
                    live.insert(id);
                }
                2 => {
                    live.remove(&id);
                }
                _ => {}
            }
            Ok(())
        })?;
        meta.clients = live.len() as u64;
    }

    for ch in &layout.channels {
        let Some(sp) = &ch.subs else { continue };
        let mut subs: BTreeMap<u64, (Subscription, BTreeSet<u64>)> = BTreeMap::new();
        walk(
            root,
            sp,
            Some(ch.display_name()),
            true,
            crc,
            &mut dmg,
            |t, p| {
                match t {
                    1 | 2 => {
                        let s = SubState::parse(p)?;
                        let e = subs.entry(s.id).or_default();
                        e.0 = Subscription {
                            id: s.id,
                            client_id: s.client_id,
                            durable_name: s.durable_name,
                            queue_group: s.queue_group,
                            inbox: s.inbox,
                            is_durable: s.is_durable,
                            is_closed: s.is_closed,
                            last_sent: s.last_sent,
                            pending: 0,
                        };
                    }
                    3 => {
                        let (id, _) = proto::sub_update(p)?;
                        subs.remove(&id);
                    }
                    4 => {
                        let (id, seq) = proto::sub_update(p)?;
                        if let Some(e) = subs.get_mut(&id) {
                            e.1.remove(&seq);
                        }
                    }
                    5 => {
                        let (id, seq) = proto::sub_update(p)?;
                        if let Some(e) = subs.get_mut(&id) {
                            e.1.insert(seq);
                            e.0.last_sent = e.0.last_sent.max(seq);
                        }
                    }
                    _ => {}
                }
                Ok(())
            },
        )?;
        let list = subs
            .into_values()
            .map(|(mut s, pending)| {
                s.pending = pending.len() as u64;
                s
            })
            .collect();
        meta.subs.insert(ch.name.clone(), list);
    }
    meta.damage = dmg;
    Ok(meta)
}
