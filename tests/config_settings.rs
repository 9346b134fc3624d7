//! Mapping the value tree to the streaming server's settings: every alias,
//! any case, the `streaming` map, keys the server ignores.

use std::path::PathBuf;

use stanctl::config::{parse_bytes, Cipher, ConfigError, ServerConfig, StoreType};

fn load(input: &str) -> ServerConfig {
    let m =
        parse_bytes(input.as_bytes(), &|_: &str| None).unwrap_or_else(|e| panic!("{input}: {e}"));
    ServerConfig::from_map(&m).unwrap_or_else(|e| panic!("{input}: {e}"))
}

fn fails(input: &str) -> ConfigError {
    let m =
        parse_bytes(input.as_bytes(), &|_: &str| None).unwrap_or_else(|e| panic!("{input}: {e}"));
    ServerConfig::from_map(&m).expect_err(input)
}

#[test]
fn every_alias_in_any_case() {
    for key in ["id", "cid", "cluster_id", "ID", "Cluster_Id"] {
        let c = load(&format!("{key}: abc"));
        assert_eq!(
            c.cluster_id.map(|s| (s.value, s.origin.key)),
            Some(("abc".into(), key.into()))
        );
    }
    for key in ["st", "store_type", "store", "storetype", "STORE"] {
        for (v, t) in [
            ("file", StoreType::File),
            ("File", StoreType::File),
            ("memory", StoreType::Memory),
            ("SQL", StoreType::Sql),
        ] {
            assert_eq!(
                load(&format!("{key}: {v}")).store_type.map(|s| s.value),
                Some(t),
                "{key} {v}"
            );
        }
    }
    for key in ["dir", "datastore", "DataStore"] {
        assert_eq!(
            load(&format!("{key}: /d")).dir.map(|s| s.value),
            Some(PathBuf::from("/d"))
        );
    }
    for key in ["file", "file_options", "FILE_OPTIONS"] {
        for crc in ["crc", "do_crc", "CRC"] {
            let c = load(&format!("{key} {{ {crc}: false }}"));
            assert_eq!(c.file.do_crc.map(|s| s.value), Some(false), "{key} {crc}");
        }
        for rb in ["file_read_buffer_size", "read_buffer_size"] {
            let c = load(&format!("{key} {{ {rb}: 1KB }}"));
            assert_eq!(
                c.file.read_buffer_size.map(|s| s.value),
                Some(1024),
                "{key} {rb}"
            );
        }
    }
    let c = load(
        "file {\n compact_enabled: false\n compact_fragmentation: 10\n compact_interval: 60\n\
         compact_min_size: 1MB\n buffer_size: 4KB\n crc_poly: 3988292384\n sync_on_flush: false\n\
         slice_count: 15\n slice_size: 64MB\n slice_time_limit: \"1h\"\n slice_script: \"/bin/true\"\n\
         fds_limit: 100\n parallel_recovery: 2\n auto_sync: \"30s\"\n}",
    );
    let f = &c.file;
    assert_eq!(f.compact_enabled.as_ref().map(|s| s.value), Some(false));
    assert_eq!(f.compact_fragmentation.as_ref().map(|s| s.value), Some(10));
    assert_eq!(f.compact_interval.as_ref().map(|s| s.value), Some(60));
    assert_eq!(f.compact_min_size.as_ref().map(|s| s.value), Some(1 << 20));
    assert_eq!(f.buffer_size.as_ref().map(|s| s.value), Some(4096));
    assert_eq!(f.crc_poly.as_ref().map(|s| s.value), Some(3_988_292_384));
    assert_eq!(f.do_sync.as_ref().map(|s| s.value), Some(false));
    assert_eq!(f.slice_max_msgs.as_ref().map(|s| s.value), Some(15));
    assert_eq!(f.slice_max_bytes.as_ref().map(|s| s.value), Some(64 << 20));
    assert_eq!(
        f.slice_max_age.as_ref().map(|s| s.value),
        Some(3_600_000_000_000)
    );
    assert_eq!(
        f.slice_archive_script.as_ref().map(|s| s.value.as_str()),
        Some("/bin/true")
    );
    assert_eq!(
        f.file_descriptors_limit.as_ref().map(|s| s.value),
        Some(100)
    );
    assert_eq!(f.parallel_recovery.as_ref().map(|s| s.value), Some(2));
    assert_eq!(f.auto_sync.as_ref().map(|s| s.value), Some(30_000_000_000));
    // `0x1` is no number to the server's lexer: a string, so a type error.
    assert!(fails("file { crc_poly: 0x1 }")
        .to_string()
        .contains("expected to be int64, got string"));
}

