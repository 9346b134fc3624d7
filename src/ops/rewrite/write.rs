//! The write: temp files, fsync, and the swap that keeps the store readable.

use super::*;
use crate::crypto::nonce::NonceHasher;
use crate::format::writeback;
use std::os::unix::fs::DirBuilderExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Test-only crash hook, compiled only with the `test-hooks` feature (on in
/// `cargo test` builds, never in `cargo build`/`install`): with
/// `STANCTL_TEST_ABORT_AT_STEP=N` in the environment the process aborts right
/// before its N-th write step (each create, write+fsync, unlink, rename and
/// directory fsync counts one, from 1). The crash-safety tests use it to stop
/// the run at every step.
#[cfg(feature = "test-hooks")]
pub(super) fn step() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static STEPS: AtomicU64 = AtomicU64::new(0);
    static ABORT_AT: OnceLock<Option<u64>> = OnceLock::new();
    let at = *ABORT_AT.get_or_init(|| {
        std::env::var("STANCTL_TEST_ABORT_AT_STEP")
            .ok()?
            .parse()
            .ok()
    });
    let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if at == Some(n) {
        std::process::abort();
    }
}

/// Without the `test-hooks` feature a write step is just the step.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(super) fn step() {}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn fsync_dir(dir: &Path) -> Result<()> {
    step();
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

pub(super) fn mode_of(p: &Path) -> Result<u32> {
    Ok(fs::metadata(p).map_err(io(p))?.permissions().mode() & 0o7777)
}

/// What a new file takes from the one it replaces: permissions and owner.
/// A store rewritten by root must stay readable and writable by the user
/// the server runs as.
#[derive(Clone, Copy)]
pub(super) struct Like {
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Like {
    pub(super) fn mode(&self) -> u32 {
        self.mode
    }
}

pub(super) fn like(p: &Path) -> Result<Like> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p).map_err(io(p))?;
    Ok(Like {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

/// Gives `f` the owner of the original. Only root may give a file away;
/// anyone else gets a warning when the owner differs.
pub(super) fn keep_owner(f: &File, path: &Path, like: Like, sink: &dyn Sink) {
    if let Err(error) = std::os::unix::fs::fchown(f, Some(like.uid), Some(like.gid)) {
        sink.warn(Warning::OwnerNotKept {
            path: path.to_path_buf(),
            uid: like.uid,
            gid: like.gid,
            error,
        });
    }
}

/// Creates `path` (truncating a leftover) with the permissions and owner of
/// the file it replaces, whatever the umask.
pub(super) fn create(path: &Path, like: Like, sink: &dyn Sink) -> Result<Out> {
    let mode = like.mode;
    step();
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    keep_owner(&f, path, like, sink);
    Ok(BufWriter::with_capacity(WRITE_CHUNK, NewFile::new(f)))
}

/// The new records of a slice reach the file in writes of at least this
/// many bytes (`Bufs::record`), which pass the `BufWriter` by: the records
/// are built where they are written from, not copied again.
const WRITE_CHUNK: usize = 1 << 20;

/// A file being written by a rewrite, buffered.
pub(super) type Out = BufWriter<NewFile>;

/// Flushes the file, starts the writeback of its last pages and, with
/// `Durability::EachFile`, fsyncs it.
pub(super) fn finish(w: Out, path: &Path, sync: Durability) -> Result<()> {
    step();
    let mut nf = w.into_inner().map_err(|e| io(path)(e.into_error()))?;
    nf.start_writeback(true);
    match sync {
        Durability::EachFile => nf.file.sync_all().map_err(io(path)),
        Durability::AtEnd => Ok(()),
    }
}

/// A new file that starts the writeback of what it was given every
/// `writeback::STEP` bytes, without waiting for it. The kernel would
/// otherwise leave the pages dirty in memory until the final `syncfs` (or
/// the slice's fsync, in place), which then writes them all while nothing
/// else happens; started early, the writeback overlaps the rest of the
/// rewrite. Only a hint: durability still comes from that fsync or
/// `syncfs`, which also reports any write error.
pub(super) struct NewFile {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes whose writeback has been started.
    started: u64,
}

impl NewFile {
    fn new(file: File) -> Self {
        NewFile {
            file,
            written: 0,
            started: 0,
        }
    }

    /// Starts writing back what was written since the last call (`all`:
    /// to the end of the file, which is complete).
    fn start_writeback(&mut self, all: bool) {
        let len = if all {
            0 // to the end of the file
        } else {
            self.written - self.started
        };
        writeback::start(&self.file, self.started, len);
        self.started = self.written;
    }
}

impl Write for NewFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= writeback::STEP {
            self.start_writeback(false);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// When written files reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// fsync each file before going on: in place, where a slice is swapped
    /// in only once its new files are on disk.
    EachFile,
    /// One `syncfs` of the output's file system when everything is written
    /// (`--output`, which is not resumable: a partial copy is deleted, so the
    /// order in which its files reach the disk does not matter). One journal
    /// commit instead of one per file, and the writeback overlaps the work.
    AtEnd,
}

/// Makes everything written to the file system holding `dir` durable.
pub(super) fn syncfs(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    step();
    let d = File::open(dir).map_err(io(dir))?;
    // SAFETY: a valid open descriptor; syncfs has no other precondition.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io(dir)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Buffers reused for every record a thread rewrites.
#[derive(Default)]
pub(super) struct Bufs {
    plain: Vec<u8>,
    /// New records of the slice not yet written to its .dat (`emit` writes
    /// them once they reach `WRITE_CHUNK` bytes, `flush_records` the rest).
    record: Vec<u8>,
    /// The nonce hasher, reused from record to record (wiped when dropped).
    nonce: Option<NonceHasher>,
}

/// A slice to rewrite: its mapped data file and the check's decisions.
pub(super) struct Source<'a> {
    pub(super) keys: &'a ChannelKeys,
    pub(super) actions: &'a Actions,
    /// Called with the offset read up to, to give back the pages behind it.
    pub(super) release: &'a dyn Fn(u64),
    pub(super) dat: &'a [u8],
    pub(super) dat_path: &'a Path,
}

/// The write pass met a record the check did not see. Not a refusal: other
/// slices may already be written, so an I/O-class error (exit 74) whose
/// message says what happened.
fn store_changed(dat_path: &Path, what: String) -> Error {
    Error::Io {
        path: dat_path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}; the store changed since the check (is something else writing to it?)"),
        ),
    }
}

