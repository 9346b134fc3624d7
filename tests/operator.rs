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
    o.expect_stderr("exists and is not a directory");
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
    o.expect_stderr("nothing was written to");
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
    // What the check planned is under "planned", and the schema says the
    // counts changed meaning (/1 gave the plan in "totals").
    assert_eq!(v["schema"], "stanctl.rewrite/2");
    let p = &v["planned"];
    assert_eq!(p["changed"], 75, "{v}");
    assert_eq!(p["decrypted"], 75, "{v}");
    assert_eq!(p["slices_rewritten"], 6, "{v}");
    assert_eq!(p["refused_records"], 1, "{v}");
    let n = |k: &str| p[k].as_u64().unwrap();
    assert_eq!(
        n("records"),
        n("changed") + n("unchanged") + n("refused_records")
    );
    // A refused Raft log: the same two views.
    let log = _t.path().join("raft.log");
    std::fs::copy(fixtures().join("clustered/raft/mixed.log"), &log).unwrap();
    let (code, v) = json(&["raft", "decrypt", d(&log), "-k", k1()]);
    assert_eq!(code, REFUSED);
    let l = &v["raft_log"];
    assert_eq!(
        (&l["changed"], &l["decrypted"]),
        (&0.into(), &0.into()),
        "{v}"
    );
    assert_eq!(l["refused_records"], 16, "{v}");
    assert_eq!(l["planned"]["decrypted"], 8, "{v}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        std::fs::read(fixtures().join("clustered/raft/mixed.log")).unwrap()
    );
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
    assert_eq!(v["planned"], v["totals"], "done as planned");
}

/// Slices of the generated store: enough that the write is still running
/// when the signal arrives (it comes a few milliseconds after the first
/// temp file appears; a slice takes about that long to write).
const SLICES: u64 = 40;

/// A generated plaintext store of `slices` slices of about 1 MiB each.
fn generated_store(slices: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, s) = bare_store("plain");
    let mut seq = 1;
    for n in 1..=slices {
        let parts: Vec<Part> = (0..16)
            .map(|i| {
                seq += 1;
                Part::Msg(seq - 1, bytes(64 << 10, (n + i) as u8))
            })
            .collect();
        write_slice(&s.join("gen"), n, &parts);
    }
    (t, s)
}

/// SIGINT (and SIGTERM) to a running rewrite: it stops between slices,
/// leaves no temp file, says what it did and the exact command that
/// finishes, and exits 130; that command finishes the job.
#[test]
fn signal_mid_rewrite_stops_cleanly_and_names_the_next_step() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let (_t, s) = generated_store(SLICES);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"))
            .args([
                "store",
                "encrypt",
                d(&s),
                "--cipher",
                "AES",
                "--key-file",
                k1(),
            ])
            .env_remove(ENV_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the write has begun (a temp file appears), then signal.
        let gen = s.join("gen");
        let o = signal_when(child, sig, 60, "the write never started", || {
            std::fs::read_dir(&gen)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".stanctl-tmp"))
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "signal {sig}: {err}");
        assert!(err.contains("interrupted: encrypt rewrote"), "{err}");
        assert!(err.contains("no temporary file is left"), "{err}");
        assert!(no_temp_files(&s), "temp files left");
        // Partly done: some slices sealed, some not.
        let v = inspect(&s, k1());
        let done = v["totals"]["payloads"]["aes"].as_u64().unwrap();
        let plain = v["totals"]["payloads"]["plaintext"].as_u64().unwrap();
        assert!(done > 0 && plain > 0, "aes {done}, plaintext {plain}");
        // The server reads it: verify with the key delivers every message.
        let (code, _) = verify_json(&s, Some(k1()));
        assert_eq!(code, OK, "{err}");
        // The command it names finishes the job.
        let line = named_command(&err);
        assert!(
            line.contains("store encrypt") && line.contains(k1()),
            "{line}"
        );
        run_printed(line);
        let v = inspect(&s, k1());
        assert_eq!(v["totals"]["payloads"]["plaintext"], 0, "{v}");
        assert_eq!(v["totals"]["payloads"]["aes"], SLICES * 16);
    }
}

/// Slices of the generated store for a signal during a one-pass check:
/// enough that the check is still running when the signal arrives.
const CHECK_SLICES: u64 = 120;

