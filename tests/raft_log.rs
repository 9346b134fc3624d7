//! The Raft log layer against the reference server's own files and dumps
//! (fixtures/clustered), the writer by round trips, and hostile files.

use stanctl::crypto::aead::{Backend, Cipher};
use stanctl::crypto::raft::{data_kind, nonce_origin, seal, serve, RaftKey, Served};
use stanctl::format::raft::bbolt::{self, BoltError, Db, Item, Visited};
use stanctl::format::raft::{rewrite_log, DataEdit, RaftError, RaftLog, RaftLogLock};
use stanctl::report::raft_list::list_lines;
use std::path::{Path, PathBuf};

fn clustered() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clustered")
}

fn key(n: u8) -> RaftKey {
    let m = format!("conformance-key-{n}");
    RaftKey::from_material(m.as_bytes(), Backend::default())
}

/// The log file an expected/ dump was made from, and its key setting.
fn source_of(expected: &str) -> (PathBuf, Option<u8>) {
    let stem = expected.trim_end_matches(".tsv");
    let (name, setting) = stem.rsplit_once('.').unwrap();
    let k = match setting {
        "key1" => Some(1),
        "key2" => Some(2),
        "no-encrypt" => None,
        s => panic!("setting {s}"),
    };
    let path = if let Some(file) = name.strip_prefix("raft-") {
        clustered().join("raft").join(file)
    } else {
        let node = name.trim_end_matches(".raft");
        clustered().join(node).join("raft/test-cluster/raft.log")
    };
    (path, k)
}

fn expected_dumps() -> Vec<(String, Vec<String>)> {
    let dir = clustered().join("expected");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("raft"))
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(&n)).unwrap();
            let lines = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(str::to_string)
                .collect();
            (n, lines)
        })
        .collect();
    v.sort();
    assert_eq!(v.len(), 15, "every raft dump of the fixtures");
    v
}

fn lines_of(path: &Path, k: Option<u8>) -> Vec<String> {
    let log = RaftLog::open(path).unwrap();
    let key = k.map(key);
    list_lines(&log, key.as_ref()).unwrap()
}

#[test]
fn reproduces_every_server_dump() {
    for (name, want) in expected_dumps() {
        let (path, k) = source_of(&name);
        let got = lines_of(&path, k);
        assert_eq!(got.len(), want.len(), "{name}: line count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{name}");
        }
    }
}

fn all_logs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "plain.log",
        "aes.log",
        "chacha.log",
        "mixed.log",
        "large-aes.log",
    ]
    .iter()
    .map(|f| clustered().join("raft").join(f))
    .collect();
    for n in ["node-a", "node-b"] {
        v.push(clustered().join(n).join("raft/test-cluster/raft.log"));
    }
    v
}

/// Every item of a database, nested buckets entered, as owned data.
fn items(db: &Db) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    db.walk(&mut Visited::default(), |i| {
        out.push(match i {
            Item::Value { key, value } => (0, key.to_vec(), value.to_vec()),
            Item::Bucket { key, bucket } => {
                (1, key.to_vec(), bucket.sequence.to_le_bytes().to_vec())
            }
            Item::EndBucket => (2, vec![], vec![]),
        });
        Ok::<(), BoltError>(())
    })
    .unwrap();
    out
}

fn check_clean(db: &Db) -> bbolt::CheckReport {
    let r = bbolt::check(db).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    for m in db.metas() {
        m.unwrap();
    }
    r
}

#[test]
fn fixtures_pass_the_structural_check() {
    for p in all_logs() {
        let db = Db::open(&p).unwrap();
        let r = bbolt::check(&db).unwrap();
        assert!(r.problems.is_empty(), "{}: {:?}", p.display(), r.problems);
        // The server opens its log with NoFreelistSync.
        assert_eq!(r.free, None, "{}", p.display());
        assert_eq!(db.page_size(), 4096);
    }
}

