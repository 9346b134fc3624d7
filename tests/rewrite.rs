//! encrypt / decrypt / rekey against the conformance stores.

mod common;
use common::*;

use serde_json::Value;
use stanctl::crypto::aead::Cipher;
use stanctl::format::crc::Crc32;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use std::time::SystemTime;
use tempfile::TempDir;

fn mtimes(dir: &Path) -> BTreeMap<String, SystemTime> {
    snapshot(dir)
        .keys()
        .map(|k| {
            (
                k.clone(),
                dir.join(k).metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

/// The server with encryption on and `key` delivers every message of `dir`.
#[track_caller]
fn assert_verify_ok(dir: &Path, key: &str) {
    let o = run(&["store", "verify", d(dir), "--key-file", key, "--json"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(code(&o), 0, "verify of a rewrite output: {v}");
    assert_eq!(v["totals"]["failed"], 0);
    assert_eq!(v["totals"]["ciphertext"], 0);
}

/// No nonce repeats under a key, and the server reads the store with it.
#[track_caller]
fn assert_no_nonce_reuse(dir: &Path, key: &str) {
    assert_verify_ok(dir, key);
    let v = inspect(dir, key);
    assert_eq!(
        v["reused_nonces"],
        Value::Array(vec![]),
        "nonce reuse in {v}"
    );
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

#[test]
fn decrypt_aes_and_chacha_give_plain() {
    for name in ["aes", "chacha"] {
        let (_t, s) = store(name);
        ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
        assert_same_store(&s, &conformance("plain"));
    }
}

#[test]
fn decrypt_mixed_with_both_keys_gives_mixed_plain() {
    let (_t, s) = store("mixed");
    ok(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--key-file",
        k2(),
    ]);
    assert_same_store(&s, &conformance("mixed-plain"));
}

#[test]
fn encrypt_refuses_lookalikes_then_round_trips() {
    for cipher in ["AES", "CHACHA"] {
        let (_t, s) = store("plain");
        // seqs 11/22/33 start with 0x01/0x02: ambiguous without --assume-plaintext.
        let o = run(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            cipher,
            "--key-file",
            k1(),
        ]);
        assert_eq!(code(&o), REFUSED);
        assert_same_store(&s, &conformance("plain"));

        let enc = [
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            cipher,
            "--key-file",
            k1(),
            "--assume-plaintext",
        ];
        ok(&enc);
        let v = inspect(&s, k1());
        assert_eq!(v["totals"]["payloads"]["plaintext"], 0);
        assert_no_nonce_reuse(&s, k1());

        // Idempotence: a second run changes and writes nothing.
        let (before, times) = (snapshot(&s), mtimes(&s));
        ok(&enc);
        assert_eq!(snapshot(&s), before);
        assert_eq!(mtimes(&s), times);
        assert_no_nonce_reuse(&s, k1());

        ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
        assert_same_store(&s, &conformance("plain"));
    }
}

#[test]
fn rekey_back_and_forth_then_decrypt() {
    let (_t, s) = store("aes");
    let to_k2 = [
        "store",
        "rekey",
        d(&s),
        "--key-file",
        k1(),
        "--new-key-file",
        k2(),
    ];
    ok(&to_k2);
    assert_no_nonce_reuse(&s, k2());
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(code(&o), REFUSED, "K1 no longer opens anything");
    ok(&[
        "store",
        "rekey",
        d(&s),
        "--key-file",
        k2(),
        "--new-key-file",
        k1(),
        "--cipher",
        "CHACHA",
    ]);
    assert_no_nonce_reuse(&s, k1());
    let v = inspect(&s, k1());
    assert_eq!(v["totals"]["payloads"]["aes"], 0);
    ok(&to_k2);
    assert_no_nonce_reuse(&s, k2());
    ok(&["store", "decrypt", d(&s), "--key-file", k2()]);
    assert_same_store(&s, &conformance("plain"));
}

#[test]
fn unopened_envelopes_refuse_with_zero_writes() {
    let (_t, s) = store("aes");
    let o = run(&["store", "decrypt", d(&s), "--key-file", k2(), "--json"]);
    assert_eq!(code(&o), REFUSED);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["schema"], "stanctl.rewrite/2");
    let first = &v["refused"][0];
    for f in ["channel", "file", "seq", "offset", "reason"] {
        assert!(!first[f].is_null(), "refusal lacks {f}: {first}");
    }
    assert_same_store(&s, &conformance("aes"));
    // --assume-plaintext does not cover envelopes with a server nonce.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k2(),
        "--assume-plaintext",
    ]);
    assert_eq!(code(&o), REFUSED);
    assert_same_store(&s, &conformance("aes"));
}

#[test]
fn damaged_stores_refuse() {
    for name in ["damaged-crc", "damaged-truncated"] {
        let (_t, s) = store(name);
        let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
        assert_eq!(code(&o), REFUSED, "{name}");
        assert!(o.stderr.as_str().contains("stanctl store verify"));
        assert_same_store(&s, &conformance(name));
    }
}

#[test]
fn missing_index_is_rebuilt() {
    let (_t, s) = store("damaged-noidx");
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_same_store(&s, &conformance("plain"));
}

#[test]
fn clustered_store_refuses() {
    let (_t, s) = store("aes");
    // server.dat with a NodeID (field 9).
    let mut info = vec![0x0a, 4];
    info.extend_from_slice(b"test");
    info.extend_from_slice(&[0x4a, 2]);
    info.extend_from_slice(b"n1");
    let crc = stanctl::format::crc::Crc32::ieee().checksum(&info);
    let mut f = 1u32.to_le_bytes().to_vec();
    stanctl::format::record::write_record(&mut f, 0, crc, &info);
    std::fs::write(s.join("server.dat"), &f).unwrap();
    let before = snapshot(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(code(&o), REFUSED);
    assert!(o.stderr.as_str().contains("Raft"));
    assert!(
        o.stderr.as_str().contains("--cluster-log-path"),
        "{}",
        o.stderr
    );
    assert_eq!(snapshot(&s), before);
}

#[test]
fn lock_held_by_another_process_refuses() {
    let (_t, s) = store("aes");
    let holder = LockHolder::new(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    let dry = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--dry-run"]);
    drop(holder);
    assert_eq!(code(&o), LOCKED);
    assert_eq!(code(&dry), LOCKED);
    assert_same_store(&s, &conformance("aes"));
}

#[test]
fn dry_run_writes_nothing_and_reports() {
    let (_t, s) = store("aes");
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--dry-run",
        "--json",
    ]);
    assert!(o.success());
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["operation"], "decrypt");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["totals"]["slices_rewritten"], 7);
    assert_eq!(v["totals"]["changed"], 75);
    assert_same_store(&s, &conformance("aes"));
    assert!(!s.join(".rootdir.lck").exists(), "dry-run takes no lock");
}

