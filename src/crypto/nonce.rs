//! Nonces: the ones stanctl writes, where a nonce probably came from, and
//! nonces used twice.
//!
//! ## The nonces stanctl writes
//!
//! `nonce = H[0..4] || MARKER || H[4..10]`, `H = SHA-256(NK || seq_be || plaintext)`
//! with `NK = SHA-256("stanctl nonce v1" || K_c)`.
//!
//! Why it is safe:
//! - The server's nonces end in a big-endian counter that starts at the
//!   channel's `lastSeq + 1` and counts up; byte 4 is its most significant
//!   byte, below 0x80 for any sequence under 2^63. MARKER (0xF5 0x7A) starts
//!   with 0xF5, never there, so no nonce of ours equals one the server wrote
//!   or will write. Two marker bytes also make plaintext that merely starts
//!   with 1 or 2 unlikely (2^-16) to pass for one of our envelopes.
//! - Among ours, a nonce repeats under a key only if `(seq, plaintext)`
//!   repeats (then the ciphertext is identical too, which leaks nothing new)
//!   or if 80 bits of SHA-256 collide.
//! - It is deterministic, so a rerun after a crash writes the same bytes as
//!   an uninterrupted run, and the hash is keyed so the nonce reveals nothing
//!   about the plaintext to whoever lacks the key.

use crate::crypto::aead::{Cipher, NONCE_LEN};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const MARKER: [u8; 2] = [0xF5, 0x7A];

/// The keyed SHA-256 state the nonces start from. SHA-256 is the slowest
/// step of a rewrite on CPUs without SHA extensions, so with the `ring`
/// feature it is ring's (about 1.8 x the `sha2` crate's speed on x86_64
/// without SHA-NI); otherwise `sha2`'s. Both compute the same SHA-256: the
/// nonces, and so every rewritten byte, are the same whichever is built.
#[cfg(feature = "ring")]
#[derive(Clone)]
struct Keyed(ring::digest::Context);

#[cfg(feature = "ring")]
impl Keyed {
    fn new(nk: &[u8]) -> Self {
        let mut c = ring::digest::Context::new(&ring::digest::SHA256);
        c.update(nk);
        Keyed(c)
    }

    fn digest(&self, seq: u64, plaintext: &[u8]) -> [u8; 32] {
        let mut h = self.0.clone();
        h.update(&seq.to_be_bytes());
        h.update(plaintext);
        h.finish().as_ref().try_into().expect("32-byte SHA-256")
    }
}

#[cfg(not(feature = "ring"))]
#[derive(Clone)]
struct Keyed(Sha256);

#[cfg(not(feature = "ring"))]
impl Keyed {
    fn new(nk: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(nk);
        Keyed(h)
    }

    fn digest(&self, seq: u64, plaintext: &[u8]) -> [u8; 32] {
        let mut h = self.0.clone();
        h.update(seq.to_be_bytes());
        h.update(plaintext);
        h.finalize().into()
    }
}

/// Derives nonces for one channel key.
#[derive(Clone)]
pub struct NonceGen {
    keyed: Keyed,
}

impl NonceGen {
    pub fn new(channel_key: &Zeroizing<[u8; 32]>) -> Self {
        let mut nk = Sha256::new();
        nk.update(b"stanctl nonce v1");
        nk.update(&channel_key[..]);
        let nk = Zeroizing::new(<[u8; 32]>::from(nk.finalize()));
        NonceGen {
            keyed: Keyed::new(&nk[..]),
        }
    }

    pub fn nonce(&self, seq: u64, plaintext: &[u8]) -> [u8; NONCE_LEN] {
        let d = Zeroizing::new(self.keyed.digest(seq, plaintext));
        let mut n = [0u8; NONCE_LEN];
        n[..4].copy_from_slice(&d[..4]);
        n[4..6].copy_from_slice(&MARKER);
        n[6..].copy_from_slice(&d[4..10]);
        n
    }
}

/// Who probably wrote an envelope that no given key opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NonceOrigin {
    /// Counter part close to the sequence: the server's scheme.
    Server,
    /// Carries stanctl's marker byte.
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
    if nonce[4..6] == MARKER {
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
    runs.sort_unstable_by_key(|r| (r.key, r.cipher, r.prefix, r.first, r.first_seq));
    let mut out = Vec::new();
    // The run reaching furthest so far in the current (key, cipher, prefix) group.
    let mut reach: Option<NonceRun> = None;
    for r in runs.iter() {
        match reach {
            Some(p)
                if (p.key, p.cipher, p.prefix) == (r.key, r.cipher, r.prefix)
                    && r.first <= p.last() =>
            {
                let shared = p.last().min(r.last()) - r.first + 1;
                out.push(Reuse {
                    key: r.key,
                    cipher: r.cipher,
                    nonce: r.nonce_at(r.first),
                    seqs: [p.first_seq + (r.first - p.first), r.first_seq],
                    count: shared,
                });
                if r.last() > p.last() {
                    reach = Some(*r);
                }
            }
            _ => reach = Some(*r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheme written out with the `sha2` crate, whichever backend the
    /// build uses: rewrites stay byte-for-byte reproducible across builds.
    fn reference(ck: &[u8; 32], seq: u64, pt: &[u8]) -> [u8; 12] {
        let nk: [u8; 32] = Sha256::new()
            .chain_update(b"stanctl nonce v1")
            .chain_update(ck)
            .finalize()
            .into();
        let d = Sha256::new()
            .chain_update(nk)
            .chain_update(seq.to_be_bytes())
            .chain_update(pt)
            .finalize();
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&d[..4]);
        n[4..6].copy_from_slice(&MARKER);
        n[6..].copy_from_slice(&d[4..10]);
        n
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn nonces_are_the_same_with_every_sha256() {
        let ck: [u8; 32] = core::array::from_fn(|i| i as u8);
        let g = NonceGen::new(&Zeroizing::new(ck));
        // Known answers (computed independently, Python hashlib).
        let long: Vec<u8> = (0..20).flat_map(|_| 0..=255u8).collect();
        assert_eq!(hex(&g.nonce(1, b"")), "d7234293f57af64cbc15073e");
        assert_eq!(
            hex(&g.nonce(42, b"hello world")),
            "b4d380d6f57a24b3806b6f85"
        );
        assert_eq!(
            hex(&g.nonce((1 << 63) - 1, &long)),
            "06954d17f57ab143234e9e85"
        );
        // Every length around SHA-256's 64-byte blocks, against sha2.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let seq = len as u64 * 0x0101_0101 + 1;
            assert_eq!(
                g.nonce(seq, &data[..len]),
                reference(&ck, seq, &data[..len])
            );
        }
        // Clones derive the same nonces (the rewrite shares one per channel).
        assert_eq!(g.clone().nonce(7, b"x"), g.nonce(7, b"x"));
    }

    #[test]
    fn origin() {
        let mut n = [0xAAu8; 12];
        n[4..12].copy_from_slice(&41u64.to_be_bytes());
        assert_eq!(nonce_origin(&n, 40), NonceOrigin::Server);
        assert_eq!(nonce_origin(&n, 1000), NonceOrigin::Server);
        n[4..12].copy_from_slice(&0x7766_5544_3322_1100u64.to_be_bytes());
        assert_eq!(nonce_origin(&n, 40), NonceOrigin::Unknown);
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
}
