//! Archived slices (`msgs.N.dat.bak` and `msgs.N.idx.bak`, left by the
//! server's slice archiving): encrypt, decrypt and rekey convert them with
//! the same rule as the live slices, and every report says how many
//! plaintext messages remain on disk and where.

mod common;
use common::*;

use serde_json::Value;
use stanctl::crypto::envelope::{classify, PayloadKind};
use stanctl::format::record::{Event, Records};
use std::path::Path;

/// A copy of the `plain` fixture with archived slices as the server's
/// archiving leaves them: `orders/msgs.1.{dat,idx}.bak` (a pair, renamed
/// like the server's `removeFirstSlice` does) and
/// `sensors.temp/msgs.1.dat.bak` alone (its `.idx.bak` removed, as an
/// archive script may do). The live slices stay as they are.
fn store_with_archives() -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, s) = store("plain");
    for ext in ["dat", "idx"] {
        std::fs::copy(
            s.join(format!("orders/msgs.1.{ext}")),
            s.join(format!("orders/msgs.1.{ext}.bak")),
        )
        .unwrap();
    }
    std::fs::copy(
        s.join("sensors.temp/msgs.1.dat"),
        s.join("sensors.temp/msgs.1.dat.bak"),
    )
    .unwrap();
    (t, s)
}

fn encrypt_args(s: &Path) -> Vec<String> {
    [
        "store",
        "encrypt",
        d(s),
        "--cipher",
        "AES",
        "--assume-plaintext",
        "-k",
        k1(),
    ]
    .map(String::from)
    .to_vec()
}

/// Every record of every message file (live `.dat` and archived
/// `.dat.bak`) whose payload is plaintext: (file, seq).
fn plaintext_records(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (name, bytes) in snapshot(dir) {
        let file = name.rsplit('/').next().unwrap();
        let message_file =
            file.starts_with("msgs.") && (file.ends_with(".dat") || file.ends_with(".dat.bak"));
        if !message_file {
            continue;
        }
        for ev in Records::new(&bytes, false) {
            let Event::Record(r) = ev else { continue };
            let m = r.message().expect("a message record");
            if classify(m.data) == PayloadKind::Plain {
                out.push((name.clone(), m.sequence));
            }
        }
    }
    out
}

/// An archived pair read as the server's own slice: the `.dat.bak` and
/// `.idx.bak` put in a store as a live slice, inspect finds no damage
/// (every index entry matches its record, CRCs hold) and every envelope
/// opens with `key`.
#[track_caller]
fn assert_server_format(dat_bak: &Path, idx_bak: &Path, key: &str) {
    let (_t, s) = store("plain");
    std::fs::copy(dat_bak, s.join("orders/msgs.1.dat")).unwrap();
    std::fs::copy(idx_bak, s.join("orders/msgs.1.idx")).unwrap();
    let v = inspect(&s, key);
    assert!(v["damage"].as_array().unwrap().is_empty(), "{v}");
    let orders = channel(&v, "orders");
    let slice = &orders["slices"][0];
    assert_eq!(slice["index_entries"], 15, "{v}");
    assert_eq!(slice["unopened"]["wrong_key"], 0, "{v}");
    assert_eq!(slice["unopened"]["plaintext_lookalike"], 0, "{v}");
    assert_eq!(slice["payloads"]["plaintext"], 0, "{v}");
}