#[test]
fn output_leaves_source_untouched() {
    let (t, s) = store("aes");
    let out = t.path().join("out");
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
        "--json",
    ]);
    assert!(o.success(), "{}", o.stderr.as_str());
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["output"], d(&out));
    assert_same_store(&s, &conformance("aes"));
    assert_same_store(&out, &conformance("plain"));
    // A non-empty output directory is refused.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert!(!o.success());
}

#[test]
fn symlinked_channel_refuses_in_place() {
    let (t, s) = store("aes");
    let real = t.path().join("orders-real");
    std::fs::rename(s.join("orders"), &real).unwrap();
    std::os::unix::fs::symlink(&real, s.join("orders")).unwrap();
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(code(&o), REFUSED);
    assert!(o.stderr.as_str().contains("symbolic link"));
    assert_same_store(&real, &conformance("aes").join("orders"));
}

#[test]
fn zero_tail_is_dropped_and_modes_preserved() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, s) = store("damaged-zero-tail");
    let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
    let dat = s.join("orders/msgs.2.dat");
    std::fs::set_permissions(&dat, std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(mode(&dat), 0o640);
    // The zero padding goes, as when the server rebuilds the index: kept
    // behind a new, trusted index it would become a trap (the server appends
    // after it). The result is exactly `plain`.
    std::fs::set_permissions(&dat, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_same_store(&s, &conformance("plain"));
}

#[test]
fn decrypt_twice_is_a_no_op_without_assume_plaintext() {
    // `plain` holds plaintext starting with 0x01/0x02 (seqs 11, 22, 33): what a
    // successful decrypt leaves behind. Decrypting again changes nothing.
    let (_t, dir) = store("aes");
    for _ in 0..2 {
        ok(&["store", "decrypt", d(&dir), "--key-file", k1()]);
    }
    assert_same_store(&dir, &conformance("plain"));
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
            Part::Msg(1, seal(k1(), "edge", Cipher::Aes, 1, b"first")),
            Part::Msg(2, seal(k1(), "edge", Cipher::Aes, 2, &p)),
        ],
    );
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    let after = snapshot(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(
        code(&o),
        0,
        "decrypting a decrypted store must be a no-op: {}",
        err(&o)
    );
    assert_eq!(snapshot(&s), after);
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
    let e = |seq| seal(k1(), "edge", Cipher::Aes, seq, &bytes(40, seq as u8));
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
    let (c, v) = verify_json(&s, Some(k1()));
    let before = channel(&v, "edge");
    assert!(c < 2, "the server starts: {v}");
    assert_eq!(before["last_seq"], 4, "{v}");
    assert_eq!(before["plaintext"], 4, "all four delivered before: {v}");

    // A rewrite cannot keep those records reachable through a rebuilt index
    // and must not drop them: it refuses, and writes nothing.
    let before_bytes = snapshot(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(code(&o), REFUSED, "{}", err(&o));
    assert!(err(&o).contains("data-after-padding"), "{}", err(&o));
    assert_eq!(snapshot(&s), before_bytes);
    let (c, v) = verify_json(&s, Some(k1()));
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
        k1(),
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
    // A hang ends in a kill after 20 s, which `exec` reports as no exit code.
    let args = [
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ];
    let o = exec(stanctl().args(args).timeout(Duration::from_secs(20)), &args);
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stderr("not a regular file; not copied");
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
    let (_, v) = verify_json(&s, Some(k1()));
    assert_eq!(traps(&v), 0, "{v}");
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
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
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--json"]);
    assert_eq!(code(&o), REFUSED);
    let v: Result<Value, _> = serde_json::from_str(&o.stdout);
    let v = v.unwrap_or_else(|e| panic!("no JSON on stdout ({e}): {:?}", o.stdout.as_str()));
    assert_eq!(v["schema"], "stanctl.rewrite/2");
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
            k1(),
            "--assume-plaintext",
        ]);
        let (c, v) = verify_json(&s, Some(k1()));
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
            k1(),
            "--new-key-file",
            k2(),
            "--cipher",
            other,
        ]);
        let (c, v) = verify_json(&s, Some(k2()));
        assert_eq!(c, 0, "{v}");
        let i = inspect(&s, k2());
        assert_eq!(i["reused_nonces"], Value::Array(vec![]), "{i}");
        let want = if other == "AES" { "aes" } else { "chacha" };
        assert_eq!(
            channel(&i, "edge")["payloads"][want],
            seq - 1,
            "every non-empty payload now under {other}: {i}"
        );
        ok(&["store", "decrypt", d(&s), "--key-file", k2()]);
        assert_eq!(snapshot(&s), original, "{cipher}: not back to the original");
    }
}

