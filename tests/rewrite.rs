//! encrypt / decrypt / rekey against the conformance stores.

mod common;
use common::*;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

const REFUSED: i32 = 4;
const LOCKED: i32 = 3;

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

#[track_caller]
fn assert_same_store(got: &Path, want: &Path) {
    let (g, w) = (snapshot(got), snapshot(want));
    assert_eq!(
        g.keys().collect::<Vec<_>>(),
        w.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (k, v) in &w {
        assert!(g[k] == *v, "{k} differs from {}", want.display());
    }
}

fn inspect(dir: &Path, key: &str) -> Value {
    let o = run(&[
        "store",
        "inspect",
        dir.to_str().unwrap(),
        "--key-file",
        key,
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The server with encryption on and `key` delivers every message of `dir`.
#[track_caller]
fn assert_verify_ok(dir: &Path, key: &str) {
    let o = run(&["store", "verify", d(dir), "--key-file", key, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
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

#[test]
fn decrypt_aes_and_chacha_give_plain() {
    for name in ["aes", "chacha"] {
        let (_t, s) = store(name);
        ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
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
        &k1(),
        "--key-file",
        &k2(),
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
            &k1(),
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
            &k1(),
            "--assume-plaintext",
        ];
        ok(&enc);
        let v = inspect(&s, &k1());
        assert_eq!(v["totals"]["payloads"]["plaintext"], 0);
        assert_no_nonce_reuse(&s, &k1());

        // Idempotence: a second run changes and writes nothing.
        let (before, times) = (snapshot(&s), mtimes(&s));
        ok(&enc);
        assert_eq!(snapshot(&s), before);
        assert_eq!(mtimes(&s), times);
        assert_no_nonce_reuse(&s, &k1());

        ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
        assert_same_store(&s, &conformance("plain"));
    }
}

#[test]
fn rekey_back_and_forth_then_decrypt() {
    let (_t, s) = store("aes");
    ok(&[
        "store",
        "rekey",
        d(&s),
        "--key-file",
        &k1(),
        "--new-key-file",
        &k2(),
    ]);
    assert_no_nonce_reuse(&s, &k2());
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    assert_eq!(code(&o), REFUSED, "K1 no longer opens anything");
    ok(&[
        "store",
        "rekey",
        d(&s),
        "--key-file",
        &k2(),
        "--new-key-file",
        &k1(),
        "--cipher",
        "CHACHA",
    ]);
    assert_no_nonce_reuse(&s, &k1());
    let v = inspect(&s, &k1());
    assert_eq!(v["totals"]["payloads"]["aes"], 0);
    ok(&[
        "store",
        "rekey",
        d(&s),
        "--key-file",
        &k1(),
        "--new-key-file",
        &k2(),
    ]);
    assert_no_nonce_reuse(&s, &k2());
    ok(&["store", "decrypt", d(&s), "--key-file", &k2()]);
    assert_same_store(&s, &conformance("plain"));
}

#[test]
fn unopened_envelopes_refuse_with_zero_writes() {
    let (_t, s) = store("aes");
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k2(), "--json"]);
    assert_eq!(code(&o), REFUSED);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "stanctl.rewrite/1");
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
        &k2(),
        "--assume-plaintext",
    ]);
    assert_eq!(code(&o), REFUSED);
    assert_same_store(&s, &conformance("aes"));
}

#[test]
fn damaged_stores_refuse() {
    for name in ["damaged-crc", "damaged-truncated"] {
        let (_t, s) = store(name);
        let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
        assert_eq!(code(&o), REFUSED, "{name}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("stanctl store verify"));
        assert_same_store(&s, &conformance(name));
    }
}

#[test]
fn missing_index_is_rebuilt() {
    let (_t, s) = store("damaged-noidx");
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
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
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    assert_eq!(code(&o), REFUSED);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Raft"));
    assert_eq!(snapshot(&s), before);
}

#[test]
fn lock_held_by_another_process_refuses() {
    let (_t, s) = store("aes");
    let holder = LockHolder::new(&s);
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    let dry = run(&["store", "decrypt", d(&s), "--key-file", &k1(), "--dry-run"]);
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
        &k1(),
        "--dry-run",
        "--json",
    ]);
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
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
        &k1(),
        "--output",
        d(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["output"], d(&out));
    assert_same_store(&s, &conformance("aes"));
    assert_same_store(&out, &conformance("plain"));
    // A non-empty output directory is refused.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k1(),
        "--output",
        d(&out),
    ]);
    assert!(!o.status.success());
}

