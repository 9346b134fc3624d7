//! Audit regressions: hostile or broken stores that must not make stanctl
//! panic, overflow, abort on an allocation, or hang. Every test builds its
//! store from a copy of fixtures/conformance/* and runs the real binary (or
//! the library) on it. The exit code must be one of the tool's own codes
//! (0-4, 64, 74) and no output may mention a panic.

mod common;
use common::*;

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const AT_RISK: i32 = 1;

fn store(name: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&conformance(name), &dir);
    (tmp, dir)
}

fn d(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn key(n: u8) -> String {
    fixtures().join(format!("k{n}.key")).display().to_string()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary; fails on a panic, a signal or an exit code the tool
/// does not define.
#[track_caller]
fn run(args: &[&str]) -> Out {
    let o = Command::cargo_bin("stanctl")
        .unwrap()
        .env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env_remove("STANCTL_TEST_ABORT_AT_STEP")
        .env("RUST_BACKTRACE", "0")
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_no_secrets(&o);
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "{args:?}: panic:\n{}",
        out.stderr
    );
    assert!(
        [0, 1, 2, 3, 4, 64, 74].contains(&out.code),
        "{args:?}: exit code {} (signal: {:?}), stderr:\n{}",
        out.code,
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        out.stderr
    );
    out
}

#[track_caller]
fn json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let o = run(&a);
    let v = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {} {}", o.stdout, o.stderr));
    (o.code, v)
}

/// A MsgProto payload: 1 seq, 2 subject, 4 data, 5 timestamp.
fn msg(seq: u64, data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x08];
    stanctl::format::proto::write_varint(&mut m, seq);
    m.extend_from_slice(b"\x12\x03foo");
    if !data.is_empty() {
        m.push(0x22);
        stanctl::format::proto::write_varint(&mut m, data.len() as u64);
        m.extend_from_slice(data);
    }
    m.extend_from_slice(b"\x28\x01");
    m
}

/// Appends a record with a valid (IEEE) CRC.
fn push_record(file: &mut Vec<u8>, payload: &[u8]) {
    let crc = stanctl::format::crc::Crc32::ieee().checksum(payload);
    stanctl::format::record::write_record(file, 0, crc, payload);
}

/// Appends a message record with sequence `seq` to a slice and removes its
/// index (so the server, and verify, rebuild it from the data file).
fn append_seq(dat: &Path, seq: u64) {
    let mut b = std::fs::read(dat).unwrap();
    push_record(&mut b, &msg(seq, b"hi"));
    std::fs::write(dat, b).unwrap();
    let _ = std::fs::remove_file(dat.with_extension("idx"));
}

/// A copy of the plain store with one channel `x` and no other: seq
/// extremes in it are judged alone (without the overflow the failing tests
/// above show when other counts are added).
fn lone_store() -> (TempDir, PathBuf) {
    let (t, s) = store("plain");
    for ch in ["big", "orders", "sensors.temp"] {
        std::fs::remove_dir_all(s.join(ch)).unwrap();
    }
    std::fs::create_dir(s.join("x")).unwrap();
    (t, s)
}

/// A fresh slice file holding only these sequences (no index).
fn slice_with(dat: &Path, seqs: &[u64]) {
    let mut b = 1u32.to_le_bytes().to_vec();
    for &s in seqs {
        push_record(&mut b, &msg(s, b"hi"));
    }
    std::fs::write(dat, b).unwrap();
}

// ------------------------------------------------ u64 counters in verify

/// A record with seq u64::MAX after seq 40: the slice's "looked up"
/// counter saturates at u64::MAX (look_up_all uses saturating_add), and
/// adding the other channels' counts to the totals then overflows
/// (`Delivered::add`, src/verify/mod.rs:101): a panic in a debug build, a
/// wrapped (wrong) total in release.
#[test]
fn verify_seq_u64_max_does_not_overflow_totals() {
    let (_t, s) = store("plain");
    append_seq(&s.join("orders/msgs.3.dat"), u64::MAX);
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, AT_RISK, "{v}");
    let o = run(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(o.code, AT_RISK, "{}", o.stdout);
}

/// The same inside one channel: two slices that each span 1..=u64::MAX.
#[test]
fn verify_two_slices_spanning_all_sequences() {
    let (_t, s) = store("plain");
    let ch = s.join("wide");
    std::fs::create_dir(&ch).unwrap();
    slice_with(&ch.join("msgs.1.dat"), &[1, u64::MAX]);
    slice_with(&ch.join("msgs.2.dat"), &[1, u64::MAX]);
    let (code, _) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, AT_RISK);
}