/// An envelope of the empty plaintext (exactly 29 bytes, which the server
/// never writes but opens): decrypting it must leave field 4 absent, as the
/// server writes an empty payload, so the record is delivered empty.
#[test]
fn decrypting_a_29_byte_envelope_drops_field_4() {
    let (_t, s) = bare_store("aes");
    let env = seal(k1(), "edge", Cipher::ChaCha, 1, b"");
    assert_eq!(env.len(), 29);
    write_slice(
        &s.join("edge"),
        1,
        &[
            Part::Msg(1, env),
            Part::Msg(2, seal(k1(), "edge", Cipher::Aes, 2, b"x")),
        ],
    );
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
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
        k1(),
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
    let (c, v) = verify_json(&s, Some(k1()));
    assert!(c >= 1, "the server misses messages before: {v}");

    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    let plain = conformance("plain");
    assert_eq!(snapshot(&s), snapshot(&plain));
    let times: Vec<_> = ["orders/msgs.1.idx", "sensors.temp/msgs.2.idx"]
        .iter()
        .map(|f| s.join(f).metadata().unwrap().modified().unwrap())
        .collect();
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
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
        k2(),
        "--key-file",
        k1(),
    ]);
    assert_eq!(snapshot(&a), snapshot(&conformance("mixed-plain")));
    // Old keys given K2 first; new key K1 (already opening part of the
    // store) with a cipher change.
    ok(&[
        "store",
        "rekey",
        d(&b),
        "--key-file",
        k2(),
        "--key-file",
        k1(),
        "--new-key-file",
        k1(),
        "--cipher",
        "CHACHA",
    ]);
    let (c, v) = verify_json(&b, Some(k1()));
    // seqs 1-10 stay plaintext (rekey leaves plaintext): at most at risk.
    assert!(c <= 1, "{v}");
    let i = inspect(&b, k1());
    assert_eq!(i["totals"]["unopened"]["wrong_key"], 0, "{i}");
    assert_eq!(i["reused_nonces"], Value::Array(vec![]), "{i}");
    ok(&["store", "decrypt", d(&b), "--key-file", k1()]);
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
        k1(),
        "--output",
        d(&out),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert!(!t.path().join("new").exists(), "dry run created the output");
    assert_eq!(all_paths(&s), before, "dry run created files in the store");
    // A refusal (wrong key) with --output.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k2(),
        "--output",
        d(&out),
        "--json",
    ]);
    assert_eq!(code(&o), REFUSED, "{}", err(&o));
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
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
        k1(),
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
        k1(),
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

