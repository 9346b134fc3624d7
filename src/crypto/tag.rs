//! Checking an envelope's tag without decrypting it.
//!
//! `verify`, `inspect` and the rewrite check only need to know whether an
//! envelope opens under a key, not its plaintext. Both AEADs authenticate the
//! ciphertext, so the tag can be recomputed from the ciphertext alone,
//! skipping the keystream over the payload:
//!
//! - AES-256-GCM (96-bit nonce, no associated data, NIST SP 800-38D):
//!   `tag = GHASH_H(C || pad || 0^64 || bitlen(C)) XOR E_K(nonce || 1)`, with
//!   `H = E_K(0^128)`.
//! - ChaCha20-Poly1305 (RFC 8439): `tag = Poly1305_otk(C || pad || 0^64 ||
//!   len(C))`, the one-time key `otk` being the first 32 bytes of ChaCha20
//!   block 0 under the key and nonce.
//!
//! The primitives are RustCrypto's (`aes`, `ghash`, `chacha20`, `poly1305`);
//! tags are compared in constant time (`subtle`). Whether this is faster than
//! the backend's full open depends on the cipher and the backend: measured on
//! x86_64 (BENCHMARKS.md, "What bounds each command"), `ChannelAead` uses it
//! where it is (`ChannelAead::authenticates`). Tests check it accepts exactly
//! what ring and the RustCrypto AEADs open.

use crate::crypto::aead::{NONCE_LEN, TAG_LEN};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// AES-256-GCM's tag check under one key.
pub struct AesGcmTag {
    aes: aes::Aes256,
    /// Keyed with `H`; cloned for each envelope.
    ghash: ghash::GHash,
}

impl AesGcmTag {
    pub fn new(key: &[u8; 32]) -> Self {
        use aes::cipher::{BlockEncrypt, KeyInit};
        let aes = aes::Aes256::new(key.into());
        let mut h = aes::Block::default();
        aes.encrypt_block(&mut h);
        let mut hk = [0u8; 16];
        hk.copy_from_slice(&h);
        let ghash = ghash::GHash::new(&hk.into());
        h.zeroize();
        hk.zeroize();
        AesGcmTag { aes, ghash }
    }

    /// Whether `tag` is the tag of `ciphertext` under this key and `nonce`.
    pub fn verify(&self, nonce: &[u8; NONCE_LEN], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        use aes::cipher::BlockEncrypt;
        use ghash::universal_hash::UniversalHash;
        // GCM's limit for one message (2^39 - 256 bits); the server's records
        // are far smaller, and a longer one would not open anywhere.
        if ciphertext.len() as u64 > (1 << 36) - 32 {
            return false;
        }
        let mut g = self.ghash.clone();
        g.update_padded(ciphertext);
        let mut lens = [0u8; 16];
        lens[8..].copy_from_slice(&(ciphertext.len() as u64 * 8).to_be_bytes());
        g.update(&[lens.into()]);
        let s = g.finalize();
        let mut j0 = aes::Block::default();
        j0[..NONCE_LEN].copy_from_slice(nonce);
        j0[15] = 1;
        self.aes.encrypt_block(&mut j0);
        let mut expected = [0u8; TAG_LEN];
        for (e, (a, b)) in expected.iter_mut().zip(s.iter().zip(j0.iter())) {
            *e = a ^ b;
        }
        let ok = expected.ct_eq(tag).into();
        expected.zeroize();
        j0.zeroize();
        ok
    }
}

/// ChaCha20-Poly1305's tag check under one key.
pub struct ChaChaPolyTag {
    key: Zeroizing<[u8; 32]>,
}

impl ChaChaPolyTag {
    pub fn new(key: &[u8; 32]) -> Self {
        ChaChaPolyTag {
            key: Zeroizing::new(*key),
        }
    }

    /// Whether `tag` is the tag of `ciphertext` under this key and `nonce`.
    pub fn verify(&self, nonce: &[u8; NONCE_LEN], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        use chacha20::cipher::{KeyIvInit, StreamCipher};
        use poly1305::universal_hash::{KeyInit, UniversalHash};
        // ChaCha20's 32-bit block counter: 2^32 - 1 blocks of keystream after block 0.
        if ciphertext.len() as u64 > ((1u64 << 32) - 1) * 64 {
            return false;
        }
        let mut otk = Zeroizing::new([0u8; 32]);
        let mut c = chacha20::ChaCha20::new((&*self.key).into(), nonce.into());
        c.apply_keystream(&mut otk[..]);
        let mut mac = poly1305::Poly1305::new((&*otk).into());
        mac.update_padded(ciphertext);
        let mut lens = [0u8; 16];
        lens[8..].copy_from_slice(&(ciphertext.len() as u64).to_le_bytes());
        mac.update(&[lens.into()]);
        let mut expected: [u8; TAG_LEN] = mac.finalize().into();
        let ok = expected.ct_eq(tag).into();
        expected.zeroize();
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST GCM test case 14 (AES-256, zero key, zero IV, 16 zero bytes).
    #[test]
    fn aes_gcm_known_answer() {
        let t = AesGcmTag::new(&[0u8; 32]);
        let ct = [
            0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e, 0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3,
            0x9d, 0x18,
        ];
        let tag = [
            0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a,
            0xb9, 0x19,
        ];
        assert!(t.verify(&[0u8; 12], &ct, &tag));
        let mut bad = tag;
        bad[15] ^= 1;
        assert!(!t.verify(&[0u8; 12], &ct, &bad));
        // Test case 13: no plaintext.
        let tag13 = [
            0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45, 0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb,
            0x73, 0x8b,
        ];
        assert!(t.verify(&[0u8; 12], &[], &tag13));
    }

    /// RFC 8439 section 2.8.2's example, without its associated data, is not
    /// a published vector; the cross-checks against ring and RustCrypto in
    /// tests/fuzz.rs cover the construction. Here: a tag from the
    /// RustCrypto AEAD.
    #[test]
    fn chacha_poly_matches_rustcrypto_seal() {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let key = [0x42u8; 32];
        let nonce = [7u8; 12];
        let a = chacha20poly1305::ChaCha20Poly1305::new(&key.into());
        for n in [0usize, 1, 15, 16, 17, 63, 64, 65, 1000] {
            let mut buf = vec![0xa5u8; n];
            let tag: [u8; 16] = a
                .encrypt_in_place_detached(&nonce.into(), b"", &mut buf)
                .unwrap()
                .into();
            let t = ChaChaPolyTag::new(&key);
            assert!(t.verify(&nonce, &buf, &tag), "{n}");
            let mut other = nonce;
            other[0] ^= 1;
            assert!(!t.verify(&other, &buf, &tag), "{n}");
        }
    }
}
