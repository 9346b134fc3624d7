//! The NATS configuration format's documented behaviour (the examples of
//! nats-server's `conf` package and its tests, restated), checked on the
//! value tree.

use std::collections::BTreeMap;

use stanctl::config::{parse_bytes, parse_file, ConfigError, Map, Value};

fn no_env(_: &str) -> Option<String> {
    None
}

/// A value in a form that is easy to write in tests.
#[derive(Debug, PartialEq)]
enum V {
    S(&'static str),
    I(i64),
    F(f64),
    B(bool),
    T(&'static str),
    A(Vec<V>),
    M(Vec<(&'static str, V)>),
}

fn same(got: &Value, want: &V) -> bool {
    match (got, want) {
        (Value::String(t), V::S(s)) => t.as_bytes() == s.as_bytes(),
        (Value::Integer(a), V::I(b)) => a == b,
        (Value::Float(a), V::F(b)) => a == b,
        (Value::Bool(a), V::B(b)) => a == b,
        (Value::Datetime(a), V::T(b)) => a == b,
        (Value::Array(a), V::A(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(&x.value, y))
        }
        (Value::Map(m), V::M(b)) => same_map(m, b),
        _ => false,
    }
}

fn same_map(m: &Map, want: &[(&'static str, V)]) -> bool {
    let got: BTreeMap<&str, &Value> = m.iter().map(|e| (e.key.as_str(), &e.node.value)).collect();
    got.len() == want.len()
        && want
            .iter()
            .all(|(k, v)| got.get(k).is_some_and(|g| same(g, v)))
}

#[track_caller]
fn check(input: &str, want: Vec<(&'static str, V)>) {
    check_env(input, &no_env, want);
}

#[track_caller]
fn check_env(input: &str, env: &dyn Fn(&str) -> Option<String>, want: Vec<(&'static str, V)>) {
    let m = parse_bytes(input.as_bytes(), env).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert!(
        same_map(&m, &want),
        "{input:?}\n got: {m:#?}\nwant: {want:?}"
    );
}

#[track_caller]
fn fails(input: &str) -> ConfigError {
    match parse_bytes(input.as_bytes(), &no_env) {
        Ok(m) => panic!("{input:?} parsed: {m:?}"),
        Err(e) => e,
    }
}

use V::*;

#[test]
fn scalars_on_one_line_with_semicolons() {
    check(
        "foo='1'; bar=2.2; baz=true; boo=22",
        vec![
            ("foo", S("1")),
            ("bar", F(2.2)),
            ("baz", B(true)),
            ("boo", I(22)),
        ],
    );
}

#[test]
fn every_boolean_spelling() {
    for t in ["true", "TRUE", "True", "yes", "Yes", "on", "ON"] {
        check(&format!("foo={t}"), vec![("foo", B(true))]);
    }
    for f in ["false", "FALSE", "no", "NO", "off", "Off"] {
        check(&format!("foo = {f}"), vec![("foo", B(false))]);
    }
    // Quoted, it is a string.
    check("foo = 'yes'", vec![("foo", S("yes"))]);
}

#[test]
fn sizes_use_1000_without_b_or_i_and_1024_with() {
    check(
        "k = 8k\nkb = 4kb\nki = 3ki\nkib = 4KiB\nm = 1m\nmb = 2MB\nmi = 2Mi\nmib = 64MiB\n\
         g = 2g\ngb = 22GB\ngi = 22Gi\nt = 1t\ntb = 1TB\np = 1p\npib = 1PiB\ne = 1e\neb = 1EB",
        vec![
            ("k", I(8_000)),
            ("kb", I(4 * 1024)),
            ("ki", I(3 * 1024)),
            ("kib", I(4 * 1024)),
            ("m", I(1_000_000)),
            ("mb", I(2 << 20)),
            ("mi", I(2 << 20)),
            ("mib", I(64 << 20)),
            ("g", I(2_000_000_000)),
            ("gb", I(22 << 30)),
            ("gi", I(22 << 30)),
            ("t", I(1_000_000_000_000)),
            ("tb", I(1 << 40)),
            ("p", I(1_000_000_000_000_000)),
            ("pib", I(1 << 50)),
            ("e", I(1_000_000_000_000_000_000)),
            ("eb", I(1 << 60)),
        ],
    );
    check("neg = -2k", vec![("neg", I(-2000))]);
}

#[test]
fn variables_are_block_scoped_then_environment() {
    check(
        "index = 22\nfoo = $index",
        vec![("index", I(22)), ("foo", I(22))],
    );
    check(
        "index = 22\nnest {\n  index = 11\n  foo = $index\n}\nbar = $index",
        vec![
            ("index", I(22)),
            ("nest", M(vec![("index", I(11)), ("foo", I(11))])),
            ("bar", I(22)),
        ],
    );
    // Environment values are parsed like a value in the file.
    let env = |name: &str| match name {
        "NUM" => Some("22".to_string()),
        "TEXT" => Some("xyz".to_string()),
        "SIZE" => Some("3Gyz".to_string()),
        "QUOTED" => Some("'3xyz'".to_string()),
        "MAP" => Some("{ a: 1 }".to_string()),
        _ => None,
    };
    check_env(
        "a = $NUM\nb = $TEXT\nc = $SIZE\nd = $QUOTED\ne = $MAP",
        &env,
        vec![
            ("a", I(22)),
            ("b", S("xyz")),
            ("c", S("3Gyz")),
            ("d", S("3xyz")),
            ("e", M(vec![("a", I(1))])),
        ],
    );
    // The file comes before the environment.
    check_env("NUM = 1\na = $NUM", &env, vec![("NUM", I(1)), ("a", I(1))]);
    assert!(fails("foo = $index")
        .to_string()
        .contains("variable reference for 'index' can not be found"));
}

#[test]
fn bcrypt_hashes_are_not_variables() {
    check("password: $2a$11$ooo", vec![("password", S("$2a$11$ooo"))]);
}

#[test]
fn nested_maps_and_arrays() {
    check(
        "foo  {\n  host {\n    ip   = '127.0.0.1'\n    port = 4242\n  }\n  servers = [ \"a.com\", \"b.com\", \"c.com\"]\n}",
        vec![(
            "foo",
            M(vec![
                ("host", M(vec![("ip", S("127.0.0.1")), ("port", I(4242))])),
                ("servers", A(vec![S("a.com"), S("b.com"), S("c.com")])),
            ]),
        )],
    );
    check(
        "array [\n  { abc: 123 }\n  { xyz: \"word\" }\n]",
        vec![(
            "array",
            A(vec![M(vec![("abc", I(123))]), M(vec![("xyz", S("word"))])]),
        )],
    );
}

#[test]
fn both_comment_styles_and_unquoted_urls() {
    check(
        "cluster {\n  port: 4244\n\n  authorization {\n    user: route_user\n    password: top_secret\n    timeout: 1\n  }\n\n  # Routes are solicited.\n\n  // Both styles of comments\n\n  routes = [\n    nats-route://foo:bar@apcera.me:4245\n    nats-route://foo:bar@apcera.me:4246\n  ]\n}",
        vec![(
            "cluster",
            M(vec![
                ("port", I(4244)),
                (
                    "authorization",
                    M(vec![
                        ("user", S("route_user")),
                        ("password", S("top_secret")),
                        ("timeout", I(1)),
                    ]),
                ),
                (
                    "routes",
                    A(vec![
                        S("nats-route://foo:bar@apcera.me:4245"),
                        S("nats-route://foo:bar@apcera.me:4246"),
                    ]),
                ),
            ]),
        )],
    );
}

#[test]
fn single_quoted_strings_span_lines_and_keep_their_content() {
    check(
        "foo  {\n  expr = '(true == \"false\")'\n  text = 'This is a multi-line\ntext block.'\n}",
        vec![(
            "foo",
            M(vec![
                ("expr", S("(true == \"false\")")),
                ("text", S("This is a multi-line\ntext block.")),
            ]),
        )],
    );
}

#[test]
fn datetimes_and_block_strings() {
    check(
        "now = 2016-05-04T18:53:41Z\ngmt = false\n",
        vec![("now", T("2016-05-04T18:53:41Z")), ("gmt", B(false))],
    );
    assert!(fails("now = 2016-02-30T18:53:41Z")
        .to_string()
        .contains("expected Zulu formatted DateTime"));
    check(
        "numbers (\n  12(34)56\n  (\n    7890\n  )\n)\n",
        vec![("numbers", S("\n  12(34)56\n  (\n    7890\n  )\n"))],
    );
}

#[test]
fn strings_starting_with_digits_ip_addresses_and_escapes() {
    check(
        "map {\n  foo = 3xyz,\n  bar = 4wqs\n}",
        vec![("map", M(vec![("foo", S("3xyz")), ("bar", S("4wqs"))]))],
    );
    check(
        "listen: 127.0.0.1:4222",
        vec![("listen", S("127.0.0.1:4222"))],
    );
    check("foo = \\x65", vec![("foo", S("e"))]);
    check(
        "foo = \"\\t\\n\\r\\\"\\\\ \\x41\"",
        vec![("foo", S("\t\n\r\"\\ A"))],
    );
    check("foo = 'a\\nb'", vec![("foo", S("a\\nb"))]);
}

#[test]
fn quoted_keys_and_separators() {
    check(
        "\"foo bar\" = 1\n'baz': 2\nqux 3\nquux=4",
        vec![
            ("foo bar", I(1)),
            ("baz", I(2)),
            ("qux", I(3)),
            ("quux", I(4)),
        ],
    );
}

#[test]
fn json_is_accepted() {
    check(
        "{\n  \"http_port\": 8227,\n  \"write_deadline\": \"1h\",\n  \"cluster\": {\n    \"port\": 6222,\n    \"routes\": [\n      \"nats://127.0.0.1:4222\",\n      \"nats://127.0.0.1:4223\"\n    ]\n  }\n}\n",
        vec![
            ("http_port", I(8227)),
            ("write_deadline", S("1h")),
            (
                "cluster",
                M(vec![
                    ("port", I(6222)),
                    (
                        "routes",
                        A(vec![S("nats://127.0.0.1:4222"), S("nats://127.0.0.1:4223")]),
                    ),
                ]),
            ),
        ],
    );
    check("{}", vec![]);
    check("\n{\n}\n", vec![]);
}

#[test]
fn empty_and_comment_only_files_are_valid() {
    check("", vec![]);
    check("\n\n   \n", vec![]);
    check("# just comments\n// and more\n", vec![]);
}

#[test]
fn keys_without_values_are_invalid() {
    for input in [
        "aaaaaaaaa",
        "      aaaaaaa   ",
        "\n # comment\n  aaaaaaaa\n",
        "\n a,a,a,a,a\n",
    ] {
        assert!(
            fails(input).to_string().contains("config is invalid"),
            "{input:?}"
        );
    }
}

#[test]
fn later_assignments_replace_earlier_ones() {
    check("a = 1\na = 2", vec![("a", I(2))]);
    // Keys are case-sensitive in the tree.
    check("a = 1\nA = 2", vec![("a", I(1)), ("A", I(2))]);
}

#[test]
fn unknown_size_units_store_nothing_like_the_server() {
    check("a = 1kbb\nb = 2", vec![("b", I(2))]);
    // Its key keeps waiting, and the map that closes next lands under it.
    check("m { a = 1kbb }", vec![("a", M(vec![]))]);
}

#[test]
fn the_server_reads_a_number_before_a_bracket_as_a_string() {
    // `2]` at the end of an array is one unquoted string to the server's
    // lexer, so the array is never closed.
    assert!(fails("a = [1, 2]").to_string().contains("array"));
    check("a = [1, 2 ]", vec![("a", A(vec![I(1), I(2)]))]);
    check("a = [1, 2,\n]", vec![("a", A(vec![I(1), I(2)]))]);
}

#[test]
fn includes_relative_to_the_including_file_merged_where_they_appear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir(root.join("sub")).expect("mkdir");
    std::fs::write(
        root.join("main.conf"),
        "listen: 127.0.0.1:4222\nauthorization {\n  include 'sub/users.conf' # pull in from file\n  timeout: 0.5\n}\n",
    )
    .expect("write");
    std::fs::write(
        root.join("sub/users.conf"),
        "include ./passwords.conf;\nusers = [\n  {user: alice, password: $ALICE_PASS}\n]\n",
    )
    .expect("write");
    std::fs::write(root.join("sub/passwords.conf"), "ALICE_PASS: $2a$10$abc\n").expect("write");
    let doc = parse_file(&root.join("main.conf"), &no_env).expect("parses");
    assert!(same_map(
        &doc.root,
        &[
            ("listen", S("127.0.0.1:4222")),
            (
                "authorization",
                M(vec![
                    ("ALICE_PASS", S("$2a$10$abc")),
                    (
                        "users",
                        A(vec![M(vec![
                            ("user", S("alice")),
                            ("password", S("$2a$10$abc"))
                        ])]),
                    ),
                    ("timeout", F(0.5)),
                ]),
            ),
        ]
    ));
    assert_eq!(doc.files.len(), 3);
    let users = doc
        .root
        .get("authorization")
        .and_then(|e| match &e.node.value {
            Value::Map(m) => m.get("users").map(|u| u.key_pos.clone()),
            _ => None,
        })
        .expect("users");
    assert_eq!((users.line, users.column), (2, 1));
    assert!(users.source.to_string().ends_with("users.conf"));
}

#[test]
fn included_files_do_not_see_the_includers_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("main.conf"), "X = 1\ninclude inc.conf\n").expect("write");
    std::fs::write(dir.path().join("inc.conf"), "y = $X\n").expect("write");
    let err = parse_file(&dir.path().join("main.conf"), &no_env).unwrap_err();
    assert!(
        matches!(err.innermost(), ConfigError::UndefinedVariable { .. }),
        "{err}"
    );
}

#[test]
fn absolute_include_paths_stay_under_the_including_directory() {
    // The server joins the include to the directory with Go's filepath.Join,
    // which keeps an absolute name under it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
    std::fs::write(dir.path().join("main.conf"), "include \"/etc/x.conf\"\n").expect("write");
    std::fs::write(dir.path().join("etc/x.conf"), "from: here\n").expect("write");
    let doc = parse_file(&dir.path().join("main.conf"), &no_env).expect("parses");
    assert!(same_map(&doc.root, &[("from", S("here"))]));
}