// ---------------------------------------------------------------- salvage

/// `verify --list` lines of `dir`, MSG lines by (channel, seq).
fn msg_lines(dir: &Path, args: &[&str]) -> (i32, BTreeMap<(String, u64), String>) {
    let mut a = vec!["store", "verify", d(dir), "--list"];
    a.extend_from_slice(args);
    let o = run(&a);
    let lines = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("MSG\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            ((f[1].to_string(), f[2].parse().unwrap()), l.to_string())
        })
        .collect();
    (o.code, lines)
}

/// The index entry of `seq` in the `.idx` beside `dat`.
fn entry_of(dat: &Path, seq: u64) -> stanctl::format::index::IndexEntry {
    let idx = std::fs::read(dat.with_extension("idx")).unwrap();
    (0..stanctl::format::index::max_entries(idx.len()))
        .map(|i| {
            stanctl::format::index::IndexEntry::parse(
                stanctl::format::index::entry_bytes(&idx, i).unwrap(),
            )
        })
        .find(|e| e.seq == seq)
        .unwrap_or_else(|| panic!("no entry for seq {seq} in {}", dat.display()))
}

/// Runs a rewrite with --keep-damaged --output; checks that every kept
/// record is byte-identical, with its old index size, and returns the
/// output directory and the JSON report.
fn salvage(src: &Path, args: &[&str]) -> (TempDir, std::path::PathBuf, Value) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut a = args.to_vec();
    a.extend_from_slice(&[d(src), "--keep-damaged", "--output", d(&out), "--json"]);
    let o = run(&a);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    for k in v["kept"].as_array().unwrap() {
        let file = k["file"].as_str().unwrap();
        let len = k["bytes"].as_u64().unwrap() as usize;
        let (a, b) = (src.join(file), out.join(file));
        match (k["seq"].as_u64(), k["offset"].as_u64()) {
            (Some(seq), Some(off)) => {
                let (ea, eb) = (entry_of(&a, seq), entry_of(&b, seq));
                assert_eq!(ea.offset, off);
                assert_eq!(ea.size, eb.size, "kept with its index size: {k}");
                let ra = std::fs::read(&a).unwrap();
                let rb = std::fs::read(&b).unwrap();
                let (oa, ob) = (ea.offset as usize, eb.offset as usize);
                assert_eq!(ra[oa..oa + len], rb[ob..ob + len], "kept bytes: {k}");
            }
            (None, None) => {
                // A whole slice: both files as they were.
                assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
                let ia = a.with_extension("idx");
                if ia.exists() {
                    assert_eq!(
                        std::fs::read(&ia).unwrap(),
                        std::fs::read(b.with_extension("idx")).unwrap()
                    );
                }
            }
            _ => {} // a tail: checked by the verdicts
        }
    }
    (t, out, v)
}

