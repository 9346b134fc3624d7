//! The NATS Streaming file store on disk: bytes in, typed views out.
//! Nothing here knows about keys, settings or the server's decisions.

pub mod crc;
pub mod index;
pub mod layout;
pub mod lock;
pub mod proto;
pub mod record;
pub mod side;
