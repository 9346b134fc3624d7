//! Bad configuration files: each error names the file, line and column and
//! shows the offending text, and key material never appears in it.

use std::path::{Path, PathBuf};

use stanctl::config::{parse_bytes, ConfigError, Map, ServerConfig, Source, REDACTED};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// File name (relative to the test data), line, column and text of the
/// innermost location of an error.
fn where_(err: &ConfigError) -> (String, u32, u32, String) {
    let at = err
        .location()
        .unwrap_or_else(|| panic!("no location: {err}"));
    let file = match &at.pos.source {
        Source::File(p) => p.strip_prefix(data("")).unwrap_or(p).display().to_string(),
        other => other.to_string(),
    };
    (file, at.pos.line, at.pos.column, at.text.clone())
}

fn text_err(input: &str) -> ConfigError {
    match parse_bytes(input.as_bytes(), &no_env) {
        Ok(m) => match ServerConfig::from_map(&m) {
            Ok(cfg) => cfg
                .check_file_store()
                .err()
                .unwrap_or_else(|| panic!("accepted: {input}")),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

fn at_text(err: &ConfigError) -> (u32, u32, String) {
    let (_, line, column, text) = where_(err);
    (line, column, text)
}

#[test]
fn unterminated_double_quoted_string_points_at_its_quote() {
    let err = text_err("streaming {\n  dir: \"/var/lib/stan\n  encrypt: true\n}\n");
    assert_eq!(at_text(&err), (2, 8, "dir: \"/var/lib/stan".to_string()));
    assert!(err.to_string().contains("Unexpected EOF"), "{err}");
    assert!(err.to_string().starts_with("<text>:2:8: "), "{err}");
}

#[test]
fn unterminated_single_quoted_string_and_key() {
    let err = text_err("id: 'abc\n");
    assert_eq!(at_text(&err), (1, 5, "id: 'abc".to_string()));
    let err = text_err("\n  'cluster_id: 1\n");
    assert_eq!(at_text(&err), (2, 3, "'cluster_id: 1".to_string()));
}

#[test]
fn unterminated_map_points_at_its_brace() {
    let err = text_err("streaming {\n  dir: \"/x\"\n  file_options {\n    crc: true\n");
    assert_eq!(at_text(&err), (3, 16, "file_options {".to_string()));
    assert!(err.to_string().contains("unterminated map"), "{err}");
}

#[test]
fn unterminated_array_and_block() {
    let err = text_err("cluster {\n  peers: [a, b\n");
    assert_eq!(at_text(&err), (2, 10, "peers: [a, b".to_string()));
    let err = text_err("x = (\n  text\n");
    assert_eq!(at_text(&err), (1, 5, "x = (".to_string()));
}

#[test]
fn key_without_value() {
    let err = text_err("dir: /x\nencrypt\n");
    assert_eq!(at_text(&err), (2, 1, "encrypt".to_string()));
    assert!(err.to_string().contains("config is invalid"), "{err}");
}

#[test]
fn bad_escape_and_bad_number() {
    let err = text_err("dir: \"a\\qb\"\n");
    assert_eq!(at_text(&err).0, 1);
    assert!(
        err.to_string().contains("Invalid escape character 'q'"),
        "{err}"
    );
    let err = text_err("crc_poly: 12345678901234567890\n");
    assert_eq!(
        at_text(&err),
        (1, 11, "crc_poly: 12345678901234567890".to_string())
    );
    assert!(err.to_string().contains("is out of the range"), "{err}");
}

#[test]
fn include_cycle_is_an_error_in_the_file_that_closes_it() {
    let err = ServerConfig::load(&data("bad/cycle_a.conf"), &no_env).unwrap_err();
    assert!(
        matches!(err.innermost(), ConfigError::IncludeCycle { .. }),
        "{err}"
    );
    assert_eq!(
        where_(&err),
        (
            "bad/cycle_b.conf".to_string(),
            3,
            3,
            "include 'cycle_a.conf'".to_string()
        )
    );
    assert!(
        err.to_string()
            .contains("error parsing include file 'cycle_b.conf'"),
        "{err}"
    );
}

#[test]
fn missing_include_points_at_the_include() {
    let err = ServerConfig::load(&data("bad/missing_include.conf"), &no_env).unwrap_err();
    assert_eq!(
        where_(&err),
        (
            "bad/missing_include.conf".to_string(),
            3,
            3,
            "include \"not-there.conf\"".to_string()
        )
    );
    let ConfigError::Include { include, inner, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(include, "not-there.conf");
    assert!(matches!(**inner, ConfigError::Read { .. }), "{inner}");
}

#[test]
fn error_inside_an_included_file_points_into_that_file() {
    let err = ServerConfig::load(&data("bad/include_with_error.conf"), &no_env).unwrap_err();
    assert_eq!(
        where_(&err),
        (
            "bad/unterminated.conf".to_string(),
            1,
            6,
            "dir: \"/var/lib/stan".to_string()
        )
    );
}

#[test]
fn missing_top_file() {
    let err = ServerConfig::load(&data("bad/none.conf"), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("none.conf"), "{err}");
}

#[test]
fn wrong_types_get_the_servers_reason() {
    let cases: &[(&str, u32, u32, &str, &str)] = &[
        (
            "streaming {\n  encrypt: \"yes\"\n}",
            2,
            3,
            "encrypt: yes",
            "parameter \"encrypt\" value is expected to be bool, got string",
        ),
        (
            "DIR: 5",
            1,
            1,
            "DIR: 5",
            "parameter \"DIR\" value is expected to be string, got int64",
        ),
        (
            "file_options { crc_poly: \"edb88320\" }",
            1,
            16,
            "crc_poly: edb88320",
            "parameter \"crc_poly\" value is expected to be int64, got string",
        ),
        (
            "file { read_buffer_size: 1.5 }",
            1,
            8,
            "read_buffer_size: 1.5",
            "parameter \"read_buffer_size\" value is expected to be int64, got float64",
        ),
        (
            "cluster { peers: a }",
            1,
            11,
            "peers: a",
            "parameter \"peers\" value is expected to be slice, got string",
        ),
        (
            "cluster: true",
            1,
            1,
            "cluster: true",
            "expected cluster to be a map/struct, got true",
        ),
        (
            // `[1, 2]` would not lex: the server's lexer reads `2]` as a string.
            "streaming = [1, 2 ]",
            1,
            1,
            "streaming: [1 2]",
            "expected streaming section to be a map/struct, got [1 2]",
        ),
        (
            "hb_interval: \"10\"",
            1,
            1,
            "hb_interval: 10",
            "time: missing unit in duration \"10\"",
        ),
        (
            "limits { channels { \"a..b\" { max_msgs: 1 } } }",
            1,
            22,
            "a..b: map[max_msgs:1]",
            "invalid channel name \"a..b\"",
        ),
        (
            "sql_options { DRIVER: 1 }",
            1,
            15,
            "DRIVER: 1",
            "parameter \"driver\" value is expected to be string, got int64",
        ),
        (
            "now: 2016-05-04T18:53:41Z\nencryption_cipher: $now",
            2,
            1,
            "encryption_cipher: 2016-05-04 18:53:41 +0000 UTC",
            "parameter \"encryption_cipher\" value is expected to be string, got struct",
        ),
    ];
    for (input, line, column, text, message) in cases {
        let err = text_err(input);
        assert!(matches!(err, ConfigError::Setting { .. }), "{input}: {err}");
        assert_eq!(at_text(&err), (*line, *column, text.to_string()), "{input}");
        assert!(err.to_string().contains(message), "{input}: {err}");
    }
}

#[test]
fn store_types() {
    let err = text_err("store: postgres");
    assert!(
        err.to_string().contains("unknown store type: postgres"),
        "{err}"
    );
    assert_eq!(at_text(&err), (1, 1, "store: postgres".to_string()));
    for (input, name) in [
        ("st: memory", "MEMORY"),
        ("streaming { StoreType = SQL }", "SQL"),
    ] {
        let err = text_err(input);
        let ConfigError::UnsupportedStore { value, .. } = &err else {
            panic!("{input}: {err}");
        };
        assert_eq!(value, name);
        assert!(
            err.to_string().contains("file stores only (store: file)"),
            "{err}"
        );
    }
}

#[test]
fn key_material_never_appears_in_errors() {
    let inputs = [
        "encryption_key: \"s3cr3t-value",
        "encryption_key: 'unterminated s3cr3t-value",
        "encryption_key = s3cr3t-value\\q",
        "encryption_key: [s3cr3t-value]",
        "streaming { ENC_KEY: \"s3cr3t-value\" \nencryption_key: 5 }",
        "KEY = \"s3cr3t-value",
        "password: \"s3cr3t-value",
        "encryption_key: 99999999999999999999999",
        "streaming {\n  encryption_key = 2016-02-30T00:00:00Z\n}",
    ];
    for input in inputs {
        let err = text_err(input);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("s3cr3t"), "{input}: {shown}");
        assert!(
            !shown.contains("999999") && !shown.contains("02-30"),
            "{input}: {shown}"
        );
        let text = err.location().map(|l| l.text.clone()).unwrap_or_default();
        assert!(text.ends_with(REDACTED), "{input}: {text}");
    }
}

#[test]
fn variable_errors() {
    let err = text_err("dir: $NOPE");
    assert!(
        matches!(err, ConfigError::UndefinedVariable { .. }),
        "{err}"
    );
    assert_eq!(at_text(&err), (1, 6, "dir: $NOPE".to_string()));
    assert!(err
        .to_string()
        .contains("variable reference for 'NOPE' can not be found"));

    // An environment value that refers to itself.
    let env = |name: &str| (name == "LOOP").then(|| "$LOOP".to_string());
    let err = parse_bytes(b"dir: $LOOP", &env).unwrap_err();
    assert!(
        matches!(
            err.innermost(),
            ConfigError::BadVariable { .. } | ConfigError::VariableCycle { .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("variable reference cycle for 'LOOP'"),
        "{err}"
    );

    // An environment value that is not valid configuration text.
    let env = |name: &str| (name == "BAD").then(|| "'unterminated".to_string());
    let err = parse_bytes(b"dir: $BAD", &env).unwrap_err();
    assert!(matches!(err, ConfigError::BadVariable { .. }), "{err}");
    let Some(at) = err.location() else {
        panic!("{err}")
    };
    assert_eq!(at.pos.source, Source::Env("BAD".into()));
    // Environment values may be secrets: their text is not shown.
    assert_eq!(at.text, REDACTED);
    assert!(!err.to_string().contains("unterminated'"), "{err}");
}

#[test]
fn ambiguous_duplicates_are_errors_identical_ones_are_not() {
    let err = text_err("dir: /a\ndatastore: /b");
    let ConfigError::Ambiguous { other, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(other.line, 1);
    assert_eq!(at_text(&err), (2, 1, "datastore: /b".to_string()));
    let err = text_err("file { crc: true }\nfile_options { do_crc: false }\n");
    assert!(matches!(err, ConfigError::Ambiguous { .. }), "{err}");
    let m: Map = parse_bytes(b"dir: /a\nDIR: /a\nstore: file", &no_env).expect("parses");
    ServerConfig::from_map(&m).expect("same value twice is fine");
}
