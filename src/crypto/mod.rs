//! Encryption as the server does it: AEAD backends, the envelope, keys and
//! their per-channel derivation, and nonces.

pub mod aead;
pub mod envelope;
pub mod keys;
pub mod nonce;
pub mod raft;
pub mod tag;

use aead::{Backend, ChannelAead};
use keys::Key;
use nonce::NonceGen;

/// The keys of one channel, derived once per run: both ciphers under every
/// key given, and the nonces of the first key (the one new envelopes are
/// sealed with), when the run seals.
pub struct ChannelKeys {
    /// One per key, in the order the keys were given.
    pub aeads: Vec<ChannelAead>,
    /// Nonces under `keys[0]`.
    pub nonces: Option<NonceGen>,
    /// Per key: the first key given with the same channel key (itself
    /// unless the same key was given twice).
    first_same: Vec<usize>,
}

impl ChannelKeys {
    pub fn derive(keys: &[Key], channel: &[u8], backend: Backend, sealing: bool) -> Self {
        let mut nonces = None;
        let cks: Vec<_> = keys.iter().map(|k| k.channel_key(channel)).collect();
        let first_same = cks
            .iter()
            .map(|ck| cks.iter().position(|o| o[..] == ck[..]).expect("itself"))
            .collect();
        let aeads = cks
            .iter()
            .enumerate()
            .map(|(i, ck)| {
                if sealing && i == 0 {
                    nonces = Some(NonceGen::new(ck));
                }
                ChannelAead::new(ck, backend)
            })
            .collect();
        ChannelKeys {
            aeads,
            nonces,
            first_same,
        }
    }

    /// Opens an envelope as `envelope::open_any` does (the index of the
    /// first key given that opens it, and the plaintext in `scratch`), but
    /// tries first the key that opened the previous envelope (`*last`,
    /// updated): envelopes come in long runs under one key, and every key
    /// that fails costs a full pass of the AEAD (rekey used to try the new
    /// key on every old envelope first). The answer is the same as in order
    /// for every envelope that only one of the distinct keys opens; only a
    /// ciphertext crafted to authenticate under two of the given keys
    /// (neither AEAD commits to its key) may be said to open under the one
    /// tried first, which, `*last` being per slice, is still deterministic.
    pub fn open<'s>(
        &self,
        cipher: aead::Cipher,
        data: &[u8],
        scratch: &'s mut Vec<u8>,
        last: &mut usize,
    ) -> Option<(usize, &'s [u8])> {
        let order = std::iter::once(*last)
            .filter(|&l| l < self.aeads.len())
            .chain((0..self.aeads.len()).filter(|&i| i != *last));
        for i in order {
            // Keep only the length so the borrow of `scratch` ends each turn.
            if let Some(n) = envelope::open(&self.aeads[i], cipher, data, scratch).map(<[u8]>::len)
            {
                *last = i;
                return Some((self.first_same[i], &scratch[..n]));
            }
        }
        None
    }

    /// `open` when the plaintext is not needed: whether an envelope opens,
    /// in the same order, with the class of its plaintext
    /// (`ChannelAead::authenticates`: the tag alone where that is faster).
    /// `ahead`: the bytes the caller reads next, prefetched where the check
    /// allows (`ChannelAead::authenticates_ahead`; same answer).
    pub fn opens(
        &self,
        cipher: aead::Cipher,
        data: &[u8],
        scratch: &mut Vec<u8>,
        last: &mut usize,
        ahead: &[u8],
    ) -> Option<(usize, envelope::PayloadKind)> {
        let body = &data[1 + aead::NONCE_LEN..];
        let plain_len = body.len().checked_sub(aead::TAG_LEN)?;
        let nonce = envelope::nonce(data);
        let order = std::iter::once(*last)
            .filter(|&l| l < self.aeads.len())
            .chain((0..self.aeads.len()).filter(|&i| i != *last));
        for i in order {
            if let Some(first) =
                self.aeads[i].authenticates_ahead(cipher, nonce, body, scratch, ahead)
            {
                *last = i;
                return Some((
                    self.first_same[i],
                    envelope::classify_head(first, plain_len),
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aead::Cipher;
    use keys::KeyOrigin;

    fn key(m: &[u8]) -> Key {
        Key::from_material("K", KeyOrigin::CommandLine, m)
    }

    /// The last key that opened is tried first, and the answer is the
    /// in-order one: the first key given with that channel key.
    #[test]
    fn open_tries_the_last_key_first_and_answers_in_order() {
        let keys = [key(b"new"), key(b"old"), key(b"new")];
        let ck = ChannelKeys::derive(&keys, b"ch", Backend::default(), true);
        let old = ChannelKeys::derive(&keys[1..2], b"ch", Backend::default(), true);
        let mut env = Vec::new();
        for c in [Cipher::Aes, Cipher::ChaCha] {
            let nonce = old.nonces.as_ref().unwrap().nonce(c, 1, b"hi");
            envelope::seal(&old.aeads[0], c, &nonce, b"hi", &mut env);
            let mut scratch = Vec::new();
            for start in [0, 1, 2, 9] {
                let mut last = start;
                let got = ck
                    .open(c, &env, &mut scratch, &mut last)
                    .map(|(i, p)| (i, p.to_vec()));
                assert_eq!(got, Some((1, b"hi".to_vec())), "start {start}");
                assert_eq!(last, 1);
                let in_order = envelope::open_any(&ck.aeads, c, &env, &mut scratch).map(|x| x.0);
                assert_eq!(in_order, Some(1));
            }
            // Sealed under "new", given twice: index 0 whichever copy opens it.
            let nonce = ck.nonces.as_ref().unwrap().nonce(c, 1, b"hi");
            envelope::seal(&ck.aeads[0], c, &nonce, b"hi", &mut env);
            let mut last = 2;
            assert_eq!(
                ck.open(c, &env, &mut scratch, &mut last).map(|x| x.0),
                Some(0)
            );
            assert_eq!(last, 2);
            // No key opens a damaged envelope.
            let n = env.len();
            env[n - 1] ^= 1;
            assert!(ck.open(c, &env, &mut scratch, &mut last).is_none());
        }
    }
}
