//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses a different subset

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

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

pub fn k1() -> String {
    fixtures().join("k1.key").display().to_string()
}

pub fn k2() -> String {
    fixtures().join("k2.key").display().to_string()
}

pub fn d(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A private copy of a conformance store, in `tmp/store`.
pub fn store(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&conformance(name), &dir);
    (tmp, dir)
}

/// The binary, with no key or test hook inherited from the environment.
pub fn stanctl() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("stanctl").unwrap();
    c.env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env_remove("STANCTL_TEST_ABORT_AT_STEP")
        .env("RUST_BACKTRACE", "0")
        .timeout(std::time::Duration::from_secs(120));
    c
}

/// Runs the binary; its output must not show key material.
pub fn run(args: &[&str]) -> std::process::Output {
    let out = stanctl().args(args).output().unwrap();
    assert_no_secrets(&out);
    out
}

pub fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn ok(args: &[&str]) {
    let o = run(args);
    assert!(o.status.success(), "{args:?} failed: {}", err(&o));
}

/// Every file of a store, by relative path, except the lock file (taking the
/// lock creates it, as the server does).
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().unwrap() != ".rootdir.lck" {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut m = std::collections::BTreeMap::new();
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
pub fn run_with_file_limit(args: &[&str], max_bytes: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("stanctl"));
    c.args(args)
        .env_remove("NATS_STREAMING_ENCRYPTION_KEY")
        .env_remove("STANCTL_TEST_ABORT_AT_STEP")
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
    let out = c.output().unwrap();
    assert_no_secrets(&out);
    out
}