/// Slices (1), (1), (u64::MAX): the gap 2..=u64::MAX-1 between slices is
/// added to a count that already holds the slices' 3 messages:
/// `d.messages += n` overflows (src/verify/mod.rs:294, and :295 for failed).
#[test]
fn verify_gap_between_slices_does_not_overflow() {
    let tmp = TempDir::new().unwrap();
    let s = tmp.path().join("store");
    copy_dir(&conformance("plain"), &s);
    for ch in ["big", "orders", "sensors.temp"] {
        std::fs::remove_dir_all(s.join(ch)).unwrap();
    }
    let ch = s.join("gappy");
    std::fs::create_dir(&ch).unwrap();
    slice_with(&ch.join("msgs.1.dat"), &[1]);
    slice_with(&ch.join("msgs.2.dat"), &[1]);
    slice_with(&ch.join("msgs.3.dat"), &[u64::MAX]);
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, AT_RISK, "{v}");
}

/// One channel whose messages saturate at u64::MAX, plus one record lost to
/// --truncate-on-eof: the human verdict line computes `t.messages + t.lost`
/// (src/render.rs:220, and `t.failed + t.ciphertext + t.lost` at :219),
/// which overflows.
#[test]
fn verify_render_with_lost_record_and_saturated_count() {
    let tmp = TempDir::new().unwrap();
    let s = tmp.path().join("store");
    copy_dir(&conformance("plain"), &s);
    for ch in ["big", "sensors.temp"] {
        std::fs::remove_dir_all(s.join(ch)).unwrap();
    }
    let p = s.join("orders/msgs.3.dat");
    append_seq(&p, u64::MAX);
    // Then a record cut short: the server truncates it (lost) with -file_truncate_bad_eof.
    let mut b = std::fs::read(&p).unwrap();
    let mut cut = Vec::new();
    push_record(&mut cut, &msg(7, b"cut short"));
    b.extend_from_slice(&cut[..cut.len() - 3]);
    std::fs::write(&p, b).unwrap();
    let (code, v) = json(&[
        "store",
        "verify",
        d(&s),
        "--no-encrypt",
        "--truncate-on-eof",
    ]);
    assert_eq!(code, AT_RISK, "{v}");
    assert_eq!(v["totals"]["lost"].as_u64(), Some(1), "{v}");
    // The table output: where the overflow is.
    let o = run(&[
        "store",
        "verify",
        d(&s),
        "--no-encrypt",
        "--truncate-on-eof",
    ]);
    assert_eq!(o.code, AT_RISK, "{}", o.stdout);
}

// ------------------------------------------- allocations sized by files

/// A sparse .idx of 1 TiB (valid version, the real entries, then a hole):
/// `scan_index` reserves one 32-byte IndexEntry per 32 bytes of FILE SIZE
/// before reading a single entry (src/scan.rs:596-597), i.e. 1 TiB of
/// memory: the allocation fails and the process aborts (SIGABRT) instead of
/// reporting the zero entry the server truncates at.
#[test]
fn sparse_index_file_does_not_abort() {
    let (_t, s) = store("plain");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.join("orders/msgs.1.idx"))
        .unwrap();
    f.set_len(1 << 40).unwrap();
    drop(f);
    let (code, _) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let (code, _) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert!([0, AT_RISK].contains(&code));
}

/// A sparse 1 TiB .dat without an index: with per-record detail on (verify,
/// rewrite check, inspect --records) the scanner reserves
/// `dat.len() / 256` RecordInfo before reading (src/scan.rs:334-339), a
/// multi-hundred-GB allocation that aborts. The data is a zero header
/// followed by a non-zero byte, so the scan itself ends at once.
#[test]
fn sparse_data_file_without_index_does_not_abort() {
    let (_t, s) = store("plain");
    let p = s.join("orders/msgs.3.dat");
    let mut b = 1u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[0u8; 8]);
    b.push(1);
    std::fs::write(&p, b).unwrap();
    std::fs::remove_file(s.join("orders/msgs.3.idx")).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(1 << 40).unwrap();
    drop(f);
    let (code, _) = json(&["store", "inspect", d(&s)]);
    assert_eq!(code, 0);
    let (code, _) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert!([0, AT_RISK, 2].contains(&code));
    let (code, _) = json(&["store", "inspect", d(&s), "--records"]);
    assert_eq!(code, 0);
}

