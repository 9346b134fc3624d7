//! The streaming server's settings from whole configuration files: includes,
//! variables, environment variables, the `streaming` map, both comment
//! styles and every separator.

use std::path::{Path, PathBuf};

use stanctl::config::{
    ConfigError, EffectiveKey, ServerConfig, Source, StoreType, ENCRYPTION_KEY_ENV,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

fn env_with(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

fn file_of(source: &Source) -> String {
    match source {
        Source::File(p) => p.strip_prefix(data("")).unwrap_or(p).display().to_string(),
        other => other.to_string(),
    }
}

#[test]
fn sample_gives_the_settings_and_where_each_came_from() {
    let env = env_with(&[("STAN_NODE_ID", "a")]);
    let cfg = ServerConfig::load(&data("streaming.conf"), &env).expect("sample parses");

    let streaming = cfg.streaming_map.as_ref().expect("streaming map");
    assert_eq!(streaming.key, "Streaming");

    let id = cfg.cluster_id.as_ref().expect("cluster id");
    assert_eq!(id.value, "test-cluster");
    assert_eq!(
        (file_of(&id.origin.pos.source).as_str(), id.origin.pos.line),
        ("streaming.conf", 11)
    );

    let store = cfg.store_type.as_ref().expect("store");
    assert_eq!(store.value, StoreType::File);
    assert_eq!(store.origin.key, "Store");
    cfg.check_file_store().expect("file store");

    // From a variable defined at the top level, through the streaming map;
    // the top-level `dir` does not count.
    let dir = cfg.dir.as_ref().expect("dir");
    assert_eq!(dir.value, PathBuf::from("/var/lib/stan/aes"));
    assert_eq!(
        (dir.origin.key.as_str(), dir.origin.pos.line),
        ("DataStore", 13)
    );

    assert_eq!(cfg.encrypt.as_ref().map(|s| s.value), Some(true));
    assert!(cfg.encryption_enabled());
    assert_eq!(
        cfg.encryption_cipher.as_ref().map(|s| s.value.as_str()),
        Some("AES")
    );

    // The key comes from a variable an included file defines.
    let key = cfg.encryption_key.as_ref().expect("key");
    assert_eq!(key.value.expose(), b"conformance-key-1");
    assert_eq!(key.origin.pos.line, 17);
    assert!(
        !format!("{cfg:?}").contains("conformance-key-1"),
        "key in Debug output"
    );

    // File options from an included file, with positions in that file.
    let crc = cfg.file.do_crc.as_ref().expect("crc");
    assert!(crc.value);
    assert_eq!(
        (
            file_of(&crc.origin.pos.source).as_str(),
            crc.origin.pos.line
        ),
        ("inc/file.conf", 1)
    );
    assert_eq!(
        cfg.file.crc_poly.as_ref().map(|s| s.value),
        Some(0xEDB8_8320)
    );
    assert_eq!(cfg.file.slice_max_msgs.as_ref().map(|s| s.value), Some(15));
    assert_eq!(
        cfg.file.read_buffer_size.as_ref().map(|s| s.value),
        Some(2 << 20)
    );

    // The cluster map, with a node ID from the environment.
    let cluster = cfg.cluster.as_ref().expect("cluster");
    assert_eq!(
        cluster.node_id.as_ref().map(|s| s.value.as_str()),
        Some("a")
    );
    assert_eq!(
        cluster.log_path.as_ref().map(|s| s.value.clone()),
        Some(PathBuf::from("/var/lib/stan/raft"))
    );
    assert_eq!(
        cluster.peers.as_ref().map(|s| s.value.clone()),
        Some(vec!["a".to_string(), "b".to_string(), "c".to_string()])
    );
    assert_eq!(cluster.bootstrap.as_ref().map(|s| s.value), Some(false));

    // The Settings block: every setting, the key redacted.
    let lines = cfg.setting_lines();
    let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        [
            "cluster_id",
            "store",
            "dir",
            "encrypt",
            "encryption_cipher",
            "encryption_key",
            "file_options.do_crc",
            "file_options.crc_poly",
            "file_options.slice_max_msgs",
            "file_options.read_buffer_size",
            "cluster",
            "cluster.node_id",
            "cluster.bootstrap",
            "cluster.peers",
            "cluster.log_path",
        ]
    );
    let key_line = lines
        .iter()
        .find(|l| l.name == "encryption_key")
        .expect("key line");
    assert_eq!(key_line.value, "<redacted>");
    assert!(key_line
        .origin
        .to_string()
        .ends_with("streaming.conf:17 (encryption_key)"));
    assert!(!format!("{lines:?}").contains("conformance-key-1"));

    // Every file read is listed, for the permission check.
    let files: Vec<String> = cfg
        .files
        .iter()
        .map(|p| p.strip_prefix(data("")).unwrap_or(p).display().to_string())
        .collect();
    assert_eq!(
        files,
        ["streaming.conf", "inc/secrets.conf", "inc/file.conf"]
    );
}

#[test]
fn sample_needs_its_environment_variable() {
    let err = ServerConfig::load(&data("streaming.conf"), &|_: &str| None).unwrap_err();
    let ConfigError::UndefinedVariable { at, name } = &err else {
        panic!("{err}");
    };
    assert_eq!(name, "STAN_NODE_ID");
    assert_eq!((at.pos.line, at.pos.column), (23, 14));
    assert_eq!(at.text, "node_id: $STAN_NODE_ID     # from the environment");
}

#[test]
fn json_style_clustered_configuration() {
    let cfg = ServerConfig::load(&data("clustered.conf"), &|_: &str| None).expect("parses");
    assert_eq!(
        cfg.cluster_id.as_ref().map(|s| s.value.as_str()),
        Some("clustered")
    );
    assert_eq!(
        cfg.store_type.as_ref().map(|s| s.value),
        Some(StoreType::File)
    );
    assert_eq!(
        cfg.dir.as_ref().map(|s| s.value.clone()),
        Some(PathBuf::from("store"))
    );
    // `encryption_key` alone turns encryption on, as in the server.
    assert!(cfg.encrypt.is_none());
    assert!(cfg.encryption_enabled());
    assert_eq!(cfg.file.do_crc.as_ref().map(|s| s.value), Some(false));
    assert_eq!(cfg.file.read_buffer_size.as_ref().map(|s| s.value), Some(0));
    let cluster = cfg.cluster.as_ref().expect("cluster");
    assert_eq!(
        cluster.node_id.as_ref().map(|s| s.value.as_str()),
        Some("b")
    );
    assert_eq!(
        cluster.log_path.as_ref().map(|s| s.value.clone()),
        Some(PathBuf::from("raft"))
    );
}

#[test]
fn environment_key_takes_precedence_over_the_file() {
    let cfg = ServerConfig::load(&data("clustered.conf"), &|_: &str| None).expect("parses");
    match cfg.effective_key(&|_: &str| None) {
        Some(EffectiveKey::File(s)) => assert_eq!(s.value.expose(), b"conformance-key-1"),
        other => panic!("{other:?}"),
    }
    let env = env_with(&[(ENCRYPTION_KEY_ENV, "conformance-key-2")]);
    match cfg.effective_key(&env) {
        Some(EffectiveKey::Env(k)) => assert_eq!(k.expose(), b"conformance-key-2"),
        other => panic!("{other:?}"),
    }
    // An empty variable does not count, as in the server.
    let empty = env_with(&[(ENCRYPTION_KEY_ENV, "")]);
    assert!(matches!(
        cfg.effective_key(&empty),
        Some(EffectiveKey::File(_))
    ));
}

#[cfg(unix)]
#[test]
fn files_holding_a_key_are_checked_for_other_readers() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("main.conf");
    let secrets = dir.path().join("secrets.conf");
    std::fs::write(&main, "include secrets.conf\nencryption_key: $K\n").expect("write");
    std::fs::write(&secrets, "K: \"k\"\n").expect("write");
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    mode(&main, 0o600);
    mode(&secrets, 0o640);
    let cfg = ServerConfig::load(&main, &|_: &str| None).expect("parses");
    assert_eq!(
        cfg.key_files_readable_by_others().expect("stat"),
        vec![secrets.clone()]
    );
    mode(&secrets, 0o600);
    assert!(cfg.key_files_readable_by_others().expect("stat").is_empty());

    // Without a key in the file there is nothing to warn about.
    std::fs::write(&main, "dir: x\n").expect("write");
    mode(&main, 0o644);
    let cfg = ServerConfig::load(&main, &|_: &str| None).expect("parses");
    assert!(cfg.key_files_readable_by_others().expect("stat").is_empty());
}

