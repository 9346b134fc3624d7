//! `verify --list` agrees with the reference server's own record of every
//! conformance store and setting, message by message, and the verdict and
//! exit code match what the server did.

mod common;
use common::*;

use stanctl::format::crc::Crc32;
use stanctl::format::index::{IndexEntry, ENTRY_LEN};
use stanctl::format::record::{Event, Records, HEADER_LEN, VERSION_LEN};
use std::path::Path;

/// `verify --no-encrypt --list`: (exit code, stdout).
fn list(dir: &Path) -> (i32, String) {
    let out = run(&["store", "verify", d(dir), "--no-encrypt", "--list"]);
    (out.code, out.stdout)
}

/// Offsets and payloads of the records of a `.dat`.
fn records(dat: &[u8]) -> Vec<(usize, Vec<u8>)> {
    Records::new(dat, false)
        .map(|ev| match ev {
            Event::Record(r) => (r.offset as usize, r.payload.to_vec()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Replaces the LAST record of a `.dat` with `payload` (header size and CRC
/// recomputed), so no other record moves.
fn rewrite_last_record(path: &Path, payload: &[u8]) {
    let dat = std::fs::read(path).unwrap();
    let (off, _) = records(&dat).pop().unwrap();
    let mut out = dat[..off].to_vec();
    stanctl::format::record::write_record(&mut out, 0, Crc32::ieee().checksum(payload), payload);
    std::fs::write(path, out).unwrap();
}

fn msg_line<'a>(out: &'a str, ch: &str, seq: u64) -> Option<&'a str> {
    let p = format!("MSG\t{ch}\t{seq}\t");
    out.lines().find(|l| l.starts_with(&p))
}

fn setting_args(setting: &str) -> Vec<String> {
    let f = fixtures();
    match setting {
        "no-encrypt" => vec!["--no-encrypt".into()],
        "key1" => vec!["--key-file".into(), f.join("k1.key").display().to_string()],
        "key2" => vec!["--key-file".into(), f.join("k2.key").display().to_string()],
        other => panic!("unknown setting {other}"),
    }
}

/// The lines a comparison covers: every line of the server's file but its
/// `#` comments (ERR, SERVER, CHANNEL, MSG, RECOVER-ERROR), with the
/// store's path written `<store>`.
fn comparable(text: &str, store: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.replace(store, "<store>"))
        .collect()
}

fn verify(store: &str, setting: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["store".to_string(), "verify".into()];
    args.push(d(&conformance(store)).into());
    args.extend(setting_args(setting));
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = run(&args);
    (out.code, out.stdout)
}

fn verify_dir(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["store", "verify", d(dir)];
    a.extend_from_slice(args);
    json(&a)
}

/// filestore.go, openFileWithFlags: a file that exists (os.Stat succeeds,
/// whatever its size) goes through checkFileVersion, whose util.ReadInt is an
/// io.ReadFull of 4 bytes: on a 0-byte file it fails with io.EOF, so
/// createFile fails with "unable to verify file version: EOF" and
/// newFileMsgStore stops the recovery ("unable to recover message store").
/// The version is only written for files that did not exist.
#[test]
fn empty_dat_file_stops_the_start() {
    let (_t, dir) = store("plain");
    std::fs::write(dir.join("orders/msgs.3.dat"), b"").unwrap();
    std::fs::remove_file(dir.join("orders/msgs.3.idx")).unwrap();
    let (code, out) = list(&dir);
    assert_eq!(code, WONT_START, "{out}");
    assert!(out.starts_with("RECOVER-ERROR"), "{out}");
}

/// Same path for the index: newFileMsgStore calls
/// ms.fm.createFile(idxFName) for every slice; an existing 0-byte msgs.N.idx
/// fails checkFileVersion ("unable to verify file version: EOF").
#[test]
fn empty_idx_file_stops_the_start() {
    let (_t, dir) = store("plain");
    std::fs::write(dir.join("orders/msgs.3.idx"), b"").unwrap();
    let (code, out) = list(&dir);
    assert_eq!(code, WONT_START, "{out}");
    assert!(out.starts_with("RECOVER-ERROR"), "{out}");
}

/// readRecord reads the payload with io.ReadFull(r, buf[:recSize]); when the
/// file ends right after a complete 8-byte header, no payload byte is read
/// and io.ReadFull returns io.EOF (not io.ErrUnexpectedEOF). The data-file
/// loop of recoverOneMsgFile treats io.EOF as the clean end ("We are done,
/// reset err"), so the server starts; handleUnexpectedEOF is never reached.
/// The dangling header's message simply does not exist (last = 39).
#[test]
fn header_without_payload_at_end_of_dat_is_a_clean_end() {
    let (_t, dir) = store("plain");
    let p = dir.join("orders/msgs.3.dat");
    let dat = std::fs::read(&p).unwrap();
    let (off, _) = records(&dat).pop().unwrap();
    std::fs::write(&p, &dat[..off + HEADER_LEN]).unwrap();
    std::fs::remove_file(dir.join("orders/msgs.3.idx")).unwrap();
    let (code, out) = list(&dir);
    assert_ne!(code, WONT_START, "{out}");
    assert!(out.contains("CHANNEL\torders\tfirst=1\tlast=39\t"), "{out}");
    assert!(
        msg_line(&out, "orders", 39).unwrap().contains("\tok\t"),
        "{out}"
    );
    assert!(msg_line(&out, "orders", 40).is_none(), "{out}");
}

/// FileMsgStore.lookup rejects only seq < ms.first or seq > ms.last; inside
/// that range getFileSliceForSeq finds no slice for 16..30 when msgs.2 is
/// gone and lookup returns (nil, nil): every one of those sequences is
/// looked up and not found, exactly like a missing entry inside a slice.
#[test]
fn sequences_between_slices_are_looked_up_and_not_found() {
    let (_t, dir) = store("plain");
    std::fs::remove_file(dir.join("orders/msgs.2.dat")).unwrap();
    std::fs::remove_file(dir.join("orders/msgs.2.idx")).unwrap();
    let (code, out) = list(&dir);
    assert_ne!(code, WONT_START, "{out}");
    assert!(out.contains("CHANNEL\torders\tfirst=1\tlast=40\t"), "{out}");
    for seq in 16..=30 {
        let l = msg_line(&out, "orders", seq)
            .unwrap_or_else(|| panic!("no line for orders seq {seq}:\n{out}"));
        assert!(l.contains("\terr\t"), "{l}");
    }
    let n = out
        .lines()
        .filter(|l| l.starts_with("MSG\torders\t"))
        .count();
    assert_eq!(n, 40, "{out}");
}

/// A slice whose last sequence is below its first (trusted index: 25, 26,
/// 22) makes the sequences between slices overlap (13-24 after the first
/// slice, 23-29 before the third): `--list` still gives a channel's lines in
/// sequence order, each sequence not found between slices once per gap, as
/// the lines read back from the temporary file are merged by sequence.
#[test]
fn list_lines_stay_in_sequence_order_when_gaps_overlap() {
    let (_t, s) = bare_store("plain");
    let dir = s.join("ch");
    let msgs = |seqs: &[u64]| -> Vec<Part> {
        seqs.iter()
            .map(|&q| Part::Msg(q, bytes(8, q as u8)))
            .collect()
    };
    write_slice(&dir, 1, &msgs(&(3..=12).collect::<Vec<_>>()));
    write_slice(&dir, 2, &msgs(&[25, 26, 22]));
    write_slice(&dir, 3, &msgs(&(30..=41).collect::<Vec<_>>()));
    let (code, out) = list(&s);
    assert_eq!(code, AT_RISK, "{out}");
    let seqs: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("MSG\tch\t"))
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{out}");
    for seq in [23, 24] {
        let n = seqs.iter().filter(|&&q| q == seq).count();
        assert_eq!(n, 2, "seq {seq} is in both gaps:\n{out}");
    }
    assert_eq!(seqs.first(), Some(&3), "{out}");
    assert_eq!(seqs.last(), Some(&41), "{out}");
}

/// filestore.go v0.25.6: lookup(1) takes the read-ahead path, which frames
/// its batch by the INDEX sizes and checks each record's CRC over that many
/// bytes: with seq 2's entry shorter than its record, the CRC of the prefix
/// is not the header's, the batch fails at seq 2 and seq 1 is served by the
/// single-record read. lookup(2)'s batch fails at its first record, so seq 2
/// goes through the single-record read, which compares the header's size
/// with the index's first: "expected size to be <index>, got <header>".
/// lookup(3) starts a new batch that reads fine.
#[test]
fn index_size_shorter_than_record_fails_the_size_check() {
    let (_t, dir) = store("plain");
    let crc = Crc32::ieee();
    let dat = std::fs::read(dir.join("orders/msgs.1.dat")).unwrap();
    let recs = records(&dat);
    let (off, payload) = &recs[1]; // seq 2
    let ts_at = stanctl::format::proto::fields(payload)
        .map(|f| f.unwrap())
        .find(|f| f.number == 5)
        .expect("timestamp field")
        .start;
    let ip = dir.join("orders/msgs.1.idx");
    let mut idx = std::fs::read(&ip).unwrap();
    let at = VERSION_LEN + ENTRY_LEN;
    let e = IndexEntry::parse(idx[at..at + ENTRY_LEN].try_into().unwrap());
    assert_eq!((e.seq, e.offset), (2, *off as u64));
    let short = IndexEntry::new(e.seq, e.offset, e.timestamp, ts_at as u32, &crc);
    idx[at..at + ENTRY_LEN].copy_from_slice(&short.to_bytes());
    std::fs::write(&ip, idx).unwrap();

    let (code, out) = list(&dir);
    assert_eq!(code, AT_RISK, "{out}");
    let l = msg_line(&out, "orders", 2).unwrap();
    assert_eq!(
        l,
        format!(
            "MSG\torders\t2\terr\texpected size to be {ts_at}, got {}",
            payload.len()
        )
    );
    for seq in [1, 3] {
        let l = msg_line(&out, "orders", seq).unwrap();
        assert!(l.starts_with(&format!("MSG\torders\t{seq}\tok\t")), "{l}");
    }
    // Without read-ahead every lookup is a single-record read: the same.
    let o = run(&[
        "store",
        "verify",
        d(&dir),
        "--no-encrypt",
        "--list",
        "--file-read-buffer-size",
        "0",
    ]);
    assert_eq!(msg_line(&o.stdout, "orders", 2), Some(l));
}

/// gogo-protobuf generated Unmarshal checks the wire type of every field the
/// message declares ("proto: wrong wireType = 2 for field RedeliveryCount"),
/// field 7 included; stanctl skips field 7 whatever its wire type. Without
/// an index the server decodes every record while rebuilding
/// (recoverOneMsgFile: `err = msg.Unmarshal(...); if err != nil { break }`),
/// so the start fails.
#[test]
fn known_field_with_wrong_wire_type_stops_the_rebuild() {
    let (_t, dir) = store("plain");
    let p = dir.join("orders/msgs.1.dat");
    let dat = std::fs::read(&p).unwrap();
    let (_, mut payload) = records(&dat).pop().unwrap();
    payload.extend_from_slice(&[7 << 3 | 2, 0]); // field 7 as length-delimited
    rewrite_last_record(&p, &payload);
    std::fs::remove_file(dir.join("orders/msgs.1.idx")).unwrap();
    let (code, out) = list(&dir);
    assert_eq!(code, WONT_START, "{out}");
}

/// gogo-protobuf's generated skip function (skipProtocol) skips an unknown
/// field of wire type 3 (start group) up to its matching end group (wire
/// type 4): an unknown group is skipped like any unknown field. stanctl
/// rejects wire type 3, predicting a failed rebuild where the server starts
/// and delivers the message.
#[test]
fn unknown_group_field_is_skipped() {
    let (_t, dir) = store("plain");
    let p = dir.join("orders/msgs.1.dat");
    let dat = std::fs::read(&p).unwrap();
    let (_, mut payload) = records(&dat).pop().unwrap();
    payload.extend_from_slice(&[15 << 3 | 3, 15 << 3 | 4]); // empty group, field 15
    rewrite_last_record(&p, &payload);
    std::fs::remove_file(dir.join("orders/msgs.1.idx")).unwrap();
    let (code, out) = list(&dir);
    assert_ne!(code, WONT_START, "{out}");
    assert!(
        msg_line(&out, "orders", 15).unwrap().contains("\tok\t"),
        "{out}"
    );
}

/// During the rebuild, readRecord checks the CRC (doCRC) BEFORE
/// recoverOneMsgFile calls msg.Unmarshal; a record that is both undecodable
/// and CRC-damaged fails with "corrupted data, expected crc to be ...".
#[test]
fn rebuild_reports_the_crc_error_before_the_decode_error() {
    let (_t, dir) = store("plain");
    let p = dir.join("orders/msgs.1.dat");
    let mut dat = std::fs::read(&p).unwrap();
    let (off, payload) = records(&dat).pop().unwrap();
    // A field-0 tag makes the payload undecodable; the CRC is left as it was.
    dat[off + HEADER_LEN] = 0x00;
    assert_ne!(payload[0], 0);
    std::fs::write(&p, dat).unwrap();
    std::fs::remove_file(dir.join("orders/msgs.1.idx")).unwrap();
    let (code, out) = list(&dir);
    assert_eq!(code, WONT_START, "{out}");
    let first = out.lines().next().unwrap();
    assert!(
        first.contains("corrupted data, expected crc to be"),
        "{first}"
    );
}

/// FileStore.Recover (v0.25.6) -> recoverServerInfo: readRecord on a
/// server.dat that holds only its 4-byte version, or its version and a
/// record header with no payload byte, returns io.EOF ("no state
/// recovered"). With channel directories present Recover then returns
/// ErrNoSrvButChannels: the server refuses to start. Without any, it starts
/// as a brand-new store.
#[test]
fn server_dat_without_state_refuses_when_channels_exist() {
    let (_t, dir) = store("plain");
    std::fs::write(dir.join("server.dat"), 1u32.to_le_bytes()).unwrap();
    let (code, out) = list(&dir);
    assert_eq!(code, WONT_START, "{out}");
    assert!(out.starts_with("RECOVER-ERROR"), "{out}");
    assert!(
        out.contains("no server state recovered but channels present"),
        "{out}"
    );
    // A bare header after the version is the same io.EOF.
    let mut b = 1u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[20, 0, 0, 0, 1, 2, 3, 4]);
    std::fs::write(dir.join("server.dat"), b).unwrap();
    let (code, out) = list(&dir);
    assert_eq!(code, WONT_START, "{out}");

    // No channel directory: a new store.
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("server.dat"), 1u32.to_le_bytes()).unwrap();
    let (code, out) = list(t.path());
    assert_ne!(code, WONT_START, "{out}");
    assert!(!out.starts_with("RECOVER-ERROR"), "{out}");
}

