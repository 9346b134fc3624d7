//! What a run changed, per channel, and what it refused.

use super::*;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub records: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub encrypted: u64,
    pub decrypted: u64,
    pub rekeyed: u64,
    /// Bytes of the slice files (.dat and .idx) before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub slices_rewritten: u64,
}

impl Tally {
    pub(super) fn count(&mut self, c: Change) {
        self.records += 1;
        match c {
            Change::Keep => self.unchanged += 1,
            Change::Encrypt => self.encrypted += 1,
            Change::Decrypt => self.decrypted += 1,
            Change::Rekey => self.rekeyed += 1,
        }
        if c != Change::Keep {
            self.changed += 1;
        }
    }

    pub(super) fn add(&mut self, o: &Tally) {
        self.records += o.records;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
        self.encrypted += o.encrypted;
        self.decrypted += o.decrypted;
        self.rekeyed += o.rekeyed;
        self.bytes_before += o.bytes_before;
        self.bytes_after += o.bytes_after;
        self.slices_rewritten += o.slices_rewritten;
    }
}

/// One record (or file) the run cannot handle.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub channel: String,
    pub file: String,
    pub seq: Option<u64>,
    pub offset: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelReport {
    pub name: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, Serialize)]
pub struct RewriteReport {
    pub schema: &'static str,
    pub operation: Operation,
    pub store: String,
    pub output: Option<String>,
    pub dry_run: bool,
    pub channels: Vec<ChannelReport>,
    pub totals: Tally,
    pub refused: Vec<Refusal>,
}

pub const SCHEMA: &str = "stanctl.rewrite/1";
