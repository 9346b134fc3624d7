//! Whole-store fuzzing: a conformance store, mutated with structure-aware
//! mutations (size fields up to 2^32-1, zeroed headers, truncation,
//! extension, swapped index entries, duplicated records, removed and emptied
//! files), then inspected, verified and (on some cases) checked by a dry-run
//! rewrite. Nothing may panic, every error must be a clean `Err`, every
//! report must be produced and plausible, and the verify verdict must be one
//! of ok / at-risk / will-not-start.
//!
//! The single parsers are covered by tests/proptest_parsers.rs; this file
//! only adds whole-store targets and envelope opening with real keys.
//!
//! Cases: `STANCTL_FUZZ_CASES` (default 300 per store target, ~10 s on two
//! cores in a debug build). Failures are reproducible from proptest's seed.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use stanctl::crypto::aead::{Backend, Cipher};
use stanctl::crypto::keys::{Key, KeyOrigin};
use stanctl::format::crc::Crc32;
use stanctl::format::layout::StoreLayout;
use stanctl::format::record::{Event, Records};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn cases(default: u32) -> u32 {
    std::env::var("STANCTL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 200,
        ..Config::default()
    }
}

mod common;
use common::{d, exec, fixtures, k1, k2, snapshot, stanctl};

type Files = BTreeMap<PathBuf, Vec<u8>>;

fn load(name: &str) -> Files {
    fn walk(root: &Path, dir: &Path, out: &mut Files) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let root = fixtures().join("conformance").join(name);
    let mut m = Files::new();
    walk(&root, &root, &mut m);
    m
}

fn key_of(n: u8) -> Key {
    let path = fixtures().join(format!("k{n}.key"));
    let m = stanctl::cli::keys::read_key_file(&path).unwrap();
    Key::from_material(format!("K{n}"), KeyOrigin::File(path), &m)
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte {
        file: usize,
        at: usize,
        xor: u8,
    },
    /// A u32 anywhere (size fields, versions, CRCs, index fields).
    SetU32 {
        file: usize,
        at: usize,
        v: u32,
    },
    /// The size field of the n-th record header.
    RecordSize {
        file: usize,
        rec: usize,
        v: u32,
    },
    ZeroHeader {
        file: usize,
        rec: usize,
    },
    Truncate {
        file: usize,
        at: usize,
    },
    Extend {
        file: usize,
        bytes: Vec<u8>,
    },
    SwapIndexEntries {
        file: usize,
        a: usize,
        b: usize,
    },
    /// Inserts a copy of record `rec` of file `from` before record `before`
    /// of file `file` (same or another slice).
    DuplicateRecord {
        from: usize,
        rec: usize,
        file: usize,
        before: usize,
    },
    Remove {
        file: usize,
    },
    Empty {
        file: usize,
    },
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0xffff_fffe),
        Just(u32::MAX),
        0u32..300,
        any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let f = any::<usize>();
    prop_oneof![
        (f, any::<usize>(), 1u8..=255).prop_map(|(file, at, xor)| Mutation::FlipByte {
            file,
            at,
            xor
        }),
        (f, any::<usize>(), interesting_u32()).prop_map(|(file, at, v)| Mutation::SetU32 {
            file,
            at,
            v
        }),
        (f, 0usize..40, interesting_u32()).prop_map(|(file, rec, v)| Mutation::RecordSize {
            file,
            rec,
            v
        }),
        (f, 0usize..40).prop_map(|(file, rec)| Mutation::ZeroHeader { file, rec }),
        (f, any::<usize>()).prop_map(|(file, at)| Mutation::Truncate { file, at }),
        (
            f,
            proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 1..64)
        )
            .prop_map(|(file, bytes)| Mutation::Extend { file, bytes }),
        (f, 0usize..20, 0usize..20).prop_map(|(file, a, b)| Mutation::SwapIndexEntries {
            file,
            a,
            b
        }),
        (f, 0usize..20, f, 0usize..25).prop_map(|(from, rec, file, before)| {
            Mutation::DuplicateRecord {
                from,
                rec,
                file,
                before,
            }
        }),
        f.prop_map(|file| Mutation::Remove { file }),
        f.prop_map(|file| Mutation::Empty { file }),
    ]
}

/// Record boundaries of a message slice (untyped) or side file (typed).
fn record_spans(data: &[u8], typed: bool) -> Vec<(usize, usize)> {
    Records::new(data, typed)
        .filter_map(|e| match e {
            Event::Record(r) => Some((r.offset as usize, r.end() as usize)),
            _ => None,
        })
        .collect()
}