#[test]
fn identity_rewrite_keeps_every_bucket_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    for (n, p) in all_logs().iter().enumerate() {
        let src = RaftLog::open(p).unwrap();
        let dst = tmp.path().join(format!("{n}.log"));
        let stats = rewrite_log(&src, &dst, |_, _| Ok::<_, RaftError>(DataEdit::Keep)).unwrap();
        assert_eq!(stats.replaced, 0);
        let out = Db::open(&dst).unwrap();
        assert_eq!(items(src.db()), items(&out), "{}", p.display());
        assert_eq!(out.page_size(), src.db().page_size());
        let r = check_clean(&out);
        // Every page is reachable, the freelist, or a meta page.
        assert_eq!(r.free, Some(0));
        assert_eq!(r.reachable + 3, r.pages);
        assert_eq!(r.pages, stats.bolt.pages);
        assert_eq!(
            std::fs::metadata(&dst).unwrap().len(),
            r.pages * out.page_size() as u64
        );
        assert!(out.meta().txid > src.db().meta().txid);
        // For a one-off check of the output with bbolt itself.
        if let Some(keep) = std::env::var_os("RAFT_KEEP_OUTPUT") {
            std::fs::copy(&dst, Path::new(&keep).join(format!("{n}.log"))).unwrap();
        }
    }
}

#[test]
fn writer_fills_pages_and_uses_overflow_and_branches() {
    let tmp = tempfile::tempdir().unwrap();
    let src = RaftLog::open(&clustered().join("raft/large-aes.log")).unwrap();
    let dst = tmp.path().join("out.log");
    let stats = rewrite_log(&src, &dst, |_, _| Ok::<_, RaftError>(DataEdit::Keep)).unwrap();
    assert!(stats.bolt.branch_pages >= 1, "{stats:?}");
    assert!(
        stats.bolt.overflow_pages >= 40,
        "10 KB entries overflow: {stats:?}"
    );
    // conf and channels are small: inlined as bbolt does.
    assert_eq!(stats.bolt.inline_buckets, 2);
    // Leaves hold more than bbolt's half-full appends would.
    assert!(stats.bolt.pages < src.db().meta().pgid, "{stats:?}");
    let out = RaftLog::open(&dst).unwrap();
    assert_eq!(out.index_range().unwrap(), Some((501, 3000)));
    let want = expected_dumps()
        .into_iter()
        .find(|(n, _)| n == "raft-large-aes.log.key1.tsv")
        .unwrap()
        .1;
    assert_eq!(list_lines(&out, Some(&key(1))).unwrap(), want);
}

#[test]
fn rewritten_logs_serve_what_the_originals_served() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (name, want)) in expected_dumps().into_iter().enumerate() {
        let (path, k) = source_of(&name);
        let src = RaftLog::open(&path).unwrap();
        let dst = tmp.path().join(format!("{i}.log"));
        rewrite_log(&src, &dst, |_, _| Ok::<_, RaftError>(DataEdit::Keep)).unwrap();
        assert_eq!(lines_of(&dst, k), want, "{name}");
    }
}

/// Decrypts with `k`: every LogCommand envelope replaced by its plaintext.
fn decrypt(src: &Path, dst: &Path, k: &RaftKey) {
    let log = RaftLog::open(src).unwrap();
    let mut scratch = Vec::new();
    rewrite_log(&log, dst, |view, data| {
        match serve(view, Some(k), &mut scratch).unwrap() {
            Served::AsStored => return Ok::<_, RaftError>(DataEdit::Keep),
            Served::Opened(_) => data.extend_from_slice(&scratch),
        }
        Ok(DataEdit::Replace)
    })
    .unwrap();
}

#[test]
fn decrypting_aes_and_chacha_gives_the_plaintext_twin_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = Db::open(&clustered().join("raft/plain.log")).unwrap();
    let logs = |db: &Db| {
        let b = db.top_bucket(b"logs").unwrap();
        let mut v = Vec::new();
        db.for_each(&b, |i| {
            if let Item::Value { key, value } = i {
                v.push((key.to_vec(), value.to_vec()));
            }
            Ok::<(), BoltError>(())
        })
        .unwrap();
        v
    };
    for f in ["aes.log", "chacha.log"] {
        let dst = tmp.path().join(f);
        decrypt(&clustered().join("raft").join(f), &dst, &key(1));
        let out = Db::open(&dst).unwrap();
        check_clean(&out);
        assert_eq!(logs(&out), logs(&plain), "{f}");
    }
}

