//! Reading the on-disk format: records, index entries, protobuf fields, the
//! envelope rule. Property tests: the readers stay inside their input and
//! round-trip what the writers write.

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use stanctl::crypto::envelope::{self, PayloadKind};
use stanctl::format::crc::Crc32;
use stanctl::format::index::{self, IndexEvent, ENTRY_LEN};
use stanctl::format::proto::{self, MsgView, ServerInfo, SubState, Value};
use stanctl::format::record::{self, Event, Records, HEADER_LEN, VERSION_LEN};

const CASES: u32 = 2000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Integration tests have no lib.rs beside them to anchor the
        // regression files; failures print the minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `inner` is a sub-slice of `outer` (same memory). An empty slice refers to
/// no memory, so it is inside anything.
fn inside(outer: &[u8], inner: &[u8]) -> bool {
    if inner.is_empty() {
        return true;
    }
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    i >= o && i + inner.len() <= o + outer.len()
}

// ---------------------------------------------------------------------------
// Input generators: raw bytes, and bytes that are almost well formed.
// ---------------------------------------------------------------------------

fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..600)
}

/// A record file: version, then records with plausible headers, then maybe
/// a cut, padding or flipped bytes.
fn record_file(typed: bool) -> impl Strategy<Value = Vec<u8>> {
    let rec = (
        0u8..6,
        any::<u32>(),
        vec(any::<u8>(), 0..80),
        prop_oneof![Just(None), any::<u32>().prop_map(Some)],
    );
    (
        prop_oneof![Just(1u32), any::<u32>()],
        vec(rec, 0..8),
        0usize..40,
        vec((any::<usize>(), any::<u8>()), 0..4),
        0usize..20,
    )
        .prop_map(move |(version, recs, cut, flips, zeros)| {
            let mut f = version.to_le_bytes().to_vec();
            for (t, crc, payload, hostile_size) in recs {
                let t = if typed { t } else { 0 };
                record::write_record(&mut f, t, crc, &payload);
                if let Some(size) = hostile_size {
                    // Overwrite the header's size with an arbitrary value.
                    let at = f.len() - payload.len() - HEADER_LEN;
                    f[at..at + 4].copy_from_slice(&size.to_le_bytes());
                }
            }
            f.resize(f.len() + zeros, 0);
            for (at, b) in flips {
                if !f.is_empty() {
                    let n = f.len();
                    f[at % n] ^= b;
                }
            }
            f.truncate(f.len().saturating_sub(cut));
            f
        })
}

fn record_input(typed: bool) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![raw_bytes(), record_file(typed)]
}

/// An index file: version then entries (some valid, some not), maybe cut.
fn index_file() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        any::<u64>(),
        any::<u64>(),
        any::<i64>(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
    );
    (vec(entry, 0..10), 0usize..40).prop_map(|(es, cut)| {
        let crc = Crc32::ieee();
        let mut f = 1u32.to_le_bytes().to_vec();
        for (seq, off, ts, size, good_crc, zero) in es {
            if zero {
                f.extend_from_slice(&[0u8; ENTRY_LEN]);
                continue;
            }
            let mut e = index::IndexEntry::new(seq, off, ts, size, &crc);
            if !good_crc {
                e.crc ^= 1;
            }
            f.extend_from_slice(&e.to_bytes());
        }
        f.truncate(f.len().saturating_sub(cut));
        f
    })
}

/// One protobuf field with an arbitrary number and wire type.
fn proto_field() -> impl Strategy<Value = Vec<u8>> {
    (
        0u64..16,
        0u8..8,
        any::<u64>(),
        vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(number, wire, v, bytes, lie)| {
            let mut out = Vec::new();
            proto::write_varint(&mut out, (number << 3) | wire as u64);
            match wire {
                0 => proto::write_varint(&mut out, v),
                1 => out.extend_from_slice(&v.to_le_bytes()),
                2 => {
                    // Sometimes a length that lies.
                    let len = if lie { v } else { bytes.len() as u64 };
                    proto::write_varint(&mut out, len);
                    out.extend_from_slice(&bytes);
                }
                5 => out.extend_from_slice(&(v as u32).to_le_bytes()),
                _ => out.extend_from_slice(&bytes[..bytes.len().min(3)]),
            }
            out
        })
}

