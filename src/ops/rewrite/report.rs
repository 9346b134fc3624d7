//! What a run changed, per channel, and what it refused.

use super::*;
use crate::format::damage::DamageKind;
pub use crate::ops::archived::PlaintextOnDisk;

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
    /// Records carried over byte for byte (--keep-damaged).
    pub kept: u64,
    /// Records whose damaged header size was rewritten from the index.
    pub headers_repaired: u64,
    /// Envelopes the target key already opens, kept in a cipher other than
    /// the one asked for (encrypt never re-seals those; `rekey --cipher`
    /// does, so with rekey this stays 0).
    pub kept_other_cipher: u64,
    /// Envelopes judged (opened or not), and which keys (by index, a
    /// bitset) opened at least one: for "key K opens none of them".
    #[serde(skip)]
    pub envelopes: u64,
    #[serde(skip)]
    pub opened_keys: [u64; 4],
    /// Plaintext payloads (non-empty, first byte neither 1 nor 2: what
    /// inspect counts as plaintext) on disk before the run, and after it as
    /// the check planned it. For `PlaintextOnDisk`.
    #[serde(skip)]
    pub plaintext_before: u64,
    #[serde(skip)]
    pub plaintext_after: u64,
}

impl Tally {
    /// Note what a payload was, for the per-key facts.
    pub(super) fn saw(&mut self, seen: Seen) {
        match seen {
            Seen::Opened(i, _) => {
                self.envelopes += 1;
                if let Some(w) = self.opened_keys.get_mut(i / 64) {
                    *w |= 1 << (i % 64);
                }
            }
            Seen::Unopened(_) => self.envelopes += 1,
            Seen::Empty | Seen::Plain | Seen::Short => {}
        }
    }

    /// Whether `keys[i]` opened at least one envelope.
    pub fn opened_any(&self, i: usize) -> bool {
        self.opened_keys
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Note an envelope of the target key kept in a cipher other than the
    /// rule's (encrypt's).
    pub(super) fn kept_cipher(&mut self, rule: Rule, seen: Seen, c: Change) {
        if let (Change::Keep, Seen::Opened(0, has), Rule::Encrypt { cipher }) = (c, seen, rule) {
            if has != cipher {
                self.kept_other_cipher += 1;
            }
        }
    }

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
        self.kept += o.kept;
        self.headers_repaired += o.headers_repaired;
        self.kept_other_cipher += o.kept_other_cipher;
        self.envelopes += o.envelopes;
        for (a, b) in self.opened_keys.iter_mut().zip(o.opened_keys) {
            *a |= b;
        }
        self.plaintext_before += o.plaintext_before;
        self.plaintext_after += o.plaintext_after;
    }

    /// Note a record's payload before the run and after `change` (None:
    /// the record stays as it is).
    pub(super) fn plaintext(&mut self, info: &RecordInfo, change: Option<Change>) {
        let plain = info.kind == PayloadKind::Plain;
        self.plaintext_before += u64::from(plain);
        self.plaintext_after += u64::from(match change {
            None | Some(Change::Keep) => plain,
            Some(Change::Encrypt | Change::Rekey) => false,
            Some(Change::Decrypt) => info.plain_kind == Some(PayloadKind::Plain),
        });
    }
}

/// A given key that opens none of the envelopes checked, in a run refused
/// for envelopes no key opens (it is likely not a key that wrote them).
#[derive(Debug, Clone, Serialize)]
pub struct KeyOpensNone {
    /// K1, K2, ... as the keys were given.
    pub key: String,
    pub origin: crate::crypto::keys::KeyOrigin,
    pub envelopes: u64,
}

/// The keys of `job` that open none of `tally`'s envelopes, when some
/// envelope was refused for no key opening it (decrypt and rekey); rekey's new key (`keys[0]`)
/// is not one the envelopes are expected under.
pub(super) fn keys_opening_none(
    job: &Job,
    tally: &Tally,
    refused: &[Refusal],
) -> Vec<KeyOpensNone> {
    let wrong_key = refused.iter().any(|f| f.reason == Refused::WrongKey);
    if !wrong_key || tally.envelopes == 0 {
        return Vec::new();
    }
    let first_old = match job.rule {
        Rule::Rekey { .. } => 1,
        Rule::Decrypt => 0,
        // encrypt's refusal has its own advice (rekey to the key first).
        Rule::Encrypt { .. } => return Vec::new(),
    };
    job.keys
        .iter()
        .enumerate()
        .skip(first_old)
        .filter(|(i, _)| !tally.opened_any(*i))
        .map(|(_, k)| KeyOpensNone {
            key: k.id.clone(),
            origin: k.origin.clone(),
            envelopes: tally.envelopes,
        })
        .collect()
}