#[test]
fn encrypt_leaves_no_plaintext_in_any_file() {
    let (_t, s) = store_with_archives();
    assert_eq!(
        plaintext_records(&s)
            .iter()
            .filter(|(f, _)| f.ends_with(".bak"))
            .count(),
        26
    );
    let o = run(&encrypt_args(&s));
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stdout("archived (.bak)");
    o.expect_stdout("2 rewritten, 28 message(s) encrypted");
    o.expect_stdout("Plaintext on disk: none");
    assert_eq!(plaintext_records(&s), vec![]);
    // The pair is still the server's format, under K1; the lone .dat.bak
    // got no index invented for it.
    assert_server_format(
        &s.join("orders/msgs.1.dat.bak"),
        &s.join("orders/msgs.1.idx.bak"),
        k1(),
    );
    assert!(!s.join("sensors.temp/msgs.1.idx.bak").exists());
    assert!(no_temp_files(&s));
    // inspect and verify agree: nothing in plaintext anywhere.
    let v = inspect(&s, k1());
    assert_eq!(v["plaintext_on_disk"]["messages"], 0, "{v}");
    let (c, v) = verify_json(&s, Some(k1()));
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["plaintext_on_disk"]["messages"], 0, "{v}");
    // Running it again changes nothing.
    let before = snapshot(&s);
    let (c, v) = json(&encrypt_args(&s));
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["archived_totals"]["slices_rewritten"], 0, "{v}");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn decrypt_and_rekey_round_trip_archived_slices() {
    let (_t, s) = store_with_archives();
    let original = snapshot(&s);
    ok(&encrypt_args(&s));
    // rekey K1 -> K2: the archived envelopes move to K2 too.
    let (c, v) = json(&["store", "rekey", d(&s), "-k", k1(), "--new-key-file", k2()]);
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["archived_totals"]["rekeyed"], 28, "{v}");
    assert_eq!(v["archived"][0]["rewritten"], true, "{v}");
    assert_server_format(
        &s.join("orders/msgs.1.dat.bak"),
        &s.join("orders/msgs.1.idx.bak"),
        k2(),
    );
    // decrypt with K2 gives back the original files, byte for byte, the
    // archived ones included.
    let o = run(&["store", "decrypt", d(&s), "-k", k2()]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stdout("28 message(s) decrypted");
    o.expect_stdout("as decrypt leaves them");
    o.expect_stdout("archived orders/msgs.1.dat.bak (13)");
    assert_eq!(snapshot(&s), original);
}

/// The JSON of a rewrite: each archived slice with what the run did to it,
/// their totals apart from the live ones, and the plaintext on disk.
#[test]
fn rewrite_json_reports_archived_slices_and_plaintext_on_disk() {
    let (_t, s) = store_with_archives();
    let mut dry = encrypt_args(&s);
    dry.push("-n".into());
    let (c, v) = json(&dry);
    assert_eq!(c, OK, "{v}");
    let a = v["archived"].as_array().unwrap();
    assert_eq!(a.len(), 2, "{v}");
    assert_eq!(a[0]["channel"], "orders");
    assert_eq!(a[0]["file"], "orders/msgs.1.dat.bak");
    assert_eq!(a[0]["index_file"], "orders/msgs.1.idx.bak");
    assert_eq!(a[0]["messages"], 15);
    assert_eq!(a[0]["converted"], 14);
    assert_eq!(a[0]["rewritten"], true);
    assert_eq!(a[0]["plaintext"], 0, "after a real run");
    assert_eq!(a[1]["file"], "sensors.temp/msgs.1.dat.bak");
    assert_eq!(a[1]["index_file"], Value::Null);
    assert_eq!(v["archived_totals"]["records"], 30);
    assert_eq!(v["archived_totals"]["encrypted"], 28);
    assert_eq!(v["archived_totals"]["slices_rewritten"], 2);
    // The live totals are the live slices' only.
    assert_eq!(v["totals"]["records"], 83);
    assert_eq!(v["plaintext_on_disk"]["messages"], 0, "{v}");
    // Nothing was written by the dry run.
    assert_eq!(plaintext_records(&s).len(), 69 + 26);
    // decrypt -n on the plaintext store: nothing to convert, all plaintext
    // stays, in live and archived slices, each named.
    let (c, v) = json(&["store", "decrypt", d(&s), "-k", k1(), "-n"]);
    assert_eq!(c, OK, "{v}");
    let p = &v["plaintext_on_disk"];
    assert_eq!(p["messages"], 69 + 26, "{v}");
    assert_eq!(p["live"][1]["channel"], "orders");
    assert_eq!(p["live"][1]["messages"], 33);
    assert_eq!(p["archived"][0]["file"], "orders/msgs.1.dat.bak");
    assert_eq!(p["archived"][0]["messages"], 13);
    assert_eq!(p["archived"][1]["file"], "sensors.temp/msgs.1.dat.bak");
}

