//! Nonces for the envelopes stanctl writes.
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

use crate::crypto::aead::NONCE_LEN;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const MARKER: [u8; 2] = [0xF5, 0x7A];

/// Derives nonces for one channel key.
#[derive(Clone)]
pub struct NonceGen {
    keyed: Sha256,
}

impl NonceGen {
    pub fn new(channel_key: &Zeroizing<[u8; 32]>) -> Self {
        let mut nk = Sha256::new();
        nk.update(b"stanctl nonce v1");
        nk.update(&channel_key[..]);
        let nk = Zeroizing::new(<[u8; 32]>::from(nk.finalize()));
        let mut keyed = Sha256::new();
        keyed.update(&nk[..]);
        NonceGen { keyed }
    }

    pub fn nonce(&self, seq: u64, plaintext: &[u8]) -> [u8; NONCE_LEN] {
        let mut h = self.keyed.clone();
        h.update(seq.to_be_bytes());
        h.update(plaintext);
        let d = h.finalize();
        let mut n = [0u8; NONCE_LEN];
        n[..4].copy_from_slice(&d[..4]);
        n[4..6].copy_from_slice(&MARKER);
        n[6..].copy_from_slice(&d[4..10]);
        n
    }
}