fn kept_seqs(v: &Value) -> Vec<(String, u64)> {
    v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| Some((k["channel"].as_str()?.to_string(), k["seq"].as_u64()?)))
        .collect()
}

/// damaged-crc: one record with a bad CRC. Without --keep-damaged decrypt
/// refuses; with it the record is kept byte for byte (with its index size),
/// every other record is decrypted, and the server's verdict on the kept
/// record is the same before and after, with CRCs on and off.
#[test]
fn keep_damaged_decrypt_keeps_a_bad_crc_record_and_converts_the_rest() {
    let (_s, src) = store("damaged-crc");
    let o = run(&["store", "decrypt", d(&src), "--key-file", k1(), "--dry-run"]);
    assert_eq!(o.code, REFUSED);
    let (_t, out, v) = salvage(&src, &["store", "decrypt", "--key-file", k1()]);
    assert_eq!(kept_seqs(&v), vec![("orders".to_string(), 18)]);
    for opts in [
        &[][..],
        &["--no-file-crc"][..],
        &["--file-read-buffer-size", "0"][..],
    ] {
        let mut before_args = vec!["--key-file", k1()];
        before_args.extend_from_slice(opts);
        let mut after_args = vec!["--no-encrypt"];
        after_args.extend_from_slice(opts);
        let (_, before) = msg_lines(&src, &before_args);
        let (code, after) = msg_lines(&out, &after_args);
        assert_ne!(code, WONT_START);
        // Every record decrypted (the plaintext server delivers the same
        // payloads), and the kept one gets the same verdict.
        assert_eq!(before, after, "{opts:?}");
    }
    assert_eq!(v["totals"]["kept"], 1);
    assert!(v["totals"]["decrypted"].as_u64().unwrap() > 60);
}

/// damaged-truncated: the last slice of orders ends in a record cut short
/// and its last index entry points at it, so the server rebuilds the index
/// and refuses: the slice is carried over whole, the others are converted,
/// and the server still refuses (or, with truncate-on-EOF, gives the kept
/// messages the verdicts it gave).
#[test]
fn keep_damaged_carries_an_unframeable_slice_over_whole() {
    let (_s, src) = store("damaged-truncated");
    let (_t, out, v) = salvage(
        &src,
        &["store", "rekey", "--key-file", k1(), "--new-key-file", k2()],
    );
    let kept = v["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{v}");
    assert_eq!(kept[0]["file"], "orders/msgs.3.dat");
    assert!(kept[0]["seq"].is_null());
    let (code, _) = msg_lines(&out, &["--key-file", k2()]);
    assert_eq!(code, WONT_START, "the server refuses as before");
    let (_, before) = msg_lines(&src, &["--key-file", k1(), "--truncate-on-eof"]);
    let (_, after) = msg_lines(&out, &["--key-file", k2(), "--truncate-on-eof"]);
    for (k, l) in &before {
        let a = &after[k];
        if k.0 == "orders" && k.1 > 30 {
            // Kept under K1: the server with K2 cannot open them, as it
            // could not open any K1 envelope before the rekey either.
            let (_, b_k2) = msg_lines(&src, &["--key-file", k2(), "--truncate-on-eof"]);
            assert_eq!(a, &b_k2[k], "kept record {k:?}");
        } else {
            assert_eq!(a, l, "converted record {k:?}");
        }
    }
}

