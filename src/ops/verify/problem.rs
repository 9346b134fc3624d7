//! Why a message is not delivered as plaintext, and findings grouped by kind.

use super::*;

/// Why one message is not delivered as plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    WrongKey(Cipher),
    Lookalike(Cipher),
    Short,
    Crc(u32, u32),
    BadRecord(String),
    /// Looked up, not there: why, and what would help.
    NotFound(String, &'static str),
    Ciphertext,
    /// Encryption off: plaintext starting with 1 or 2, fine now, fails once it is on.
    LookalikeLater,
}

impl Problem {
    pub(super) fn severity(&self) -> Severity {
        match self {
            Problem::Ciphertext => Severity::Ciphertext,
            Problem::LookalikeLater => Severity::Warning,
            _ => Severity::Fails,
        }
    }

    pub(super) fn describe(&self) -> (String, String) {
        match self {
            Problem::WrongKey(c) => (
                format!("{} envelopes the server's key does not open: \"{}\"", c.name(), c.open_error()),
                "start the server with the key that wrote them (NATS_STREAMING_ENCRYPTION_KEY wins over the configured key); `stanctl store inspect DIR --key-file K...` tells which key opens them, `stanctl store rekey` moves them to this key".into(),
            ),
            Problem::Lookalike(c) => (
                format!("plaintext starting with byte {} that the server tries to decrypt: \"{}\"", c.code(), c.open_error()),
                "`stanctl store encrypt DIR --cipher C --assume-plaintext` encrypts these payloads so the server can read them with encryption on; or run the server without encryption".into(),
            ),
            Problem::Short => (
                "payloads of at most 13 bytes starting with 1 or 2: \"trying to decrypt data that is not\"".into(),
                "`stanctl store encrypt DIR --cipher C --assume-plaintext` encrypts them; or run the server without encryption".into(),
            ),
            Problem::Crc(e, g) => (
                format!("corrupted data, expected crc to be {e:#010x}, got {g:#010x}"),
                "the record is damaged on disk: restore this slice from a backup; otherwise the message is lost".into(),
            ),
            Problem::BadRecord(e) => (
                format!("the record does not decode as a message: {e}"),
                "the record is damaged on disk: restore this slice from a backup".into(),
            ),
            Problem::NotFound(why, remedy) => (format!("message not found: {why}"), remedy.to_string()),
            Problem::Ciphertext => (
                "envelopes delivered as they are: subscribers silently receive ciphertext".into(),
                "start the server with -encrypt and the key, or `stanctl store decrypt DIR --key-file K`".into(),
            ),
            Problem::LookalikeLater => (
                "plaintext starting with byte 1 or 2: delivered now, but FAILS once encryption is on".into(),
                "before turning encryption on, run `stanctl store encrypt DIR --cipher C --assume-plaintext`".into(),
            ),
        }
    }

    /// Problems of one kind group into one finding.
    pub(super) fn same_kind(&self, o: &Problem) -> bool {
        match (self, o) {
            (Problem::Crc(..), Problem::Crc(..)) => false,
            (Problem::BadRecord(_), Problem::BadRecord(_)) => false,
            (Problem::NotFound(_, a), Problem::NotFound(_, b)) => a == b,
            _ => self == o,
        }
    }

    pub(super) fn error_text(&self, len: u32) -> String {
        match self {
            Problem::WrongKey(c) | Problem::Lookalike(c) => c.open_error().to_string(),
            Problem::Short => envelope::short_error(len as usize),
            Problem::Crc(e, g) => {
                format!("corrupted data, expected crc to be {e:#010x}, got {g:#010x}")
            }
            Problem::BadRecord(e) => e.clone(),
            Problem::NotFound(..) => "message not found".into(),
            Problem::Ciphertext | Problem::LookalikeLater => String::new(),
        }
    }
}

/// Groups consecutive messages with the same problem into one finding.
pub(super) struct Runs<'a> {
    pub(super) channel: &'a str,
    pub(super) file: &'a str,
    pub(super) open: Option<(Problem, u64, u64, u64, u64)>,
    pub(super) out: Vec<Finding>,
}

impl<'a> Runs<'a> {
    pub(super) fn new(channel: &'a str, file: &'a str) -> Self {
        Runs {
            channel,
            file,
            open: None,
            out: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, p: Problem, seq: u64, offset: u64) {
        if let Some((q, _, last, n, _)) = &mut self.open {
            // Messages delivered fine in between do not split a run.
            if q.same_kind(&p) {
                *last = seq;
                *n += 1;
                return;
            }
        }
        self.flush();
        self.open = Some((p, seq, seq, 1, offset));
    }

    /// `n` messages `first..=last` with the same problem, at once.
    pub(super) fn push_range(&mut self, p: Problem, first: u64, last: u64, n: u64) {
        self.flush();
        self.open = Some((p, first, last, n, 0));
        self.flush();
    }

    pub(super) fn flush(&mut self) {
        if let Some((p, first, last, n, offset)) = self.open.take() {
            let (what, remedy) = p.describe();
            self.out.push(Finding {
                severity: p.severity(),
                channel: Some(self.channel.to_string()),
                first_seq: Some(first),
                last_seq: Some(last),
                count: n,
                file: Some(self.file.to_string()),
                offset: Some(offset),
                what,
                remedy,
            });
        }
    }
}

pub(super) const REMEDY_REBUILD_INDEX: &str =
    "remove the slice's .idx file so the server rebuilds it from the .dat";
pub(super) const REMEDY_GAPS_IN_DAT: &str = "the data file itself has gaps or repeated sequences, and the server finds messages by position: no index rebuild helps; restore the slice from a backup";
pub(super) const REMEDY_MISSING_SLICE: &str = "no slice holds these sequences (a slice file is missing or was removed): restore it from a backup";

/// `--list` prints at most this many "not found" lines for one gap.
pub(super) const LIST_MISSING_CAP: usize = 10_000;

/// One finding for a problem that continues from one slice into the next.
pub(super) fn merge_or_push(list: &mut Vec<Finding>, f: Finding) {
    if let Some(prev) = list.last_mut() {
        if prev.severity == f.severity
            && prev.what == f.what
            && prev.last_seq.is_some()
            && f.first_seq.is_some()
        {
            prev.last_seq = f.last_seq;
            prev.count = prev.count.saturating_add(f.count);
            if prev.file != f.file {
                prev.file = prev.file.take().map(|p| {
                    if p.ends_with(" ...") {
                        p
                    } else {
                        format!("{p} ...")
                    }
                });
            }
            return;
        }
    }
    list.push(f);
}