// ----------------------------------------------- key index as u8

/// 256 dummy key files before K1 make K1 the 257th key. The scanner stores
/// the index of the key that opened an envelope as `i as u8`
/// (src/scan.rs:547, KeyOutcome::Opened(u8), NonceUse::key: u8), so key 257
/// is counted as key 1.
fn dummy_keys(dir: &Path, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("dummy{i}.key"));
            std::fs::write(&p, format!("not-the-key-{i}")).unwrap();
            p.display().to_string()
        })
        .collect()
}

#[test]
fn inspect_with_more_than_254_keys_is_refused_not_misattributed() {
    // Key indexes are kept in a byte: rather than credit key 257 to key 1,
    // more than 254 keys are a usage error.
    let (t, s) = store("aes");
    let dummies = dummy_keys(t.path(), 256);
    let k1 = key(1);
    let mut args: Vec<&str> = vec!["store", "inspect", d(&s)];
    for k in &dummies {
        args.extend(["--key-file", k.as_str()]);
    }
    args.extend(["--key-file", k1.as_str()]);
    let o = run(&args);
    assert_eq!(o.code, 64, "{}", o.stderr);
    assert!(o.stderr.contains("at most 254 keys"), "{}", o.stderr);
    // 253 dummies + K1 = 254 keys: every envelope credited to the right key.
    let mut args: Vec<&str> = vec!["store", "inspect", d(&s)];
    for k in &dummies[..253] {
        args.extend(["--key-file", k.as_str()]);
    }
    args.extend(["--key-file", k1.as_str()]);
    let (code, v) = json(&args);
    assert_eq!(code, 0);
    let opened = v["totals"]["opened"].as_array().unwrap();
    assert_eq!(opened.len(), 254);
    let envelopes = v["totals"]["payloads"]["aes"].as_u64().unwrap();
    assert_eq!(opened[0]["opened"].as_u64(), Some(0), "{}", opened[0]);
    assert_eq!(
        opened[253]["opened"].as_u64(),
        Some(envelopes),
        "{}",
        opened[253]
    );
}

/// The same limit in rekey: with keys [new, 255 dummies, K1], K1 would have
/// index 256, seen as Opened(0) = "already under the new key", and the store
/// would silently stay under K1. Refused instead, with nothing written.
#[test]
fn rekey_with_too_many_keys_is_refused_and_writes_nothing() {
    let (t, s) = store("aes");
    let dummies = dummy_keys(t.path(), 255);
    let (k1, k2) = (key(1), key(2));
    let mut args: Vec<&str> = vec!["store", "rekey", d(&s), "--new-key-file", k2.as_str()];
    for k in &dummies {
        args.extend(["--key-file", k.as_str()]);
    }
    args.extend(["--key-file", k1.as_str()]);
    let before = std::fs::read(s.join("orders/msgs.1.dat")).unwrap();
    let o = run(&args);
    assert_eq!(o.code, 64, "{}", o.stderr);
    assert_eq!(std::fs::read(s.join("orders/msgs.1.dat")).unwrap(), before);
    let (code, _) = json(&["store", "verify", d(&s), "--key-file", k1.as_str()]);
    assert_eq!(code, 0, "still entirely under K1");
}

// ---------------------------------------------- coverage (no bug found)

/// Index entries with seq 0 / u64::MAX and offsets near u64::MAX (with a
/// size that would overflow offset + 8 + size); the last entry stays valid
/// so the index is trusted and every entry is looked up.
#[test]
fn index_entries_with_extreme_fields() {
    use stanctl::format::index::{IndexEntry, ENTRY_LEN};
    let crc = stanctl::format::crc::Crc32::ieee();
    for (seq, off, size) in [
        (0u64, u64::MAX - 3, u32::MAX),
        (u64::MAX, u64::MAX, 7),
        (2, u64::MAX - 8, u32::MAX),
        (u64::MAX - 1, 4, u32::MAX),
    ] {
        let (_t, s) = store("plain");
        let p = s.join("orders/msgs.1.idx");
        let mut b = std::fs::read(&p).unwrap();
        // Entry 2 of 15 (not the last, so the index stays trusted).
        let at = 4 + ENTRY_LEN;
        let e = IndexEntry::new(seq, off, 5, size, &crc);
        b[at..at + ENTRY_LEN].copy_from_slice(&e.to_bytes());
        std::fs::write(&p, &b).unwrap();
        for extra in [&[][..], &["--list"][..]] {
            let mut a = vec!["store", "verify", d(&s), "--no-encrypt"];
            a.extend_from_slice(extra);
            let o = run(&a);
            assert_eq!(o.code, AT_RISK, "{seq} {off} {size}: {}", o.stdout);
        }
        let (code, _) = json(&["store", "inspect", d(&s), "--records"]);
        assert_eq!(code, 0);
        let o = run(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            "AES",
            "--key-file",
            &key(1),
            "--dry-run",
        ]);
        assert!([0, 4].contains(&o.code));
    }
}