#[test]
fn list_matches_the_server_on_every_store_and_setting() {
    let dir = fixtures().join("conformance/expected");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 14, "expected files missing");
    for f in files {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        let (store, setting) = name.rsplit_once('.').unwrap();
        let expected_text = std::fs::read_to_string(&f).unwrap();
        let (code, out) = verify(store, setting, &["--list"]);
        let root = conformance(store).display().to_string();
        assert_eq!(
            comparable(&out, &root),
            comparable(&expected_text, &root),
            "{name}: verify --list differs from the server"
        );
        // The portable RustCrypto backend says exactly the same as ring.
        let (code_rc, out_rc) = verify(store, setting, &["--list", "--rustcrypto"]);
        assert_eq!(
            (code_rc, &out_rc),
            (code, &out),
            "{name}: the RustCrypto backend disagrees"
        );

        // The verdict follows what the server did.
        let refused = expected_text
            .lines()
            .any(|l| l.starts_with("RECOVER-ERROR"));
        let failed = expected_text
            .lines()
            .any(|l| l.starts_with("MSG") && l.split('\t').nth(3) == Some("err"));
        let ciphertext = setting == "no-encrypt" && store != "plain" && store != "mixed-plain";
        let want = if refused {
            2
        } else if failed || ciphertext {
            1
        } else {
            0
        };
        assert_eq!(code, want, "{name}: exit code");
        if refused {
            assert!(
                out.contains("RECOVER-ERROR"),
                "{name}: no RECOVER-ERROR line"
            );
        }
    }
}

