//! Nonces: the ones stanctl writes, where a nonce probably came from, and
//! nonces used twice.
//!
//! ## The nonces stanctl writes
//!
//! Scheme v2 (every envelope stanctl writes now):
//! `nonce = H[0..4] || MARKER || H[4..10]` with MARKER = `0xF5 0x7B`,
//! `H = BLAKE3-keyed(NK2, plaintext || c || seq_be)` and
//! `NK2 = SHA-256("stanctl nonce v2" || K_c)` (the 32-byte BLAKE3 key),
//! `c` the envelope's cipher byte (1 AES-256-GCM, 2 ChaCha20-Poly1305).
//!
//! Scheme v1 (stanctl before the change to v2; recognised, never written):
//! `nonce = H[0..4] || MARKER_V1 || H[4..10]` with MARKER_V1 = `0xF5 0x7A`,
//! `H = SHA-256(NK || c || seq_be || plaintext)` (before the cipher byte was
//! added, `SHA-256(NK || seq_be || plaintext)`), `NK = SHA-256("stanctl nonce v1" || K_c)`.
//! v2 replaced it for speed: a rewrite that seals hashes every plaintext,
//! and SHA-256 runs at ~340 MB/s per core on CPUs without SHA extensions,
//! which bounded encrypt and rekey; BLAKE3 runs at several GB/s per core
//! with SSE4.1/AVX2/AVX-512. The plaintext comes first and the cipher byte
//! and sequence last so that BLAKE3 hashes the plaintext's 1 KiB chunks in
//! parallel lanes (a prefix would shift every chunk and leave one lane); a
//! fixed-length suffix keeps `(plaintext, cipher, seq)` -> input one-to-one.
//!
//! Why it is safe:
//! - The server's nonces end in a big-endian counter that starts at the
//!   channel's `lastSeq + 1` and counts up; byte 4 is its most significant
//!   byte, below 0x80 for any sequence under 2^63. Both markers start with
//!   0xF5, never there, so no nonce of ours equals one the server wrote or
//!   will write. Two marker bytes also make plaintext that merely starts
//!   with 1 or 2 unlikely (2^-16 per scheme) to pass for one of our
//!   envelopes.
//! - Among ours, a nonce repeats under a key only if `(cipher, seq,
//!   plaintext)` repeats within one scheme (then the ciphertext is identical
//!   too, which leaks nothing new) or if 80 bits of the hash collide. A v1 nonce never
//!   equals a v2 nonce (byte 5 differs), so a store rewritten partly by an
//!   older stanctl and partly by this one reuses no nonce either.
//! - The cipher byte: the server uses one channel key `K_c` for both ciphers,
//!   and `rekey --cipher` re-seals an envelope under the key that already
//!   holds it. Without the byte, the same message would be sealed under the
//!   same key and the same nonce by AES-GCM and by ChaCha20-Poly1305 (the old
//!   envelope may survive in a backup). No attack on that is known (the two
//!   key streams and authenticators are unrelated functions of the key), but
//!   neither AEAD's security proof covers its key being used by the other
//!   with the same nonce, so the nonces differ by cipher.
//! - It is deterministic per scheme, so a rerun after a crash by the same
//!   stanctl writes the same bytes as an uninterrupted run; a rerun by a
//!   stanctl of another scheme still completes correctly (the envelopes
//!   already written open with the target key and are kept), but the bytes
//!   it writes differ. The hash is keyed, so the nonce reveals nothing about
//!   the plaintext to whoever lacks the key; the key is held in zeroizing
//!   memory and each keyed hasher is wiped after use (a rewrite reuses one
//!   per thread, reset between messages, and wipes it when done).

use crate::crypto::aead::{Cipher, NONCE_LEN};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Bytes 4 and 5 of every nonce stanctl writes (scheme v2).
pub const MARKER: [u8; 2] = [0xF5, 0x7B];
/// Bytes 4 and 5 of the nonces of scheme v1 (older stanctl): recognised as
/// stanctl's, never written.
pub const MARKER_V1: [u8; 2] = [0xF5, 0x7A];

/// Derives nonces (scheme v2) for one channel key.
#[derive(Clone)]
pub struct NonceGen {
    /// NK2, the BLAKE3 key.
    key: Zeroizing<[u8; 32]>,
}

impl NonceGen {
    pub fn new(channel_key: &Zeroizing<[u8; 32]>) -> Self {
        let mut nk = Sha256::new();
        nk.update(b"stanctl nonce v2");
        nk.update(&channel_key[..]);
        NonceGen {
            key: Zeroizing::new(nk.finalize().into()),
        }
    }

