//! Hostile and extreme input: sizes, offsets and sequences at their limits,
//! odd files, locks and permissions. Every run must end with a defined exit
//! code and a verdict that says what the server does.

mod common;
use common::*;

use serde_json::Value;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

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
            o.expect_stdout("nothing to do");
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

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

// ------------------------------------------------ u64 counters in verify

/// A record with seq u64::MAX after seq 40: the slice's "looked up"
/// counter saturates at u64::MAX (look_up_all uses saturating_add), and
/// adding the other channels' counts to the totals then overflows
/// (`Delivered::add` in ops/verify): a panic in a debug build, a
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
/// `d.messages += n` overflows (ops/verify, `channel_out`).
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
/// (report/verify.rs, `t.failed + t.ciphertext + t.lost`),
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
    let verify_eof = [
        "store",
        "verify",
        d(&s),
        "--no-encrypt",
        "--truncate-on-eof",
    ];
    let (code, v) = json(&verify_eof);
    assert_eq!(code, AT_RISK, "{v}");
    assert_eq!(v["totals"]["lost"].as_u64(), Some(1), "{v}");
    // The table output: where the overflow is.
    let o = run(&verify_eof);
    assert_eq!(o.code, AT_RISK, "{}", o.stdout);
}

// ------------------------------------------- allocations sized by files

/// A sparse .idx of 1 TiB (valid version, the real entries, then a hole):
/// `scan_index` reserves one 32-byte IndexEntry per 32 bytes of FILE SIZE
/// before reading a single entry (ops/scan.rs, scan_index), i.e. 1 TiB of
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
    // The hole is zero entries: the server truncates the index at the first.
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, OK, "{v}");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["file"] == "orders/msgs.1.idx"
            && f["what"] == "zero entry in the index: the server truncates the index here"));
}

/// A sparse 1 TiB .dat without an index: a scanner that sizes what it keeps
/// by the file (its per-record table, since removed, once reserved
/// `dat.len() / 256` RecordInfo before reading) makes a multi-hundred-GB
/// allocation that aborts. The data is a zero header followed by a
/// non-zero byte, so the scan itself ends at once.
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
    // The server rebuilds the index and truncates at the zero header.
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, OK, "{v}");
    assert!(v["findings"].as_array().unwrap().iter().any(|f| f["file"]
        == "orders/msgs.3.dat"
        && f["what"]
            == "1099511627772 zero bytes at the end: the server truncates them while rebuilding the index"));
    let (code, _) = json(&["store", "inspect", d(&s), "--records"]);
    assert_eq!(code, 0);
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
        let o = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--dry-run"]);
        // Nothing to decrypt in a plain store: only the slice whose index
        // disagrees with its data file gets a fresh index.
        assert_eq!(o.code, OK, "{}", o.stderr);
        o.expect_stdout("dry run: 1 slice(s) would be rewritten");
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
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, OK, "{v}");
    assert!(v["findings"].as_array().unwrap().iter().any(|f| f["file"]
        == "orders/msgs.3.idx"
        && f["what"]
            == "the server rebuilds this index from the data file at start-up: its last entry (seq 40) does not match the data file"));
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
    assert_eq!(o.code, OK);
}