#[test]
fn verdicts_named_in_the_issue() {
    // damaged-truncated does not start; truncation drops seq 40.
    let (code, out) = verify("damaged-truncated", "key1", &["--json"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "will-not-start");
    let f = &v["findings"][0];
    assert_eq!(f["severity"], "will-not-start");
    assert_eq!(f["file"], "orders/msgs.3.dat");
    assert_eq!(f["offset"], 1514);
    assert!(
        f["remedy"].as_str().unwrap().contains("drops seq 40"),
        "{f}"
    );

    // With truncation on, the server starts and seq 40 of orders is lost.
    let (code, out) = verify(
        "damaged-truncated",
        "key1",
        &["--truncate-on-eof", "--json"],
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let orders = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap();
    assert_eq!(orders["last_seq"], 39);
    assert_eq!(v["totals"]["lost"], 1, "seq 40 is dropped at start-up");

    // damaged-crc fails seq 18 of orders, and only it.
    let (code, out) = verify("damaged-crc", "key1", &["--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fails: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "fails")
        .collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0]["channel"], "orders");
    assert_eq!(fails[0]["first_seq"], 18);
    assert_eq!(fails[0]["last_seq"], 18);
    assert_eq!(v["totals"]["failed"], 1);

    // plain with K1 fails seqs 11, 22, 33 of both channels.
    let (code, out) = verify("plain", "key1", &["--list"]);
    assert_eq!(code, 1);
    let errs: Vec<_> = out
        .lines()
        .filter(|l| l.contains("\terr\t"))
        .map(|l| l.split('\t').nth(2).unwrap().to_string())
        .collect();
    assert_eq!(errs, ["11", "22", "33", "11", "22", "33"]);

    // aes with K2 fails every non-empty message.
    let (code, out) = verify("aes", "key2", &["--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totals"]["failed"], 75);
    assert_eq!(v["totals"]["empty"], 8);

    // aes without encryption delivers ciphertext.
    let (code, out) = verify("aes", "no-encrypt", &["--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totals"]["ciphertext"], 75);
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "ciphertext"));

    // plain without encryption: fine now, but seqs 11/22/33 fail once it is on.
    let (code, out) = verify("plain", "no-encrypt", &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warn: u64 = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["what"]
                .as_str()
                .unwrap()
                .contains("once encryption is on")
        })
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert_eq!(warn, 6);
}

