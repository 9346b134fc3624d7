//! The NATS Streaming file store on disk: bytes in, typed views out.
//! Nothing here knows about keys, settings or the server's decisions.

pub mod crc;
pub mod damage;
pub mod index;
pub mod layout;
pub mod lock;
pub mod proto;
pub mod raft;
pub mod record;
pub mod side;
pub mod writeback;

/// Lower-case hex of some bytes (hashes and nonces in reports).
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}