#[test]
fn encrypt_then_rekey_keeps_envelope_sizes_and_serves_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = clustered().join("raft/plain.log");
    let want = lines_of(&plain, Some(1));
    let (k1, k2) = (key(1), key(2));
    // Encrypt under K2 with ChaCha; the nonce comes from the caller.
    let enc = tmp.path().join("enc.log");
    let mut counter = 0u64;
    let log = RaftLog::open(&plain).unwrap();
    let stats = rewrite_log(&log, &enc, |view, data| {
        if view.log_type() != 0 || view.data().is_empty() {
            return Ok::<_, RaftError>(DataEdit::Keep);
        }
        counter += 1;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_be_bytes());
        seal(&k2, Cipher::ChaCha, &nonce, view.data(), data);
        Ok(DataEdit::Replace)
    })
    .unwrap();
    assert_eq!(stats.replaced, 32);
    // Served the same: lengths and hashes of Data as served, line for line.
    assert_eq!(lines_of(&enc, Some(2)), want);
    let raw = lines_of(&enc, None);
    assert_ne!(raw, want);

    // Rekey K2 -> K1 with AES: each envelope keeps its size.
    let rekeyed = tmp.path().join("rekeyed.log");
    let log = RaftLog::open(&enc).unwrap();
    let mut scratch = Vec::new();
    let mut sizes = Vec::new();
    rewrite_log(&log, &rekeyed, |view, data| {
        match serve(view, Some(&k2), &mut scratch).unwrap() {
            Served::AsStored => return Ok::<_, RaftError>(DataEdit::Keep),
            Served::Opened(_) => {}
        }
        let nonce = [9u8; 12];
        seal(&k1, Cipher::Aes, &nonce, &scratch, data);
        sizes.push((view.index, view.data().len(), data.len()));
        Ok(DataEdit::Replace)
    })
    .unwrap();
    assert!(sizes.iter().all(|&(_, a, b)| a == b), "{sizes:?}");
    assert_eq!(lines_of(&rekeyed, Some(1)), want);
    // Same value sizes throughout: only envelope bytes changed.
    let a = items(RaftLog::open(&enc).unwrap().db());
    let b = items(&Db::open(&rekeyed).unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, &x.1, x.2.len()), (y.0, &y.1, y.2.len()));
    }
}

#[test]
fn entries_come_in_index_order_with_their_facts() {
    let log = RaftLog::open(&clustered().join("raft/mixed.log")).unwrap();
    let mut seen = Vec::new();
    log.entries(|e| {
        let v = e.unwrap();
        assert!(!v.index_mismatch());
        // The span holds the header, then exactly the Data bytes.
        assert!(v.value[v.data_span()].ends_with(v.data()));
        seen.push((v.index, data_kind(&v)));
        Ok::<(), RaftError>(())
    })
    .unwrap();
    use stanctl::crypto::envelope::PayloadKind::*;
    use stanctl::crypto::raft::DataKind::*;
    assert_eq!(seen.len(), 40);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(seen[0].1, NotCommand); // 1: configuration
    assert_eq!(seen[4].1, NotCommand); // 5: noop
    assert_eq!(seen[1].1, Command(Plain));
    assert_eq!(seen[11].1, Command(Envelope(Cipher::ChaCha)));
    assert_eq!(seen[21].1, Command(Envelope(Cipher::Aes)));
    assert_eq!(log.stable_u64(b"CurrentTerm").unwrap(), Some(3));
}

#[test]
fn lock_is_exclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("raft.log");
    std::fs::copy(clustered().join("raft/plain.log"), &p).unwrap();
    let held = RaftLogLock::acquire(&p).unwrap();
    assert!(matches!(
        RaftLogLock::acquire(&p),
        Err(RaftError::Locked { .. })
    ));
    drop(held);
    RaftLogLock::acquire(&p).unwrap();
    assert!(matches!(
        RaftLogLock::acquire(&tmp.path().join("none")),
        Err(RaftError::Io { .. })
    ));
}