#[test]
fn usage_and_io_exit_codes() {
    let code = |args: &[&str]| run(args).code;
    assert_eq!(code(&["store", "verify", "/nonexistent/store"]), 74);
    assert_eq!(code(&["store", "verify", "--bogus"]), 64);
    let k1 = fixtures().join("k1.key");
    let k2 = fixtures().join("k2.key");
    let aes = fixtures().join("conformance/aes");
    assert_eq!(
        code(&[
            "store",
            "verify",
            aes.to_str().unwrap(),
            "--key-file",
            k1.to_str().unwrap(),
            "--key-file",
            k2.to_str().unwrap()
        ]),
        64,
        "the server has one key"
    );
}

#[test]
fn verify_refuses_a_store_a_running_server_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    copy_dir(&fixtures().join("conformance/plain"), &store);
    // A separate process holds the fcntl lock, as a running server does.
    let holder = LockHolder::new(&store);
    let out = run(&["store", "verify", d(&store), "--no-encrypt"]);
    drop(holder);
    assert_eq!(Some(out.code), Some(3));
    assert!(out.stderr.contains("locked by a running process"));
}

#[test]
fn a_bad_crc_stops_the_start_when_the_index_must_be_rebuilt() {
    // With its index the server starts and fails seq 18 alone; without it the
    // server rebuilds the index from the .dat, meets the bad CRC and stops.
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    copy_dir(&fixtures().join("conformance/damaged-crc"), &store);
    std::fs::remove_file(store.join("orders/msgs.2.idx")).unwrap();
    let k1 = fixtures().join("k1.key");
    let (code, v) = verify_dir(&store, &["--key-file", k1.to_str().unwrap()]);
    assert_eq!(code, 2);
    let f = &v["findings"][0];
    assert_eq!(f["severity"], "will-not-start");
    assert_eq!(f["file"], "orders/msgs.2.dat");
    assert_eq!(f["offset"], 402);
}