/// d01 (a damaged header size inside a read-ahead batch) and d04 (a bad
/// CRC, and a zeroed header size field): rekey with --keep-damaged repairs
/// the size fields from the index (the CRC proves the payload), keeps the
/// bad-CRC record byte for byte, and the server gives the kept record the
/// same verdict, by read-ahead and by single reads.
#[test]
fn keep_damaged_rekey_repairs_size_fields_and_keeps_crc_failures() {
    let diff = fixtures().join("differential");
    for (case, kept, repaired) in [
        ("d01", vec![], 1),
        ("d04", vec![("orders".to_string(), 35u64)], 1),
    ] {
        let s = tempfile::tempdir().unwrap();
        let src = s.path().join(case);
        copy_dir(&diff.join(case), &src);
        let (_t, out, v) = salvage(
            &src,
            &["store", "rekey", "--key-file", k1(), "--new-key-file", k2()],
        );
        assert_eq!(kept_seqs(&v), kept, "{case}");
        assert_eq!(v["totals"]["headers_repaired"], repaired, "{case}");
        // Every record counted once: kept, changed or unchanged.
        let t = &v["totals"];
        assert_eq!(t["records"], 83, "{case}: {t}");
        assert_eq!(
            t["records"].as_u64(),
            Some(
                t["kept"].as_u64().unwrap()
                    + t["changed"].as_u64().unwrap()
                    + t["unchanged"].as_u64().unwrap()
            ),
            "{case}: {t}"
        );
        for rb in ["2MB", "0", "100"] {
            let (_, before) = msg_lines(&src, &["--key-file", k1(), "--file-read-buffer-size", rb]);
            let (_, after) = msg_lines(&out, &["--key-file", k2(), "--file-read-buffer-size", rb]);
            for (k, l) in &before {
                if kept.contains(k) {
                    assert_eq!(&after[k], l, "{case} rb {rb}: kept {k:?}");
                } else {
                    // Converted: delivered (a repaired header reads fine on
                    // every path), with the payload it had.
                    let a = &after[k];
                    assert!(a.contains("\tok\t"), "{case} rb {rb}: {a}");
                    if l.contains("\tok\t") {
                        assert_eq!(a, l, "{case} rb {rb}");
                    }
                }
            }
        }
    }
}

/// In place, --keep-damaged checks its result on a scratch copy first, then
/// rewrites the store: the kept record is byte-identical, the rest decrypted.
#[test]
fn keep_damaged_in_place() {
    let (_s, src) = store("damaged-crc");
    let (_, before) = msg_lines(&src, &["--key-file", k1()]);
    let p = src.join("orders/msgs.2.dat");
    let e = entry_of(&p, 18);
    let kept = std::fs::read(&p).unwrap()[e.offset as usize..][..8 + e.size as usize].to_vec();
    let o = run_ok(&[
        "store",
        "decrypt",
        d(&src),
        "--key-file",
        k1(),
        "--keep-damaged",
    ]);
    o.expect_stdout("Kept byte for byte");
    o.expect_stdout("OLD key");
    let e2 = entry_of(&p, 18);
    let now = std::fs::read(&p).unwrap()[e2.offset as usize..][..8 + e2.size as usize].to_vec();
    assert_eq!(kept, now);
    let (_, after) = msg_lines(&src, &["--no-encrypt"]);
    assert_eq!(before, after);
    assert!(no_temp_files(&src));
}