fn proto_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        raw_bytes(),
        vec(proto_field(), 0..10).prop_map(|fs| fs.concat()),
        (vec(proto_field(), 1..10), any::<usize>()).prop_map(|(fs, cut)| {
            let mut b = fs.concat();
            let n = b.len();
            b.truncate(cut % (n + 1));
            b
        }),
    ]
}

// ---------------------------------------------------------------------------
// Records.
// ---------------------------------------------------------------------------

/// Walks records and checks every event against the input.
fn check_records(data: &[u8], start: usize, typed: bool, it: Records<'_>) {
    let mut pos = if start == usize::MAX {
        VERSION_LEN.min(data.len())
    } else {
        start.min(data.len())
    };
    let mut payload_sum = 0usize;
    let mut ended = false;
    let mut n = 0usize;
    // A record consumes at least HEADER_LEN bytes, so this bounds any
    // terminating walk.
    let bound = data.len() / HEADER_LEN + 2;
    for ev in it {
        n += 1;
        assert!(n <= bound, "more events than the input can hold");
        assert!(!ended, "event after the end");
        match ev {
            Event::Record(r) => {
                assert_eq!(r.offset as usize, pos);
                assert!(inside(data, r.payload));
                assert_eq!(
                    r.payload.as_ptr() as usize,
                    data.as_ptr() as usize + pos + HEADER_LEN
                );
                let first = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
                let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
                assert_eq!(r.crc, crc);
                if typed {
                    assert_eq!(r.rtype as u32, first >> 24);
                    assert_eq!(r.payload.len() as u32, first & 0x00ff_ffff);
                } else {
                    assert_eq!(r.rtype, 0);
                    assert_eq!(r.payload.len() as u32, first);
                }
                assert_eq!(r.end() as usize, pos + HEADER_LEN + r.payload.len());
                payload_sum += r.payload.len();
                pos = r.end() as usize;
                assert!(pos <= data.len());
            }
            Event::ZeroPadding { offset, len } => {
                assert_eq!(offset as usize, pos);
                assert_eq!(offset + len, data.len() as u64);
                assert!(pos + HEADER_LEN <= data.len());
                assert!(data[pos..pos + HEADER_LEN].iter().all(|&b| b == 0));
                ended = true;
            }
            Event::Truncated {
                offset,
                expected,
                available,
            } => {
                assert_eq!(offset as usize, pos);
                match expected {
                    None => {
                        assert!(available < HEADER_LEN as u64);
                        assert_eq!(offset + available, data.len() as u64);
                    }
                    Some(e) => {
                        assert!((e as u64) > available);
                        assert_eq!(offset + HEADER_LEN as u64 + available, data.len() as u64);
                    }
                }
                ended = true;
            }
        }
    }
    assert!(payload_sum <= data.len());
}

// ---------------------------------------------------------------------------
// replace_data: the rewrite primitive.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Msg {
    seq: u64,
    subject: Vec<u8>,
    reply: Vec<u8>,
    data: Vec<u8>,
    timestamp: i64,
    redelivered: bool,
    redelivery_count: u32,
    crc32: u32,
}