    /// The nonce for `plaintext` at `seq` sealed with `cipher`.
    pub fn nonce(&self, cipher: Cipher, seq: u64, plaintext: &[u8]) -> [u8; NONCE_LEN] {
        self.nonce_with(&mut None, cipher, seq, plaintext)
    }

    /// `nonce`, hashing with the hasher in `slot` when it was keyed for this
    /// `NonceGen`'s key (else one is keyed there, the old one wiped): a
    /// rewrite keeps one per thread instead of keying and wiping a hasher
    /// per message (wiping BLAKE3's ~1.9 KB state cost as much as hashing a
    /// 40-byte message). Same bytes as `nonce`.
    pub fn nonce_with(
        &self,
        slot: &mut Option<NonceHasher>,
        cipher: Cipher,
        seq: u64,
        plaintext: &[u8],
    ) -> [u8; NONCE_LEN] {
        let nh = match slot {
            Some(nh) if nh.key[..] == self.key[..] => nh,
            _ => slot.insert(NonceHasher {
                key: self.key.clone(),
                h: blake3::Hasher::new_keyed(&self.key),
                input: Vec::new(),
            }),
        };
        let mut tail = [0u8; 9];
        tail[0] = cipher.code();
        tail[1..].copy_from_slice(&seq.to_be_bytes());
        let mut d = if plaintext.len() + tail.len() <= SMALL_INPUT {
            // One BLAKE3 chunk: hashed at once from one buffer, without the
            // incremental hasher's reset, two updates and finalize (about
            // half of the hash's cost for a 40-byte message). Same bytes.
            let input = &mut nh.input;
            input.clear();
            input.extend_from_slice(plaintext);
            input.extend_from_slice(&tail);
            blake3::keyed_hash(&self.key, input)
        } else {
            let h = &mut nh.h;
            h.reset();
            h.update(plaintext);
            h.update(&tail);
            h.finalize()
        };
        let b = d.as_bytes();
        let mut n = [0u8; NONCE_LEN];
        n[..4].copy_from_slice(&b[..4]);
        n[4..6].copy_from_slice(&MARKER);
        n[6..].copy_from_slice(&b[4..10]);
        d.zeroize();
        n
    }
}

/// A keyed BLAKE3 hasher that `NonceGen::nonce_with` reuses from message to
/// message (reset between them); its key and state are wiped when it is
/// dropped.
pub struct NonceHasher {
    /// NK2, to tell which `NonceGen` the hasher was keyed for.
    key: Zeroizing<[u8; 32]>,
    h: blake3::Hasher,
    /// The input of a message hashed at once (see `SMALL_INPUT`).
    input: Vec<u8>,
}

/// Hash inputs (plaintext, cipher byte, sequence) up to one BLAKE3 chunk
/// are hashed at once (`blake3::keyed_hash`) rather than through the
/// reused incremental hasher.
const SMALL_INPUT: usize = 1024;

impl Drop for NonceHasher {
    fn drop(&mut self) {
        self.h.zeroize();
        self.input.zeroize();
    }
}

/// Who probably wrote an envelope that no given key opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NonceOrigin {
    /// Counter part close to the sequence: the server's scheme.
    Server,
    /// Carries one of stanctl's markers (scheme v1 or v2).
    Stanctl,
    /// Neither: most likely plaintext whose first byte happens to be 1 or 2.
    Unknown,
}

/// Tells a real envelope (wrong key) from plaintext that merely starts with
/// 1 or 2. The server's nonce is 4 random bytes and a big-endian counter
/// that starts at the channel's last sequence + 1 (so at least 1) when the
/// server opens it and grows by one per encrypted message: it sits at or a
/// little below the sequence. Four zero "random" bytes (odds 2^-32) are far
/// likelier to be the zero padding of some binary framing.
pub fn nonce_origin(nonce: &[u8; NONCE_LEN], seq: u64) -> NonceOrigin {
    if nonce[4..6] == MARKER || nonce[4..6] == MARKER_V1 {
        return NonceOrigin::Stanctl;
    }
    if nonce[..4] == [0, 0, 0, 0] {
        return NonceOrigin::Unknown;
    }
    let counter = u64::from_be_bytes(nonce[4..12].try_into().unwrap());
    const WINDOW: u64 = 1 << 40;
    if counter >= 1 && counter <= seq.saturating_add(1) && seq - counter.min(seq) <= WINDOW {
        NonceOrigin::Server
    } else {
        NonceOrigin::Unknown
    }
}