// ---- --one-pass in place ----

fn rekey_one_pass(s: &Path) -> Vec<String> {
    [
        "store",
        "rekey",
        d(s),
        "--key-file",
        k1(),
        "--new-key-file",
        k2(),
        "--one-pass",
    ]
    .map(String::from)
    .to_vec()
}

/// `--one-pass` writes exactly what two passes write, says so (table and
/// JSON: `one_pass`, `staging_space` with the estimate and the free space),
/// and leaves no staging directory; a dry run reports the space too.
#[test]
fn one_pass_in_place_equals_two_passes() {
    let (_t2, two) = store("mixed");
    run_ok(&[
        "store",
        "rekey",
        d(&two),
        "--key-file",
        k1(),
        "--new-key-file",
        k2(),
    ]);
    let (_t, s) = store("mixed");
    let before = snapshot(&s);
    let (c, v) = json(&[&rekey_one_pass(&s)[..], &["--dry-run".into()]].concat());
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["one_pass"], true, "{v}");
    assert_eq!(v["staging_space"][0]["path"], d(&s), "{v}");
    assert!(
        v["staging_space"][0]["needed"].as_u64().unwrap() > 64 << 20,
        "{v}"
    );
    assert_eq!(snapshot(&s), before, "a dry run wrote");
    let o = run_ok(&rekey_one_pass(&s));
    o.expect_stdout("rewrote 4 slice(s) in place in one pass");
    o.expect_stdout("--one-pass: the staging needed at most about");
    assert_eq!(snapshot(&s), snapshot(&two));
    assert!(no_temp_files(&s));
    // Nothing left to do: a rerun rewrites nothing and stages nothing (it
    // takes no write step at all: the crash hook never fires).
    let mut args = rekey_one_pass(&s);
    args.push("--json".into());
    let o = exec(
        stanctl().args(&args).env("STANCTL_TEST_ABORT_AT_STEP", "1"),
        &args,
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let v = o.json();
    assert_eq!(v["totals"]["slices_rewritten"], 0, "{v}");
    assert_eq!(snapshot(&s), snapshot(&two));
    assert!(no_temp_files(&s));
    // Two passes report no staging.
    let (c, v) = json(&[
        "store",
        "rekey",
        d(&two),
        "--key-file",
        k2(),
        "--new-key-file",
        k1(),
    ]);
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["one_pass"], false, "{v}");
    assert!(v.get("staging_space").is_none(), "{v}");
}

/// Not enough free space for the staging: refused (exit 4) before anything
/// is read or written, with the numbers and the ways out; the store (no
/// staging directory either) is as it was. A dry run says the same.
#[test]
fn one_pass_without_room_is_refused_with_the_numbers() {
    let (_t, s) = store("mixed");
    let before = snapshot(&s);
    for dry in [false, true] {
        let mut args = rekey_one_pass(&s);
        if dry {
            args.push("--dry-run".into());
        }
        let o = exec(
            stanctl().args(&args).env("STANCTL_TEST_FREE_BYTES", "1000"),
            &args,
        );
        assert_eq!(o.code, REFUSED, "{}", o.stderr);
        for w in [
            "not enough free space for --one-pass",
            "(1000 bytes) is free",
            "drop --one-pass",
            "--output DIR",
            "the store is unchanged",
        ] {
            o.expect_stderr(w);
        }
        assert_eq!(snapshot(&s), before);
        assert!(no_staging_dirs(&s));
        args.push("--json".into());
        let o = exec(
            stanctl().args(&args).env("STANCTL_TEST_FREE_BYTES", "1000"),
            &args,
        );
        let v = o.json();
        assert_eq!(v["staging_space"][0]["available"], 1000, "{v}");
        assert_eq!(v["written"], false, "{v}");
        let r = v["refused"][0]["reason"].as_str().unwrap();
        assert!(r.contains("not enough free space"), "{r}");
    }
}