#[test]
fn records_past_the_last_index_entry_are_invisible() {
    // Drop the last index entry: the server's last-entry check passes on seq
    // 39, so it trusts the index and never sees seq 40.
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    copy_dir(&fixtures().join("conformance/aes"), &store);
    let idx = store.join("sensors.temp/msgs.3.idx");
    let len = std::fs::metadata(&idx).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(len - 32)
        .unwrap();
    let k1 = fixtures().join("k1.key");
    let (code, v) = verify_dir(&store, &["--key-file", k1.to_str().unwrap()]);
    assert_eq!(code, 1);
    let ch = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sensors.temp")
        .unwrap();
    assert_eq!(ch["last_seq"], 39);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "fails")
        .unwrap();
    assert_eq!(f["first_seq"], 40);
    assert_eq!(f["count"], 1);
    assert!(f["remedy"].as_str().unwrap().contains("remove the .idx"));
}

#[test]
fn zero_padding_and_missing_index_are_warnings_only() {
    for store in ["damaged-zero-tail", "damaged-noidx"] {
        let k1 = fixtures().join("k1.key");
        let (code, v) = verify_dir(
            &fixtures().join("conformance").join(store),
            &["--key-file", k1.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{store}");
        assert_eq!(v["verdict"], "ok");
        let f = v["findings"].as_array().unwrap();
        assert!(
            !f.is_empty() && f.iter().all(|f| f["severity"] == "warning"),
            "{store}: {f:?}"
        );
    }
}

#[test]
fn bak_files_are_reported_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    copy_dir(&fixtures().join("conformance/plain"), &store);
    // Garbage that would be damage if it were read.
    std::fs::write(
        store.join("orders/msgs.0.dat.bak"),
        b"\x07\x00\x00\x00garbage",
    )
    .unwrap();
    let out = run(&["store", "inspect", d(&store), "--json"]);
    assert_eq!(Some(out.code), Some(0));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let orders = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap();
    assert_eq!(orders["bak_files"][0], "orders/msgs.0.dat.bak");
    assert_eq!(orders["messages"], 40);
    assert!(v["damage"].as_array().unwrap().is_empty());
    assert!(v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("msgs.0.dat.bak")));
    let (code, v) = verify_dir(&store, &["--no-encrypt"]);
    assert_eq!(code, 0);
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["file"] == "orders/msgs.0.dat.bak" && f["severity"] == "warning"));
}

