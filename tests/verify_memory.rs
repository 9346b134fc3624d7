//! verify's memory does not grow with the records of a slice (issue 13):
//! the peak of live heap bytes during `verify::run`, counted by this test
//! binary's allocator (deterministic, whatever the machine's load), with and
//! without `--list`, on a store of tiny messages in two slices, at two sizes:
//! the larger store must not cost more than a little over the smaller one,
//! and both stay under a fixed bound. Before the change, verify held ~200
//! bytes per record of a slice (its `RecordInfo`, index entry, recovery's
//! entry), and `--list` ~200 more per message of the store.
//! (Mapped pages are not heap: the scanner gives them back every 8 MiB.)
//! One test only: the counter is global to the binary; one worker thread,
//! so that the peak does not depend on how the slices are scheduled.

mod common;

use common::*;
use stanctl::crypto::aead::{Backend, Cipher};
use stanctl::format::crc::Crc32;
use stanctl::format::layout::StoreLayout;
use stanctl::ops::verify::{self, Verdict, VerifyOptions, DEFAULT_READ_BUFFER_SIZE};

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// A store with one channel of two slices of `per_slice` 40-byte messages
/// each (index included, as the server writes them).
fn tiny_store(per_slice: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, s) = bare_store("plain");
    let dir = s.join("tiny");
    let payload = bytes(40, 7);
    for n in 1..=2u64 {
        let first = (n - 1) * per_slice + 1;
        let parts: Vec<Part> = (first..first + per_slice)
            .map(|seq| Part::Msg(seq, payload.clone()))
            .collect();
        write_slice(&dir, n, &parts);
    }
    (t, s)
}

/// Peak live heap bytes above the start during a verify of `dir` (and the
/// printing of its `--list` lines, when `list`), and how many MSG lines.
fn verify_peak(dir: &std::path::Path, list: bool) -> (usize, u64) {
    let layout = StoreLayout::discover(dir).unwrap();
    let opts = VerifyOptions {
        encryption: false,
        cipher: Cipher::Aes,
        crc: Crc32::ieee(),
        truncate_on_eof: false,
        file_crc: true,
        read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
        list,
        backend: Backend::default(),
    };
    // One worker thread: the peak is one slice's, whatever the scheduling;
    // reading the listing back counts too.
    counting::peak_on_one_thread(|| {
        let r = verify::run(&layout, None, &opts, &stanctl::ops::Silent).unwrap();
        assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.findings);
        let mut msgs = 0u64;
        r.lines
            .try_for_each(|l| {
                msgs += u64::from(matches!(l, verify::Line::Msg { .. }));
                Ok(())
            })
            .unwrap();
        msgs
    })
}

#[test]
fn verify_heap_does_not_grow_with_the_records_of_a_slice() {
    const MIB: usize = 1 << 20;
    let small = 40_000u64;
    let large = 4 * small;
    let (_ts, s) = tiny_store(small);
    let (_tl, l) = tiny_store(large);
    for list in [false, true] {
        let (peak_small, n_small) = verify_peak(&s, list);
        let (peak_large, n_large) = verify_peak(&l, list);
        eprintln!("list={list}: peak {peak_small} / {peak_large} bytes");
        let want = |n: u64| if list { 2 * n } else { 0 };
        assert_eq!((n_small, n_large), (want(small), want(large)));
        // 240,000 more records (the old code: ~48 MB more, ~96 MB with --list).
        assert!(
            peak_large <= peak_small + 2 * MIB,
            "list={list}: {peak_large} bytes at 2 x {large} records, {peak_small} at 2 x {small}"
        );
        // The read-ahead's window (2 MiB of records, examined, and its
        // cache) and the --list encoder's buffer: well under 16 MiB.
        assert!(
            peak_large < 16 * MIB,
            "list={list}: {peak_large} bytes at 2 x {large} records"
        );
    }
}
