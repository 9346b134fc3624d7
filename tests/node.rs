//! Clustered nodes (fixtures/clustered): a node's store and Raft log
//! verified against the reference server's dumps, rewritten as one unit,
//! crash at every step; stand-alone logs through `stanctl raft`.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn clustered() -> PathBuf {
    fixtures().join("clustered")
}

/// The lines of an expected/ file, comments and blank lines removed.
fn expected(name: &str) -> Option<Vec<String>> {
    let t = std::fs::read_to_string(clustered().join("expected").join(name)).ok()?;
    Some(
        t.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

fn setting_args(setting: &str) -> Vec<String> {
    match setting {
        "key1" => vec!["--key-file".into(), k1().into()],
        "key2" => vec!["--key-file".into(), k2().into()],
        _ => vec!["--no-encrypt".into()],
    }
}

fn is_raft_line(l: &str) -> bool {
    ["RAFTLOG\t", "LOG\t", "CONF\t"]
        .iter()
        .any(|p| l.starts_with(p))
}

/// `store verify --list` of a node: (store lines, raft lines).
fn node_list(store: &Path, raft: &Path, setting: &str) -> (Vec<String>, Vec<String>) {
    let mut args = vec![
        "store".to_string(),
        "verify".into(),
        d(store).into(),
        "--cluster-log-path".into(),
        d(raft).into(),
        "--list".into(),
    ];
    args.extend(setting_args(setting));
    let o = run(&args);
    assert!(o.code == OK || o.code == AT_RISK, "{}", o.stderr);
    o.stdout
        .lines()
        .map(str::to_string)
        .partition(|l| !is_raft_line(l))
}

fn log_list(log: &Path, setting: &str) -> Vec<String> {
    let mut args = vec![
        "raft".to_string(),
        "verify".into(),
        d(log).into(),
        "--list".into(),
    ];
    args.extend(setting_args(setting));
    let o = run(&args);
    assert!(o.code == OK || o.code == AT_RISK, "{}", o.stderr);
    o.stdout.lines().map(str::to_string).collect()
}

#[test]
fn verify_list_equals_every_server_dump() {
    let mut compared = 0;
    for node in ["node-a", "node-b"] {
        let dir = clustered().join(node);
        for setting in ["key1", "key2", "no-encrypt"] {
            let raft_want = expected(&format!("{node}.raft.{setting}.tsv"));
            let store_want = expected(&format!("{node}.store.{setting}.tsv"));
            if raft_want.is_none() && store_want.is_none() {
                continue;
            }
            let (store, raft) = node_list(&dir.join("store"), &dir.join("raft"), setting);
            if let Some(w) = raft_want {
                assert_eq!(raft, w, "{node} raft {setting}");
                compared += 1;
            }
            if let Some(w) = store_want {
                assert_eq!(store, w, "{node} store {setting}");
                compared += 1;
            }
        }
    }
    for entry in std::fs::read_dir(clustered().join("expected")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(rest) = name.strip_prefix("raft-") else {
            continue;
        };
        let stem = rest.trim_end_matches(".tsv");
        let (file, setting) = stem.rsplit_once('.').unwrap();
        let got = log_list(&clustered().join("raft").join(file), setting);
        assert_eq!(got, expected(&name).unwrap(), "{name}");
        compared += 1;
    }
    // Every file of expected/: 4 node stores, 5 node logs, 10 stand-alone logs.
    assert_eq!(compared, 19);
}

fn node_copy(node: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&clustered().join(node), &t.path().join(node));
    let n = t.path().join(node);
    (t, n.join("store"), n.join("raft"))
}

/// What the server serves from a node with encryption off (store and log):
/// the lines of `node_list`, with the AppendedAt and timestamps kept.
fn served_plain(store: &Path, raft: &Path) -> (Vec<String>, Vec<String>) {
    node_list(store, raft, "no-encrypt")
}

#[test]
fn decrypting_a_node_serves_what_the_server_served_with_the_key() {
    for (node, key, setting) in [("node-a", k1(), "key1"), ("node-b", k2(), "key2")] {
        let (_t, store, raft) = node_copy(node);
        let decrypt = [
            "store",
            "decrypt",
            d(&store),
            "--key-file",
            key,
            "--cluster-log-path",
            d(&raft),
        ];
        ok(&decrypt);
        let (s, r) = served_plain(&store, &raft);
        assert_eq!(
            r,
            expected(&format!("{node}.raft.{setting}.tsv")).unwrap(),
            "{node}"
        );
        assert_eq!(
            s,
            expected(&format!("{node}.store.{setting}.tsv")).unwrap(),
            "{node}"
        );
        // A rerun changes nothing.
        let before = snapshot(store.parent().unwrap());
        ok(&decrypt);
        assert_eq!(snapshot(store.parent().unwrap()), before, "{node}: rerun");
    }
}

#[test]
fn decrypting_stand_alone_logs_gives_the_plaintext_twin() {
    let plain = expected("raft-plain.log.no-encrypt.tsv").unwrap();
    let t = tempfile::tempdir().unwrap();
    for (file, keys) in [
        ("aes.log", vec![k1()]),
        ("chacha.log", vec![k1()]),
        ("mixed.log", vec![k1(), k2()]),
    ] {
        let log = t.path().join(file);
        std::fs::copy(clustered().join("raft").join(file), &log).unwrap();
        let mut args = vec!["raft", "decrypt", d(&log)];
        for k in &keys {
            args.extend(["--key-file", k]);
        }
        ok(&args);
        let got = log_list(&log, "no-encrypt");
        if file == "mixed.log" {
            // Served with encryption off as the server served it with its keys.
            let mut want = expected("raft-mixed.log.key1.tsv").unwrap();
            let k2 = expected("raft-mixed.log.key2.tsv").unwrap();
            for (w, o) in want.iter_mut().zip(k2) {
                if w.contains("\terr\t") {
                    *w = o;
                }
            }
            assert_eq!(got, want, "{file}");
        } else {
            assert_eq!(got, plain, "{file}");
        }
        // The plaintext twin: every value byte for byte (aes/chacha).
        if file != "mixed.log" {
            assert_eq!(
                log_list(&log, "key1"),
                expected("raft-plain.log.key1.tsv").unwrap()
            );
        }
    }
}

#[test]
fn encrypt_then_decrypt_and_rekey_then_decrypt_round_trip_on_both_ciphers() {
    let want = expected("raft-plain.log.no-encrypt.tsv").unwrap();
    let t = tempfile::tempdir().unwrap();
    for cipher in ["AES", "CHACHA"] {
        let log = t.path().join(format!("{cipher}.log"));
        std::fs::copy(clustered().join("raft/plain.log"), &log).unwrap();
        ok(&[
            "raft",
            "encrypt",
            d(&log),
            "--key-file",
            k1(),
            "--cipher",
            cipher,
        ]);
        // Served under K1 as the plaintext was.
        assert_eq!(
            log_list(&log, "key1"),
            expected("raft-plain.log.key1.tsv").unwrap()
        );
        assert_ne!(
            log_list(&log, "no-encrypt"),
            want,
            "{cipher}: nothing encrypted"
        );
        let size = std::fs::metadata(&log).unwrap().len();
        ok(&[
            "raft",
            "rekey",
            d(&log),
            "--key-file",
            k1(),
            "--new-key-file",
            k2(),
        ]);
        assert_eq!(
            std::fs::metadata(&log).unwrap().len(),
            size,
            "envelopes keep their size"
        );
        assert_eq!(
            log_list(&log, "key2"),
            expected("raft-plain.log.key1.tsv").unwrap()
        );
        ok(&["raft", "decrypt", d(&log), "--key-file", k2()]);
        assert_eq!(log_list(&log, "no-encrypt"), want, "{cipher}");
    }
    // A node: encrypt with ChaCha under K2 after decrypting, then rekey to K1, decrypt.
    let (_t, store, raft) = node_copy("node-a");
    let node = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend([d(&store), "--cluster-log-path", d(&raft)]);
        ok(&v);
    };
    node(&["store", "decrypt", "--key-file", k1()]);
    let plain = served_plain(&store, &raft);
    node(&["store", "encrypt", "--key-file", k2(), "--cipher", "CHACHA"]);
    assert_eq!(node_list(&store, &raft, "key2"), plain);
    node(&[
        "store",
        "rekey",
        "--key-file",
        k2(),
        "--new-key-file",
        k1(),
        "--cipher",
        "AES",
    ]);
    assert_eq!(node_list(&store, &raft, "key1"), plain);
    node(&["store", "decrypt", "--key-file", k1()]);
    assert_eq!(served_plain(&store, &raft), plain);
}

