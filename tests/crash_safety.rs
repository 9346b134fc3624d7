//! Crash safety of the rewrites: a crash, a full disk or a read-only store at
//! any write step leaves every slice readable, and a rerun finishes the job.

mod common;
use common::*;

use sha2::{Digest, Sha256};
use stanctl::crypto::aead::Cipher;
use std::path::Path;

/// Every file of the store, searched for key material: the key bytes, their
/// master hash and the channel keys.
#[track_caller]
fn assert_no_key_bytes_in(s: &Path) {
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for k in [k1(), k2()] {
        let mut m = std::fs::read(k).unwrap();
        if m.last() == Some(&b'\n') {
            m.pop();
        }
        needles.push(Sha256::digest(&m).to_vec());
        needles.push(m);
    }
    for (f, b) in snapshot(s) {
        for n in &needles {
            assert!(
                !b.windows(n.len()).any(|w| w == &n[..]),
                "{f} holds key material"
            );
        }
    }
}

/// The server can read every message: no damage beyond a missing index
/// (rebuilt from the .dat), no envelope K1 fails to open, no temp file.
#[track_caller]
fn assert_readable(s: &Path) {
    let v = inspect(s, k1());
    for dmg in v["damage"].as_array().unwrap() {
        assert_eq!(dmg["kind"], "index-missing", "unexpected damage {dmg}");
    }
    assert_eq!(v["totals"]["unopened"]["wrong_key"], 0, "{v}");
}

#[test]
fn temp_path_is_a_directory_so_the_write_fails() {
    // Creating msgs.1.dat.stanctl-tmp fails (EISDIR): works as root too.
    let (_t, s) = store("plain");
    let blocker = s.join("big/msgs.1.dat.stanctl-tmp");
    std::fs::create_dir(&blocker).unwrap();
    let encrypt = [
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
        "--assume-plaintext",
    ];
    let o = run(&encrypt);
    assert_eq!(o.code, IO, "{}", o.stderr);
    o.expect_stderr("big/msgs.1.dat.stanctl-tmp");
    o.expect_stderr("run the same command again");
    // The slice it could not write is untouched; the others are whole.
    assert_eq!(
        std::fs::read(s.join("big/msgs.1.dat")).unwrap(),
        std::fs::read(conformance("plain").join("big/msgs.1.dat")).unwrap()
    );
    assert!(s.join("big/msgs.1.idx").exists());
    assert_no_key_bytes_in(&s);
    // Readable: every envelope opens with K1, no damage but missing indexes.
    let (code, v) = json(&["store", "inspect", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0);
    assert_eq!(v["totals"]["messages"], 83);
    assert_eq!(v["totals"]["unopened"]["wrong_key"], 0, "{v}");
    for k in damage_kinds(&v) {
        assert_eq!(k, "index-missing", "{v}");
    }
    std::fs::remove_dir(&blocker).unwrap();
    assert!(no_temp_files(&s));
    let o = run(&encrypt);
    assert_eq!(o.code, 0, "rerun finishes: {}", o.stderr);
    let (code, v) = json(&["store", "inspect", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0);
    assert_eq!(v["totals"]["payloads"]["plaintext"], 0, "{v}");
}

#[test]
fn disk_full_during_encrypt_leaves_no_key_bytes_behind() {
    let (_t, s) = store("plain");
    let args = [
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "CHACHA",
        "--assume-plaintext",
    ];
    let o = run_with_file_limit(&args, 50_000);
    let err = &o.stderr;
    assert_eq!(o.code, IO, "{err}");
    assert!(err.contains("big/msgs.1"), "{err}");
    assert!(no_temp_files(&s));
    assert_no_key_bytes_in(&s);
    assert_eq!(
        std::fs::read(s.join("big/msgs.1.dat")).unwrap(),
        std::fs::read(conformance("plain").join("big/msgs.1.dat")).unwrap()
    );
}

/// Leftover temp files (from a crash) that are links pointing outside the
/// store are removed as links; their targets are never written.
#[test]
fn leftover_temp_symlink_is_not_written_through() {
    let (t, s) = store("aes");
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, s.join("orders/msgs.1.dat.stanctl-tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, s.join("orders/msgs.1.idx.stanctl-tmp")).unwrap();
    run_ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(no_temp_files(&s));
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
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    std::fs::set_permissions(&ch, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!o.success());
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
    let o = remounted.then(|| run(&["store", "decrypt", d(&ro), "--key-file", k1()]));
    let _ = std::process::Command::new("umount").arg(&ro).status();
    let Some(o) = o else {
        eprintln!("skipped: read-only remount not permitted here");
        return;
    };
    assert_eq!(o.code, IO, "{}", o.stderr);
    let err = &o.stderr;
    assert!(err.contains("Read-only file system"), "{err}");
    assert_same_store(&s, &conformance("aes"));
}

#[test]
fn full_disk_leaves_store_readable_and_rerun_finishes() {
    let (_t, s) = store("aes");
    // Files may not grow past 50 KB: the `big` slice (~145 KB) fails.
    let o = run_with_file_limit(&["store", "decrypt", d(&s), "--key-file", k1()], 50_000);
    assert_eq!(o.code, IO, "{}", o.stderr);
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
        k1(),
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
            k1().into(),
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
        let o = run(&args(&s));
        assert!(o.success(), "step {n}: rerun failed: {}", o.stderr);
        assert_same_store(&s, &conformance("plain"));
        assert!(no_temp_files(&s));
        n += 1;
        assert!(n < 1000, "the hook never let the run finish");
    }
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
    ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    for e in std::fs::read_dir(s.join("orders")).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4322), "{}", p.display());
    }
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
            k1().into(),
            "--assume-plaintext".into(),
        ]
    };
    for n in 1.. {
        let (_t, s) = bare_store("aes");
        let ch = s.join("edge");
        write_slice(
            &ch,
            1,
            &[Part::Msg(1, seal(k1(), "edge", Cipher::Aes, 1, &p))],
        );
        write_slice(
            &ch,
            2,
            &[Part::Msg(
                2,
                seal(k1(), "edge", Cipher::ChaCha, 2, b"second"),
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
        let o = run(&args(&s));
        assert!(
            o.success(),
            "crash before step {n}, then the rerun: exit {}: {}",
            o.code,
            o.stderr
        );
        assert!(n < 200);
    }
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
            k1().into(),
            "--assume-plaintext".into(),
        ]
    };
    let fresh = || {
        let (t, s) = store("damaged-zero-tail");
        ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
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
        let (c, v) = verify_json(&s, Some(k1()));
        assert!(c < 2, "step {n}: the server would not start: {v}");
        let i = inspect(&s, k1());
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
        let o = run(&args(&s));
        assert!(o.success(), "step {n}: rerun: {}", o.stderr);
        assert_eq!(snapshot(&s), want, "step {n}: rerun differs");
        assert!(n < 1000);
    }
}