/// Nonces used under one key and cipher, as runs. The server writes
/// `prefix || counter` and moves the counter with the sequence, so a channel
/// the server encrypted is a handful of runs instead of one entry per
/// message; any other nonce is a run of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceRun {
    /// Index of the key that opened them; `u8::MAX` when unknown.
    pub key: u8,
    pub cipher: Cipher,
    /// Nonce bytes 0..4.
    pub prefix: [u8; 4],
    /// Nonce bytes 4..12 (big-endian) of the first nonce of the run.
    pub first: u64,
    pub len: u64,
    /// Sequence of the first message; the run's sequences are consecutive.
    pub first_seq: u64,
}

impl NonceRun {
    /// The last counter of the run.
    pub fn last(&self) -> u64 {
        self.first + (self.len - 1)
    }

    pub fn nonce_at(&self, counter: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.prefix);
        n[4..].copy_from_slice(&counter.to_be_bytes());
        n
    }
}

/// Adds one nonce, extending the last run when it continues it.
pub fn push_nonce(runs: &mut Vec<NonceRun>, key: u8, cipher: Cipher, nonce: &[u8; 12], seq: u64) {
    let prefix: [u8; 4] = nonce[..4].try_into().expect("4 bytes");
    let counter = u64::from_be_bytes(nonce[4..].try_into().expect("8 bytes"));
    if let Some(r) = runs.last_mut() {
        if r.key == key
            && r.cipher == cipher
            && r.prefix == prefix
            && r.first.checked_add(r.len) == Some(counter)
            && r.first_seq.checked_add(r.len) == Some(seq)
        {
            r.len += 1;
            return;
        }
    }
    runs.push(NonceRun {
        key,
        cipher,
        prefix,
        first: counter,
        len: 1,
        first_seq: seq,
    });
}

/// Two uses of one nonce under one key and cipher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    /// Index of the key; `u8::MAX` when unknown.
    pub key: u8,
    pub cipher: Cipher,
    /// The first nonce used twice.
    pub nonce: [u8; NONCE_LEN],
    /// The two sequences that use it.
    pub seqs: [u64; 2],
    /// How many consecutive nonces the two runs share (1 for a single reuse).
    pub count: u64,
}

/// Nonces used twice in a channel under one key (or, without keys, twice at
/// all): runs of one key, cipher and prefix whose counters overlap. One
/// entry per overlap, naming its first nonce and the two sequences using it.
pub fn find_reuse(runs: &mut [NonceRun]) -> Vec<Reuse> {
    let mut keyed: Vec<Keyed> = runs.iter().map(Keyed::from).collect();
    keyed.sort_unstable();
    sweep(keyed.into_iter().map(NonceRun::from))
}

/// A run as the logs hold and sort it: `NonceRun::sort_key` computed once
/// (key, cipher's order, prefix and first counter in `hi`, then the first
/// sequence), and the length. Sorting these compares two integers instead
/// of packing both runs' fields for every comparison (the sort was 13 % of
/// verify's CPU on a store of 10M tiny stanctl-encrypted messages, one run
/// per envelope). The derived order is `sort_key`'s, ties broken by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Keyed {
    hi: u128,
    first_seq: u64,
    len: u64,
}

impl From<&NonceRun> for Keyed {
    fn from(r: &NonceRun) -> Keyed {
        let (hi, first_seq) = r.sort_key();
        Keyed {
            hi,
            first_seq,
            len: r.len,
        }
    }
}

impl From<Keyed> for NonceRun {
    fn from(k: Keyed) -> NonceRun {
        NonceRun {
            key: (k.hi >> 120) as u8,
            cipher: if (k.hi >> 112) as u8 == 0 {
                Cipher::Aes
            } else {
                Cipher::ChaCha
            },
            prefix: ((k.hi >> 64) as u32).to_be_bytes(),
            first: k.hi as u64,
            len: k.len,
            first_seq: k.first_seq,
        }
    }
}

impl NonceRun {
    /// The order of `(key, cipher, prefix, first, first_seq)`, packed into
    /// two integers (key, cipher's order, prefix big-endian and first in
    /// one u128): the same comparisons, so the same sorted order, at a
    /// fraction of the tuple's cost (sorting the runs was a quarter of
    /// inspect's CPU on a store of tiny stanctl-encrypted messages, one run
    /// per envelope).
    fn sort_key(&self) -> (u128, u64) {
        let cipher = match self.cipher {
            Cipher::Aes => 0u128,
            Cipher::ChaCha => 1,
        };
        let hi = (self.key as u128) << 120
            | cipher << 112
            | (u32::from_be_bytes(self.prefix) as u128) << 64
            | self.first as u128;
        (hi, self.first_seq)
    }
}