fn is_typed(p: &Path) -> bool {
    matches!(
        p.file_name().and_then(|n| n.to_str()),
        Some("subs.dat" | "clients.dat")
    )
}

fn apply(files: &mut Files, m: &Mutation) {
    let names: Vec<PathBuf> = files.keys().cloned().collect();
    if names.is_empty() {
        return;
    }
    let pick = |i: usize| names[i % names.len()].clone();
    let pick_ext = |i: usize, ext: &str| {
        let v: Vec<_> = names
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext) && !is_typed(p))
            .collect();
        (!v.is_empty()).then(|| v[i % v.len()].clone())
    };
    match m {
        Mutation::FlipByte { file, at, xor } => {
            let b = files.get_mut(&pick(*file)).unwrap();
            if !b.is_empty() {
                let n = b.len();
                b[at % n] ^= xor;
            }
        }
        Mutation::SetU32 { file, at, v } => {
            let b = files.get_mut(&pick(*file)).unwrap();
            if b.len() >= 4 {
                let at = at % (b.len() - 3);
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::RecordSize { file, rec, v } => {
            let p = pick(*file);
            let typed = is_typed(&p);
            let b = files.get_mut(&p).unwrap();
            let spans = record_spans(b, typed);
            if let Some(&(at, _)) = spans.get(rec % spans.len().max(1)) {
                let v = if typed {
                    (b[at + 3] as u32) << 24 | (v & 0xff_ffff)
                } else {
                    *v
                };
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::ZeroHeader { file, rec } => {
            let p = pick(*file);
            let b = files.get_mut(&p).unwrap();
            let spans = record_spans(b, is_typed(&p));
            if let Some(&(at, _)) = spans.get(rec % spans.len().max(1)) {
                b[at..at + 8].fill(0);
            }
        }
        Mutation::Truncate { file, at } => {
            let b = files.get_mut(&pick(*file)).unwrap();
            let n = b.len() + 1;
            b.truncate(at % n);
        }
        Mutation::Extend { file, bytes } => {
            files
                .get_mut(&pick(*file))
                .unwrap()
                .extend_from_slice(bytes);
        }
        Mutation::SwapIndexEntries { file, a, b } => {
            if let Some(p) = pick_ext(*file, "idx") {
                let d = files.get_mut(&p).unwrap();
                let n = d.len().saturating_sub(4) / 32;
                if n >= 2 {
                    let (a, b) = (a % n, b % n);
                    for k in 0..32 {
                        d.swap(4 + a * 32 + k, 4 + b * 32 + k);
                    }
                }
            }
        }
        Mutation::DuplicateRecord {
            from,
            rec,
            file,
            before,
        } => {
            let (Some(src), Some(dst)) = (pick_ext(*from, "dat"), pick_ext(*file, "dat")) else {
                return;
            };
            let s = &files[&src];
            let spans = record_spans(s, false);
            let Some(&(a, e)) = spans.get(rec % spans.len().max(1)) else {
                return;
            };
            let bytes = s[a..e].to_vec();
            let d = files.get_mut(&dst).unwrap();
            let spans = record_spans(d, false);
            let at = spans.get(*before).map_or(d.len(), |s| s.0);
            d.splice(at..at, bytes);
        }
        Mutation::Remove { file } => {
            files.remove(&pick(*file));
        }
        Mutation::Empty { file } => {
            files.get_mut(&pick(*file)).unwrap().clear();
        }
    }
}

fn write_store(dir: &Path, files: &Files) {
    let _ = std::fs::remove_dir_all(dir);
    for (p, b) in files {
        let to = dir.join(p);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, b).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
}

fn total_len(files: &Files) -> u64 {
    files.values().map(|b| b.len() as u64).sum()
}

/// inspect and verify (several settings) on the store in `dir`: no panic,
/// clean errors, plausible reports.
fn check_library(dir: &Path, files: &Files) -> Result<(), TestCaseError> {
    let layout = match StoreLayout::discover(dir) {
        Ok(l) => l,
        Err(e) => {
            // Only a store without server.dat is not a store.
            prop_assert!(!files.contains_key(Path::new("server.dat")), "{e}");
            return Ok(());
        }
    };
    let keys = vec![key_of(1), key_of(2)];
    let crc = Crc32::ieee();
    let bytes = total_len(files);
    let opts = stanctl::ops::inspect::InspectOptions {
        crc: crc.clone(),
        backend: Backend::default(),
        records: true,
    };
    match stanctl::ops::inspect::run(&layout, &keys, &opts, &stanctl::ops::Silent) {
        Ok(r) => {
            prop_assert_eq!(r.channels.len(), layout.channels.len());
            // Every record has an 8-byte header: no count beyond the bytes on disk.
            prop_assert!(r.totals.messages * 8 <= bytes);
            prop_assert!(r.totals.bytes <= bytes);
            let recs: usize = r
                .channels
                .iter()
                .map(|c| c.records.as_ref().map_or(0, |r| r.to_vec().unwrap().len()))
                .sum();
            prop_assert_eq!(recs as u64, r.totals.messages);
            serde_json::to_string(&stanctl::report::json::Inspect(&r)).unwrap();
        }
        Err(e) => prop_assert!(matches!(e, stanctl::Error::Io { .. }), "inspect: {e}"),
    }
    for (encryption, k, truncate, list) in [
        (true, Some(1u8), false, true),
        (false, None, true, false),
        (true, Some(2), true, false),
    ] {
        use stanctl::cli::exit::ExitCode;
        use stanctl::ops::verify::{Severity, Verdict, VerifyOptions};
        let opts = VerifyOptions {
            encryption,
            cipher: Cipher::Aes,
            crc: crc.clone(),
            truncate_on_eof: truncate,
            file_crc: !truncate,
            read_buffer_size: if truncate { 100 } else { 2 << 20 },
            list,
            backend: Backend::default(),
        };
        let k = k.map(key_of);
        match stanctl::ops::verify::run(&layout, k.as_ref(), &opts, &stanctl::ops::Silent) {
            Ok(r) => {
                let code = ExitCode::of_verdict(r.verdict).code();
                let want = match r.verdict {
                    Verdict::Ok => 0,
                    Verdict::AtRisk => 1,
                    Verdict::WillNotStart => 2,
                };
                prop_assert_eq!(code, want);
                let refused = r
                    .findings
                    .iter()
                    .any(|f| f.severity == Severity::WillNotStart);
                prop_assert_eq!(refused, r.verdict == Verdict::WillNotStart);
                prop_assert!(r.totals.failed <= r.totals.messages);
                let block = stanctl::report::settings::Block::default();
                serde_json::to_string(&stanctl::report::json::Verify(&r, code, &block)).unwrap();
            }
            Err(e) => prop_assert!(matches!(e, stanctl::Error::Io { .. }), "verify: {e}"),
        }
    }
    Ok(())
}

/// The rewrite's check path through the binary: a dry run never writes,
/// never panics, and ends 0 (nothing refused), 4 (refused) or 74.
fn check_dry_run(dir: &Path) -> Result<(), TestCaseError> {
    let before = snapshot(dir);
    // exec() fails the case on a panic, a signal or key material in the output.
    let args = [
        "store",
        "decrypt",
        d(dir),
        "--key-file",
        k1(),
        "--key-file",
        k2(),
        "--dry-run",
    ];
    let o = exec(stanctl().args(args), &args);
    let err = &o.stderr;
    prop_assert!(matches!(o.code, 0 | 4 | 74), "exit {}: {err}", o.code);
    prop_assert!(!err.contains("conformance-key"));
    prop_assert_eq!(snapshot(dir), before.clone(), "dry run wrote");

    // Salvage into a copy: the source is never touched, and the run ends in
    // a written and checked copy (0), a refusal (4: clustered, or the
    // guard saw a kept record's verdict change) or an I/O error (74).
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let args = [
        "store",
        "rekey",
        d(dir),
        "--key-file",
        k1(),
        "--new-key-file",
        k2(),
        "--keep-damaged",
        "--output",
        d(&out),
    ];
    let o = exec(stanctl().args(args), &args);
    prop_assert!(
        matches!(o.code, 0 | 4 | 74),
        "salvage exit {}: {}",
        o.code,
        o.stderr
    );
    prop_assert_eq!(snapshot(dir), before, "salvage wrote into its source");
    if o.code == 4 {
        prop_assert!(
            !out.exists() || snapshot(&out).is_empty(),
            "refused, but wrote"
        );
    }
    Ok(())
}

fn fuzz_store(name: &str, n: u32) {
    let base = load(name);
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("s");
    let counter = std::sync::atomic::AtomicU32::new(0);
    proptest!(config(n), |(muts in proptest::collection::vec(mutation(), 1..6))| {
        let mut files = base.clone();
        for m in &muts {
            apply(&mut files, m);
        }
        write_store(&dir, &files);
        check_library(&dir, &files)?;
        // The binary is slow to spawn: one case in 16.
        if counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(16)
        {
            check_dry_run(&dir)?;
        }
    });
}

#[test]
fn fuzz_aes_store() {
    fuzz_store("aes", cases(300));
}

#[test]
fn fuzz_mixed_store() {
    fuzz_store("mixed", cases(300));
}

#[test]
fn fuzz_damaged_stores() {
    for name in [
        "damaged-crc",
        "damaged-truncated",
        "damaged-zero-tail",
        "damaged-noidx",
    ] {
        fuzz_store(name, cases(300) / 4);
    }
}

/// Every envelope of these conformance stores, with its channel: (channel, data).
fn fixture_envelopes(stores: &[&str]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut envs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for store in stores {
        for (p, b) in load(store) {
            if p.extension().is_some_and(|e| e == "dat")
                && !is_typed(&p)
                && p.components().count() == 2
            {
                let ch = p
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .into_owned();
                for (a, e) in record_spans(&b, false) {
                    let m = stanctl::format::proto::MsgView::parse(&b[a + 8..e]).unwrap();
                    if matches!(
                        stanctl::crypto::envelope::classify(m.data),
                        stanctl::crypto::envelope::PayloadKind::Envelope(_)
                    ) {
                        envs.push((ch.as_bytes().to_vec(), m.data.to_vec()));
                    }
                }
            }
        }
    }
    envs
}

/// Real envelopes from the aes and chacha stores, bit-flipped, truncated or
/// extended, opened with the channel's real key: never a panic, and only the
/// unmodified envelope opens.
#[test]
fn fuzz_envelope_open_with_real_keys() {
    let k = key_of(1);
    let envs = fixture_envelopes(&["aes", "chacha"]);
    assert!(envs.len() > 50);
    let aeads: Vec<_> = envs
        .iter()
        .map(|(c, _)| {
            stanctl::crypto::aead::ChannelAead::new(&k.channel_key(c), Backend::default())
        })
        .collect();
    let scratch = std::cell::RefCell::new(Vec::new());
    proptest!(config(cases(300) * 10), |(i in any::<usize>(), at in any::<usize>(), xor in 0u8..=255, cut in any::<usize>(), extra in proptest::collection::vec(any::<u8>(), 0..4))| {
        let i = i % envs.len();
        let mut data = envs[i].1.clone();
        let n = data.len();
        data[at % n] ^= xor;
        data.truncate(cut % (n + 1) + if cut % 2 == 0 { n } else { 0 });
        data.extend_from_slice(&extra);
        let unmodified = data == envs[i].1;
        match stanctl::crypto::envelope::classify(&data) {
            stanctl::crypto::envelope::PayloadKind::Envelope(c) => {
                let opened = stanctl::crypto::envelope::open(&aeads[i], c, &data, &mut scratch.borrow_mut()).is_some();
                prop_assert_eq!(opened, unmodified, "envelope {} modified={}", i, !unmodified);
            }
            _ => prop_assert!(!unmodified),
        }
    });
}

/// The tag-only check (`crypto::tag`, what verify, inspect and the rewrite
/// check use when they do not need the plaintext) accepts exactly the
/// envelopes the full opens accept: every envelope of the aes, chacha and
/// mixed stores under K1 and K2, with both backends.
#[test]
fn tag_check_agrees_with_open_on_fixture_envelopes() {
    use stanctl::crypto::aead::ChannelAead;
    use stanctl::crypto::envelope::{self, PayloadKind};
    let keys = [key_of(1), key_of(2)];
    let envs = fixture_envelopes(&["aes", "chacha", "mixed"]);
    let (mut opened, mut refused) = (0, 0);
    let mut scratch = Vec::new();
    for (ch, data) in &envs {
        let PayloadKind::Envelope(c) = envelope::classify(data) else {
            unreachable!("fixture_envelopes keeps envelopes")
        };
        for k in &keys {
            let ck = k.channel_key(ch);
            let nonce = envelope::nonce(data);
            let body = &data[13..];
            let (ct, tag) = body.split_at(body.len() - 16);
            let tag: &[u8; 16] = tag.try_into().unwrap();
            let direct = match c {
                Cipher::Aes => stanctl::crypto::tag::AesGcmTag::new(&ck).check(nonce, ct, tag),
                Cipher::ChaCha => {
                    stanctl::crypto::tag::ChaChaPolyTag::new(&ck).check(nonce, ct, tag)
                }
            };
            for &b in Backend::all() {
                let a = [ChannelAead::new(&ck, b)];
                // Opened: the plaintext's first byte and class.
                let full = envelope::open(&a[0], c, data, &mut scratch)
                    .map(|pt| (pt.first().copied(), envelope::classify(pt)));
                let quick = envelope::opens_any(&a, c, data, &mut scratch);
                let name = String::from_utf8_lossy(ch);
                assert_eq!(quick, full.map(|f| (0, f.1)), "{b:?} {c:?} {name}");
                assert_eq!(direct, full.map(|f| f.0), "{b:?} {c:?} {name}");
            }
            if direct.is_some() {
                opened += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Every envelope opens under exactly one of K1, K2.
    assert_eq!(opened, envs.len());
    assert_eq!(refused, envs.len());
}

#[derive(Debug, Clone)]
enum Tamper {
    None,
    FlipCiphertext(usize, u8),
    FlipTag(usize, u8),
    Truncate(usize),
    Extend(u8),
    OtherNonce(usize, u8),
    OtherKey(usize, u8),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        2 => Just(Tamper::None),
        1 => (any::<usize>(), 1u8..=255).prop_map(|(a, x)| Tamper::FlipCiphertext(a, x)),
        1 => (0usize..16, 1u8..=255).prop_map(|(a, x)| Tamper::FlipTag(a, x)),
        1 => (1usize..40).prop_map(Tamper::Truncate),
        1 => any::<u8>().prop_map(Tamper::Extend),
        1 => (0usize..12, 1u8..=255).prop_map(|(a, x)| Tamper::OtherNonce(a, x)),
        1 => (0usize..32, 1u8..=255).prop_map(|(a, x)| Tamper::OtherKey(a, x)),
    ]
}

proptest! {
    #![proptest_config(config(cases(300) * 4))]

    /// Random keys, nonces and plaintexts (every size 0..64, then up to 600,
    /// 4096 bytes and either side of `CHACHA_TAG_FROM`), sealed by either
    /// backend and maybe tampered with: the tag-only check passes exactly
    /// when ring and RustCrypto open.
    #[test]
    fn tag_only_check_agrees_with_full_opens(
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        plain in prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => proptest::collection::vec(any::<u8>(), 64..600),
            1 => proptest::collection::vec(any::<u8>(), 4096..=4096),
            // Around the length from which the default build checks a
            // ChaCha20-Poly1305 tag alone instead of opening with ring.
            1 => proptest::collection::vec(
                any::<u8>(),
                stanctl::crypto::aead::CHACHA_TAG_FROM - 17..stanctl::crypto::aead::CHACHA_TAG_FROM + 17
            ),
        ],
        aes in any::<bool>(),
        sealer in any::<usize>(),
        t in tamper(),
    ) {
        use stanctl::crypto::aead::ChannelAead;
        use zeroize::Zeroizing;
        let c = if aes { Cipher::Aes } else { Cipher::ChaCha };
        let backends = Backend::all();
        let k = Zeroizing::new(key);
        let mut body = plain.clone();
        let tag = ChannelAead::new(&k, backends[sealer % backends.len()]).seal_in_place(c, &nonce, &mut body);
        body.extend_from_slice(&tag);
        let (mut key2, mut nonce2) = (key, nonce);
        let mut tampered = true;
        let n = plain.len();
        match t {
            Tamper::None => tampered = false,
            Tamper::FlipCiphertext(a, x) => {
                if n == 0 { tampered = false } else { body[a % n] ^= x }
            }
            Tamper::FlipTag(a, x) => body[n + a] ^= x,
            Tamper::Truncate(m) => body.truncate(body.len().saturating_sub(m)),
            Tamper::Extend(b) => body.push(b),
            Tamper::OtherNonce(a, x) => nonce2[a] ^= x,
            Tamper::OtherKey(a, x) => key2[a] ^= x,
        }
        let k2 = Zeroizing::new(key2);
        let mut scratch = Vec::new();
        for &b in backends {
            let aead = ChannelAead::new(&k2, b);
            let mut copy = body.clone();
            let full = aead.open_in_place(c, &nonce2, &mut copy);
            prop_assert_eq!(full, !tampered, "{:?} {:?}", b, c);
            if full {
                prop_assert_eq!(&copy[..n], &plain[..]);
            }
            // Opens, with the plaintext's first byte.
            let want = full.then(|| plain.first().copied());
            prop_assert_eq!(aead.authenticates(c, &nonce2, &body, &mut scratch), want);
        }
        let direct = match body.len().checked_sub(16) {
            None => None,
            Some(l) => {
                let tag: &[u8; 16] = body[l..].try_into().unwrap();
                match c {
                    Cipher::Aes => stanctl::crypto::tag::AesGcmTag::new(&key2).check(&nonce2, &body[..l], tag),
                    Cipher::ChaCha => stanctl::crypto::tag::ChaChaPolyTag::new(&key2).check(&nonce2, &body[..l], tag),
                }
            }
        };
        prop_assert_eq!(direct, (!tampered).then(|| plain.first().copied()));
    }
}
