//! Stores other than the conformance fixtures on which `verify` must predict
//! what nats-streaming-server (file store) actually does. Each test builds a
//! damaged copy of a conformance store and asserts the server's behaviour,
//! as read from the server's source (stores/filestore.go), cited per test.

mod common;
use common::*;

use assert_cmd::Command;
use stanctl::format::crc::Crc32;
use stanctl::format::index::{IndexEntry, ENTRY_LEN};
use stanctl::format::record::{Event, Records, HEADER_LEN, VERSION_LEN};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const WONT_START: i32 = 2;

fn store(name: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&conformance(name), &dir);
    (tmp, dir)
}

/// `verify --no-encrypt --list`: (exit code, stdout).
fn list(dir: &Path) -> (i32, String) {
    let out = Command::cargo_bin("stanctl")
        .unwrap()
        .env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env("RUST_BACKTRACE", "0")
        .args(["store", "verify"])
        .arg(dir)
        .args(["--no-encrypt", "--list"])
        .output()
        .unwrap();
    assert_no_secrets(&out);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
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

/// FileMsgStore.lookup reads the record at the entry's offset, then decodes
/// msg.Unmarshal(ms.tmpMsgBuf[:msgIndex.msgSize]): the size from the INDEX,
/// never compared with the record's own size (readRecord checked the CRC of
/// the whole record). With an entry (not the last one, which recovery
/// checks) whose size stops right before field 5, the prefix decodes
/// cleanly and the message is delivered with timestamp 0.
#[test]
fn index_size_shorter_than_record_delivers_the_decoded_prefix() {
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
    assert_ne!(code, WONT_START, "{out}");
    let l = msg_line(&out, "orders", 2).unwrap();
    assert!(l.starts_with("MSG\torders\t2\tok\t"), "{l}");
    assert!(l.ends_with("\t0"), "timestamp is lost with field 5: {l}");
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

/// server.go (NewStanServer/startStore): the crypto store is only installed
/// `if sOpts.Encrypt || len(sOpts.EncryptionKey) > 0`; the environment
/// variable is read later, inside stores.createMasterKeyHash ("Always check
/// env variable first"), i.e. only once encryption is on. With the variable
/// set but neither -encrypt nor a configured key, the server runs WITHOUT
/// encryption and delivers the stored envelopes as they are, exactly as in
/// expected/aes.no-encrypt.tsv.
#[test]
fn env_key_alone_does_not_turn_encryption_on() {
    let dir = conformance("aes");
    let key =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/k1.key"))
            .unwrap();
    let out = Command::cargo_bin("stanctl")
        .unwrap()
        .env("NATS_STREAMING_ENCRYPTION_KEY", key.trim_end_matches('\n'))
        .env("RUST_BACKTRACE", "0")
        .args(["store", "verify"])
        .arg(&dir)
        .arg("--list")
        .output()
        .unwrap();
    assert_no_secrets(&out);
    let got = String::from_utf8(out.stdout).unwrap();
    let want = std::fs::read_to_string(conformance("expected/aes.no-encrypt.tsv")).unwrap();
    let keep = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| {
                l.starts_with("MSG\t") || l.starts_with("CHANNEL\t") || l.starts_with("SERVER\t")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(keep(&got), keep(&want));
}

/// FileStore.Recover -> recoverServerInfo: readRecord on a server.dat that
/// holds only its 4-byte version returns io.EOF ("We are done, no state
/// recovered": return nil, nil), and Recover returns no recovered state:
/// the server starts as a brand-new store. It does not refuse to start.
#[test]
fn server_dat_with_only_its_version_starts_as_a_new_store() {
    let (_t, dir) = store("plain");
    std::fs::write(dir.join("server.dat"), 1u32.to_le_bytes()).unwrap();
    let (code, out) = list(&dir);
    assert_ne!(code, WONT_START, "{out}");
    assert!(!out.starts_with("RECOVER-ERROR"), "{out}");
}