/// SIGINT (and SIGTERM) to a one-pass `--output` rewrite while its check
/// stages slices: it stops between slices, removes the staging directory
/// and the output (with the parent it created; an output that existed
/// empty stays, empty), leaves the source byte for byte as it was, says
/// nothing was written and the exact command that finishes, and exits
/// 130; that command writes the whole copy.
#[test]
fn signal_mid_one_pass_check_removes_the_staging_and_names_the_next_step() {
    let (t, s) = generated_store(CHECK_SLICES);
    let before = snapshot(&s);
    for (sig, pre_existing) in [(libc::SIGINT, false), (libc::SIGTERM, true)] {
        let out = t.path().join(format!("new-{sig}")).join("copy");
        if pre_existing {
            std::fs::create_dir_all(&out).unwrap();
        }
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"))
            .args([
                "store",
                "encrypt",
                d(&s),
                "--cipher",
                "AES",
                "--key-file",
                k1(),
                "--output",
                d(&out),
            ])
            .env_remove(ENV_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the check stages a slice, then signal.
        let staged = out.join(".stanctl-staging").join("gen");
        let o = signal_when(child, sig, 60, "the check never staged", || {
            std::fs::read_dir(&staged).is_ok_and(|mut r| r.next().is_some())
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "signal {sig}: {err}");
        assert!(
            err.contains(&format!("interrupted, nothing written to {}", d(&out))),
            "{err}"
        );
        if pre_existing {
            // The empty output it was given is left as it was: empty.
            assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "{err}");
        } else {
            // Neither the output nor the parent the run created is left.
            assert!(!out.parent().unwrap().exists(), "{err}");
        }
        assert!(snapshot(&s) == before, "the source changed: {err}");
        assert!(no_temp_files(&s), "temp files left");
        // The command it names finishes the job.
        let line = named_command(&err);
        assert!(
            line.contains("store encrypt") && line.contains(k1()) && line.contains(d(&out)),
            "{line}"
        );
        run_printed(line);
        assert!(!out.join(".stanctl-staging").exists());
        let v = inspect(&out, k1());
        assert_eq!(v["totals"]["payloads"]["plaintext"], 0, "{v}");
        assert_eq!(v["totals"]["payloads"]["aes"], CHECK_SLICES * 16);
        let (code, _) = verify_json(&out, Some(k1()));
        assert_eq!(code, OK);
        assert!(snapshot(&s) == before, "the source changed");
    }
}

/// SIGINT (and SIGTERM) to `--one-pass` in place while its check stages
/// slices in the channel's `.stanctl-staging`: it stops between slices,
/// removes the staging, leaves every file of the store byte for byte as it
/// was, says nothing changed and the exact command that finishes, and
/// exits 130; that command does the whole job.
#[test]
fn signal_mid_one_pass_in_place_check_removes_the_staging() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let (_t, s) = generated_store(CHECK_SLICES);
        let before = snapshot(&s);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"))
            .args([
                "store",
                "encrypt",
                d(&s),
                "--cipher",
                "AES",
                "--key-file",
                k1(),
                "--one-pass",
            ])
            .env_remove(ENV_KEY)
            .env_remove("STANCTL_TEST_FREE_BYTES")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let staged = s.join("gen").join(".stanctl-staging");
        let o = signal_when(child, sig, 60, "the check never staged", || {
            std::fs::read_dir(&staged).is_ok_and(|mut r| r.next().is_some())
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "signal {sig}: {err}");
        assert!(err.contains("interrupted, nothing changed"), "{err}");
        assert!(snapshot(&s) == before, "the store changed: {err}");
        assert!(no_temp_files(&s), "staging left: {err}");
        let line = named_command(&err);
        assert!(
            line.contains("store encrypt") && line.contains("--one-pass"),
            "{line}"
        );
        run_printed(line);
        assert!(no_temp_files(&s));
        let v = inspect(&s, k1());
        assert_eq!(v["totals"]["payloads"]["plaintext"], 0, "{v}");
        assert_eq!(v["totals"]["payloads"]["aes"], CHECK_SLICES * 16);
    }
}

/// Slices of the generated store for a signal during `--keep-damaged`'s
/// guard: it writes a copy and runs verify's model eight times, so few
/// slices keep it running long enough (and the rerun short).
const GUARD_SLICES: u64 = 16;

/// A generated store (`generated_store`) whose first record has a bad CRC:
/// `--keep-damaged` keeps it, so its guard runs.
fn damaged_generated_store(slices: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, s) = generated_store(slices);
    let dat = s.join("gen").join("msgs.1.dat");
    let mut b = std::fs::read(&dat).unwrap();
    // In its first record's payload: the last record's damage would
    // make the server rebuild the index, and the salvage keep the slice.
    b[1000] ^= 0xff;
    std::fs::write(&dat, b).unwrap();
    (t, s)
}

/// The command a stopped run names, on the line after "to finish, run".
fn named_command(err: &str) -> &str {
    err.lines()
        .skip_while(|l| !l.contains("to finish, run"))
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {err}"))
        .trim()
}

/// Runs a command line stanctl printed (its words after `stanctl`); it
/// must succeed.
fn run_printed(line: &str) {
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let o = run(&words);
    assert!(o.success(), "{line}: {}", o.stderr);
}

/// The command a stopped run names to finish the job, run with `tmpdir`
/// as `$TMPDIR`; it must succeed.
fn run_named_command(err: &str, tmpdir: &std::path::Path) {
    let line = named_command(err);
    assert!(
        line.contains("store encrypt") && line.contains("--keep-damaged"),
        "{line}"
    );
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let o = exec(stanctl().args(&words).env("TMPDIR", tmpdir), &words);
    assert!(o.success(), "{line}: {}", o.stderr);
}