/// MsgProto as the server (gogo-protobuf, proto3) writes it: number order,
/// zero values omitted.
fn encode(m: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    let varint = |out: &mut Vec<u8>, n: u64, v: u64| {
        if v != 0 {
            proto::write_varint(out, n << 3);
            proto::write_varint(out, v);
        }
    };
    let bytes = |out: &mut Vec<u8>, n: u64, b: &[u8]| {
        if !b.is_empty() {
            proto::write_varint(out, (n << 3) | 2);
            proto::write_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
    };
    varint(&mut out, 1, m.seq);
    bytes(&mut out, 2, &m.subject);
    bytes(&mut out, 3, &m.reply);
    bytes(&mut out, 4, &m.data);
    varint(&mut out, 5, m.timestamp as u64);
    varint(&mut out, 6, m.redelivered as u64);
    varint(&mut out, 7, m.redelivery_count as u64);
    varint(&mut out, 10, m.crc32 as u64);
    out
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        vec(any::<u8>(), 1..40),
        // Lengths around the varint boundaries (127/128, 16383/16384).
        (prop_oneof![120usize..136, 16376usize..16392], any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        any::<u64>(),
        vec(any::<u8>(), 0..20),
        vec(any::<u8>(), 0..20),
        payload(),
        any::<i64>(),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(seq, subject, reply, data, timestamp, redelivered, redelivery_count, crc32)| Msg {
                seq,
                subject,
                reply,
                data,
                timestamp,
                redelivered,
                redelivery_count,
                crc32,
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn records_untyped_stay_inside(data in record_input(false)) {
        check_records(&data, usize::MAX, false, Records::new(&data, false));
    }

    #[test]
    fn records_typed_stay_inside(data in record_input(true)) {
        check_records(&data, usize::MAX, true, Records::new(&data, true));
    }

    #[test]
    fn records_at_any_offset_stay_inside(data in record_input(false), at in 0usize..700, typed in any::<bool>()) {
        check_records(&data, at, typed, Records::at(&data, at, typed));
    }

    #[test]
    fn file_version_never_panics(data in raw_bytes()) {
        let v = record::file_version(&data);
        match data.len() {
            0 => prop_assert_eq!(v, record::FileVersion::Empty),
            1..=3 => prop_assert_eq!(v, record::FileVersion::CutShort(data.len())),
            _ => {}
        }
    }

    #[test]
    fn records_roundtrip(
        typed in any::<bool>(),
        version in any::<u32>(),
        recs in vec((1u8..=255, any::<u32>(), vec(any::<u8>(), 0..300)), 0..12),
    ) {
        let recs: Vec<(u8, u32, Vec<u8>)> = recs
            .into_iter()
            .map(|(t, crc, p)| {
                let t = if typed { t } else { 0 };
                // An untyped empty record with crc 0 is, by the format, padding.
                let crc = if !typed && p.is_empty() && crc == 0 { 1 } else { crc };
                (t, crc, p)
            })
            .collect();
        let mut f = version.to_le_bytes().to_vec();
        let mut offsets = Vec::new();
        for (t, crc, p) in &recs {
            offsets.push(f.len() as u64);
            record::write_record(&mut f, *t, *crc, p);
        }
        let back: Vec<Event<'_>> = Records::new(&f, typed).collect();
        prop_assert_eq!(back.len(), recs.len());
        for ((ev, (t, crc, p)), off) in back.iter().zip(&recs).zip(&offsets) {
            match ev {
                Event::Record(r) => {
                    prop_assert_eq!(r.rtype, *t);
                    prop_assert_eq!(r.crc, *crc);
                    prop_assert_eq!(r.payload, &p[..]);
                    prop_assert_eq!(r.offset, *off);
                }
                other => prop_assert!(false, "expected a record, got {:?}", other),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Index entries.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn index_entries_stay_inside(data in prop_oneof![raw_bytes(), index_file()], castagnoli in any::<bool>()) {
        let crc = if castagnoli {
            Crc32::new(stanctl::format::crc::CASTAGNOLI)
        } else {
            Crc32::ieee()
        };
        let mut pos = VERSION_LEN.min(data.len()) as u64;
        let mut ended = false;
        let mut n = 0usize;
        for ev in index::entries(&data, &crc) {
            n += 1;
            prop_assert!(n <= data.len() / ENTRY_LEN + 1);
            prop_assert!(!ended);
            match ev {
                IndexEvent::Entry { at, entry, crc_ok } => {
                    prop_assert_eq!(at, pos);
                    let b: &[u8; ENTRY_LEN] = data[at as usize..at as usize + ENTRY_LEN].try_into().unwrap();
                    prop_assert_eq!(entry, index::IndexEntry::parse(b));
                    prop_assert_eq!(entry.to_bytes(), *b);
                    prop_assert_eq!(crc_ok, crc.checksum(&b[..28]) == entry.crc);
                    prop_assert!(!entry.is_padding());
                    pos += ENTRY_LEN as u64;
                }
                IndexEvent::Padding { at } => {
                    prop_assert_eq!(at, pos);
                    prop_assert!(data[at as usize..at as usize + ENTRY_LEN].iter().all(|&b| b == 0));
                    ended = true;
                }
                IndexEvent::Partial { at, len } => {
                    prop_assert_eq!(at, pos);
                    prop_assert!(len < ENTRY_LEN as u64);
                    prop_assert_eq!(at + len, data.len() as u64);
                    ended = true;
                }
            }
        }
        prop_assert!(pos <= data.len() as u64);
    }

    #[test]
    fn index_entry_roundtrip(seq in any::<u64>(), off in any::<u64>(), ts in any::<i64>(), size in any::<u32>()) {
        let crc = Crc32::ieee();
        let e = index::IndexEntry::new(seq, off, ts, size, &crc);
        let b = e.to_bytes();
        prop_assert_eq!(index::IndexEntry::parse(&b), e);
        let mut f = 1u32.to_le_bytes().to_vec();
        f.extend_from_slice(&b);
        let evs: Vec<_> = index::entries(&f, &crc).collect();
        if e.is_padding() {
            prop_assert_eq!(evs, vec![IndexEvent::Padding { at: 4 }]);
        } else {
            prop_assert_eq!(evs, vec![IndexEvent::Entry { at: 4, entry: e, crc_ok: true }]);
        }
    }
}

// ---------------------------------------------------------------------------
// Protobuf.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fields_stay_inside(buf in proto_input()) {
        let mut last_start = None;
        let mut n = 0usize;
        let mut failed = false;
        for f in proto::fields(&buf) {
            n += 1;
            // Each field takes at least two bytes (tag and value).
            prop_assert!(n <= buf.len() / 2 + 1);
            prop_assert!(!failed, "field after an error");
            match f {
                Ok(f) => {
                    prop_assert!(f.start < buf.len());
                    if let Some(s) = last_start {
                        prop_assert!(f.start > s);
                    }
                    last_start = Some(f.start);
                    prop_assert!(f.number > 0);
                    if let Value::Bytes(r) = &f.value {
                        prop_assert!(r.start > f.start && r.start <= r.end && r.end <= buf.len());
                    }
                }
                Err(_) => failed = true,
            }
        }
    }

    #[test]
    fn msg_view_stays_inside(buf in proto_input()) {
        if let Ok(m) = MsgView::parse(&buf) {
            prop_assert!(inside(&buf, m.subject));
            prop_assert!(inside(&buf, m.reply));
            prop_assert!(inside(&buf, m.data));
            prop_assert!(m.subject_at.start <= m.subject_at.end && m.subject_at.end <= buf.len());
            prop_assert!(m.reply_at.start <= m.reply_at.end && m.reply_at.end <= buf.len());
            prop_assert_eq!(&buf[m.subject_at.clone()], m.subject);
            prop_assert_eq!(&buf[m.reply_at.clone()], m.reply);
            match &m.data_field {
                Some(r) => {
                    prop_assert!(r.start < r.end && r.end <= buf.len());
                    prop_assert!(buf[r.clone()].ends_with(m.data));
                    prop_assert_eq!(buf[r.start] >> 3, 4);
                }
                None => prop_assert!(m.data.is_empty()),
            }
            let total = m.subject.len() + m.reply.len() + m.data.len();
            prop_assert!(total <= buf.len());
        }
    }

    #[test]
    fn side_parsers_never_panic(buf in proto_input()) {
        if let Ok(s) = ServerInfo::parse(&buf) {
            // from_utf8_lossy may grow invalid bytes to 3-byte U+FFFD.
            prop_assert!(s.cluster_id.len() <= 3 * buf.len());
            prop_assert!(s.node_id.len() <= 3 * buf.len());
        }
        if let Ok(s) = SubState::parse(&buf) {
            let strs = s.client_id.len() + s.queue_group.len() + s.inbox.len() + s.durable_name.len();
            prop_assert!(strs <= 3 * buf.len());
        }
        for delete in [false, true] {
            if let Ok(id) = proto::client_id(&buf, delete) {
                prop_assert!(inside(&buf, id));
            }
        }
        let _ = proto::sub_update(&buf);
        let _ = proto::read_varint(&buf, 0);
    }

    #[test]
    fn varint_roundtrip(v in any::<u64>(), junk in vec(any::<u8>(), 0..4)) {
        let mut b = Vec::new();
        proto::write_varint(&mut b, v);
        prop_assert_eq!(b.len(), proto::varint_len(v));
        let n = b.len();
        b.extend_from_slice(&junk);
        prop_assert_eq!(proto::read_varint(&b, 0), Ok((v, n)));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn replace_data_roundtrip(m in msg(), new in payload()) {
        let orig = encode(&m);
        let v = MsgView::parse(&orig).unwrap();
        prop_assert_eq!(v.data, &m.data[..]);
        let mut out = Vec::new();
        proto::replace_data(&orig, v.data_field.clone(), &new, &mut out);
        prop_assert_eq!(out.len(), proto::replaced_len(orig.len(), v.data_field.as_ref(), new.len()));
        let w = MsgView::parse(&out).unwrap();
        prop_assert_eq!(w.data, &new[..]);
        prop_assert_eq!(w.sequence, v.sequence);
        prop_assert_eq!(w.subject, v.subject);
        prop_assert_eq!(w.reply, v.reply);
        prop_assert_eq!(w.timestamp, v.timestamp);
        prop_assert_eq!(w.redelivered, v.redelivered);
        prop_assert_eq!(w.data_field.is_none(), new.is_empty());
        // Byte for byte what the server writes for the new payload.
        let expect = encode(&Msg { data: new.clone(), ..m.clone() });
        prop_assert_eq!(&out, &expect);
        // Every other field is carried unchanged, unknown ones included.
        let strip = |b: &[u8]| -> Vec<(u64, Vec<u8>)> {
            // Byte ranges move; compare the bytes they cover instead.
            proto::fields(b)
                .map(|f| f.unwrap())
                .filter(|f| f.number != 4)
                .map(|f| match f.value {
                    Value::Bytes(r) => (f.number, b[r].to_vec()),
                    _ => (f.number, format!("{:?}", f.value).into_bytes()),
                })
                .collect()
        };
        prop_assert_eq!(strip(&orig), strip(&out));
        // And back again.
        let mut back = Vec::new();
        proto::replace_data(&out, w.data_field.clone(), &m.data, &mut back);
        prop_assert_eq!(back, orig);
    }
}

// ---------------------------------------------------------------------------
// Envelope detection.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn classify_is_the_servers_rule(data in prop_oneof![
        raw_bytes(),
        (1u8..=2, vec(any::<u8>(), 0..40)).prop_map(|(c, mut v)| { v.insert(0, c); v }),
    ]) {
        let k = envelope::classify(&data);
        let want = match data.first() {
            None => PayloadKind::Empty,
            Some(&c) if c != 1 && c != 2 => PayloadKind::Plain,
            Some(&c) => {
                let cipher = if c == 1 { stanctl::crypto::aead::Cipher::Aes } else { stanctl::crypto::aead::Cipher::ChaCha };
                if data.len() <= 13 { PayloadKind::Short(cipher) } else { PayloadKind::Envelope(cipher) }
            }
        };
        prop_assert_eq!(k, want);
        if let PayloadKind::Envelope(_) = k {
            let n = envelope::nonce(&data);
            prop_assert!(inside(&data, n));
            prop_assert_eq!(&n[..], &data[1..13]);
            let _ = stanctl::crypto::nonce::nonce_origin(n, u64::MAX);
            let _ = stanctl::crypto::nonce::nonce_origin(n, 0);
        }
    }
}
