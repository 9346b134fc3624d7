//! Checking an envelope's tag without decrypting it.
//!
//! `verify` and `inspect` only need to know whether an envelope opens under
//! a key (and the class of its plaintext), not the plaintext itself. Both AEADs authenticate the
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
///
/// GHASH is computed with POLYVAL (RFC 8452, the `polyval` crate), as the
/// `ghash` crate does: `GHASH(H, X_1..X_n) = rev(POLYVAL(mulX_POLYVAL(rev(H)),
/// rev(X_1)..rev(X_n)))`, `rev` reversing a block's 16 bytes. The `ghash`
/// crate reverses each block on its own with SSE2 shuffles (it is built
/// without SSSE3's `pshufb`; 15 % of verify's CPU on an AES store); here the
/// blocks are reversed a chunk at a time by [`reverse_blocks`], with
/// `vpshufb`/`pshufb` where the CPU has AVX2/SSSE3.
pub struct AesGcmTag {
    aes: aes::Aes256,
    /// POLYVAL keyed with `mulX_POLYVAL(rev(H))`; cloned for each envelope.
    polyval: polyval::Polyval,
}

/// Blocks reversed and hashed per call to POLYVAL (a 512-byte stack buffer).
const CHUNK_BLOCKS: usize = 32;

impl AesGcmTag {
    pub fn new(key: &[u8; 32]) -> Self {
        use aes::cipher::{BlockEncrypt, KeyInit};
        use polyval::hazmat::FieldElement;
        let aes = aes::Aes256::new(key.into());
        let mut h = aes::Block::default();
        aes.encrypt_block(&mut h);
        let mut hk = [0u8; 16];
        hk.copy_from_slice(&h);
        let mut hp = FieldElement::from(hk).reverse().mulx();
        let mut hp_block = polyval::Block::from(hp);
        let polyval = polyval::Polyval::new(&hp_block);
        h.zeroize();
        hk.zeroize();
        hp.zeroize();
        hp_block.zeroize();
        AesGcmTag { aes, polyval }
    }

    /// Whether `tag` is the tag of `ciphertext` under this key and `nonce`.
    pub fn verify(&self, nonce: &[u8; NONCE_LEN], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        self.check(nonce, ciphertext, tag).is_some()
    }

    /// GHASH of `ciphertext` zero-padded to 16 bytes, then the lengths block
    /// (`0^64 || bitlen(C)`), in GCM's byte order. `ahead` is prefetched
    /// (`prefetch`) as the chunks are hashed, one chunk's worth each, the rest
    /// at the end.
    fn ghash(&self, ciphertext: &[u8], ahead: &[u8]) -> [u8; 16] {
        use polyval::universal_hash::UniversalHash;
        let mut p = self.polyval.clone();
        let mut buf = [polyval::Block::default(); CHUNK_BLOCKS];
        let mut chunks = ciphertext.chunks_exact(16 * CHUNK_BLOCKS);
        let mut ahead = ahead.chunks(16 * CHUNK_BLOCKS);
        for chunk in &mut chunks {
            if let Some(a) = ahead.next() {
                prefetch(a);
            }
            reverse_blocks(chunk, &mut buf);
            p.update(&buf);
        }
        for a in ahead {
            prefetch(a);
        }
        let rest = chunks.remainder();
        let full = rest.len() / 16;
        let tail = rest.len() % 16;
        // The remaining full blocks, the zero-padded partial block and the
        // lengths block, hashed together.
        reverse_blocks(&rest[..full * 16], &mut buf[..full]);
        let mut n = full;
        if tail > 0 {
            let mut last = [0u8; 16];
            last[..tail].copy_from_slice(&rest[full * 16..]);
            last.reverse();
            buf[n] = last.into();
            n += 1;
        }
        // rev(0^64 || be64(bitlen)) = le64(bitlen) || 0^64.
        let mut lens = [0u8; 16];
        lens[..8].copy_from_slice(&(ciphertext.len() as u64 * 8).to_le_bytes());
        if n == CHUNK_BLOCKS {
            p.update(&buf);
            p.update(&[lens.into()]);
        } else {
            buf[n] = lens.into();
            p.update(&buf[..n + 1]);
        }
        let mut s: [u8; 16] = p.finalize().into();
        s.reverse();
        s
    }