/// A record of an archived slice the rule cannot handle refuses the run
/// like a live one, naming the archived file, sequence and offset; nothing
/// is written. `--keep-damaged` carries it over byte for byte.
#[test]
fn an_archived_record_that_cannot_be_handled_refuses_and_can_be_kept() {
    let (_t, s) = store("aes");
    ok(&["store", "decrypt", d(&s), "-k", k1()]);
    // An archived slice under K1 in a store encrypted with K2 only.
    for ext in ["dat", "idx"] {
        std::fs::copy(
            conformance("aes").join(format!("orders/msgs.1.{ext}")),
            s.join(format!("orders/msgs.1.{ext}.bak")),
        )
        .unwrap();
    }
    let before = snapshot(&s);
    let args = [
        "store",
        "encrypt",
        d(&s),
        "-k",
        k2(),
        "--cipher",
        "AES",
        "--assume-plaintext",
    ];
    let o = run(&args);
    assert_eq!(o.code, REFUSED, "{}", o.stderr);
    o.expect_stderr("orders/msgs.1.dat.bak seq 1 (offset 4)");
    o.expect_stderr("Plaintext on disk (unchanged: nothing was written)");
    assert_eq!(snapshot(&s), before, "a refusal writes nothing");
    let (c, v) = json(&args);
    assert_eq!(c, REFUSED, "{v}");
    let refused = v["refused"].as_array().unwrap();
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|r| r["file"] == "orders/msgs.1.dat.bak" && r["channel"] == "orders"),
        "{v}"
    );
    assert_eq!(refused[0]["seq"], 1);
    assert_eq!(refused[0]["offset"], 4);
    assert_eq!(v["archived"][0]["converted"], 0, "{v}");
    assert_eq!(v["archived"][0]["rewritten"], false, "{v}");
    // --keep-damaged: the archived envelopes under K1 are kept as they
    // are, everything else is encrypted under K2.
    let mut keep = args.to_vec();
    keep.push("--keep-damaged");
    let (c, v) = json(&keep);
    assert_eq!(c, OK, "{v}");
    let kept = v["kept"].as_array().unwrap();
    assert_eq!(kept.len(), refused.len(), "{v}");
    assert!(kept.iter().all(|k| k["file"] == "orders/msgs.1.dat.bak"));
    let reason = kept[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("archived slice, which the server never reads"),
        "{reason}"
    );
    let bak = std::fs::read(s.join("orders/msgs.1.dat.bak")).unwrap();
    assert_eq!(
        bak,
        std::fs::read(conformance("aes").join("orders/msgs.1.dat")).unwrap()
    );
    assert_eq!(plaintext_records(&s), vec![]);
}

/// `--output` writes the archived slices converted (the lone `.dat.bak`
/// stays alone) and leaves the source untouched.
#[test]
fn output_copies_archived_slices_converted() {
    let (t, s) = store_with_archives();
    let before = snapshot(&s);
    let out = t.path().join("out");
    let mut args = encrypt_args(&s);
    args.extend(["--output".into(), d(&out).into()]);
    ok(&args);
    assert_eq!(snapshot(&s), before);
    assert!(out.join("orders/msgs.1.idx.bak").exists());
    assert!(out.join("sensors.temp/msgs.1.dat.bak").exists());
    assert!(!out.join("sensors.temp/msgs.1.idx.bak").exists());
    assert_eq!(plaintext_records(&out), vec![]);
    assert_server_format(
        &out.join("orders/msgs.1.dat.bak"),
        &out.join("orders/msgs.1.idx.bak"),
        k1(),
    );
    // The same bytes as an in-place run.
    ok(&encrypt_args(&s));
    assert_eq!(snapshot(&out), snapshot(&s));
}

