//! The store's side files: server.dat, clients.dat and each channel's subs.dat.

use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::layout::{rel, Mapped, StoreLayout};
use crate::format::proto::{self, ServerInfo, SubState};
use crate::format::record::{Event, Records, HEADER_LEN, VERSION_LEN};
use crate::ops::scan::Damage;
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
    kind: &'static str,
    detail: String,
) -> Damage {
    Damage {
        channel,
        file: rel(root, path),
        offset,
        seq: None,
        kind,
        detail,
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
    let version = crate::format::record::file_version(data);
    if let Some((kind, detail)) = crate::ops::scan::version_damage(version) {
        out.push(damage(root, path, channel, Some(0), kind, detail));
        return Ok(0);
    }
    let mut n = 0;
    for ev in Records::new(data, typed) {
        match ev {
            Event::Record(r) => {
                n += 1;
                let actual = crc.checksum(r.payload);
                if actual != r.crc {
                    out.push(damage(
                        root,
                        path,
                        channel.clone(),
                        Some(r.offset),
                        "crc-mismatch",
                        format!(
                            "corrupted data, expected crc to be {:#010x}, got {actual:#010x}",
                            r.crc
                        ),
                    ));
                    continue;
                }
                if let Err(e) = f(r.rtype, r.payload) {
                    out.push(damage(
                        root,
                        path,
                        channel.clone(),
                        Some(r.offset),
                        "bad-record",
                        format!("record type {} does not decode: {e}", r.rtype),
                    ));
                }
            }
            Event::ZeroPadding { offset, len } => {
                out.push(damage(
                    root,
                    path,
                    channel.clone(),
                    Some(offset),
                    "zero-padding",
                    format!("{len} zero bytes; the server truncates the file here"),
                ));
            }
            Event::Truncated {
                offset,
                expected,
                available,
            } if crate::format::record::is_dangling_header(expected, available) => {
                // io.EOF for the server's readRecord: a clean end of file.
                out.push(damage(
                    root,
                    path,
                    channel.clone(),
                    Some(offset),
                    "dangling-header",
                    crate::ops::scan::DANGLING.into(),
                ));
            }
            Event::Truncated {
                offset,
                expected,
                available,
            } => {
                let what = match expected {
                    Some(e) => format!("record cut short: header announces {e} payload bytes, only {available} remain"),
                    None => format!("record header cut short: {available} of 8 bytes"),
                };
                out.push(damage(
                    root,
                    path,
                    channel.clone(),
                    Some(offset),
                    "truncated-record",
                    what,
                ));
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
        if b.len() >= VERSION_LEN + HEADER_LEN {
            let rec = u32::from_le_bytes(b[4..8].try_into().unwrap()) as u64;
            if size != (VERSION_LEN + HEADER_LEN) as u64 + rec {
                dmg.push(damage(
                    root,
                    &layout.server_dat,
                    None,
                    Some(0),
                    "server-dat-size",
                    format!(
                        "file is {size} bytes; one record of {rec} bytes needs exactly {}",
                        rec + 12
                    ),
                ));
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