// ---- hostile files ----

fn plain_bytes() -> Vec<u8> {
    std::fs::read(clustered().join("raft/plain.log")).unwrap()
}

fn reseal_meta(b: &mut [u8], page: usize, edit: impl Fn(&mut bbolt::Meta)) {
    let off = page * 4096;
    let mut m = bbolt::Meta::parse(&b[off..]).unwrap();
    edit(&mut m);
    let m = m.seal();
    b[off + 16..off + 16 + 64].copy_from_slice(&m.encode());
}

/// Opens, lists, walks and checks; all must end in a value or an error.
fn exercise(bytes: Vec<u8>) -> Result<(), String> {
    let db = Db::from_vec(bytes).map_err(|e| e.to_string())?;
    let _ = bbolt::check(&db);
    let log = RaftLog::from_db(db, PathBuf::from("x"));
    let _ = list_lines(&log, Some(&key(1)));
    let _ = log.entries(|_| Ok::<(), RaftError>(()));
    let tmp = tempfile::tempdir().unwrap();
    let _ = rewrite_log(&log, &tmp.path().join("o"), |_, _| {
        Ok::<_, RaftError>(DataEdit::Keep)
    });
    Ok(())
}

#[test]
fn bad_meta_checksums() {
    let good = plain_bytes();
    let db = Db::from_vec(good.clone()).unwrap();
    let (newer, older) = (db.meta_page(), 1 - db.meta_page());
    // The newer meta broken: bbolt falls back to the older one.
    let mut b = good.clone();
    b[newer * 4096 + 16 + 20] ^= 0xff;
    let db = Db::from_vec(b.clone()).unwrap();
    assert_eq!(db.meta_page(), older);
    assert!(matches!(
        db.metas()[newer],
        Err(bbolt::MetaProblem::Checksum { .. })
    ));
    // Both broken.
    b[older * 4096 + 16 + 50] ^= 0xff;
    assert!(matches!(
        Db::from_vec(b),
        Err(BoltError::NoValidMeta { .. })
    ));
    // Bad magic on meta 0 only: the page size is found from meta 1.
    let mut b = good.clone();
    b[16] ^= 1;
    assert_eq!(Db::from_vec(b).unwrap().meta_page(), 1);
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let good = plain_bytes();
    for len in (0..good.len())
        .step_by(97)
        .chain([0, 1, 79, 80, 4096, 8191, 8192])
    {
        let _ = exercise(good[..len].to_vec());
    }
    let db = Db::from_vec(good[..3 * 4096].to_vec()).unwrap();
    let log = RaftLog::from_db(db, PathBuf::from("x"));
    assert!(matches!(
        log.index_range(),
        Err(RaftError::Bolt(BoltError::PageBeyondFile { .. }))
    ));
}