/// encrypt: envelopes already under its key in the other cipher, which it
/// keeps; `rekey` with that key as old and new key and `--cipher` converts
/// them (the printer builds the command from the key's source).
#[derive(Debug, Clone, Serialize)]
pub struct OtherCipher {
    pub envelopes: u64,
    /// The cipher asked for.
    pub cipher: Cipher,
    /// K1, as the key was given.
    pub key: String,
    pub origin: crate::crypto::keys::KeyOrigin,
}

/// The `OtherCipher` fact of a run whose tallies are `checked`.
pub(super) fn other_cipher(job: &Job, checked: &Tally) -> Option<OtherCipher> {
    match (job.rule, job.keys.first()) {
        (Rule::Encrypt { cipher }, Some(k)) if checked.kept_other_cipher > 0 => Some(OtherCipher {
            envelopes: checked.kept_other_cipher,
            cipher,
            key: k.id.clone(),
            origin: k.origin.clone(),
        }),
        _ => None,
    }
}

/// One record (or file) the run cannot handle.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub channel: String,
    pub file: String,
    pub seq: Option<u64>,
    pub offset: Option<u64>,
    pub reason: Refused,
    /// In an archived slice (the server never reads it).
    pub archived: bool,
}

/// Why a record or file cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Damage the rewrite cannot carry over faithfully.
    Damage(DamageKind),
    /// The payload field appears more than once in the record.
    DataRepeated,
    /// Starts with 1 or 2, no key opens it, no known nonce: likely plaintext.
    Ambiguous,
    /// A real envelope (the server's or stanctl's nonce) no given key opens.
    WrongKey,
    /// The rewritten record would not fit a record header's size.
    TooLarge,
    /// A symbolic link on the way to a slice rewritten in place.
    Symlink,
    /// The store belongs to a clustered node and its Raft log was not given.
    RaftLogNotGiven { node_id: String },
    /// An item of the Raft log's `logs` bucket that does not decode.
    RaftEntry(String),
    /// --keep-damaged: the server's verdict on a kept record (or whether it
    /// starts) would change under these server options.
    VerdictWouldChange(GuardSetting),
    /// `--one-pass`: the file system has less free space than staging
    /// every slice needs.
    NoRoomToStage(StagingSpace),
}

/// The server options a guard comparison ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardSetting {
    pub file_crc: bool,
    pub read_buffer_size: u64,
    pub truncate_on_eof: bool,
}

