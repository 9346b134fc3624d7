//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses a different subset
pub mod counting;

use sha2::{Digest, Sha256};
pub use stanctl::cli::exit::ExitCode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The variable the server (and stanctl) read a key from.
pub const ENV_KEY: &str = "NATS_STREAMING_ENCRYPTION_KEY";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn conformance(name: &str) -> PathBuf {
    fixtures().join("conformance").join(name)
}

/// Copies a directory tree (files and directories; the fixtures hold nothing else).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Strings no output may contain: the conformance key material and the
/// master hash the server derives every channel key from.
pub fn secrets() -> Vec<String> {
    let mut v = Vec::new();
    for k in ["conformance-key-1", "conformance-key-2"] {
        v.push(k.to_string());
        v.push(
            Sha256::digest(k.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
    }
    v
}

/// Fails if the output of a run shows key material.
#[track_caller]
pub fn assert_no_secrets(out: &std::process::Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in secrets() {
        assert!(
            !text.contains(&s),
            "output shows key material ({}...)",
            &s[..6]
        );
    }
}

pub fn k1() -> &'static str {
    static K: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    K.get_or_init(|| key(1))
}

pub fn k2() -> &'static str {
    static K: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    K.get_or_init(|| key(2))
}

/// The path of conformance key file `n` (1 or 2).
pub fn key(n: u8) -> String {
    fixtures().join(format!("k{n}.key")).display().to_string()
}

pub fn d(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A private copy of a conformance store, in `tmp/store`.
pub fn store(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&conformance(name), &dir);
    (tmp, dir)
}

/// The exit codes, from the tool's own enum.
pub const OK: i32 = ExitCode::Ok.code();
pub const AT_RISK: i32 = ExitCode::AtRisk.code();
pub const WONT_START: i32 = ExitCode::WontStart.code();
pub const LOCKED: i32 = ExitCode::Locked.code();
pub const REFUSED: i32 = ExitCode::Refused.code();
pub const USAGE: i32 = ExitCode::Usage.code();
pub const IO: i32 = ExitCode::Io.code();

/// The binary, with no key or test hook inherited from the environment.
pub fn stanctl() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("stanctl").unwrap();
    c.env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env_remove("STANCTL_TEST_ABORT_AT_STEP")
        .env_remove("STANCTL_TEST_FREE_BYTES")
        .env("RUST_BACKTRACE", "0")
        .timeout(std::time::Duration::from_secs(120));
    c
}

/// What a run of the binary printed, and how it ended.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == OK
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.stdout, self.stderr))
    }

    /// Asserts that stderr contains `needle` (and shows stderr if not).
    #[track_caller]
    pub fn expect_stderr(&self, needle: &str) {
        assert!(self.stderr.contains(needle), "{}", self.stderr);
    }

    /// Asserts that stdout contains `needle` (and shows stdout if not).
    #[track_caller]
    pub fn expect_stdout(&self, needle: &str) {
        assert!(self.stdout.contains(needle), "{}", self.stdout);
    }
}

/// Runs a prepared command. Whatever the test is about, every run must end
/// with an exit code the tool defines (no panic, no signal), show no key
/// material, and explain an error exit on stderr.
#[track_caller]
pub fn exec(cmd: &mut assert_cmd::Command, what: &dyn std::fmt::Debug) -> Out {
    refuse_writes_into_fixtures(cmd);
    let o = cmd.output().unwrap();
    assert_no_secrets(&o);
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    for t in [&out.stdout, &out.stderr] {
        assert!(
            !t.contains("panicked") && !t.contains("RUST_BACKTRACE"),
            "{what:?}: panic: {}",
            out.stderr
        );
    }
    assert!(
        ExitCode::ALL.iter().any(|c| c.code() == out.code),
        "{what:?}: exit code {} (signal: {:?}), stderr:\n{}",
        out.code,
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        out.stderr
    );
    // Every error, clap's usage errors included, says "stanctl: error:".
    if out.code >= LOCKED {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("stanctl: error:") || l.starts_with("stanctl: refusing")),
            "{what:?}: exit {} without an error line: {}",
            out.code,
            out.stderr
        );
    }
    out
}

