//! `stanctl store inspect --json` against the conformance datastores.
//!
//! Every expected number is derived here from what the reference server did
//! with each store (`fixtures/conformance/expected/*.tsv`), never typed in:
//!
//! - `ok 0` under no-encrypt: an empty payload;
//! - an `err` line names the cipher of an envelope that key does not open
//!   ("cipher: message authentication failed" = AES, "chacha20poly1305: ..." =
//!   ChaCha, "trying to decrypt data that is not" = short envelope);
//! - delivered length L under keyN and L + 29 under no-encrypt: an envelope
//!   keyN opens; equal lengths: plaintext.
//!
//! The damaged stores have only a key1 file: they are copies of `aes` except
//! for the documented damage, so their model is `aes`'s with the damage applied.

mod common;
use common::*;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Envelope overhead: code byte, 12-byte nonce, 16-byte tag.
const OVERHEAD: u64 = 29;

fn sha_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn keys_args() -> Vec<String> {
    vec!["--key-file".into(), key(1), "--key-file".into(), key(2)]
}

fn inspect_args(dir: &Path, extra: &[String]) -> Vec<String> {
    let mut a = strs(&["store", "inspect"]);
    a.push(dir.display().to_string());
    a.push("--json".into());
    a.extend_from_slice(extra);
    a
}

/// `stanctl store inspect DIR --json EXTRA...`, which must succeed.
fn inspect_env(dir: &Path, extra: &[String], env_key: Option<&str>) -> Value {
    let args = inspect_args(dir, extra);
    let out = run_env(&args, env_key);
    assert_eq!(
        out.code, 0,
        "stanctl {args:?} failed\nstderr:\n{}",
        out.stderr
    );
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stanctl {args:?}: stdout is not JSON: {e}\n{}", out.stdout))
}

fn inspect(dir: &Path, extra: &[String]) -> Value {
    inspect_env(dir, extra, None)
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{k} is not a string in {v}"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v.get(k)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{k} is not an array in {v}"))
}

fn channel<'a>(report: &'a Value, name: &str) -> &'a Value {
    arr(report, "channels")
        .iter()
        .find(|c| s(c, "name") == name)
        .unwrap_or_else(|| panic!("no channel {name} in report"))
}

// ---------------------------------------------------------------------------
// The server's view: expected/<store>.<setting>.tsv
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Ok { len: u64, sha: String },
    Err(String),
}

#[derive(Debug, Default, Clone)]
struct Tsv {
    /// (cluster id, clients)
    server: Option<(String, u64)>,
    /// name -> (first, last, subs)
    channels: BTreeMap<String, (u64, u64, u64)>,
    msgs: BTreeMap<(String, u64), Line>,
    /// The server's own log lines (`ERR: ...`).
    log: Vec<String>,
    recover_error: Option<String>,
}

fn kv(field: &str, key: &str) -> u64 {
    field
        .strip_prefix(key)
        .and_then(|v| v.strip_prefix('='))
        .unwrap_or_else(|| panic!("expected {key}=N, got {field:?}"))
        .parse()
        .unwrap()
}

fn load_tsv(store: &str, setting: &str) -> Option<Tsv> {
    let p = fixtures()
        .join("conformance")
        .join("expected")
        .join(format!("{store}.{setting}.tsv"));
    let text = std::fs::read_to_string(&p).ok()?;
    let mut t = Tsv::default();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ERR: ") {
            t.log.push(rest.to_string());
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "SERVER" => t.server = Some((f[1].to_string(), kv(f[2], "clients"))),
            "CHANNEL" => {
                t.channels.insert(
                    f[1].to_string(),
                    (kv(f[2], "first"), kv(f[3], "last"), kv(f[4], "subs")),
                );
            }
            "MSG" => {
                let key = (f[1].to_string(), f[2].parse().unwrap());
                let l = match f[3] {
                    "ok" => Line::Ok {
                        len: f[4].parse().unwrap(),
                        sha: f[5].to_string(),
                    },
                    "err" => Line::Err(f[4].to_string()),
                    other => panic!("{}: unknown MSG status {other}", p.display()),
                };
                assert!(t.msgs.insert(key, l).is_none(), "duplicate MSG line");
            }
            "RECOVER-ERROR" => t.recover_error = Some(f[1..].join("\t")),
            other => panic!("{}: unknown line kind {other:?}", p.display()),
        }
    }
    Some(t)
}

// ---------------------------------------------------------------------------
// The model: what each store holds, derived from the TSVs.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Empty,
    Plain,
    Aes,
    Chacha,
    Short,
}

fn cipher_of_err(e: &str) -> Class {
    if e.starts_with("cipher: message authentication failed") {
        Class::Aes
    } else if e.starts_with("chacha20poly1305:") {
        Class::Chacha
    } else if e.starts_with("trying to decrypt data that is not") {
        Class::Short
    } else {
        panic!("err line that names no cipher: {e:?}")
    }
}

#[derive(Debug, Clone)]
struct Msg {
    class: Class,
    /// Index of the key (0 = K1, 1 = K2) that opens this envelope.
    opened_by: Option<usize>,
    /// Length on disk (what a server without encryption delivers).
    raw_len: u64,
    /// Length and SHA-256 of the message's plaintext, when known: the opened
    /// plaintext of an envelope, the payload itself otherwise.
    content_len: u64,
    content_sha: Option<String>,
    /// The record's CRC is wrong.
    crc_bad: bool,
}

impl Msg {
    /// An envelope class no given key opens: with K1 and K2 (every key the
    /// stores were written with) that is plaintext which starts with 1 or 2.
    fn lookalike(&self) -> bool {
        matches!(self.class, Class::Aes | Class::Chacha) && self.opened_by.is_none()
    }
}

