//! Review of the store-rewriting commands (encrypt / decrypt / rekey): ways
//! they could lose a message, leave a store the server cannot start on or
//! deliver from, reuse a nonce, write outside the store, or change a store
//! they refused. Cases not already in tests/rewrite.rs or tests/hostile.rs.

mod common;
use common::*;

use serde_json::Value;
use stanctl::crypto::aead::{Backend, ChannelAead, Cipher};
use stanctl::crypto::keys::{Key, KeyOrigin};
use stanctl::format::crc::Crc32;
use stanctl::format::index::IndexEntry;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

const REFUSED: i32 = 4;

/// A copy of `name` with only its server.dat and clients.dat: channels are
/// added by the test.
fn bare_store(name: &str) -> (TempDir, PathBuf) {
    let (t, s) = store(name);
    for ch in ["orders", "sensors.temp", "big"] {
        std::fs::remove_dir_all(s.join(ch)).unwrap();
    }
    (t, s)
}

/// Every path under `dir` (files, directories, links), lock file included.
fn all_paths(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn verify_json(dir: &Path, key: Option<&str>) -> (i32, Value) {
    let mut args = vec!["store", "verify", d(dir), "--json"];
    match key {
        Some(k) => args.extend(["--key-file", k]),
        None => args.push("--no-encrypt"),
    }
    let o = run(&args);
    (code(&o), serde_json::from_slice(&o.stdout).unwrap())
}

fn channel<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name} in {v}"))
}

// ------------------------------------------------------------- builders

fn material(path: &str) -> Vec<u8> {
    let mut m = std::fs::read(path).unwrap();
    if m.last() == Some(&b'\n') {
        m.pop();
    }
    m
}

/// An envelope as the server writes it: `code || nonce || ct || tag`, with a
/// server-style nonce (random prefix, big-endian counter = seq).
fn seal(key_file: &str, channel: &str, cipher: Cipher, seq: u64, pt: &[u8]) -> Vec<u8> {
    let key = Key::from_material("K", KeyOrigin::CommandLine, &material(key_file));
    let aead = ChannelAead::new(&key.channel_key(channel.as_bytes()), Backend::default());
    let mut nonce = [0xA5u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let mut out = Vec::new();
    stanctl::crypto::envelope::seal(&aead, cipher, &nonce, pt, &mut out);
    out
}

/// A MsgProto as the server writes it: seq, subject, data (absent when
/// empty), timestamp.
fn msg(seq: u64, data: &[u8]) -> Vec<u8> {
    use stanctl::format::proto::write_varint;
    let mut m = vec![0x08];
    write_varint(&mut m, seq);
    m.extend_from_slice(b"\x12\x04edge");
    if !data.is_empty() {
        m.push(0x22);
        write_varint(&mut m, data.len() as u64);
        m.extend_from_slice(data);
    }
    m.push(0x28);
    write_varint(&mut m, 1_700_000_000_000_000_000 + seq);
    m
}

/// One part of a slice's data file.
enum Part {
    Msg(u64, Vec<u8>),
    Zeros(usize),
}

/// Writes `dir/msgs.N.dat` and its `.idx` as the server would: one index
/// entry per message record, wherever it sits.
fn write_slice(dir: &Path, n: u64, parts: &[Part]) {
    std::fs::create_dir_all(dir).unwrap();
    let crc = Crc32::ieee();
    let mut dat = 1u32.to_le_bytes().to_vec();
    let mut idx = 1u32.to_le_bytes().to_vec();
    for p in parts {
        match p {
            Part::Msg(seq, data) => {
                let m = msg(*seq, data);
                let e = IndexEntry::new(
                    *seq,
                    dat.len() as u64,
                    1_700_000_000_000_000_000 + *seq as i64,
                    m.len() as u32,
                    &crc,
                );
                idx.extend_from_slice(&e.to_bytes());
                stanctl::format::record::write_record(&mut dat, 0, crc.checksum(&m), &m);
            }
            Part::Zeros(n) => dat.extend(std::iter::repeat_n(0u8, *n)),
        }
    }
    std::fs::write(dir.join(format!("msgs.{n}.dat")), dat).unwrap();
    std::fs::write(dir.join(format!("msgs.{n}.idx")), idx).unwrap();
}

/// Deterministic bytes that never start with 1 or 2.
fn bytes(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) | 0x40)
        .collect()
}

