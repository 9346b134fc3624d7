//! Hostile and broken input, through the binary: every case checks the exit
//! code, a clear error naming the file (and offset where there is one), no
//! panic text, no key material in any output, and for write commands that
//! the store is byte-for-byte unchanged (or, after a write failure, still
//! readable with every message).

mod common;
use common::*;

use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const AT_RISK: i32 = 1;
const WONT_START: i32 = 2;
const LOCKED: i32 = 3;
const REFUSED: i32 = 4;
const USAGE: i32 = 64;
const IO: i32 = 74;

fn k1() -> &'static str {
    static K: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    K.get_or_init(|| fixtures().join("k1.key").display().to_string())
}

fn k2() -> &'static str {
    static K: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    K.get_or_init(|| fixtures().join("k2.key").display().to_string())
}

fn store(name: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&conformance(name), &dir);
    (tmp, dir)
}

fn d(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Strings that must never appear in any output: the key material, and its
/// master hash (the server's AES/ChaCha key derivation input).
fn secrets() -> Vec<String> {
    let mut v = vec![
        "conformance-key-1".to_string(),
        "conformance-key-2".to_string(),
        "1e186e43bf058a1189dfc5b4e2b6faa13f88ede219aa1dea8643109d3351426c".to_string(),
    ];
    for k in [k1(), k2()] {
        let mut m = std::fs::read(k).unwrap();
        if m.last() == Some(&b'\n') {
            m.pop();
        }
        v.push(hex(&Sha256::digest(&m)));
    }
    v
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn stanctl() -> Command {
    let mut c = Command::cargo_bin("stanctl").unwrap();
    c.env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env_remove("STANCTL_TEST_ABORT_AT_STEP")
        .env("RUST_BACKTRACE", "0");
    c
}

#[track_caller]
fn check_output(args: &[&str], code: i32, stdout: &str, stderr: &str) {
    for t in [stdout, stderr] {
        assert!(
            !t.contains("panicked") && !t.contains("RUST_BACKTRACE"),
            "{args:?}: panic: {stderr}"
        );
        for s in secrets() {
            assert!(!t.contains(&s), "{args:?}: output contains secret {s}");
        }
    }
    assert!(code >= 0, "{args:?}: killed by a signal: {stderr}");
    if code >= 3 {
        let first = stderr
            .lines()
            .find(|l| l.starts_with("stanctl: error:") || l.starts_with("stanctl: refusing"));
        assert!(
            first.is_some(),
            "{args:?}: exit {code} without an error line: {stderr}"
        );
    }
}

#[track_caller]
fn run(args: &[&str]) -> Out {
    let o = stanctl()
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    check_output(args, out.code, &out.stdout, &out.stderr);
    out
}

#[track_caller]
fn json(args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let o = run(&a);
    let v = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {} {}", o.stdout, o.stderr));
    (o.code, v)
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().unwrap() != ".rootdir.lck" {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let bytes = if ft.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    // Symlinks and FIFOs: their identity, never their content.
                    format!("{ft:?} -> {:?}", std::fs::read_link(&p).ok()).into_bytes()
                };
                out.insert(rel, bytes);
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

fn damage_kinds(v: &Value) -> Vec<String> {
    v["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Every write command, in place, refuses (exit `want`) and leaves the store
/// byte-identical; the first error line names `needle`.
#[track_caller]
fn writes_refused(s: &Path, want: i32, needle: &str) {
    let before = snapshot(s);
    let cmds: [Vec<&str>; 4] = [
        vec!["store", "decrypt", d(s), "--key-file", k1()],
        vec![
            "store",
            "encrypt",
            d(s),
            "--key-file",
            k1(),
            "--cipher",
            "AES",
        ],
        vec![
            "store",
            "rekey",
            d(s),
            "--key-file",
            k1(),
            "--new-key-file",
            k2(),
        ],
        vec!["store", "decrypt", d(s), "--key-file", k1(), "--dry-run"],
    ];
    for c in cmds.iter() {
        let o = run(c);
        if c[1] == "encrypt" && o.code == 0 {
            // Every envelope is already under K1: nothing to write, so
            // nothing to refuse either.
            assert!(o.stdout.contains("nothing to do"), "{}", o.stdout);
        } else {
            assert_eq!(o.code, want, "{c:?}: {}", o.stderr);
            assert!(
                o.stderr.contains(needle),
                "{c:?}: no {needle:?} in {}",
                o.stderr
            );
        }
        assert_eq!(snapshot(s), before, "{c:?} changed the store");
    }
}

/// No envelope left that K1 opens, and none that no key opens.
#[track_caller]
fn assert_decrypted(s: &Path) {
    let (code, v) = json(&["store", "inspect", d(s), "--key-file", k1()]);
    assert_eq!(code, 0);
    assert_eq!(v["totals"]["opened"][0]["opened"], 0, "{v}");
    assert_eq!(v["totals"]["unopened"]["wrong_key"], 0, "{v}");
}

fn set_u32(p: &Path, at: usize, v: u32) {
    let mut b = std::fs::read(p).unwrap();
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    std::fs::write(p, b).unwrap();
}

// ---------------------------------------------------------------- records

#[test]
fn dat_size_field_up_to_u32_max() {
    for size in [0x0001_0000u32, 0x7fff_ffff, 0xffff_fffe, 0xffff_ffff] {
        let (_t, s) = store("aes");
        // The first record of orders/msgs.2.dat starts right after the version.
        set_u32(&s.join("orders/msgs.2.dat"), 4, size);
        let (code, v) = json(&["store", "inspect", d(&s)]);
        assert_eq!(code, 0);
        let dmg = v["damage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == "truncated-record")
            .unwrap_or_else(|| panic!("{size:#x}: {v}"));
        assert_eq!(dmg["file"], "orders/msgs.2.dat");
        assert_eq!(dmg["offset"], 4);
        assert!(dmg["detail"].as_str().unwrap().contains(&size.to_string()));
        // The index is intact, so the server trusts it and each message fails alone.
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, AT_RISK, "{}", o.stdout);
        assert!(o.stdout.contains("orders/msgs.2.dat"), "{}", o.stdout);
        // Without the index the server must rebuild: unexpected EOF, no start.
        std::fs::remove_file(s.join("orders/msgs.2.idx")).unwrap();
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, WONT_START, "{}", o.stdout);
        assert!(o.stdout.contains("offset 4"), "{}", o.stdout);
        assert!(o.stdout.contains("truncate"), "remedy named: {}", o.stdout);
        writes_refused(&s, REFUSED, "orders/msgs.2.dat offset 4");
    }
}

#[test]
fn record_longer_than_its_file() {
    let (_t, s) = store("aes");
    let p = s.join("orders/msgs.3.dat");
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (code, v) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    assert!(damage_kinds(&v).contains(&"truncated-record".into()), "{v}");
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert!(code == AT_RISK || code == WONT_START);
    writes_refused(&s, REFUSED, "truncated-record");
}

#[test]
fn wrong_file_version_in_dat() {
    for ver in [0u32, 2, 0xffff_ffff] {
        let (_t, s) = store("aes");
        set_u32(&s.join("orders/msgs.1.dat"), 0, ver);
        let (code, v) = json(&["store", "inspect", d(&s)]);
        assert_eq!(code, 0);
        let dmg = &v["damage"].as_array().unwrap()[0];
        assert_eq!(dmg["kind"], "unsupported-version", "{v}");
        assert_eq!(dmg["file"], "orders/msgs.1.dat");
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, WONT_START, "{}", o.stdout);
        assert!(o.stdout.contains("orders/msgs.1.dat"));
        writes_refused(&s, REFUSED, "unsupported-version");
    }
}

#[test]
fn wrong_file_version_in_idx() {
    for ver in [0u32, 2, 0xffff_ffff] {
        let (_t, s) = store("aes");
        set_u32(&s.join("orders/msgs.1.idx"), 0, ver);
        let (code, _) = json(&["store", "inspect", d(&s)]);
        assert_eq!(code, 0);
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, WONT_START, "{}", o.stdout);
        assert!(o.stdout.contains("orders/msgs.1.idx"), "{}", o.stdout);
        assert!(o.stdout.contains("remove the .idx"), "{}", o.stdout);
        // A rewrite replaces the index anyway: decrypting writes a good one.
        let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let (code, _) = json(&["store", "verify", d(&s), "--no-encrypt"]);
        assert_eq!(code, 0);
    }
}

#[test]
fn empty_files() {
    for f in [
        "orders/msgs.1.dat",
        "orders/msgs.1.idx",
        "orders/subs.dat",
        "clients.dat",
        "server.dat",
    ] {
        let (_t, s) = store("aes");
        std::fs::write(s.join(f), b"").unwrap();
        let (code, v) = json(&["store", "inspect", d(&s), "--key-file", k1()]);
        assert_eq!(code, 0, "{f}");
        assert!(damage_kinds(&v).contains(&"empty-file".into()), "{f}: {v}");
        // The server checks the version of every existing file, whatever its
        // size: an empty one fails ("unable to verify file version: EOF").
        let (code, vv) = json(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(code, WONT_START, "{f}");
        assert_eq!(vv["exit_code"], code);
        // Rewrites: never a panic; either done (and readable) or refused unchanged.
        let before = snapshot(&s);
        let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
        if o.code != 0 {
            assert_eq!(o.code, REFUSED, "{f}: {}", o.stderr);
            assert_eq!(snapshot(&s), before);
        } else {
            assert_decrypted(&s);
        }
    }
}

#[test]
fn dat_without_idx_and_idx_without_dat() {
    let (_t, s) = store("aes");
    std::fs::remove_file(s.join("orders/msgs.2.idx")).unwrap();
    std::fs::rename(s.join("orders/msgs.3.dat"), s.join("orders/elsewhere")).unwrap();
    let (code, v) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let kinds = damage_kinds(&v);
    assert!(kinds.contains(&"index-missing".into()), "{v}");
    assert!(kinds.contains(&"orphan-index".into()), "{v}");
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0, "a missing index is rebuilt; an orphan one ignored");
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(s.join("orders/msgs.2.idx").exists(), "index rebuilt");
    assert_decrypted(&s);
}

/// Rewrites index entry `i` of `p` with `f` applied, CRC recomputed.
fn edit_entry(p: &Path, i: usize, f: impl FnOnce(&mut stanctl::format::index::IndexEntry)) {
    let crc = stanctl::format::crc::Crc32::ieee();
    let mut b = std::fs::read(p).unwrap();
    let at = 4 + 32 * i;
    let mut e = stanctl::format::index::IndexEntry::parse(b[at..at + 32].try_into().unwrap());
    f(&mut e);
    let e = stanctl::format::index::IndexEntry::new(e.seq, e.offset, e.timestamp, e.size, &crc);
    b[at..at + 32].copy_from_slice(&e.to_bytes());
    std::fs::write(p, b).unwrap();
}

#[test]
fn idx_pointing_past_the_end_of_the_dat() {
    for (entry, off) in [(0usize, 1u64 << 40), (3, u64::MAX), (3, 2449)] {
        let (_t, s) = store("aes");
        edit_entry(&s.join("orders/msgs.1.idx"), entry, |e| e.offset = off);
        let (code, v) = json(&["store", "inspect", d(&s)]);
        assert_eq!(code, 0);
        assert!(damage_kinds(&v).contains(&"index-mismatch".into()), "{v}");
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, AT_RISK, "{}", o.stdout);
        assert!(o.stdout.contains("orders/msgs.1.dat"), "{}", o.stdout);
        // The records are fine: a rewrite writes a correct index.
        let o = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--dry-run"]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    // The last entry is the one the server checks: it rebuilds, all is well.
    let (_t, s) = store("aes");
    let n = (std::fs::metadata(s.join("orders/msgs.1.idx"))
        .unwrap()
        .len() as usize
        - 4)
        / 32;
    edit_entry(&s.join("orders/msgs.1.idx"), n - 1, |e| e.offset = u64::MAX);
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0);
}

/// Appends a copy of the first record of `from` to `to`, and drops `to`'s index.
fn append_first_record(from: &Path, to: &Path) {
    let b = std::fs::read(from).unwrap();
    let size = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let rec = b[4..12 + size].to_vec();
    let mut t = std::fs::read(to).unwrap();
    t.extend_from_slice(&rec);
    std::fs::write(to, t).unwrap();
    let _ = std::fs::remove_file(to.with_extension("idx"));
}

#[test]
fn duplicated_and_decreasing_sequences() {
    // Inside a slice: the first record again at the end (a duplicate that
    // also decreases).
    let (_t, s) = store("aes");
    let p = s.join("orders/msgs.1.dat");
    append_first_record(&p, &p);
    let (code, v) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let dmg = v["damage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "sequence-order")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(dmg["file"], "orders/msgs.1.dat");
    assert!(dmg["offset"].as_u64().unwrap() > 4);
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert!([0, AT_RISK, WONT_START].contains(&code));
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--dry-run"]);
    assert!([0, REFUSED].contains(&o.code), "{}", o.stderr);

    // Across slices: slice 1 and 3 swapped (sequences go down between slices).
    let (_t, s) = store("aes");
    let o = s.join("orders");
    for ext in ["dat", "idx"] {
        std::fs::rename(o.join(format!("msgs.1.{ext}")), o.join("tmp")).unwrap();
        std::fs::rename(
            o.join(format!("msgs.3.{ext}")),
            o.join(format!("msgs.1.{ext}")),
        )
        .unwrap();
        std::fs::rename(o.join("tmp"), o.join(format!("msgs.3.{ext}"))).unwrap();
    }
    let (code, _) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert!([0, AT_RISK, WONT_START].contains(&code));
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert!([0, REFUSED].contains(&o.code), "{}", o.stderr);

    // Across slices: the last record of slice 1 duplicated into slice 2.
    let (_t, s) = store("plain");
    append_first_record(&s.join("orders/msgs.2.dat"), &s.join("orders/msgs.1.dat"));
    let (code, _) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let (code, _) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert!([0, AT_RISK, WONT_START].contains(&code));
}

/// A sequence far beyond the others (valid CRC, no index): the server looks
/// messages up by position from first to last; the prediction must not walk
/// 2^40 sequence numbers one by one (it once did, for hours).
#[test]
fn sequence_gap_of_2_pow_40_is_bounded() {
    let (_t, s) = store("plain");
    let mut msg = vec![0x08];
    stanctl::format::proto::write_varint(&mut msg, 1 << 40);
    msg.extend_from_slice(b"\x12\x03foo\x22\x02hi\x28\x01");
    let crc = stanctl::format::crc::Crc32::ieee().checksum(&msg);
    let p = s.join("orders/msgs.3.dat");
    let mut b = std::fs::read(&p).unwrap();
    stanctl::format::record::write_record(&mut b, 0, crc, &msg);
    std::fs::write(&p, b).unwrap();
    std::fs::remove_file(s.join("orders/msgs.3.idx")).unwrap();
    let start = std::time::Instant::now();
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert!(start.elapsed().as_secs() < 10);
    // Every sequence from 41 to 2^40 is looked up and not found.
    assert_eq!(code, AT_RISK);
    let orders = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap();
    assert_eq!(orders["last_seq"].as_u64(), Some(1 << 40));
    assert_eq!(orders["failed"].as_u64(), Some((1u64 << 40) - 40));
}

// ------------------------------------------------------------- directory

#[test]
fn non_utf8_channel_name() {
    let (t, s) = store("plain");
    let raw = std::ffi::OsStr::from_bytes(b"ord\xffers");
    std::fs::rename(s.join("orders"), s.join(raw)).unwrap();
    let (code, v) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let names: Vec<_> = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"ord\u{fffd}ers".to_string()), "{names:?}");
    let o = run(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.contains("ord\u{fffd}ers"));
    let before = snapshot(&s);
    // Encrypt, check every message opens, decrypt: back to the same bytes.
    let enc = [
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "CHACHA",
        "--assume-plaintext",
    ];
    let o = run(&enc);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (code, v) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0, "{v}");
    let ch = &v["channels"].as_array().unwrap()[1];
    assert_eq!(ch["name"], "ord\u{fffd}ers");
    assert_eq!(ch["failed"], 0);
    // --output copies the odd name as it is.
    let out = t.path().join("copy");
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(out.join(raw).join("msgs.1.dat").exists());
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--assume-plaintext",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn symlinked_channel_dir_reads_but_never_writes_through() {
    let (t, s) = store("aes");
    let real = t.path().join("outside");
    std::fs::rename(s.join("orders"), &real).unwrap();
    std::os::unix::fs::symlink(&real, s.join("orders")).unwrap();
    let (code, v) = json(&["store", "inspect", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0);
    assert_eq!(v["totals"]["messages"], 83);
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0);
    let outside = snapshot(&real);
    writes_refused(&s, REFUSED, "symbolic link");
    assert_eq!(snapshot(&real), outside);
    // --output reads through it and writes a real directory.
    let out = t.path().join("copy");
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(std::fs::symlink_metadata(out.join("orders"))
        .unwrap()
        .is_dir());
    assert_eq!(snapshot(&real), outside);
}