/// inspect and verify say how many plaintext messages are on disk and
/// where, archived slices included (the tables do not count those).
#[test]
fn inspect_and_verify_report_plaintext_on_disk() {
    let (_t, s) = store_with_archives();
    let o = run(&["store", "inspect", d(&s)]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stdout("Plaintext on disk: 95 message(s), 69 in live slices, 26 in archived slices");
    o.expect_stdout("archived orders/msgs.1.dat.bak (13)");
    let v = inspect(&s, k1());
    assert_eq!(v["plaintext_on_disk"]["messages"], 95, "{v}");
    assert_eq!(v["totals"]["messages"], 83, "archived slices are not live");
    // With encryption on, stored plaintext is a finding to act on.
    let o = run(&["store", "verify", d(&s), "-k", k1()]);
    o.expect_stdout("stored unencrypted although encryption is on");
    o.expect_stdout("sensors.temp/msgs.1.dat.bak (13)");
    let (_, v) = verify_json(&s, None);
    assert_eq!(v["plaintext_on_disk"]["messages"], 95, "{v}");
    assert_eq!(v["plaintext_on_disk"]["archived"][1]["messages"], 13, "{v}");
}

/// An archived slice can hold the same sequences as a live slice of its
/// channel (a slice copied back, or restored): encrypting both under the
/// channel's key must never seal two different plaintexts with one nonce.
/// Equal nonces are allowed only for equal envelopes (same sequence and
/// plaintext: the same bytes, nothing learned).
#[test]
fn archived_and_live_slices_never_share_a_nonce_for_different_plaintext() {
    let (_t, s) = store("plain");
    // orders' own seqs 1-15, but sensors.temp's payloads: other plaintext
    // under orders' key.
    std::fs::copy(
        s.join("sensors.temp/msgs.1.dat"),
        s.join("orders/msgs.1.dat.bak"),
    )
    .unwrap();
    std::fs::copy(s.join("orders/msgs.1.dat"), s.join("orders/msgs.2.dat.bak")).unwrap();
    ok(&encrypt_args(&s));
    assert_eq!(plaintext_records(&s), vec![]);
    let mut seen: std::collections::BTreeMap<Vec<u8>, (String, Vec<u8>)> = Default::default();
    for (name, bytes) in snapshot(&s) {
        let file = name.rsplit('/').next().unwrap();
        if !name.starts_with("orders/") || !file.starts_with("msgs.") || file.contains(".idx") {
            continue;
        }
        for ev in Records::new(&bytes, false) {
            let Event::Record(r) = ev else { continue };
            let data = r.message().unwrap().data.to_vec();
            if !matches!(classify(&data), PayloadKind::Envelope(_)) {
                continue;
            }
            let nonce = data[1..13].to_vec();
            if let Some((other, env)) = seen.get(&nonce) {
                assert_eq!(env, &data, "{name} and {other} share a nonce");
            }
            seen.insert(nonce, (name.clone(), data));
        }
    }
    assert!(seen.len() > 30, "{}", seen.len());
}

/// A store whose live slices are already encrypted but whose archived
/// slice is not: the run converts only the archived slice and says so
/// (never "nothing to do").
#[test]
fn a_run_that_converts_only_archived_slices_says_what_it_did() {
    let (_t, s) = store("plain");
    ok(&encrypt_args(&s));
    std::fs::copy(
        conformance("plain").join("orders/msgs.1.dat"),
        s.join("orders/msgs.1.dat.bak"),
    )
    .unwrap();
    let o = run(&encrypt_args(&s));
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stdout("rewrote 1 slice(s) in place");
    o.expect_stdout("1 checked with 15 message(s); 1 rewritten, 14 message(s) encrypted");
    o.expect_stdout("Plaintext on disk: none");
    assert!(!o.stdout.contains("nothing to do"), "{}", o.stdout);
    assert_eq!(plaintext_records(&s), vec![]);
}

/// Archived files the server's format does not hold (an unsupported
/// version, an empty file) refuse the run as damage would, naming the file
/// and saying that the server never reads it; `--keep-damaged` carries
/// them over as they are and converts the rest.
#[test]
fn damaged_archived_files_refuse_and_keep_damaged_carries_them_over() {
    let (_t, s) = store("plain");
    std::fs::write(s.join("orders/msgs.0.dat.bak"), b"\x07\x00\x00\x00garbage").unwrap();
    std::fs::write(s.join("orders/msgs.5.dat.bak"), b"").unwrap();
    let before = snapshot(&s);
    let o = run(&encrypt_args(&s));
    assert_eq!(o.code, REFUSED, "{}", o.stderr);
    o.expect_stderr("at orders/msgs.0.dat.bak offset 0");
    o.expect_stderr("at orders/msgs.5.dat.bak offset 0");
    o.expect_stderr("in an archived slice (the server never reads it)");
    assert!(
        !o.stderr.contains("server refuses to start"),
        "{}",
        o.stderr
    );
    assert_eq!(snapshot(&s), before);
    let mut keep = encrypt_args(&s);
    keep.push("--keep-damaged".into());
    let (c, v) = json(&keep);
    assert_eq!(c, OK, "{v}");
    let kept: Vec<&str> = v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        ["orders/msgs.0.dat.bak", "orders/msgs.5.dat.bak"],
        "{v}"
    );
    assert_eq!(std::fs::read(s.join("orders/msgs.5.dat.bak")).unwrap(), b"");
    assert_eq!(plaintext_records(&s), vec![]);
}