/// The record payloads (MsgProto bytes) of a data file, in order.
fn payloads(dat: &[u8]) -> Vec<Vec<u8>> {
    stanctl::format::record::Records::new(dat, false)
        .filter_map(|e| match e {
            stanctl::format::record::Event::Record(r) => Some(r.payload.to_vec()),
            _ => None,
        })
        .collect()
}

// ======================================================================
// Failing: bugs
// ======================================================================

/// Plaintext whose bytes 5..13 read as a small big-endian number (here a
/// zero run, common in binary payloads: a type byte then a u64 length)
/// passes for an envelope with a server nonce. `decrypt` produces exactly
/// such plaintext from a real envelope, then refuses it on the next run as
/// "an envelope no given key opens", and `--assume-plaintext` cannot
/// override it. README: "decrypt leaves them as they are without asking ...
/// it keeps reruns no-ops".
#[test]
fn decrypt_rerun_refuses_plaintext_that_looks_like_a_server_nonce() {
    let (_t, s) = bare_store("aes");
    let mut p = vec![0x02];
    p.extend_from_slice(&[0u8; 12]);
    p.extend_from_slice(b"binary frame");
    let ch = s.join("edge");
    write_slice(
        &ch,
        1,
        &[
            Part::Msg(1, seal(&k1(), "edge", Cipher::Aes, 1, b"first")),
            Part::Msg(2, seal(&k1(), "edge", Cipher::Aes, 2, &p)),
        ],
    );
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    let after = snapshot(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    assert_eq!(
        code(&o),
        0,
        "decrypting a decrypted store must be a no-op: {}",
        err(&o)
    );
    assert_eq!(snapshot(&s), after);
}

/// Same root cause, with the crash-safety promise: killed after the slice
/// holding such a message was swapped in, the rerun refuses (exit 4), so
/// the store stays half decrypted: with encryption off the server delivers
/// the other slices' envelopes as ciphertext, with encryption on it fails
/// the decrypted message. README: "After a crash, rerun the same command:
/// it ... finishes the rest".
#[test]
fn crash_mid_decrypt_then_rerun_refuses_counter_like_plaintext() {
    let mut p = vec![0x01];
    p.extend_from_slice(&[0u8; 12]);
    p.extend_from_slice(b"frame");
    let args = |s: &Path| {
        vec![
            "store".to_string(),
            "decrypt".into(),
            d(s).into(),
            "--key-file".into(),
            k1(),
            "--assume-plaintext".into(),
        ]
    };
    for n in 1.. {
        let (_t, s) = bare_store("aes");
        let ch = s.join("edge");
        write_slice(
            &ch,
            1,
            &[Part::Msg(1, seal(&k1(), "edge", Cipher::Aes, 1, &p))],
        );
        write_slice(
            &ch,
            2,
            &[Part::Msg(
                2,
                seal(&k1(), "edge", Cipher::ChaCha, 2, b"second"),
            )],
        );
        let o = stanctl()
            .args(args(&s))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        assert_no_secrets(&o);
        if o.status.success() {
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        let o = stanctl().args(args(&s)).output().unwrap();
        assert_no_secrets(&o);
        assert!(
            o.status.success(),
            "crash before step {n}, then the rerun: exit {:?}: {}",
            o.status.code(),
            err(&o)
        );
        assert!(n < 200);
    }
}

/// Zero padding in the middle of a slice whose index the server trusts (its
/// last entry matches): the server never reads the zeros and appends new
/// messages after them, finding them through the index (verify says so).
/// The rewrite stops its record walk at the zeros, copies everything after
/// them as "padding" (still encrypted), and writes an index without them:
/// the server then trusts the new index and the messages after the zeros
/// are gone.
#[test]
fn zero_padding_before_indexed_records_is_refused_not_lost() {
    let (_t, s) = bare_store("aes");
    let ch = s.join("edge");
    let e = |seq| seal(&k1(), "edge", Cipher::Aes, seq, &bytes(40, seq as u8));
    write_slice(
        &ch,
        1,
        &[
            Part::Msg(1, e(1)),
            Part::Msg(2, e(2)),
            Part::Zeros(24),
            Part::Msg(3, e(3)),
            Part::Msg(4, e(4)),
        ],
    );
    let (c, v) = verify_json(&s, Some(&k1()));
    let before = channel(&v, "edge");
    assert!(c < 2, "the server starts: {v}");
    assert_eq!(before["last_seq"], 4, "{v}");
    assert_eq!(before["plaintext"], 4, "all four delivered before: {v}");

    // A rewrite cannot keep those records reachable through a rebuilt index
    // and must not drop them: it refuses, and writes nothing.
    let before_bytes = snapshot(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    assert_eq!(code(&o), REFUSED, "{}", err(&o));
    assert!(err(&o).contains("data-after-padding"), "{}", err(&o));
    assert_eq!(snapshot(&s), before_bytes);
    let (c, v) = verify_json(&s, Some(&k1()));
    assert!(c < 2, "the server starts: {v}");
    let after = channel(&v, "edge");
    assert_eq!(after["plaintext"], 4, "all four still delivered: {after}");
}

/// `--output` whose not-yet-existing part contains `..`: the "inside the
/// store" check resolves only the deepest existing ancestor (the temp dir)
/// and accepts it, then create_dir_all walks `..` back into the store and
/// writes the copy there. The source, promised untouched, gains a directory
/// the server recovers as a new channel.
#[test]
fn output_through_dotdot_lands_inside_the_store() {
    let (t, s) = store("aes");
    let before = all_paths(&s);
    let out = t
        .path()
        .join("missing")
        .join("..")
        .join("store")
        .join("copy");
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k1(),
        "--output",
        d(&out),
    ]);
    let mut now = all_paths(&s);
    now.retain(|p| p != ".rootdir.lck");
    let mut want = before.clone();
    want.retain(|p| p != ".rootdir.lck");
    assert!(
        !s.join("copy").exists() && now == want,
        "exit {}: the copy was written inside the source store ({} new paths), which must stay untouched",
        code(&o),
        now.len() - want.len()
    );
}

/// `--output` copies every side file with fs::copy, which opens a FIFO for
/// reading and waits forever for a writer (README: a FIFO where a file
/// belongs gives 74, "never hangs"). A FIFO that the in-place commands never
/// read (a `.bak`) hangs the copy.
#[test]
fn output_with_a_fifo_side_file_does_not_hang() {
    let (t, s) = store("aes");
    let fifo = s.join("orders/msgs.1.dat.bak");
    let c = std::ffi::CString::new(d(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let out = t.path().join("out");
    let o = stanctl()
        .args([
            "store",
            "decrypt",
            d(&s),
            "--key-file",
            &k1(),
            "--output",
            d(&out),
        ])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some(),
        "killed after 20 s: --output hung on a FIFO"
    );
}

/// A zero tail on a slice without an index: the server rebuilds the index
/// and truncates the zeros, so nothing is at risk (verify: "none needed: no
/// message is lost"). The rewrite keeps the zeros but writes an index the
/// server trusts, so the server no longer truncates them and appends new
/// messages after them, where the next index rebuild (or the next stanctl
/// run: see zero_padding_before_indexed_records_loses_them) loses them.
/// stanctl's own verify flags the store it just wrote.
#[test]
fn rewrite_turns_a_harmless_zero_tail_into_a_trap() {
    let (_t, s) = store("damaged-zero-tail");
    std::fs::remove_file(s.join("sensors.temp/msgs.3.idx")).unwrap();
    let trap = "zero bytes after the last indexed record";
    let traps = |v: &Value| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["what"].as_str().unwrap().contains(trap))
            .count()
    };
    let (_, v) = verify_json(&s, Some(&k1()));
    assert_eq!(traps(&v), 0, "{v}");
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    let (_, v) = verify_json(&s, None);
    assert_eq!(traps(&v), 0, "the decrypt created the trap: {v}");
}