/// `stanctl store encrypt STORE --cipher AES --key-file k1 --keep-damaged
/// EXTRA...` started with `TMPDIR=tmpdir`, its output piped.
fn spawn_keep_damaged(
    s: &std::path::Path,
    extra: &[&str],
    tmpdir: &std::path::Path,
) -> std::process::Child {
    let key = ["--key-file", k1(), "--keep-damaged"];
    std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"))
        .args(["store", "encrypt", d(s), "--cipher", "AES"])
        .args(key)
        .args(extra)
        .env_remove(ENV_KEY)
        .env("TMPDIR", tmpdir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether `tmpdir` holds a scratch copy of the `--keep-damaged` guard.
fn guard_scratch_in(tmpdir: &std::path::Path) -> bool {
    std::fs::read_dir(tmpdir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("stanctl-guard-")
    })
}

/// SIGINT (and SIGTERM) while `--keep-damaged`'s guard writes and checks
/// its scratch copy of the store (in `$TMPDIR`) before an in-place
/// rewrite: it stops between slices, removes the scratch copy, leaves the
/// store byte for byte as it was, says nothing changed and the command that
/// finishes, and exits 130; that command does the job. Two signals in a row
/// stop it at once: whatever it left, the same command removes and finishes.
#[test]
fn signal_during_the_keep_damaged_guard_in_place_leaves_nothing() {
    for (sig, twice) in [
        (libc::SIGINT, false),
        (libc::SIGTERM, false),
        (libc::SIGINT, true),
    ] {
        let (t, s) = damaged_generated_store(GUARD_SLICES);
        let tmpdir = t.path().join("tmp");
        std::fs::create_dir(&tmpdir).unwrap();
        let before = snapshot(&s);
        let child = spawn_keep_damaged(&s, &[], &tmpdir);
        // Wait until the guard has written a slice of its scratch copy.
        let times = if twice { 2 } else { 1 };
        let o = signals_when(child, sig, times, 120, "the guard never wrote", || {
            std::fs::read_dir(&tmpdir).unwrap().any(|e| {
                let p = e.unwrap().path();
                std::fs::read_dir(p.join("gen")).is_ok_and(|mut r| r.next().is_some())
            })
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "signal {sig}: {err}");
        assert!(snapshot(&s) == before, "the store changed: {err}");
        assert!(no_temp_files(&s), "temp files left: {err}");
        if !twice {
            assert!(
                err.contains("interrupted, nothing changed: encrypt --keep-damaged stopped during the check and removed its scratch copy"),
                "{err}"
            );
            assert!(!guard_scratch_in(&tmpdir), "scratch copy left: {err}");
        }
        run_named_command(&err, &tmpdir);
        assert!(
            !guard_scratch_in(&tmpdir),
            "scratch copy left after the rerun"
        );
        let v = inspect(&s, k1());
        assert_eq!(v["totals"]["payloads"]["aes"], GUARD_SLICES * 16 - 1, "{v}");
    }
}

/// SIGINT (and SIGTERM) while `--keep-damaged`'s guard writes and checks
/// the `--output` copy: it stops, removes what it wrote (the output and
/// the parent it created; an output that existed empty stays, empty),
/// leaves the source as it was, says nothing was written and the command
/// that finishes, and exits 130. Two signals stop it at once: the output is
/// then marked unfinished (`.stanctl-staging`) and the same command writes
/// it anew.
#[test]
fn signal_during_the_keep_damaged_guard_to_an_output_leaves_nothing() {
    let (t, s) = damaged_generated_store(GUARD_SLICES);
    let before = snapshot(&s);
    let cases = [
        (libc::SIGINT, false, false),
        (libc::SIGTERM, true, false),
        (libc::SIGINT, false, true),
    ];
    for (sig, pre_existing, twice) in cases {
        let out = t.path().join(format!("new-{sig}-{twice}")).join("copy");
        if pre_existing {
            std::fs::create_dir_all(&out).unwrap();
        }
        let child = spawn_keep_damaged(&s, &["--output", d(&out)], t.path());
        let times = if twice { 2 } else { 1 };
        let o = signals_when(child, sig, times, 120, "the guard never wrote", || {
            std::fs::read_dir(out.join("gen")).is_ok_and(|mut r| r.next().is_some())
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "signal {sig}: {err}");
        assert!(snapshot(&s) == before, "the source changed: {err}");
        if twice {
            // Stopped at once or at the next safe point: either the output
            // is gone, or it is marked unfinished.
            assert!(
                !out.join("gen").exists() || out.join(".stanctl-staging").is_dir(),
                "an unmarked partial output: {err}"
            );
        } else {
            assert!(
                err.contains(&format!("interrupted, nothing written to {}", d(&out))),
                "{err}"
            );
            if pre_existing {
                assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "{err}");
            } else {
                assert!(!out.parent().unwrap().exists(), "{err}");
            }
        }
        run_named_command(&err, t.path());
        assert!(!out.join(".stanctl-staging").exists());
        let v = inspect(&out, k1());
        assert_eq!(v["totals"]["payloads"]["aes"], GUARD_SLICES * 16 - 1, "{v}");
        assert!(snapshot(&s) == before, "the source changed");
    }
}

/// A plaintext Raft log of about 100 MB: large-aes.log's 2500 entries
/// with every command's Data replaced by 40 KiB of plaintext.
fn big_plain_log(dir: &std::path::Path) -> std::path::PathBuf {
    use stanctl::format::raft::{rewrite_log, DataEdit, RaftError, RaftLog};
    let src = RaftLog::open(&fixtures().join("clustered/raft/large-aes.log")).unwrap();
    let dst = dir.join("raft.log");
    rewrite_log(&src, &dst, |view, data| {
        if !view.is_command() {
            return Ok::<_, RaftError>(DataEdit::Keep);
        }
        // Never 1 or 2 first: plaintext, not an envelope lookalike.
        data.extend((0..40u32 << 10).map(|i| b'a' + ((i as u64 + view.index) % 26) as u8));
        Ok(DataEdit::Replace)
    })
    .unwrap();
    dst
}

/// SIGINT to a clustered node's encrypt in place while its check writes
/// the log's new copy (`raft.log.stanctl-tmp`): it stops, removes the
/// copy, says nothing changed and the command that finishes, exits 130;
/// the node is as it was, and that command finishes the job.
#[test]
fn signal_during_a_nodes_log_check_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let node = t.path().join("node");
    copy_dir(&fixtures().join("clustered/node-a"), &node);
    let (store, raft) = (node.join("store"), node.join("raft"));
    let log = raft.join("test-cluster/raft.log");
    std::fs::remove_file(&log).unwrap();
    let big = big_plain_log(t.path());
    std::fs::rename(&big, &log).unwrap();
    let before = snapshot(&node);
    let args = [
        "store",
        "encrypt",
        d(&store),
        "--cipher",
        "AES",
        "-k",
        k1(),
        "--cluster-log-path",
        d(&raft),
    ];
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"))
        .args(args)
        .env_remove(ENV_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = raft.join("test-cluster/raft.log.stanctl-tmp");
    let o = signal_when(
        child,
        libc::SIGINT,
        120,
        "the log's copy never started",
        || tmp.exists(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted, nothing changed"), "{err}");
    assert!(!tmp.exists(), "the log's copy is left: {err}");
    assert!(snapshot(&node) == before, "the node changed: {err}");
    let line = named_command(&err);
    run_printed(line);
    assert!(!tmp.exists());
    let db = stanctl::format::raft::RaftLog::open(&log).unwrap();
    let c = stanctl::ops::raft_census::census(&db, None).unwrap();
    assert_eq!((c.plaintext, c.chacha), (0, 0), "every command sealed");
}

/// SIGINT or SIGTERM to `stanctl raft encrypt` while it writes: it stops
/// before the rename, removes its temp file (or the partial --output),
/// says nothing was changed and the command that finishes, and exits 130;
/// that command finishes the job.
#[test]
fn signal_mid_raft_rewrite_changes_nothing_and_names_the_next_step() {
    let t = tempfile::tempdir().unwrap();
    let log = big_plain_log(t.path());
    let before = std::fs::read(&log).unwrap();
    let out = t.path().join("out.log");
    for (sig, output) in [(libc::SIGINT, false), (libc::SIGTERM, true)] {
        let mut args = vec!["raft", "encrypt", d(&log), "--cipher", "AES", "-k", k1()];
        if output {
            args.extend(["-o", d(&out)]);
        }
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stanctl"))
            .args(&args)
            .env_remove(ENV_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the write has begun (the new file appears), then signal.
        let writing = if output {
            out.clone()
        } else {
            t.path().join("raft.log.stanctl-tmp")
        };
        let o = signal_when(child, sig, 120, "the write never started", || {
            writing.exists()
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "signal {sig}: {err}");
        assert!(
            err.contains("interrupted: raft encrypt stopped before"),
            "{err}"
        );
        let names: Vec<String> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["raft.log"], "only the log is left: {err}");
        assert!(std::fs::read(&log).unwrap() == before, "the log changed");
        let line = named_command(&err);
        assert!(
            line.contains("raft encrypt") && line.contains(k1()),
            "{line}"
        );
        if output {
            // The command finishes the job.
            run_printed(line);
            let (code, v) = json(&["raft", "verify", d(&out), "-k", k1()]);
            assert_eq!(code, OK, "{v}");
            let db = stanctl::format::raft::RaftLog::open(&out).unwrap();
            let c = stanctl::ops::raft_census::census(&db, None).unwrap();
            assert_eq!((c.plaintext, c.chacha), (0, 0), "every command sealed");
            let src = stanctl::format::raft::RaftLog::open(
                &fixtures().join("clustered/raft/large-aes.log"),
            )
            .unwrap();
            let commands = stanctl::ops::raft_census::census(&src, None).unwrap().aes;
            assert_eq!(c.aes, commands);
        }
    }
}

/// inspect and verify give the same advice about leftover temp files.
#[test]
fn leftover_temp_files_get_one_advice() {
    let (_t, s) = store("plain");
    std::fs::write(s.join("orders/msgs.1.dat.stanctl-tmp"), b"partial").unwrap();
    let i = run(&["store", "inspect", d(&s)]);
    let (_, v) = verify_json(&s, None);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["file"]
                .as_str()
                .is_some_and(|p| p.ends_with(".stanctl-tmp"))
        })
        .unwrap_or_else(|| panic!("no finding for the temp file: {v}"));
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains("run that encrypt, decrypt or rekey again"),
        "{remedy}"
    );
    assert!(
        i.stdout.contains(remedy),
        "inspect says otherwise: {}",
        i.stdout
    );
    assert!(!remedy.contains("none needed"));
}

/// Verify with encryption on and no key: the reason it will not start,
/// alone, with a fix that reads; no per-message failures blamed on a key.
#[test]
fn will_not_start_comes_alone_with_a_readable_fix() {
    let o = run(&["store", "verify", d(&conformance("aes")), "--encrypt"]);
    assert_eq!(o.code, WONT_START);
    o.expect_stdout("Findings (1):");
    assert!(!o.stdout.contains("FAILS"), "{}", o.stdout);
    assert!(
        !o.stdout.contains("this command --key-file"),
        "{}",
        o.stdout
    );
    o.expect_stdout("stanctl store verify DIR --key-file FILE");
    o.expect_stdout("other finding(s)");
    // The table's Fail column does not count failures of a server that
    // does not start; --json keeps them.
    let row = o
        .stdout
        .lines()
        .find(|l| l.starts_with("| orders "))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[8], "-", "{row}");
    assert_eq!(cells[4], "40", "{row}");
    o.expect_stdout("(Fail: - as the server does not start");
    // --json still has every finding.
    let (_, v) = json(&["store", "verify", d(&conformance("aes")), "--encrypt"]);
    assert!(v["findings"].as_array().unwrap().len() > 1);
    let orders = channel(&v, "orders");
    assert_eq!(orders["failed"], 36, "{v}");
}

/// inspect's next step keeps the key the user gave.
#[test]
fn inspect_next_step_keeps_the_key() {
    let s = conformance("damaged-crc");
    let o = run(&["store", "inspect", d(&s), "--key-file", k1()]);
    let want = format!("`stanctl store verify {} --key-file {}`", d(&s), k1());
    o.expect_stdout(&want);
}

/// A finding that runs over several slices names its first plainly.
#[test]
fn findings_over_several_slices_say_so() {
    let o = run(&[
        "store",
        "verify",
        d(&conformance("aes")),
        "--key-file",
        k2(),
    ]);
    assert!(!o.stdout.contains(" ..."), "{}", o.stdout);
    o.expect_stdout("on (several slices)");
}

/// One prefix for every error line, clap's included, and for hints.
#[test]
fn errors_and_hints_share_one_prefix() {
    let o = run(&["store", "verify", "x", "--bogus"]);
    assert_eq!(o.code, USAGE);
    assert!(o.stderr.starts_with("stanctl: error:"), "{}", o.stderr);
    let o = run(&["store", "verify", "/nonexistent-store"]);
    assert!(o.stderr.starts_with("stanctl: error:"), "{}", o.stderr);
    o.expect_stderr("\nstanctl: hint: ");
}

/// Key files: `\r\n` is one newline; whitespace after it is kept and
/// warned about; a key that opens nothing is said to in one line; `-`
/// reads standard input.
#[test]
fn key_files_whitespace_wrong_keys_and_stdin() {
    let t = tempfile::TempDir::new().unwrap();
    let mut m = material(k1());
    let crlf = t.path().join("crlf.key");
    std::fs::write(&crlf, [&m[..], b"\r\n"].concat()).unwrap();
    let (code, _) = verify_json(&conformance("aes"), Some(d(&crlf)));
    assert_eq!(code, OK, "\\r\\n is one newline");
    for (tail, what) in [(&b"\n\n"[..], "a second newline"), (b" ", "a space")] {
        let f = t.path().join("ws.key");
        std::fs::write(&f, [&m[..], tail].concat()).unwrap();
        let o = run(&[
            "store",
            "verify",
            d(&conformance("aes")),
            "--key-file",
            d(&f),
        ]);
        assert_eq!(o.code, AT_RISK);
        o.expect_stderr(&format!("ends with {what}"));
        assert!(
            o.stdout.contains(&format!(
                "The key (key file {}) opens none of the 75 envelope(s)",
                d(&f)
            )),
            "{}",
            o.stdout
        );
        let o = run(&[
            "store",
            "inspect",
            d(&conformance("aes")),
            "--key-file",
            d(&f),
        ]);
        assert!(o.stdout.contains("Key K1 (key file "), "{}", o.stdout);
        o.expect_stdout("opens none of the 75 envelope(s)");
    }
    // One damaged message is not a wrong key.
    let o = run(&[
        "store",
        "verify",
        d(&conformance("aes")),
        "--key-file",
        k1(),
    ]);
    assert!(!o.stdout.contains("opens none"), "{}", o.stdout);
    // Standard input.
    m.push(b'\n');
    let o = stanctl()
        .args([
            "store",
            "verify",
            d(&conformance("aes")),
            "--key-file",
            "-",
            "--json",
        ])
        .write_stdin(m)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(OK),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// decrypt and rekey refused for envelopes no key opens name the given key
/// that opens none of them, with inspect's words, and in --json.
#[test]
fn wrong_key_refusals_name_the_key() {
    let (t, s) = store("aes");
    let k3 = t.path().join("k3.key");
    std::fs::write(&k3, "a third key, which wrote nothing").unwrap();
    let line = |k: &str| {
        format!("Key K1 (key file {k}) opens none of the 75 envelope(s): it is not a key that wrote them")
    };
    let o = run(&["store", "inspect", d(&s), "-k", k2()]);
    o.expect_stdout(&line(k2()));
    let o = run(&["store", "decrypt", d(&s), "-k", k2()]);
    assert_eq!(o.code, REFUSED);
    o.expect_stderr(&line(k2()));
    let (code, v) = json(&["store", "decrypt", d(&s), "-k", k2(), "-n"]);
    assert_eq!(code, REFUSED);
    assert_eq!(v["keys_opening_none"][0]["key"], "K1", "{v}");
    assert_eq!(v["keys_opening_none"][0]["envelopes"], 75, "{v}");
    let o = run(&[
        "store",
        "rekey",
        d(&s),
        "-k",
        k2(),
        "--new-key-file",
        d(&k3),
    ]);
    assert_eq!(o.code, REFUSED);
    o.expect_stderr(&line(k2()));
    assert_same_store(&s, &conformance("aes"));
    // A key that opens some of them is not named.
    let o = run(&["store", "decrypt", d(&s), "-k", k2(), "-k", k1(), "-n"]);
    assert!(o.success(), "{}", o.stderr);
    assert!(!o.stderr.contains("opens none"), "{}", o.stderr);
    // The same for a Raft log.
    let log = t.path().join("raft.log");
    let original = fixtures().join("clustered").join("raft").join("aes.log");
    std::fs::copy(&original, &log).unwrap();
    let o = run(&["raft", "decrypt", d(&log), "-k", k2()]);
    assert_eq!(o.code, REFUSED);
    o.expect_stderr(&format!("Key K1 (key file {}) opens none of the", k2()));
    assert_eq!(
        std::fs::read(&log).unwrap(),
        std::fs::read(&original).unwrap()
    );
}

/// Refusals and no-ops say what was not done and which command does it.
#[test]
fn refusals_name_the_way_out() {
    // Envelopes under two keys: encrypt with one is refused, with the
    // hint to rekey to it first; two keys are refused with both commands.
    let (_t, s) = store("mixed");
    let encrypt_k1 = [
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
    ];
    let o = run(&encrypt_k1);
    assert_eq!(o.code, REFUSED);
    o.expect_stderr("stanctl: hint: encrypt seals with one key");
    o.expect_stderr("stanctl store rekey");
    let o = run(&[
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--key-file",
        k2(),
        "--cipher",
        "AES",
    ]);
    assert_eq!(o.code, USAGE);
    let rekey = format!(
        "stanctl store rekey {} --key-file {} --new-key-file {}",
        d(&s),
        k2(),
        k1()
    );
    o.expect_stderr(&rekey);
    // Following that advice works.
    let words: Vec<&str> = rekey.split(' ').skip(1).collect();
    ok(&words);
    ok(&encrypt_k1);
    // A ChaCha store with --cipher AES: not "already as requested".
    let (_t, s) = store("chacha");
    let o = run(&[
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
    ]);
    assert_eq!(o.code, OK);
    assert!(!o.stdout.contains("already as requested"), "{}", o.stdout);
    o.expect_stdout("NOT done: 75 envelope(s) already under K1");
    // The one command that converts them, keys named by their file.
    let flat = o.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let command = format!(
        "stanctl store rekey {} --key-file {k} --new-key-file {k} --cipher AES",
        d(&s),
        k = k1()
    );
    assert!(flat.contains(&format!("`{command}`")), "{flat}");
    assert!(
        !flat.contains("decrypt"),
        "no detour through plaintext: {flat}"
    );
    let (_, v) = json(&[
        "store",
        "encrypt",
        d(&s),
        "--key-file",
        k1(),
        "--cipher",
        "AES",
    ]);
    assert_eq!(v["totals"]["kept_other_cipher"], 75, "{v}");
    assert_eq!(v["other_cipher"]["envelopes"], 75, "{v}");
    assert_eq!(v["other_cipher"]["key"], "K1", "{v}");
}

/// Every payload of a store as inspect counts them with `key`:
/// (aes, chacha, opened by the key).
fn ciphers(s: &std::path::Path, key: &str) -> (u64, u64, u64) {
    let (code, v) = json(&["store", "inspect", d(s), "--key-file", key]);
    assert_eq!(code, OK, "{v}");
    let t = &v["totals"];
    (
        t["payloads"]["aes"].as_u64().unwrap(),
        t["payloads"]["chacha"].as_u64().unwrap(),
        t["opened"][0]["opened"].as_u64().unwrap(),
    )
}

/// A cipher change under the same key is one command: rekey with the key
/// as old and new key and --cipher; encrypt's report names exactly it.
#[test]
fn cipher_change_under_the_same_key_is_one_rekey() {
    let (_t, s) = store("chacha");
    assert_eq!(ciphers(&s, k1()), (0, 75, 75));
    let o = run(&["store", "encrypt", d(&s), "-k", k1(), "--cipher", "AES"]);
    assert_eq!(o.code, OK);
    // Follow the advice as printed.
    let flat = o.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let command = flat
        .split('`')
        .find(|w| w.starts_with("stanctl store rekey"))
        .unwrap_or_else(|| panic!("no rekey command in {flat}"));
    let words: Vec<&str> = command.split(' ').skip(1).collect();
    let o = run(&words);
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stdout("rewrote");
    assert_eq!(
        ciphers(&s, k1()),
        (75, 0, 75),
        "every envelope AES under K1"
    );
    ok(&["store", "verify", d(&s), "-k", k1()]);
    // Done: the same command again has nothing to do, and encrypt agrees.
    let o = run(&words);
    o.expect_stdout("nothing to do");
    let o = run(&["store", "encrypt", d(&s), "-k", k1(), "--cipher", "AES"]);
    o.expect_stdout("nothing to do");
    assert!(!o.stdout.contains("NOT done"), "{}", o.stdout);
    // And back: rekey to another key and cipher at once converts all.
    let o = run(&[
        "store",
        "rekey",
        d(&s),
        "-k",
        k1(),
        "--new-key-file",
        k2(),
        "--cipher",
        "CHACHA",
    ]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    assert_eq!(ciphers(&s, k2()), (0, 75, 75));
    // rekey without --cipher keeps the envelopes under the new key as they are.
    let (_, v) = json(&["store", "rekey", d(&s), "-k", k2(), "--new-key-file", k2()]);
    assert_eq!(v["totals"]["changed"], 0, "{v}");
    // The key from the environment: the advice pipes it in (never on a
    // command line), and runs as printed.
    let (_t2, s) = store("chacha");
    let material = std::fs::read_to_string(k1()).unwrap();
    let material = material.strip_suffix('\n').unwrap_or(&material).to_string();
    let o = stanctl()
        .args(["store", "encrypt", d(&s), "--cipher", "AES"])
        .env(ENV_KEY, &material)
        .output()
        .unwrap();
    let flat = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let command = flat
        .split('`')
        .find(|w| w.contains("stanctl store rekey"))
        .unwrap_or_else(|| panic!("no rekey command in {flat}"));
    assert!(
        command.starts_with(&format!("printf %s \"${ENV_KEY}\" | stanctl store rekey")),
        "{command}"
    );
    assert!(
        !command.contains(&material),
        "never the key's bytes: {command}"
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_stanctl"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", command])
        .env(ENV_KEY, &material)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{command}: {o:?}");
    assert_eq!(
        ciphers(&s, k1()),
        (75, 0, 75),
        "every envelope AES under K1"
    );
    // A Raft log: the same rule.
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("raft.log");
    let original = fixtures().join("clustered").join("raft").join("aes.log");
    std::fs::copy(&original, &log).unwrap();
    let (code, v) = json(&[
        "raft",
        "rekey",
        d(&log),
        "-k",
        k1(),
        "--new-key-file",
        k1(),
        "--cipher",
        "CHACHA",
    ]);
    assert_eq!(code, OK, "{v}");
    let changed = v["raft_log"]["changed"].as_u64().unwrap();
    assert!(changed > 0, "{v}");
    let (_, v) = json(&[
        "raft",
        "rekey",
        d(&log),
        "-k",
        k1(),
        "--new-key-file",
        k1(),
        "--cipher",
        "CHACHA",
    ]);
    assert_eq!(v["raft_log"]["changed"], 0, "{v}");
    let o = run(&["raft", "encrypt", d(&log), "-k", k1(), "--cipher", "AES"]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    let flat = o.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!(
            "`stanctl raft rekey {} --key-file {k} --new-key-file {k} --cipher AES`",
            d(&log),
            k = k1()
        )),
        "{flat}"
    );
}

/// The human outputs of a store's commands, for the width tests. The
/// refused rewrite (no --dry-run) runs on a copy: it takes the store's lock,
/// which creates `.rootdir.lck`, and the fixtures are never written; keep
/// the returned directory alive while running the cases.
fn width_cases() -> (tempfile::TempDir, Vec<Vec<String>>) {
    let f = |n: &str| d(&conformance(n)).to_string();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (t, damaged) = store("damaged-crc");
    let cases = vec![
        v(&[
            "store",
            "inspect",
            &f("mixed"),
            "--key-file",
            k1(),
            "--key-file",
            k2(),
        ]),
        v(&["store", "inspect", &f("damaged-crc"), "--by-slice"]),
        v(&["store", "inspect", &f("damaged-truncated")]),
        v(&["store", "verify", &f("aes"), "--key-file", k2()]),
        v(&["store", "verify", &f("damaged-crc"), "--key-file", k1()]),
        v(&["store", "verify", &f("aes"), "--encrypt"]),
        v(&[
            "store",
            "decrypt",
            &f("aes"),
            "--key-file",
            k1(),
            "--dry-run",
        ]),
        v(&["store", "decrypt", d(&damaged), "--key-file", k1()]),
        v(&[
            "store",
            "encrypt",
            &f("chacha"),
            "--key-file",
            k1(),
            "--cipher",
            "AES",
            "--dry-run",
        ]),
    ];
    (t, cases)
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// What a terminal shows of `raw`: ANSI escapes removed, and each line
/// split at carriage returns (every redraw of the bar is a line of its own).
fn screen_lines(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters, ending with a letter.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' | '\n' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The progress bar (on stderr, a store or Raft log over 64 MiB) never
/// draws a line wider than the terminal, at 80 columns and narrower, and
/// nothing is drawn when stderr is not a terminal.
#[test]
fn progress_bar_fits_the_terminal_and_only_a_terminal() {
    let (_t, s) = generated_store(72);
    let t = tempfile::tempdir().unwrap();
    let log = big_plain_log(t.path());
    let out = t.path().join("out.log");
    let bin = env!("CARGO_BIN_EXE_stanctl");
    let sealed = format!("-o '{}' --cipher AES -k", d(&out));
    // A node's rewrite: a small store (no bar of its own) with the big log.
    let node = fixtures().join("clustered/node-a/store");
    let with_log = format!("store encrypt --raft-log '{}' --cipher AES -n -k", d(&log));
    let cases: [(u16, &str, &std::path::Path, &str); 7] = [
        (80, "store verify", &s, "verify ["),
        (80, "store encrypt --cipher AES -n -k", &s, "check ["),
        (40, "store verify", &s, "verify ["),
        (80, "raft verify", &log, "verify ["),
        (40, "raft encrypt --cipher AES -n -k", &log, "check ["),
        (80, &format!("raft encrypt {sealed}"), &log, "encrypt ["),
        (80, &with_log, &node, "check ["),
    ];
    for (cols, command, target, label) in cases {
        let key = if command.ends_with("-k") { k1() } else { "" };
        let cmd = format!(
            "stty cols {cols} rows 50; {bin} {command} {key} '{}' >/dev/null",
            d(target)
        );
        let o = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env_remove("COLUMNS")
            .env_remove(ENV_KEY)
            .output()
            .expect("util-linux script");
        assert!(o.status.success(), "{cmd}: {o:?}");
        let raw = String::from_utf8_lossy(&o.stdout);
        let lines = screen_lines(&raw);
        assert!(
            lines.iter().any(|l| l.contains(label)),
            "{cmd}: no bar drawn: {raw:?}"
        );
        for l in &lines {
            assert!(
                l.chars().count() <= cols as usize,
                "{cmd}: {} columns: {l:?}",
                l.chars().count()
            );
        }
    }
    // The raft encrypt wrote its log.
    let (code, v) = json(&["raft", "verify", d(&out), "-k", k1()]);
    assert_eq!(code, OK, "{v}");
    // Not a terminal: no bar, no redraws.
    for args in [["store", "verify", d(&s)], ["raft", "verify", d(&log)]] {
        let o = run(&args);
        assert_eq!(o.code, OK, "{args:?}: {}", o.stderr);
        assert!(
            !o.stderr.contains('[') && !o.stderr.contains('\r') && !o.stderr.contains('\x1b'),
            "{args:?}: {:?}",
            o.stderr
        );
    }
}

/// Piped output with COLUMNS=80: every line fits, ASCII only, byte counts
/// for people.
#[test]
fn piped_output_fits_80_columns_in_ascii() {
    let (_copy, cases) = width_cases();
    for args in cases {
        let o = exec(stanctl().args(&args).env("COLUMNS", "80"), &args);
        for text in [&o.stdout, &o.stderr] {
            assert!(
                widest(text) <= 80,
                "{args:?}: {} columns:\n{text}",
                widest(text)
            );
            assert!(
                text.is_ascii() || !text.contains('│'),
                "{args:?}: box drawing in a pipe:\n{text}"
            );
            assert!(
                !text.contains('┌') && !text.contains('│'),
                "{args:?}:\n{text}"
            );
        }
    }
    let o = run(&["store", "inspect", d(&conformance("aes"))]);
    o.expect_stdout(" KiB");
}

/// On a terminal of 80 columns (a pseudo-terminal through util-linux
/// `script`): every line fits, with the terminal's box drawing.
#[test]
fn terminal_output_fits_80_columns() {
    let bin = env!("CARGO_BIN_EXE_stanctl");
    let (_copy, cases) = width_cases();
    for args in cases {
        let cmd = format!(
            "stty cols 80 rows 50; {bin} {}",
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let o = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env_remove("COLUMNS")
            .env_remove(ENV_KEY)
            .output()
            .expect("util-linux script");
        let text = String::from_utf8_lossy(&o.stdout).replace('\r', "");
        assert!(
            widest(&text) <= 80,
            "{args:?}: {} columns:\n{text}",
            widest(&text)
        );
        if args[1] == "inspect" {
            assert!(
                text.contains('│'),
                "{args:?}: a terminal gets box drawing:\n{text}"
            );
        }
    }
}

/// Short options for the frequent flags, and --quiet.
#[test]
fn short_options_and_quiet() {
    let (_t, s) = store("aes");
    let o = run(&["store", "decrypt", d(&s), "-k", k1(), "-n"]);
    assert!(o.success(), "{}", o.stderr);
    o.expect_stdout("dry run");
    assert_same_store(&s, &conformance("aes"));
    let (t, s) = store("aes");
    let out = t.path().join("copy");
    let o = run(&["store", "decrypt", d(&s), "-k", k1(), "-o", d(&out), "-q"]);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(o.stdout, "", "--quiet prints nothing");
    assert_same_store(&out, &conformance("plain"));
    let o = run(&["store", "verify", d(&s), "-k", k1(), "--quiet"]);
    assert_eq!((o.code, o.stdout.as_str()), (OK, ""));
    // decrypt's --assume-plaintext is ignored, with a warning, and hidden.
    let o = run(&[
        "store",
        "decrypt",
        d(&s),
        "-k",
        k1(),
        "-n",
        "--assume-plaintext",
    ]);
    assert!(
        o.success() && o.stderr.contains("does nothing with decrypt"),
        "{}",
        o.stderr
    );
    let o = run(&["store", "decrypt", "--help"]);
    assert!(!o.stdout.contains("assume-plaintext"), "{}", o.stdout);
    // The raft commands take the same short options and --quiet.
    let t = tempfile::TempDir::new().unwrap();
    let log = t.path().join("raft.log");
    let original = fixtures().join("clustered").join("raft").join("aes.log");
    std::fs::copy(&original, &log).unwrap();
    let before = std::fs::read(&log).unwrap();
    let o = run(&["raft", "decrypt", d(&log), "-k", k1(), "-n"]);
    assert!(o.success(), "{}", o.stderr);
    assert_ne!(o.stdout, "", "a dry run says what it would do");
    assert_eq!(std::fs::read(&log).unwrap(), before, "-n writes nothing");
    // raft decrypt's --assume-plaintext too: ignored, warned about, hidden.
    let o = run(&[
        "raft",
        "decrypt",
        d(&log),
        "-k",
        k1(),
        "-n",
        "--assume-plaintext",
    ]);
    assert!(
        o.success() && o.stderr.contains("does nothing with decrypt"),
        "{}",
        o.stderr
    );
    let o = run(&["raft", "decrypt", "--help"]);
    assert!(!o.stdout.contains("assume-plaintext"), "{}", o.stdout);
    let o = run(&["raft", "encrypt", "--help"]);
    o.expect_stdout("Exactly one key");
    let o = run(&["raft", "rekey", "--help"]);
    o.expect_stdout("An OLD key");
    let copy = t.path().join("copy.log");
    let o = run(&["raft", "decrypt", d(&log), "-k", k1(), "-o", d(&copy), "-q"]);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(o.stdout, "", "--quiet prints nothing");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        before,
        "-o leaves LOG as it is"
    );
    let o = run(&["raft", "verify", d(&copy), "-q"]);
    assert_eq!((o.code, o.stdout.as_str()), (OK, ""));
    let o = run(&["raft", "verify", d(&copy), "--quiet", "--json"]);
    assert_eq!(o.json()["exit_code"], OK, "--json still prints");
    let o = run(&[
        "raft",
        "rekey",
        d(&log),
        "-k",
        k1(),
        "--new-key-file",
        k2(),
        "-q",
    ]);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(o.stdout, "", "--quiet prints nothing");
    let o = run(&[
        "raft",
        "encrypt",
        d(&copy),
        "-k",
        k2(),
        "--cipher",
        "AES",
        "--quiet",
    ]);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(o.stdout, "", "--quiet prints nothing");
}

/// Archived slices are converted with the live ones (issue 14 item 11:
/// after encrypt no plaintext is left in them), and every report says how
/// many plaintext messages are on disk, and where (tests/archived.rs has
/// the details).
#[test]
fn encrypt_converts_archived_slices_and_says_what_plaintext_remains() {
    let (_t, s) = store("plain");
    for ext in ["dat", "idx"] {
        std::fs::copy(
            s.join(format!("orders/msgs.1.{ext}")),
            s.join(format!("orders/msgs.1.{ext}.bak")),
        )
        .unwrap();
    }
    let bak = std::fs::read(s.join("orders/msgs.1.dat.bak")).unwrap();
    let o = run(&["store", "inspect", d(&s)]);
    o.expect_stdout("archived orders/msgs.1.dat.bak (13)");
    let o = run(&[
        "store",
        "encrypt",
        d(&s),
        "-k",
        k1(),
        "--cipher",
        "AES",
        "--assume-plaintext",
    ]);
    assert!(o.success(), "{}", o.stderr);
    o.expect_stdout("1 rewritten, 14 message(s) encrypted");
    o.expect_stdout("Plaintext on disk: none");
    assert_ne!(std::fs::read(s.join("orders/msgs.1.dat.bak")).unwrap(), bak);
    let o = run(&["store", "inspect", d(&s)]);
    o.expect_stdout("Plaintext on disk: none");
    let (_, v) = json(&["store", "decrypt", d(&s), "-k", k1(), "-n"]);
    assert_eq!(v["archived"][0]["file"], "orders/msgs.1.dat.bak");
    assert_eq!(v["archived"][0]["converted"], 14);
    assert_eq!(v["archived"][0]["plaintext"], 13, "after a real decrypt");
    assert_eq!(v["plaintext_on_disk"]["archived"][0]["messages"], 13);
}

/// The rewrite JSON keeps --keep-damaged's fields, and its counts add up.
#[test]
fn keep_damaged_json_counts_add_up() {
    let (_t, s) = store("damaged-crc");
    let (code, v) = json(&[
        "store",
        "decrypt",
        d(&s),
        "-k",
        k1(),
        "-n",
        "--keep-damaged",
    ]);
    assert_eq!(code, OK, "{v}");
    let t = &v["totals"];
    assert_eq!(t["kept"], 1, "{v}");
    assert_eq!(v["kept"].as_array().unwrap().len(), 1, "{v}");
    let n = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(
        n("records"),
        n("changed") + n("unchanged") + n("kept") + n("refused_records")
    );
    assert_eq!(n("refused_records"), 0);
}

/// Waits (polling every 2 ms, at most `limit_s` seconds, failing with
/// `never`) until `ready()` holds while the child still runs, sends it
/// `sig`, and returns its output.
fn signal_when(
    child: std::process::Child,
    sig: i32,
    limit_s: u64,
    never: &str,
    ready: impl Fn() -> bool,
) -> std::process::Output {
    signals_when(child, sig, 1, limit_s, never, ready)
}

/// `signal_when`, sending `sig` `times` times in a row.
fn signals_when(
    mut child: std::process::Child,
    sig: i32,
    times: usize,
    limit_s: u64,
    never: &str,
    ready: impl Fn() -> bool,
) -> std::process::Output {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was signalled"
        );
        assert!(start.elapsed().as_secs() < limit_s, "{never}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    for _ in 0..times {
        // SAFETY: kill has no memory preconditions; the pid is our child's
        // (not reaped yet, so not reused).
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    }
    child.wait_with_output().unwrap()
}