#[test]
fn a_closed_pipe_keeps_the_verdict() {
    // `stanctl store verify ... | head -1`: the reader goes away; the exit
    // code must still be the verdict's, not an I/O error.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stanctl"))
        .args(["store", "verify"])
        .arg(fixtures().join("conformance/plain"))
        .arg("--key-file")
        .arg(fixtures().join("k1.key"))
        .arg("--list")
        .env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(AT_RISK),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_directory_where_a_store_file_belongs_is_an_error() {
    for f in ["orders/subs.dat", "clients.dat", "orders/msgs.2.dat"] {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("s");
        copy_dir(&fixtures().join("conformance/plain"), &store);
        std::fs::remove_file(store.join(f)).unwrap();
        std::fs::create_dir(store.join(f)).unwrap();
        for cmd in ["inspect", "verify"] {
            let out = run(&["store", cmd, d(&store)]);
            assert_eq!(Some(out.code), Some(74), "{cmd} {f}");
            let err = out.stderr.as_str();
            assert!(
                err.contains("not a regular file") && err.contains(f),
                "{cmd} {f}: {err}"
            );
        }
    }
}

/// A side file that ends in a bare record header (size 5, no payload byte)
/// is a clean end of file for the server (`io.ReadFull` returns `io.EOF`):
/// it starts and serves every message, so verify must not say WILL NOT START.
#[test]
fn clients_dat_ending_in_a_bare_header_still_starts() {
    let (_t, s) = store("plain");
    let clients = s.join("clients.dat");
    let mut b = std::fs::read(&clients).unwrap();
    b.extend_from_slice(&((1u32 << 24) | 5).to_le_bytes());
    b.extend_from_slice(&0x1234_5678u32.to_le_bytes());
    std::fs::write(&clients, b).unwrap();
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "ok", "{v:#}");
    assert_eq!(code(&o), 0);
    assert_eq!(v["clients"], 2);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "clients.dat")
        .expect("a finding about clients.dat");
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        f["remedy"],
        "truncate clients.dat at this offset before starting"
    );
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
    assert!(
        o.stdout.as_str().starts_with("SERVER\t"),
        "no log line: {}",
        o.stdout
    );
}