/// README: "The JSON is printed on refusals too (with `refused` filled and
/// exit code 4)". A clustered store is refused with exit 4 but prints no
/// JSON at all, so a script reading --json gets an empty document.
#[test]
fn clustered_refusal_prints_json() {
    let (_t, s) = store("aes");
    let mut info = vec![0x0a, 4];
    info.extend_from_slice(b"test");
    info.extend_from_slice(&[0x4a, 2]);
    info.extend_from_slice(b"n1");
    let crc = Crc32::ieee().checksum(&info);
    let mut f = 1u32.to_le_bytes().to_vec();
    stanctl::format::record::write_record(&mut f, 0, crc, &info);
    std::fs::write(s.join("server.dat"), &f).unwrap();
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1(), "--json"]);
    assert_eq!(code(&o), REFUSED);
    let v: Result<Value, _> = serde_json::from_slice(&o.stdout);
    let v = v.unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {:?}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    assert_eq!(v["schema"], "stanctl.rewrite/1");
    assert!(!v["refused"].as_array().unwrap().is_empty(), "{v}");
}

// ======================================================================
// Passing: coverage not in tests/rewrite.rs or tests/hostile.rs
// ======================================================================

/// Payload sizes where encrypting (+29 bytes) or decrypting changes the
/// varint length of field 4 (127/128, 16383/16384 boundaries), empty
/// payloads, and 13/14-byte payloads starting with 1 or 2 (lookalikes with
/// no server nonce). Encrypt with each cipher, rekey to K2 with a cipher
/// change, decrypt: back to the same bytes; in between the server delivers
/// every message, index and all, with no nonce reused.
#[test]
fn varint_boundaries_round_trip_through_every_rule() {
    let (_t, s) = bare_store("plain");
    let mut sizes = vec![1usize, 98, 99, 100, 127, 128, 129];
    sizes.extend([16_354, 16_355, 16_356, 16_383, 16_384, 16_385]);
    let mut parts: Vec<Part> = Vec::new();
    let mut seq = 0u64;
    for (i, &n) in sizes.iter().enumerate() {
        seq += 1;
        parts.push(Part::Msg(seq, bytes(n, i as u8)));
    }
    seq += 1;
    parts.push(Part::Msg(seq, Vec::new()));
    for (first, len) in [(1u8, 13usize), (2, 13), (1, 14), (2, 14)] {
        seq += 1;
        let mut p = vec![first];
        p.extend(std::iter::repeat_n(0xEEu8, len - 1));
        parts.push(Part::Msg(seq, p));
    }
    write_slice(&s.join("edge"), 1, &parts);
    let original = snapshot(&s);
    let (_, plain_list) = verify_json(&s, None);
    assert_eq!(channel(&plain_list, "edge")["messages"], seq);

    for cipher in ["AES", "CHACHA"] {
        ok(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            cipher,
            "--key-file",
            &k1(),
            "--assume-plaintext",
        ]);
        let (c, v) = verify_json(&s, Some(&k1()));
        assert_eq!(c, 0, "{v}");
        assert_eq!(v["totals"]["failed"], 0, "{v}");
        assert_eq!(channel(&v, "edge")["messages"], seq);
        let dat = std::fs::read(s.join("edge/msgs.1.dat")).unwrap();
        assert_eq!(payloads(&dat).len() as u64, seq);
        let other = if cipher == "AES" { "CHACHA" } else { "AES" };
        ok(&[
            "store",
            "rekey",
            d(&s),
            "--key-file",
            &k1(),
            "--new-key-file",
            &k2(),
            "--cipher",
            other,
        ]);
        let (c, v) = verify_json(&s, Some(&k2()));
        assert_eq!(c, 0, "{v}");
        let i = inspect(&s, &k2());
        assert_eq!(i["reused_nonces"], Value::Array(vec![]), "{i}");
        let want = if other == "AES" { "aes" } else { "chacha" };
        assert_eq!(
            channel(&i, "edge")["payloads"][want],
            seq - 1,
            "every non-empty payload now under {other}: {i}"
        );
        ok(&["store", "decrypt", d(&s), "--key-file", &k2()]);
        assert_eq!(snapshot(&s), original, "{cipher}: not back to the original");
    }
}

