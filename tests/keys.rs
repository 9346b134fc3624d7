//! Keys: where they come from (files, --key, the environment), how many a
//! command takes, which one wins, and that no output ever shows key material.

mod common;
use common::*;

use proptest::collection::vec;
use proptest::prelude::*;
use std::path::Path;

/// `n` key files that are not the store's key, in `dir`.
fn dummy_keys(dir: &Path, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("dummy{i}.key"));
            std::fs::write(&p, format!("not-the-key-{i}")).unwrap();
            p.display().to_string()
        })
        .collect()
}

const CASES: u32 = 2000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Integration tests have no lib.rs beside them to anchor the
        // regression files; failures print the minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
    let max = stanctl::crypto::keys::MAX_KEY_FILE as usize;
    prop_oneof![
        4 => vec(any::<u8>(), 0..80),
        2 => prop_oneof![Just(b"\n".to_vec()), Just(b"\r\n".to_vec()), Just(b"k\n".to_vec()),
                         Just(b"k\r\n".to_vec()), Just(b"k\n\n".to_vec()), Just(b"\r".to_vec())],
        1 => (vec(any::<u8>(), 0..8), max - 4..max + 4).prop_map(|(tail, n)| {
            let mut v = vec![b'a'; n - tail.len().min(n)];
            v.extend(tail);
            v
        }),
    ]
}

