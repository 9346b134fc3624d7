//! The two AEADs behind one small interface, with two backends: ring (the
//! fast default) and the RustCrypto crates (portable, always built so tests
//! can check that each backend opens what the other seals).

use crate::crypto::tag;
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Cipher {
    #[serde(rename = "AES")]
    Aes,
    #[serde(rename = "CHACHA")]
    ChaCha,
}

impl Cipher {
    /// The envelope's first byte.
    pub fn code(self) -> u8 {
        match self {
            Cipher::Aes => 1,
            Cipher::ChaCha => 2,
        }
    }

    pub fn from_code(b: u8) -> Option<Cipher> {
        match b {
            1 => Some(Cipher::Aes),
            2 => Some(Cipher::ChaCha),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    #[cfg(feature = "ring")]
    #[default]
    Ring,
    #[cfg_attr(not(feature = "ring"), default)]
    RustCrypto,
}

impl Backend {
    pub fn all() -> &'static [Backend] {
        &[
            #[cfg(feature = "ring")]
            Backend::Ring,
            Backend::RustCrypto,
        ]
    }
}

// One per channel and key: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Imp {
    #[cfg(feature = "ring")]
    Ring {
        aes: Box<ring::aead::LessSafeKey>,
        chacha: Box<ring::aead::LessSafeKey>,
    },
    RustCrypto {
        aes: Box<aes_gcm::Aes256Gcm>,
        chacha: Box<chacha20poly1305::ChaCha20Poly1305>,
    },
}

/// Both ciphers keyed with one channel key.
pub struct ChannelAead {
    imp: Imp,
    /// The tag-only checks `authenticates` uses instead of an open, per
    /// cipher where they are faster than this backend's open.
    /// With the smallest ciphertext length they are used for.
    aes_tag: Option<(usize, Box<tag::AesGcmTag>)>,
    chacha_tag: Option<(usize, Box<tag::ChaChaPolyTag>)>,
}

/// From which ciphertext length `authenticates` checks only the tag
/// (`crypto::tag`) for this cipher under this backend (None: it always
/// opens). Chosen by measurement on x86_64 (BENCHMARKS.md, "What bounds each
/// command"; per core, 4 KiB envelopes):
/// GHASH alone (polyval 0.7, PCLMULQDQ) 3.4 GB/s vs ring's AES-256-GCM open
/// 3.0 GB/s and RustCrypto's aes-gcm 1.0 GB/s; Poly1305 alone (poly1305
/// 0.8) 1.45 GB/s vs ring's ChaCha20-Poly1305 open 1.65 GB/s (its AVX2 code
/// is slower than ring's stitched assembly) and RustCrypto's 0.7 GB/s; with
/// the `openssl` feature, Poly1305 from libcrypto, 4.4 GB/s.
pub fn tag_only(backend: Backend, cipher: Cipher) -> Option<usize> {
    match (backend, cipher) {
        #[cfg(feature = "ring")]
        (Backend::Ring, Cipher::Aes) => Some(0),
        // libcrypto's per-message set-up (EVP_MAC_init) and ChaCha20 block 0
        // cost more than ring's whole open below a few hundred bytes.
        #[cfg(all(feature = "ring", feature = "openssl"))]
        (Backend::Ring, Cipher::ChaCha) => Some(256),
        #[cfg(all(feature = "ring", not(feature = "openssl")))]
        (Backend::Ring, Cipher::ChaCha) => Some(CHACHA_TAG_FROM),
        (Backend::RustCrypto, _) => Some(0),
    }
}

/// From this ciphertext length ring's ChaCha20-Poly1305 open is slower than
/// the tag alone with the poly1305 crate (default build, no `openssl`).
/// The crate's Poly1305 costs ~1.45 us per message (its AVX2 intrinsics
/// are not inlined into a build without `target-feature=+avx2`, so its
/// set-up and finish are calls to one-instruction functions) plus ~0.3 ns
/// a byte; ring's open (+ the copy it needs) ~0.14 us plus ~0.57 ns a byte.
/// Per core, CPU time (BENCHMARKS.md, "ChaCha20-Poly1305: ring's open or the
/// tag alone"): equal at ~7 KiB; at 8 KiB the tag 4.5 us vs the open 4.8;
/// 16 KiB 7.0 vs 9.4; 64 KiB 25 vs 38; at 4 KiB the open wins, 2.5 vs 3.3.
pub const CHACHA_TAG_FROM: usize = 8 << 10;