/// The nonce-reuse check of `inspect` and `verify` counts the envelopes of
/// archived slices too: the server never reads them, but a nonce an
/// archived envelope shares with a live one under the same key leaks both
/// plaintexts. Here archived seqs 1..=10 were sealed with the nonces of
/// live seqs 11..=20 (other plaintexts); an archived copy of live messages
/// (the same message under the same nonce twice) is no reuse.
#[test]
fn nonce_reuse_across_archived_and_live_slices_is_reported() {
    use stanctl::crypto::aead::Cipher;
    let (_t, s) = bare_store("plain");
    let ch = s.join("tiny");
    let sealed = |seq: u64, counter: u64| {
        let pt = format!("message {seq}").into_bytes();
        Part::Msg(seq, seal(k1(), "tiny", Cipher::Aes, counter, &pt))
    };
    let live: Vec<Part> = (11..=20).map(|q| sealed(q, q)).collect();
    write_slice(&ch, 2, &live);
    let archived: Vec<Part> = (1..=10).map(|q| sealed(q, q + 10)).collect();
    write_slice(&ch, 1, &archived);
    for ext in ["dat", "idx"] {
        let p = ch.join(format!("msgs.1.{ext}"));
        std::fs::rename(&p, ch.join(format!("msgs.1.{ext}.bak"))).unwrap();
    }
    let nonce = |seq: u64| {
        let mut n = [0xA5u8; 12];
        n[4..].copy_from_slice(&seq.to_be_bytes());
        hex(&n)
    };
    // inspect, with the key and without.
    for key in [Some(k1()), None] {
        let mut args = vec!["store", "inspect", d(&s)];
        args.extend(key.iter().flat_map(|k| ["--key-file", *k]));
        let (code, v) = json(&args);
        assert_eq!(code, OK, "{v}");
        let reuse = v["reused_nonces"].as_array().unwrap();
        assert_eq!(reuse.len(), 1, "{key:?}: {v}");
        assert_eq!(reuse[0]["seqs"], serde_json::json!([1, 11]), "{v}");
        assert_eq!(reuse[0]["count"], 10, "{v}");
        assert_eq!(reuse[0]["nonce"], nonce(11).as_str(), "{v}");
        assert_eq!(reuse[0]["key"], key.map_or(Value::Null, |_| "K1".into()));
    }
    // verify, with the server's key and with encryption off.
    for key in [Some(k1()), None] {
        let (_, v) = verify_json(&s, key);
        let reuse: Vec<&Value> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["what"].as_str().unwrap_or("").contains("used twice"))
            .collect();
        assert_eq!(reuse.len(), 1, "{key:?}: {v}");
        assert_eq!(reuse[0]["channel"], "tiny", "{v}");
        assert_eq!(reuse[0]["first_seq"], 1, "{v}");
        assert_eq!(reuse[0]["last_seq"], 11, "{v}");
        assert_eq!(reuse[0]["count"], 10, "{v}");
    }
    // An archived copy of the live slice: its messages, under their own
    // nonces, a second time.
    std::fs::copy(ch.join("msgs.2.dat"), ch.join("msgs.2.dat.bak")).unwrap();
    for ext in ["dat", "idx"] {
        std::fs::remove_file(ch.join(format!("msgs.1.{ext}.bak"))).unwrap();
    }
    let (_, v) = json(&["store", "inspect", d(&s), "--key-file", k1()]);
    assert_eq!(v["reused_nonces"], serde_json::json!([]), "{v}");
    let (_, v) = verify_json(&s, Some(k1()));
    assert!(
        !v["findings"].to_string().contains("used twice"),
        "{}",
        v["findings"]
    );
}