/// --one-pass is for in-place runs without salvage: with --output (which
/// reads the store once anyway) or --keep-damaged it is a usage error.
#[test]
fn one_pass_conflicts_with_output_and_keep_damaged() {
    let (t, s) = store("mixed");
    for extra in [
        vec!["--output", d(&t.path().join("out"))],
        vec!["--keep-damaged"],
    ] {
        let o = run(&[
            &rekey_one_pass(&s)[..],
            &extra.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        ]
        .concat());
        assert_eq!(o.code, USAGE, "{}", o.stderr);
        o.expect_stderr("--one-pass");
    }
    assert!(!t.path().join("out").exists());
}

/// A leftover staging directory (a crash during a --one-pass run) is named
/// by inspect and verify as what it is, does not change verify's verdict,
/// and is removed by the next rewrite, one pass or two.
#[test]
fn a_leftover_staging_directory_is_named_and_removed() {
    for one_pass in [true, false] {
        let (_t, s) = store("mixed");
        let (c0, _) = verify_json(&s, Some(k1()));
        let staging = s.join("orders/.stanctl-staging");
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join("msgs.1.dat"), b"half written").unwrap();
        let o = run(&["store", "inspect", d(&s), "--key-file", k1()]);
        o.expect_stdout("orders/.stanctl-staging");
        o.expect_stdout("interrupted stanctl encrypt, decrypt or rekey");
        let (c, v) = verify_json(&s, Some(k1()));
        assert_eq!(c, c0, "{v}");
        assert!(v.to_string().contains("orders/.stanctl-staging"), "{v}");
        let mut args = rekey_one_pass(&s);
        if !one_pass {
            args.pop();
        }
        run_ok(&args);
        assert!(no_temp_files(&s), "one pass: {one_pass}");
    }
}

/// A symlinked channel directory: --one-pass stages nothing through the
/// link and refuses as two passes do.
#[test]
fn one_pass_never_stages_through_a_symlink() {
    let (t, s) = store("aes");
    let real = t.path().join("orders-real");
    std::fs::rename(s.join("orders"), &real).unwrap();
    std::os::unix::fs::symlink(&real, s.join("orders")).unwrap();
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--one-pass"]);
    assert_eq!(code(&o), REFUSED, "{}", o.stderr);
    o.expect_stderr("symbolic link");
    assert_same_store(&real, &conformance("aes").join("orders"));
    assert!(!real.join(".stanctl-staging").exists());
    assert!(no_staging_dirs(&s));
}

/// The free-space estimate of `--one-pass`: every slice's files, for
/// encrypt plus an envelope's 29 bytes (and at most one more byte of
/// length) per record, each file rounded up to 4 KiB, plus 64 MiB and 1 %.
#[test]
fn one_pass_estimates_the_staging_from_the_slices() {
    let (_t, s) = store("plain");
    let slices: u64 = snapshot(&s)
        .iter()
        .filter(|(k, _)| k.contains("/msgs."))
        .map(|(_, b)| b.len() as u64)
        .sum();
    let files = snapshot(&s).keys().filter(|k| k.contains("/msgs.")).count() as u64;
    let (c, v) = json(&[
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
        "--assume-plaintext",
        "--one-pass",
        "--dry-run",
    ]);
    assert_eq!(c, OK, "{v}");
    let sp = &v["staging_space"][0];
    let (needed, margin) = (
        sp["needed"].as_u64().unwrap(),
        sp["margin"].as_u64().unwrap(),
    );
    let staged = needed - margin;
    assert_eq!(margin, (64 << 20) + staged / 100, "{v}");
    assert!(staged >= slices + 83 * 29, "{staged} < {slices} + 83 x 29");
    assert!(staged <= slices + 83 * 31 + files * 4096, "{staged}: {v}");
    assert!(sp["available"].as_u64().unwrap() > 0, "{v}");
}
