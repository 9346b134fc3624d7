//! `--keep-damaged`'s guard: before the result counts, verify's model runs
//! on the store before and after, and the server's verdict on every kept
//! record (and whether it starts at all) must not change.

use super::*;
use crate::ops::verify::{self, Line, Verdict, VerifyOptions};

/// The server options the guard compares under: the defaults, no
/// read-ahead, no CRC, truncate-on-EOF. Encryption off: the file store's
/// verdict and the bytes it delivers (a kept record's bytes are the same,
/// so any key gives it the same verdict after as before).
fn settings(crc: &Crc32, backend: Backend) -> Vec<VerifyOptions> {
    let base = VerifyOptions {
        encryption: false,
        cipher: Cipher::Aes,
        crc: crc.clone(),
        truncate_on_eof: false,
        file_crc: true,
        read_buffer_size: verify::DEFAULT_READ_BUFFER_SIZE,
        list: true,
        backend,
    };
    vec![
        base.clone(),
        VerifyOptions {
            read_buffer_size: 0,
            ..base.clone()
        },
        VerifyOptions {
            file_crc: false,
            ..base.clone()
        },
        VerifyOptions {
            truncate_on_eof: true,
            ..base
        },
    ]
}

/// Each message's outcome, by (channel, seq).
type Outcomes = BTreeMap<(String, u64), String>;

/// The run's sink as the guard's passes see it: its stop request, not its
/// progress (the guard's write and verify's runs are not the run's phases).
pub(super) struct StopOnly<'s>(pub(super) &'s dyn Sink);

impl Sink for StopOnly<'_> {
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

/// The guard's scratch copy of an in-place salvage: one name per store
/// (`$TMPDIR/stanctl-guard-<hash of its path>`), so that a run, which
/// holds the store's lock, removes what an interrupted one left there.
/// The temporary directory must exist (it is not created).
pub(super) fn scratch_dir(root: &Path) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    let tmp = std::env::temp_dir();
    match fs::metadata(&tmp) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(scratch_failed(std::io::ErrorKind::NotADirectory.into())),
        Err(e) => return Err(scratch_failed(e)),
    }
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let h = Sha256::digest(root.as_os_str().as_bytes());
    let name: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(tmp.join(format!("stanctl-guard-{name}")))
}

/// The temporary directory failed the scratch copy.
pub(super) fn scratch_failed(source: std::io::Error) -> Error {
    Error::TempDir(crate::ops::spill::TempDirFailed {
        dir: std::env::temp_dir(),
        source,
        used_for: crate::ops::spill::TempUse::GuardScratch,
    })
}

/// Removes everything in `out` but the staging directory that marks it
/// unfinished (removed last, by `Staging`'s drop).
pub(super) fn empty_but_marker(out: &Path) -> Result<()> {
    let entries = match fs::read_dir(out) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(write::io(out)(e)),
    };
    for ent in entries {
        let p = ent.map_err(write::io(out))?.path();
        if p.file_name() == Some(std::ffi::OsStr::new(STAGING_DIR)) {
            continue;
        }
        match fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            true => fs::remove_dir_all(&p).map_err(write::io(&p))?,
            false => fs::remove_file(&p).map_err(write::io(&p))?,
        }
    }
    Ok(())
}

/// (starts, MSG outcome per (channel, seq)) under `opts`; None when the
/// operator asked to stop (the result would lack slices).
fn verdicts(dir: &Path, opts: &VerifyOptions, sink: &dyn Sink) -> Result<Option<(bool, Outcomes)>> {
    let layout = StoreLayout::discover(dir)?;
    let r = verify::run(&layout, None, opts, sink)?;
    if sink.cancelled() {
        return Ok(None);
    }
    let all = r
        .lines
        .to_vec()
        .map_err(crate::ops::spill::temp_dir_failed)?;
    let lines = all
        .into_iter()
        .filter_map(|l| match l {
            Line::Msg {
                channel,
                seq,
                outcome,
            } => Some(((channel, seq), format!("{outcome:?}"))),
            _ => None,
        })
        .collect();
    Ok(Some((r.verdict != Verdict::WillNotStart, lines)))
}

/// Compares the source and the rewritten copy; one refusal per kept item
/// whose verdict changes (and one if the server would start on one and
/// not on the other). None when `sink` asks to stop.
pub(super) fn check_kept(
    src: &Path,
    out: &Path,
    kept: &[Kept],
    crc: &Crc32,
    backend: Backend,
    sink: &dyn Sink,
) -> Result<Option<Vec<Refusal>>> {
    let mut refused = Vec::new();
    for opts in settings(crc, backend) {
        let Some((start_a, a)) = verdicts(src, &opts, sink)? else {
            return Ok(None);
        };
        let Some((start_b, b)) = verdicts(out, &opts, sink)? else {
            return Ok(None);
        };
        let what = GuardSetting {
            file_crc: opts.file_crc,
            read_buffer_size: opts.read_buffer_size,
            truncate_on_eof: opts.truncate_on_eof,
        };
        if start_a != start_b {
            refused.push(Refusal {
                archived: false,
                channel: String::new(),
                file: String::new(),
                seq: None,
                offset: None,
                reason: Refused::VerdictWouldChange(what),
            });
            continue;
        }
        for k in kept {
            let seqs = match (k.seq, k.range) {
                (Some(s), _) => s..=s,
                (None, Some((f, l))) => f..=l,
                (None, None) => continue,
            };
            for seq in seqs {
                let key = (k.channel.clone(), seq);
                if a.get(&key) != b.get(&key) {
                    refused.push(Refusal {
                        archived: false,
                        channel: k.channel.clone(),
                        file: k.file.clone(),
                        seq: Some(seq),
                        offset: k.offset,
                        reason: Refused::VerdictWouldChange(what),
                    });
                }
            }
        }
    }
    Ok(Some(refused))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Silent;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/conformance")
            .join(name)
    }

    fn kept_18() -> Vec<Kept> {
        vec![Kept {
            channel: "orders".into(),
            file: "orders/msgs.2.dat".into(),
            seq: Some(18),
            offset: None,
            len: 0,
            what: KeptWhat::Tail,
            range: None,
            archived: false,
        }]
    }

    /// The same bytes give the same verdicts; a record that reads
    /// differently after the rewrite is refused, under every setting where
    /// its verdict differs.
    #[test]
    fn a_changed_verdict_on_a_kept_record_is_refused() {
        let crc = Crc32::ieee();
        let b = Backend::default();
        let same = check_kept(
            &fixture("damaged-crc"),
            &fixture("damaged-crc"),
            &kept_18(),
            &crc,
            b,
            &Silent,
        )
        .unwrap()
        .unwrap();
        assert!(same.is_empty());
        // aes holds seq 18 intact: with CRCs on it is delivered there, and
        // fails in damaged-crc.
        let changed = check_kept(
            &fixture("damaged-crc"),
            &fixture("aes"),
            &kept_18(),
            &crc,
            b,
            &Silent,
        )
        .unwrap()
        .unwrap();
        assert!(!changed.is_empty());
        assert!(changed.iter().all(|r| r.seq == Some(18)));
        assert!(changed
            .iter()
            .any(|r| matches!(r.reason, Refused::VerdictWouldChange(g) if g.file_crc)));
        // A store the server refuses against one it starts on.
        let refused = check_kept(
            &fixture("damaged-truncated"),
            &fixture("aes"),
            &[],
            &crc,
            b,
            &Silent,
        )
        .unwrap()
        .unwrap();
        assert!(!refused.is_empty());
    }
}
