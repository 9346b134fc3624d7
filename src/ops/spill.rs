//! Listings kept in bounded memory (`verify --list`'s lines, `inspect
//! --records`' rows): each slice encodes its entries as it makes them and,
//! beyond `FLUSH_AT` bytes, appends them to an unnamed temporary file
//! shared by all slices ([`Spill`]); the report reads them back in order
//! as it prints ([`Reader`]). What an entry is, and its encoding, is the
//! listing's; this module only keeps and returns the bytes.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

/// The temporary directory (`$TMPDIR`) failed: missing, not writable,
/// full, or a file in it could not be read back.
#[derive(Debug)]
pub struct TempDirFailed {
    /// The directory, as `$TMPDIR` gave it (`/tmp` when unset).
    pub dir: PathBuf,
    pub source: io::Error,
    pub used_for: TempUse,
}

/// What the temporary directory was to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempUse {
    /// A spill file: a listing's, or the nonce-reuse check's sorted runs.
    Spill,
    /// `--keep-damaged`'s scratch copy of the store, in place.
    GuardScratch,
}

/// An I/O error of a spill file (this module's, or the nonce-reuse
/// check's), as the operation returns it.
pub fn temp_dir_failed(source: io::Error) -> crate::error::Error {
    crate::error::Error::TempDir(TempDirFailed {
        dir: std::env::temp_dir(),
        source,
        used_for: TempUse::Spill,
    })
}

/// A slice's encoded entries go to the file beyond this many bytes.
const FLUSH_AT: usize = 64 << 10;
/// Fewer bytes than this at the end of a slice stay in memory.
const KEEP_BELOW: usize = 4 << 10;

/// The temporary file the slices' entries go to (opened on first use).
#[derive(Debug, Default)]
pub struct Spill {
    file: Mutex<Option<(std::fs::File, u64)>>,
}

impl Spill {
    fn append(&self, bytes: &[u8]) -> io::Result<(u64, u64)> {
        let mut f = self.file.lock().expect("not poisoned");
        if f.is_none() {
            *f = Some((crate::crypto::nonce::spill_file()?, 0));
        }
        let (file, end) = f.as_mut().expect("just opened");
        file.write_all_at(bytes, *end)?;
        let at = *end;
        *end += bytes.len() as u64;
        Ok((at, bytes.len() as u64))
    }

    fn read(&self, (at, len): (u64, u64), buf: &mut Vec<u8>) -> io::Result<()> {
        let f = self.file.lock().expect("not poisoned");
        let (file, _) = f
            .as_ref()
            .ok_or_else(|| io::Error::other("no spill file"))?;
        buf.resize(len as usize, 0);
        file.read_exact_at(buf, at)
    }
}

/// One slice's entries, in the order they were written: runs of them in
/// the spill file, then `tail` in memory.
#[derive(Debug, Clone, Default)]
pub struct Spilled {
    /// (offset, length) of each run of entries in the spill file.
    chunks: Vec<(u64, u64)>,
    tail: Vec<u8>,
}

/// Encodes one slice's entries as they are made: the caller appends an
/// entry's bytes to [`Writer::buf`], then calls [`Writer::done`].
pub struct Writer<'s> {
    spill: &'s Spill,
    out: Spilled,
    err: Option<io::Error>,
}

impl<'s> Writer<'s> {
    pub fn new(spill: &'s Spill) -> Self {
        Writer {
            spill,
            out: Spilled::default(),
            err: None,
        }
    }

    /// Where the next entry's bytes go (whole entries only between calls
    /// of `done`).
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.out.tail
    }

    /// An entry was appended.
    pub fn done(&mut self) {
        if self.out.tail.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.err.is_some() || self.out.tail.is_empty() {
            return;
        }
        match self.spill.append(&self.out.tail) {
            Ok(c) => self.out.chunks.push(c),
            Err(e) => self.err = Some(e),
        }
        self.out.tail.clear();
    }

    pub fn finish(mut self) -> io::Result<Spilled> {
        if self.out.tail.len() >= KEEP_BELOW {
            self.flush();
        }
        self.out.tail.shrink_to_fit();
        match self.err {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }
}

/// One slice's entries read back, a run at a time.
pub struct Reader<'a> {
    entries: &'a Spilled,
    spill: &'a Spill,
    next_chunk: usize,
    buf: Vec<u8>,
    pos: usize,
    in_tail: bool,
}

impl<'a> Reader<'a> {
    pub fn new(entries: &'a Spilled, spill: &'a Spill) -> Self {
        Reader {
            entries,
            spill,
            next_chunk: 0,
            buf: Vec::new(),
            pos: 0,
            in_tail: false,
        }
    }

    /// The next entry, decoded by `decode` from the bytes from its start
    /// (to the end of its run), which returns it and the bytes it used.
    pub fn next<T>(
        &mut self,
        mut decode: impl FnMut(&[u8]) -> io::Result<(T, usize)>,
    ) -> io::Result<Option<T>> {
        loop {
            let bytes: &[u8] = if self.in_tail {
                &self.entries.tail
            } else {
                &self.buf
            };
            if self.pos < bytes.len() {
                let (t, used) = decode(&bytes[self.pos..])?;
                if used == 0 {
                    return Err(io::Error::other("spill file: empty entry"));
                }
                self.pos += used;
                return Ok(Some(t));
            }
            if self.in_tail {
                return Ok(None);
            }
            self.pos = 0;
            match self.entries.chunks.get(self.next_chunk) {
                Some(&c) => {
                    self.spill.read(c, &mut self.buf)?;
                    self.next_chunk += 1;
                }
                None => {
                    self.buf = Vec::new();
                    self.in_tail = true;
                }
            }
        }
    }
}

/// Takes an entry's fields from its bytes, in order; a short entry is an
/// error (`what` names the listing).
pub struct Fields<'b> {
    bytes: &'b [u8],
    at: usize,
    what: &'static str,
}

impl<'b> Fields<'b> {
    pub fn new(bytes: &'b [u8], what: &'static str) -> Self {
        Fields { bytes, at: 0, what }
    }

    pub fn take(&mut self, n: usize) -> io::Result<&'b [u8]> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| self.bad())?;
        self.at += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// The bytes used so far.
    pub fn used(&self) -> usize {
        self.at
    }

    pub fn bad(&self) -> io::Error {
        io::Error::other(format!("{} spill file: bad entry", self.what))
    }
}