/// The fixtures are the ground truth: no test may write into them. A
/// rewrite (`store|raft encrypt|decrypt|rekey`) without `--dry-run` takes
/// the store's lock (creating `.rootdir.lck`) and may stage files before its
/// check refuses, so it must run on a copy (`store`, `copy_dir`). Panics,
/// before the run, when such a command names a path under fixtures/ other
/// than a key or configuration file to read: as an argument, in the
/// environment (a configuration file's `$VAR`), or inside its `--config`
/// file (`dir`, `log_path`).
#[track_caller]
pub fn refuse_writes_into_fixtures(cmd: &assert_cmd::Command) {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let rewrite = matches!(args.first().map(String::as_str), Some("store" | "raft"))
        && matches!(
            args.get(1).map(String::as_str),
            Some("encrypt" | "decrypt" | "rekey")
        );
    let dry_run = args.iter().any(|a| {
        a == "--dry-run"
            || (a.starts_with('-')
                && !a.starts_with("--")
                && a.len() > 1
                && a[1..].chars().all(|c| c.is_ascii_alphabetic())
                && a.contains('n'))
    });
    if !rewrite || dry_run {
        return;
    }
    let cwd = cmd
        .get_current_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::current_dir().unwrap());
    let root = fixtures().canonicalize().unwrap();
    // Lexically: the path may not exist yet (an --output).
    let under = |p: &str| {
        let mut abs = PathBuf::new();
        for c in cwd.join(p).components() {
            match c {
                std::path::Component::ParentDir => {
                    abs.pop();
                }
                std::path::Component::CurDir => {}
                c => abs.push(c),
            }
        }
        let abs = abs.canonicalize().unwrap_or(abs);
        abs.starts_with(&root) || abs.starts_with(fixtures())
    };
    let inputs = ["-k", "--key-file", "--new-key-file", "--config"];
    // A Raft log rewritten to --output is only read (a store's rewrite to
    // --output still takes the source store's lock).
    let raft_to_output = args[0] == "raft"
        && args
            .iter()
            .any(|a| a == "-o" || a == "--output" || a.starts_with("--output="));
    let mut named = Vec::new();
    let mut configs = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (Some(f), v),
            _ => (i.checked_sub(1).map(|j| args[j].as_str()), a.as_str()),
        };
        if flag == Some("--config") {
            configs.push(value.to_string());
        }
        let read_only =
            inputs.contains(&flag.unwrap_or("")) || (raft_to_output && cwd.join(value).is_file());
        if !read_only && !value.is_empty() && under(value) {
            named.push(value.to_string());
        }
    }
    if !configs.is_empty() {
        for (_, v) in cmd.get_envs() {
            if let Some(v) = v.map(|v| v.to_string_lossy().into_owned()) {
                if !v.is_empty() && under(&v) && Path::new(&cwd).join(&v).is_dir() {
                    named.push(format!("{v} (from the environment)"));
                }
            }
        }
    }
    for c in &configs {
        // Without comments (the conformance files show an example path in one).
        let text: String = std::fs::read_to_string(cwd.join(c))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('#').next().unwrap().split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let relative = cwd.join("fixtures").canonicalize().ok() == Some(root.clone());
        if text.contains(&*fixtures().to_string_lossy())
            || text.contains(&*root.to_string_lossy())
            || (relative && text.contains("fixtures/"))
        {
            named.push(format!("{c} (a configuration file naming fixtures/)"));
        }
    }
    assert!(
        named.is_empty(),
        "{args:?} would write into the fixtures ({}): a rewrite without \
         --dry-run takes the store's lock and may write before its check \
         refuses; run it on a copy (common::store, common::copy_dir)",
        named.join(", ")
    );
}

/// Runs the binary with these arguments.
#[track_caller]
pub fn run<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> Out {
    exec(stanctl().args(args), &args)
}

/// Runs the binary, which must exit 0 (stderr shown if not).
#[track_caller]
pub fn run_ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> Out {
    let o = run(args);
    assert_eq!(o.code, OK, "{}", o.stderr);
    o
}