#[test]
fn node_without_its_log_is_named_and_refused() {
    let (_t, store, raft) = node_copy("node-a");
    let o = run(&["store", "verify", d(&store), "--key-file", k1()]);
    assert_eq!(o.code, OK);
    o.expect_stdout("--cluster-log-path");
    let before = snapshot(store.parent().unwrap());
    for op in ["decrypt", "rekey"] {
        let mut args = vec!["store", op, d(&store), "--key-file", k1()];
        if op == "rekey" {
            args.extend(["--new-key-file", k2()]);
        }
        let o = run(&args);
        assert_eq!(o.code, REFUSED, "{op}");
        o.expect_stderr("--cluster-log-path");
    }
    // A log entry no key opens refuses the whole node: nothing written.
    let o = run(&[
        "store",
        "decrypt",
        d(&store),
        "--key-file",
        k2(),
        "--cluster-log-path",
        d(&raft),
    ]);
    assert_eq!(o.code, REFUSED, "{}", o.stderr);
    assert_eq!(snapshot(store.parent().unwrap()), before);
}

#[test]
fn verify_of_a_node_combines_store_and_log() {
    let dir = clustered().join("node-b");
    let (store, raft) = (dir.join("store"), dir.join("raft"));
    let (c, v) = json(&[
        "store",
        "verify",
        d(&store),
        "--key-file",
        k2(),
        "--cluster-log-path",
        d(&raft),
    ]);
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["raft_log"]["failed"], 0);
    // The wrong key: the store's envelopes fail and so do the log's.
    let verify_k1 = [
        "store",
        "verify",
        d(&store),
        "--key-file",
        k1(),
        "--cluster-log-path",
        d(&raft),
    ];
    let (c, v) = json(&verify_k1);
    assert_eq!(c, AT_RISK);
    // Commands 11-40 under K2, less configurations (11, 21, 31) and noops (15, 25, 35).
    assert_eq!(v["raft_log"]["failed"], 24, "{v}");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["what"].as_str().unwrap().contains("cannot apply")));
    // The table's verdict counts the log's entries too, by entry number.
    let o = run(&verify_k1);
    assert_eq!(o.code, AT_RISK);
    o.expect_stdout("the Raft log holds 24 entr(ies) the node cannot apply");
    o.expect_stdout("entries 12-40 (24 entries)");
}