    /// `verify`, and when the tag is right, the first byte of the plaintext
    /// (None when it is empty): the payload class of the opened envelope,
    /// for one more AES block (counter `nonce || 2`, GCM's first).
    pub fn check(
        &self,
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
    ) -> Option<Option<u8>> {
        self.check_ahead(nonce, ciphertext, tag, &[])
    }

    /// `check`, asking the CPU to load `ahead` (the bytes the caller reads
    /// next: the next record) into its cache while GHASH runs, a chunk at a
    /// time. The answer does not depend on `ahead`.
    ///
    /// Why: in a scan, the record's CRC-32 is the first read of its bytes
    /// from memory and ran at ~7 GB/s per core (memory-bound) against 18 GB/s
    /// on cached data; prefetching in one burst before or during the CRC did
    /// not help, spread over the hashing it does (BENCHMARKS.md, "What bounds
    /// each command", verify).
    pub fn check_ahead(
        &self,
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        ahead: &[u8],
    ) -> Option<Option<u8>> {
        use aes::cipher::BlockEncrypt;
        // GCM's limit for one message (2^39 - 256 bits); the server's records
        // are far smaller, and a longer one would not open anywhere.
        if ciphertext.len() as u64 > (1 << 36) - 32 {
            return None;
        }
        let s = self.ghash(ciphertext, ahead);
        let mut j0 = aes::Block::default();
        j0[..NONCE_LEN].copy_from_slice(nonce);
        j0[15] = 1;
        self.aes.encrypt_block(&mut j0);
        let mut expected = [0u8; TAG_LEN];
        for (e, (a, b)) in expected.iter_mut().zip(s.iter().zip(j0.iter())) {
            *e = a ^ b;
        }
        let ok: bool = expected.ct_eq(tag).into();
        expected.zeroize();
        j0.zeroize();
        let first = if ok && !ciphertext.is_empty() {
            let mut ctr1 = aes::Block::default();
            ctr1[..NONCE_LEN].copy_from_slice(nonce);
            ctr1[15] = 2;
            self.aes.encrypt_block(&mut ctr1);
            let b = ciphertext[0] ^ ctr1[0];
            ctr1.zeroize();
            Some(b)
        } else {
            None
        };
        ok.then_some(first)
    }
}

/// Asks the CPU to start loading the cache lines of `bytes` into its
/// caches (x86_64's `prefetcht0`; nothing elsewhere). A hint: it reads
/// nothing the program sees, cannot fault, and changes no result.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let lines = bytes
            .chunks(64)
            .map(<[u8]>::as_ptr)
            .chain(bytes.last().map(std::ptr::from_ref));
        for p in lines {
            // SAFETY: `p` points into `bytes`; a prefetch only hints the
            // cache (SSE, part of x86_64's baseline) and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Copies the 16-byte blocks of `src` (`16 * out.len()` bytes) into `out`,
/// each with its bytes reversed: with AVX2's `vpshufb` (two blocks at a
/// time; 55 GB/s per core on 4 KiB here against 38 for SSSE3's) or SSSE3's
/// `pshufb` when the CPU has it (runtime detection, cached by std), else
/// [`reverse_blocks_portable`].
fn reverse_blocks(src: &[u8], out: &mut [polyval::Block]) {
    assert_eq!(src.len(), 16 * out.len(), "whole blocks");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { reverse_blocks_avx2(src, out) };
        return;
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked just above).
        unsafe { reverse_blocks_ssse3(src, out) };
        return;
    }
    reverse_blocks_portable(src, out);
}

fn reverse_blocks_portable(src: &[u8], out: &mut [polyval::Block]) {
    for (o, b) in out.iter_mut().zip(src.chunks_exact(16)) {
        let mut x: [u8; 16] = b.try_into().expect("16 bytes");
        x.reverse();
        *o = x.into();
    }
}

