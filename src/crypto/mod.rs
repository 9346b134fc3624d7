//! Encryption as the server does it: AEAD backends, the envelope, keys and
//! their per-channel derivation, and nonces.

pub mod aead;
pub mod envelope;
pub mod keys;
pub mod nonce;