/// The LAST entry points near u64::MAX: the index is not trusted (rebuilt).
#[test]
fn last_index_entry_offset_near_u64_max() {
    use stanctl::format::index::{IndexEntry, ENTRY_LEN};
    let crc = stanctl::format::crc::Crc32::ieee();
    let (_t, s) = store("plain");
    let p = s.join("orders/msgs.3.idx");
    let mut b = std::fs::read(&p).unwrap();
    let at = b.len() - ENTRY_LEN;
    let e = IndexEntry::new(40, u64::MAX - 7, 1, u32::MAX, &crc);
    b[at..].copy_from_slice(&e.to_bytes());
    std::fs::write(&p, &b).unwrap();
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
    assert!([0, AT_RISK].contains(&o.code));
}

/// Records u64::MAX then 0 (and 0 then u64::MAX) in one slice, no index.
#[test]
fn sequences_wrap_inside_a_slice() {
    for seqs in [[u64::MAX, 0], [0, u64::MAX], [u64::MAX, u64::MAX]] {
        let (_t, s) = lone_store();
        slice_with(&s.join("x/msgs.1.dat"), &seqs);
        for list in [false, true] {
            let mut a = vec!["store", "verify", d(&s), "--no-encrypt"];
            if list {
                a.push("--list");
            }
            run(&a);
        }
        run(&["store", "inspect", d(&s), "--records"]);
        let o = run(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            "CHACHA",
            "--key-file",
            &key(1),
        ]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        run(&["store", "verify", d(&s), "--key-file", &key(1), "--list"]);
    }
}

/// --list caps the "not found" lines of one gap (LIST_MISSING_CAP), inside
/// a slice and between slices.
#[test]
fn list_cap_holds_for_one_gap() {
    for two_slices in [false, true] {
        let (_t, s) = lone_store();
        if two_slices {
            slice_with(&s.join("x/msgs.1.dat"), &[1]);
            slice_with(&s.join("x/msgs.2.dat"), &[1 << 40]);
        } else {
            slice_with(&s.join("x/msgs.1.dat"), &[1, 1 << 40]);
        }
        let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
        assert_eq!(o.code, AT_RISK);
        let n = o.stdout.lines().count();
        assert!(n <= 10_000 + 10, "{n} lines");
    }
}

/// Slice names at and past the i64/u64 range.
#[test]
fn slice_names_out_of_range() {
    for n in [
        "18446744073709551615",
        "99999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "0",
        "00000000000000000000000001",
    ] {
        let (_t, s) = store("plain");
        let o = s.join("orders");
        std::fs::copy(o.join("msgs.1.dat"), o.join(format!("msgs.{n}.dat"))).unwrap();
        std::fs::copy(o.join("msgs.1.idx"), o.join(format!("msgs.{n}.idx"))).unwrap();
        run(&["store", "inspect", d(&s)]);
        run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
        run(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            "AES",
            "--key-file",
            &key(1),
            "--dry-run",
        ]);
    }
}

/// A record cut right after its header / inside its first varint, and a
/// cut header, at the end of a slice without index: cut_seq and header_crc
/// read near the end of the file.
#[test]
fn cuts_near_the_end_of_file() {
    for keep in [1usize, 2, 5, 7, 8, 9, 10] {
        let (_t, s) = store("plain");
        let p = s.join("orders/msgs.3.dat");
        let mut b = std::fs::read(&p).unwrap();
        let mut r = Vec::new();
        push_record(&mut r, &msg(u64::MAX, b"payload"));
        b.extend_from_slice(&r[..keep]);
        std::fs::write(&p, b).unwrap();
        std::fs::remove_file(s.join("orders/msgs.3.idx")).unwrap();
        for eof in [false, true] {
            let mut a = vec!["store", "verify", d(&s), "--no-encrypt", "--list"];
            if eof {
                a.push("--truncate-on-eof");
            }
            run(&a);
        }
    }
}