impl ChannelAead {
    pub fn new(key: &Zeroizing<[u8; 32]>, backend: Backend) -> Self {
        let imp = match backend {
            #[cfg(feature = "ring")]
            Backend::Ring => {
                use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
                Imp::Ring {
                    aes: Box::new(LessSafeKey::new(
                        UnboundKey::new(&AES_256_GCM, &key[..]).expect("32-byte key"),
                    )),
                    chacha: Box::new(LessSafeKey::new(
                        UnboundKey::new(&CHACHA20_POLY1305, &key[..]).expect("32-byte key"),
                    )),
                }
            }
            Backend::RustCrypto => {
                use aes_gcm::KeyInit;
                Imp::RustCrypto {
                    aes: Box::new(
                        aes_gcm::Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key"),
                    ),
                    chacha: Box::new(
                        chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key[..])
                            .expect("32-byte key"),
                    ),
                }
            }
        };
        let aes_tag =
            tag_only(backend, Cipher::Aes).map(|m| (m, Box::new(tag::AesGcmTag::new(key))));
        let chacha_tag =
            tag_only(backend, Cipher::ChaCha).map(|m| (m, Box::new(tag::ChaChaPolyTag::new(key))));
        ChannelAead {
            imp,
            aes_tag,
            chacha_tag,
        }
    }

    /// Whether `body` (ciphertext followed by the tag) opens under this key,
    /// without keeping the plaintext: Some(the plaintext's first byte, None
    /// when it is empty) when it does. Checks only the tag where that is
    /// faster (`tag_only`), else opens a copy in `scratch`.
    pub fn authenticates(
        &self,
        cipher: Cipher,
        nonce: &[u8; NONCE_LEN],
        body: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Option<Option<u8>> {
        self.authenticates_ahead(cipher, nonce, body, scratch, &[])
    }

    /// `authenticates`, with the bytes the caller reads next (`ahead`: a
    /// scan's next record), which the AES tag check prefetches as it hashes
    /// (`AesGcmTag::check_ahead`). Same answer.
    pub fn authenticates_ahead(
        &self,
        cipher: Cipher,
        nonce: &[u8; NONCE_LEN],
        body: &[u8],
        scratch: &mut Vec<u8>,
        ahead: &[u8],
    ) -> Option<Option<u8>> {
        let ct_len = body.len().checked_sub(TAG_LEN)?;
        let (ct, tag) = body.split_at(ct_len);
        let tag: &[u8; TAG_LEN] = tag.try_into().expect("TAG_LEN bytes");
        match cipher {
            Cipher::Aes => {
                if let Some((min, t)) = &self.aes_tag {
                    if ct.len() >= *min {
                        return t.check_ahead(nonce, ct, tag, ahead);
                    }
                }
            }
            Cipher::ChaCha => {
                if let Some((min, t)) = &self.chacha_tag {
                    if ct.len() >= *min {
                        return t.check(nonce, ct, tag);
                    }
                }
            }
        }
        scratch.clear();
        scratch.extend_from_slice(body);
        self.open_in_place(cipher, nonce, scratch)
            .then(|| scratch[..ct_len].first().copied())
    }

    /// Opens `buf` (ciphertext followed by the tag) in place; on success the
    /// plaintext is `buf[..len - TAG_LEN]`.
    pub fn open_in_place(&self, cipher: Cipher, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) -> bool {
        if buf.len() < TAG_LEN {
            return false;
        }
        match &self.imp {
            #[cfg(feature = "ring")]
            Imp::Ring { aes, chacha } => {
                let k = if cipher == Cipher::Aes { aes } else { chacha };
                let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
                k.open_in_place(n, ring::aead::Aad::empty(), buf).is_ok()
            }
            Imp::RustCrypto { aes, chacha } => {
                use aes_gcm::aead::AeadInPlace;
                let (ct, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
                let tag = aes_gcm::Tag::clone_from_slice(tag);
                let n = aes_gcm::Nonce::from_slice(nonce);
                match cipher {
                    Cipher::Aes => aes.decrypt_in_place_detached(n, b"", ct, &tag).is_ok(),
                    Cipher::ChaCha => chacha.decrypt_in_place_detached(n, b"", ct, &tag).is_ok(),
                }
            }
        }
    }

    /// Seals `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        cipher: Cipher,
        nonce: &[u8; NONCE_LEN],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        match &self.imp {
            #[cfg(feature = "ring")]
            Imp::Ring { aes, chacha } => {
                let k = if cipher == Cipher::Aes { aes } else { chacha };
                let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
                let tag = k
                    .seal_in_place_separate_tag(n, ring::aead::Aad::empty(), buf)
                    .expect("payload within AEAD limits");
                tag.as_ref().try_into().expect("16-byte tag")
            }
            Imp::RustCrypto { aes, chacha } => {
                use aes_gcm::aead::AeadInPlace;
                let n = aes_gcm::Nonce::from_slice(nonce);
                let tag = match cipher {
                    Cipher::Aes => aes.encrypt_in_place_detached(n, b"", buf),
                    Cipher::ChaCha => chacha.encrypt_in_place_detached(n, b"", buf),
                }
                .expect("payload within AEAD limits");
                tag.into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_interoperate() {
        let key = Zeroizing::new([7u8; 32]);
        let nonce = [3u8; 12];
        for &c in &[Cipher::Aes, Cipher::ChaCha] {
            for &a in Backend::all() {
                for &b in Backend::all() {
                    let mut buf = b"hello world".to_vec();
                    let tag = ChannelAead::new(&key, a).seal_in_place(c, &nonce, &mut buf);
                    buf.extend_from_slice(&tag);
                    assert!(ChannelAead::new(&key, b).open_in_place(c, &nonce, &mut buf));
                    assert_eq!(&buf[..11], b"hello world");
                }
            }
        }
    }
}
