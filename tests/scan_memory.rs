//! inspect's and the rewrite check's memory does not grow with the records
//! of a slice (issue 13): the peak of live heap bytes during
//! `inspect::run` and a `--dry-run` rewrite (`rewrite::run`: the check
//! only), counted by this test binary's allocator (deterministic, whatever
//! the machine's load), on a store of one slice of tiny messages at two
//! sizes (and `inspect --records`, its listing read back as it is
//! printed). Before the change both kept the slice's index entries (32 bytes
//! a record) and its nonce runs (32 bytes an envelope of stanctl's, whose
//! nonces are one run each) until the slice was read.
//! (Mapped pages are not heap: the scanner gives them back every 8 MiB;
//! see `format::raft::bbolt::read`'s test for the Raft log's.)
//! One test only: the counter is global to the binary; one worker thread,
//! so that the peak does not depend on how the slices are scheduled.

mod common;

use common::*;
use stanctl::crypto::aead::{Backend, ChannelAead, Cipher};
use stanctl::crypto::keys::{Key, KeyOrigin};
use stanctl::format::crc::Crc32;
use stanctl::format::layout::StoreLayout;
use stanctl::ops::inspect::{self, InspectOptions};
use stanctl::ops::rewrite::{self, RewriteOptions, Rule};
use std::path::Path;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const MIB: usize = 1 << 20;
const SMALL: u64 = 50_000;
const LARGE: u64 = 5 * SMALL;

fn k1_key() -> Key {
    Key::from_material("K1", KeyOrigin::CommandLine, &material(k1()))
}

/// A store with one channel of one slice of `n` 40-byte messages (index
/// included, as the server writes them): plaintext, or envelopes under K1
/// whose nonces are one run each (as stanctl's are: counter = 2 x seq).
fn tiny_store(n: u64, encrypted: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, s) = bare_store("plain");
    let payload = bytes(40, 7);
    let aead = ChannelAead::new(&k1_key().channel_key(b"tiny"), Backend::default());
    let parts: Vec<Part> = (1..=n)
        .map(|seq| {
            let data = if encrypted {
                let mut nonce = [0x5Au8; 12];
                nonce[4..].copy_from_slice(&(2 * seq).to_be_bytes());
                let mut out = Vec::new();
                stanctl::crypto::envelope::seal(&aead, Cipher::ChaCha, &nonce, &payload, &mut out);
                out
            } else {
                payload.clone()
            };
            Part::Msg(seq, data)
        })
        .collect();
    write_slice(&s.join("tiny"), 1, &parts);
    (t, s)
}

/// Peak live heap bytes above the start while `f` runs on one worker thread.
fn peak<T: Send>(f: impl FnOnce() -> T + Send) -> (usize, T) {
    counting::peak_on_one_thread(f)
}

fn inspect_peak(dir: &Path, keys: &[Key]) -> usize {
    let layout = StoreLayout::discover(dir).unwrap();
    let opts = InspectOptions {
        crc: Crc32::ieee(),
        backend: Backend::default(),
        records: false,
    };
    let (p, r) = peak(|| inspect::run(&layout, keys, &opts, &stanctl::ops::Silent).unwrap());
    let n = r.totals.messages;
    assert!(n == SMALL || n == LARGE, "{n} messages");
    assert!(r.damage.is_empty(), "{:?}", r.damage);
    assert!(r.reused_nonces.is_empty());
    if !keys.is_empty() {
        assert_eq!(r.totals.opened[0].opened, n, "every envelope opens");
    }
    drop(r);
    p
}

/// The peak of `inspect --records` (the listing made, then read back as
/// the printer reads it, row by row), whose rows must be every record in
/// order: 40 bytes, hashed, opened by K1 when keys are given.
fn records_peak(dir: &Path, keys: &[Key]) -> usize {
    let layout = StoreLayout::discover(dir).unwrap();
    let opts = InspectOptions {
        crc: Crc32::ieee(),
        backend: Backend::default(),
        records: true,
    };
    let (p, (r, rows)) = peak(|| {
        let r = inspect::run(&layout, keys, &opts, &stanctl::ops::Silent).unwrap();
        let mut rows = 0u64;
        for c in &r.channels {
            let recs = c.records.as_ref().expect("--records");
            recs.try_for_each(|x| {
                rows += 1;
                assert_eq!((x.slice, x.seq, x.length), (1, rows, 40), "{x:?}");
                assert!(x.crc_ok && x.sha256.is_some(), "{x:?}");
                let class = if keys.is_empty() {
                    "plaintext"
                } else {
                    "chacha"
                };
                assert_eq!(x.class, class, "{x:?}");
                assert_eq!(x.key.as_deref(), keys.first().map(|k| k.id.as_str()));
                Ok(())
            })
            .unwrap();
            assert_eq!(recs.len(), rows);
        }
        (r, rows)
    });
    assert_eq!(rows, r.totals.messages);
    assert!(rows == SMALL || rows == LARGE, "{rows} rows");
    drop(r);
    p
}