/// The group skipper: 1 MB of nested start-group tags (iterative, no stack
/// overflow) and a group that never ends.
#[test]
fn proto_groups_deep_and_unterminated() {
    use stanctl::format::proto::MsgView;
    let deep = vec![0x0b_u8; 1 << 20]; // field 1, wire 3, a million times
    assert!(MsgView::parse(&deep).is_err());
    let mut closed = vec![0x0b_u8; 1 << 16];
    closed.extend(std::iter::repeat_n(0x0c_u8, 1 << 16));
    let _ = MsgView::parse(&closed);
    let never = [0x0b, 0x08, 0x01, 0x10, 0x02];
    assert!(MsgView::parse(&never).is_err());
    // Inside a store: a record whose payload is a deep group.
    let (_t, s) = store("plain");
    let p = s.join("orders/msgs.3.dat");
    let mut b = std::fs::read(&p).unwrap();
    push_record(&mut b, &deep);
    std::fs::write(&p, b).unwrap();
    std::fs::remove_file(s.join("orders/msgs.3.idx")).unwrap();
    run(&["store", "verify", d(&s), "--no-encrypt"]);
    run(&["store", "inspect", d(&s), "--records"]);
}

/// Envelopes whose nonce counter is u64::MAX or 0, for seq u64::MAX and 0.
#[test]
fn nonce_counter_extremes() {
    use stanctl::crypto::nonce::nonce_origin;
    for c in [0u64, 1, u64::MAX, u64::MAX - 1] {
        for seq in [0u64, 1, u64::MAX] {
            let mut n = [0xAAu8; 12];
            n[4..].copy_from_slice(&c.to_be_bytes());
            let _ = nonce_origin(&n, seq);
        }
    }
    let (_t, s) = lone_store();
    let p = s.join("x/msgs.1.dat");
    let mut b = 1u32.to_le_bytes().to_vec();
    for (seq, c) in [(u64::MAX, u64::MAX), (0, u64::MAX), (u64::MAX, 0)] {
        let mut env = vec![1u8, 0xAA, 0xAA, 0xAA, 0xAA];
        env.extend_from_slice(&c.to_be_bytes());
        env.extend_from_slice(&[0x55; 20]);
        push_record(&mut b, &msg(seq, &env));
    }
    std::fs::write(&p, b).unwrap();
    run(&["store", "verify", d(&s), "--key-file", &key(1), "--list"]);
    run(&[
        "store",
        "inspect",
        d(&s),
        "--key-file",
        &key(1),
        "--records",
    ]);
    run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        &key(1),
        "--dry-run",
    ]);
}

// ------------------------------------------ not a panic: plaintext left behind

/// A record whose field 4 appears twice (protobuf: the last one wins, and
/// the server delivers it). `MsgView::parse` keeps only the last field's
/// range (src/proto.rs:285-288) and `replace_data` replaces only that one
/// (src/proto.rs:306-312), so `encrypt` leaves the first copy on disk in
/// plaintext inside a record that is otherwise encrypted.
#[test]
fn encrypt_refuses_a_record_with_a_repeated_data_field() {
    let (_t, s) = lone_store();
    let mut m = vec![0x08, 0x01, 0x12, 0x03, b'f', b'o', b'o'];
    m.push(0x22);
    m.push(23);
    m.extend_from_slice(b"TOP-SECRET-PLAINTEXT-01");
    m.extend_from_slice(b"\x22\x05hello\x28\x01");
    let mut b = 1u32.to_le_bytes().to_vec();
    push_record(&mut b, &m);
    let p = s.join("x/msgs.1.dat");
    std::fs::write(&p, b).unwrap();
    // Such a record is refused (exit 4, nothing written): encrypting only
    // the last copy would leave the first in plaintext in an "encrypted" store.
    let before = std::fs::read(&p).unwrap();
    let o = run(&[
        "store",
        "encrypt",
        d(&s),
        "--cipher",
        "AES",
        "--key-file",
        &key(1),
    ]);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("more than once"), "{}", o.stderr);
    assert_eq!(std::fs::read(&p).unwrap(), before);
}