#[derive(Debug, Clone)]
struct ChannelModel {
    first: u64,
    last: u64,
    subs: u64,
    msgs: BTreeMap<u64, Msg>,
}

#[derive(Debug, Clone)]
struct Model {
    cluster_id: String,
    clients: u64,
    channels: BTreeMap<String, ChannelModel>,
}

/// The cipher of envelopes that every key given in the TSVs opens, so that
/// no `err` line names it. Only `chacha` needs it (its README row: "every
/// message under K1, ChaCha"); elsewhere an err line under another key tells.
fn written_cipher(store: &str) -> Option<Class> {
    match store {
        "chacha" => Some(Class::Chacha),
        _ => None,
    }
}

/// A store with no-encrypt and keyN TSVs.
fn derive_from_tsvs(store: &str) -> Model {
    let ne = load_tsv(store, "no-encrypt").expect("no-encrypt TSV");
    let keyed: Vec<(usize, Tsv)> = [(0, "key1"), (1, "key2")]
        .into_iter()
        .filter_map(|(i, set)| load_tsv(store, set).map(|t| (i, t)))
        .collect();
    assert!(!keyed.is_empty(), "{store}: no keyN TSV");
    let (cluster_id, clients) = ne.server.clone().expect("SERVER line");
    for (_, t) in &keyed {
        assert_eq!(t.server, ne.server, "{store}: SERVER lines disagree");
        assert_eq!(t.channels, ne.channels, "{store}: CHANNEL lines disagree");
        assert!(
            t.msgs.keys().eq(ne.msgs.keys()),
            "{store}: MSG lines disagree"
        );
    }
    let mut channels: BTreeMap<String, ChannelModel> = ne
        .channels
        .iter()
        .map(|(n, &(first, last, subs))| {
            (
                n.clone(),
                ChannelModel {
                    first,
                    last,
                    subs,
                    msgs: BTreeMap::new(),
                },
            )
        })
        .collect();
    for ((ch, seq), line) in &ne.msgs {
        let Line::Ok {
            len: raw_len,
            sha: raw_sha,
        } = line
        else {
            panic!("{store}: no-encrypt delivers every message, got {line:?} for {ch}/{seq}");
        };
        let raw_len = *raw_len;
        let mut opened: Option<(usize, u64, String)> = None;
        let mut err_class: Option<Class> = None;
        let mut plain = false;
        for (k, t) in &keyed {
            match &t.msgs[&(ch.clone(), *seq)] {
                Line::Ok { len, sha } if raw_len == 0 => {
                    assert_eq!((*len, sha), (0, raw_sha), "{store}: {ch}/{seq}");
                }
                Line::Ok { len, sha } if len + OVERHEAD == raw_len => {
                    assert!(opened.is_none(), "{store}: two keys open {ch}/{seq}");
                    opened = Some((*k, *len, sha.clone()));
                }
                Line::Ok { len, sha } if *len == raw_len => {
                    assert_eq!(
                        sha, raw_sha,
                        "{store}: plaintext {ch}/{seq} delivered as is"
                    );
                    plain = true;
                }
                Line::Ok { len, .. } => {
                    panic!("{store}: {ch}/{seq}: length {len} unexplained (raw {raw_len})")
                }
                Line::Err(e) => {
                    let c = cipher_of_err(e);
                    if let Some(p) = err_class {
                        assert_eq!(p, c, "{store}: {ch}/{seq}: errors disagree");
                    }
                    err_class = Some(c);
                }
            }
        }
        assert!(
            !(plain && (opened.is_some() || err_class.is_some())),
            "{store}: {ch}/{seq} both plaintext and envelope"
        );
        let class = if raw_len == 0 {
            Class::Empty
        } else if let Some(c) = err_class {
            c
        } else if opened.is_some() {
            written_cipher(store)
                .unwrap_or_else(|| panic!("{store}: cipher of {ch}/{seq} not derivable"))
        } else {
            assert!(plain);
            Class::Plain
        };
        if class == Class::Short {
            assert!(opened.is_none(), "{store}: a short envelope cannot open");
        }
        let (opened_by, content_len, content_sha) = match opened {
            Some((k, len, sha)) => (Some(k), len, Some(sha)),
            None => (None, raw_len, Some(raw_sha.clone())),
        };
        let m = Msg {
            class,
            opened_by,
            raw_len,
            content_len,
            content_sha,
            crc_bad: false,
        };
        channels
            .get_mut(ch)
            .unwrap_or_else(|| panic!("{store}: MSG for unknown channel {ch}"))
            .msgs
            .insert(*seq, m);
    }
    for (n, c) in &channels {
        assert_eq!(
            (c.msgs.keys().next().copied(), c.msgs.keys().last().copied()),
            (Some(c.first), Some(c.last)),
            "{store}: MSG lines of {n} vs CHANNEL line"
        );
    }
    Model {
        cluster_id,
        clients,
        channels,
    }
}

/// `mixed-plain` has no TSV: it is `mixed` decrypted with K1 and K2 (README).
/// Each message's content is the plaintext the server delivered from `mixed`;
/// whether that content looks like an envelope is what the server said about
/// the same bytes (same SHA-256) in the `plain` store.
fn derive_mixed_plain() -> Model {
    let mixed = derive_from_tsvs("mixed");
    let plain = derive_from_tsvs("plain");
    let mut class_of: BTreeMap<String, Class> = BTreeMap::new();
    for c in plain.channels.values() {
        for m in c.msgs.values() {
            class_of.insert(m.content_sha.clone().unwrap(), m.class);
        }
    }
    let mut out = mixed.clone();
    for (n, c) in out.channels.iter_mut() {
        for (seq, m) in c.msgs.iter_mut() {
            let sha = m
                .content_sha
                .clone()
                .expect("mixed: K1 and K2 open everything");
            let class = *class_of
                .get(&sha)
                .unwrap_or_else(|| panic!("mixed {n}/{seq}: content not in plain"));
            *m = Msg {
                class,
                opened_by: None,
                raw_len: m.content_len,
                content_len: m.content_len,
                content_sha: Some(sha),
                crc_bad: false,
            };
        }
    }
    out
}