/// Runs the binary with NATS_STREAMING_ENCRYPTION_KEY set (or not).
#[track_caller]
pub fn run_env<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    args: &[S],
    env_key: Option<&str>,
) -> Out {
    let mut c = stanctl();
    if let Some(k) = env_key {
        c.env("NATS_STREAMING_ENCRYPTION_KEY", k);
    }
    exec(c.args(args), &args)
}

/// Runs with `--json` added; the exit code and the document.
#[track_caller]
pub fn json<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> (i32, serde_json::Value) {
    let o = exec(stanctl().args(args).arg("--json"), &args);
    let v = o.json();
    (o.code, v)
}

pub fn code(o: &Out) -> i32 {
    o.code
}

pub fn err(o: &Out) -> String {
    o.stderr.clone()
}

#[track_caller]
pub fn ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) {
    let o = run(args);
    assert!(o.success(), "{args:?} failed: {}", o.stderr);
}

/// `inspect DIR --key-file KEY --json`, which must succeed.
#[track_caller]
pub fn inspect(dir: &Path, key: &str) -> serde_json::Value {
    let o = run(&["store", "inspect", d(dir), "--key-file", key, "--json"]);
    assert!(o.success(), "{}", o.stderr);
    o.json()
}

/// `verify DIR --json` with the server's key, or without encryption.
#[track_caller]
pub fn verify_json(dir: &Path, key: Option<&str>) -> (i32, serde_json::Value) {
    let mut args = vec!["store", "verify", d(dir), "--json"];
    match key {
        Some(k) => args.extend(["--key-file", k]),
        None => args.push("--no-encrypt"),
    }
    let o = run(&args);
    (o.code, o.json())
}

/// Every file of a store, by relative path, except the lock file (taking the
/// lock creates it, as the server does). Symlinks and FIFOs are recorded by
/// what they are, never read through.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().unwrap() != ".rootdir.lck" {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let bytes = if ft.is_file() {
                    std::fs::read(&p).unwrap_or_default()
                } else {
                    format!("{ft:?} -> {:?}", std::fs::read_link(&p).ok()).into_bytes()
                };
                out.insert(rel, bytes);
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

/// A separate process holding the store's fcntl lock, as a running server
/// (or another stanctl mid-rewrite) does: a lock held by the test process
/// itself would not block its children. Released on drop.
pub struct LockHolder(pub std::process::Child);

impl LockHolder {
    pub fn new(store: &Path) -> LockHolder {
        let mut c = std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time; f=open(sys.argv[1],'a+'); fcntl.lockf(f,fcntl.LOCK_EX); print('locked',flush=True); time.sleep(60)",
            ])
            .arg(store.join(".rootdir.lck"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 to hold the lock");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(c.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        LockHolder(c)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary with files limited to `max_bytes` (RLIMIT_FSIZE, SIGXFSZ
/// ignored): a write past it fails as on a full disk.
pub fn run_with_file_limit(args: &[&str], max_bytes: u64) -> Out {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("stanctl"));
    c.args(args)
        .env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env_remove("STANCTL_TEST_ABORT_AT_STEP")
        .env_remove("STANCTL_TEST_FREE_BYTES")
        .env("RUST_BACKTRACE", "0");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: max_bytes,
                rlim_max: max_bytes,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    exec(&mut assert_cmd::Command::from_std(c), &args)
}

// ---- Building stores and payloads ----

use serde_json::Value;
use stanctl::crypto::aead::{Backend, ChannelAead, Cipher};
use stanctl::crypto::keys::{Key, KeyOrigin};
use stanctl::format::crc::Crc32;
use stanctl::format::index::IndexEntry;
use tempfile::TempDir;

#[track_caller]
pub fn assert_same_store(got: &Path, want: &Path) {
    let (g, w) = (snapshot(got), snapshot(want));
    assert_eq!(
        g.keys().collect::<Vec<_>>(),
        w.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (k, v) in &w {
        assert!(g[k] == *v, "{k} differs from {}", want.display());
    }
}

/// A copy of `name` with only its server.dat and clients.dat: channels are
/// added by the test.
pub fn bare_store(name: &str) -> (TempDir, PathBuf) {
    let (t, s) = store(name);
    for ch in ["orders", "sensors.temp", "big"] {
        std::fs::remove_dir_all(s.join(ch)).unwrap();
    }
    (t, s)
}

pub fn channel<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name} in {v}"))
}