/// # Safety
/// The CPU must have SSSE3.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "ssse3")]
unsafe fn reverse_blocks_ssse3(src: &[u8], out: &mut [polyval::Block]) {
    #[cfg(target_arch = "x86")]
    use std::arch::x86::*;
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;
    let rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (o, b) in out.iter_mut().zip(src.chunks_exact(16)) {
        // SAFETY: `b` and `o.0` are 16 bytes each; unaligned loads and
        // stores; SSSE3 is there (the caller's contract).
        unsafe {
            let x = _mm_loadu_si128(b.as_ptr().cast());
            _mm_storeu_si128(o.0.as_mut_ptr().cast(), _mm_shuffle_epi8(x, rev));
        }
    }
}

/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn reverse_blocks_avx2(src: &[u8], out: &mut [polyval::Block]) {
    use std::arch::x86_64::*;
    // Each 128-bit lane reversed on its own: two blocks per shuffle.
    let rev = _mm256_set_epi8(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
        12, 13, 14, 15,
    );
    let mut pairs = out.chunks_exact_mut(2);
    let mut src_pairs = src.chunks_exact(32);
    for (o, b) in (&mut pairs).zip(&mut src_pairs) {
        // SAFETY: `b` is 32 bytes and `o` two 16-byte blocks, contiguous
        // (an array of `[u8; 16]`s); unaligned loads and stores; AVX2 is
        // there (the caller's contract).
        unsafe {
            let x = _mm256_loadu_si256(b.as_ptr().cast());
            _mm256_storeu_si256(o.as_mut_ptr().cast(), _mm256_shuffle_epi8(x, rev));
        }
    }
    // SAFETY: SSSE3 is part of AVX2.
    unsafe { reverse_blocks_ssse3(src_pairs.remainder(), pairs.into_remainder()) };
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
        self.check(nonce, ciphertext, tag).is_some()
    }

    /// `verify`, and when the tag is right, the first byte of the plaintext
    /// (None when it is empty), from the first byte of ChaCha20 block 1.
    pub fn check(
        &self,
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
    ) -> Option<Option<u8>> {
        use chacha20::cipher::{KeyIvInit, StreamCipher};
        // ChaCha20's 32-bit block counter: 2^32 - 1 blocks of keystream after block 0.
        if ciphertext.len() as u64 > ((1u64 << 32) - 1) * 64 {
            return None;
        }
        // Block 0 (its first 32 bytes: the one-time key) and the first byte
        // of block 1 (the keystream of the plaintext's first byte).
        let mut ks = Zeroizing::new([0u8; 65]);
        let mut c = chacha20::ChaCha20::new((&*self.key).into(), nonce.into());
        c.apply_keystream(&mut ks[..]);
        let otk: &[u8; 32] = ks[..32].try_into().expect("32 bytes");
        let mut lens = [0u8; 16];
        lens[8..].copy_from_slice(&(ciphertext.len() as u64).to_le_bytes());
        let mut expected = poly1305_tag(otk, ciphertext, &lens);
        let ok: bool = expected.ct_eq(tag).into();
        expected.zeroize();
        ok.then(|| ciphertext.first().map(|b| b ^ ks[64]))
    }
}

/// Poly1305 of `ciphertext`, zero-padded to 16 bytes, then `lens`.
fn poly1305_tag(otk: &[u8; 32], ciphertext: &[u8], lens: &[u8; 16]) -> [u8; TAG_LEN] {
    use poly1305::universal_hash::{KeyInit, UniversalHash};
    #[cfg(feature = "openssl")]
    {
        let pad = [0u8; 16];
        let pad = &pad[..(16 - ciphertext.len() % 16) % 16];
        if let Some(t) = libcrypto::poly1305(otk, &[ciphertext, pad, lens]) {
            return t;
        }
    }
    let mut mac = poly1305::Poly1305::new(otk.into());
    mac.update_padded(ciphertext);
    mac.update(&[(*lens).into()]);
    mac.finalize().into()
}

