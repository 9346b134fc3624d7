//! `--config FILE`: the server's configuration file gives the same answers
//! as the equivalent flags, on every conformance store and setting and on the
//! clustered nodes; flags win over the file, NATS_STREAMING_ENCRYPTION_KEY
//! over its key; the Settings block names each setting's source; bad files
//! get an error at file:line:column with exit 64, never a panic; no key
//! bytes in any output (every run goes through `common::exec`).

mod common;
use common::*;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the package root (relative `dir` values are taken
/// against the working directory, as the server does) with these
/// environment variables.
#[track_caller]
fn run_in(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = stanctl();
    c.current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    exec(c.args(args), &args)
}

/// The lines a comparison with the server covers.
fn comparable(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.starts_with("MSG\t") || l.starts_with("CHANNEL\t") || l.starts_with("SERVER\t")
        })
        .map(str::to_string)
        .collect()
}

fn setting_flags(setting: &str) -> Vec<String> {
    match setting {
        "no-encrypt" => vec!["--no-encrypt".into()],
        "key1" => vec!["--key-file".into(), key(1)],
        "key2" => vec!["--key-file".into(), key(2)],
        other => panic!("unknown setting {other}"),
    }
}

/// A private copy of a configuration file with owner-only permissions (so
/// no warning), in a new directory.
fn private(text: &str) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("nats-streaming.conf");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    (t, p)
}

/// The verify document without what legitimately differs between a run
/// with flags and one with --config: the sources.
fn without_sources(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().unwrap();
    o.remove("setting_sources");
    o.remove("config");
    // The key's source ("key file F" or "configuration file F line N").
    o["settings"].as_object_mut().unwrap().remove("key");
    v
}

fn source_of<'a>(v: &'a serde_json::Value, setting: &str) -> &'a serde_json::Value {
    v["setting_sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["setting"] == setting)
        .unwrap_or_else(|| panic!("no {setting} in {}", v["setting_sources"]))
}

#[test]
fn conformance_configs_match_the_server_and_the_flags() {
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
        let expected = std::fs::read_to_string(&f).unwrap();
        // The configuration reads the store from STANCTL_STORE, relative to
        // the working directory, as a deploy script would set it.
        let rel = format!("fixtures/conformance/{store}");
        let conf = format!("fixtures/config/conformance-{setting}.conf");
        let env = [("STANCTL_STORE", rel.as_str())];
        let by_file = run_in(&["store", "verify", "--config", &conf, "--list"], &env);
        assert_eq!(
            comparable(&by_file.stdout),
            comparable(&expected),
            "{name}: verify --config --list differs from the server"
        );
        let mut args = vec!["store".to_string(), "verify".into(), rel.clone()];
        args.extend(setting_flags(setting));
        args.push("--list".into());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let by_flags = run_in(&a, &[]);
        assert_eq!(
            (by_file.code, &by_file.stdout),
            (by_flags.code, &by_flags.stdout),
            "{name}: --config and the equivalent flags disagree"
        );

        // The JSON report: the same, apart from the sources, which name the
        // configuration file's lines.
        let j_file = run_in(&["store", "verify", "--config", &conf, "--json"], &env);
        let mut a = a.clone();
        a.pop();
        a.push("--json");
        let j_flags = run_in(&a, &[]);
        assert_eq!(j_file.code, j_flags.code, "{name}");
        let (vf, vg) = (j_file.json(), j_flags.json());
        assert_eq!(without_sources(vf.clone()), without_sources(vg), "{name}");
        assert_eq!(vf["config"], conf.as_str());
        let dir = source_of(&vf, "dir");
        assert_eq!(dir["source"], "config", "{name}");
        assert_eq!(dir["file"], conf.as_str());
        assert_eq!(dir["value"], rel.as_str());
        let enc = source_of(&vf, "encryption");
        assert_eq!(enc["value"], setting != "no-encrypt", "{name}");
        assert_eq!(enc["source"], "config", "{name}");
        if setting != "no-encrypt" {
            let k = source_of(&vf, "key");
            assert_eq!(k["file"], format!("fixtures/config/{setting}.conf"));
            assert_eq!(k["line"], 3);
            assert_eq!(k["key"], "encryption_key");
            assert_eq!(
                vf["settings"]["key"],
                format!("configuration file fixtures/config/{setting}.conf line 3")
            );
        }
    }
}

/// A clustered node's configuration: its store from `dir`, its key, and the
/// cluster settings the Raft log check will use.
fn node_conf(node: &str, key: Option<&str>) -> String {
    node_conf_at(&fixtures().join("clustered").join(node), node, key)
}

