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