fn inspect(dir: &Path, key: &str) -> Value {
    let o = run(&["store", "inspect", d(dir), "--key-file", key, "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// An envelope of the empty plaintext (exactly 29 bytes, which the server
/// never writes but opens): decrypting it must leave field 4 absent, as the
/// server writes an empty payload, so the record is delivered empty.
#[test]
fn decrypting_a_29_byte_envelope_drops_field_4() {
    let (_t, s) = bare_store("aes");
    let env = seal(&k1(), "edge", Cipher::ChaCha, 1, b"");
    assert_eq!(env.len(), 29);
    write_slice(
        &s.join("edge"),
        1,
        &[
            Part::Msg(1, env),
            Part::Msg(2, seal(&k1(), "edge", Cipher::Aes, 2, b"x")),
        ],
    );
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    let dat = std::fs::read(s.join("edge/msgs.1.dat")).unwrap();
    let p = payloads(&dat);
    assert_eq!(p[0], msg(1, b""), "field 4 must be absent");
    assert_eq!(p[1], msg(2, b"x"));
    // What the server would have written for these messages, index included.
    let want = TempDir::new().unwrap();
    write_slice(
        want.path(),
        1,
        &[Part::Msg(1, Vec::new()), Part::Msg(2, b"x".to_vec())],
    );
    for f in ["msgs.1.dat", "msgs.1.idx"] {
        assert_eq!(
            std::fs::read(s.join("edge").join(f)).unwrap(),
            std::fs::read(want.path().join(f)).unwrap(),
            "{f}"
        );
    }
    let (c, v) = verify_json(&s, None);
    assert_eq!(c, 0, "{v}");
    assert_eq!(channel(&v, "edge")["empty"], 1, "{v}");
    // Encrypting again keeps the empty payload as it is.
    ok(&[
        "store",
        "encrypt",
        d(&s),
        "--cipher",
        "AES",
        "--key-file",
        &k1(),
        "--assume-plaintext",
    ]);
    let dat = std::fs::read(s.join("edge/msgs.1.dat")).unwrap();
    assert_eq!(payloads(&dat)[0], msg(1, b""));
}

/// An index the server would trust but that lacks the last records of the
/// .dat (the server never sees them), and a stale index with extra entries:
/// a rewrite writes one entry per record, so every message is delivered;
/// a second run changes nothing.
#[test]
fn short_and_long_stale_indexes_are_rewritten() {
    let (_t, s) = store("aes");
    // orders/msgs.1.idx: drop the last 5 entries (still trusted: the new last
    // entry matches its record).
    let p = s.join("orders/msgs.1.idx");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 5 * 32]).unwrap();
    // sensors.temp/msgs.2.idx: an extra entry copied from slice 3.
    let p2 = s.join("sensors.temp/msgs.2.idx");
    let mut b2 = std::fs::read(&p2).unwrap();
    let b3 = std::fs::read(s.join("sensors.temp/msgs.3.idx")).unwrap();
    b2.extend_from_slice(&b3[4..36]);
    std::fs::write(&p2, b2).unwrap();
    let (c, v) = verify_json(&s, Some(&k1()));
    assert!(c >= 1, "the server misses messages before: {v}");

    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    let plain = conformance("plain");
    assert_eq!(snapshot(&s), snapshot(&plain));
    let times: Vec<_> = ["orders/msgs.1.idx", "sensors.temp/msgs.2.idx"]
        .iter()
        .map(|f| s.join(f).metadata().unwrap().modified().unwrap())
        .collect();
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    let again: Vec<_> = ["orders/msgs.1.idx", "sensors.temp/msgs.2.idx"]
        .iter()
        .map(|f| s.join(f).metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(times, again);
}

/// decrypt with the keys in either order, and rekey with a cipher change
/// from a two-key store, give the same result.
#[test]
fn key_order_does_not_matter() {
    let (_t, a) = store("mixed");
    let (_t2, b) = store("mixed");
    ok(&[
        "store",
        "decrypt",
        d(&a),
        "--key-file",
        &k2(),
        "--key-file",
        &k1(),
    ]);
    assert_eq!(snapshot(&a), snapshot(&conformance("mixed-plain")));
    // Old keys given K2 first; new key K1 (already opening part of the
    // store) with a cipher change.
    ok(&[
        "store",
        "rekey",
        d(&b),
        "--key-file",
        &k2(),
        "--key-file",
        &k1(),
        "--new-key-file",
        &k1(),
        "--cipher",
        "CHACHA",
    ]);
    let (c, v) = verify_json(&b, Some(&k1()));
    // seqs 1-10 stay plaintext (rekey leaves plaintext): at most at risk.
    assert!(c <= 1, "{v}");
    let i = inspect(&b, &k1());
    assert_eq!(i["totals"]["unopened"]["wrong_key"], 0, "{i}");
    assert_eq!(i["reused_nonces"], Value::Array(vec![]), "{i}");
    ok(&["store", "decrypt", d(&b), "--key-file", &k1()]);
    assert_eq!(snapshot(&b), snapshot(&conformance("mixed-plain")));
}

/// Refusals and dry runs create nothing: not the --output directory, not its
/// missing parents, not the lock file (dry run), and the refusal JSON names
/// every problem with exit 4.
#[test]
fn refusals_and_dry_runs_create_nothing() {
    let (t, s) = store("aes");
    let before = all_paths(&s);
    let out = t.path().join("new/parent/out");
    // Dry run with --output.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k1(),
        "--output",
        d(&out),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert!(!t.path().join("new").exists(), "dry run created the output");
    assert_eq!(all_paths(&s), before, "dry run created files in the store");
    // A refusal (wrong key) with --output.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k2(),
        "--output",
        d(&out),
        "--json",
    ]);
    assert_eq!(code(&o), REFUSED, "{}", err(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["refused"].as_array().unwrap().len(), 75, "{v}");
    assert!(!t.path().join("new").exists(), "refusal created the output");
    assert_eq!(snapshot(&s), snapshot(&conformance("aes")));
    // --output onto a non-empty directory: usage error, nothing written.
    let full = t.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"x").unwrap();
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k1(),
        "--output",
        d(&full),
    ]);
    assert_eq!(code(&o), 64, "{}", err(&o));
    assert_eq!(all_paths(&full), vec!["keep".to_string()]);
    // --output through a symlink into the store is refused.
    std::fs::create_dir(s.join("orders/inner")).unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(s.join("orders/inner"), &link).unwrap();
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k1(),
        "--output",
        d(&link),
    ]);
    assert_eq!(code(&o), 64, "{}", err(&o));
    assert!(err(&o).contains("inside the store"), "{}", err(&o));
    assert_eq!(
        std::fs::read_dir(s.join("orders/inner")).unwrap().count(),
        0
    );
}