/// Encrypt killed before every write step on a store with archived slices
/// (a `msgs.1.dat.bak`/`.idx.bak` pair and a lone `msgs.2.dat.bak`): the
/// server still starts, the pair never loses a file (each archived file is
/// replaced by one rename, never removed first), the lone `.dat.bak` never
/// gets an index, and the rerun gives the uninterrupted result, with no
/// plaintext left in any archived file.
#[test]
fn crash_at_every_step_of_encrypt_with_archived_slices() {
    crash_encrypt_with_archived_slices(&[]);
}

/// The same with `--one-pass` (archived slices staged and swapped in like
/// the live ones): the result is byte for byte the two-pass one.
#[test]
fn crash_at_every_step_of_a_one_pass_encrypt_with_archived_slices() {
    crash_encrypt_with_archived_slices(&["--one-pass"]);
}

fn crash_encrypt_with_archived_slices(extra: &[&str]) {
    let args = |s: &Path, extra: &[&str]| {
        let mut a = vec![
            "store".to_string(),
            "encrypt".into(),
            d(s).into(),
            "--cipher".into(),
            "AES".into(),
            "--key-file".into(),
            k1().into(),
            "--assume-plaintext".into(),
        ];
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let fresh = || {
        let (t, s) = store("plain");
        std::fs::remove_dir_all(s.join("big")).unwrap();
        for ext in ["dat", "idx"] {
            std::fs::copy(
                s.join(format!("orders/msgs.1.{ext}")),
                s.join(format!("orders/msgs.1.{ext}.bak")),
            )
            .unwrap();
        }
        std::fs::copy(
            s.join("sensors.temp/msgs.2.dat"),
            s.join("sensors.temp/msgs.2.dat.bak"),
        )
        .unwrap();
        (t, s)
    };
    // The uninterrupted two-pass run.
    let (_tw, want) = fresh();
    stanctl().args(args(&want, &[])).assert().success();
    let v = inspect(&want, k1());
    assert_eq!(v["plaintext_on_disk"]["messages"], 0, "{v}");
    let want = snapshot(&want);
    for n in 1.. {
        let (_t, s) = fresh();
        let o = stanctl()
            .args(args(&s, extra))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            assert!(n > 20);
            assert_eq!(snapshot(&s), want);
            assert!(no_temp_files(&s));
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        let (c, v) = verify_json(&s, Some(k1()));
        assert!(c < 2, "step {n}: the server would not start: {v}");
        for f in ["orders/msgs.1.dat.bak", "orders/msgs.1.idx.bak"] {
            assert!(s.join(f).exists(), "step {n}: {f} is gone");
        }
        assert!(!s.join("sensors.temp/msgs.2.idx.bak").exists(), "step {n}");
        let o = run(&args(&s, extra));
        assert!(o.success(), "step {n}: rerun: {}", o.stderr);
        assert_eq!(snapshot(&s), want, "step {n}: rerun differs");
        assert!(no_temp_files(&s), "step {n}: leftovers after the rerun");
        assert!(n < 1000);
    }
}

/// `--one-pass` in place (a rekey of the mixed store: the check stages
/// each slice in its channel's `.stanctl-staging` as it judges it) killed
/// before every write step, crashes during the staging included: until
/// the first swap the store's own files are byte for byte as they were
/// (only staging directories are added, which the server skips); at every
/// step the server starts and every envelope opens with K1 or K2; rerunning
/// the same command gives the uninterrupted result, which is byte for
/// byte the two-pass result, and leaves no staging directory.
#[test]
fn crash_at_every_step_of_a_one_pass_in_place() {
    let args = |s: &Path| {
        vec![
            "store".to_string(),
            "rekey".into(),
            d(s).into(),
            "--key-file".into(),
            k1().into(),
            "--new-key-file".into(),
            k2().into(),
            "--one-pass".into(),
        ]
    };
    let (_tw, w) = store("mixed");
    let src = snapshot(&w);
    let two_pass = args(&w);
    run_ok(&two_pass[..two_pass.len() - 1]);
    let want = snapshot(&w);
    let outside = |s: &Path| {
        let mut m = snapshot(s);
        m.retain(|k, _| !k.contains(".stanctl-staging"));
        m
    };
    let (mut while_staging, mut while_swapping) = (0, 0);
    for n in 1.. {
        let (_t, s) = store("mixed");
        let o = stanctl()
            .args(args(&s))
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        assert_no_secrets(&o);
        if o.status.success() {
            assert!(n > 20, "the run has more steps than {n}");
            assert_eq!(snapshot(&s), want, "one pass differs from two passes");
            assert!(no_temp_files(&s));
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        if outside(&s) == src {
            while_staging += usize::from(!no_staging_dirs(&s));
        } else {
            while_swapping += 1;
        }
        let (c, v) = verify_json(&s, Some(k2()));
        assert!(c < 2, "step {n}: the server would not start: {v}");
        let (c, v) = json(&[
            "store",
            "inspect",
            d(&s),
            "--key-file",
            k1(),
            "--key-file",
            k2(),
        ]);
        assert_eq!(c, 0, "step {n}");
        assert_eq!(v["totals"]["unopened"]["wrong_key"], 0, "step {n}: {v}");
        for dmg in v["damage"].as_array().unwrap() {
            assert_eq!(dmg["kind"], "index-missing", "step {n}: {dmg}");
        }
        let o = run(&args(&s));
        assert!(o.success(), "step {n}: rerun failed: {}", o.stderr);
        assert_eq!(snapshot(&s), want, "step {n}: rerun differs");
        assert!(no_temp_files(&s), "step {n}: leftovers after the rerun");
        assert!(n < 1000, "the hook never let the run finish");
    }
    assert!(while_staging > 5, "no crash during the staging");
    assert!(while_swapping > 5, "no crash during the swap");
}

/// The crash hook exists only in test builds. The binary `cargo build` and
/// `cargo install` make (no `test-hooks` feature) must not know the
/// variable. This builds the feature-less binary in debug, in its own target
/// directory (so it neither waits for nor replaces the test binary), and
/// searches its bytes. A debug build is the stricter check: the hook is
/// removed by `cfg`, before any optimisation, and opt-level 0 removes less
/// dead code than release with LTO, so a string absent here is absent from
/// the release binary too; and it reuses the debug dependencies instead of
/// an LTO build of everything.
#[test]
fn the_installed_binary_has_no_crash_hook() {
    const HOOK: &[u8] = b"STANCTL_TEST_ABORT_AT_STEP";
    let has = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        b.windows(HOOK.len()).any(|w| w == HOOK)
    };
    // The control: the test build has it.
    assert!(has(Path::new(env!("CARGO_BIN_EXE_stanctl"))));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = manifest.join("target").join("hookless");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = std::process::Command::new(cargo)
        .current_dir(manifest)
        .args(["build", "--quiet", "--bin", "stanctl", "--target-dir"])
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bin = target.join("debug").join("stanctl");
    assert!(!has(&bin), "{} holds the crash hook", bin.display());
    // And the variable does nothing there.
    let (_t, s) = store("aes");
    let o = std::process::Command::new(&bin)
        .args(["store", "decrypt"])
        .arg(&s)
        .arg("--key-file")
        .arg(k1())
        .env("STANCTL_TEST_ABORT_AT_STEP", "3")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_same_store(&s, &conformance("plain"));
}

/// One-pass `--output` (rekey opens every envelope once, during the check,
/// and stages each slice under `OUT/.stanctl-staging`): aborted before every
/// write step, the source never changes, and what is left is nothing, an
/// empty directory, an unfinished output (marked by the staging directory,
/// which a rerun of the same command clears and writes anew) or the complete
/// output; the rerun gives the uninterrupted result, which is byte for byte
/// the in-place result.
#[test]
fn crash_at_every_step_of_a_one_pass_output() {
    let (t, s) = store("mixed");
    let src = snapshot(&s);
    let out = t.path().join("out");
    let args = [
        "store",
        "rekey",
        d(&s),
        "--key-file",
        k1(),
        "--new-key-file",
        k2(),
        "--output",
        d(&out),
    ];
    run_ok(&args);
    let want = snapshot(&out);
    assert!(!out.join(".stanctl-staging").exists());
    let (c, v) = verify_json(&out, Some(k2()));
    assert_eq!(c, 0, "{v}");
    // The same binary in place (two passes) writes the same bytes.
    let (_t2, s2) = store("mixed");
    run_ok(&[
        "store",
        "rekey",
        d(&s2),
        "--key-file",
        k1(),
        "--new-key-file",
        k2(),
    ]);
    assert_eq!(
        snapshot(&s2),
        want,
        "one pass --output differs from in place"
    );
    std::fs::remove_dir_all(&out).unwrap();
    for n in 1.. {
        let o = stanctl()
            .args(args)
            .env("STANCTL_TEST_ABORT_AT_STEP", n.to_string())
            .output()
            .unwrap();
        assert_no_secrets(&o);
        if o.status.success() {
            assert!(n > 20, "the run has more steps than {n}");
            assert_eq!(snapshot(&out), want);
            break;
        }
        assert_eq!(o.status.code(), None, "step {n}: expected an abort");
        assert_eq!(snapshot(&s), src, "step {n}: the source changed");
        let marked = out.join(".stanctl-staging").is_dir();
        let complete = out.exists() && !marked && snapshot(&out) == want;
        if !complete {
            let empty = !out.exists() || snapshot(&out).is_empty();
            assert!(marked || empty, "step {n}: unmarked partial output");
            let o = run(&args);
            assert!(o.success(), "step {n}: rerun failed: {}", o.stderr);
            assert_eq!(snapshot(&out), want, "step {n}: rerun differs");
        }
        std::fs::remove_dir_all(&out).ok();
        assert!(n < 1000, "the hook never let the run finish");
    }
}

/// A refused one-pass `--output` run removes what it staged: an output
/// directory that existed (empty) stays empty, one it created is gone.
#[test]
fn refused_one_pass_output_leaves_nothing() {
    let (t, s) = store("mixed");
    let src = snapshot(&s);
    let out = t.path().join("empty");
    std::fs::create_dir(&out).unwrap();
    // K2's envelopes (seq 31-40, `big`) no given key opens: refused.
    for o in [out.clone(), t.path().join("a/b")] {
        let r = run(&[
            "store",
            "decrypt",
            d(&s),
            "--key-file",
            k1(),
            "--output",
            d(&o),
        ]);
        assert_eq!(r.code, 4, "{}", r.stderr);
        assert_eq!(snapshot(&s), src);
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    assert!(!t.path().join("a").exists());
}

/// A full disk while `--one-pass` stages (files may not grow past 50 KB:
/// the `big` slice, ~145 KB, fails): exit 74, and since nothing of the
/// store changes before every slice is staged, every file is byte for byte
/// as it was (the slices staged before the failure included) and no
/// staging directory is left; the rerun without the limit finishes.
#[test]
fn disk_full_during_one_pass_staging_leaves_the_store_as_it_was() {
    let (_t, s) = store("plain");
    let before = snapshot(&s);
    let args = [
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
        "--assume-plaintext",
        "--one-pass",
    ];
    let o = run_with_file_limit(&args, 50_000);
    assert_eq!(o.code, IO, "{}", o.stderr);
    assert!(o.stderr.contains("big/"), "{}", o.stderr);
    assert_eq!(snapshot(&s), before);
    assert!(no_temp_files(&s));
    assert_no_key_bytes_in(&s);
    run_ok(&args);
    let v = inspect(&s, k1());
    assert_eq!(v["totals"]["payloads"]["plaintext"], 0, "{v}");
    assert!(no_temp_files(&s));
}
