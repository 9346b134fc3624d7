//! Operator experience (issue 14): advice that never misleads, reports that
//! fit the terminal, refusals that name the next step, interrupted runs.

mod common;

use common::*;

/// `--output` naming a file (a key file, by mistake) is refused before
/// anything is written, and no advice tells the user to delete it.
#[test]
fn output_that_is_a_file_is_refused_without_advice_to_delete_it() {
    let (t, s) = store("aes");
    let key = t.path().join("k1.key");
    std::fs::copy(k1(), &key).unwrap();
    let before = std::fs::read(&key).unwrap();
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        d(&key),
        "--output",
        d(&key),
    ]);
    assert_eq!(o.code, USAGE, "{}", o.stderr);
    assert!(
        o.stderr.contains("exists and is not a directory"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("delete"), "{}", o.stderr);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    assert_same_store(&s, &conformance("aes"));
}

/// An I/O error with --output says whether a partial copy was written.
#[test]
fn output_errors_say_whether_a_partial_copy_exists() {
    let (t, s) = store("aes");
    // The source cannot be read: nothing is written to the output.
    let out = t.path().join("copy");
    let unreadable = s.join("orders");
    let dat = std::fs::read_dir(&unreadable)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dat"))
        .unwrap();
    std::fs::remove_file(&dat).unwrap();
    std::fs::create_dir(&dat).unwrap();
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "--key-file",
        k1(),
        "--output",
        d(&out),
    ]);
    assert_eq!(o.code, IO, "{}", o.stderr);
    assert!(!o.stderr.contains("partial"), "{}", o.stderr);
    assert!(o.stderr.contains("nothing was written to"), "{}", o.stderr);
}

/// A rewrite that finished is a success even when its report cannot be
/// printed (stdout on a full disk): the exit code is about the store.
#[test]
fn finished_rewrite_with_unprintable_report_exits_zero() {
    let (_t, s) = store("aes");
    for json in [false, true] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"));
        c.args(["store", "decrypt", d(&s), "--key-file", k1()])
            .env_remove(ENV_KEY)
            .stdout(std::fs::File::create("/dev/full").unwrap());
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(OK), "{err}");
        assert!(err.contains("the decrypt finished"), "{err}");
        assert!(err.contains("could not be printed"), "{err}");
        assert!(!err.contains("interrupted"), "{err}");
        assert_same_store(&s, &conformance("plain"));
    }
}

/// A refused run's JSON says nothing was written, and its counts add up.
#[test]
fn refusal_json_reads_as_nothing_done() {
    let (_t, s) = store("damaged-crc");
    let (code, v) = json(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(code, REFUSED);
    assert_eq!(v["written"], false);
    let t = &v["totals"];
    assert_eq!(t["changed"], 0);
    assert_eq!(t["decrypted"], 0);
    assert_eq!(t["slices_rewritten"], 0);
    assert_eq!(t["bytes_after"], t["bytes_before"]);
    assert_eq!(t["refused_records"], 1);
    let n = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(
        n("records"),
        n("changed") + n("unchanged") + n("refused_records")
    );
    for c in v["channels"].as_array().unwrap() {
        let n = |k: &str| c[k].as_u64().unwrap();
        assert_eq!(
            n("records"),
            n("changed") + n("unchanged") + n("refused_records")
        );
    }
    assert_same_store(&s, &conformance("damaged-crc"));
    // A run that writes says so, and its counts add up too.
    let (_t, s) = store("aes");
    let (code, v) = json(&["store", "decrypt", d(&s), "--key-file", k1()]);
    assert_eq!(code, OK);
    assert_eq!(v["written"], true);
    let t = &v["totals"];
    assert_eq!(t["refused_records"], 0);
    let n = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(n("records"), n("changed") + n("unchanged"));
    assert!(n("changed") > 0);
}