#[test]
fn page_ids_past_the_end_and_cycles() {
    let good = plain_bytes();
    let db = Db::from_vec(good.clone()).unwrap();
    let m = *db.meta();
    let root = m.root as usize;
    // Root past the high-water mark.
    let mut b = good.clone();
    reseal_meta(&mut b, db.meta_page(), |m| m.root = 1 << 40);
    let e = RaftLog::from_db(Db::from_vec(b).unwrap(), "x".into()).index_range();
    assert!(
        matches!(e, Err(RaftError::Bolt(BoltError::PageOutOfRange { .. }))),
        "{e:?}"
    );
    // High-water mark past the file: page lookups stop at the file's end.
    let mut b = good.clone();
    reseal_meta(&mut b, db.meta_page(), |m| m.pgid = u64::MAX);
    let _ = exercise(b);
    // The root page turned into a branch that points at itself.
    let mut b = good.clone();
    let off = root * 4096;
    b[off + 8..off + 10].copy_from_slice(&1u16.to_le_bytes());
    b[off + 10..off + 12].copy_from_slice(&1u16.to_le_bytes());
    b[off + 16..off + 20].copy_from_slice(&16u32.to_le_bytes());
    b[off + 20..off + 24].copy_from_slice(&1u32.to_le_bytes());
    b[off + 24..off + 32].copy_from_slice(&(root as u64).to_le_bytes());
    let db2 = Db::from_vec(b.clone()).unwrap();
    let r = db2.walk(&mut Visited::default(), |_| Ok::<(), BoltError>(()));
    assert!(matches!(r, Err(BoltError::PageRevisited { .. })), "{r:?}");
    assert!(exercise(b).is_ok());
    // A hostile element count and an overflow count past the end.
    let mut b = good.clone();
    b[off + 10..off + 12].copy_from_slice(&0xffffu16.to_le_bytes());
    let r = Db::from_vec(b)
        .unwrap()
        .walk(&mut Visited::default(), |_| Ok::<(), BoltError>(()));
    assert!(
        matches!(r, Err(BoltError::ElementsPastPage { .. })),
        "{r:?}"
    );
    let mut b = good.clone();
    b[off + 12..off + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let r = Db::from_vec(b)
        .unwrap()
        .walk(&mut Visited::default(), |_| Ok::<(), BoltError>(()));
    assert!(matches!(r, Err(BoltError::PageOutOfRange { .. })), "{r:?}");
}

#[test]
fn random_corruption_never_panics() {
    // Deterministic xorshift: flips bytes all over real files.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    // RAFT_FUZZ_ITERS raises the count for a longer local run.
    let iters: usize = std::env::var("RAFT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for f in ["plain.log", "aes.log", "large-aes.log"] {
        let good = std::fs::read(clustered().join("raft").join(f)).unwrap();
        let used = (Db::from_vec(good.clone()).unwrap().meta().pgid * 4096) as usize;
        // The large log costs ~0.2 s a run (2500 AES opens and a rewrite).
        let runs = if f.starts_with("large") {
            iters / 30
        } else {
            iters
        };
        for _ in 0..runs {
            let mut b = good.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % used as u64) as usize;
                b[i] = next() as u8;
            }
            // Keep metas valid half the time so the damage is reached.
            if next() % 2 == 0 {
                for p in 0..2 {
                    reseal_meta(&mut b, p, |_| {});
                }
            }
            let _ = exercise(b);
        }
    }
}

#[test]
fn census_counts_kinds_and_keys() {
    let log = RaftLog::open(&clustered().join("raft/mixed.log")).unwrap();
    let c = stanctl::ops::raft_census::census(&log, Some(&key(1))).unwrap();
    assert_eq!((c.first, c.last, c.entries), (Some(1), Some(40), 40));
    assert_eq!((c.not_command, c.plaintext, c.chacha, c.aes), (8, 8, 8, 16));
    assert_eq!((c.opened, c.not_opened, c.short, c.bad), (8, 16, 0, 0));
    let c = stanctl::ops::raft_census::census(&log, None).unwrap();
    assert_eq!((c.opened, c.not_opened), (0, 0));
}

#[test]
fn nonces_from_the_raft_key_never_look_like_the_servers() {
    let k = key(1);
    use stanctl::crypto::aead::Cipher;
    let n = k.nonce_gen().nonce(Cipher::Aes, 7, b"payload");
    assert_eq!(n[4..6], stanctl::crypto::nonce::MARKER);
    assert_eq!(n, k.nonce_gen().nonce(Cipher::Aes, 7, b"payload"));
    let c = k.nonce_gen().nonce(Cipher::ChaCha, 7, b"payload");
    assert_eq!(c[4..6], stanctl::crypto::nonce::MARKER);
    assert_ne!(n, c, "the nonces differ by cipher");
}