#[test]
fn output_writes_store_and_log_under_dir() {
    let (_t, store, raft) = node_copy("node-b");
    let out = store.parent().unwrap().join("out");
    let before = snapshot(store.parent().unwrap());
    ok(&[
        "store",
        "decrypt",
        d(&store),
        "--key-file",
        k2(),
        "--cluster-log-path",
        d(&raft),
        "--output",
        d(&out),
    ]);
    assert_eq!(
        snapshot(store.parent().unwrap()).len(),
        before.len() + snapshot(&out).len()
    );
    assert!(out.join("raft/test-cluster/raft.log").is_file());
    let (s, r) = served_plain(&out.join("store"), &out.join("raft"));
    assert_eq!(r, expected("node-b.raft.key2.tsv").unwrap());
    assert_eq!(s, expected("node-b.store.key2.tsv").unwrap());
}

#[test]
fn a_held_log_lock_refuses() {
    let (_t, store, raft) = node_copy("node-a");
    let log = raft.join("test-cluster/raft.log");
    let held = stanctl::format::raft::RaftLogLock::acquire(&log).unwrap();
    let o = run(&[
        "store",
        "decrypt",
        d(&store),
        "--key-file",
        k1(),
        "--cluster-log-path",
        d(&raft),
    ]);
    drop(held);
    assert_eq!(o.code, LOCKED, "{}", o.stderr);
    assert_eq!(
        std::fs::read(&log).unwrap(),
        std::fs::read(clustered().join("node-a/raft/test-cluster/raft.log")).unwrap()
    );
}

#[test]
fn crash_at_every_step_of_a_node_is_recoverable() {
    crash_a_node(&[]);
}