/// The peak of a dry run of `rule` (the check alone), which must plan to
/// change every record.
fn check_peak(dir: &Path, rule: Rule, keys: &[Key]) -> usize {
    check_peak_with(dir, rule, keys, false)
}

/// `check_peak`, with `--keep-damaged` when `keep_damaged` (on a store with
/// nothing to salvage it must cost what the plain check costs).
fn check_peak_with(dir: &Path, rule: Rule, keys: &[Key], keep_damaged: bool) -> usize {
    let opts = RewriteOptions {
        rule,
        assume_plaintext: false,
        crc: Crc32::ieee(),
        backend: Backend::default(),
        output: None,
        dry_run: true,
        node: Default::default(),
        keep_damaged,
        one_pass: false,
    };
    let (p, r) = peak(|| rewrite::run(dir, keys, &opts, &stanctl::ops::Silent).unwrap());
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let t = &r.totals;
    assert!(t.records == SMALL || t.records == LARGE, "{t:?}");
    assert_eq!(t.changed, t.records, "{t:?}");
    drop(r);
    p
}

#[test]
fn inspect_and_the_rewrite_check_do_not_grow_with_the_records_of_a_slice() {
    let keys = [k1_key()];
    let extra = (LARGE - SMALL) as usize;
    let (_ps, ps) = tiny_store(SMALL, false);
    let (_pl, pl) = tiny_store(LARGE, false);
    let (_es, es) = tiny_store(SMALL, true);
    let (_el, el) = tiny_store(LARGE, true);
    let enc = Rule::Encrypt {
        cipher: Cipher::ChaCha,
    };
    // (what, peak at SMALL, peak at LARGE, bytes allowed per extra record)
    let runs = [
        (
            "inspect, plaintext",
            inspect_peak(&ps, &[]),
            inspect_peak(&pl, &[]),
            0,
        ),
        (
            "encrypt --dry-run",
            check_peak(&ps, enc, &keys),
            check_peak(&pl, enc, &keys),
            0,
        ),
        (
            "decrypt --dry-run",
            check_peak(&es, Rule::Decrypt, &keys),
            check_peak(&el, Rule::Decrypt, &keys),
            0,
        ),
        // It kept a table of every record (152 bytes each) for the salvage.
        (
            "decrypt --keep-damaged --dry-run",
            check_peak_with(&es, Rule::Decrypt, &keys, true),
            check_peak_with(&el, Rule::Decrypt, &keys, true),
            0,
        ),
        // The reuse check keeps every nonce run (32 bytes, in a vector that
        // doubles) up to its 64 MiB budget (then spills them to disk): the
        // one thing that grows, and only once.
        (
            "inspect --key-file, one nonce run per envelope",
            inspect_peak(&es, &keys),
            inspect_peak(&el, &keys),
            40,
        ),
        // It kept every row in memory until printed (about 350 bytes each);
        // now they go to a temporary file past 64 KiB.
        (
            "inspect --records",
            records_peak(&ps, &[]),
            records_peak(&pl, &[]),
            0,
        ),
        (
            "inspect --records --key-file",
            records_peak(&es, &keys),
            records_peak(&el, &keys),
            40,
        ),
    ];
    for (what, small, large, per_record) in runs {
        eprintln!("{what}: peak {small} / {large} bytes");
        // 200,000 more records: the old code kept 32 bytes more a record
        // (its index entries) and as much again in nonce runs of stanctl's
        // envelopes; the vectors double, so up to twice that.
        assert!(
            large <= small + per_record * extra + 2 * MIB,
            "{what}: {large} bytes at {LARGE} records, {small} at {SMALL}"
        );
        assert!(large < 16 * MIB, "{what}: {large} bytes at {LARGE} records");
    }
}