/// Both new files start with the file version.
fn write_versions(dat_out: &mut impl Write, idx_out: &mut impl Write) -> std::io::Result<()> {
    dat_out.write_all(&record::version_bytes())?;
    idx_out.write_all(&record::version_bytes())
}

/// Streams the rewritten slice: each record with only field 4 changed as the
/// check decided, then their index. Returns an error only if the store
/// changed since the check.
pub(super) fn rewrite_records(
    job: &Job,
    src: Source<'_>,
    bufs: &mut Bufs,
    dat_out: &mut impl Write,
    idx_out: &mut impl Write,
) -> Result<()> {
    let Source {
        keys,
        actions,
        release,
        dat,
        dat_path,
    } = src;
    let changed = |what: String| store_changed(dat_path, what);
    let wio = |e: std::io::Error| io(dat_path)(e);
    write_versions(dat_out, idx_out).map_err(wio)?;
    bufs.record.clear();
    let mut offset = VERSION_LEN as u64;
    let mut planned = actions.iter();
    let mut released = 0u64;
    for ev in Records::new(dat, false) {
        let r = match ev {
            Event::Record(r) => r,
            // All zeros (the check refused anything else): dropped.
            Event::ZeroPadding { .. } => break,
            Event::Truncated { offset: at, .. } => {
                return Err(changed(format!("record cut short at offset {at}")))
            }
        };
        let m = r.message().map_err(|e| changed(e.to_string()))?;
        if r.offset - released >= 8 << 20 {
            release(r.offset);
            released = r.offset;
        }
        let Some(p) = planned.next().filter(|p| p.seq == m.sequence) else {
            return Err(changed(format!("seq {} was not checked", m.sequence)));
        };
        let rec = Converting {
            r: &r,
            m: &m,
            action: p.action,
            opened: None,
        };
        let out = (&mut *dat_out, &mut *idx_out);
        offset += emit(job, keys, rec, bufs, out, offset, &changed).map_err(wio)??;
    }
    if planned.next().is_some() {
        return Err(changed("fewer records than checked".into()));
    }
    flush_records(bufs, dat_out).map_err(wio)
}

/// One record to convert as the plan decided.
pub(super) struct Converting<'a, 'r> {
    pub(super) r: &'a record::Record<'r>,
    pub(super) m: &'a proto::MsgView<'r>,
    pub(super) action: Action,
    /// The plaintext of the envelope, when the caller already opened it
    /// with the key the action names (the one-pass check); else `convert`
    /// opens it.
    pub(super) opened: Option<&'a [u8]>,
}

/// Converts one record (`convert`) and appends it and its index entry at
/// `offset` of the new data file: the one place both the write pass and the
/// one-pass check emit a record. Returns the record's length on disk; the
/// outer error is the writers', the inner one `convert`'s. The record may
/// wait in `bufs` until `flush_records`, which the caller calls at the end
/// of the slice.
pub(super) fn emit(
    job: &Job,
    keys: &ChannelKeys,
    rec: Converting<'_, '_>,
    bufs: &mut Bufs,
    (dat_out, idx_out): (&mut impl Write, &mut impl Write),
    offset: u64,
    changed: &dyn Fn(String) -> Error,
) -> std::io::Result<Result<u64>> {
    let (seq, timestamp) = (rec.m.sequence, rec.m.timestamp);
    let base = bufs.record.len();
    let size = match convert(job, keys, rec, bufs, changed) {
        Ok(s) => s,
        Err(e) => {
            bufs.record.truncate(base);
            return Ok(Err(e));
        }
    };
    let len = (bufs.record.len() - base) as u64;
    let e = IndexEntry::new(seq, offset, timestamp, size, &job.crc);
    idx_out.write_all(&e.to_bytes())?;
    if bufs.record.len() >= WRITE_CHUNK {
        flush_records(bufs, dat_out)?;
    }
    Ok(Ok(len))
}

/// Writes the records `emit` left in `bufs`.
pub(super) fn flush_records(bufs: &mut Bufs, dat_out: &mut impl Write) -> std::io::Result<()> {
    dat_out.write_all(&bufs.record)?;
    bufs.record.clear();
    Ok(())
}