/// `node_conf` for a node's directory (`store/`, `raft/`) at `base`: a copy,
/// for the commands that may write.
fn node_conf_at(base: &Path, node: &str, key: Option<&str>) -> String {
    format!(
        "streaming: {{\n  cluster_id: test-cluster\n  store: file\n  dir: \"{}\"\n{}  cluster {{ node_id: \"{node}\", log_path: \"{}\" }}\n}}\n",
        base.join("store").display(),
        key.map_or(String::new(), |k| format!("  encryption_key: \"{k}\"\n")),
        base.join("raft").display()
    )
}

/// The Raft log lines of a `--list` output.
fn raft_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            ["RAFTLOG\t", "LOG\t", "CONF\t"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

/// Each node checked with its configuration file: the store and the Raft
/// log (found through `cluster { log_path }`) as the server serves them, and
/// the same output as the equivalent flags.
#[test]
fn clustered_nodes_match_the_server() {
    for (node, setting, key) in [
        ("node-a", "key1", Some("conformance-key-1")),
        ("node-a", "no-encrypt", None),
        ("node-b", "key2", Some("conformance-key-2")),
        ("node-b", "no-encrypt", None),
    ] {
        let name = format!("{node}.store.{setting}");
        let read = |f: String| {
            std::fs::read_to_string(fixtures().join("clustered/expected").join(f)).unwrap()
        };
        let expected = read(format!("{name}.tsv"));
        let expected_raft = read(format!("{node}.raft.{setting}.tsv"));
        let (_t, conf) = private(&node_conf(node, key));
        let o = run_in(&["store", "verify", "--config", d(&conf), "--list"], &[]);
        assert_eq!(
            comparable(&o.stdout),
            comparable(&expected),
            "{name}: verify --config --list differs from the server"
        );
        assert!(!raft_lines(&expected_raft).is_empty());
        assert_eq!(
            raft_lines(&o.stdout),
            raft_lines(&expected_raft),
            "{node}.raft.{setting}: the Raft log differs from the server"
        );
        let base = fixtures().join("clustered").join(node);
        let mut args = vec![
            "store".to_string(),
            "verify".into(),
            d(&base.join("store")).into(),
            "--cluster-log-path".into(),
            d(&base.join("raft")).into(),
            "--list".into(),
        ];
        args.extend(setting_flags(setting));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let by_flags = run_in(&a, &[]);
        assert_eq!(
            (o.code, &o.stdout),
            (by_flags.code, &by_flags.stdout),
            "{name}"
        );

        let o = run_in(&["store", "verify", "--config", d(&conf), "--json"], &[]);
        let v = o.json();
        let lp = source_of(&v, "cluster_log_path");
        assert_eq!(lp["value"], d(&base.join("raft")));
        assert_eq!(lp["source"], "config");
        assert_eq!(lp["line"], if key.is_some() { 6 } else { 5 });
        assert_eq!(source_of(&v, "node_id")["value"], node);
        // A flag wins over the file's log_path.
        let o = run_in(
            &[
                "store",
                "verify",
                "--config",
                d(&conf),
                "--raft-log",
                d(&base.join("raft/test-cluster/raft.log")),
                "--json",
            ],
            &[],
        );
        let v = o.json();
        assert_eq!(source_of(&v, "raft_log")["source"], "flag");
        assert!(v["setting_sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["setting"] != "cluster_log_path"));
    }
}

/// Includes, variables, an environment variable, the streaming map (with
/// keys in any case and aliases), both comment styles and every separator.
#[test]
fn a_full_configuration_equals_the_flags() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let inc = t.path().join("inc");
    std::fs::create_dir(&inc).unwrap();
    std::fs::write(
        inc.join("secrets.conf"),
        "# the key, kept apart\nENC_KEY: \"conformance-key-2\"\n",
    )
    .unwrap();
    std::fs::write(
        inc.join("file.conf"),
        "crc = true; crc_poly: 3988292384\nslice_max_msgs 15\n",
    )
    .unwrap();
    let main = t.path().join("main.conf");
    std::fs::write(
        &main,
        "# the NATS part and the streaming part in one file
port: 4222
http = 8222
dir: \"/wrong/top/level/is/ignored\"   # only the streaming map counts

Streaming {
  // every separator: colon, equals and whitespace
  cluster_id: \"test-cluster\"
  Store = file
  DataStore $STORE_FROM_ENV
  ENCRYPT: true
  encryption_cipher \"chacha\"
  include \"inc/secrets.conf\"   // brings ENC_KEY into this map
  encryption_key: $ENC_KEY
  file_options {
    include 'inc/file.conf'
    read_buffer_size = 1MB
  }
  hb_interval: \"10s\"
  store_limits { max_channels: 100, channels { \"orders.>\" { max_age: \"1h\" } } }
}
",
    )
    .unwrap();
    for f in [&main, &inc.join("secrets.conf"), &inc.join("file.conf")] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let store = d(&conformance("mixed")).to_string();
    let env = [("STORE_FROM_ENV", store.as_str())];
    for extra in [&["--list"][..], &["--json"][..], &[][..]] {
        let mut a = vec!["store", "verify", "--config", d(&main)];
        a.extend_from_slice(extra);
        let by_file = run_in(&a, &env);
        let k2 = key(2);
        let mut b = vec![
            "store",
            "verify",
            store.as_str(),
            "--key-file",
            &k2,
            "--cipher",
            "CHACHA",
            "--crc-poly",
            "0xedb88320",
            "--file-read-buffer-size",
            "1MB",
        ];
        b.extend_from_slice(extra);
        let by_flags = run_in(&b, &[]);
        assert_eq!(by_file.code, by_flags.code, "{extra:?}");
        assert!(
            !by_file.stderr.contains("warning"),
            "owner-only files: {}",
            by_file.stderr
        );
        match extra.first() {
            Some(&"--json") => {
                let v = by_file.json();
                assert_eq!(without_sources(v.clone()), without_sources(by_flags.json()));
                assert_eq!(source_of(&v, "read_buffer_size")["value"], 1024 * 1024);
                assert_eq!(source_of(&v, "read_buffer_size")["line"], 17);
                assert_eq!(source_of(&v, "cipher")["key"], "encryption_cipher");
                assert_eq!(source_of(&v, "crc_poly")["file"], d(&inc.join("file.conf")));
                assert_eq!(source_of(&v, "dir")["key"], "DataStore");
                assert_eq!(source_of(&v, "encryption")["key"], "ENCRYPT");
                assert_eq!(source_of(&v, "key")["line"], 14);
            }
            Some(_) => {
                assert_eq!(by_file.stdout, by_flags.stdout);
                let expected =
                    std::fs::read_to_string(fixtures().join("conformance/expected/mixed.key2.tsv"))
                        .unwrap();
                assert_eq!(comparable(&by_file.stdout), comparable(&expected));
            }
            None => {
                // The human Settings block names the file and line of each.
                let s = &by_file.stdout;
                assert!(s.contains("Settings: encryption on, key from configuration file"));
                assert!(s.contains(&format!("from {}:11 (ENCRYPT)", main.display())));
                assert!(s.contains(&format!("from {}:10 (DataStore)", main.display())));
                assert!(s.contains("truncate-on-EOF off "));
            }
        }
    }
}

#[test]
fn flags_win_over_the_file() {
    let conf = "fixtures/config/conformance-key1.conf";
    let env = [("STANCTL_STORE", "/nonexistent-store-from-config")];
    let expected = |f: &str| {
        comparable(
            &std::fs::read_to_string(fixtures().join("conformance/expected").join(f)).unwrap(),
        )
    };
    // DIR over `datastore`, --key-file over `encryption_key`.
    let o = run_in(
        &[
            "store",
            "verify",
            "fixtures/conformance/mixed",
            "--config",
            conf,
            "--key-file",
            &key(2),
            "--list",
        ],
        &env,
    );
    assert_eq!(comparable(&o.stdout), expected("mixed.key2.tsv"));
    // --no-encrypt over `encrypt: true` and the key.
    let o = run_in(
        &[
            "store",
            "verify",
            "fixtures/conformance/mixed",
            "--config",
            conf,
            "--no-encrypt",
            "--list",
        ],
        &env,
    );
    assert_eq!(comparable(&o.stdout), expected("mixed.no-encrypt.tsv"));
    assert_eq!(o.code, AT_RISK);
    // --crc-poly over `crc_poly`, named as a flag in the block.
    let o = run_in(
        &[
            "store",
            "verify",
            "fixtures/conformance/aes",
            "--config",
            conf,
            "--crc-poly",
            "ieee",
            "--cipher",
            "chacha",
            "--json",
        ],
        &env,
    );
    let v = o.json();
    assert_eq!(o.code, OK);
    assert_eq!(source_of(&v, "crc_poly")["source"], "flag");
    assert_eq!(source_of(&v, "crc_poly")["name"], "--crc-poly");
    assert_eq!(source_of(&v, "dir")["name"], "DIR");
    assert_eq!(source_of(&v, "cipher")["value"], "CHACHA");
    assert_eq!(source_of(&v, "key")["source"], "config");
    assert_eq!(source_of(&v, "truncate_on_eof")["source"], "default");
    assert_eq!(source_of(&v, "file_crc")["source"], "config");
    assert_eq!(source_of(&v, "read_buffer_size")["key"], "read_buffer_size");
    // --no-file-crc and --file-read-buffer-size over `crc` and `read_buffer_size`.
    let o = run_in(
        &[
            "store",
            "verify",
            "--config",
            conf,
            "--no-file-crc",
            "--file-read-buffer-size",
            "0",
            "--json",
        ],
        &[("STANCTL_STORE", "fixtures/conformance/aes")],
    );
    let v = o.json();
    assert_eq!(v["settings"]["file_crc"], false);
    assert_eq!(source_of(&v, "file_crc")["name"], "--no-file-crc");
    assert_eq!(source_of(&v, "read_buffer_size")["value"], 0);
    assert_eq!(source_of(&v, "read_buffer_size")["source"], "flag");
    // The file's `dir` does not exist, and is only used without DIR.
    let o = run_in(&["store", "verify", "--config", conf], &env);
    assert_eq!(o.code, IO, "{}", o.stderr);
    assert!(o.stderr.contains("/nonexistent-store-from-config"));
}

#[test]
fn the_environment_key_wins_over_the_files_key() {
    let conf = "fixtures/config/conformance-key1.conf";
    let env = [
        ("STANCTL_STORE", "fixtures/conformance/mixed"),
        (ENV_KEY, "conformance-key-2"),
    ];
    let o = run_in(&["store", "verify", "--config", conf, "--list"], &env);
    let expected =
        std::fs::read_to_string(fixtures().join("conformance/expected/mixed.key2.tsv")).unwrap();
    assert_eq!(comparable(&o.stdout), comparable(&expected));
    assert!(o.stderr.contains("NATS_STREAMING_ENCRYPTION_KEY is set"));
    let o = run_in(&["store", "verify", "--config", conf, "--json"], &env);
    let v = o.json();
    assert_eq!(source_of(&v, "key")["source"], "environment");
    assert_eq!(source_of(&v, "key")["name"], ENV_KEY);
    // The variable alone does not turn encryption on: `encrypt: false`.
    let env = [
        ("STANCTL_STORE", "fixtures/conformance/aes"),
        (ENV_KEY, "conformance-key-1"),
    ];
    let o = run_in(
        &[
            "store",
            "verify",
            "--config",
            "fixtures/config/conformance-no-encrypt.conf",
            "--json",
        ],
        &env,
    );
    let v = o.json();
    assert_eq!(o.code, AT_RISK);
    assert_eq!(v["settings"]["encryption"], false);
    assert_eq!(source_of(&v, "encryption")["key"], "encrypt");
}

#[test]
fn the_files_key_works_for_inspect_and_the_rewrites() {
    let (_t, dir) = store("mixed");
    let conf_text = format!(
        "streaming {{ dir: \"{}\", encryption_key: \"conformance-key-1\", encryption_cipher: CHACHA }}\n",
        dir.display()
    );
    let (_c, conf) = private(&conf_text);
    let o = run_in(
        &[
            "store",
            "inspect",
            "--config",
            d(&conf),
            "--key-file",
            &key(2),
            "--json",
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let v = o.json();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1]["id"], "K2");
    assert_eq!(
        keys[1]["source"],
        format!("configuration file {} line 1", conf.display())
    );
    // decrypt with the file's key and the flag's: everything opens.
    let o = run_in(
        &[
            "store",
            "decrypt",
            "--config",
            d(&conf),
            "--key-file",
            &key(2),
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    // encrypt takes its key and cipher from the file: the plaintext of a
    // plain store is sealed, and verify with the same file agrees.
    let (_p, plain) = store("plain");
    let conf_text = format!(
        "streaming {{ dir: \"{}\", encryption_key: \"conformance-key-1\", encryption_cipher: CHACHA }}\n",
        plain.display()
    );
    let (_c2, conf2) = private(&conf_text);
    // (The plain store holds payloads that merely start with byte 1 or 2.)
    let o = run_in(
        &[
            "store",
            "encrypt",
            "--config",
            d(&conf2),
            "--assume-plaintext",
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let v = inspect(&plain, &key(1));
    assert_eq!(v["totals"]["payloads"]["plaintext"], 0);
    assert!(v["totals"]["payloads"]["chacha"].as_u64().unwrap() > 0);
    let o = run_in(&["store", "verify", "--config", d(&conf2)], &[]);
    assert_eq!(o.code, OK, "{}", o.stdout);
    // encrypt without a cipher anywhere is a usage error.
    let (_c3, conf3) = private(&format!(
        "streaming {{ dir: \"{}\", encryption_key: \"conformance-key-1\" }}\n",
        plain.display()
    ));
    let o = run_in(
        &["store", "encrypt", "--config", d(&conf3), "--dry-run"],
        &[],
    );
    assert_eq!(o.code, USAGE);
    o.expect_stderr("--cipher");
}

#[test]
fn no_store_directory_is_a_usage_error() {
    let (_t, conf) = private("streaming { encrypt: false }\n");
    let o = run_in(&["store", "verify", "--config", d(&conf)], &[]);
    assert_eq!(o.code, USAGE);
    o.expect_stderr("no store directory");
    let o = run_in(&["store", "inspect"], &[]);
    assert_eq!(o.code, USAGE);
}

#[test]
fn a_key_file_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "streaming {{ dir: \"{}\", encryption_key: \"conformance-key-1\" }}\n",
        d(&conformance("aes"))
    );
    let (_t, conf) = private(&text);
    let o = run_in(&["store", "verify", "--config", d(&conf)], &[]);
    assert_eq!(o.code, OK);
    assert!(
        !o.stderr.contains("other users may read it"),
        "{}",
        o.stderr
    );
    for mode in [0o640, 0o604] {
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = run_in(&["store", "verify", "--config", d(&conf)], &[]);
        assert_eq!(o.code, OK);
        assert!(
            o.stderr.contains(&format!(
                "warning: {}: holds an encryption key",
                conf.display()
            )),
            "{mode:o}: {}",
            o.stderr
        );
    }
    // Without a key, the permissions are none of stanctl's business.
    let (_u, conf) = private(&format!("dir: \"{}\"\n", d(&conformance("plain"))));
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run_in(&["store", "verify", "--config", d(&conf)], &[]);
    assert!(!o.stderr.contains("warning"), "{}", o.stderr);
}

/// Each bad file: exit 64, the error at file:line:column with the text
/// found there, and the hint.
#[test]
fn bad_files_point_at_file_line_and_column() {
    let bad = root().join("tests/data/config/bad");
    let t = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = t.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases: Vec<(PathBuf, &str, &str)> = vec![
        (
            bad.join("unterminated.conf"),
            "1:6",
            "dir: \"/var/lib/stan",
        ),
        (
            write("map.conf", "streaming {\n  dir: \"/x\"\n  encrypt: true\n"),
            "1",
            "streaming",
        ),
        (
            // The include line in the top file, then the cycle where it closes.
            bad.join("cycle_a.conf"),
            "2:3",
            "cycle_b.conf:3:3: include cycle",
        ),
        (
            bad.join("missing_include.conf"),
            "3:3",
            "not-there.conf",
        ),
        (
            write("type.conf", "streaming {\n  dir: \"/x\"\n  encrypt: \"yes\"\n}\n"),
            "3:3",
            "parameter \"encrypt\" value is expected to be bool, got string",
        ),
        (
            write("store.conf", "streaming {\n  store: memory\n  dir: \"/x\"\n}\n"),
            "2:3",
            "stanctl works on file stores only (store: file)",
        ),
        (
            write("sql.conf", "streaming {\n  dir: \"/x\"\n  store_type: \"SQL\"\n}\n"),
            "3:3",
            "store type \"SQL\" is not supported",
        ),
        (
            write("unknown.conf", "streaming {\n  store: \"redis\"\n}\n"),
            "2:3",
            "unknown store type: redis",
        ),
        (
            write(
                "cipher.conf",
                "dir: \"/x\"\nencryption_cipher: \"des\"\nencrypt: true\n",
            ),
            "2:1",
            "encryption cipher not supported",
        ),
        (
            write("rbs.conf", "dir: \"/x\"\nfile { read_buffer_size: -1 }\n"),
            "2:8",
            "read buffer size value must be a positive number",
        ),
        (
            write("poly.conf", "dir: \"/x\"\nfile { crc_poly: -1 }\n"),
            "2:8",
            "crc_poly must be a CRC-32 polynomial",
        ),
        (
            // Two different keys: the error may not show either.
            write(
                "keys.conf",
                "dir: \"/x\"\nencryption_key: \"conformance-key-1\"\nENCRYPTION_KEY: \"conformance-key-2\"\n",
            ),
            "3:1",
            "<redacted>",
        ),
    ];
    for (file, pos, text) in &cases {
        let at = format!("{}:{pos}:", file.display());
        for cmd in ["verify", "inspect", "decrypt", "encrypt", "rekey"] {
            let mut a = vec!["store", cmd, "--config", d(file)];
            if cmd == "rekey" {
                a.extend(["--new-key", "x"]);
            }
            let o = run_in(&a, &[]);
            assert_eq!(o.code, USAGE, "{cmd} {}: {}", file.display(), o.stderr);
            assert!(
                o.stderr.contains(&format!("stanctl: error: {at}")),
                "{cmd} {}: no {at} in:\n{}",
                file.display(),
                o.stderr
            );
            assert!(
                o.stderr.contains(text),
                "{cmd} {}: no {text:?} in:\n{}",
                file.display(),
                o.stderr
            );
            assert!(o.stdout.is_empty(), "{}", o.stdout);
        }
    }
    // A configuration file that cannot be read is an I/O error.
    let o = run_in(
        &["store", "verify", "--config", "/nonexistent/stan.conf"],
        &[],
    );
    assert_eq!(o.code, IO);
    assert!(o
        .stderr
        .contains("cannot read configuration file /nonexistent/stan.conf"));
}

#[test]
fn the_help_and_man_page_name_the_option() {
    let o = run_in(&["store", "verify", "--help"], &[]);
    o.expect_stdout("--config <FILE>");
    let page = std::fs::read_to_string(root().join("man/stanctl-store-verify.1")).unwrap();
    assert!(page.contains("\\-\\-config"), "man page lacks --config");
}

/// The configuration file of the README's pre-deploy example is one the
/// tool reads, and checks a store with it (its `dir` pointed at a fixture).
#[test]
fn the_readme_pre_deploy_example_works() {
    use std::os::unix::fs::PermissionsExt;
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("## Pre-deploy check")
        .nth(1)
        .expect("README has a Pre-deploy check section");
    let conf: String = section
        .split("```")
        .nth(1)
        .expect("a configuration block")
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(conf.contains("streaming {") && conf.contains("include \"secrets.conf\""));
    let script = section.split("```sh").nth(1).expect("a script block");
    assert!(script.contains("stanctl store verify --config"));
    for code in ExitCode::ALL {
        // 4 and 130 are the rewrites' only.
        if !matches!(code, ExitCode::Refused | ExitCode::Interrupted) {
            assert!(
                script.contains(&format!("  {}) ", code.code())),
                "the script does not act on exit code {}",
                code.code()
            );
        }
    }
    let t = tempfile::tempdir().unwrap();
    let main = t.path().join("nats-streaming.conf");
    let conf = conf.replace(
        "\"/var/lib/nats-streaming/store\"",
        &format!("\"{}\"", d(&conformance("aes"))),
    );
    std::fs::write(&main, conf).unwrap();
    let secrets = t.path().join("secrets.conf");
    std::fs::write(&secrets, "encryption_key: \"conformance-key-1\"\n").unwrap();
    for f in [&main, &secrets] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let o = run_in(&["store", "verify", "--config", d(&main)], &[]);
    assert_eq!(o.code, OK, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains(&format!(
        "Settings: encryption on, key from configuration file {} line 1",
        secrets.display()
    )));
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

/// A node's rewrite finds its Raft log through the file's `log_path`, as it
/// does through --cluster-log-path. A `cluster { }` block without
/// `log_path` means the server's default, `<cluster id>/<node id>` under the
/// working directory (verify and the rewrites look there; absent, a usage
/// error names the path and the options); a file that does not make the
/// server clustered gives no log: the rewrite is refused.
#[test]
fn node_rewrites_take_the_log_path_from_the_file() {
    // A copy: the rewrites without --dry-run below take the store's lock
    // (creating `.rootdir.lck`) before they are refused.
    let copy = tempfile::tempdir().unwrap();
    let node_b = copy.path().join("node-b");
    copy_dir(&fixtures().join("clustered/node-b"), &node_b);
    let conf_b = node_conf_at(&node_b, "node-b", Some("conformance-key-2"));
    let (_t, conf) = private(&conf_b);
    let o = run_in(
        &[
            "store",
            "decrypt",
            "--config",
            d(&conf),
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let (_u, no_log) = private(&conf_b.replace(
        &format!(", log_path: \"{}\"", node_b.join("raft").display()),
        "",
    ));
    // The server's default, under the working directory.
    let t = tempfile::tempdir().unwrap();
    let default = "test-cluster/node-b/test-cluster/raft.log";
    std::fs::create_dir_all(t.path().join(default).parent().unwrap()).unwrap();
    std::fs::copy(
        fixtures().join("clustered/node-b/raft/test-cluster/raft.log"),
        t.path().join(default),
    )
    .unwrap();
    let in_t = |args: &[&str]| {
        let mut c = stanctl();
        c.current_dir(t.path());
        exec(c.args(args), &args)
    };
    let o = in_t(&[
        "store",
        "decrypt",
        "--config",
        d(&no_log),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    let v = o.json();
    assert_eq!(v["raft_log"]["path"], default, "{v}");
    assert_eq!(v["raft_log"]["records"], 35, "{v}");
    let o = in_t(&["store", "verify", "--config", d(&no_log), "--json"]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    let v = o.json();
    assert_eq!(v["raft_log"]["path"], default, "{v}");
    assert_eq!(v["raft_log"]["failed"], 0, "{v}");
    assert_eq!(source_of(&v, "cluster_log_path")["source"], "default");
    // Flags still win over the default.
    let elsewhere = node_b.join("raft");
    let o = in_t(&[
        "store",
        "verify",
        "--config",
        d(&no_log),
        "--cluster-log-path",
        d(&elsewhere),
        "--json",
    ]);
    assert_eq!(o.code, OK, "{}", o.stderr);
    assert_eq!(
        o.json()["raft_log"]["path"],
        d(&elsewhere.join("test-cluster/raft.log"))
    );
    // Not there (another working directory): an error that says where it
    // looked and what to give, before anything is written.
    for args in [
        vec!["store", "decrypt", "--config", d(&no_log)],
        vec!["store", "verify", "--config", d(&no_log)],
    ] {
        let o = run_in(&args, &[]);
        assert_eq!(o.code, USAGE, "{args:?}: {}", o.stderr);
        o.expect_stderr(&format!("{default}: no Raft log there"));
        o.expect_stderr("--cluster-log-path DIR");
        o.expect_stderr(&format!("this run's is {}", root().display()));
    }
    // No `cluster { }`: the file does not make the server clustered; the
    // clustered store's log is not given, and the rewrite is refused.
    let (_w, no_cluster) = private(
        &conf_b
            .lines()
            .filter(|l| !l.contains("cluster {"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let o = in_t(&["store", "decrypt", "--config", d(&no_cluster), "--dry-run"]);
    assert_eq!(o.code, REFUSED, "{}", o.stderr);
    o.expect_stderr("--cluster-log-path");
}

/// `file_options { crc: false, read_buffer_size: 0 }` predicts what
/// --no-file-crc --file-read-buffer-size 0 predict, on a damaged store.
#[test]
fn the_files_crc_and_read_buffer_equal_the_flags() {
    let store = d(&conformance("damaged-crc")).to_string();
    let (_t, conf) = private(&format!(
        "streaming {{\n  dir: \"{store}\"\n  encryption_key: \"conformance-key-1\"\n  file_options {{ crc: false, read_buffer_size: 0 }}\n}}\n"
    ));
    let k1 = key(1);
    let by_file = run_in(&["store", "verify", "--config", d(&conf), "--list"], &[]);
    let by_flags = run_in(
        &[
            "store",
            "verify",
            store.as_str(),
            "--list",
            "--key-file",
            k1.as_str(),
            "--no-file-crc",
            "--file-read-buffer-size",
            "0",
        ],
        &[],
    );
    assert_eq!(
        (by_file.code, &by_file.stdout),
        (by_flags.code, &by_flags.stdout)
    );
    // And differs from the server's default (the CRC is checked there).
    let checked = run_in(
        &[
            "store",
            "verify",
            store.as_str(),
            "--list",
            "--key-file",
            k1.as_str(),
            "--file-read-buffer-size",
            "0",
        ],
        &[],
    );
    assert_ne!(
        checked.stdout, by_file.stdout,
        "crc: false changes nothing?"
    );
}

/// `stanctl raft ... --config FILE`: encryption, the key and the cipher
/// from the server's file, with the store commands' precedence (flags win,
/// the environment's key over the file's), their warning for a key file
/// others may read, and the Settings block's sources (raft verify).
#[test]
fn raft_commands_take_the_servers_configuration() {
    use std::os::unix::fs::PermissionsExt;
    let aes = fixtures().join("clustered/raft/aes.log");
    let plain = fixtures().join("clustered/raft/plain.log");
    let (_t, conf) = private(
        "streaming { encrypt: true\n encryption_key: \"conformance-key-1\"\n encryption_cipher: CHACHA\n}\n",
    );
    let census = |p: &std::path::Path| {
        let db = stanctl::format::raft::RaftLog::open(p).unwrap();
        stanctl::ops::raft_census::census(&db, None).unwrap()
    };
    // verify: the file's key opens every entry; its sources are named.
    let o = run_in(
        &["raft", "verify", d(&aes), "--config", d(&conf), "--json"],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    let v = o.json();
    assert_eq!(v["config"], d(&conf));
    assert_eq!(source_of(&v, "encryption")["source"], "config");
    assert_eq!(source_of(&v, "encryption")["line"], 1);
    assert_eq!(source_of(&v, "key")["source"], "config");
    assert_eq!(source_of(&v, "key")["line"], 2);
    assert_eq!(source_of(&v, "key")["key"], "encryption_key");
    assert_eq!(v["raft_log"]["failed"], 0, "{v}");
    let o = run_in(&["raft", "verify", d(&aes), "--config", d(&conf)], &[]);
    o.expect_stdout("Settings: encryption on, key from configuration file");
    o.expect_stdout(&format!("(configuration file {}:", conf.display()));
    // Without the file: encryption off, envelopes served raw.
    let o = run_in(&["raft", "verify", d(&aes), "--json"], &[]);
    assert_eq!(o.code, AT_RISK, "{}", o.stderr);
    assert_eq!(source_of(&o.json(), "encryption")["source"], "default");
    // A key flag wins over the file's key; the environment's over both.
    let o = run_in(
        &[
            "raft",
            "verify",
            d(&aes),
            "--config",
            d(&conf),
            "-k",
            k2(),
            "--json",
        ],
        &[],
    );
    assert_eq!(o.code, AT_RISK, "K2 opens none: {}", o.stderr);
    assert_eq!(source_of(&o.json(), "key")["source"], "flag");
    let o = run_in(
        &["raft", "verify", d(&aes), "--config", d(&conf), "--json"],
        &[(ENV_KEY, "conformance-key-2")],
    );
    assert_eq!(o.code, AT_RISK, "{}", o.stderr);
    assert_eq!(source_of(&o.json(), "key")["source"], "environment");
    // --no-encrypt wins over the file's `encrypt`.
    let o = run_in(
        &[
            "raft",
            "verify",
            d(&aes),
            "--config",
            d(&conf),
            "--no-encrypt",
            "--json",
        ],
        &[],
    );
    assert_eq!(o.code, AT_RISK, "{}", o.stderr);
    assert_eq!(source_of(&o.json(), "encryption")["source"], "flag");

    // encrypt: the file's key and cipher; --cipher wins over the file's.
    let t = tempfile::tempdir().unwrap();
    let chacha = t.path().join("chacha.log");
    let o = run_in(
        &[
            "raft",
            "encrypt",
            d(&plain),
            "--config",
            d(&conf),
            "-o",
            d(&chacha),
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let c = census(&chacha);
    assert_eq!((c.plaintext, c.aes, c.chacha), (0, 0, 32), "{c:?}");
    let aes_out = t.path().join("aes.log");
    let o = run_in(
        &[
            "raft",
            "encrypt",
            d(&plain),
            "--config",
            d(&conf),
            "--cipher",
            "AES",
            "-o",
            d(&aes_out),
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    assert_eq!(census(&aes_out).aes, 32);
    // Sealed with K1 (the file's key): K1 opens every entry.
    let (code, v) = json(&["raft", "verify", d(&chacha), "-k", k1()]);
    assert_eq!(code, OK, "{v}");
    // The environment's key wins over the file's: encrypt says so.
    let env_out = t.path().join("env.log");
    let o = run_in(
        &[
            "raft",
            "encrypt",
            d(&plain),
            "--config",
            d(&conf),
            "-o",
            d(&env_out),
        ],
        &[(ENV_KEY, "conformance-key-2")],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    o.expect_stderr("NATS_STREAMING_ENCRYPTION_KEY is set");
    let (code, _) = json(&["raft", "verify", d(&env_out), "-k", k2()]);
    assert_eq!(code, OK);
    // No cipher anywhere: a usage error that names both ways.
    let (_u, no_cipher) = private("encryption_key: \"conformance-key-1\"\n");
    let o = run_in(
        &[
            "raft",
            "encrypt",
            d(&plain),
            "--config",
            d(&no_cipher),
            "-n",
        ],
        &[],
    );
    assert_eq!(o.code, USAGE, "{}", o.stderr);
    o.expect_stderr("--cipher AES|CHACHA (or --config with encryption_cipher)");

    // decrypt and rekey: the file's key is a key to open with.
    let back = t.path().join("back.log");
    let o = run_in(
        &[
            "raft",
            "decrypt",
            d(&chacha),
            "--config",
            d(&conf),
            "-o",
            d(&back),
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let datas = |p: &std::path::Path| {
        let db = stanctl::format::raft::RaftLog::open(p).unwrap();
        let mut v = Vec::new();
        db.entries(|e| {
            v.push(e.unwrap().data().to_vec());
            Ok::<_, stanctl::format::raft::RaftError>(())
        })
        .unwrap();
        v
    };
    assert!(datas(&back) == datas(&plain), "the plaintext back");
    let rekeyed = t.path().join("rekeyed.log");
    let o = run_in(
        &[
            "raft",
            "rekey",
            d(&chacha),
            "--config",
            d(&conf),
            "--new-key-file",
            k2(),
            "-o",
            d(&rekeyed),
        ],
        &[],
    );
    assert_eq!(o.code, OK, "{}", o.stderr);
    let (code, _) = json(&["raft", "verify", d(&rekeyed), "-k", k2()]);
    assert_eq!(code, OK);

    // A key-holding file others may read: the store commands' warning.
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        vec!["raft", "verify", d(&aes), "--config", d(&conf)],
        vec!["raft", "decrypt", d(&aes), "--config", d(&conf), "-n"],
    ] {
        let o = run_in(&args, &[]);
        assert_eq!(o.code, OK, "{args:?}: {}", o.stderr);
        o.expect_stderr(&format!(
            "warning: {}: holds an encryption key",
            conf.display()
        ));
    }
    // A Raft log does not care which store the server runs: any type is
    // read (the store commands refuse all but the file store).
    let (_v, sql) = private("store: sql\nencryption_key: \"conformance-key-1\"\n");
    let o = run_in(&["raft", "verify", d(&aes), "--config", d(&sql)], &[]);
    assert_eq!(o.code, OK, "{}", o.stderr);
}
