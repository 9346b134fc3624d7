//! A bbolt 1.3.x file: read (memory-mapped, bounds-checked), check, and
//! write afresh. Written by hand: see `raft/mod.rs` for why not a crate.

pub mod bucket;
pub mod check;
pub mod error;
pub mod meta;
pub mod page;
pub mod read;
pub mod write;

pub use bucket::{Bucket, BucketRoot, Item, KeyRange, Visited};
pub use check::{check, CheckProblem, CheckReport};
pub use error::BoltError;
pub use meta::{Meta, MetaProblem};
pub use read::Db;
pub use write::{WriteStats, Writer};