/// Poly1305 from the system's libcrypto (OpenSSL 3, `EVP_MAC` "POLY1305"):
/// its AVX2/AVX-512 assembly runs at 4.4 GB/s per core at 4 KiB on this
/// x86_64, against 1.45 GB/s for the poly1305 crate (whose AVX2 intrinsics
/// are not inlined in a build without `target-feature=+avx2`) and 1.65 GB/s
/// for ring's whole ChaCha20-Poly1305 open. One MAC context per thread,
/// re-keyed for each envelope.
#[cfg(feature = "openssl")]
mod libcrypto {
    use openssl_sys as ffi;
    use std::ptr::{null, null_mut};

    struct Ctx(*mut ffi::EVP_MAC_CTX);

    impl Drop for Ctx {
        fn drop(&mut self) {
            // SAFETY: the context came from EVP_MAC_CTX_new and is freed once;
            // OpenSSL wipes the Poly1305 state when it frees it.
            unsafe { ffi::EVP_MAC_CTX_free(self.0) }
        }
    }

    fn new_ctx() -> Option<Ctx> {
        ffi::init();
        // SAFETY: plain OpenSSL 3 calls with a NUL-terminated name and null
        // (default) library context and properties; every pointer is checked
        // before use and the fetched MAC is released once the context holds it.
        unsafe {
            let mac = ffi::EVP_MAC_fetch(null_mut(), c"POLY1305".as_ptr(), null());
            if mac.is_null() {
                return None;
            }
            let ctx = ffi::EVP_MAC_CTX_new(mac);
            ffi::EVP_MAC_free(mac);
            (!ctx.is_null()).then_some(Ctx(ctx))
        }
    }

    thread_local! {
        static CTX: Option<Ctx> = new_ctx();
    }