/// `find_reuse` over runs already in `sort_key` order. Two runs that give
/// each shared nonce to the same sequence are one message stored twice (a
/// slice and an archived copy of it, a duplicated record): the nonce seals
/// the same plaintext again, identical bytes that reveal nothing, so it is
/// no reuse (a stanctl nonce hashes the plaintext with the sequence; the
/// server's counter counts sequences).
fn sweep(runs: impl Iterator<Item = NonceRun>) -> Vec<Reuse> {
    let mut out = Vec::new();
    // The run reaching furthest so far in the current (key, cipher, prefix) group.
    let mut reach: Option<NonceRun> = None;
    for r in runs {
        match reach {
            Some(p)
                if (p.key, p.cipher, p.prefix) == (r.key, r.cipher, r.prefix)
                    && r.first <= p.last() =>
            {
                let shared = p.last().min(r.last()) - r.first + 1;
                let seqs = [p.first_seq + (r.first - p.first), r.first_seq];
                if seqs[0] != seqs[1] {
                    out.push(Reuse {
                        key: r.key,
                        cipher: r.cipher,
                        nonce: r.nonce_at(r.first),
                        seqs,
                        count: shared,
                    });
                }
                if r.last() > p.last() {
                    reach = Some(r);
                }
            }
            _ => reach = Some(r),
        }
    }
    out
}

/// Bytes of a run in a spill file.
const RUN_BYTES: usize = 32;