/// The record's new payload and CRC, as the plan decided: the record's own
/// for `Keep`, else the payload with field 4 replaced.
/// The whole new record is appended to `bufs.record`; returns its payload's size.
fn convert(
    job: &Job,
    keys: &ChannelKeys,
    rec: Converting<'_, '_>,
    bufs: &mut Bufs,
    changed: &dyn Fn(String) -> Error,
) -> Result<u32> {
    let Converting {
        r,
        m,
        action,
        opened: pre,
    } = rec;
    let Bufs {
        plain,
        record: out,
        nonce,
    } = bufs;
    let base = out.len();
    // Room for the header, written once the payload (and its CRC) is known.
    out.extend_from_slice(&[0; record::HEADER_LEN]);
    let sealer = || keys.nonces.as_ref().map(|n| (&keys.aeads[0], n));
    let opened = |key: u8, plain: &mut Vec<u8>| -> Result<usize> {
        let aead = keys.aeads.get(key as usize);
        match (envelope::classify(m.data), aead) {
            (PayloadKind::Envelope(c), Some(a)) => envelope::open(a, c, m.data, plain)
                .map(<[u8]>::len)
                .ok_or_else(|| {
                    changed(format!(
                        "seq {}: the checked key no longer opens it",
                        m.sequence
                    ))
                }),
            _ => Err(changed(format!(
                "seq {}: no longer an envelope",
                m.sequence
            ))),
        }
    };
    // The payload is built after the header room: the record's own, or
    // its fields with field 4 replaced (a new envelope sealed in place).
    let field = m.data_field.clone();
    let mut seal = |cipher: Cipher, pt: &[u8], out: &mut Vec<u8>| {
        let (aead, nonces) = sealer().expect("a sealing run derives nonces");
        let n = nonces.nonce_with(nonce, cipher, m.sequence, pt);
        let len = pt.len() + OVERHEAD;
        proto::append_replaced_with(r.payload, field.clone(), len, out, |o| {
            envelope::seal_append(aead, cipher, &n, pt, o)
        });
    };
    match action {
        Action::Keep | Action::Verbatim => {
            out.truncate(base);
            record::write_record(out, 0, r.crc, r.payload);
            return Ok(r.payload.len() as u32);
        }
        Action::Decrypt { key } => {
            let pt = match pre {
                Some(pt) => pt,
                None => {
                    let n = opened(key, plain)?;
                    &plain[..n]
                }
            };
            proto::append_replaced_data(r.payload, field, pt, out);
        }
        Action::Encrypt(cipher) => seal(cipher, m.data, out),
        Action::Rekey { key, cipher } => {
            let pt = match pre {
                Some(pt) => pt,
                None => {
                    let len = opened(key, plain)?;
                    &plain[..len]
                }
            };
            seal(cipher, pt, out);
        }
    }
    let payload = &out[base + record::HEADER_LEN..];
    let (len, crc) = (payload.len(), job.crc.checksum(payload));
    out[base..base + record::HEADER_LEN].copy_from_slice(&record::header_bytes(0, crc, len));
    Ok(len as u32)
}

/// Where a one-pass run stages the slices it writes during the check:
/// `OUT/.stanctl-staging/<channel>/msgs.N.{dat,idx}` with `--output` (its
/// presence marks OUT as the output of a run that did not finish, see
/// `check_output`), `<channel>/.stanctl-staging/` in place (`--one-pass`,
/// see `stage`).
pub use crate::format::layout::STAGING_DIR;

/// The staging of a one-pass run. With `--output`, until the commit begins
/// (`commit_begins`), dropping it removes what it staged, and OUT (with
/// its parents) when this run created it: a refused run, or one that
/// failed during the check, leaves no trace. In place, dropping it always
/// removes each channel's staging directory: what is still there was never
/// swapped in (see `stage`).
pub(super) struct Staging {
    /// `OUT/.stanctl-staging`; None in place (each channel stages in its
    /// own directory).
    pub(super) dir: Option<PathBuf>,
    /// In place: the staging directories this run may have created.
    pub(super) in_place: Vec<PathBuf>,
    /// OUT and its parents that this run creates, deepest first.
    made: Vec<PathBuf>,
    committing: bool,
}

impl Staging {
    pub(super) fn create(out: &Path, root: &Path) -> Result<Staging> {
        let made = out
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        let dir = out.join(STAGING_DIR);
        let s = Staging {
            dir: Some(dir.clone()),
            in_place: Vec::new(),
            made,
            committing: false,
        };
        make_dir(out, root)?;
        step();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        Ok(s)
    }

    /// In place: stage in each channel's own directory (see `stage`).
    pub(super) fn in_store(channels: Vec<PathBuf>) -> Staging {
        Staging {
            dir: None,
            in_place: channels,
            made: Vec::new(),
            committing: false,
        }
    }

    /// Where the slices of `ch` are staged.
    pub(super) fn dir_for(&self, ch: &ChannelLayout) -> PathBuf {
        match &self.dir {
            Some(d) => d.join(ch.dir.file_name().unwrap_or_default()),
            None => ch.dir.join(STAGING_DIR),
        }
    }

    /// From here on the output is being written: a failure or a crash
    /// leaves a partial copy, which the staging directory marks.
    pub(super) fn commit_begins(&mut self) {
        self.committing = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for d in &self.in_place {
            let _ = fs::remove_dir_all(d);
        }
        if let (Some(dir), false) = (&self.dir, self.committing) {
            let _ = fs::remove_dir_all(dir);
            for d in &self.made {
                let _ = fs::remove_dir(d);
            }
        }
    }
}

/// A slice staged by a one-pass check: its new .dat and (unless it is an
/// archived slice without an index) its new index.
pub(super) type Staged = (PathBuf, Option<PathBuf>);