    /// Poly1305 of the concatenation of `parts` under the one-time key
    /// `otk`; None when OpenSSL has no Poly1305 or fails (the caller then
    /// computes it with the poly1305 crate).
    pub(super) fn poly1305(otk: &[u8; 32], parts: &[&[u8]]) -> Option<[u8; 16]> {
        CTX.with(|c| {
            let c = c.as_ref()?;
            let mut out = [0u8; 16];
            let mut len = 0usize;
            // SAFETY: `c.0` is a live context used by this thread only; every
            // buffer is passed with its own length; `out` has room for the
            // 16-byte tag (`outsize`).
            unsafe {
                if ffi::EVP_MAC_init(c.0, otk.as_ptr(), otk.len(), null()) != 1 {
                    return None;
                }
                for p in parts {
                    if ffi::EVP_MAC_update(c.0, p.as_ptr(), p.len()) != 1 {
                        return None;
                    }
                }
                if ffi::EVP_MAC_final(c.0, out.as_mut_ptr(), &mut len, out.len()) != 1 {
                    return None;
                }
            }
            (len == 16).then_some(out)
        })
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

    /// The GHASH of `AesGcmTag` (POLYVAL over blocks reversed in chunks)
    /// is the ghash crate's at every length across several chunks (0 to
    /// 3 chunks + 2 blocks + 15 bytes), for each reversal the CPU has (AVX2,
    /// SSSE3) and the portable one, and tags from RustCrypto's AES-GCM pass `check`; with
    /// bytes to prefetch (`check_ahead`: none, shorter, longer, the same) the
    /// answers are the same.
    #[test]
    fn ghash_matches_ghash_crate() {
        use aes::cipher::{BlockEncrypt, KeyInit};
        use aes_gcm::aead::AeadInPlace;
        use ghash::universal_hash::UniversalHash;
        let key = [0x5cu8; 32];
        let t = AesGcmTag::new(&key);
        let aes = aes::Aes256::new(&key.into());
        let mut h = aes::Block::default();
        aes.encrypt_block(&mut h);
        let hk: [u8; 16] = h.into();
        let reference = ghash::GHash::new(&hk.into());
        let data: Vec<u8> = (0..16 * (3 * CHUNK_BLOCKS + 3) as u32)
            .map(|i| (i * 131 + 7) as u8)
            .collect();
        let gcm = aes_gcm::Aes256Gcm::new(&key.into());
        for n in 0..data.len() {
            let ct = &data[..n];
            let mut g = reference.clone();
            g.update_padded(ct);
            let mut lens = [0u8; 16];
            lens[8..].copy_from_slice(&(n as u64 * 8).to_be_bytes());
            g.update(&[lens.into()]);
            let want: [u8; 16] = g.finalize().into();
            assert_eq!(t.ghash(ct, &[]), want, "{n}");
            for ahead in [&data[..1], &data[n / 2..], &data[..]] {
                assert_eq!(t.ghash(ct, ahead), want, "{n}");
            }
            if n % 16 == 0 {
                let blocks = n / 16;
                let mut a = vec![polyval::Block::default(); blocks];
                let mut b = vec![polyval::Block::default(); blocks];
                reverse_blocks(ct, &mut a);
                reverse_blocks_portable(ct, &mut b);
                assert_eq!(a, b, "{n}");
                #[cfg(target_arch = "x86_64")]
                {
                    let mut c = vec![polyval::Block::default(); blocks];
                    if std::arch::is_x86_feature_detected!("ssse3") {
                        // SAFETY: the CPU has SSSE3.
                        unsafe { reverse_blocks_ssse3(ct, &mut c) };
                        assert_eq!(c, b, "{n}");
                    }
                    if std::arch::is_x86_feature_detected!("avx2") {
                        c.fill(Default::default());
                        // SAFETY: the CPU has AVX2.
                        unsafe { reverse_blocks_avx2(ct, &mut c) };
                        assert_eq!(c, b, "{n}");
                    }
                }
            }
            let nonce = [(n % 251) as u8; 12];
            let mut buf = ct.to_vec();
            let tag: [u8; 16] = gcm
                .encrypt_in_place_detached(&nonce.into(), b"", &mut buf)
                .unwrap()
                .into();
            assert_eq!(
                t.check(&nonce, &buf, &tag),
                Some(ct.first().copied()),
                "{n}"
            );
            assert_eq!(
                t.check_ahead(&nonce, &buf, &tag, &data[n / 3..]),
                Some(ct.first().copied()),
                "{n}"
            );
            let mut bad = tag;
            bad[n % 16] ^= 0x80;
            assert_eq!(t.check(&nonce, &buf, &bad), None, "{n}");
            assert_eq!(t.check_ahead(&nonce, &buf, &bad, &data), None, "{n}");
        }
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

    /// With the `openssl` feature, libcrypto's Poly1305 is there and agrees
    /// with the poly1305 crate (RFC 8439 section 2.5.2, then every length to
    /// 300 bytes, in one or several pieces).
    #[cfg(feature = "openssl")]
    #[test]
    fn libcrypto_poly1305_agrees() {
        use poly1305::universal_hash::KeyInit;
        let key: [u8; 32] = [
            0x85, 0xd6, 0xbe, 0x78, 0x57, 0x55, 0x6d, 0x33, 0x7f, 0x44, 0x52, 0xfe, 0x42, 0xd5,
            0x06, 0xa8, 0x01, 0x03, 0x80, 0x8a, 0xfb, 0x0d, 0xb2, 0xfd, 0x4a, 0xbf, 0xf6, 0xaf,
            0x41, 0x49, 0xf5, 0x1b,
        ];
        let msg = b"Cryptographic Forum Research Group";
        let tag = [
            0xa8, 0x06, 0x1d, 0xc1, 0x30, 0x51, 0x36, 0xc6, 0xc2, 0x2b, 0x8b, 0xaf, 0x0c, 0x01,
            0x27, 0xa9,
        ];
        assert_eq!(libcrypto::poly1305(&key, &[msg]), Some(tag));
        assert_eq!(
            libcrypto::poly1305(&key, &[&msg[..5], &msg[5..]]),
            Some(tag)
        );
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..300 {
            let want: [u8; 16] = poly1305::Poly1305::new(&key.into())
                .compute_unpadded(&data[..n])
                .into();
            let got = libcrypto::poly1305(&key, &[&data[..n / 3], &data[n / 3..n]]);
            assert_eq!(got, Some(want), "{n}");
        }
    }
}