/// Index entries of an `.idx` file: (seq, offset, timestamp, size), read by hand.
fn idx_entries(path: &Path) -> Vec<(u64, u64, i64, u32)> {
    let b = std::fs::read(path).unwrap();
    b[4..]
        .chunks_exact(32)
        .map(|e| {
            (
                u64::from_le_bytes(e[0..8].try_into().unwrap()),
                u64::from_le_bytes(e[8..16].try_into().unwrap()),
                i64::from_le_bytes(e[16..24].try_into().unwrap()),
                u32::from_le_bytes(e[24..28].try_into().unwrap()),
            )
        })
        .collect()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Number after `marker` in the server's log lines.
fn log_number(t: &Tsv, marker: &str) -> u64 {
    t.log
        .iter()
        .find_map(|l| {
            let i = l.find(marker)?;
            let digits: String = l[i + marker.len()..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {marker:?} in the server log {:?}", t.log))
}

/// (offset, expected payload bytes, read bytes) of damaged-truncated, from
/// the server's log.
fn truncation_facts() -> (u64, u64, u64) {
    let t = load_tsv("damaged-truncated", "key1").unwrap();
    assert!(t.recover_error.is_some(), "the server refuses to start");
    (
        log_number(&t, "truncate this file to this offset:"),
        log_number(&t, "record payload expected to be"),
        log_number(&t, "only read"),
    )
}

/// The seq a damaged record of orders has in `aes`, found by its offset.
fn aes_seq_at(slice_idx: &str, offset: u64) -> u64 {
    idx_entries(&conformance("aes").join(slice_idx))
        .iter()
        .find(|e| e.1 == offset)
        .unwrap_or_else(|| panic!("no entry at offset {offset} in aes {slice_idx}"))
        .0
}

/// The damaged stores: `aes` plus the documented damage.
fn derive_damaged(store: &str) -> Model {
    let mut m = derive_from_tsvs("aes");
    let aes1 = load_tsv("aes", "key1").unwrap();
    let k1 = load_tsv(store, "key1").unwrap();
    match store {
        "damaged-truncated" => {
            let (offset, expected, read) = truncation_facts();
            let aes_dat = conformance("aes").join("orders/msgs.3.dat");
            let dmg_dat = conformance(store).join("orders/msgs.3.dat");
            // The cut record is the last one of the file ...
            assert_eq!(file_len(&aes_dat), offset + 8 + expected);
            assert_eq!(file_len(&dmg_dat), offset + 8 + read);
            // ... whose seq the original index tells.
            let seq = aes_seq_at("orders/msgs.3.idx", offset);
            let ch = m.channels.get_mut("orders").unwrap();
            assert_eq!(seq, ch.last, "the cut record is the channel's last");
            ch.msgs.remove(&seq);
            ch.last = *ch.msgs.keys().last().unwrap();
        }
        "damaged-crc" => {
            let mut bad = 0;
            for (k, l) in &k1.msgs {
                match l {
                    Line::Err(e) if e.starts_with("corrupted data") => {
                        m.channels
                            .get_mut(&k.0)
                            .unwrap()
                            .msgs
                            .get_mut(&k.1)
                            .unwrap()
                            .crc_bad = true;
                        bad += 1;
                    }
                    l => assert_eq!(Some(l), aes1.msgs.get(k), "{store}: {k:?} differs from aes"),
                }
            }
            assert_eq!(bad, 1);
            assert_eq!(k1.channels, aes1.channels);
        }
        "damaged-zero-tail" | "damaged-noidx" => {
            // The server repairs these while starting: it delivers aes's messages.
            assert_eq!(k1.msgs, aes1.msgs);
            assert_eq!(k1.channels, aes1.channels);
        }
        other => panic!("unknown damaged store {other}"),
    }
    m
}

fn derive(store: &str) -> Model {
    match store {
        "mixed-plain" => derive_mixed_plain(),
        s if s.starts_with("damaged-") => derive_damaged(s),
        s => derive_from_tsvs(s),
    }
}

/// For the sha256 check: the server's delivered (sha, len) under the key
/// that opened the message, from the store's own keyN TSV when it has one.
fn delivered_lines(store: &str) -> [Option<Tsv>; 2] {
    [load_tsv(store, "key1"), load_tsv(store, "key2")]
}

// ---------------------------------------------------------------------------
// Checking a report against the model.
// ---------------------------------------------------------------------------

#[derive(Default, Debug, PartialEq, Eq)]
struct Expect {
    messages: u64,
    empty: u64,
    plaintext: u64,
    aes: u64,
    chacha: u64,
    short: u64,
    opened: [u64; 2],
    lookalike: u64,
    crc_errors: u64,
}

fn expect_of<'a>(msgs: impl Iterator<Item = &'a Msg>) -> Expect {
    let mut e = Expect::default();
    for m in msgs {
        e.messages += 1;
        match m.class {
            Class::Empty => e.empty += 1,
            Class::Plain => e.plaintext += 1,
            Class::Aes => e.aes += 1,
            Class::Chacha => e.chacha += 1,
            Class::Short => e.short += 1,
        }
        if let Some(k) = m.opened_by {
            e.opened[k] += 1;
        }
        if m.lookalike() {
            e.lookalike += 1;
        }
        if m.crc_bad {
            e.crc_errors += 1;
        }
    }
    e
}

fn check_stats(what: &str, v: &Value, e: &Expect, with_keys: bool) {
    let p = &v["payloads"];
    let got = Expect {
        messages: u(v, "messages"),
        empty: u(p, "empty"),
        plaintext: u(p, "plaintext"),
        aes: u(p, "aes"),
        chacha: u(p, "chacha"),
        short: u(p, "short"),
        opened: if with_keys {
            let o = arr(v, "opened");
            assert_eq!(o.len(), 2, "{what}: opened per key");
            assert_eq!(s(&o[0], "key"), "K1");
            assert_eq!(s(&o[1], "key"), "K2");
            [u(&o[0], "opened"), u(&o[1], "opened")]
        } else {
            assert_eq!(
                arr(v, "opened").len(),
                0,
                "{what}: no keys, no opened counts"
            );
            e.opened
        },
        lookalike: if with_keys {
            assert_eq!(
                u(&v["unopened"], "wrong_key"),
                0,
                "{what}: K1 and K2 open every envelope"
            );
            u(&v["unopened"], "plaintext_lookalike")
        } else {
            assert!(v["unopened"].is_null(), "{what}: no keys, no unopened");
            e.lookalike
        },
        crc_errors: u(v, "crc_errors"),
    };
    assert_eq!(&got, e, "{what}");
    assert_eq!(u(v, "bad_records"), 0, "{what}: bad records");
}

fn check_report(store: &str, model: &Model, r: &Value, with_keys: bool) {
    assert_eq!(s(r, "schema"), "stanctl.inspect/1");
    assert_eq!(s(r, "cluster_id"), model.cluster_id, "{store}: cluster id");
    assert_eq!(
        u(r, "clients"),
        model.clients,
        "{store}: clients (SERVER line)"
    );
    assert_eq!(r["clustered"], Value::Bool(false));
    assert_eq!(s(r, "crc_poly"), "0xedb88320");
    let names: Vec<&str> = arr(r, "channels").iter().map(|c| s(c, "name")).collect();
    let want: Vec<&str> = model.channels.keys().map(String::as_str).collect();
    assert_eq!(names, want, "{store}: channels");
    let mut first_total = u64::MAX;
    let mut last_total = 0;
    for (name, cm) in &model.channels {
        let c = channel(r, name);
        let what = format!("{store}/{name}");
        assert_eq!(u(c, "first_seq"), cm.first, "{what}: first_seq");
        assert_eq!(u(c, "last_seq"), cm.last, "{what}: last_seq");
        first_total = first_total.min(cm.first);
        last_total = last_total.max(cm.last);
        assert_eq!(
            arr(c, "subscriptions").len() as u64,
            cm.subs,
            "{what}: subscriptions (subs=)"
        );
        let e = expect_of(cm.msgs.values());
        check_stats(&what, c, &e, with_keys);
        // Slices add up to the channel and follow each other.
        let slices = arr(c, "slices");
        assert!(!slices.is_empty());
        let mut sum = 0;
        let mut next = cm.first;
        for sl in slices {
            sum += u(sl, "messages");
            assert_eq!(u(sl, "first_seq"), next, "{what}: slices are contiguous");
            next = u(sl, "last_seq") + 1;
            let seqs = u(sl, "first_seq")..=u(sl, "last_seq");
            let e = expect_of(
                cm.msgs
                    .iter()
                    .filter(|(q, _)| seqs.contains(q))
                    .map(|(_, m)| m),
            );
            check_stats(
                &format!("{what} slice {}", u(sl, "slice")),
                sl,
                &e,
                with_keys,
            );
            assert!(s(sl, "file").starts_with(&format!("{name}/msgs.")));
        }
        assert_eq!(sum, cm.msgs.len() as u64, "{what}: slices sum");
        assert_eq!(next, cm.last + 1);
    }
    let all = expect_of(model.channels.values().flat_map(|c| c.msgs.values()));
    check_stats(&format!("{store} totals"), &r["totals"], &all, with_keys);
    assert_eq!(u(&r["totals"], "first_seq"), first_total);
    assert_eq!(u(&r["totals"], "last_seq"), last_total);
    assert_eq!(
        arr(r, "reused_nonces").len(),
        0,
        "{store}: the server never reuses a nonce: {}",
        r["reused_nonces"]
    );
}

/// `--records` with K1 and K2: every record against the model and the
/// server's delivered sha256 under the key that opened it.
fn check_records(store: &str, model: &Model, r: &Value) {
    let tsvs = delivered_lines(store);
    for (name, cm) in &model.channels {
        let recs = arr(channel(r, name), "records");
        let seqs: Vec<u64> = recs.iter().map(|x| u(x, "seq")).collect();
        let want: Vec<u64> = cm.msgs.keys().copied().collect();
        assert_eq!(seqs, want, "{store}/{name}: record seqs");
        for rec in recs {
            let seq = u(rec, "seq");
            let m = &cm.msgs[&seq];
            let what = format!("{store}/{name}/{seq}");
            let class = s(rec, "class");
            match m.class {
                Class::Empty => assert_eq!(class, "empty", "{what}"),
                Class::Plain => assert_eq!(class, "plaintext", "{what}"),
                Class::Aes => assert_eq!(class, "aes", "{what}"),
                Class::Chacha => assert_eq!(class, "chacha", "{what}"),
                Class::Short => assert!(class.starts_with("short-"), "{what}: {class}"),
            }
            assert_eq!(rec["crc_ok"], Value::Bool(!m.crc_bad), "{what}: crc_ok");
            match (m.opened_by, m.lookalike()) {
                (Some(k), _) => {
                    assert_eq!(
                        rec["key"],
                        Value::from(format!("K{}", k + 1)),
                        "{what}: key"
                    );
                    assert_eq!(u(rec, "length"), m.content_len, "{what}: opened length");
                    assert_eq!(
                        rec["sha256"].as_str(),
                        m.content_sha.as_deref(),
                        "{what}: sha256 of the opened payload"
                    );
                    // Straight from the server's line for that key, when the
                    // store has one.
                    if let Some(t) = &tsvs[k] {
                        if let Some(Line::Ok { len, sha }) = t.msgs.get(&(name.clone(), seq)) {
                            assert_eq!(Some(sha.as_str()), rec["sha256"].as_str(), "{what}");
                            assert_eq!(*len, u(rec, "length"), "{what}");
                        }
                    }
                }
                (None, true) => {
                    assert_eq!(rec["key"], Value::from("unopened-lookalike"), "{what}: key");
                    assert_eq!(u(rec, "length"), m.raw_len, "{what}: length");
                    assert!(rec["sha256"].is_null(), "{what}: nothing delivered");
                }
                (None, false) => {
                    assert!(rec["key"].is_null(), "{what}: key");
                    assert_eq!(u(rec, "length"), m.raw_len, "{what}: length");
                    if !m.crc_bad {
                        assert_eq!(
                            rec["sha256"].as_str(),
                            m.content_sha.as_deref(),
                            "{what}: sha256 of the plaintext payload"
                        );
                    }
                    if m.class == Class::Empty && !m.crc_bad {
                        assert_eq!(rec["sha256"].as_str(), Some(sha_hex(b"").as_str()));
                    }
                    for t in tsvs.iter().flatten() {
                        if let Some(Line::Ok { sha, .. }) = t.msgs.get(&(name.clone(), seq)) {
                            assert_eq!(Some(sha.as_str()), rec["sha256"].as_str(), "{what}");
                        }
                    }
                }
            }
        }
    }
}

fn damage_kinds(r: &Value) -> Vec<(String, String)> {
    arr(r, "damage")
        .iter()
        .map(|d| (s(d, "file").to_string(), s(d, "kind").to_string()))
        .collect()
}

/// Runs every check on one store: with K1 and K2 and --records, and without keys.
fn conformance_store(store: &str) -> Value {
    let model = derive(store);
    let dir = conformance(store);
    let mut extra = keys_args();
    extra.push("--records".into());
    let r = inspect(&dir, &extra);
    check_report(store, &model, &r, true);
    check_records(store, &model, &r);
    let bare = inspect(&dir, &[]);
    check_report(store, &model, &bare, false);
    for ch in arr(&bare, "channels") {
        assert!(ch.get("records").is_none(), "records only with --records");
    }
    assert_eq!(
        damage_kinds(&bare),
        damage_kinds(&r),
        "{store}: damage does not depend on keys"
    );
    r
}

fn assert_no_damage(store: &str, r: &Value) {
    assert_eq!(
        arr(r, "damage").len(),
        0,
        "{store} is undamaged: {}",
        r["damage"]
    );
}

fn copy_store(store: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&conformance(store), t.path());
    t
}

/// Rewrites a typed or untyped side file with new CRCs.
fn rewrite_side_file(path: &Path, typed: bool, crc: &stanctl::format::crc::Crc32) {
    use stanctl::format::record::{write_record, Event, Records};
    let data = std::fs::read(path).unwrap();
    let mut out = data[..4].to_vec();
    for ev in Records::new(&data, typed) {
        let Event::Record(r) = ev else {
            panic!("{}: unexpected {ev:?}", path.display())
        };
        write_record(&mut out, r.rtype, crc.checksum(r.payload), r.payload);
    }
    std::fs::write(path, out).unwrap();
}

/// Rewrites a message slice (`.dat` and `.idx`): `edit(seq, payload)` may
/// return a new record payload; CRCs and the index are recomputed with `crc`.
fn rewrite_slice(
    dat: &Path,
    crc: &stanctl::format::crc::Crc32,
    mut edit: impl FnMut(u64, &[u8]) -> Option<Vec<u8>>,
) {
    use stanctl::format::index::IndexEntry;
    use stanctl::format::proto::MsgView;
    use stanctl::format::record::{write_record, Event, Records};
    let data = std::fs::read(dat).unwrap();
    let mut out = data[..4].to_vec();
    let mut idx = 1u32.to_le_bytes().to_vec();
    for ev in Records::new(&data, false) {
        let Event::Record(r) = ev else {
            panic!("{}: unexpected {ev:?}", dat.display())
        };
        let m = MsgView::parse(r.payload).unwrap();
        let payload = edit(m.sequence, r.payload).unwrap_or_else(|| r.payload.to_vec());
        let m2 = MsgView::parse(&payload).unwrap();
        assert_eq!(m2.sequence, m.sequence);
        let offset = out.len() as u64;
        write_record(&mut out, 0, crc.checksum(&payload), &payload);
        let e = IndexEntry::new(m2.sequence, offset, m2.timestamp, payload.len() as u32, crc);
        idx.extend_from_slice(&e.to_bytes());
    }
    std::fs::write(dat, out).unwrap();
    let idx_path = dat.with_extension("idx");
    if idx_path.exists() {
        std::fs::write(idx_path, idx).unwrap();
    }
}

/// Every `msgs.N.dat` of a store copy.
fn slices_of(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for ch in std::fs::read_dir(root).unwrap() {
        let ch = ch.unwrap();
        if !ch.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(ch.path()).unwrap() {
            let p = f.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            if n.starts_with("msgs.") && n.ends_with(".dat") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Inspect never writes.
// ---------------------------------------------------------------------------

/// Every path under a root with its bytes, mtime and mode: inspect must not
/// even touch a file.
type Snapshot = BTreeMap<PathBuf, (Option<Vec<u8>>, SystemTime, u32)>;

fn snapshot_with_times(root: &Path) -> Snapshot {
    use std::os::unix::fs::PermissionsExt;
    fn walk(p: &Path, out: &mut Snapshot) {
        let md = std::fs::symlink_metadata(p).unwrap();
        let bytes = md.is_file().then(|| std::fs::read(p).unwrap());
        out.insert(
            p.to_path_buf(),
            (bytes, md.modified().unwrap(), md.permissions().mode()),
        );
        if md.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        }
    }
    let mut s = Snapshot::new();
    walk(root, &mut s);
    s
}

// ---------------------------------------------------------------------------
// Nonce reuse.
// ---------------------------------------------------------------------------

/// The data field (field 4) of a record payload.
fn data_of(payload: &[u8]) -> Vec<u8> {
    stanctl::format::proto::MsgView::parse(payload)
        .unwrap()
        .data
        .to_vec()
}

// ---------------------------------------------------------------------------
// One test per store.
// ---------------------------------------------------------------------------

#[test]
fn every_conformance_store_is_tested() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures().join("conformance"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir() && e.file_name() != "expected")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let tested: BTreeSet<String> = [
        "plain",
        "aes",
        "chacha",
        "mixed",
        "mixed-plain",
        "damaged-truncated",
        "damaged-zero-tail",
        "damaged-crc",
        "damaged-noidx",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(on_disk, tested);
}

#[test]
fn store_plain() {
    let r = conformance_store("plain");
    assert_no_damage("plain", &r);
}

#[test]
fn store_aes() {
    let r = conformance_store("aes");
    assert_no_damage("aes", &r);
}

#[test]
fn store_chacha() {
    let r = conformance_store("chacha");
    assert_no_damage("chacha", &r);
}

#[test]
fn store_mixed() {
    let r = conformance_store("mixed");
    assert_no_damage("mixed", &r);
}

#[test]
fn store_mixed_plain() {
    let r = conformance_store("mixed-plain");
    assert_no_damage("mixed-plain", &r);
}

#[test]
fn store_damaged_truncated() {
    let r = conformance_store("damaged-truncated");
    let (offset, expected, read) = truncation_facts();
    let dmg = arr(&r, "damage");
    let t = dmg
        .iter()
        .find(|d| s(d, "kind") == "truncated-record")
        .unwrap_or_else(|| panic!("no truncated-record in {}", r["damage"]));
    assert_eq!(s(t, "file"), "orders/msgs.3.dat");
    assert_eq!(t["channel"], Value::from("orders"));
    assert_eq!(u(t, "offset"), offset, "the server's offset");
    let detail = s(t, "detail");
    assert!(
        detail.contains(&expected.to_string()) && detail.contains(&read.to_string()),
        "detail {detail:?} should say {expected} bytes announced, {read} read"
    );
    for d in dmg {
        assert!(
            s(d, "file").starts_with("orders/msgs.3."),
            "only orders slice 3 is damaged: {d}"
        );
    }
}

#[test]
fn store_damaged_zero_tail() {
    let r = conformance_store("damaged-zero-tail");
    let aes_len = file_len(&conformance("aes").join("sensors.temp/msgs.3.dat"));
    let dmg_len = file_len(&conformance("damaged-zero-tail").join("sensors.temp/msgs.3.dat"));
    let dmg = arr(&r, "damage");
    assert_eq!(dmg.len(), 1, "{}", r["damage"]);
    let d = &dmg[0];
    assert_eq!(s(d, "kind"), "zero-padding");
    assert_eq!(s(d, "file"), "sensors.temp/msgs.3.dat");
    assert_eq!(d["channel"], Value::from("sensors.temp"));
    assert_eq!(
        u(d, "offset"),
        aes_len,
        "padding starts where aes's file ends"
    );
    assert!(
        s(d, "detail").contains(&format!("{} zero bytes", dmg_len - aes_len)),
        "{d}"
    );
}

#[test]
fn store_damaged_crc() {
    let r = conformance_store("damaged-crc");
    let t = load_tsv("damaged-crc", "key1").unwrap();
    let ((ch, seq), text) = t
        .msgs
        .iter()
        .find_map(|(k, l)| match l {
            Line::Err(e) if e.starts_with("corrupted data") => Some((k.clone(), e.clone())),
            _ => None,
        })
        .unwrap();
    let crc_text = &text[text.find("expected crc").unwrap()..];
    let offset = idx_entries(&conformance("aes").join("orders/msgs.2.idx"))
        .iter()
        .find(|e| e.0 == seq)
        .unwrap()
        .1;
    let dmg = arr(&r, "damage");
    let d = dmg
        .iter()
        .find(|d| s(d, "kind") == "crc-mismatch")
        .unwrap_or_else(|| panic!("no crc-mismatch in {}", r["damage"]));
    assert_eq!(d["channel"], Value::from(ch.as_str()));
    assert_eq!(s(d, "file"), "orders/msgs.2.dat");
    assert_eq!(u(d, "seq"), seq);
    assert_eq!(u(d, "offset"), offset, "offset of seq {seq}'s record");
    assert!(
        s(d, "detail").contains(crc_text),
        "detail {:?} should contain the server's {crc_text:?}",
        s(d, "detail")
    );
    for d in dmg {
        assert!(s(d, "file").starts_with("orders/msgs.2."), "{d}");
        assert_eq!(d["seq"], Value::from(seq), "only seq {seq} is damaged: {d}");
    }
    assert_eq!(
        dmg.iter()
            .filter(|d| s(d, "kind") == "crc-mismatch")
            .count(),
        1
    );
}

#[test]
fn store_damaged_noidx() {
    let r = conformance_store("damaged-noidx");
    let dmg = arr(&r, "damage");
    assert_eq!(dmg.len(), 1, "{}", r["damage"]);
    assert_eq!(s(&dmg[0], "kind"), "index-missing");
    assert_eq!(s(&dmg[0], "file"), "orders/msgs.2.idx");
    assert_eq!(dmg[0]["channel"], Value::from("orders"));
    let sl = &arr(channel(&r, "orders"), "slices")[1];
    assert_eq!(u(sl, "slice"), 2);
    assert!(sl["index_file"].is_null());
    assert!(sl["index_entries"].is_null());
}

// ---------------------------------------------------------------------------
// CRC polynomial.
// ---------------------------------------------------------------------------

#[test]
fn other_polynomial_fails_every_record() {
    let mut extra = strs(&["--crc-poly", "0x82f63b78", "--records"]);
    extra.extend(keys_args());
    let r = inspect(&conformance("aes"), &extra);
    assert_eq!(s(&r, "crc_poly"), "0x82f63b78");
    let model = derive("aes");
    let dmg = arr(&r, "damage");
    for (name, cm) in &model.channels {
        let c = channel(&r, name);
        assert_eq!(u(c, "messages"), cm.msgs.len() as u64);
        assert_eq!(
            u(c, "crc_errors"),
            cm.msgs.len() as u64,
            "{name}: every record"
        );
        for rec in arr(c, "records") {
            assert_eq!(rec["crc_ok"], Value::Bool(false), "{rec}");
        }
        let seqs: BTreeSet<u64> = dmg
            .iter()
            .filter(|d| {
                d["channel"].as_str() == Some(name.as_str()) && s(d, "kind") == "crc-mismatch"
            })
            .filter(|d| s(d, "file").contains("/msgs."))
            .map(|d| u(d, "seq"))
            .collect();
        let want: BTreeSet<u64> = cm.msgs.keys().copied().collect();
        assert_eq!(seqs, want, "{name}: a crc-mismatch per message");
    }
    // Index entries are covered by the same polynomial.
    let idx_crc = dmg.iter().filter(|d| s(d, "kind") == "index-crc").count();
    let total: usize = model.channels.values().map(|c| c.msgs.len()).sum();
    assert_eq!(idx_crc, total, "an index-crc per entry");
    // The side files too.
    for f in ["server.dat", "clients.dat"] {
        assert!(
            dmg.iter()
                .any(|d| s(d, "file") == f && s(d, "kind") == "crc-mismatch"),
            "{f}"
        );
    }
}

#[test]
fn bogus_polynomial_is_a_usage_error() {
    for p in ["bogus", "0", "0xZZ"] {
        let mut a = inspect_args(&conformance("aes"), &[]);
        a.extend(strs(&["--crc-poly", p]));
        let out = run(&a);
        assert_eq!(out.code, 64, "--crc-poly {p}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn castagnoli_store_is_clean_under_castagnoli_only() {
    let t = copy_store("plain");
    let crc = stanctl::format::crc::Crc32::new(stanctl::format::crc::CASTAGNOLI);
    for dat in slices_of(t.path()) {
        rewrite_slice(&dat, &crc, |_, _| None);
    }
    rewrite_side_file(&t.path().join("server.dat"), false, &crc);
    rewrite_side_file(&t.path().join("clients.dat"), true, &crc);
    for ch in ["orders", "sensors.temp"] {
        rewrite_side_file(&t.path().join(ch).join("subs.dat"), true, &crc);
    }
    let model = derive("plain");
    for poly in ["0x82f63b78", "castagnoli"] {
        let mut extra = strs(&["--crc-poly", poly, "--records"]);
        extra.extend(keys_args());
        let r = inspect(t.path(), &extra);
        assert_eq!(s(&r, "crc_poly"), "0x82f63b78");
        assert_no_damage("plain rewritten with Castagnoli", &r);
        let mut rr = r.clone();
        rr["crc_poly"] = Value::from("0xedb88320");
        check_report("plain", &model, &rr, true);
        check_records("plain", &model, &r);
    }
    // The default polynomial (IEEE) now fails every record.
    let r = inspect(t.path(), &[]);
    for (name, cm) in &model.channels {
        assert_eq!(
            u(channel(&r, name), "crc_errors"),
            cm.msgs.len() as u64,
            "{name}"
        );
    }
    assert!(arr(&r, "damage")
        .iter()
        .any(|d| s(d, "kind") == "crc-mismatch"));
}

#[test]
fn inspect_never_writes() {
    for store in [
        "aes",
        "damaged-truncated",
        "damaged-zero-tail",
        "damaged-noidx",
    ] {
        let t = copy_store(store);
        // A stopped server leaves its (unlocked) lock file behind.
        std::fs::write(t.path().join(".rootdir.lck"), b"").unwrap();
        let before = snapshot_with_times(t.path());
        // Let the clock move on, so that any write would change an mtime.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let dir = t.path().display().to_string();
        let mut variants: Vec<Vec<String>> = vec![
            inspect_args(t.path(), &[]),
            inspect_args(t.path(), &keys_args()),
            inspect_args(t.path(), &strs(&["--records", "--crc-poly", "castagnoli"])),
            strs(&["store", "inspect", &dir]),
            strs(&["store", "inspect", &dir, "--by-slice"]),
        ];
        let mut all = inspect_args(t.path(), &keys_args());
        all.push("--records".into());
        variants.push(all);
        for a in &variants {
            let out = run(a);
            assert_eq!(out.code, 0, "{a:?}: {}", out.stderr);
        }
        let after = snapshot_with_times(t.path());
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{store}: files created or removed"
        );
        for (p, b) in &before {
            assert!(after[p] == *b, "{store}: {} changed", p.display());
        }
    }
}

#[test]
fn reused_nonce_is_reported() {
    let (a, b) = (2u64, 20u64);
    let t = copy_store("aes");
    let crc = stanctl::format::crc::Crc32::ieee();
    // Seq a's envelope, from slice 1.
    let mut env_a = None;
    let s1 = t.path().join("orders/msgs.1.dat");
    {
        use stanctl::format::record::{Event, Records};
        let data = std::fs::read(&s1).unwrap();
        for ev in Records::new(&data, false) {
            if let Event::Record(r) = ev {
                let m = stanctl::format::proto::MsgView::parse(r.payload).unwrap();
                if m.sequence == a {
                    env_a = Some(m.data.to_vec());
                }
            }
        }
    }
    let env_a = env_a.expect("seq a in slice 1");
    assert!(env_a.len() > 29 && env_a[0] == 1, "an AES envelope");
    // ... copied into seq b (slice 2), keeping b's other fields.
    let mut replaced = false;
    rewrite_slice(&t.path().join("orders/msgs.2.dat"), &crc, |seq, p| {
        (seq == b).then(|| {
            replaced = true;
            let m = stanctl::format::proto::MsgView::parse(p).unwrap();
            assert!(!m.data.is_empty());
            let mut out = Vec::new();
            stanctl::format::proto::replace_data(p, m.data_field.clone(), &env_a, &mut out);
            assert_eq!(data_of(&out), env_a);
            out
        })
    });
    assert!(replaced);
    let nonce = hex(&env_a[1..13]);

    let mut extra = keys_args();
    extra.push("--records".into());
    let r = inspect(t.path(), &extra);
    assert_no_damage("aes with a copied envelope", &r);
    let reuse = arr(&r, "reused_nonces");
    assert_eq!(reuse.len(), 1, "{}", r["reused_nonces"]);
    let x = &reuse[0];
    assert_eq!(s(x, "channel"), "orders");
    assert_eq!(x["key"], Value::from("K1"));
    assert_eq!(s(x, "nonce"), nonce);
    assert_eq!(x["seqs"], serde_json::json!([a, b]));
    assert_eq!(
        x["cipher"].as_str().map(str::to_ascii_lowercase),
        Some("aes".into())
    );
    // Seq b now delivers seq a's plaintext.
    let recs = arr(channel(&r, "orders"), "records");
    let sha = |q: u64| recs.iter().find(|x| u(x, "seq") == q).unwrap()["sha256"].clone();
    assert_eq!(sha(a), sha(b));

    // Without keys the same nonce twice is still found.
    let r = inspect(t.path(), &[]);
    let reuse = arr(&r, "reused_nonces");
    assert_eq!(reuse.len(), 1, "{}", r["reused_nonces"]);
    assert!(reuse[0]["key"].is_null());
    assert_eq!(s(&reuse[0], "nonce"), nonce);
    assert_eq!(reuse[0]["seqs"], serde_json::json!([a, b]));
}

// ---------------------------------------------------------------------------
// Keys: secrecy and sources.
// ---------------------------------------------------------------------------

#[test]
fn key_on_command_line_works_and_warns() {
    let args = inspect_args(
        &conformance("aes"),
        &strs(&["--key", "conformance-key-1", "--records"]),
    );
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("other users"),
        "warning on stderr: {:?}",
        out.stderr
    );
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(r["keys"][0]["id"], Value::from("K1"));
    assert_eq!(r["keys"][0]["source"], Value::from("--key"));
    let model = derive("aes");
    for (name, cm) in &model.channels {
        let e = expect_of(cm.msgs.values());
        assert_eq!(
            u(&arr(channel(&r, name), "opened")[0], "opened"),
            e.opened[0],
            "{name}"
        );
    }
    // No warning without --key.
    let out = run(&inspect_args(&conformance("aes"), &keys_args()));
    assert!(!out.stderr.contains("other users"), "{}", out.stderr);
}

#[test]
fn env_key_works() {
    let model = derive("mixed");
    let r = inspect_env(
        &conformance("mixed"),
        &strs(&["--records"]),
        Some("conformance-key-2"),
    );
    let keys = arr(&r, "keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(s(&keys[0], "id"), "K1");
    assert!(s(&keys[0], "source").contains(ENV_KEY), "{}", keys[0]);
    for (name, cm) in &model.channels {
        let e = expect_of(cm.msgs.values());
        let c = channel(&r, name);
        assert_eq!(
            u(&arr(c, "opened")[0], "opened"),
            e.opened[1],
            "{name}: K2's count"
        );
        // What K2 does not open is a real envelope (written under K1).
        assert_eq!(u(&c["unopened"], "wrong_key"), e.opened[0], "{name}");
    }
    // Env key together with a key file: both used, env last.
    let r = inspect_env(
        &conformance("mixed"),
        &strs(&["--key-file", &key(1)]),
        Some("conformance-key-2"),
    );
    for (name, cm) in &model.channels {
        let e = expect_of(cm.msgs.values());
        let o = arr(channel(&r, name), "opened");
        assert_eq!([u(&o[0], "opened"), u(&o[1], "opened")], e.opened, "{name}");
    }
    // Empty env var: no key, as in the server.
    let r = inspect_env(&conformance("aes"), &[], Some(""));
    assert_eq!(arr(&r, "keys").len(), 0);
}

// ---------------------------------------------------------------------------
// Bad input.
// ---------------------------------------------------------------------------

#[test]
fn missing_directory_is_an_io_error() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no-such-store");
    let out = run(&inspect_args(&missing, &[]));
    assert_eq!(out.code, 74, "{}", out.stderr);
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "names the path: {:?}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn directory_without_server_dat_is_not_a_store() {
    let t = copy_store("aes");
    std::fs::remove_file(t.path().join("server.dat")).unwrap();
    for dir in [t.path().to_path_buf(), fixtures().join("conformance")] {
        let out = run(&inspect_args(&dir, &[]));
        assert_eq!(out.code, 74, "{}", out.stderr);
        assert!(
            out.stderr.contains("not a NATS Streaming file store"),
            "{:?}",
            out.stderr
        );
        assert!(out.stderr.contains(&dir.display().to_string()));
    }
}