// ------------------------------------------------------------- builders

pub fn material(path: &str) -> Vec<u8> {
    let mut m = std::fs::read(path).unwrap();
    if m.last() == Some(&b'\n') {
        m.pop();
    }
    m
}

/// An envelope as the server writes it: `code || nonce || ct || tag`, with a
/// server-style nonce (random prefix, big-endian counter = seq).
pub fn seal(key_file: &str, channel: &str, cipher: Cipher, seq: u64, pt: &[u8]) -> Vec<u8> {
    let key = Key::from_material("K", KeyOrigin::CommandLine, &material(key_file));
    let aead = ChannelAead::new(&key.channel_key(channel.as_bytes()), Backend::default());
    let mut nonce = [0xA5u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let mut out = Vec::new();
    stanctl::crypto::envelope::seal(&aead, cipher, &nonce, pt, &mut out);
    out
}

/// A MsgProto as the server writes it: seq, subject, data (absent when
/// empty), timestamp.
pub fn msg(seq: u64, data: &[u8]) -> Vec<u8> {
    use stanctl::format::proto::write_varint;
    let mut m = vec![0x08];
    write_varint(&mut m, seq);
    m.extend_from_slice(b"\x12\x04edge");
    if !data.is_empty() {
        m.push(0x22);
        write_varint(&mut m, data.len() as u64);
        m.extend_from_slice(data);
    }
    m.push(0x28);
    write_varint(&mut m, 1_700_000_000_000_000_000 + seq);
    m
}

/// One part of a slice's data file.
pub enum Part {
    Msg(u64, Vec<u8>),
    Zeros(usize),
}

/// Writes `dir/msgs.N.dat` and its `.idx` as the server would: one index
/// entry per message record, wherever it sits.
pub fn write_slice(dir: &Path, n: u64, parts: &[Part]) {
    std::fs::create_dir_all(dir).unwrap();
    let crc = Crc32::ieee();
    let mut dat = 1u32.to_le_bytes().to_vec();
    let mut idx = 1u32.to_le_bytes().to_vec();
    for p in parts {
        match p {
            Part::Msg(seq, data) => {
                let m = msg(*seq, data);
                let e = IndexEntry::new(
                    *seq,
                    dat.len() as u64,
                    1_700_000_000_000_000_000 + *seq as i64,
                    m.len() as u32,
                    &crc,
                );
                idx.extend_from_slice(&e.to_bytes());
                stanctl::format::record::write_record(&mut dat, 0, crc.checksum(&m), &m);
            }
            Part::Zeros(n) => dat.extend(std::iter::repeat_n(0u8, *n)),
        }
    }
    std::fs::write(dir.join(format!("msgs.{n}.dat")), dat).unwrap();
    std::fs::write(dir.join(format!("msgs.{n}.idx")), idx).unwrap();
}

/// Deterministic bytes that never start with 1 or 2.
pub fn bytes(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) | 0x40)
        .collect()
}

/// The record payloads (MsgProto bytes) of a data file, in order.
pub fn payloads(dat: &[u8]) -> Vec<Vec<u8>> {
    stanctl::format::record::Records::new(dat, false)
        .filter_map(|e| match e {
            stanctl::format::record::Event::Record(r) => Some(r.payload.to_vec()),
            _ => None,
        })
        .collect()
}

pub fn damage_kinds(v: &Value) -> Vec<String> {
    v["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ------------------------------------------------------- write failures

pub fn no_temp_files(s: &Path) -> bool {
    snapshot(s).keys().all(|k| !k.ends_with(".stanctl-tmp")) && no_staging_dirs(s)
}

/// No channel directory holds a `--one-pass` staging directory (an empty
/// one included: `snapshot` lists only files).
pub fn no_staging_dirs(s: &Path) -> bool {
    std::fs::read_dir(s)
        .unwrap()
        .all(|e| !e.unwrap().path().join(".stanctl-staging").exists())
}