/// Encrypt (a rule that grows records, so every offset moves) killed before
/// every write step, on a store with zero padding: at every step the server
/// starts and every envelope opens with K1 (only the plaintext lookalikes
/// not yet sealed fail), and the rerun gives the uninterrupted result.
#[test]
fn crash_at_every_step_of_encrypt_with_zero_tail() {
    let args = |s: &Path| {
        vec![
            "store".to_string(),
            "encrypt".into(),
            d(s).into(),
            "--cipher".into(),
            "CHACHA".into(),
            "--key-file".into(),
            k1(),
            "--assume-plaintext".into(),
        ]
    };
    let fresh = || {
        let (t, s) = store("damaged-zero-tail");
        ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
        (t, s)
    };
    let (_tw, want) = fresh();
    stanctl().args(args(&want)).assert().success();
    let want = snapshot(&want);
    for n in 1.. {
        let (_t, s) = fresh();
        let o = stanctl()
            .args(args(&s))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        assert_no_secrets(&o);
        if o.status.success() {
            assert!(n > 20);
            assert_eq!(snapshot(&s), want);
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        let (c, v) = verify_json(&s, Some(&k1()));
        assert!(c < 2, "step {n}: the server would not start: {v}");
        let i = inspect(&s, &k1());
        assert_eq!(i["totals"]["unopened"]["wrong_key"], 0, "step {n}");
        for f in v["findings"].as_array().unwrap() {
            if f["severity"] == "fails" {
                // Only plaintext starting with 1/2 that is not sealed yet.
                assert!(
                    [11, 22, 33].contains(&f["first_seq"].as_u64().unwrap()),
                    "step {n}: {f}"
                );
            }
        }
        let o = stanctl().args(args(&s)).output().unwrap();
        assert_no_secrets(&o);
        assert!(o.status.success(), "step {n}: rerun: {}", err(&o));
        assert_eq!(snapshot(&s), want, "step {n}: rerun differs");
        assert!(n < 1000);
    }
}