impl NonceRun {
    fn to_bytes(self) -> [u8; RUN_BYTES] {
        let mut b = [0u8; RUN_BYTES];
        b[0] = self.key;
        b[1] = self.cipher.code();
        b[2..6].copy_from_slice(&self.prefix);
        b[8..16].copy_from_slice(&self.first.to_le_bytes());
        b[16..24].copy_from_slice(&self.len.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> NonceRun {
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        NonceRun {
            key: b[0],
            cipher: Cipher::from_code(b[1]).expect("written by to_bytes"),
            prefix: b[2..6].try_into().expect("4 bytes"),
            first: u(8),
            len: u(16),
            first_seq: u(24),
        }
    }
}

/// Runs held in memory by all channels together before they spill: 64 MiB.
pub const SPILL_BUDGET_RUNS: usize = 2 << 20;
/// A channel never spills fewer runs than this (bounds the number of chunks).
const MIN_SPILL_RUNS: usize = 64 << 10;

/// The nonce runs of every channel of a store, for the nonce-reuse check,
/// in bounded memory: each channel keeps its runs in memory up to its share
/// of `SPILL_BUDGET_RUNS` (at least 64 Ki runs), then sorts them and appends
/// them as one chunk to an unnamed temporary file (in `$TMPDIR`, gone when
/// the process ends) shared by all channels; `reuse` merges a channel's
/// chunks. Envelopes the server wrote compress into a few runs per channel
/// and never spill; stanctl's own nonces (and random ones) are one run per
/// envelope: 32 bytes each, in memory or in the file.
pub struct NonceLogs {
    channels: Vec<std::sync::Mutex<ChannelLog>>,
    spill_at: usize,
    file: std::sync::Mutex<Option<(std::fs::File, u64)>>,
}

#[derive(Default)]
struct ChannelLog {
    runs: Vec<Keyed>,
    /// (byte offset, runs) of each sorted chunk in the spill file.
    chunks: Vec<(u64, u64)>,
}

impl NonceLogs {
    pub fn new(channels: usize) -> Self {
        Self::with_budget(channels, SPILL_BUDGET_RUNS)
    }

    fn with_budget(channels: usize, budget: usize) -> Self {
        NonceLogs {
            channels: (0..channels).map(|_| Default::default()).collect(),
            spill_at: (budget / channels.max(1)).max(MIN_SPILL_RUNS.min(budget)),
            file: std::sync::Mutex::new(None),
        }
    }

    /// Adds a slice's runs to channel `ch` (any order, from any thread).
    pub fn add(&self, ch: usize, runs: &[NonceRun]) -> std::io::Result<()> {
        let mut log = self.channels[ch].lock().expect("not poisoned");
        for chunk in runs.chunks(self.spill_at) {
            if log.runs.len() + chunk.len() > self.spill_at {
                self.spill(&mut log)?;
            }
            log.runs.extend(chunk.iter().map(Keyed::from));
        }
        Ok(())
    }

    /// Sorts the channel's runs in memory and appends them to the spill
    /// file as one chunk. Under the channel's lock: a thread adding to the
    /// channel meanwhile waits instead of growing a second set of runs.
    fn spill(&self, log: &mut ChannelLog) -> std::io::Result<()> {
        use std::io::Write;
        if log.runs.is_empty() {
            return Ok(());
        }
        log.runs.sort_unstable();
        let mut f = self.file.lock().expect("not poisoned");
        if f.is_none() {
            *f = Some((spill_file()?, 0));
        }
        let (file, end) = f.as_mut().expect("just opened");
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &*file);
        for &r in &log.runs {
            w.write_all(&NonceRun::from(r).to_bytes())?;
        }
        w.flush()?;
        log.chunks.push((*end, log.runs.len() as u64));
        *end += (log.runs.len() * RUN_BYTES) as u64;
        log.runs.clear();
        Ok(())
    }

    /// The nonces channel `ch` uses twice, as `find_reuse` finds them; its
    /// runs are dropped.
    pub fn reuse(&self, ch: usize) -> std::io::Result<Vec<Reuse>> {
        let mut log = std::mem::take(&mut *self.channels[ch].lock().expect("not poisoned"));
        log.runs.sort_unstable();
        if log.chunks.is_empty() {
            return Ok(sweep(log.runs.into_iter().map(NonceRun::from)));
        }
        let f = self.file.lock().expect("not poisoned");
        let file = &f.as_ref().expect("chunks were written").0;
        let mut sources: Vec<Chunk<'_>> = log
            .chunks
            .iter()
            .map(|&(at, n)| Chunk::new(file, at, n))
            .collect();
        // The smallest unread run of each chunk, and a heap of their keys.
        let mut heads = std::collections::BinaryHeap::with_capacity(sources.len());
        for (i, c) in sources.iter_mut().enumerate() {
            if let Some(r) = c.next()? {
                heads.push(std::cmp::Reverse((r, i)));
            }
        }
        let mut mem = log.runs.iter().copied().peekable();
        let mut err = None;
        // Equal runs are the same run: which source gives one first does
        // not change what the sweep finds.
        let iter = std::iter::from_fn(|| {
            let from_file = heads.peek().map(|h| h.0 .0);
            match (mem.peek(), from_file) {
                (Some(m), Some(k)) if *m <= k => mem.next(),
                (Some(_), None) => mem.next(),
                (_, Some(_)) => {
                    let mut top = heads.peek_mut().expect("peeked");
                    let std::cmp::Reverse((r, i)) = *top;
                    match sources[i].next() {
                        Ok(Some(n)) => top.0 .0 = n,
                        Ok(None) => {
                            std::collections::binary_heap::PeekMut::pop(top);
                        }
                        Err(e) => {
                            err = Some(e);
                            std::collections::binary_heap::PeekMut::pop(top);
                        }
                    }
                    Some(r)
                }
                (None, None) => None,
            }
        });
        let merged = sweep(iter.map(NonceRun::from));
        match err {
            Some(e) => Err(e),
            None => Ok(merged),
        }
    }
}

/// An unnamed file in the temporary directory, removed when closed.
pub(crate) fn spill_file() -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&dir)
    {
        Ok(f) => Ok(f),
        Err(_) => {
            // No O_TMPFILE on this file system: create, then unlink.
            let p = dir.join(format!(".stanctl-nonces-{}", std::process::id()));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            std::fs::remove_file(&p)?;
            Ok(f)
        }
    }
}

