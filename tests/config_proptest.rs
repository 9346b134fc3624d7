//! Property tests for the configuration lexer and parser: hostile input
//! never panics and always ends in a token stream that ends cleanly;
//! generated well-formed `key value` lines lex to the expected tokens and
//! parse to the expected values; the bounds stop inputs built to exhaust
//! memory or stack.

use proptest::collection::vec;
use proptest::prelude::*;
use stanctl::config::lexer::{tokenize, TokenKind};
use stanctl::config::{
    parse_bytes, parse_bytes_with_limits, parse_file, ConfigError, Limits, ServerConfig, Value,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        // Integration tests have no lib.rs beside them to anchor the
        // regression files; failures print the minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Pieces of the format, to build inputs that get past the first token.
const FRAGMENTS: &[&str] = &[
    "foo",
    "streaming",
    "dir",
    "encryption_key",
    "file_options",
    "cluster",
    "crc_poly",
    "include",
    " ",
    "\t",
    "\n",
    "\r\n",
    "=",
    ":",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ";",
    "#",
    "//",
    "/",
    "'",
    "\"",
    "\\",
    "\\x41",
    "\\xz",
    "\\n",
    "\\q",
    "$",
    "$foo",
    "$2a$10$abc",
    "1",
    "-3",
    "1.5",
    ".5",
    "1k",
    "2kb",
    "4MiB",
    "1kbb",
    "3xyz",
    "127.0.0.1:4222",
    "2016-05-04T18:53:41Z",
    "2016-13-04",
    "true",
    "OFF",
    "yes",
    "é",
    "\u{a0}",
    "\0",
    "99999999999999999999",
    "9EB",
    "\n)\n",
    "-",
    "+1",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            8 => proptest::sample::select(FRAGMENTS).prop_map(|s| s.as_bytes().to_vec()),
            1 => vec(any::<u8>(), 1..4),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// The lexer's own invariants on any input.
fn check_tokens(input: &[u8]) {
    let tokens = tokenize(input);
    let last = tokens.last().expect("at least one token");
    assert!(matches!(last.kind, TokenKind::Eof | TokenKind::Error));
    assert!(tokens[..tokens.len() - 1]
        .iter()
        .all(|t| !matches!(t.kind, TokenKind::Eof | TokenKind::Error)));
    // A token per input byte at most, plus a few for empty items and the end.
    assert!(
        tokens.len() <= 2 * input.len() + 2,
        "{} tokens",
        tokens.len()
    );
    for t in &tokens {
        assert!(t.offset <= input.len());
        assert!(t.line >= 1 && t.column >= 1);
    }
}

/// Parsing and mapping give a value or an error, never a panic.
fn check_parse(input: &[u8]) {
    if let Ok(m) = parse_bytes(input, &no_env) {
        let _ = ServerConfig::from_map(&m).map(|c| c.check_file_store());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(input in vec(any::<u8>(), 0..512)) {
        check_tokens(&input);
        check_parse(&input);
    }

    #[test]
    fn token_soups_never_panic(input in soup()) {
        check_tokens(&input);
        check_parse(&input);
    }

    #[test]
    fn soups_in_a_streaming_map_never_panic(input in soup()) {
        let mut text = b"streaming {\n".to_vec();
        text.extend_from_slice(&input);
        text.extend_from_slice(b"\n}\n");
        check_tokens(&text);
        check_parse(&text);
    }
}

// ---------------------------------------------------------------------------
// Well-formed lines: `key SEP value`, joined by new lines or semicolons.
// ---------------------------------------------------------------------------

/// A generated value: its source text, the token it lexes to, and the value
/// it parses to.
#[derive(Clone, Debug)]
struct Gen {
    text: String,
    kind: TokenKind,
    token: Vec<u8>,
    value: Value,
}

fn gen_value() -> impl Strategy<Value = Gen> {
    let int = any::<i32>().prop_map(|n| Gen {
        text: n.to_string(),
        kind: TokenKind::Integer,
        token: n.to_string().into_bytes(),
        value: Value::Integer(i64::from(n)),
    });
    let size = (
        0u32..100_000,
        proptest::sample::select(vec![
            ("k", 1000i64),
            ("KB", 1024),
            ("ki", 1024),
            ("m", 1_000_000),
            ("MiB", 1 << 20),
            ("g", 1_000_000_000),
            ("Gb", 1 << 30),
        ]),
    )
        .prop_map(|(n, (unit, mult))| Gen {
            text: format!("{n}{unit}"),
            kind: TokenKind::Integer,
            token: format!("{n}{unit}").into_bytes(),
            value: Value::Integer(i64::from(n) * mult),
        });
    let float = (0u32..1_000_000, 0u32..1000).prop_map(|(a, b)| {
        let s = format!("{a}.{b}");
        Gen {
            value: Value::Float(s.parse().unwrap_or(0.0)),
            token: s.clone().into_bytes(),
            text: s,
            kind: TokenKind::Float,
        }
    });
    let boolean = proptest::sample::select(vec![
        ("true", true),
        ("TRUE", true),
        ("yes", true),
        ("On", true),
        ("false", false),
        ("No", false),
        ("off", false),
        ("FALSE", false),
    ])
    .prop_map(|(s, b)| Gen {
        text: s.to_string(),
        kind: TokenKind::Bool,
        token: s.as_bytes().to_vec(),
        value: Value::Bool(b),
    });
    let dq = "[ -~\t\né]{0,20}".prop_map(|s: String| {
        let mut text = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => text.push_str("\\\""),
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\t' => text.push_str("\\t"),
                c => text.push(c),
            }
        }
        text.push('"');
        Gen {
            text,
            kind: TokenKind::String,
            token: s.clone().into_bytes(),
            value: Value::String(stanctl::config::Text::new(s.into_bytes())),
        }
    });
    let sq = "[ -&(-~]{0,20}".prop_map(|s: String| Gen {
        text: format!("'{s}'"),
        kind: TokenKind::String,
        token: s.clone().into_bytes(),
        value: Value::String(stanctl::config::Text::new(s.into_bytes())),
    });
    let bare = "[a-zA-Z_/][a-zA-Z0-9_./:@-]{0,15}"
        .prop_filter("not a boolean", |s: &String| {
            !matches!(
                s.to_lowercase().as_str(),
                "true" | "false" | "yes" | "no" | "on" | "off"
            )
        })
        .prop_filter("not a comment", |s: &String| !s.starts_with("//"))
        .prop_map(|s: String| Gen {
            text: s.clone(),
            kind: TokenKind::String,
            token: s.clone().into_bytes(),
            value: Value::String(stanctl::config::Text::new(s.into_bytes())),
        });
    prop_oneof![int, size, float, boolean, dq, sq, bare]
}

fn gen_key() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}".prop_filter("not a keyword", |k: &String| {
        !k.eq_ignore_ascii_case("include")
    })
}