/// `--one-pass` on a node: the log is checked first, the store's check
/// stages its slices, then the log is replaced and the slices swapped in;
/// at every step the log serves every entry, and the result is byte for
/// byte the two-pass one.
#[test]
fn crash_at_every_step_of_a_one_pass_node_is_recoverable() {
    crash_a_node(&["--one-pass"]);
}

/// rekey in place: the check writes the new log (`raft.log.stanctl-tmp`)
/// as it judges the entries, the write renames it. At every step the log
/// is whole, under the old key or the new one (the server started with
/// that key serves every entry as before), and a rerun finishes the job
/// byte for byte as an uninterrupted run.
#[test]
fn crash_at_every_step_of_a_node_rekey_is_recoverable() {
    crash_a_rekey(&[]);
}

#[test]
fn crash_at_every_step_of_a_one_pass_node_rekey_is_recoverable() {
    crash_a_rekey(&["--one-pass"]);
}

/// The `raft verify --list` lines of `log` under the key that serves
/// every entry of it, k1 or k2 (none: a panic).
fn served_by_either_key(log: &Path, step: u32) -> Vec<String> {
    for setting in ["key1", "key2"] {
        let mut args = vec![
            "raft".to_string(),
            "verify".into(),
            d(log).into(),
            "--list".into(),
        ];
        args.extend(setting_args(setting));
        let o = run(&args);
        let lines: Vec<String> = o.stdout.lines().map(str::to_string).collect();
        if (o.code == OK || o.code == AT_RISK) && !lines.iter().any(|l| l.contains("\terr\t")) {
            return lines;
        }
    }
    panic!("step {step}: the log is served whole under neither key");
}