#[test]
fn symlinked_channel_refuses_in_place() {
    let (t, s) = store("aes");
    let real = t.path().join("orders-real");
    std::fs::rename(s.join("orders"), &real).unwrap();
    std::os::unix::fs::symlink(&real, s.join("orders")).unwrap();
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    assert_eq!(code(&o), REFUSED);
    assert!(String::from_utf8_lossy(&o.stderr).contains("symbolic link"));
    assert_same_store(&real, &conformance("aes").join("orders"));
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn read_only_channel_dir_fails_cleanly() {
    // root bypasses directory permissions, so this cannot fail as root: the
    // assertion is skipped there (read_only_mount_fails_cleanly covers root).
    if is_root() {
        eprintln!("skipped: running as root, permissions are not enforced");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let (_t, s) = store("aes");
    let ch = s.join("orders");
    std::fs::set_permissions(&ch, std::fs::Permissions::from_mode(0o555)).unwrap();
    let o = run(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    std::fs::set_permissions(&ch, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!o.status.success());
    assert_readable(&s);
}

#[test]
fn read_only_mount_fails_cleanly() {
    // A read-only file system stops root too. Needs mount(2): as root only,
    // and skipped where the sandbox forbids bind mounts.
    if !is_root() {
        eprintln!(
            "skipped: bind mounts need root (read_only_channel_dir_fails_cleanly covers users)"
        );
        return;
    }
    let (t, s) = store("aes");
    let ro = t.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mount = |args: &[&str]| {
        std::process::Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|st| st.success())
    };
    if !mount(&["--bind", d(&s), d(&ro)]) {
        eprintln!("skipped: bind mount not permitted here");
        return;
    }
    let remounted = mount(&["-o", "remount,bind,ro", d(&ro)]);
    let o = remounted.then(|| run(&["store", "decrypt", d(&ro), "--key-file", &k1()]));
    let _ = std::process::Command::new("umount").arg(&ro).status();
    let Some(o) = o else {
        eprintln!("skipped: read-only remount not permitted here");
        return;
    };
    assert_eq!(code(&o), 74, "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
    assert_same_store(&s, &conformance("aes"));
}

/// The server can read every message: no damage beyond a missing index
/// (rebuilt from the .dat), no envelope K1 fails to open, no temp file.
#[track_caller]
fn assert_readable(s: &Path) {
    let v = inspect(s, &k1());
    for dmg in v["damage"].as_array().unwrap() {
        assert_eq!(dmg["kind"], "index-missing", "unexpected damage {dmg}");
    }
    assert_eq!(v["totals"]["unopened"]["wrong_key"], 0, "{v}");
}

fn no_temp_files(s: &Path) -> bool {
    snapshot(s).keys().all(|k| !k.ends_with(".stanctl-tmp"))
}

#[test]
fn full_disk_leaves_store_readable_and_rerun_finishes() {
    let (_t, s) = store("aes");
    // Files may not grow past 50 KB: the `big` slice (~145 KB) fails.
    let o = run_with_file_limit(&["store", "decrypt", d(&s), "--key-file", &k1()], 50_000);
    assert_eq!(
        o.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_readable(&s);
    assert!(no_temp_files(&s));
    assert_eq!(
        std::fs::read(s.join("big/msgs.1.dat")).unwrap(),
        std::fs::read(conformance("aes").join("big/msgs.1.dat")).unwrap()
    );
    // Finished slices now hold plaintext lookalikes (seqs 11/22/33).
    ok(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &k1(),
        "--assume-plaintext",
    ]);
    assert_same_store(&s, &conformance("plain"));
}

#[test]
fn crash_at_every_step_is_recoverable() {
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
    let mut n = 1;
    loop {
        let (_t, s) = store("aes");
        let o = stanctl()
            .args(args(&s))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(n > 20, "the run has more steps than {n}");
            assert_same_store(&s, &conformance("plain"));
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        assert_readable(&s);
        let o = stanctl().args(args(&s)).output().unwrap();
        assert!(o.status.success(), "step {n}: rerun failed: {o:?}");
        assert_same_store(&s, &conformance("plain"));
        assert!(no_temp_files(&s));
        n += 1;
        assert!(n < 1000, "the hook never let the run finish");
    }
}

#[test]
fn zero_tail_is_dropped_and_modes_preserved() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, s) = store("damaged-zero-tail");
    let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
    let dat = s.join("orders/msgs.2.dat");
    std::fs::set_permissions(&dat, std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
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
        ok(&["store", "decrypt", d(&dir), "--key-file", &k1()]);
    }
    assert_same_store(&dir, &conformance("plain"));
}

#[test]
fn rewritten_files_keep_their_owner() {
    // A store owned by the server's user and rewritten by root must stay the
    // server's: otherwise the server cannot open its slices for writing.
    if !is_root() {
        eprintln!("skipped: only root can give files to another user");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let (_t, s) = store("aes");
    for e in std::fs::read_dir(s.join("orders")).unwrap() {
        std::os::unix::fs::chown(e.unwrap().path(), Some(4321), Some(4322)).unwrap();
    }
    ok(&["store", "decrypt", d(&s), "--key-file", &k1()]);
    for e in std::fs::read_dir(s.join("orders")).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4322), "{}", p.display());
    }
}