/// Something `--keep-damaged` carried over byte for byte.
#[derive(Debug, Clone)]
pub struct Kept {
    pub channel: String,
    pub file: String,
    pub seq: Option<u64>,
    pub offset: Option<u64>,
    /// Bytes carried over.
    pub len: u64,
    pub what: KeptWhat,
    /// A whole slice: the sequences its records hold.
    pub range: Option<(u64, u64)>,
    /// In an archived slice (the server never reads it).
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptWhat {
    /// One record of a slice framed by its index (or its headers), kept
    /// with its index entry's size.
    Record(Refused),
    /// Bytes after the last framed record (the server never reads them
    /// while it trusts the index).
    Tail,
    /// The whole slice (.dat and .idx), because its records cannot be
    /// framed the way the server frames them; the first problem.
    Slice(Refused),
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
    /// With envelopes refused for no key opening them: the given keys
    /// that open none of the envelopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys_opening_none: Vec<KeyOpensNone>,
    /// encrypt: envelopes under its key kept in the other cipher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_cipher: Option<OtherCipher>,
    /// A clustered node's Raft log, rewritten with the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raft_log: Option<RaftLogReport>,
    pub keep_damaged: bool,
    /// With --keep-damaged: what was carried over byte for byte.
    pub kept: Vec<Kept>,
    /// The write stopped early because the operator asked (`Sink::cancelled`).
    pub interrupted: Option<Interrupted>,
    /// Archived slices (`msgs.N.dat.bak`), checked and converted with the
    /// live ones; not counted in `channels` and `totals`.
    #[serde(skip)]
    pub archived: Vec<ArchivedSlice>,
    /// The archived slices' tallies added up.
    pub archived_totals: Tally,
    /// The store is read once: the check stages the new slices (`--output`
    /// without `--keep-damaged`, or `--one-pass`); on a dry run, whether a
    /// real run would.
    pub one_pass: bool,
    /// `--one-pass` in place: the free space staging needs and has, per
    /// file system (empty otherwise).
    pub staging_space: Vec<StagingSpace>,
}

/// An archived slice (`msgs.N.dat.bak`, with its `msgs.N.idx.bak` when
/// there is one) and what the run did to it.
#[derive(Debug, Clone)]
pub struct ArchivedSlice {
    pub channel: String,
    /// The `.dat.bak`, relative to the store.
    pub file: String,
    pub index_file: Option<String>,
    pub tally: Tally,
}

impl RewriteReport {
    /// `operation` on `store` (to `output`), before anything is counted:
    /// no channels, no refusal, nothing kept, not interrupted.
    pub fn new(
        operation: Operation,
        store: String,
        output: Option<String>,
        dry_run: bool,
    ) -> RewriteReport {
        RewriteReport {
            schema: SCHEMA,
            operation,
            store,
            output,
            dry_run,
            channels: Vec::new(),
            totals: Tally::default(),
            refused: Vec::new(),
            keys_opening_none: Vec::new(),
            other_cipher: None,
            raft_log: None,
            keep_damaged: false,
            kept: Vec::new(),
            interrupted: None,
            archived: Vec::new(),
            archived_totals: Tally::default(),
            one_pass: false,
            staging_space: Vec::new(),
        }
    }

    /// Whether the report's counts describe the store after the run (or,
    /// on a dry run, after a real run); false on a refusal: nothing was
    /// written, the counts of changes are void and the store is as it was.
    pub fn counts_apply(&self) -> bool {
        self.refused.is_empty()
    }

    /// A stand-alone Raft log's run (`run_log`): no store, no slices.
    pub fn store_less(&self) -> bool {
        self.raft_log
            .as_ref()
            .is_some_and(|l| l.path == self.store && self.channels.is_empty())
    }

    /// The plaintext messages on disk when the run ends (a dry run: when a
    /// real run would end; a refusal: as they are), in live and archived
    /// slices. None when the write was interrupted: which slices were
    /// finished is not tracked one by one.
    pub fn plaintext_on_disk(&self) -> Option<PlaintextOnDisk> {
        let unscanned = self.refused.iter().any(|r| {
            matches!(
                r.reason,
                Refused::RaftLogNotGiven { .. } | Refused::NoRoomToStage(_)
            )
        });
        if self.interrupted.is_some() || unscanned || self.store_less() {
            return None;
        }
        let after = self.counts_apply();
        let of = |t: &Tally| {
            if after {
                t.plaintext_after
            } else {
                t.plaintext_before
            }
        };
        Some(PlaintextOnDisk::new(
            self.channels.iter().map(|c| (c.name.clone(), of(&c.tally))),
            self.archived.iter().map(|a| (a.file.clone(), of(&a.tally))),
        ))
    }
}

/// The Raft log's part of a node's rewrite: `records` counts entries;
/// `slices_rewritten` is 1 when the log was rewritten.
#[derive(Debug, Clone, Serialize)]
pub struct RaftLogReport {
    pub path: String,
    pub output: Option<String>,
    #[serde(flatten)]
    pub tally: Tally,
}

/// How far an interrupted write got: every slice is either finished or
/// untouched, and no temp file is left.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Interrupted {
    pub slices_done: u64,
    pub slices_total: u64,
    /// The pass the stop was honoured in.
    pub during: StoppedDuring,
}

/// Where a rewrite stopped when the operator asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedDuring {
    /// A one-pass `--output` check: what it had staged was removed, with
    /// the output when the run created it; nothing was written.
    Check,
    /// The write (the slices finished are counted in `slices_done`).
    Write,
}

/// 2: on a refusal the tallies count what was done (nothing), the plan is
/// under `planned` (`stanctl.rewrite/1` gave the plan in the tallies).
pub const SCHEMA: &str = "stanctl.rewrite/2";