fn crash_a_rekey(extra: &[&str]) {
    let args = |store: &Path, raft: &Path| {
        let mut a = vec![
            "store".to_string(),
            "rekey".into(),
            d(store).into(),
            "--key-file".into(),
            k1().into(),
            "--new-key-file".into(),
            k2().into(),
            "--cluster-log-path".into(),
            d(raft).into(),
        ];
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let (_r, rs, rr) = node_copy("node-a");
    let log = |raft: &Path| raft.join("test-cluster/raft.log");
    let before = served_by_either_key(&log(&rr), 0);
    ok(&args(&rs, &rr));
    let want = snapshot(rs.parent().unwrap());
    assert_eq!(served_by_either_key(&log(&rr), 0), before);
    let mut n = 1;
    loop {
        let (_t, store, raft) = node_copy("node-a");
        let o = stanctl()
            .args(args(&store, &raft))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(n > 6, "the run has more steps than {n}");
            assert_eq!(snapshot(store.parent().unwrap()), want);
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        assert_eq!(served_by_either_key(&log(&raft), n), before, "step {n}");
        let o = run(&args(&store, &raft));
        assert!(o.success(), "step {n}: rerun failed: {}", o.stderr);
        assert_eq!(snapshot(store.parent().unwrap()), want, "step {n}");
        n += 1;
        assert!(n < 1000, "the hook never let the run finish");
    }
}

/// `store decrypt STORE --key-file K1 --cluster-log-path RAFT EXTRA...`.
fn decrypt_node_args(store: &Path, raft: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "store".to_string(),
        "decrypt".into(),
        d(store).into(),
        "--key-file".into(),
        k1().into(),
        "--cluster-log-path".into(),
        d(raft).into(),
    ];
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

/// A leftover `raft.log.stanctl-tmp` (a crash while the check wrote it,
/// or anything else at that name) is removed by the next run, whose
/// result is byte for byte that of a run without it; a dry run leaves it.
#[test]
fn a_leftover_log_temp_file_is_removed_and_changes_nothing() {
    let args = decrypt_node_args;
    let (_r, rs, rr) = node_copy("node-a");
    ok(&args(&rs, &rr, &[]));
    let want = snapshot(rs.parent().unwrap());
    let log = clustered().join("node-a/raft/test-cluster/raft.log");
    let whole = std::fs::read(&log).unwrap();
    for (what, bytes) in [
        ("junk", b"not a log".to_vec()),
        ("a partial copy", whole[..whole.len() / 2].to_vec()),
        ("a whole copy", whole.clone()),
    ] {
        for extra in [&[][..], &["--one-pass"][..]] {
            let (_t, store, raft) = node_copy("node-a");
            let tmp = raft.join("test-cluster/raft.log.stanctl-tmp");
            std::fs::write(&tmp, &bytes).unwrap();
            let mut dry = extra.to_vec();
            dry.push("--dry-run");
            ok(&args(&store, &raft, &dry));
            assert_eq!(std::fs::read(&tmp).unwrap(), bytes, "{what}: dry run");
            ok(&args(&store, &raft, extra));
            assert!(!tmp.exists(), "{what} {extra:?}: left");
            assert_eq!(snapshot(store.parent().unwrap()), want, "{what} {extra:?}");
        }
    }
}

/// A write error while the check writes the log's new copy (files limited
/// below the log's size, as on a full disk): the check falls back to
/// judging the log in its own pass, the write meets the same error, and the
/// run exits 74 with the node as it was and no temp file; the rerun
/// without the limit gives the uninterrupted result.
#[test]
fn a_write_error_while_the_check_writes_the_log_changes_nothing() {
    let (_r, rs, rr) = node_copy("node-a");
    ok(&decrypt_node_args(&rs, &rr, &[]));
    let want = snapshot(rs.parent().unwrap());
    for extra in [&[][..], &["--one-pass"][..]] {
        let (_t, store, raft) = node_copy("node-a");
        let before = snapshot(store.parent().unwrap());
        let args = decrypt_node_args(&store, &raft, extra);
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        // The new log is 20 KiB, every store file under 3 KiB: only the
        // log's new copy cannot be written.
        let o = run_with_file_limit(&words, 12 << 10);
        assert_eq!(o.code, IO, "{extra:?}: {}", o.stderr);
        assert!(o.stderr.contains("raft.log"), "{extra:?}: {}", o.stderr);
        assert_eq!(snapshot(store.parent().unwrap()), before, "{extra:?}");
        ok(&args);
        assert_eq!(snapshot(store.parent().unwrap()), want, "{extra:?}: rerun");
    }
}

/// The log's new copy is written during the check; a refusal found after
/// it (here: a store record that does not decode) removes it: the log is
/// as it was and no temp file is left.
#[test]
fn a_store_refusal_after_the_log_was_checked_leaves_no_temp_file() {
    for extra in [&[][..], &["--one-pass"][..]] {
        let (_t, store, raft) = node_copy("node-a");
        let slice = store.join("orders/msgs.1.dat");
        let mut b = std::fs::read(&slice).unwrap();
        let at = b.len() - 5;
        b[at] ^= 0xff;
        std::fs::write(&slice, &b).unwrap();
        let before = snapshot(store.parent().unwrap());
        let o = run(&decrypt_node_args(&store, &raft, extra));
        assert_eq!(o.code, REFUSED, "{extra:?}: {}", o.stderr);
        assert!(o.stderr.contains("bad-record"), "{}", o.stderr);
        assert_eq!(snapshot(store.parent().unwrap()), before, "{extra:?}");
    }
}

fn crash_a_node(extra: &[&str]) {
    let args = decrypt_node_args;
    // The uninterrupted run, in two passes.
    let (_r, rs, rr) = node_copy("node-a");
    ok(&args(&rs, &rr, &[]));
    let want = snapshot(rs.parent().unwrap());
    let args = |store: &Path, raft: &Path| args(store, raft, extra);
    let mut n = 1;
    loop {
        let (_t, store, raft) = node_copy("node-a");
        let o = stanctl()
            .args(args(&store, &raft))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(n > 6, "the run has more steps than {n}");
            assert_eq!(snapshot(store.parent().unwrap()), want);
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        // Readable with the key at every step: the server serves every entry.
        let (_, r) = node_list(&store, &raft, "key1");
        assert_eq!(r, expected("node-a.raft.key1.tsv").unwrap(), "step {n}");
        let o = run(&args(&store, &raft));
        assert!(o.success(), "step {n}: rerun failed: {}", o.stderr);
        assert_eq!(snapshot(store.parent().unwrap()), want, "step {n}");
        n += 1;
        assert!(n < 1000, "the hook never let the run finish");
    }
}

#[test]
fn a_log_path_that_does_not_exist_is_an_error() {
    let (_t, store, raft) = node_copy("node-a");
    let wrong = raft.join("elsewhere");
    for cmd in ["verify", "inspect", "decrypt"] {
        let o = run(&[
            "store",
            cmd,
            d(&store),
            "--key-file",
            k1(),
            "--cluster-log-path",
            d(&wrong),
        ]);
        assert_eq!(o.code, IO, "{cmd}: {}", o.stderr);
        assert!(o.stderr.contains("raft.log"), "{cmd}: {}", o.stderr);
    }
}

#[test]
fn envelopes_stanctl_writes_into_a_log_carry_its_nonce_marker() {
    use stanctl::crypto::nonce::NonceOrigin;
    use stanctl::crypto::raft::nonce_origin;
    use stanctl::format::raft::{RaftError, RaftLog};
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("raft.log");
    std::fs::copy(clustered().join("raft/plain.log"), &log).unwrap();
    ok(&[
        "raft",
        "encrypt",
        d(&log),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
    ]);
    let count = |p: &Path| {
        let mut origins = Vec::new();
        RaftLog::open(p)
            .unwrap()
            .entries(|e| {
                if let Some(o) = nonce_origin(&e.unwrap()) {
                    origins.push(o);
                }
                Ok::<(), RaftError>(())
            })
            .unwrap();
        origins
    };
    let origins = count(&log);
    assert_eq!(origins.len(), 32);
    assert!(
        origins.iter().all(|o| *o == NonceOrigin::Stanctl),
        "{origins:?}"
    );
    // Rekey re-seals the server's envelopes with stanctl's nonces too.
    let (_t, store, raft) = node_copy("node-b");
    ok(&[
        "store",
        "rekey",
        d(&store),
        "--key-file",
        k2(),
        "--new-key-file",
        k1(),
        "--cluster-log-path",
        d(&raft),
    ]);
    let origins = count(&raft.join("test-cluster/raft.log"));
    assert_eq!(origins.len(), 24);
    assert!(
        origins.iter().all(|o| *o == NonceOrigin::Stanctl),
        "{origins:?}"
    );
}

#[test]
fn inspect_of_a_node_reports_its_log() {
    let dir = clustered().join("node-b");
    let (store, raft) = (dir.join("store"), dir.join("raft"));
    let (c, v) = json(&[
        "store",
        "inspect",
        d(&store),
        "--key-file",
        k1(),
        "--key-file",
        k2(),
        "--cluster-log-path",
        d(&raft),
    ]);
    assert_eq!(c, OK);
    let l = &v["raft_log"];
    assert_eq!(
        (l["first"].as_u64(), l["last"].as_u64()),
        (Some(6), Some(40)),
        "{l}"
    );
    assert_eq!(l["entries"], 35);
    assert_eq!(l["plaintext"], 5);
    assert_eq!(l["chacha"], 24);
    assert_eq!(l["opened_by"][0]["opened"], 0);
    assert_eq!(l["opened_by"][1]["opened"], 24);
    assert_eq!(l["reused_nonces"].as_array().unwrap().len(), 0);
    assert_eq!(l["damage"].as_array().unwrap().len(), 0);
    assert!(v["notes"].as_array().unwrap().is_empty(), "{v}");
    // Without the log: a note naming the flag, and no raft_log.
    let (_, v) = json(&["store", "inspect", d(&store), "--key-file", k2()]);
    assert!(v.get("raft_log").is_none());
    assert!(
        v["notes"][0]
            .as_str()
            .unwrap()
            .contains("--cluster-log-path"),
        "{v}"
    );
    let o = run(&[
        "store",
        "inspect",
        d(&store),
        "--key-file",
        k2(),
        "--cluster-log-path",
        d(&raft),
    ]);
    o.expect_stdout("command data: empty 0  plaintext 5  AES 0  ChaCha 24  short 0");
}

#[test]
fn dry_run_and_raft_output_leave_the_source_untouched() {
    let (_t, store, raft) = node_copy("node-a");
    let before = snapshot(store.parent().unwrap());
    let (c, v) = json(&[
        "store",
        "decrypt",
        d(&store),
        "--key-file",
        k1(),
        "--cluster-log-path",
        d(&raft),
        "--dry-run",
    ]);
    assert_eq!(c, OK, "{v}");
    assert_eq!(v["raft_log"]["decrypted"], 24, "{v}");
    assert_eq!(v["raft_log"]["slices_rewritten"], 0, "{v}");
    assert_eq!(snapshot(store.parent().unwrap()), before);
    // `raft decrypt --output FILE`: a new log, the source as it was.
    let log = raft.join("test-cluster/raft.log");
    let out = store.parent().unwrap().join("plain.log");
    ok(&[
        "raft",
        "decrypt",
        d(&log),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert_eq!(
        log_list(&out, "no-encrypt"),
        expected("node-a.raft.key1.tsv").unwrap()
    );
    let o = run(&[
        "raft",
        "decrypt",
        d(&log),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert_eq!(
        o.code, USAGE,
        "an existing --output is refused: {}",
        o.stderr
    );
    let mut after = snapshot(store.parent().unwrap());
    after.retain(|k, _| !k.ends_with("plain.log"));
    assert_eq!(after, before);
}

#[test]
fn a_symlinked_log_is_not_replaced_in_place() {
    let (_t, store, raft) = node_copy("node-a");
    let real = store.parent().unwrap().join("real.log");
    let log = raft.join("test-cluster/raft.log");
    std::fs::rename(&log, &real).unwrap();
    std::os::unix::fs::symlink(&real, &log).unwrap();
    let before = snapshot(store.parent().unwrap());
    let o = run(&[
        "store",
        "decrypt",
        d(&store),
        "--key-file",
        k1(),
        "--cluster-log-path",
        d(&raft),
    ]);
    assert_eq!(o.code, REFUSED, "{}", o.stderr);
    o.expect_stderr("symbolic link");
    assert_eq!(snapshot(store.parent().unwrap()), before);
    assert!(std::fs::symlink_metadata(&log)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// `--keep-damaged --output DIR` on a node: the salvaged store goes to
/// DIR/store beside DIR/raft (as without --keep-damaged), and the copy
/// gives the damaged message the verdict it had.
#[test]
fn salvaged_node_output_keeps_the_node_layout() {
    let (t, store, raft) = node_copy("node-a");
    let dat = store.join("orders/msgs.1.dat");
    let mut b = std::fs::read(&dat).unwrap();
    b[200] ^= 0xff;
    std::fs::write(&dat, &b).unwrap();
    let out = t.path().join("out");
    let o = run(&[
        "store",
        "decrypt",
        d(&store),
        "-k",
        k1(),
        "--cluster-log-path",
        d(&raft),
        "--keep-damaged",
        "-o",
        d(&out),
    ]);
    assert!(o.success(), "{}", o.stderr);
    assert!(out.join("store/server.dat").is_file(), "{}", o.stdout);
    assert!(
        !out.join("server.dat").exists(),
        "store files at DIR's root"
    );
    assert!(out.join("raft/test-cluster/raft.log").is_file());
    let (code, v) = json(&[
        "store",
        "verify",
        d(&out.join("store")),
        "--cluster-log-path",
        d(&out.join("raft")),
        "--no-encrypt",
    ]);
    assert_eq!(code, AT_RISK, "{v}");
    assert_eq!(v["totals"]["failed"], 1, "{v}");
    assert_eq!(v["raft_log"]["failed"], 0, "{v}");
}

/// `--one-pass`'s free-space estimate counts the node's Raft log: its new
/// copy is written beside it while every slice is staged.
#[test]
fn one_pass_space_counts_the_raft_log() {
    let (_t, store, raft) = node_copy("node-a");
    let sum = |dir: &Path, keep: &dyn Fn(&str) -> bool| -> u64 {
        snapshot(dir)
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(_, b)| b.len() as u64)
            .sum()
    };
    let slices = sum(&store, &|k| k.contains("/msgs."));
    let log = sum(&raft, &|k| k.ends_with("raft.log"));
    assert!(log > 0);
    let (c, v) = json(&[
        "store",
        "decrypt",
        d(&store),
        "--key-file",
        k1(),
        "--cluster-log-path",
        d(&raft),
        "--one-pass",
        "--dry-run",
    ]);
    assert_eq!(c, OK, "{v}");
    let sp = &v["staging_space"][0];
    let staged = sp["needed"].as_u64().unwrap() - sp["margin"].as_u64().unwrap();
    assert!(staged >= slices + log, "{staged} < {slices} + {log}: {v}");
}