/// One-pass `--output`: the check hands each record it plans to `put`,
/// which converts it (with the plaintext the check already opened) and
/// appends it and its index entry to the slice's staged files, exactly as
/// the write pass would (`emit`). A refused record abandons the slice.
pub(super) struct Stager<'j> {
    job: &'j Job<'j>,
    keys: &'j ChannelKeys,
    src: (PathBuf, Option<PathBuf>),
    dat_to: PathBuf,
    /// None for an archived slice without an index (see `writes_index`).
    idx_to: Option<PathBuf>,
    files: Option<(Out, Option<Out>)>,
    offset: u64,
    bufs: Bufs,
    abandoned: bool,
    error: Option<Error>,
    /// Records planned `Keep` before the first that changes, not written
    /// yet: a slice the check leaves as it is stages nothing (a rerun of a
    /// finished run writes nothing), and one that changes further on
    /// writes them from the source first (`replay`).
    held: u64,
}

impl<'j> Stager<'j> {
    pub(super) fn new(job: &'j Job<'j>, keys: &'j ChannelKeys, sf: &SliceFiles, to: &Path) -> Self {
        let name = |p: &Path| to.join(p.file_name().unwrap_or_default());
        Stager {
            job,
            keys,
            src: (sf.dat.clone(), sf.idx.clone()),
            dat_to: name(&sf.dat),
            idx_to: writes_index(sf).then(|| name(&idx_path(sf))),
            files: None,
            offset: VERSION_LEN as u64,
            bufs: Bufs::default(),
            abandoned: false,
            error: None,
            held: 0,
        }
    }

    fn open(&mut self) -> Result<()> {
        if self.files.is_some() {
            return Ok(());
        }
        let dir = self.dat_to.parent().expect("a file in the staging dir");
        // Only stanctl reads it (in place: the server skips it).
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let dat_like = like(&self.src.0)?;
        let idx_like = match &self.src.1 {
            Some(p) => like(p)?,
            None => dat_like,
        };
        let mut d = create(&self.dat_to, dat_like, self.job.sink)?;
        let mut i = match &self.idx_to {
            Some(p) => Some(create(p, idx_like, self.job.sink)?),
            None => None,
        };
        let mut no_index = std::io::sink();
        let mut idx_out: &mut dyn Write = match &mut i {
            Some(w) => w,
            None => &mut no_index,
        };
        write_versions(&mut d, &mut idx_out).map_err(io(&self.dat_to))?;
        self.files = Some((d, i));
        Ok(())
    }

    /// Converts and stages one planned record; `opened` is the plaintext
    /// the check opened with the key the action names.
    pub(super) fn put(
        &mut self,
        r: &record::Record<'_>,
        m: &proto::MsgView<'_>,
        action: Action,
        opened: Option<&[u8]>,
    ) {
        if self.abandoned || self.error.is_some() {
            return;
        }
        if self.files.is_none() && action == Action::Keep {
            self.held += 1;
            return;
        }
        // Open, with the records held back written, once (both are no-ops after).
        let ready = match self.files.is_none() || self.held > 0 {
            true => self.open().and_then(|()| self.replay(r.offset)),
            false => Ok(()),
        };
        let appended = ready.and_then(|()| self.append(r, m, action, opened));
        if let Err(e) = appended {
            self.error = Some(e);
        }
    }

    /// Writes the records held back (see `held`), read again from the
    /// source: every record before `upto`, all of them `Keep`.
    fn replay(&mut self, upto: u64) -> Result<()> {
        let held = std::mem::take(&mut self.held);
        if held == 0 {
            return Ok(());
        }
        let src = Mapped::open(&self.src.0)?;
        let (mut n, mut released) = (0u64, 0u64);
        for ev in Records::new(src.bytes(), false) {
            let Event::Record(r) = ev else { break };
            if n == held || r.offset >= upto {
                break;
            }
            if r.offset - released >= 8 << 20 {
                src.release_before(r.offset);
                released = r.offset;
            }
            let m = r
                .message()
                .map_err(|e| store_changed(&self.src.0, e.to_string()))?;
            self.append(&r, &m, Action::Keep, None)?;
            n += 1;
        }
        if n != held {
            let what = format!("{n} record(s) before the first change, {held} checked");
            return Err(store_changed(&self.src.0, what));
        }
        Ok(())
    }

