//! Encryption as the server does it: AEAD backends, the envelope, keys and
//! their per-channel derivation, and nonces.

pub mod aead;
pub mod envelope;
pub mod keys;
pub mod nonce;
pub mod raft;

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
}

impl ChannelKeys {
    pub fn derive(keys: &[Key], channel: &[u8], backend: Backend, sealing: bool) -> Self {
        let mut nonces = None;
        let aeads = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let ck = k.channel_key(channel);
                if sealing && i == 0 {
                    nonces = Some(NonceGen::new(&ck));
                }
                ChannelAead::new(&ck, backend)
            })
            .collect();
        ChannelKeys { aeads, nonces }
    }
}
