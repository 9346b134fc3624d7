//! The store's side files: server.dat, clients.dat and each channel's subs.dat.

use crate::error::Result;
use crate::format::crc::Crc32;
use crate::format::damage::{Damage, DamageKind};
use crate::format::layout::{rel, Mapped, StoreLayout};
use crate::format::proto::{self, ServerInfo, SubState};
use crate::format::record::{self, Event, Records, HEADER_LEN, VERSION_LEN};
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

/// Why a side-file record that reads whole stops the server.
pub enum SideRecordError {
    /// The payload does not decode.
    Proto(proto::ProtoError),
    /// A record type the file does not have.
    Type(u8),
}

impl From<proto::ProtoError> for SideRecordError {
    fn from(e: proto::ProtoError) -> Self {
        SideRecordError::Proto(e)
    }
}

/// Walks a typed side file the way the server's recovery does (its
/// `readRecord` loop): a complete header with no payload byte is a clean
/// end (`io.EOF`), a zero header truncates the file there, a record cut
/// short is `unexpected EOF` (the server refuses, or truncates with
/// `-file_truncate_bad_eof`), and a CRC mismatch (when `file_crc`), an
/// unknown record type or an undecodable payload stops the server. The walk
/// stops at the first of these, as the server does; `f(type, payload)` is
/// called for each record before it.
#[allow(clippy::too_many_arguments)]
fn walk(
    root: &Path,
    path: &Path,
    channel: Option<String>,
    crc: &Crc32,
    file_crc: bool,
    out: &mut Vec<Damage>,
    mut f: impl FnMut(u8, &[u8]) -> std::result::Result<(), SideRecordError>,
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
    for ev in Records::new(data, true) {
        match ev {
            Event::Record(r) => {
                n += 1;
                let actual = crc.checksum(r.payload);
                if file_crc && actual != r.crc {
                    let kind = DamageKind::CrcMismatch {
                        expected: r.crc,
                        actual,
                    };
                    push(r.offset, kind);
                    break;
                }
                match f(r.rtype, r.payload) {
                    Ok(()) => {}
                    Err(SideRecordError::Proto(error)) => {
                        let kind = DamageKind::BadSideRecord {
                            rtype: r.rtype,
                            error,
                        };
                        push(r.offset, kind);
                        break;
                    }
                    Err(SideRecordError::Type(rtype)) => {
                        push(r.offset, DamageKind::UnknownRecordType { rtype });
                        break;
                    }
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

/// server.dat as `recoverServerInfo` reads it: one untyped record. Its
/// version is checked at open; then `io.EOF` (the version alone, or a
/// complete header with no payload byte) means no state; a partial header
/// or payload, a zero header or a CRC mismatch (when `file_crc`) stops the
/// server; so does a file that is not exactly one record long, and a
/// ServerInfo that does not decode.
fn read_server_dat(
    root: &Path,
    path: &Path,
    crc: &Crc32,
    file_crc: bool,
    meta: &mut StoreMeta,
    dmg: &mut Vec<Damage>,
) -> Result<()> {
    let m = Mapped::open(path)?;
    let b = m.bytes();
    let mut push = |offset: u64, kind: DamageKind| {
        dmg.push(damage(root, path, None, Some(offset), kind));
    };
    if let Some(kind) = DamageKind::of_version(record::file_version(b)) {
        push(0, kind);
        return Ok(());
    }
    let size = b.len() as u64;
    match Records::new(b, false).next() {
        None => meta.no_server_info = true,
        Some(Event::Truncated {
            offset,
            expected,
            available,
        }) if record::is_dangling_header(expected, available) => {
            meta.no_server_info = true;
            push(offset, DamageKind::DanglingHeader);
        }
        Some(Event::Truncated {
            offset,
            expected,
            available,
        }) => push(
            offset,
            DamageKind::TruncatedRecord {
                expected,
                available,
            },
        ),
        Some(Event::ZeroPadding { offset, .. }) => push(offset, DamageKind::ServerDatZeroHeader),
        Some(Event::Record(r)) => {
            let actual = crc.checksum(r.payload);
            let record = r.payload.len() as u64;
            if file_crc && actual != r.crc {
                let kind = DamageKind::CrcMismatch {
                    expected: r.crc,
                    actual,
                };
                push(r.offset, kind);
            } else if size != (VERSION_LEN + HEADER_LEN) as u64 + record {
                push(0, DamageKind::ServerDatSize { size, record });
            } else {
                match ServerInfo::parse(r.payload) {
                    Ok(s) => meta.server = s,
                    Err(error) => push(r.offset, DamageKind::BadSideRecord { rtype: 0, error }),
                }
            }
        }
    }
    Ok(())
}

/// The side files as the server recovers them, CRCs checked.
pub fn read(layout: &StoreLayout, crc: &Crc32) -> Result<StoreMeta> {
    read_with(layout, crc, true)
}

/// The side files as the server recovers them; `file_crc` is the server's
/// `file_crc` option (off: no record CRC is checked).
pub fn read_with(layout: &StoreLayout, crc: &Crc32, file_crc: bool) -> Result<StoreMeta> {
    let root = &layout.root;
    let mut meta = StoreMeta::default();
    let mut dmg = Vec::new();
    read_server_dat(root, &layout.server_dat, crc, file_crc, &mut meta, &mut dmg)?;

    if let Some(cp) = &layout.clients_dat {
        let mut live: BTreeSet<Vec<u8>> = BTreeSet::new();
        walk(root, cp, None, crc, file_crc, &mut dmg, |t, p| {
            match t {
                1 => {
                    live.insert(proto::client_id(p, false)?.to_vec());
                }
                2 => {
                    live.remove(proto::client_id(p, true)?);
                }
                t => return Err(SideRecordError::Type(t)),
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
            crc,
            file_crc,
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
                    t => return Err(SideRecordError::Type(t)),
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
