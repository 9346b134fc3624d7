//! One file per command: arguments to options, the operation, the printer.

pub mod inspect;
pub mod raft;
pub mod rewrite;
pub mod verify;