/// The configurations for the conformance stores give the settings their
/// expected results were recorded with.
#[test]
fn conformance_configurations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = env_with(&[("STANCTL_STORE", "fixtures/conformance/aes")]);
    for (name, key) in [
        ("conformance-key1.conf", Some("k1.key")),
        ("conformance-key2.conf", Some("k2.key")),
        ("conformance-no-encrypt.conf", None),
    ] {
        let cfg = ServerConfig::load(&root.join("fixtures/config").join(name), &env)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        cfg.check_file_store().expect("file store");
        assert_eq!(
            cfg.dir.as_ref().map(|s| s.value.clone()),
            Some(PathBuf::from("fixtures/conformance/aes")),
            "{name}"
        );
        assert_eq!(
            cfg.cluster_id.as_ref().map(|s| s.value.as_str()),
            Some("test-cluster")
        );
        assert_eq!(
            cfg.file.do_crc.as_ref().map(|s| s.value),
            Some(true),
            "{name}"
        );
        assert_eq!(cfg.encryption_enabled(), key.is_some(), "{name}");
        match key {
            Some(k) => {
                let want = std::fs::read(root.join("fixtures").join(k)).expect("key file");
                match cfg.effective_key(&env) {
                    Some(EffectiveKey::File(s)) => assert_eq!(s.value.expose(), want.as_slice()),
                    other => panic!("{name}: {other:?}"),
                }
            }
            None => assert!(cfg.effective_key(&env).is_none(), "{name}"),
        }
    }
}