#[test]
fn data_of_every_header_size_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let src = RaftLog::open(&clustered().join("raft/plain.log")).unwrap();
    let dst = tmp.path().join("sizes.log");
    let sizes = [0usize, 1, 31, 32, 255, 256, 65535, 65536, 70000];
    let len_for = |index: u64| sizes[index as usize % sizes.len()];
    rewrite_log(&src, &dst, |view, data| {
        data.resize(len_for(view.index), view.index as u8);
        Ok::<_, RaftError>(DataEdit::Replace)
    })
    .unwrap();
    let out = RaftLog::open(&dst).unwrap();
    check_clean(out.db());
    let mut n = 0;
    let original = |i: u64| src.entry(i).unwrap().unwrap().unwrap();
    out.entries(|e| {
        let v = e.unwrap();
        let o = original(v.index);
        assert_eq!(v.data(), &vec![v.index as u8; len_for(v.index)][..]);
        // Everything but the Data value is byte for byte the original.
        assert_eq!(
            v.value[..v.data_span().start],
            o.value[..o.data_span().start]
        );
        assert_eq!(v.value[v.data_span().end..], o.value[o.data_span().end..]);
        assert_eq!(
            (v.term(), v.log_type(), v.appended_at()),
            (o.term(), o.log_type(), o.appended_at())
        );
        n += 1;
        Ok::<(), RaftError>(())
    })
    .unwrap();
    assert_eq!(n, 40);
    if let Some(keep) = std::env::var_os("RAFT_KEEP_OUTPUT") {
        std::fs::copy(&dst, Path::new(&keep).join("sizes.log")).unwrap();
    }
}

#[test]
fn gaps_and_missing_conf_are_listed_as_the_server_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("gaps.log");
    let plain = RaftLog::open(&clustered().join("raft/plain.log")).unwrap();
    let value = |i: u64| plain.entry(i).unwrap().unwrap().unwrap().value;
    let mut w = bbolt::Writer::create(&p, 4096).unwrap();
    w.enter(b"channels").unwrap();
    w.leave(0).unwrap();
    w.enter(b"conf").unwrap();
    w.leave(0).unwrap();
    w.enter(b"logs").unwrap();
    for i in [1u64, 2, 5, 5000] {
        w.put(&i.to_be_bytes(), value(i.min(40))).unwrap();
    }
    w.leave(0).unwrap();
    w.finish(0, 1).unwrap();
    let lines = list_lines(&RaftLog::open(&p).unwrap(), None).unwrap();
    let heads: Vec<String> = lines
        .iter()
        .map(|l| l.split('\t').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        heads,
        [
            "RAFTLOG first=1 last=5000",
            "LOG 1 ok",
            "LOG 2 ok",
            "LOG 3 err",
            "LOG 4 err",
            "LOG 5 ok",
            "LOG 6-4999 err",
            "LOG 5000 ok",
            "CONF CurrentTerm 0",
        ]
    );
    assert!(lines[3].ends_with("log not found"));
    assert!(lines[8].ends_with("not found"));
}

#[test]
fn server_envelopes_carry_the_servers_nonces() {
    use stanctl::crypto::nonce::NonceOrigin;
    let mut n = 0;
    for p in all_logs() {
        let log = RaftLog::open(&p).unwrap();
        log.entries(|e| {
            let v = e.unwrap();
            if let Some(o) = nonce_origin(&v) {
                assert_eq!(o, NonceOrigin::Server, "{} entry {}", p.display(), v.index);
                n += 1;
            }
            Ok::<(), RaftError>(())
        })
        .unwrap();
    }
    assert!(n > 2000, "{n}");
}

#[test]
fn rewrite_never_touches_an_existing_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("taken");
    std::fs::write(&dst, b"someone else's").unwrap();
    let src = RaftLog::open(&clustered().join("raft/plain.log")).unwrap();
    assert!(rewrite_log(&src, &dst, |_, _| Ok::<_, RaftError>(DataEdit::Keep)).is_err());
    assert_eq!(std::fs::read(&dst).unwrap(), b"someone else's");
    // A callback error removes the half-written file it created.
    let dst = tmp.path().join("new");
    let r = rewrite_log(&src, &dst, |v, _| {
        if v.index == 20 {
            return Err(RaftError::Locked { path: "x".into() });
        }
        Ok(DataEdit::Keep)
    });
    assert!(matches!(r, Err(RaftError::Locked { .. })));
    assert!(!dst.exists());
}