/// Records u64::MAX then 0 (and 0 then u64::MAX) in one slice, no index.
#[test]
fn sequences_wrap_inside_a_slice() {
    // The server looks up first..=last by position: from u64::MAX the range
    // is that one message; from 0 to u64::MAX every other sequence fails
    // (the count saturates at u64::MAX).
    for (seqs, want, failed) in [
        ([u64::MAX, 0], OK, 0),
        ([0, u64::MAX], AT_RISK, u64::MAX),
        ([u64::MAX, u64::MAX], OK, 0),
    ] {
        let (_t, s) = lone_store();
        slice_with(&s.join("x/msgs.1.dat"), &seqs);
        let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
        assert_eq!(code, want, "{seqs:?}");
        assert_eq!(v["totals"]["failed"], failed, "{seqs:?}");
        assert_eq!(v["totals"]["plaintext"], 1, "{seqs:?}");
        let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
        assert_eq!(o.code, want);
        let first = seqs[0];
        o.expect_stdout(&format!("MSG\tx\t{first}\tok\t2\t"));
        let (code, v) = json(&["store", "inspect", d(&s), "--records"]);
        assert_eq!(code, OK);
        let got: Vec<u64> = channel(&v, "x")["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(got, seqs);
        run_ok(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            "CHACHA",
            "--key-file",
            &key(1),
        ]);
        let o = run(&["store", "verify", d(&s), "--key-file", &key(1), "--list"]);
        assert_eq!(o.code, want, "{}", o.stderr);
        assert!(o.stdout.contains(&format!("MSG\tx\t{first}\tok\t2\t")));
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

/// Slice names at and past the i64 range: the server parses N with
/// strconv.ParseInt(N, 10, 64); a name it cannot parse stops the start
/// ("message log has an invalid name"), any other is a slice numbered N.
#[test]
fn slice_names_out_of_range() {
    let cases = [
        ("18446744073709551615", None),
        ("99999999999999999999", None),
        ("9223372036854775808", None),
        ("9223372036854775807", Some(9223372036854775807u64)),
        ("0", Some(0)),
        ("00000000000000000000000001", Some(1)),
    ];
    for (n, parsed) in cases {
        let (_t, s) = store("plain");
        let o = s.join("orders");
        let file = format!("orders/msgs.{n}.dat");
        std::fs::copy(o.join("msgs.1.dat"), s.join(&file)).unwrap();
        std::fs::copy(o.join("msgs.1.idx"), o.join(format!("msgs.{n}.idx"))).unwrap();
        let (code, v) = json(&["store", "inspect", d(&s)]);
        assert_eq!(code, OK, "{n}");
        let bad: Vec<&Value> = v["damage"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["kind"] == "bad-slice-name")
            .collect();
        let slices: Vec<u64> = channel(&v, "orders")["slices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["slice"].as_u64().unwrap())
            .collect();
        let (code, vv) = json(&["store", "verify", d(&s), "--no-encrypt"]);
        let invalid = vv["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["what"] == "message log has an invalid name");
        match parsed {
            None => {
                assert_eq!(bad.len(), 1, "{n}: {bad:?}");
                assert_eq!(bad[0]["file"], file.as_str());
                assert_eq!(slices, [1, 2, 3], "{n}: not a slice");
                assert_eq!(code, WONT_START, "{n}");
                let f = invalid.unwrap_or_else(|| panic!("{n}: no invalid-name finding"));
                assert_eq!(f["severity"], "will-not-start");
                assert_eq!(f["file"], file.as_str());
                let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
                assert!(o
                    .stdout
                    .starts_with("RECOVER-ERROR\tmessage log has an invalid name"));
            }
            Some(k) => {
                assert!(bad.is_empty(), "{n}: {bad:?}");
                assert!(
                    slices.contains(&k),
                    "{n}: slice {k} missing from {slices:?}"
                );
                assert_eq!(slices.len(), 4, "{n}: {slices:?}");
                assert!(invalid.is_none(), "{n}");
                assert_ne!(code, WONT_START, "{n}");
            }
        }
        // The rewrite check reads the same slices: a name the server cannot
        // parse is no slice to rewrite; the others are checked with the rest.
        let (code, r) = json(&[
            "store",
            "encrypt",
            d(&s),
            "--cipher",
            "AES",
            "--key-file",
            k1(),
            "--dry-run",
            "--assume-plaintext",
        ]);
        assert_eq!(code, OK, "{n}: {r}");
        let records = channel(&r, "orders")["records"].as_u64().unwrap();
        assert_eq!(records, if parsed.is_some() { 55 } else { 40 }, "{n}");
    }
}

/// A record cut right after its header / inside its first varint, and a
/// cut header, at the end of a slice without index: the server rebuilds the
/// index and meets the cut. A bare header (8 bytes) is io.EOF, a clean end;
/// anything shorter or longer stops the start, or with truncate-on-EOF
/// drops the partial record.
#[test]
fn cuts_near_the_end_of_file() {
    for keep in [1usize, 2, 5, 7, 8, 9, 10] {
        let (_t, s) = store("plain");
        let p = s.join("orders/msgs.3.dat");
        let mut b = std::fs::read(&p).unwrap();
        let at = b.len();
        let mut r = Vec::new();
        push_record(&mut r, &msg(u64::MAX, b"payload"));
        b.extend_from_slice(&r[..keep]);
        std::fs::write(&p, b).unwrap();
        std::fs::remove_file(s.join("orders/msgs.3.idx")).unwrap();
        for eof in [false, true] {
            let mut a = vec!["store", "verify", d(&s), "--no-encrypt"];
            if eof {
                a.push("--truncate-on-eof");
            }
            let (code, v) = json(&a);
            let mut l = a.clone();
            l.push("--list");
            let list = run(&l);
            assert_eq!(list.code, code, "{keep} {eof}");
            let on_cut: Vec<&Value> = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["offset"] == at as u64 && f["file"] == "orders/msgs.3.dat")
                .collect();
            assert_eq!(on_cut.len(), 1, "{keep} {eof}: {on_cut:?}");
            let f = on_cut[0];
            let what = f["what"].as_str().unwrap();
            match (keep, eof) {
                (8, _) => {
                    assert_eq!(code, OK, "{keep} {eof}");
                    assert_eq!(f["severity"], "warning");
                    assert!(
                        what.starts_with("a record header with no payload"),
                        "{what}"
                    );
                    assert!(list.stdout.starts_with("SERVER\t"));
                }
                (_, false) => {
                    assert_eq!(code, WONT_START, "{keep}");
                    assert_eq!(
                        what,
                        format!("unexpected EOF: record cut short at offset {at}")
                    );
                    // The server's log (ERR lines), then its own error,
                    // which names the slice's index file.
                    assert!(
                        list.stdout.ends_with("\nRECOVER-ERROR\tunable to recover message store for [orders](file: \"orders/msgs.3.idx\"): unexpected EOF\n"),
                        "{}", list.stdout
                    );
                    let err: Vec<&str> = list
                        .stdout
                        .lines()
                        .filter(|l| l.starts_with("ERR: "))
                        .collect();
                    assert_eq!(err.len(), 5, "{}", list.stdout);
                    assert_eq!(
                        err[2],
                        format!("ERR: Restart with the ContinueOnUnexpectedEOF flag to truncate this file to this offset: {at}.")
                    );
                }
                (_, true) => {
                    assert_eq!(code, AT_RISK, "{keep}");
                    assert_eq!(f["severity"], "fails");
                    assert!(what.contains("which drops the partial record"), "{what}");
                    assert_eq!(v["totals"]["lost"], 1);
                    // With truncate-on-EOF the server logs one line, then starts.
                    assert!(
                        list.stdout.starts_with("ERR: Unexpected EOF for file ")
                            && list.stdout.lines().nth(1).unwrap().starts_with("SERVER\t"),
                        "{}",
                        list.stdout
                    );
                    assert!(!list.stdout.contains("\t18446744073709551615\t"));
                }
            }
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
    let (code, v) = json(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(code, WONT_START);
    let f = &v["findings"][0];
    assert_eq!(f["severity"], "will-not-start");
    assert_eq!(
        f["what"],
        "while rebuilding the index: the record does not decode: truncated varint at byte 1048576"
    );
    let (code, v) = json(&["store", "inspect", d(&s), "--records"]);
    assert_eq!(code, OK);
    assert!(v["damage"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["kind"] == "bad-record" && x["file"] == "orders/msgs.3.dat"));
}

/// Envelopes whose nonce counter is u64::MAX or 0, for seq u64::MAX and 0:
/// the server's counter sits at or a little below the sequence, and never 0.
#[test]
fn nonce_counter_extremes() {
    use stanctl::crypto::nonce::{nonce_origin, NonceOrigin::*};
    const M: u64 = u64::MAX;
    for (c, seq, want) in [
        (0, 0, Unknown),
        (0, 1, Unknown),
        (0, M, Unknown),
        (1, 0, Server),
        (1, 1, Server),
        (1, M, Unknown),
        (M, 0, Unknown),
        (M, 1, Unknown),
        (M, M, Server),
        (M - 1, 0, Unknown),
        (M - 1, 1, Unknown),
        (M - 1, M, Server),
    ] {
        let mut n = [0xAAu8; 12];
        n[4..].copy_from_slice(&c.to_be_bytes());
        assert_eq!(nonce_origin(&n, seq), want, "counter {c}, seq {seq}");
    }
    let (_t, s) = lone_store();
    let p = s.join("x/msgs.1.dat");
    let mut b = 1u32.to_le_bytes().to_vec();
    for (seq, c) in [(M, M), (0, M), (M, 0)] {
        let mut env = vec![1u8, 0xAA, 0xAA, 0xAA, 0xAA];
        env.extend_from_slice(&c.to_be_bytes());
        env.extend_from_slice(&[0x55; 20]);
        push_record(&mut b, &msg(seq, &env));
    }
    std::fs::write(&p, b).unwrap();
    // The server looks up first..=last = u64::MAX alone: an envelope in the
    // server's nonce scheme that K1 does not open.
    let o = run(&["store", "verify", d(&s), "--key-file", k1(), "--list"]);
    assert_eq!(o.code, AT_RISK, "{}", o.stderr);
    let msgs: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("MSG")).collect();
    assert_eq!(
        msgs,
        ["MSG\tx\t18446744073709551615\terr\tcipher: message authentication failed"]
    );
    let (code, v) = json(&["store", "inspect", d(&s), "--key-file", k1(), "--records"]);
    assert_eq!(code, OK);
    let keys: Vec<&str> = channel(&v, "x")["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "unopened-wrong-key",
            "unopened-lookalike",
            "unopened-lookalike"
        ]
    );
    // A real envelope under an unknown key: decrypt refuses it.
    let o = run(&["store", "decrypt", d(&s), "--key-file", k1(), "--dry-run"]);
    assert_eq!(o.code, REFUSED);
    o.expect_stderr("an envelope no given key opens");
    o.expect_stderr("seq 18446744073709551615 (offset 4)");
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
    o.expect_stderr("more than once");
    assert_eq!(std::fs::read(&p).unwrap(), before);
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
        // The index is intact, so the server trusts it; its read-ahead
        // frames the batch by the index's sizes and never reads the header's
        // size: the message is served (a warning names the record). Without
        // read-ahead the single-record read compares the sizes and fails.
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, OK, "{}", o.stdout);
        o.expect_stdout("orders/msgs.2.dat");
        o.expect_stdout("read-ahead");
        let o = run(&[
            "store",
            "verify",
            d(&s),
            "--key-file",
            k1(),
            "--file-read-buffer-size",
            "0",
        ]);
        assert_eq!(o.code, AT_RISK, "{}", o.stdout);
        assert!(
            o.stdout.contains("expected size to be ") && o.stdout.contains(&size.to_string()),
            "{}",
            o.stdout
        );
        // Without the index the server must rebuild: unexpected EOF, no start.
        std::fs::remove_file(s.join("orders/msgs.2.idx")).unwrap();
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(o.code, WONT_START, "{}", o.stdout);
        o.expect_stdout("offset 4");
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
        o.expect_stdout("orders/msgs.1.idx");
        o.expect_stdout("remove the .idx");
        // A rewrite replaces the index anyway: decrypting writes a good one.
        run_ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
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
    run_ok(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert!(s.join("orders/msgs.2.idx").exists(), "index rebuilt");
    assert_decrypted(&s);
}

#[test]
fn idx_pointing_past_the_end_of_the_dat() {
    // Entry 0 starts the first batch: its offset is read, and past the end
    // of the file the lookup fails (EOF). A later entry's offset is ignored
    // by the read-ahead that starts at seq 1 and serves seqs 1..15: the
    // message is delivered, with a warning; without read-ahead it fails.
    for (entry, off) in [(0usize, 1u64 << 40), (3, u64::MAX), (3, 2449)] {
        let (_t, s) = store("aes");
        edit_entry(&s.join("orders/msgs.1.idx"), entry, |e| e.offset = off);
        let (code, v) = json(&["store", "inspect", d(&s)]);
        assert_eq!(code, 0);
        assert!(damage_kinds(&v).contains(&"index-mismatch".into()), "{v}");
        let o = run(&["store", "verify", d(&s), "--key-file", k1()]);
        assert_eq!(
            o.code,
            if entry == 0 { AT_RISK } else { OK },
            "{}",
            o.stdout
        );
        o.expect_stdout("orders/msgs.1.dat");
        let o = run(&[
            "store",
            "verify",
            d(&s),
            "--key-file",
            k1(),
            "--file-read-buffer-size",
            "0",
        ]);
        assert_eq!(o.code, AT_RISK, "{}", o.stdout);
        // The records are fine: a rewrite writes a correct index.
        run_ok(&["store", "decrypt", d(&s), "--key-file", k1(), "--dry-run"]);
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
    run_ok(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert!(out.join(raw).join("msgs.1.dat").exists());
    run_ok(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--assume-plaintext",
    ]);
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
    run_ok(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
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
    o.expect_stderr("holds the store's lock");
    drop(h);
    let o = run(&["store", "verify", d(&s), "--no-encrypt"]);
    assert_eq!(o.code, 0, "lock released: {}", o.stderr);
}

/// `--keep-damaged` in place writes a scratch copy of the store to
/// `$TMPDIR` for its check: a `$TMPDIR` that does not exist (it is not
/// created) or is a file is an I/O error (74) that names it as the
/// temporary directory and offers `--output`; the store is unchanged.
#[test]
fn a_missing_tmpdir_for_the_keep_damaged_scratch_copy_is_a_clear_io_error() {
    let (t, s) = store("damaged-crc");
    let before = snapshot(&s);
    let gone = t.path().join("no-such-tmpdir");
    let file = t.path().join("tmpdir-is-a-file");
    std::fs::write(&file, b"").unwrap();
    for tmp in [&gone, &file] {
        let args = ["store", "decrypt", d(&s), "-k", k1(), "--keep-damaged"];
        let o = exec(stanctl().args(args).env("TMPDIR", tmp), &args);
        assert_eq!(o.code, 74, "{}", o.stderr);
        let err = o.stderr.replace("\n  ", " ");
        assert!(
            err.contains(&format!(
                "stanctl: error: the temporary directory {} ($TMPDIR) failed: ",
                d(tmp)
            )) && err.contains("--keep-damaged writes a scratch copy of the store there"),
            "{err}"
        );
        assert!(
            err.contains("stanctl: hint: set TMPDIR to an existing directory")
                && err.contains("or use --output DIR"),
            "{err}"
        );
        assert!(snapshot(&s) == before, "the store changed: {err}");
    }
    assert!(!gone.exists(), "$TMPDIR was created");
}

/// `inspect --records` and `verify --list` spill their listing to a
/// temporary file past 64 KiB a slice: a `$TMPDIR` that does not exist (or
/// cannot be written) is an I/O error (74) that names it as the temporary
/// directory and says to set TMPDIR (not the generic advice about "the file
/// named above"), with no listing half printed and no panic.
#[test]
fn a_missing_tmpdir_for_a_spilled_listing_is_a_clear_io_error() {
    let (_t, s) = bare_store("plain");
    let parts: Vec<Part> = (1..=5000u64)
        .map(|seq| Part::Msg(seq, bytes(40, 3)))
        .collect();
    write_slice(&s.join("tiny"), 1, &parts);
    let gone = s.join("no-such-tmpdir");
    for args in [
        vec!["store", "inspect", d(&s), "--records"],
        vec!["store", "verify", d(&s), "--list"],
    ] {
        let o = exec(stanctl().args(&args).env("TMPDIR", &gone), &args);
        assert_eq!(o.code, 74, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(d(&gone)), "{args:?}: {}", o.stderr);
        let err = o.stderr.replace("\n  ", " ");
        assert!(
            err.contains(&format!(
                "stanctl: error: the temporary directory {} ($TMPDIR) failed: No such file or directory",
                d(&gone)
            )),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("stanctl: hint: set TMPDIR to an existing directory this user can write, on a file system with enough free space"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("the file named above"), "{args:?}: {err}");
        assert!(!o.stderr.contains("panicked"), "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}: {}", o.stdout);
    }
    // A $TMPDIR that is a file: the same error, with its reason.
    let file = s.join("tmpdir-is-a-file");
    std::fs::write(&file, b"").unwrap();
    let args = ["store", "verify", d(&s), "--list"];
    let o = exec(stanctl().args(args).env("TMPDIR", &file), &args);
    assert_eq!(o.code, 74, "{}", o.stderr);
    let err = o.stderr.replace("\n  ", " ");
    assert!(
        err.contains(&format!(
            "the temporary directory {} ($TMPDIR) failed: Not a directory",
            d(&file)
        )),
        "{err}"
    );
    assert!(err.contains("hint: set TMPDIR"), "{err}");
}