/// The index path of a channel whose name ends in `.dat` keeps the name.
#[test]
fn missing_index_of_a_channel_named_like_a_data_file_is_named_right() {
    let (_t, s) = store("damaged-noidx");
    std::fs::rename(s.join("orders"), s.join("orders.dat")).unwrap();
    let o = run(&["store", "verify", d(&s), "--key-file", k1(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let files: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(files.contains(&"orders.dat/msgs.2.idx"), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("orders.idx")), "{files:?}");
    let o = run(&["store", "inspect", d(&s), "--key-file", k1(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let missing: Vec<&str> = v["damage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "index-missing")
        .filter_map(|d| d["file"].as_str())
        .collect();
    assert_eq!(missing, vec!["orders.dat/msgs.2.idx"]);
}

/// (offset, end) of each record of a typed side file.
fn side_records(b: &[u8]) -> Vec<(usize, usize)> {
    Records::new(b, true)
        .map(|ev| match ev {
            Event::Record(r) => (r.offset as usize, r.end() as usize),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn clients_of(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("SERVER\t"))
        .and_then(|l| l.split('\t').nth(1))
        .unwrap_or_else(|| panic!("no SERVER line: {out}"))
}

/// recoverClients (filestore.go v0.25.6) reads clients.dat with readRecord:
/// a record cut short is "unexpected EOF", which stops the server unless it
/// runs with -file_truncate_bad_eof (then the file is truncated there and
/// the record is lost); a zero header truncates the file there whatever the
/// options, dropping every record after it; a CRC mismatch stops the server
/// unless -file_crc=false.
#[test]
fn clients_dat_recovery_follows_the_server() {
    let (_t, s) = store("plain");
    let p = s.join("clients.dat");
    let orig = std::fs::read(&p).unwrap();
    let recs = side_records(&orig);
    assert_eq!(recs.len(), 2);
    let args = |extra: &[&str]| {
        let mut a = vec!["store", "verify", d(&s), "--no-encrypt", "--list"];
        a.extend_from_slice(extra);
        run(&a)
    };

    // The last record's payload cut short.
    std::fs::write(&p, &orig[..orig.len() - 3]).unwrap();
    let o = args(&[]);
    assert_eq!(o.code, WONT_START, "{}", o.stdout);
    let o = args(&["--truncate-on-eof"]);
    assert_eq!(o.code, OK, "{}", o.stdout);
    assert_eq!(clients_of(&o.stdout), "clients=1");

    // A zero header before the second record: truncated, one client left.
    let mut b = orig[..recs[1].0].to_vec();
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&orig[recs[1].0..]);
    std::fs::write(&p, &b).unwrap();
    let o = args(&[]);
    assert_eq!(o.code, OK, "{}", o.stdout);
    assert_eq!(clients_of(&o.stdout), "clients=1");

    // A damaged CRC field: the server stops, unless CRCs are off.
    let mut b = orig.clone();
    b[recs[0].0 + 4] ^= 0x01;
    std::fs::write(&p, &b).unwrap();
    let o = args(&[]);
    assert_eq!(o.code, WONT_START, "{}", o.stdout);
    for off in [&["--no-file-crc"][..], &["--file-crc=false"][..]] {
        let o = args(off);
        assert_eq!(o.code, OK, "{}", o.stdout);
        assert_eq!(clients_of(&o.stdout), "clients=2");
    }

    // A record type that is neither 1 (add) nor 2 (delete).
    let mut b = orig.clone();
    b[recs[0].0 + 3] = 7;
    std::fs::write(&p, &b).unwrap();
    let (code, v) = verify_dir(&s, &["--no-encrypt"]);
    assert_eq!(code, WONT_START);
    assert_eq!(v["findings"][0]["file"], "clients.dat");
    assert!(
        v["findings"][0]["what"]
            .as_str()
            .unwrap()
            .contains("invalid client record type: 7"),
        "{v}"
    );
    // Type 1 <-> 2: both decode; the add becomes a delete.
    let mut b = orig.clone();
    b[recs[0].0 + 3] = 2;
    std::fs::write(&p, &b).unwrap();
    let o = args(&[]);
    assert_eq!(o.code, OK, "{}", o.stdout);
    assert_eq!(clients_of(&o.stdout), "clients=1");
}

/// recoverSubscriptions: a zero header truncates subs.dat there (the
/// subscription records after it are dropped); a record cut short stops
/// the server unless -file_truncate_bad_eof.
#[test]
fn subs_dat_recovery_follows_the_server() {
    let (_t, s) = store("plain");
    let p = s.join("orders/subs.dat");
    let orig = std::fs::read(&p).unwrap();
    let recs = side_records(&orig);
    let subs = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("CHANNEL\torders\t"))
            .map(|l| l.rsplit('\t').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("{out}"))
    };
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
    assert_eq!(subs(&o.stdout), "subs=1");

    // A zero header over the first record: no subscription left.
    let mut b = orig[..recs[0].0].to_vec();
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&orig[recs[0].0 + 8..]);
    std::fs::write(&p, &b).unwrap();
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
    assert_eq!(o.code, OK, "{}", o.stdout);
    assert_eq!(subs(&o.stdout), "subs=0");

    // Cut inside the last record's payload.
    let last = recs.last().unwrap();
    std::fs::write(&p, &orig[..last.1 - 1]).unwrap();
    let o = run(&["store", "verify", d(&s), "--no-encrypt", "--list"]);
    assert_eq!(o.code, WONT_START, "{}", o.stdout);
    let o = run(&[
        "store",
        "verify",
        d(&s),
        "--no-encrypt",
        "--list",
        "--truncate-on-eof",
    ]);
    assert_eq!(o.code, OK, "{}", o.stdout);
}

/// An index that holds its version and no entry: the server recovers the
/// slice from its data file (recoverOneMsgFile: lastIndex == nil), so every
/// message is there.
#[test]
fn index_without_entries_is_rebuilt_from_the_data_file() {
    let (_t, s) = store("plain");
    std::fs::write(s.join("orders/msgs.2.idx"), 1u32.to_le_bytes()).unwrap();
    let (code, out) = list(&s);
    assert_eq!(code, OK, "{out}");
    for seq in 1..=40 {
        let l = msg_line(&out, "orders", seq).unwrap();
        assert!(l.contains("\tok\t"), "{l}");
    }
}

/// `--file-read-buffer-size` takes sizes as the server's configuration does.
#[test]
fn read_buffer_size_takes_units() {
    let (_t, s) = store("plain");
    for (arg, shown) in [
        ("64KB", "65536 bytes"),
        ("2MB", "2097152 bytes"),
        ("100", "100 bytes"),
        ("0", "0 (no read-ahead)"),
    ] {
        let o = run(&[
            "store",
            "verify",
            d(&s),
            "--no-encrypt",
            "--file-read-buffer-size",
            arg,
        ]);
        assert_eq!(o.code, OK, "{arg}: {}", o.stderr);
        o.expect_stdout(&format!("file read buffer size {shown}"));
    }
    let (_, v) = verify_dir(
        &s,
        &[
            "--no-encrypt",
            "--file-read-buffer-size",
            "1KB",
            "--no-file-crc",
        ],
    );
    assert_eq!(v["settings"]["file_read_buffer_size"], 1024);
    assert_eq!(v["settings"]["file_crc"], false);
    let o = run(&["store", "verify", d(&s), "--file-read-buffer-size", "-1"]);
    assert_eq!(o.code, USAGE);
    let o = run(&["store", "verify", d(&s), "--file-read-buffer-size", "2XB"]);
    assert_eq!(o.code, USAGE);
}