    /// Converts one record and appends it to the open staged files.
    fn append(
        &mut self,
        r: &record::Record<'_>,
        m: &proto::MsgView<'_>,
        action: Action,
        opened: Option<&[u8]>,
    ) -> Result<()> {
        let dat_path = &self.src.0;
        let changed = |what: String| store_changed(dat_path, what);
        let rec = Converting {
            r,
            m,
            action,
            opened,
        };
        let (d, i) = self.files.as_mut().expect("opened above");
        let mut no_index = std::io::sink();
        let mut idx_out: &mut dyn Write = match i {
            Some(w) => w,
            None => &mut no_index,
        };
        match emit(
            self.job,
            self.keys,
            rec,
            &mut self.bufs,
            (d, &mut idx_out),
            self.offset,
            &changed,
        ) {
            Ok(Ok(n)) => {
                self.offset += n;
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(io(&self.dat_to)(e)),
        }
    }

    /// The slice is refused: nothing more is written, the files go.
    pub(super) fn abandon(&mut self) {
        self.abandoned = true;
    }

    /// Ends the slice: with `keep` (the check rewrites it, and refused
    /// nothing), the staged files (the records held back written first),
    /// flushed (made durable by the output's
    /// final `syncfs`); otherwise they are removed and None is returned.
    pub(super) fn finish(mut self, keep: bool, dat_len: u64) -> Result<Option<Staged>> {
        if let Some(e) = self.error.take() {
            self.discard();
            return Err(e);
        }
        if !keep || self.abandoned {
            self.discard();
            return Ok(None);
        }
        if let Err(e) = self.open().and_then(|()| self.replay(u64::MAX)) {
            self.discard();
            return Err(e);
        }
        debug_assert_eq!(self.offset, dat_len, "the check's length of the new .dat");
        let (mut d, i) = self.files.take().expect("opened above");
        let r = flush_records(&mut self.bufs, &mut d)
            .map_err(io(&self.dat_to))
            .and_then(|()| finish(d, &self.dat_to, Durability::AtEnd))
            .and_then(|()| match (i, &self.idx_to) {
                (Some(i), Some(p)) => finish(i, p, Durability::AtEnd),
                _ => Ok(()),
            });
        if let Err(e) = r {
            self.discard();
            return Err(e);
        }
        Ok(Some((self.dat_to.clone(), self.idx_to.clone())))
    }

    fn discard(&mut self) {
        if self.files.take().is_some() {
            let _ = fs::remove_file(&self.dat_to);
            if let Some(p) = &self.idx_to {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Salvage (`--keep-damaged`): the records framed where the plan says (the
/// index's offsets and sizes), kept ones copied byte for byte with their
/// index size, the others converted with a correct header; then the tail
/// as it is, and an index with every record's new offset.
pub(super) fn rewrite_framed(
    job: &Job,
    src: Source<'_>,
    tail_from: u64,
    bufs: &mut Bufs,
    dat_out: &mut impl Write,
    idx_out: &mut impl Write,
) -> Result<()> {
    let Source {
        keys,
        actions,
        dat,
        dat_path,
        ..
    } = src;
    let changed = |what: String| store_changed(dat_path, what);
    let wio = |e: std::io::Error| io(dat_path)(e);
    write_versions(dat_out, idx_out).map_err(wio)?;
    let mut offset = VERSION_LEN as u64;
    for p in actions.iter() {
        let f = p.frame.expect("salvage plans frame every record");
        let start = f.offset as usize;
        let end = start + record::HEADER_LEN + f.size as usize;
        let Some(bytes) = dat.get(start..end) else {
            return Err(changed(format!("seq {}: the record is gone", p.seq)));
        };
        let written = if p.action == Action::Verbatim {
            dat_out.write_all(bytes).map_err(wio)?;
            (bytes.len() as u64, f.size)
        } else {
            let h = record::Header::at(dat, start, false).expect("8 bytes are there");
            let r = record::Record {
                offset: f.offset,
                rtype: 0,
                crc: h.crc,
                payload: &bytes[record::HEADER_LEN..],
            };
            let m = r.message().map_err(|e| changed(e.to_string()))?;
            if m.sequence != p.seq {
                return Err(changed(format!("seq {} was not checked", m.sequence)));
            }
            let rec = Converting {
                r: &r,
                m: &m,
                action: p.action,
                opened: None,
            };
            bufs.record.clear();
            let size = convert(job, keys, rec, bufs, &changed)?;
            dat_out.write_all(&bufs.record).map_err(wio)?;
            (bufs.record.len() as u64, size)
        };
        let e = IndexEntry::new(p.seq, offset, f.timestamp, written.1, &job.crc);
        idx_out.write_all(&e.to_bytes()).map_err(wio)?;
        offset += written.0;
    }
    let tail = dat.get(tail_from as usize..).unwrap_or(&[]);
    dat_out.write_all(tail).map_err(wio)?;
    Ok(())
}

pub(super) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(p.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

pub(super) fn idx_path(sf: &SliceFiles) -> PathBuf {
    sf.idx_path()
}

/// Writes the rewritten slice to `dat_to` and `idx_to`, fsynced, with the
/// permissions of the originals.
pub(super) fn write_slice(
    job: &Job,
    ctx: &ChannelCtx<'_>,
    sf: &SliceFiles,
    plan: &SlicePlan,
    (dat_to, idx_to): (&Path, &Path),
    sync: Durability,
    bufs: &mut Bufs,
) -> Result<()> {
    let dat = Mapped::open(&sf.dat)?;
    let dat_like = like(&sf.dat)?;
    let idx_like = match &sf.idx {
        Some(p) => like(p)?,
        None => dat_like,
    };
    let mut d = create(dat_to, dat_like, job.sink)?;
    // An archived slice without an index gets none (see `writes_index`).
    let mut i = match writes_index(sf) {
        true => Some(create(idx_to, idx_like, job.sink)?),
        false => None,
    };
    let mut no_index = std::io::sink();
    let mut idx_out: &mut dyn Write = match &mut i {
        Some(w) => w,
        None => &mut no_index,
    };
    let src = Source {
        keys: &ctx.keys,
        actions: &plan.actions,
        release: &|at| dat.release_before(at),
        dat: dat.bytes(),
        dat_path: &sf.dat,
    };
    match plan.tail_from {
        Some(t) => rewrite_framed(job, src, t, bufs, &mut d, &mut idx_out)?,
        None => rewrite_records(job, src, bufs, &mut d, &mut idx_out)?,
    }
    finish(d, dat_to, sync)?;
    match i {
        Some(i) => finish(i, idx_to, sync),
        None => Ok(()),
    }
}

/// Swaps the new files in. At every instant the server can read the slice:
/// (a) the old index goes first, so the old .dat is never paired with a new
/// index nor the new .dat with the old one (the server rebuilds a missing
/// index from the .dat); (b) the new .dat replaces the old atomically;
/// (c) the new index arrives last. The directory is fsynced after each step
/// so the order also holds on disk after a power loss.
pub(super) fn swap_in(
    ch: &ChannelLayout,
    sf: &SliceFiles,
    dat_tmp: &Path,
    idx_tmp: &Path,
) -> Result<()> {
    let idx = idx_path(sf);
    if sf.archived {
        return swap_in_archived(ch, sf, dat_tmp, idx_tmp);
    }
    if let Some(old) = &sf.idx {
        step();
        fs::remove_file(old).map_err(io(old))?;
        fsync_dir(&ch.dir)?;
    }
    step();
    fs::rename(dat_tmp, &sf.dat).map_err(io(&sf.dat))?;
    fsync_dir(&ch.dir)?;
    step();
    fs::rename(idx_tmp, &idx).map_err(io(&idx))?;
    fsync_dir(&ch.dir)
}

/// An archived slice: the server never reads it, so no order keeps it
/// readable; the order keeps the pair whole for a rerun. Each file is
/// replaced by one rename (never removed first), the `.dat.bak` first: after
/// a crash in between, the new `.dat.bak` sits beside the old `.idx.bak`,
/// which the rerun finds out of date and writes again. An archived slice
/// without an index gets none.
fn swap_in_archived(
    ch: &ChannelLayout,
    sf: &SliceFiles,
    dat_tmp: &Path,
    idx_tmp: &Path,
) -> Result<()> {
    step();
    fs::rename(dat_tmp, &sf.dat).map_err(io(&sf.dat))?;
    fsync_dir(&ch.dir)?;
    if writes_index(sf) {
        let idx = idx_path(sf);
        step();
        fs::rename(idx_tmp, &idx).map_err(io(&idx))?;
        fsync_dir(&ch.dir)?;
    }
    Ok(())
}

pub(super) fn rewrite_in_place(
    job: &Job,
    ctx: &ChannelCtx<'_>,
    sf: &SliceFiles,
    plan: &SlicePlan,
    bufs: &mut Bufs,
) -> Result<()> {
    let ch = ctx.layout;
    let dat_tmp = with_suffix(&sf.dat, TEMP_SUFFIX);
    let idx_tmp = with_suffix(&idx_path(sf), TEMP_SUFFIX);
    // `--one-pass`: the check staged the new files (made durable before
    // the first swap); they are the temp files.
    if let Some((dat, idx)) = &plan.staged {
        return swap_in(ch, sf, dat, idx.as_deref().unwrap_or(&idx_tmp));
    }
    if let Err(e) = write_slice(
        job,
        ctx,
        sf,
        plan,
        (&dat_tmp, &idx_tmp),
        Durability::EachFile,
        bufs,
    ) {
        // Best effort: a failed write (disk full) leaves the originals as
        // they were; the next run would remove these anyway.
        let _ = fs::remove_file(&dat_tmp);
        let _ = fs::remove_file(&idx_tmp);
        return Err(e);
    }
    swap_in(ch, sf, &dat_tmp, &idx_tmp)
}

/// Leftovers of an interrupted run (temp files, a one-pass run's staging
/// directories): never swapped in, so safe to drop. A link is removed as
/// a link.
pub(super) fn remove_stale_temps(layout: &StoreLayout) -> Result<()> {
    for ch in &layout.channels {
        for t in &ch.temp {
            step();
            let is_dir = fs::symlink_metadata(t).is_ok_and(|m| m.is_dir());
            match is_dir {
                true => fs::remove_dir_all(t),
                false => fs::remove_file(t),
            }
            .map_err(io(t))?;
        }
        if !ch.temp.is_empty() {
            fsync_dir(&ch.dir)?;
        }
    }
    Ok(())
}

pub(super) type Work<'a, 'c> = Vec<(&'a ChannelCtx<'c>, &'a SliceFiles, &'a SlicePlan)>;

pub(super) fn work<'a, 'c>(
    ctxs: &'a [ChannelCtx<'c>],
    plans: &'a [Vec<SlicePlan>],
) -> Work<'a, 'c> {
    ctxs.iter()
        .zip(plans)
        .flat_map(|(c, ps)| {
            c.layout
                .slices
                .iter()
                .zip(ps)
                .map(move |(sf, p)| (c, sf, p))
        })
        .collect()
}

/// Rewrites the slices that change, in place (or, with `--one-pass`,
/// swaps in what the check staged: `staged`, whose run removed the
/// leftovers before it staged); returns how many were done (fewer than
/// planned only when the operator asked to stop).
pub(super) fn write_in_place(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    job: &Job,
    plans: &[Vec<SlicePlan>],
    staged: bool,
) -> Result<u64> {
    if !staged {
        remove_stale_temps(layout)?;
    }
    let done = AtomicU64::new(0);
    work(ctxs, plans)
        .into_par_iter()
        .filter(|w| w.2.rewrite)
        .try_for_each_init(Bufs::default, |bufs, (ctx, sf, plan)| {
            // The safe point: between slices. A slice in hand is finished
            // (and swapped in); none starts after the operator asked to stop.
            if job.sink.cancelled() {
                return Ok(());
            }
            rewrite_in_place(job, ctx, sf, plan, bufs)?;
            done.fetch_add(1, Ordering::Relaxed);
            job.sink.advance(plan.tally.bytes_before);
            Ok::<(), Error>(())
        })?;
    Ok(done.into_inner())
}

/// Copies a file with its permissions and owner (like `cp -p`); for
/// `--output`, made durable by the final `syncfs`.
pub(super) fn copy_file(from: &Path, to: &Path, sink: &dyn Sink) -> Result<()> {
    step();
    fs::copy(from, to).map_err(io(to))?;
    step();
    let f = File::open(to).map_err(io(to))?;
    writeback::start(&f, 0, 0);
    keep_owner(&f, to, like(from)?, sink);
    Ok(())
}

pub(super) fn make_dir(to: &Path, like: &Path) -> Result<()> {
    step();
    fs::create_dir_all(to).map_err(io(to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode_of(like)?)).map_err(io(to))
}

/// Files of `dir` copied as they are: everything but the lock files, our
/// temp files, and the slices in `skip` (written separately).
pub(super) fn copy_side_files(
    dir: &Path,
    to: &Path,
    skip: &[PathBuf],
    sink: &dyn Sink,
) -> Result<()> {
    for ent in fs::read_dir(dir).map_err(io(dir))? {
        let p = ent.map_err(io(dir))?.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let runtime = name == layout::LOCK_FILE || name == layout::TRUNCATE_LOCK_FILE;
        if p.is_dir() || runtime || name.ends_with(TEMP_SUFFIX) || skip.contains(&p) {
            continue;
        }
        // A FIFO or device would block or make no sense in a copy.
        if !fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            sink.warn(Warning::NotCopied { path: p });
            continue;
        }
        copy_file(&p, &to.join(p.file_name().unwrap_or_default()), sink)?;
    }
    Ok(())
}

pub(super) fn check_output(root: &Path, out: &Path) -> Result<()> {
    // `..` could walk back into the store once the missing part is created.
    if out
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::Usage(format!(
            "--output {}: give a path without `..`",
            out.display()
        )));
    }
    match fs::read_dir(out) {
        Ok(_) if interrupted_output(out) => {}
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::Usage(format!(
                    "--output {} exists and is not empty; give a new or empty directory",
                    out.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(out)(e)),
    }
    // Resolve the deepest existing ancestor: the output must not land inside
    // the source, which we promise not to touch.
    let src = fs::canonicalize(root).map_err(io(root))?;
    let mut anc = out.to_path_buf();
    while !anc.exists() {
        if !anc.pop() {
            break;
        }
    }
    let anc = fs::canonicalize(if anc.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &anc
    })
    .map_err(io(out))?;
    if anc.starts_with(&src) {
        return Err(Error::Usage(format!(
            "--output {} is inside the store; choose a directory outside it",
            out.display()
        )));
    }
    Ok(())
}

/// Writes the output: side files copied, each slice rewritten (or moved
/// into place from `staging`, where a one-pass check already wrote it) or
/// copied as it is; then one `syncfs`. The staging directory is removed
/// last, once everything is in place and durable.
/// Whether `out` is the output of a one-pass run that did not finish (a
/// crash, a signal, a failed write): it holds our staging directory.
pub(super) fn interrupted_output(out: &Path) -> bool {
    fs::symlink_metadata(out.join(STAGING_DIR)).is_ok_and(|m| m.is_dir())
}

/// Empties the output of a one-pass run that did not finish, so the rerun
/// writes it anew. Everything in it was written by that run: it started
/// from an empty directory.
pub(super) fn clear_interrupted_output(out: &Path) -> Result<()> {
    if !interrupted_output(out) {
        return Ok(());
    }
    for ent in fs::read_dir(out).map_err(io(out))? {
        let p = ent.map_err(io(out))?.path();
        step();
        let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        if is_dir {
            fs::remove_dir_all(&p).map_err(io(&p))?;
        } else {
            fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    fsync_dir(out)
}

pub(super) fn write_output(
    layout: &StoreLayout,
    ctxs: &[ChannelCtx<'_>],
    job: &Job,
    plans: &[Vec<SlicePlan>],
    out: &Path,
    staging: Option<&Path>,
) -> Result<u64> {
    make_dir(out, &layout.root)?;
    copy_side_files(&layout.root, out, &[], job.sink)?;
    for ch in &layout.channels {
        let to = out.join(ch.dir.file_name().unwrap_or_default());
        make_dir(&to, &ch.dir)?;
        let slices: Vec<PathBuf> = ch
            .slices
            .iter()
            .flat_map(|s| std::iter::once(s.dat.clone()).chain(s.idx.clone()))
            .collect();
        copy_side_files(&ch.dir, &to, &slices, job.sink)?;
    }
    let done = AtomicU64::new(0);
    work(ctxs, plans).into_par_iter().try_for_each_init(
        Bufs::default,
        |bufs, (ctx, sf, plan)| {
            if job.sink.cancelled() {
                return Ok(());
            }
            let to = out.join(ctx.layout.dir.file_name().unwrap_or_default());
            let name = |p: &Path| to.join(p.file_name().unwrap_or_default());
            if let Some((dat, idx)) = &plan.staged {
                let idx = idx.as_ref().map(|i| (i, name(&idx_path(sf))));
                for (from, to) in std::iter::once((dat, name(&sf.dat))).chain(idx) {
                    step();
                    fs::rename(from, &to).map_err(io(&to))?;
                }
            } else if plan.rewrite {
                let (dat_to, idx_to) = (name(&sf.dat), name(&idx_path(sf)));
                let to = (dat_to.as_path(), idx_to.as_path());
                write_slice(job, ctx, sf, plan, to, Durability::AtEnd, bufs)?;
            } else {
                copy_file(&sf.dat, &name(&sf.dat), job.sink)?;
                if let Some(i) = &sf.idx {
                    copy_file(i, &name(i), job.sink)?;
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
            job.sink.advance(plan.tally.bytes_before);
            Ok::<(), Error>(())
        },
    )?;
    syncfs(out)?;
    for ch in &layout.channels {
        fsync_dir(&out.join(ch.dir.file_name().unwrap_or_default()))?;
    }
    // Last: until the output is complete and durable, the staging directory
    // marks it as unfinished (a rerun then writes it anew).
    if let Some(dir) = staging {
        step();
        fs::remove_dir_all(dir).map_err(io(dir))?;
        if let Some(p) = dir.parent().filter(|p| *p != out) {
            fsync_dir(p)?;
        }
    }
    fsync_dir(out)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent)?;
    }
    Ok(done.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::KeyOrigin;
    use crate::format::record::Record;

    fn slice_with_one_message(seq: u64, data: &[u8]) -> Vec<u8> {
        let mut m = vec![0x08];
        proto::write_varint(&mut m, seq);
        m.extend_from_slice(b"\x12\x03foo\x22");
        proto::write_varint(&mut m, data.len() as u64);
        m.extend_from_slice(data);
        m.extend_from_slice(b"\x28\x01");
        let mut dat = record::version_bytes().to_vec();
        record::write_record(&mut dat, 0, Crc32::ieee().checksum(&m), &m);
        dat
    }

    fn write(actions: &[Planned], dat: &[u8]) -> (Result<()>, Vec<u8>) {
        let keys = [Key::from_material("K1", KeyOrigin::CommandLine, b"k")];
        let job = Job {
            keep_damaged: false,
            rule: Rule::Encrypt {
                cipher: Cipher::ChaCha,
            },
            keys: &keys,
            assume_plaintext: false,
            crc: Crc32::ieee(),
            backend: Backend::default(),
            sink: &crate::ops::Silent,
        };
        let ck = ChannelKeys::derive(&keys, b"ch", job.backend, true);
        let src = Source {
            keys: &ck,
            actions: &actions.iter().copied().collect(),
            release: &|_| {},
            dat,
            dat_path: Path::new("ch/msgs.1.dat"),
        };
        let (mut d, mut i) = (Vec::new(), Vec::new());
        let r = rewrite_records(&job, src, &mut Bufs::default(), &mut d, &mut i);
        // The new record opens with the key and cipher the plan named.
        if r.is_ok() {
            let Some(Event::Record(rec)) = Record::at(&d, VERSION_LEN as u64) else {
                panic!("no record written");
            };
            let m = rec.message().unwrap();
            assert_eq!(
                envelope::classify(m.data),
                PayloadKind::Envelope(Cipher::Aes)
            );
            let mut pt = Vec::new();
            let opened = envelope::open(&ck.aeads[0], Cipher::Aes, m.data, &mut pt);
            assert_eq!(opened, Some(&b"hello"[..]));
        }
        (r, d)
    }

    /// A new file starts the writeback of what it was given every
    /// `writeback::STEP` bytes and of the rest when finished, and holds
    /// exactly the bytes written, whether they came in small writes (through
    /// the buffer) or in chunks that pass it by.
    #[test]
    fn new_files_start_their_writeback_as_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let like = like(dir.path()).unwrap();
        let mut w = create(&path, like, &crate::ops::Silent).unwrap();
        let mut want = Vec::new();
        let small: Vec<u8> = (0..100u8).collect();
        let chunk: Vec<u8> = (0..WRITE_CHUNK).map(|i| (i % 251) as u8).collect();
        for i in 0..20 {
            w.write_all(&small).unwrap();
            w.write_all(&chunk).unwrap();
            want.extend_from_slice(&small);
            want.extend_from_slice(&chunk);
            let nf = w.get_ref();
            assert!(nf.written - nf.started < writeback::STEP, "step {i}");
        }
        let nf = w.get_ref();
        assert!(nf.started >= 2 * writeback::STEP, "{}", nf.started);
        finish(w, &path, Durability::EachFile).unwrap();
        assert_eq!(fs::read(&path).unwrap(), want);
    }

    /// The write pass seals with the cipher the check decided (AES here,
    /// though the rule's is ChaCha: the plan, not the rule, is replayed).
    #[test]
    fn the_write_pass_replays_the_plan() {
        let dat = slice_with_one_message(7, b"hello");
        let plan = [Planned {
            seq: 7,
            action: Action::Encrypt(Cipher::Aes),
            frame: None,
        }];
        let (r, _) = write(&plan, &dat);
        r.unwrap();
    }

    /// A record the check did not see (another sequence, or one more) stops
    /// the write instead of being judged again.
    #[test]
    fn records_the_check_did_not_see_stop_the_write() {
        let dat = slice_with_one_message(7, b"hello");
        let other = [Planned {
            seq: 8,
            action: Action::Encrypt(Cipher::Aes),
            frame: None,
        }];
        let (r, _) = write(&other, &dat);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("seq 7 was not checked"), "{e}");
        assert!(e.contains("the store changed since the check"), "{e}");
        let (r, _) = write(&[], &dat);
        assert!(r.unwrap_err().to_string().contains("seq 7 was not checked"));
        let seven = Planned {
            seq: 7,
            action: Action::Encrypt(Cipher::Aes),
            frame: None,
        };
        let (r, _) = write(&[seven, seven], &dat);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("fewer records than checked"), "{e}");
    }
}
