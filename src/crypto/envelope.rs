//! The encryption envelope: `u8 code, [12] nonce, ciphertext, [16] tag`, and
//! the detection the server applies to every payload it delivers.

use crate::crypto::aead::{ChannelAead, Cipher, NONCE_LEN, TAG_LEN};

/// Code byte + nonce + tag.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// Delivered empty.
    Empty,
    /// First byte neither 1 nor 2: delivered as it is.
    Plain,
    /// First byte 1 or 2 and longer than 13 bytes: the server opens it.
    Envelope(Cipher),
    /// First byte 1 or 2 and at most 13 bytes: "trying to decrypt data that is not".
    Short(Cipher),
}

/// The server's detection, step by step (FORMAT.md section 5).
#[inline]
pub fn classify(data: &[u8]) -> PayloadKind {
    classify_head(data.first().copied(), data.len())
}

/// `classify` of a payload known by its first byte (None: empty) and length.
#[inline]
pub fn classify_head(first: Option<u8>, len: usize) -> PayloadKind {
    let Some(first) = first else {
        return PayloadKind::Empty;
    };
    match Cipher::from_code(first) {
        None => PayloadKind::Plain,
        Some(c) if len <= 1 + NONCE_LEN => PayloadKind::Short(c),
        Some(c) => PayloadKind::Envelope(c),
    }
}

#[inline]
pub fn nonce(data: &[u8]) -> &[u8; NONCE_LEN] {
    data[1..1 + NONCE_LEN]
        .try_into()
        .expect("envelope checked by classify")
}

/// Opens an envelope (`classify` said `Envelope(cipher)`) into `scratch`;
/// returns the plaintext on success. `scratch` is reused across calls.
pub fn open<'s>(
    aead: &ChannelAead,
    cipher: Cipher,
    data: &[u8],
    scratch: &'s mut Vec<u8>,
) -> Option<&'s [u8]> {
    let body = &data[1 + NONCE_LEN..];
    if body.len() < TAG_LEN {
        return None;
    }
    scratch.clear();
    scratch.extend_from_slice(body);
    if aead.open_in_place(cipher, nonce(data), scratch) {
        Some(&scratch[..body.len() - TAG_LEN])
    } else {
        None
    }
}

/// Opens an envelope with the first of `aeads` that can (the order keys were
/// given); returns that key's index and the plaintext, kept in `scratch`.
pub fn open_any<'s>(
    aeads: &[ChannelAead],
    cipher: Cipher,
    data: &[u8],
    scratch: &'s mut Vec<u8>,
) -> Option<(usize, &'s [u8])> {
    for (i, aead) in aeads.iter().enumerate() {
        // Keep only the length so the borrow of `scratch` ends each turn.
        if let Some(n) = open(aead, cipher, data, scratch).map(<[u8]>::len) {
            return Some((i, &scratch[..n]));
        }
    }
    None
}

/// Which of `aeads` (the first, in the order keys were given) opens the
/// envelope (`classify` said `Envelope(cipher)`), when the plaintext is not
/// needed, with the class of the plaintext (`classify`): see
/// `ChannelAead::authenticates`. `scratch` is reused across calls.
pub fn opens_any(
    aeads: &[ChannelAead],
    cipher: Cipher,
    data: &[u8],
    scratch: &mut Vec<u8>,
) -> Option<(usize, PayloadKind)> {
    let body = &data[1 + NONCE_LEN..];
    let plain_len = body.len().checked_sub(TAG_LEN)?;
    aeads.iter().enumerate().find_map(|(i, a)| {
        a.authenticates(cipher, nonce(data), body, scratch)
            .map(|first| (i, classify_head(first, plain_len)))
    })
}

/// Writes `code || nonce || seal(plaintext) || tag` into `out`.
pub fn seal(
    aead: &ChannelAead,
    cipher: Cipher,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    out.clear();
    seal_append(aead, cipher, nonce, plaintext, out);
}

/// `seal`, appending the envelope (`plaintext.len() + OVERHEAD` bytes) to
/// what `out` already holds.
pub fn seal_append(
    aead: &ChannelAead,
    cipher: Cipher,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    out.reserve(plaintext.len() + OVERHEAD);
    out.push(cipher.code());
    out.extend_from_slice(nonce);
    let body = out.len();
    out.extend_from_slice(plaintext);
    let tag = aead.seal_in_place(cipher, nonce, &mut out[body..]);
    out.extend_from_slice(&tag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_matches_server() {
        assert_eq!(classify(b""), PayloadKind::Empty);
        assert_eq!(classify(b"\x03abc"), PayloadKind::Plain);
        assert_eq!(classify(&[1u8; 13]), PayloadKind::Short(Cipher::Aes));
        assert_eq!(classify(&[2u8; 14]), PayloadKind::Envelope(Cipher::ChaCha));
    }
}