fn gen_lines() -> impl Strategy<Value = Vec<(String, &'static str, Gen, &'static str)>> {
    vec(
        (
            gen_key(),
            proptest::sample::select(vec![" = ", ": ", " ", "=", ":", "\t"]),
            gen_value(),
            proptest::sample::select(vec![
                "\n",
                ";\n",
                "\r\n",
                " # comment\n",
                " // comment\n",
                ";",
            ]),
        ),
        1..12,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn well_formed_lines_lex_and_parse_to_what_was_written(lines in gen_lines()) {
        let mut text = String::new();
        let mut line_of = Vec::new();
        for (key, sep, value, end) in &lines {
            line_of.push(text.matches('\n').count() as u32 + 1);
            text.push_str(key);
            text.push_str(sep);
            text.push_str(&value.text);
            text.push_str(end);
        }
        let tokens: Vec<_> = tokenize(text.as_bytes())
            .into_iter()
            .filter(|t| !matches!(t.kind, TokenKind::CommentStart | TokenKind::Text))
            .collect();
        let mut want = Vec::new();
        for (key, _, value, _) in &lines {
            want.push((TokenKind::Key, key.as_bytes().to_vec()));
            want.push((value.kind, value.token.clone()));
        }
        want.push((TokenKind::Eof, Vec::new()));
        let got: Vec<_> = tokens.iter().map(|t| (t.kind, t.text.to_vec())).collect();
        prop_assert_eq!(got, want, "{:?}", text);

        let map = parse_bytes(text.as_bytes(), &no_env).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The last assignment of a key wins.
        for (i, (key, _, value, _)) in lines.iter().enumerate() {
            if lines[i + 1..].iter().any(|(k, ..)| k == key) {
                continue;
            }
            let entry = map.get(key).ok_or_else(|| TestCaseError::fail(format!("{key} missing")))?;
            prop_assert_eq!(&entry.node.value, &value.value, "{}", key);
            prop_assert_eq!(entry.key_pos.line, line_of[i]);
        }
    }
}

// ---------------------------------------------------------------------------
// Bounds: inputs built to exhaust stack, memory or time are refused.
// ---------------------------------------------------------------------------

fn limit_error(r: Result<stanctl::config::Map, ConfigError>) -> String {
    match r {
        Err(e) => {
            assert!(matches!(e.innermost(), ConfigError::Limit { .. }), "{e}");
            e.to_string()
        }
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn deep_nesting_is_refused_before_the_stack_suffers() {
    let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(limit_error(parse_bytes(deep.as_bytes(), &no_env)).contains("nested"));
    let deep = format!("{}{}", "a {".repeat(100_000), "}".repeat(100_000));
    assert!(limit_error(parse_bytes(deep.as_bytes(), &no_env)).contains("nested"));
    // Nesting through variables, each copy one level deeper.
    let mut text = String::from("v0 = {x = 1}\n");
    for i in 1..1000 {
        text.push_str(&format!("v{i} = {{ y = $v{} }}\n", i - 1));
    }
    assert!(limit_error(parse_bytes(text.as_bytes(), &no_env)).contains("nested"));
}

#[test]
fn nesting_across_included_files_counts_as_one_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..8 {
        let body = format!(
            "{}include f{}.conf\n{}",
            "x {\n".repeat(40),
            i + 1,
            "}\n".repeat(40)
        );
        std::fs::write(dir.path().join(format!("f{i}.conf")), body).expect("write");
    }
    std::fs::write(dir.path().join("f8.conf"), "a = 1\n").expect("write");
    let err = parse_file(&dir.path().join("f0.conf"), &no_env).unwrap_err();
    assert!(
        matches!(err.innermost(), ConfigError::Limit { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nested"), "{err}");
}

#[test]
fn exponential_copies_through_variables_are_refused() {
    let mut text = String::from("a0 = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1 ]\n");
    for i in 1..12 {
        let p = format!("$a{} ", i - 1);
        text.push_str(&format!("a{i} = [{}]\n", vec![p; 10].join(", ")));
    }
    assert!(limit_error(parse_bytes(text.as_bytes(), &no_env)).contains("values"));
}

#[test]
fn large_files_take_linear_time() {
    // A whole file on one line, and a map with many distinct keys: both
    // would be quadratic with a naive column count or key lookup.
    let one_line = "a=1;".repeat(900_000);
    let started = std::time::Instant::now();
    let m = parse_bytes(one_line.as_bytes(), &no_env).expect("parses");
    assert_eq!(m.len(), 1);
    let many: String = (0..200_000).map(|i| format!("k{i} = {i}\n")).collect();
    let m = parse_bytes(many.as_bytes(), &no_env).expect("parses");
    assert_eq!(m.len(), 200_000);
    // Generous for a debug build on a loaded machine; quadratic would be hours.
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
}

#[test]
fn oversized_text_is_refused() {
    let limits = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let big = "a = 1\n".repeat(200);
    assert!(
        limit_error(parse_bytes_with_limits(big.as_bytes(), &no_env, limits)).contains("larger")
    );
}

#[test]
fn long_include_chains_and_oversized_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..40 {
        std::fs::write(
            dir.path().join(format!("f{i}.conf")),
            format!("include f{}.conf\n", i + 1),
        )
        .expect("write");
    }
    std::fs::write(dir.path().join("f40.conf"), "a = 1\n").expect("write");
    let err = parse_file(&dir.path().join("f0.conf"), &no_env).unwrap_err();
    assert!(
        matches!(err.innermost(), ConfigError::Limit { .. }),
        "{err}"
    );

    let big = dir.path().join("big.conf");
    std::fs::write(&big, vec![b'#'; 5 << 20]).expect("write");
    let err = parse_file(&big, &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
}