#[test]
fn encryption_settings() {
    let c = load("encrypt: on\nencryption_cipher: chacha");
    assert!(c.encryption_enabled());
    assert_eq!(
        c.encryption_cipher.map(|s| s.value),
        Some("chacha".to_string())
    );
    let c = load("Encryption_Key: \"k\"");
    assert!(c.encrypt.is_none() && c.encryption_enabled());
    // The key wins over `encrypt: false`, whatever the order: the server
    // encrypts when either is set.
    assert!(load("encrypt: false\nencryption_key: k").encryption_enabled());
    assert!(load("encryption_key: k\nencrypt: no").encryption_enabled());
    // An empty key still turns encryption on (the key must then come from
    // the environment); with `encrypt: false` the outcome is random.
    let c = load("encryption_key: \"\"");
    assert!(c.encryption_enabled());
    assert!(c.effective_key(&|_: &str| None).is_none());
    assert!(matches!(
        fails("encrypt: false\nencryption_key: \"\""),
        ConfigError::Ambiguous { .. }
    ));
    // Ciphers, any case; an empty name leaves the choice to the platform.
    for (name, want) in [
        ("aes", Cipher::Aes),
        ("ChaCha", Cipher::ChaCha),
        ("", Cipher::PlatformDefault),
    ] {
        let c = load(&format!("encryption_cipher: \"{name}\""));
        assert_eq!(c.cipher().expect("cipher").map(|s| s.value), Some(want));
    }
    assert!(load("dir: x").cipher().expect("no cipher").is_none());
    let err = load("encryption_cipher: des").cipher().unwrap_err();
    assert!(
        err.to_string().contains("encryption cipher not supported"),
        "{err}"
    );
    assert!(!load("encrypt: false").encryption_enabled());
}

#[test]
fn cluster_map() {
    let c = load("cluster {\n NODE_ID: n1\n bootstrap: true\n peers: [n2, n3]\n log_path: /raft\n sync: true\n\
                  log_cache_size: 512\n raft_logging: true\n raft_heartbeat_timeout: \"2s\"\n}");
    let cl = c.cluster.expect("cluster");
    assert_eq!(cl.node_id.map(|s| s.value), Some("n1".to_string()));
    assert_eq!(cl.bootstrap.map(|s| s.value), Some(true));
    assert_eq!(
        cl.peers.map(|s| s.value),
        Some(vec!["n2".to_string(), "n3".to_string()])
    );
    assert_eq!(cl.log_path.map(|s| s.value), Some(PathBuf::from("/raft")));
    assert_eq!(cl.sync.map(|s| s.value), Some(true));
    // An empty cluster map still makes the server clustered.
    assert!(load("cluster {}").cluster.is_some());
    assert!(load("dir: x").cluster.is_none());
    assert!(fails("cluster { peers: [a, 1 ] }")
        .to_string()
        .contains("peers must be strings"));
    assert!(fails("cluster { raft_lease_timeout: \"soon\" }")
        .to_string()
        .contains("time: invalid duration \"soon\""));
}

#[test]
fn only_the_streaming_map_counts_when_there_is_one() {
    let c = load("dir: /top\nid: top\nSTREAMING { dir: /inner }");
    assert_eq!(c.dir.map(|s| s.value), Some(PathBuf::from("/inner")));
    assert!(c.cluster_id.is_none());
    assert_eq!(
        c.streaming_map.map(|o| o.key),
        Some("STREAMING".to_string())
    );
    // Top-level keys are not even type-checked then.
    load("dir: 5\nstreaming { }");
    // Without one, the top level is read.
    assert_eq!(
        load("dir: /top").dir.map(|s| s.value),
        Some(PathBuf::from("/top"))
    );
}

#[test]
fn keys_the_server_does_not_know_are_ignored_and_known_ones_are_checked() {
    load("port: 4222\nhttp: 8222\nwhatever { x: [1 ] }\ntruncate_bad_eof: true\n");
    for (input, what) in [
        (
            "stan_debug: 1",
            "\"stan_debug\" value is expected to be bool, got int64",
        ),
        (
            "hbf: \"3\"",
            "\"hbf\" value is expected to be int64, got string",
        ),
        (
            "tls { insecure: \"x\" }",
            "\"insecure\" value is expected to be bool, got string",
        ),
        ("tls: 1", "expected TLS to be a map/struct, got 1"),
        (
            "limits { max_channels: 1.5 }",
            "\"max_channels\" value is expected to be int64, got float64",
        ),
        (
            "store_limits { max_age: \"1y\" }",
            "time: unknown unit \"y\" in duration \"1y\"",
        ),
        (
            "limits { channels: 1 }",
            "expected per channel limits to be a map/struct, got 1",
        ),
        (
            "limits { channels { foo: 1 } }",
            "expected channel limits to be a map/struct, got 1",
        ),
        ("sql: []", "expected SQL options to be a map/struct, got []"),
        (
            "file: true",
            "expected file options to be a map/struct, got true",
        ),
        (
            "username: 5",
            "\"username\" value is expected to be string, got int64",
        ),
        (
            "replace_durable: \"yes\"",
            "\"replace_durable\" value is expected to be bool, got string",
        ),
    ] {
        let err = fails(input);
        assert!(matches!(err, ConfigError::Setting { .. }), "{input}: {err}");
        assert!(err.to_string().contains(what), "{input}: {err}");
    }
}