/// Reads one sorted chunk of a spill file, 64 KiB at a time.
struct Chunk<'f> {
    file: &'f std::fs::File,
    at: u64,
    left: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl<'f> Chunk<'f> {
    fn new(file: &'f std::fs::File, at: u64, runs: u64) -> Self {
        Chunk {
            file,
            at,
            left: runs,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn next(&mut self) -> std::io::Result<Option<Keyed>> {
        use std::os::unix::fs::FileExt;
        if self.pos == self.buf.len() {
            if self.left == 0 {
                return Ok(None);
            }
            let n = self.left.min(2048);
            self.buf.resize(n as usize * RUN_BYTES, 0);
            self.file.read_exact_at(&mut self.buf, self.at)?;
            self.at += n * RUN_BYTES as u64;
            self.left -= n;
            self.pos = 0;
        }
        let r = NonceRun::from_bytes(&self.buf[self.pos..self.pos + RUN_BYTES]);
        self.pos += RUN_BYTES;
        Ok(Some(Keyed::from(&r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed sort key orders runs exactly as the tuple of their fields
    /// (key, cipher, prefix, first counter, first sequence) does.
    #[test]
    fn sort_key_orders_as_the_fields() {
        let vals = [0u64, 1, 2, 0x7f, 0x80, u64::MAX - 1, u64::MAX];
        let mut runs = Vec::new();
        for key in [0u8, 1, 0xfe, u8::MAX] {
            for cipher in [Cipher::Aes, Cipher::ChaCha] {
                for prefix in [
                    [0u8; 4],
                    [0, 0, 0, 1],
                    [1, 0, 0, 0],
                    [0xff; 4],
                    [0x80, 0, 0xff, 1],
                ] {
                    for (i, &first) in vals.iter().enumerate() {
                        for &first_seq in &vals[i % 3..i % 3 + 3] {
                            runs.push(NonceRun {
                                key,
                                cipher,
                                prefix,
                                first,
                                len: 1,
                                first_seq,
                            });
                        }
                    }
                }
            }
        }
        let fields = |r: &NonceRun| (r.key, r.cipher, r.prefix, r.first, r.first_seq);
        for a in &runs {
            // What the logs hold and sort: the same run back, in the same order.
            assert_eq!(NonceRun::from(Keyed::from(a)), *a);
            for b in &runs {
                assert_eq!(a.sort_key().cmp(&b.sort_key()), fields(a).cmp(&fields(b)));
                if a.len == b.len {
                    assert_eq!(
                        Keyed::from(a).cmp(&Keyed::from(b)),
                        fields(a).cmp(&fields(b))
                    );
                }
            }
        }
    }
    /// Scheme v1 (older stanctl, with the cipher byte), written out: v2
    /// must never repeat it.
    fn v1(ck: &[u8; 32], cipher: Cipher, seq: u64, pt: &[u8]) -> [u8; 12] {
        let nk: [u8; 32] = Sha256::new()
            .chain_update(b"stanctl nonce v1")
            .chain_update(ck)
            .finalize()
            .into();
        let d = Sha256::new()
            .chain_update(nk)
            .chain_update([cipher.code()])
            .chain_update(seq.to_be_bytes())
            .chain_update(pt)
            .finalize();
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&d[..4]);
        n[4..6].copy_from_slice(&MARKER_V1);
        n[6..].copy_from_slice(&d[4..10]);
        n
    }

    /// Scheme v2 written out with BLAKE3's one-shot keyed hash over one
    /// buffer (another code path than `NonceGen`'s incremental hasher).
    fn v2(ck: &[u8; 32], cipher: Cipher, seq: u64, pt: &[u8]) -> [u8; 12] {
        let nk: [u8; 32] = Sha256::new()
            .chain_update(b"stanctl nonce v2")
            .chain_update(ck)
            .finalize()
            .into();
        let mut input = pt.to_vec();
        input.push(cipher.code());
        input.extend_from_slice(&seq.to_be_bytes());
        let d = blake3::keyed_hash(&nk, &input);
        let d = d.as_bytes();
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&d[..4]);
        n[4..6].copy_from_slice(&MARKER);
        n[6..].copy_from_slice(&d[4..10]);
        n
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const AES: Cipher = Cipher::Aes;
    const CHACHA: Cipher = Cipher::ChaCha;

    #[test]
    fn v2_known_answers() {
        let ck: [u8; 32] = core::array::from_fn(|i| i as u8);
        let g = NonceGen::new(&Zeroizing::new(ck));
        // Known answers, computed independently (Python: hashlib.sha256 and
        // the `blake3` package's keyed mode).
        let long: Vec<u8> = (0..20).flat_map(|_| 0..=255u8).collect();
        let known = [
            (AES, 1, &b""[..], "90fccc44f57b38f0f675b2f8"),
            (AES, 42, b"hello world", "2bb96c50f57bb469dd0db3d9"),
            (AES, (1 << 63) - 1, &long, "5b5c6719f57bb1f2dedea0f0"),
            (CHACHA, 1, b"", "8356c487f57b3bf4d6c09348"),
            (CHACHA, 42, b"hello world", "a1233b3af57bce942dce08f2"),
            (CHACHA, (1 << 63) - 1, &long, "26eaf9e2f57b5f5377a3b6b9"),
        ];
        for (c, seq, pt, want) in known {
            assert_eq!(hex(&g.nonce(c, seq, pt)), want, "{c:?} {seq}");
        }
        // The same answers from one reused hasher, in any order, and from
        // a hasher last keyed for another key.
        let mut slot = None;
        for (c, seq, pt, want) in known.iter().rev().chain(&known) {
            let n = g.nonce_with(&mut slot, *c, *seq, pt);
            assert_eq!(hex(&n), *want, "{c:?} {seq}");
        }
        let other = NonceGen::new(&Zeroizing::new([7u8; 32]));
        for (c, seq, pt, want) in known {
            other.nonce_with(&mut slot, c, seq, pt);
            assert_eq!(hex(&g.nonce_with(&mut slot, c, seq, pt)), want);
        }
        // Every length around BLAKE3's 64-byte blocks and 1 KiB chunks,
        // against the one-shot hash.
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
        let lens = (0..300)
            .chain((1000..1100).chain(2040..2060))
            .chain(4090..5000);
        for len in lens {
            let seq = len as u64 * 0x0101_0101 + 1;
            for c in [AES, CHACHA] {
                let want = v2(&ck, c, seq, &data[..len]);
                assert_eq!(g.nonce(c, seq, &data[..len]), want);
                assert_eq!(g.nonce_with(&mut slot, c, seq, &data[..len]), want);
            }
        }
    }

    #[test]
    fn v2_is_deterministic_and_never_a_v1_nonce() {
        let ck: [u8; 32] = core::array::from_fn(|i| (i * 3) as u8);
        let g = NonceGen::new(&Zeroizing::new(ck));
        // Clones derive the same nonces (the rewrite shares one per channel).
        assert_eq!(g.clone().nonce(AES, 7, b"x"), g.nonce(AES, 7, b"x"));
        assert_eq!(
            NonceGen::new(&Zeroizing::new(ck)).nonce(AES, 7, b"x"),
            g.nonce(AES, 7, b"x")
        );
        // Another sequence, plaintext, cipher or key: another nonce.
        assert_ne!(g.nonce(AES, 8, b"x"), g.nonce(AES, 7, b"x"));
        assert_ne!(g.nonce(AES, 7, b"y"), g.nonce(AES, 7, b"x"));
        assert_ne!(g.nonce(CHACHA, 7, b"x"), g.nonce(AES, 7, b"x"));
        let other = NonceGen::new(&Zeroizing::new([9u8; 32]));
        assert_ne!(other.nonce(AES, 7, b"x"), g.nonce(AES, 7, b"x"));
        for seq in [1u64, 2, 1000, u64::MAX >> 1] {
            for pt in [&b""[..], b"a", &[0u8; 4096]] {
                for c in [AES, CHACHA] {
                    let (a, b) = (g.nonce(c, seq, pt), v1(&ck, c, seq, pt));
                    assert_ne!(a, b);
                    assert_eq!(a[4..6], MARKER);
                    assert_eq!(b[4..6], MARKER_V1);
                    // Both are stanctl's, whatever the sequence.
                    assert_eq!(nonce_origin(&a, seq), NonceOrigin::Stanctl);
                    assert_eq!(nonce_origin(&b, seq), NonceOrigin::Stanctl);
                }
            }
        }
    }

    #[test]
    fn origin() {
        let mut n = [0xAAu8; 12];
        n[4..12].copy_from_slice(&41u64.to_be_bytes());
        assert_eq!(nonce_origin(&n, 40), NonceOrigin::Server);
        assert_eq!(nonce_origin(&n, 1000), NonceOrigin::Server);
        n[4..12].copy_from_slice(&0x7766_5544_3322_1100u64.to_be_bytes());
        assert_eq!(nonce_origin(&n, 40), NonceOrigin::Unknown);
        // stanctl's two markers, and a byte 5 that is neither.
        for (m, o) in [
            (MARKER, NonceOrigin::Stanctl),
            (MARKER_V1, NonceOrigin::Stanctl),
            ([0xF5, 0x7C], NonceOrigin::Unknown),
        ] {
            n[4..6].copy_from_slice(&m);
            assert_eq!(nonce_origin(&n, 40), o, "{m:02x?}");
        }
    }

    use crate::crypto::aead::Cipher;

    fn nonce(prefix: u8, counter: u64) -> [u8; 12] {
        let mut n = [prefix; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        n
    }

    #[test]
    fn server_nonces_compress_into_runs() {
        let mut runs = Vec::new();
        for seq in 1..=1000 {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(7, seq + 100), seq);
        }
        assert_eq!(runs.len(), 1);
        assert!(find_reuse(&mut runs).is_empty());
    }

    #[test]
    fn overlaps_are_found_with_their_sequences() {
        let mut runs = Vec::new();
        // seqs 1..=10 with counters 1..=10; then seqs 20..=24 reuse counters 5..=9.
        for seq in 1..=10 {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(1, seq), seq);
        }
        for (i, seq) in (20..=24).enumerate() {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(1, 5 + i as u64), seq);
        }
        // Same counters under another prefix, cipher or key: no reuse.
        push_nonce(&mut runs, 0, Cipher::Aes, &nonce(2, 5), 30);
        push_nonce(&mut runs, 0, Cipher::ChaCha, &nonce(1, 5), 31);
        push_nonce(&mut runs, 1, Cipher::Aes, &nonce(1, 5), 32);
        let r = find_reuse(&mut runs);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].seqs, [5, 20]);
        assert_eq!(r[0].count, 5);
        assert_eq!(r[0].nonce, nonce(1, 5));
    }

    /// A slice and its archived copy: each nonce twice, for the same
    /// sequence (the same sealed message), which is no reuse; another
    /// sequence under one of those nonces still is.
    #[test]
    fn the_same_message_stored_twice_is_no_reuse() {
        let mut runs = Vec::new();
        for _copy in 0..2 {
            for seq in 1..=10 {
                push_nonce(&mut runs, 0, Cipher::Aes, &nonce(1, seq + 100), seq);
            }
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(9, 7), 4);
        }
        assert!(find_reuse(&mut runs.clone()).is_empty());
        push_nonce(&mut runs, 0, Cipher::Aes, &nonce(1, 105), 40);
        let r = find_reuse(&mut runs);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].seqs, [5, 40]);
    }

    #[test]
    fn a_nonce_used_three_times_is_reported_twice() {
        let mut runs = Vec::new();
        for seq in [3, 9, 15] {
            push_nonce(&mut runs, 0, Cipher::Aes, &nonce(4, 42), seq);
        }
        let r = find_reuse(&mut runs);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].seqs, [3, 9]);
        assert_eq!(r[1].seqs, [3, 15]);
    }

    /// Spilled or not, the logs find what `find_reuse` finds, in its order.
    #[test]
    fn spilled_logs_find_the_same_reuse() {
        let mut all = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Two channels; server-style runs, random singletons and planted reuse.
        let mut slices: Vec<(usize, Vec<NonceRun>)> = Vec::new();
        for slice in 0..40u64 {
            let ch = (slice % 2) as usize;
            let mut runs = Vec::new();
            for i in 0..500u64 {
                let seq = slice * 1000 + i + 1;
                let n = match rnd() % 4 {
                    0 => nonce(7, seq + 3),
                    1 => nonce((rnd() % 3) as u8, rnd() % 200),
                    _ => {
                        let mut n = [0u8; 12];
                        n.iter_mut().for_each(|b| *b = rnd() as u8);
                        n
                    }
                };
                let cipher = if rnd() % 5 == 0 {
                    Cipher::ChaCha
                } else {
                    Cipher::Aes
                };
                push_nonce(&mut runs, (rnd() % 2) as u8, cipher, &n, seq);
            }
            slices.push((ch, runs));
        }
        for ch in 0..2 {
            let mut runs: Vec<NonceRun> = slices
                .iter()
                .filter(|s| s.0 == ch)
                .flat_map(|s| s.1.iter().copied())
                .collect();
            all.push(find_reuse(&mut runs));
        }
        assert!(all.iter().all(|r| r.len() > 10), "the test plants reuse");
        for budget in [50, 700, 1 << 20] {
            let logs = NonceLogs::with_budget(2, budget);
            for (ch, runs) in &slices {
                logs.add(*ch, runs).unwrap();
            }
            for (ch, expected) in all.iter().enumerate() {
                assert_eq!(&logs.reuse(ch).unwrap(), expected, "budget {budget}");
            }
        }
    }

    #[test]
    fn runs_round_trip_through_the_spill_format() {
        let r = NonceRun {
            key: 250,
            cipher: Cipher::ChaCha,
            prefix: [1, 2, 3, 4],
            first: u64::MAX - 5,
            len: 6,
            first_seq: 1 << 60,
        };
        assert_eq!(NonceRun::from_bytes(&r.to_bytes()), r);
    }
}