#[test]
fn symlinked_slice_file_reads_but_never_writes_through() {
    let (t, s) = store("aes");
    let real = t.path().join("outside.dat");
    std::fs::rename(s.join("orders/msgs.2.dat"), &real).unwrap();
    std::os::unix::fs::symlink(&real, s.join("orders/msgs.2.dat")).unwrap();
    let want = std::fs::read(&real).unwrap();
    let (code, v) = json(&["store", "inspect", d(&s), "--key-file", k1()]);
    assert_eq!(code, 0);
    assert_eq!(v["totals"]["messages"], 83);
    writes_refused(&s, REFUSED, "orders/msgs.2.dat");
    assert_eq!(std::fs::read(&real).unwrap(), want);
    assert!(std::fs::symlink_metadata(s.join("orders/msgs.2.dat"))
        .unwrap()
        .file_type()
        .is_symlink());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// A file that cannot be read. chmod 000 does not stop root, so as root a
/// FIFO stands in for it (opening one for reading would block forever: it
/// must be refused, not waited on).
#[test]
fn unreadable_files() {
    for f in ["orders/msgs.2.dat", "orders/msgs.2.idx", "orders/subs.dat"] {
        let (_t, s) = store("aes");
        let p = s.join(f);
        if is_root() {
            std::fs::remove_file(&p).unwrap();
            mkfifo(&p);
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        for cmd in [
            vec!["store", "inspect", d(&s)],
            vec!["store", "verify", d(&s), "--key-file", k1()],
        ] {
            let o = run(&cmd);
            assert_eq!(o.code, IO, "{cmd:?}: {}", o.stderr);
            assert!(o.stderr.contains(f), "{cmd:?}: {}", o.stderr);
        }
        writes_refused(&s, IO, f);
    }
}

#[test]
fn not_a_store() {
    let t = TempDir::new().unwrap();
    // A directory without server.dat.
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(empty.join("orders")).unwrap();
    // A regular file given as DIR.
    let file = t.path().join("file");
    std::fs::write(&file, b"not a store").unwrap();
    // server.dat that is a directory.
    let weird = t.path().join("weird");
    std::fs::create_dir_all(weird.join("server.dat")).unwrap();
    for (dir, why) in [
        (&empty, "no server.dat"),
        (&file, "not a directory"),
        (&weird, "not a regular file"),
        (&t.path().join("missing"), "does not exist"),
    ] {
        for cmd in [
            vec!["store", "inspect", d(dir)],
            vec!["store", "verify", d(dir), "--no-encrypt"],
            vec!["store", "decrypt", d(dir), "--key-file", k1()],
        ] {
            let o = run(&cmd);
            assert_eq!(o.code, IO, "{cmd:?}");
            assert!(o.stderr.contains(why), "{cmd:?}: {}", o.stderr);
            assert!(o.stderr.contains(d(dir)), "{cmd:?}: {}", o.stderr);
        }
    }
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        1,
        "nothing created"
    );
}

#[test]
fn bad_key_files() {
    let t = TempDir::new().unwrap();
    let empty = t.path().join("empty.key");
    std::fs::write(&empty, b"\n").unwrap();
    let dir = t.path().join("dir.key");
    std::fs::create_dir(&dir).unwrap();
    let huge = t.path().join("huge.key");
    std::fs::write(&huge, vec![b'k'; 64 * 1024 + 1]).unwrap();
    let missing = t.path().join("missing.key");
    let (_t, s) = store("aes");
    let before = snapshot(&s);
    for (key, code, why) in [
        (&empty, USAGE, "is empty"),
        (&dir, IO, "cannot read key file"),
        (&huge, USAGE, "larger than 64 KiB"),
        (&missing, IO, "cannot read key file"),
    ] {
        let k = d(key);
        for cmd in [
            vec!["store", "inspect", d(&s), "--key-file", k],
            vec!["store", "verify", d(&s), "--key-file", k],
            vec!["store", "decrypt", d(&s), "--key-file", k],
            vec![
                "store",
                "encrypt",
                d(&s),
                "--key-file",
                k,
                "--cipher",
                "AES",
            ],
            vec![
                "store",
                "rekey",
                d(&s),
                "--key-file",
                k1(),
                "--new-key-file",
                k,
            ],
        ] {
            let o = run(&cmd);
            assert_eq!(o.code, code, "{cmd:?}: {}", o.stderr);
            assert!(o.stderr.contains(why), "{cmd:?}: {}", o.stderr);
            assert!(o.stderr.contains(k), "{cmd:?}: {}", o.stderr);
        }
    }
    // Exactly 64 KiB is accepted.
    std::fs::write(&huge, vec![b'k'; 64 * 1024]).unwrap();
    let o = run(&["store", "inspect", d(&s), "--key-file", d(&huge)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(snapshot(&s), before);
}

// ------------------------------------------------------------------ lock

#[test]
fn two_processes_on_one_store() {
    let (_t, s) = store("plain");
    let before = snapshot(&s);
    let h = LockHolder::new(&s);
    let pid = h.0.id().to_string();
    for cmd in [
        vec![
            "store",
            "encrypt",
            d(&s),
            "--key-file",
            k1(),
            "--cipher",
            "AES",
            "--assume-plaintext",
        ],
        vec!["store", "decrypt", d(&s), "--key-file", k1()],
        vec![
            "store",
            "rekey",
            d(&s),
            "--key-file",
            k1(),
            "--new-key-file",
            k2(),
        ],
        vec!["store", "verify", d(&s), "--no-encrypt"],
    ] {
        let o = run(&cmd);
        assert_eq!(o.code, LOCKED, "{cmd:?}: {}", o.stderr);
        assert!(o.stderr.contains(&pid), "names the holder: {}", o.stderr);
        assert!(o.stderr.contains("stop"), "says what to do: {}", o.stderr);
        assert_eq!(snapshot(&s), before);
    }
    // inspect only reads: it warns and goes on.
    let o = run(&["store", "inspect", d(&s)]);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("holds the store's lock"), "{}", o.stderr);
    drop(h);
    let o = run(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(o.code, 0, "lock released: {}", o.stderr);
}

// ------------------------------------------------------- write failures

fn no_temp_files(s: &Path) -> bool {
    snapshot(s).keys().all(|k| !k.ends_with(".stanctl-tmp"))
}

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

#[test]
fn temp_path_is_a_directory_so_the_write_fails() {
    // Creating msgs.1.dat.stanctl-tmp fails (EISDIR): works as root too.
    let (_t, s) = store("plain");
    let blocker = s.join("big/msgs.1.dat.stanctl-tmp");
    std::fs::create_dir(&blocker).unwrap();
    let o = run(&[
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
        "--assume-plaintext",
    ]);
    assert_eq!(o.code, IO, "{}", o.stderr);
    assert!(
        o.stderr.contains("big/msgs.1.dat.stanctl-tmp"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("run the same command again"),
        "{}",
        o.stderr
    );
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
    let o = run(&[
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
        "--assume-plaintext",
    ]);
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
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    check_output(&args, o.status.code().unwrap_or(-1), &out, &err);
    assert_eq!(o.status.code(), Some(IO), "{err}");
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
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(no_temp_files(&s));
}