/// What the key file rule says: its bytes, one trailing newline ("\n" or
/// "\r\n") removed; empty and larger than 64 KiB refused.
fn expected_key(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() as u64 > stanctl::crypto::keys::MAX_KEY_FILE {
        return None;
    }
    let mut v = b.to_vec();
    if v.last() == Some(&b'\n') {
        v.pop();
        if v.last() == Some(&b'\r') {
            v.pop();
        }
    }
    (!v.is_empty()).then_some(v)
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn inspect_args(dir: &Path, extra: &[String]) -> Vec<String> {
    let mut a = strs(&["store", "inspect"]);
    a.push(dir.display().to_string());
    a.push("--json".into());
    a.extend_from_slice(extra);
    a
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
    o.expect_stderr("at most 254 keys");
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

#[test]
fn bad_key_files() {
    let t = tempfile::TempDir::new().unwrap();
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
    run_ok(&["store", "inspect", d(&s), "--key-file", d(&huge)]);
    assert_eq!(snapshot(&s), before);
}

/// run() checks every output for key material; every output path is
/// exercised, success and failure, and each run must show that it got as
/// far as loading its keys (the output names them), or it proves nothing.
#[test]
fn no_output_shows_key_material() {
    // A copy: one case is a rewrite without --dry-run (refused for its
    // --output), and the fixtures are never a rewrite's target.
    let (_copy, mixed) = store("mixed");
    let dir = d(&mixed);
    let (k1, k2) = (key(1), key(2));
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    let cmdline = "a key given with --key is visible to other users";
    let files = ["--key-file", k1.as_str(), "--key-file", k2.as_str()];
    let with = |head: &[&'static str], tail: &[&'static str]| -> Vec<String> {
        let mut v = strs(head);
        v.push(dir.to_string());
        v.extend(strs(tail));
        v
    };
    let mut cases: Vec<(Vec<String>, Option<&str>, &str, i32)> = Vec::new();
    for (extra, shown) in [
        (&[][..], "Key K2 = key file"),
        (&["--by-slice"][..], "Key K2 = key file"),
        (&["--json", "--records", "--by-slice"][..], "\"id\": \"K2\""),
    ] {
        let mut a = with(&["store", "inspect"], extra);
        a.extend(strs(&files));
        cases.push((a, None, shown, OK));
    }
    cases.extend([
        (
            with(
                &["store", "inspect"],
                &["--key", "conformance-key-1", "--json"],
            ),
            None,
            cmdline,
            OK,
        ),
        (
            with(&["store", "inspect"], &["--key", "conformance-key-2"]),
            None,
            "Key K1 = --key",
            OK,
        ),
        (
            strs(&[
                "store",
                "inspect",
                "/nonexistent-stanctl",
                "--key",
                "conformance-key-1",
            ]),
            None,
            cmdline,
            IO,
        ),
        (
            with(&["store", "verify"], &["--key", "conformance-key-1"]),
            None,
            "key from --key",
            AT_RISK,
        ),
        (
            with(&["store", "inspect"], &["--json", "--records"]),
            Some("conformance-key-1"),
            "$NATS_STREAMING_ENCRYPTION_KEY",
            OK,
        ),
        (
            with(&["store", "inspect"], &[]),
            Some("conformance-key-2"),
            "Key K1 = $NATS_STREAMING_ENCRYPTION_KEY",
            OK,
        ),
    ]);
    // Errors after the keys are loaded: too many keys for encrypt (it names
    // them), and a non-empty --output.
    let mut a = with(&["store", "encrypt"], &["--cipher", "AES", "--dry-run"]);
    a.extend(strs(&files));
    cases.push((a, None, "K2 = key file", USAGE));
    let mut a = with(
        &["store", "decrypt"],
        &["--key", "conformance-key-1", "--output"],
    );
    a.push(d(&full).to_string());
    cases.push((a, None, cmdline, USAGE));
    for (args, env, shown, want) in &cases {
        let o = run_env(args, *env);
        assert_eq!(o.code, *want, "{args:?}: {}", o.stderr);
        let text = format!("{}{}", o.stdout, o.stderr);
        assert!(
            text.contains(shown),
            "{args:?}: no sign the keys were loaded ({shown:?}):\n{text}"
        );
    }
}

#[test]
fn empty_key_file_is_a_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty.key");
    std::fs::write(&empty, b"").unwrap();
    let newline = t.path().join("newline.key");
    std::fs::write(&newline, b"\n").unwrap();
    for k in [&empty, &newline] {
        let out = run(&inspect_args(
            &conformance("aes"),
            &strs(&["--key-file", &k.display().to_string()]),
        ));
        assert_eq!(out.code, 64, "{}: {}", k.display(), out.stderr);
        assert!(out.stderr.contains("empty"), "{:?}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    // An empty --key is refused too.
    let out = run(&inspect_args(&conformance("aes"), &strs(&["--key", ""])));
    assert_eq!(out.code, 64, "{}", out.stderr);
    // A missing key file is an I/O error naming it.
    let missing = t.path().join("missing.key").display().to_string();
    let out = run(&inspect_args(
        &conformance("aes"),
        &strs(&["--key-file", &missing]),
    ));
    assert_eq!(out.code, 74, "{}", out.stderr);
    assert!(out.stderr.contains(&missing));
}

#[test]
fn read_key_file_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&key_bytes(), |b| {
            std::fs::write(&path, &b).unwrap();
            let got = stanctl::cli::keys::read_key_file(&path);
            match (&got, expected_key(&b)) {
                (Ok(k), Some(want)) => prop_assert_eq!(&k[..], &want[..]),
                (Err(stanctl::crypto::keys::KeyError::TooLarge(_)), None) => {
                    prop_assert!(b.len() as u64 > stanctl::crypto::keys::MAX_KEY_FILE)
                }
                (Err(stanctl::crypto::keys::KeyError::Empty(_)), None) => {}
                (got, want) => prop_assert!(
                    false,
                    "{} bytes: got {:?}, want {:?}",
                    b.len(),
                    got.as_ref().map(|k| k.len()),
                    want.map(|w| w.len())
                ),
            }
            if let Err(e) = &got {
                // The message never carries key bytes (only the path).
                let msg = e.to_string();
                prop_assert!(msg.contains(&path.display().to_string()));
            }
            Ok(())
        })
        .unwrap();
    // A missing file and a directory are read errors, not panics.
    assert!(matches!(
        stanctl::cli::keys::read_key_file(&dir.path().join("missing")),
        Err(stanctl::crypto::keys::KeyError::Read { .. })
    ));
    assert!(stanctl::cli::keys::read_key_file(dir.path()).is_err());
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
    let out = run_env(
        &["store", "verify", d(&dir), "--list"],
        Some(key.trim_end_matches('\n')),
    );
    // Envelopes delivered as ciphertext: at risk.
    assert_eq!(out.code, AT_RISK, "{}", out.stderr);
    let got = out.stdout;
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

#[test]
fn environment_key_wins_over_the_configured_key() {
    let aes = conformance("aes");
    let out = run_env(
        &["store", "verify", d(&aes), "--key-file", k1()],
        Some("conformance-key-2"),
    );
    assert_eq!(
        Some(out.code),
        Some(1),
        "K2 from the environment must win and fail every message"
    );
    let err = out.stderr.as_str();
    assert!(
        err.contains("NATS_STREAMING_ENCRYPTION_KEY is set"),
        "{err}"
    );
    assert!(!err.contains("conformance-key"));
}
