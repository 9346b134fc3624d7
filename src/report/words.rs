//! The sentences: what each typed fact means, and what to do about it. The
//! server's own error texts are here too, each written once. The human
//! tables, `--list` and `--json` all say things in these words.

use crate::crypto::aead::Cipher;
use crate::format::damage::DamageKind;
use crate::format::hex;
use crate::format::layout::SERVER_FILE;
use crate::format::record::FileVersion;
use crate::ops::inspect::Note;
use crate::ops::rewrite::Refused;
use crate::ops::verify::{
    BadRecord, Finding, FindingKind, IndexLogError, LastMessageError, LogLine, NotFound,
    NotFoundRemedy, Problem, RebuildReason,
};

// ---- The server's error texts ----

/// The server's error for a record whose CRC does not match.
pub fn crc_error(expected: u32, actual: u32) -> String {
    format!("corrupted data, expected crc to be {expected:#010x}, got {actual:#010x}")
}

/// The server's error for a file whose version it cannot accept.
pub fn version_error(v: FileVersion) -> String {
    match v {
        FileVersion::Supported => "supported file version".into(),
        FileVersion::Empty => "unable to verify file version: EOF".into(),
        FileVersion::CutShort(_) => "unable to verify file version: unexpected EOF".into(),
        FileVersion::Unsupported(v) => format!("unsupported file version: {v} (supports [1..1])"),
    }
}

/// The error the server's Go AEAD returns when opening fails.
pub fn open_error(c: Cipher) -> &'static str {
    match c {
        Cipher::Aes => "cipher: message authentication failed",
        Cipher::ChaCha => "chacha20poly1305: message authentication failed",
    }
}

/// The server's error for an envelope too short to open.
pub fn short_error(len: u32) -> String {
    format!("trying to decrypt data that is not (len={len})")
}

/// The server's error for a Raft log entry it cannot serve.
pub fn serve_error(e: &crate::crypto::raft::ServeError) -> String {
    use crate::crypto::raft::ServeError;
    match *e {
        ServeError::NotAnEnvelope { len, .. } => {
            short_error(u32::try_from(len).unwrap_or(u32::MAX))
        }
        ServeError::AuthFailed { cipher } => open_error(cipher).to_string(),
    }
}

pub fn cipher_name(c: Cipher) -> &'static str {
    match c {
        Cipher::Aes => "AES",
        Cipher::ChaCha => "CHACHA",
    }
}

// ---- Damage (inspect, and the side files in verify) ----

const DANGLING: &str = "a record header with no payload at the end of the file: the server reads this as the end of the file and appends new messages after it, where a later index rebuild loses them; truncate the file at this offset before starting";

/// The damage kind's name, as `--json` and the tables show it.
pub fn damage_name(k: &DamageKind) -> &'static str {
    match k {
        DamageKind::Version(FileVersion::Empty) => "empty-file",
        DamageKind::Version(FileVersion::CutShort(_)) => "version-cut-short",
        DamageKind::Version(_) => "unsupported-version",
        DamageKind::CrcMismatch { .. } => "crc-mismatch",
        DamageKind::BadRecord(_) | DamageKind::BadSideRecord { .. } => "bad-record",
        DamageKind::TruncatedRecord { .. } => "truncated-record",
        DamageKind::DanglingHeader => "dangling-header",
        DamageKind::ZeroPadding { .. } => "zero-padding",
        DamageKind::DataAfterPadding => "data-after-padding",
        DamageKind::SequenceOrder { .. } => "sequence-order",
        DamageKind::ServerDatSize { .. } => "server-dat-size",
        DamageKind::UnknownRecordType { .. } => "unknown-record-type",
        DamageKind::ServerDatZeroHeader => "zero-header",
        DamageKind::IndexMissing => "index-missing",
        DamageKind::IndexCrc => "index-crc",
        DamageKind::IndexPartialEntry => "index-partial-entry",
        DamageKind::IndexPadding => "index-padding",
        DamageKind::IndexCount { .. } => "index-count",
        DamageKind::IndexMismatch { .. } => "index-mismatch",
        DamageKind::OrphanIndex => "orphan-index",
        DamageKind::BadSliceName => "bad-slice-name",
    }
}

/// What the damage is, in a sentence.
pub fn damage_detail(k: &DamageKind) -> String {
    match k {
        DamageKind::Version(v) => format!("{}: the server refuses to start", version_error(*v)),
        DamageKind::CrcMismatch { expected, actual } => crc_error(*expected, *actual),
        DamageKind::BadRecord(e) => format!("record does not decode as a message: {e}"),
        DamageKind::BadSideRecord { rtype, error } => {
            format!("record type {rtype} does not decode: {error}")
        }
        DamageKind::TruncatedRecord {
            expected: Some(e),
            available,
        } => format!(
            "record cut short: header announces {e} payload bytes, only {available} remain"
        ),
        DamageKind::TruncatedRecord {
            expected: None,
            available,
        } => format!("record header cut short: {available} of 8 bytes"),
        DamageKind::DanglingHeader => DANGLING.into(),
        DamageKind::ZeroPadding {
            len,
            side_file: false,
        } => format!("{len} zero bytes; the server truncates the file here if it rebuilds the index (verify tells whether it will)"),
        DamageKind::ZeroPadding {
            len,
            side_file: true,
        } => format!("{len} zero bytes; the server truncates the file here"),
        DamageKind::DataAfterPadding => "a zero header followed by non-zero bytes: the server reads what follows only through a trusted index, and an index rebuild truncates it away; keep the .idx, and restore the slice from a backup if you can".into(),
        DamageKind::SequenceOrder { seq, prev } => format!("sequence {seq} follows {prev}"),
        DamageKind::UnknownRecordType { rtype } => format!(
            "record type {rtype} is none the file has: the server refuses to start (\"invalid client record type: {rtype}\" in clients.dat, \"unexpected record type: {rtype}\" in subs.dat)"
        ),
        DamageKind::ServerDatZeroHeader => {
            "a zero record header: the server refuses to start (\"end of file padded with zeros\")".into()
        }
        DamageKind::ServerDatSize { size, record } => format!(
            "file is {size} bytes; one record of {record} bytes needs exactly {}",
            record + 12
        ),
        DamageKind::IndexMissing => "no index file; the server rebuilds it from the data file".into(),
        DamageKind::IndexCrc => "index entry CRC mismatch; the server rebuilds the index".into(),
        DamageKind::IndexPartialEntry => {
            "index ends with a partial entry; the server rebuilds the index".into()
        }
        DamageKind::IndexPadding => "zero entry; the server truncates the index here".into(),
        DamageKind::IndexCount { entries, records } => {
            let why = if entries < records {
                "records past the last entry are invisible to a server that trusts this index"
            } else {
                "entries past the last record: the server's last-entry check fails and it rebuilds the index"
            };
            format!("index has {entries} entries, data file {records} records: {why}")
        }
        DamageKind::IndexMismatch { entry: e, data: d } => format!(
            "entry says seq {} at offset {} size {} ts {}, data file has seq {} at {} size {} ts {}",
            e.seq, e.offset, e.size, e.timestamp, d.seq, d.offset, d.size, d.timestamp
        ),
        DamageKind::OrphanIndex => "index file without its data file; the server ignores it".into(),
        DamageKind::BadSliceName => {
            "the server refuses to start: \"message log has an invalid name\"".into()
        }
    }
}

// ---- verify ----

fn rebuild_reason(r: RebuildReason) -> String {
    match r {
        RebuildReason::NoIndex => "no index file".into(),
        RebuildReason::NoEntries => "the index file holds no entry".into(),
        RebuildReason::BadEntryCrc(n) => format!("index entry {n} has a bad CRC"),
        RebuildReason::PartialEntry => "the index ends with a partial entry".into(),
        RebuildReason::LastEntryMismatch(seq) => {
            format!("its last entry (seq {seq}) does not match the data file")
        }
    }
}

/// The server's text for a message that gogo-protobuf cannot unmarshal.
pub fn gogo_error(e: &crate::format::proto::GogoError) -> String {
    use crate::format::proto::GogoError as G;
    match e {
        G::UnexpectedEof => "unexpected EOF".into(),
        G::IntegerOverflow => "proto: integer overflow".into(),
        G::EndGroupForNonGroup => "proto: MsgProto: wiretype end group for non-group".into(),
        G::IllegalTag { field, wire } => {
            format!("proto: MsgProto: illegal tag {field} (wire type {wire})")
        }
        G::WrongWireType { wire, field } => {
            format!("proto: wrong wireType = {wire} for field {field}")
        }
        G::NegativeLength => "proto: negative length found during unmarshaling".into(),
        G::IllegalWireType(w) => format!("proto: illegal wireType {w}"),
        G::UnexpectedEndOfGroup => "proto: unexpected end of group".into(),
    }
}

fn bad_record(b: &BadRecord) -> String {
    match b {
        BadRecord::Eof => "EOF".into(),
        BadRecord::UnexpectedEof => "unexpected EOF".into(),
        BadRecord::ZeroHeader => "end of file padded with zeros".into(),
        BadRecord::SizeMismatch {
            index_size,
            header_size,
        } => format!("expected size to be {index_size}, got {header_size}"),
        BadRecord::Undecodable(_, Some(g)) => gogo_error(g),
        BadRecord::Undecodable(e, None) => e.to_string(),
    }
}

fn not_found(n: NotFound) -> String {
    match n {
        NotFound::NoEntryAt(seq) => format!("no index entry for seq {seq} at its position"),
        NotFound::NoEntryPast(seq) => format!("the index has no entry past seq {seq}"),
    }
}

const REMEDY_MISSING_SLICE: &str = "no slice holds these sequences (a slice file is missing or was removed): restore it from a backup";

/// The error a subscriber's lookup returns, as `--list` shows it; `len` is
/// the payload's length.
pub fn lookup_error(p: &Problem, len: u32) -> String {
    match p {
        Problem::WrongKey(c) | Problem::Lookalike(c) => open_error(*c).to_string(),
        Problem::Short => short_error(len),
        Problem::Crc { expected, actual } => crc_error(*expected, *actual),
        Problem::BadRecord(b) => bad_record(b),
        Problem::NotFound(..) => "message not found".into(),
        Problem::Ciphertext | Problem::LookalikeLater => String::new(),
        Problem::ReadAheadOnly(p) => lookup_error(p, len),
    }
}

fn problem(p: &Problem) -> (String, String) {
    match p {
        Problem::WrongKey(c) => (
            format!("{} envelopes the server's key does not open: \"{}\"", cipher_name(*c), open_error(*c)),
            "start the server with the key that wrote them (NATS_STREAMING_ENCRYPTION_KEY wins over the configured key); `stanctl store inspect DIR --key-file K...` tells which key opens them, `stanctl store rekey` moves them to this key".into(),
        ),
        Problem::Lookalike(c) => (
            format!("plaintext starting with byte {} that the server tries to decrypt: \"{}\"", c.code(), open_error(*c)),
            "`stanctl store encrypt DIR --cipher C --assume-plaintext` encrypts these payloads so the server can read them with encryption on; or run the server without encryption".into(),
        ),
        Problem::Short => (
            "payloads of at most 13 bytes starting with 1 or 2: \"trying to decrypt data that is not\"".into(),
            "`stanctl store encrypt DIR --cipher C --assume-plaintext` encrypts them; or run the server without encryption".into(),
        ),
        Problem::Crc { expected, actual } => (
            crc_error(*expected, *actual),
            "the record is damaged on disk: restore this slice from a backup; otherwise the message is lost".into(),
        ),
        Problem::BadRecord(b @ BadRecord::Undecodable(..)) => (
            format!("the record does not decode as a message: {}", bad_record(b)),
            "the record is damaged on disk: restore this slice from a backup".into(),
        ),
        Problem::BadRecord(b) => (
            format!("the server cannot read the record its index entry points to: {}", bad_record(b)),
            "the record or its index entry is damaged on disk: restore this slice from a backup (removing the .idx makes the server rebuild it from the .dat, which then refuses to start at a damaged record)".into(),
        ),
        Problem::NotFound(why, remedy) => (
            format!("message not found: {}", not_found(*why)),
            match remedy {
                NotFoundRemedy::RebuildIndex => "remove the slice's .idx file so the server rebuilds it from the .dat",
                NotFoundRemedy::GapsInDat => "the data file itself has gaps or repeated sequences, and the server finds messages by position: no index rebuild helps; restore the slice from a backup",
            }
            .into(),
        ),
        Problem::Ciphertext => (
            "envelopes delivered as they are: subscribers silently receive ciphertext".into(),
            "start the server with -encrypt and the key, or `stanctl store decrypt DIR --key-file K`".into(),
        ),
        Problem::ReadAheadOnly(p) => (
            format!("delivered only because the server's read-ahead serves it (a batch read frames records by the index's sizes and ignores the header's size and later entries' offsets); a lookup that reads this record alone fails with \"{}\": with file_read_buffer_size 0, or when a slow subscriber reaches it after the server's 1-second message cache expired", lookup_error(p, 0)),
            "the record's header or its index entry is damaged: restore the slice from a backup; do not run the server with file_read_buffer_size 0".into(),
        ),
        Problem::LookalikeLater => (
            "plaintext starting with byte 1 or 2: delivered now, but FAILS once encryption is on".into(),
            "before turning encryption on, run `stanctl store encrypt DIR --cipher C --assume-plaintext`".into(),
        ),
    }
}

fn lost(l: Option<u64>) -> String {
    l.map_or("the partial record".to_string(), |q| format!("seq {q}"))
}

/// The error the server itself stops with (the RECOVER-ERROR line), for
/// the refusals whose text is known; `root` stands for the store directory
/// where the server names a file by its full path.
pub fn server_recover_error(f: &Finding, root: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    let file = f.file.as_deref().unwrap_or("");
    let ch = f.channel.as_deref().unwrap_or("");
    let side = |d: &DamageKind| -> Option<String> {
        Some(match d {
            DamageKind::Version(v) => version_error(*v),
            DamageKind::CrcMismatch { expected, actual } => crc_error(*expected, *actual),
            DamageKind::TruncatedRecord { .. } => "unexpected EOF".into(),
            DamageKind::ServerDatZeroHeader => "end of file padded with zeros".into(),
            DamageKind::ServerDatSize { size, record } => format!(
                "incorrect file size, expected {} bytes, got {size} bytes",
                record + 12
            ),
            DamageKind::BadSideRecord { error, .. } => error.to_string(),
            DamageKind::UnknownRecordType { rtype }
                if file == crate::format::layout::CLIENTS_FILE =>
            {
                format!("invalid client record type: {rtype}")
            }
            DamageKind::UnknownRecordType { rtype } => format!("unexpected record type: {rtype}"),
            _ => return None,
        })
    };
    let store = |err: String| {
        let idx = file
            .strip_suffix(".dat")
            .map_or(file.to_string(), |b| format!("{b}.idx"));
        format!("unable to recover message store for [{ch}](file: \"{idx}\"): {err}")
    };
    Some(match &f.kind {
        FindingKind::SideFile(d @ DamageKind::Version(_)) if file == SERVER_FILE => {
            format!("unable to recover server file \"{file}\": {}", side(d)?)
        }
        FindingKind::SideFile(d) if file == SERVER_FILE => {
            format!(
                "unable to recover server file \"{root}/{file}\": {}",
                side(d)?
            )
        }
        FindingKind::SideFile(d @ DamageKind::Version(_))
            if file == crate::format::layout::CLIENTS_FILE =>
        {
            format!("unable to recover client file \"{file}\": {}", side(d)?)
        }
        FindingKind::SideFile(d) if file == crate::format::layout::CLIENTS_FILE => {
            format!(
                "unable to recover client file \"{root}/{file}\": {}",
                side(d)?
            )
        }
        FindingKind::SideFile(d) => {
            format!(
                "unable to recover subscription store for [{ch}]: {}",
                side(d)?
            )
        }
        FindingKind::NoServerButChannels { .. } => {
            "no server state recovered but channels present".into()
        }
        FindingKind::DatVersion(v) => format!(
            "unable to recover message store for [{ch}](file: \"{file}\"): {}",
            version_error(*v)
        ),
        FindingKind::IdxVersion(v) => format!(
            "unable to recover message store for [{ch}](file: \"{file}\"): {}",
            version_error(*v)
        ),
        FindingKind::CutShortRefused { .. } => store("unexpected EOF".into()),
        FindingKind::RebuildCrc {
            expected, actual, ..
        } => store(crc_error(*expected, *actual)),
        FindingKind::RebuildUndecodable(e) => store(e.to_string()),
        _ => return None,
    })
}

fn last_message_error(dat: &str, e: &LastMessageError, root: &str) -> String {
    let why = match e {
        LastMessageError::Eof => "unable to read last record: EOF".to_string(),
        LastMessageError::UnexpectedEof => "unable to read last record: unexpected EOF".into(),
        LastMessageError::ZeroHeader => {
            "unable to read last record: end of file padded with zeros".into()
        }
        LastMessageError::Size { expected, got } => format!(
            "unable to read last record: expected record size to be {expected} bytes, got {got} bytes"
        ),
        LastMessageError::Crc { expected, actual } => {
            format!("unable to read last record: {}", crc_error(*expected, *actual))
        }
        LastMessageError::Decode(e, g) => format!(
            "error decoding message: {}",
            g.as_ref().map_or_else(|| e.to_string(), gogo_error)
        ),
        LastMessageError::Sequence { index, data } => {
            format!("last message sequence in index is {index}, data file is {data}")
        }
    };
    format!("Verification of last message for file \"{root}/{dat}\" failed: {why}")
}

/// The server's log lines (its `ERR:` lines) for one event of its recovery.
pub fn log_lines(l: &LogLine, root: &str) -> Vec<String> {
    let root = root.trim_end_matches('/');
    match l {
        LogLine::LastMessage { dat, why } => vec![last_message_error(dat, why, root)],
        LogLine::IndexError { idx, why } => {
            let err = match why {
                IndexLogError::Crc { expected, actual } => crc_error(*expected, *actual),
                IndexLogError::UnexpectedEof => "unexpected EOF".into(),
                IndexLogError::LastMessage { dat, why } => last_message_error(dat, why, root),
            };
            vec![format!(
                "Error with index file \"{root}/{idx}\": {err}. Truncating and recovering from data file"
            )]
        }
        LogLine::UnexpectedEof {
            file,
            offset,
            expected,
            available,
            truncated,
        } => {
            let mut v = vec![format!("Unexpected EOF for file \"{root}/{file}\"")];
            if !truncated {
                v.push(format!(
                    "It is recommended that you make a copy of the whole datatstore \"{root}\"."
                ));
                v.push(format!("Restart with the ContinueOnUnexpectedEOF flag to truncate this file to this offset: {offset}."));
                v.push(
                    "Dataloss may occur. Details about the first corrupted record follows..."
                        .into(),
                );
                v.push(match expected {
                    Some(size) => {
                        format!("record payload expected to be {size} bytes, only read {available}")
                    }
                    None => format!("record header expected to be 8 bytes, only read {available}"),
                });
            }
            v
        }
        LogLine::Corrupted {
            file,
            expected,
            actual,
        } => vec![format!(
            "Corrupted record in file \"{root}/{file}\": {}",
            crc_error(*expected, *actual)
        )],
        LogLine::ServerFileCorrupted(d) => {
            let err = match d {
                DamageKind::CrcMismatch { expected, actual } => crc_error(*expected, *actual),
                DamageKind::ServerDatZeroHeader => "end of file padded with zeros".into(),
                _ => "unexpected EOF".into(),
            };
            vec![
                format!("Server file \"{root}/{SERVER_FILE}\" corrupted: {err}"),
                "Follow instructions in documentation in order to recover from this".into(),
            ]
        }
    }
}

// ---- the temporary directory ----

/// The temporary directory (`$TMPDIR`) failed, and what it was to hold.
pub fn temp_dir_failed(t: &crate::ops::spill::TempDirFailed) -> String {
    use crate::ops::spill::TempUse;
    let what = match t.used_for {
        TempUse::Spill => "stanctl keeps long listings (inspect --records, verify --list) and the nonce-reuse check's sorted nonces there beyond their memory budget",
        TempUse::GuardScratch => "--keep-damaged writes a scratch copy of the store there to check it before rewriting the store in place; the store is unchanged",
    };
    format!(
        "the temporary directory {} ($TMPDIR) failed: {}; {what}",
        t.dir.display(),
        t.source
    )
}

/// What to do when the temporary directory failed.
pub fn temp_dir_hint(used_for: crate::ops::spill::TempUse) -> &'static str {
    match used_for {
        crate::ops::spill::TempUse::Spill => "set TMPDIR to an existing directory this user can write, on a file system with enough free space (about 100 bytes per message for a listing, 32 per envelope for the nonce check), e.g. `TMPDIR=/var/tmp stanctl ...`, then run the command again",
        crate::ops::spill::TempUse::GuardScratch => "set TMPDIR to an existing directory this user can write, on a file system with room for a copy of the store's slices, e.g. `TMPDIR=/var/tmp stanctl ...`, or use --output DIR (the check then writes the copy there), then run the command again",
    }
}

// ---- interrupted rewrites (SIGINT / SIGTERM) ----

/// A signal before anything was written.
pub const INTERRUPTED_BEFORE_WRITE: &str =
    "interrupted before anything was written; nothing was changed";
/// The first signal during the write.
pub const STOPPING: &str = "stopping after the slice(s) being written (press Ctrl-C again to stop at once; the store stays readable either way)";
/// A second signal during the write.
pub const INTERRUPTED_TWICE: &str = "stopped at once: every slice is converted or as it was, so the server can read the store; temporary files (*.stanctl-tmp) may be left: rerunning the same command removes them and finishes the job";

/// A stand-alone Raft log's rewrite stopped: one file, replaced whole or
/// not at all (`output`: the new log it was writing, removed).
pub fn interrupted_raft_log(op: &str, log: &str, output: Option<&str>) -> String {
    let what = match output {
        None => format!(
            "stopped before replacing the log; {log} is unchanged and no temporary file is left"
        ),
        Some(o) => format!("stopped before finishing {o} and removed it; {log} is untouched"),
    };
    format!("interrupted: raft {op} {what}")
}

/// A rewrite in place stopped between slices during its write.
pub fn interrupted_in_place(op: &str, done: u64, total: u64) -> String {
    format!(
        "interrupted: {op} rewrote {done} of {total} slice(s) in place and stopped between slices; every slice is either converted or as it was, the server can read the store, and no temporary file is left"
    )
}

/// A rewrite to `output` stopped between slices during its write.
pub fn interrupted_to_output(op: &str, done: u64, total: u64, output: &str) -> String {
    format!(
        "interrupted: {op} wrote {done} of {total} slice(s) to {output}; the source is untouched and the copy is incomplete"
    )
}

/// What finishes an interrupted rewrite, before the command itself.
pub const TO_FINISH_RERUN: &str = "to finish, run the same command again:";
/// The same, for a rewrite in place stopped during its write.
pub const TO_FINISH_RERUN_SKIPPING: &str =
    "to finish, run the same command again (it skips the finished slices):";
/// The same, for a rewrite to an output stopped during its write (the
/// command removes the partial copy first).
pub const TO_FINISH_DELETE_AND_RERUN: &str =
    "to finish, delete the partial copy and run the same command again:";

/// The first signal during a one-pass check.
pub fn stopping_staging(at: crate::ops::StagedIn) -> &'static str {
    match at {
        crate::ops::StagedIn::Output => "stopping after the slice(s) being checked, then removing what was staged (press Ctrl-C again to stop at once; the source is untouched either way)",
        crate::ops::StagedIn::Store => "stopping after the slice(s) being checked, then removing what was staged (press Ctrl-C again to stop at once; the store's files are unchanged either way)",
        crate::ops::StagedIn::Scratch => "stopping after the slice(s) being checked, then removing the check's scratch copy (press Ctrl-C again to stop at once; the store's files are unchanged either way)",
        crate::ops::StagedIn::RaftLog => "stopping, then removing the new copy of the Raft log being written (press Ctrl-C again to stop at once; the log and the store are unchanged either way)",
    }
}
/// A second signal during a one-pass check.
pub fn interrupted_twice_staging(at: crate::ops::StagedIn) -> &'static str {
    match at {
        crate::ops::StagedIn::Output => "stopped at once: the source is untouched; the output is unfinished (it holds .stanctl-staging): running the same command again writes it anew",
        crate::ops::StagedIn::Store => "stopped at once: the store's files are unchanged; what was staged is left in the channels' .stanctl-staging directories, which the server ignores: running the same command again removes them and does the job (or delete them)",
        crate::ops::StagedIn::Scratch => "stopped at once: the store's files are unchanged; the --keep-damaged check's scratch copy of the store may be left in $TMPDIR (stanctl-guard-*): running the same command again removes it and does the job (or delete it)",
        crate::ops::StagedIn::RaftLog => "stopped at once: the log and the store are unchanged; the unfinished new copy of the log is left beside it as raft.log.stanctl-tmp, which the server ignores: running the same command again removes it and does the job (or delete it)",
    }
}

/// `--one-pass`'s free-space check on one file system, after the run (or
/// a dry run).
pub fn staging_space(s: &crate::ops::rewrite::StagingSpace, dry_run: bool) -> String {
    let (need, was) = if dry_run {
        ("would need", "is")
    } else {
        ("needed", "was")
    };
    format!(
        "--one-pass: the staging {need} at most about {} (estimated, with a margin of {}) of the {} that {was} free on the file system of {}",
        super::human_bytes(s.needed),
        super::human_bytes(s.margin),
        super::human_bytes(s.available),
        s.path
    )
}

/// A `--one-pass` rewrite in place stopped during its check, as asked:
/// what it had staged is removed, the store's files never changed (with
/// `keep_damaged`: the guard's check, whose scratch copy is removed).
/// Without either flag only a clustered node's check writes (its Raft
/// log's new copy, `one_pass` false).
pub fn interrupted_in_check_in_place(
    op: &str,
    keep_damaged: bool,
    one_pass: bool,
    store: &str,
) -> String {
    match (keep_damaged, one_pass) {
        (true, _) => format!(
            "interrupted, nothing changed: {op} --keep-damaged stopped during the check and removed its scratch copy; {store} is as it was"
        ),
        (false, true) => format!(
            "interrupted, nothing changed: {op} --one-pass stopped during the check and removed what it had staged; {store} is as it was"
        ),
        (false, false) => format!(
            "interrupted, nothing changed: {op} stopped during the check and removed the new copy of the Raft log it was writing; {store} and its log are as they were"
        ),
    }
}

/// A one-pass `--output` rewrite stopped during its check, as asked: what
/// it had staged is removed (with `output` when the run created it).
pub fn interrupted_in_check(op: &str, output: &str, store: &str) -> String {
    format!(
        "interrupted, nothing written to {output}: {op} stopped during the check and removed what it had staged; {store} is untouched"
    )
}

/// A `*.stanctl-tmp` file, as inspect and verify both put it.
pub const LEFTOVER_WHAT: &str = "temporary file (or .stanctl-staging directory) of an interrupted stanctl encrypt, decrypt or rekey (the server does not read it; the slices beside it are complete, old or new)";
pub const LEFTOVER_REMEDY: &str = "to finish the job, run that encrypt, decrypt or rekey again with the same keys and options (it removes these files first and skips the finished slices); not finishing is safe too: the file can then be deleted";

/// What a finding says, and what to do about it.
pub fn finding(f: &Finding) -> (String, String) {
    let file = f.file.as_deref().unwrap_or("-");
    let offset = f.offset.unwrap_or(0);
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    match &f.kind {
        FindingKind::SideFile(d) => {
            let remedy = match d {
                DamageKind::ZeroPadding { .. } => "none needed".to_string(),
                DamageKind::DanglingHeader => {
                    format!("truncate {file} at this offset before starting")
                }
                DamageKind::Version(FileVersion::Empty) if file == SERVER_FILE => "restore server.dat from a backup (without it the server starts as a new store and recovers nothing)".into(),
                DamageKind::Version(FileVersion::Empty) => format!(
                    "remove the empty {file}: the server creates it anew (it held nothing)"
                ),
                _ => "restore this file from a backup".into(),
            };
            (damage_detail(d), remedy)
        }
        FindingKind::NoKey => s(
            "encryption is on but no key is configured",
            "configure the server's key (NATS_STREAMING_ENCRYPTION_KEY or -encryption_key) and give the same key to this check: `stanctl store verify DIR --key-file FILE`",
        ),
        FindingKind::MissingBetweenSlices => s(
            "message not found: between the last sequence of one slice and the first of the next",
            REMEDY_MISSING_SLICE,
        ),
        FindingKind::NonceReuse(r) => (
            format!(
                "nonce {} used twice under one key ({}), by seqs {:?}{}: breaks the secrecy and integrity of these messages",
                hex(&r.nonce),
                cipher_name(r.cipher),
                r.seqs.to_vec(),
                if r.count > 1 { format!(" and the {} nonces after it", r.count - 1) } else { String::new() }
            ),
            "`stanctl store rekey` this channel (it writes fresh nonces)".into(),
        ),
        FindingKind::NotRead
            if file.ends_with(crate::format::layout::TEMP_SUFFIX)
                || file.ends_with(crate::format::layout::STAGING_DIR) =>
        {
            s(LEFTOVER_WHAT, LEFTOVER_REMEDY)
        }
        FindingKind::NotRead if file.ends_with(".bak") => s(
            "an archived slice file (.bak): not read by the server, but its messages are on disk (see Plaintext on disk)",
            "none needed for the server; encrypt, decrypt and rekey convert archived slices with the live ones; remove it when you no longer need it",
        ),
        FindingKind::NotRead => s(
            "not read by the server",
            "none needed; remove it when you no longer need it",
        ),
        FindingKind::BadSliceName => s(
            "message log has an invalid name",
            "rename or move the file out of the channel directory",
        ),
        FindingKind::Raft(r) => raft_finding(r),
        FindingKind::NoCrcMatches { poly } => (
            format!("no record's CRC matches polynomial {poly:#010x}: is that the server's -file_crc_poly? (the default is IEEE, 0xedb88320)"),
            "give --crc-poly the polynomial the server runs with".into(),
        ),
        FindingKind::NoServerInfo { stored } => (
            format!("server.dat holds no ServerInfo record: the server starts as a NEW store and recovers no channel, client or subscription; none of the {stored} stored message(s) is delivered"),
            "restore server.dat from a backup before starting".into(),
        ),
        FindingKind::NoServerButChannels { channels } => (
            format!("server.dat holds no ServerInfo record, and the store has {channels} channel director(ies): the server refuses to start (\"no server state recovered but channels present\")"),
            "restore server.dat from a backup before starting".into(),
        ),
        FindingKind::DatVersion(v) => (
            version_error(*v),
            if *v == FileVersion::Empty {
                "remove the empty file (and its .idx): it holds no message"
            } else {
                "restore this slice from a backup, or move it out of the store (its messages are then lost)"
            }
            .into(),
        ),
        FindingKind::IdxVersion(v) => (
            version_error(*v),
            "remove the .idx file: the server rebuilds it from the .dat".into(),
        ),
        FindingKind::IndexPadding => s(
            "zero entry in the index: the server truncates the index here",
            "none needed",
        ),
        FindingKind::HiddenRecords { hidden } => (
            format!("{hidden} record(s) after the last index entry: the server trusts the index and never sees them"),
            "remove the .idx file so the server rebuilds it from the .dat".into(),
        ),
        FindingKind::IndexRebuilt(why) => (
            format!("the server rebuilds this index from the data file at start-up: {}", rebuild_reason(*why)),
            "none needed (the start takes longer); the rebuild is what the server does anyway".into(),
        ),
        FindingKind::RebuildUndecodable(e) => (
            format!("while rebuilding the index: the record does not decode: {e}"),
            "restore this slice from a backup; or truncate the .dat before this offset (the messages from here on are lost)".into(),
        ),
        FindingKind::RebuildCrc {
            seq,
            expected,
            actual,
        } => (
            format!("while rebuilding the index: seq {seq}: {}", crc_error(*expected, *actual)),
            "restore this slice from a backup; a valid .idx would let the server start (the message then fails alone)".into(),
        ),
        FindingKind::DanglingHeader => (
            DANGLING.into(),
            format!("truncate {file} to {offset} bytes before starting"),
        ),
        FindingKind::CutShortLost { lost: l } => (
            format!("record cut short (unexpected EOF): the server truncates the file at offset {offset}, which drops {} (lost, not reported by the server)", lost(*l)),
            "accept the loss, or restore the slice from a backup before starting".into(),
        ),
        FindingKind::CutShortRefused { lost: l } => (
            format!("unexpected EOF: record cut short at offset {offset}"),
            format!("restart with the truncate-on-EOF option (-file_truncate_bad_eof): it truncates {file} at offset {offset}, which drops {}; or restore the slice from a backup", lost(*l)),
        ),
        FindingKind::DamageBetweenIndexed => (
            "damage between indexed records (a zero or broken record header): the server reads records through its index and steps over it, but an index rebuild would stop here".into(),
            format!("do NOT truncate {file}: the records after offset {offset} are indexed and delivered; keep the .idx file"),
        ),
        FindingKind::ZerosAfterIndexed { len } => (
            format!("{len} zero bytes after the last indexed record: the server trusts the index, never reads them, and appends new messages after them; a later index rebuild stops at the zeros and loses those new messages"),
            format!("truncate {file} to {offset} bytes before starting"),
        ),
        FindingKind::ZerosAtEnd { len } => (
            format!("{len} zero bytes at the end: the server truncates them while rebuilding the index"),
            "none needed: no message is lost".into(),
        ),
        FindingKind::PartialAfterIndexed => (
            "a partial record after the last indexed record: the server trusts the index, never reads it, and appends new messages after it; a later index rebuild stops there".into(),
            format!("truncate {file} to {offset} bytes before starting"),
        ),
        FindingKind::Delivery(p) => problem(p),
    }
}

// ---- rewrites ----

/// Why a rewrite refuses a record or file.
/// A given key that opens none of the envelopes (inspect, and decrypt's
/// and rekey's refusals): `key` is K1, K2, ...; `origin` where it came from.
pub fn key_opens_none(key: &str, origin: &dyn std::fmt::Display, envelopes: u64) -> String {
    format!(
        "Key {key} ({origin}) opens none of the {envelopes} envelope(s): it is not a key that wrote them (a key file with stray whitespace at its end gives a different key)."
    )
}

/// Why a record or file refuses the run, where it is: damage in an
/// archived slice does not stop the server, which never reads it.
pub fn refusal_reason(f: &crate::ops::rewrite::Refusal) -> String {
    match (&f.reason, f.archived) {
        (Refused::Damage(d), true) => {
            let detail = match d {
                DamageKind::Version(v) => version_error(*v),
                DamageKind::DataAfterPadding => "a zero header followed by non-zero bytes".into(),
                other => damage_detail(other),
            };
            format!(
                "{}: {detail}, in an archived slice (the server never reads it): move the file out of the store, or rerun with --keep-damaged to carry it over as it is",
                damage_name(d)
            )
        }
        (r, _) => refused(r),
    }
}

pub fn refused(r: &Refused) -> String {
    match r {
        Refused::Damage(d) => format!(
            "{}: {}; run `stanctl store verify` to see what the server does with it, and repair the store first",
            damage_name(d),
            damage_detail(d)
        ),
        Refused::DataRepeated => "the payload field appears more than once in this record (the server delivers the last); stanctl does not rewrite such a record: restore it from a backup or remove the extra copies".into(),
        Refused::Ambiguous => "starts with byte 1 or 2 like an envelope, but no given key opens it and its nonce is not one the server or stanctl writes: most likely plaintext. If it is plaintext, rerun with --assume-plaintext; otherwise give the key that encrypted it".into(),
        Refused::WrongKey => "an envelope no given key opens: give the key that encrypted it (--key-file, repeatable for decrypt and rekey)".into(),
        Refused::TooLarge => "the rewritten record would exceed 4 GiB, more than a record header can hold".into(),
        Refused::Symlink => "is a symbolic link: stanctl never rewrites through a symlink in place; use --output DIR, or replace the link with the real directory or file".into(),
        Refused::VerdictWouldChange(g) => format!(
            "--keep-damaged: the server's verdict on this kept record (or whether it starts) would change after the rewrite (checked with file CRC {}, read buffer size {}, truncate-on-EOF {}); nothing was written: restore the slice from a backup, or run without --keep-damaged to see the damage",
            if g.file_crc { "on" } else { "off" },
            g.read_buffer_size,
            if g.truncate_on_eof { "on" } else { "off" }
        ),
        Refused::RaftLogNotGiven { node_id } => format!(
            "{}; its Raft log holds the same messages encrypted with the same key, and rewriting the file store alone would leave the node unable to replay its log",
            raft_log_not_given(node_id)
        ),
        Refused::RaftEntry(e) => format!(
            "{e}: a Raft log entry that does not decode cannot be rewritten (run `stanctl store verify` with the log to see the server's view)"
        ),
        Refused::NoRoomToStage(s) => format!(
            "not enough free space for --one-pass: staging the new files of every slice before the first is swapped in needs about {} ({} bytes, a margin of {} included) on the file system of this directory, and {} ({} bytes) is free; drop --one-pass (two passes need room for one slice per thread at a time), free some space, or write a converted copy to another disk with --output DIR",
            super::human_bytes(s.needed),
            s.needed,
            super::human_bytes(s.margin),
            super::human_bytes(s.available),
            s.available
        ),
    }
}

/// The message a node whose Raft log is not given gets (verify, inspect
/// and the refusal of rewrites).
pub fn raft_log_not_given(node_id: &str) -> String {
    format!(
        "clustered node {node_id:?}: its Raft log was not given, so it was NOT checked; pass --cluster-log-path DIR (the server's -cluster_log_path; the log is DIR/<cluster id>/raft.log) or --raft-log FILE"
    )
}

fn raft_finding(r: &crate::ops::node::RaftFinding) -> (String, String) {
    use crate::ops::node::RaftFinding;
    match r {
        RaftFinding::NotGiven { node_id } => (
            raft_log_not_given(node_id),
            "give the node's Raft log with --cluster-log-path DIR or --raft-log FILE".into(),
        ),
        RaftFinding::Unreadable(e) => (
            format!("the node's Raft log cannot be read: {e}"),
            "check the path given; restore raft.log from a backup, or let the node rejoin with an empty log from its peers".into(),
        ),
        RaftFinding::Damage(p) => (
            format!("the Raft log's bbolt structure has problems (pages unaccounted for or keys out of order): {p:?}"),
            "`stanctl store decrypt|rekey` rewrites the file afresh; or restore it from a backup".into(),
        ),
        RaftFinding::Fails(e) => (
            format!("Raft log entries the server's log store cannot return ({}): the node cannot apply them", serve_error(e)),
            "run with the key that wrote them, or `stanctl store rekey`/`decrypt` the node with --cluster-log-path and every old key".into(),
        ),
        RaftFinding::ServedRaw => (
            "Raft log command entries hold envelopes and encryption is off: they are served as raw bytes and the node fails when it applies them".into(),
            "run the node with encryption on and the key, or `stanctl store decrypt` the node (store and log) first".into(),
        ),
        RaftFinding::BadEntries(e) => (
            format!("Raft log entries that do not decode: {e}"),
            "restore raft.log from a backup, or let the node rejoin from its peers".into(),
        ),
    }
}

/// Why `--keep-damaged` carried something over, and what the server does
/// with it (nothing, in an archived slice: it never reads one).
pub fn kept_item(k: &crate::ops::rewrite::Kept) -> String {
    use crate::ops::rewrite::KeptWhat;
    if !k.archived {
        return kept(&k.what);
    }
    match &k.what {
        KeptWhat::Record(r) => format!("record kept byte for byte ({}) in an archived slice, which the server never reads: it still holds what it held (under the OLD key if it is an envelope, or in plaintext)", kept_why(r)),
        KeptWhat::Tail => "bytes after the last indexed record of an archived slice, kept as they were".into(),
        KeptWhat::Slice(r) => format!("archived slice carried over whole (.dat.bak and .idx.bak unchanged, every record under its OLD key or in plaintext) because its records cannot be framed record by record: {}", kept_why(r)),
    }
}

fn kept_why(r: &Refused) -> String {
    match r {
        Refused::Damage(d) => format!("{}: {}", damage_name(d), damage_detail(d)),
        Refused::WrongKey => "an envelope no given key opens".into(),
        Refused::Ambiguous => {
            "starts with byte 1 or 2, no key opens it, no known nonce (likely plaintext)".into()
        }
        Refused::DataRepeated => "the payload field appears more than once".into(),
        Refused::TooLarge => "the rewritten record would exceed 4 GiB".into(),
        other => refused(other),
    }
}

/// Why `--keep-damaged` carried something over, and what the server does with it.
pub fn kept(k: &crate::ops::rewrite::KeptWhat) -> String {
    use crate::ops::rewrite::KeptWhat;
    let why = |r: &Refused| match r {
        Refused::Damage(d) => format!("{}: {}", damage_name(d), damage_detail(d)),
        Refused::WrongKey => "an envelope no given key opens".into(),
        Refused::Ambiguous => {
            "starts with byte 1 or 2, no key opens it, no known nonce (likely plaintext)".into()
        }
        Refused::DataRepeated => "the payload field appears more than once".into(),
        Refused::TooLarge => "the rewritten record would exceed 4 GiB".into(),
        other => refused(other),
    };
    match k {
        KeptWhat::Record(r) => format!("record kept byte for byte ({}); it still holds what it held (under the OLD key if it is an envelope): the server gives it exactly the verdict it had (run `stanctl store verify` before and after)", why(r)),
        KeptWhat::Tail => "bytes after the last indexed record, kept as they were: the server never reads them while it trusts the index".into(),
        KeptWhat::Slice(r) => format!("slice carried over whole (.dat and .idx unchanged, every record under its OLD key or in plaintext) because the server rebuilds its index and its records cannot be framed record by record: {}", why(r)),
    }
}

// ---- inspect ----

pub fn note(n: &Note) -> String {
    match n {
        Note::Bak(p) => format!(
            "{p}: an archived slice file (.bak); the server does not read it and the table does not count it (its plaintext messages are under Plaintext on disk); encrypt, decrypt and rekey convert it"
        ),
        Note::Temp(p) => {
            format!("{p}: {LEFTOVER_WHAT}; {LEFTOVER_REMEDY}")
        }
        Note::NoCrcMatches { poly } => format!("no record's CRC matches polynomial {poly:#010x}: is that the server's -file_crc_poly? (the default is IEEE, 0xedb88320)"),
        Note::NoServerInfo => "server.dat holds no ServerInfo record: the server would start as a NEW store and recover none of these channels (run verify)".into(),
        Note::Clustered { node_id } => raft_log_not_given(node_id),
        Note::TruncateLock => {
            ".truncate.lck present: a server is (or was) running with truncate-on-unexpected-EOF"
                .into()
        }
    }
}

// ---- plaintext on disk (every report) ----

/// Which report says how much plaintext is on disk, and so what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaintextSaid {
    /// What is on disk now.
    Inspect,
    /// What is on disk now, with the server's encryption setting.
    Verify { encryption: bool },
    /// What a rewrite leaves on disk.
    Rewrite {
        op: crate::ops::Operation,
        dry_run: bool,
        /// The run refused: nothing was written.
        refused: bool,
    },
}

/// How many places a line names before "and N more" (`--json` has them all).
const PLACES_SHOWN: usize = 8;

/// The plaintext messages on disk and where (None: a rewrite that was
/// interrupted, so not counted).
pub fn plaintext_on_disk(
    p: Option<&crate::ops::archived::PlaintextOnDisk>,
    said: PlaintextSaid,
) -> String {
    use crate::ops::Operation;
    let Some(p) = p else {
        return "Plaintext on disk: not counted, the run was interrupted; finish it, then `stanctl store inspect DIR` counts it".into();
    };
    let when = match said {
        PlaintextSaid::Rewrite { dry_run: true, .. } => "after a real run",
        PlaintextSaid::Rewrite { refused: true, .. } => "(unchanged: nothing was written)",
        _ => "",
    };
    let head = if when.is_empty() {
        "Plaintext on disk:".to_string()
    } else {
        format!("Plaintext on disk {when}:")
    };
    if p.messages == 0 {
        return format!("{head} none (no live or archived slice holds a plaintext message)");
    }
    let mut places: Vec<String> = p
        .live
        .iter()
        .map(|l| format!("{} ({})", l.channel, l.messages))
        .collect();
    let live_n = places.len();
    places.extend(
        p.archived
            .iter()
            .map(|a| format!("archived {} ({})", a.file, a.messages)),
    );
    let total = places.len();
    places.truncate(PLACES_SHOWN);
    let mut list = places.join(", ");
    if total > PLACES_SHOWN {
        list.push_str(&format!(" and {} more place(s)", total - PLACES_SHOWN));
    }
    let live_msgs: u64 = p.live.iter().map(|l| l.messages).sum();
    let arch = p.in_archived();
    let split = match (live_n, arch) {
        (0, _) => format!("all {arch} in archived slices"),
        (_, 0) => format!("all {live_msgs} in live slices"),
        _ => format!("{live_msgs} in live slices, {arch} in archived slices"),
    };
    let meaning = match said {
        PlaintextSaid::Inspect | PlaintextSaid::Verify { encryption: false } => "",
        PlaintextSaid::Verify { encryption: true } => {
            " - stored unencrypted although encryption is on (the server delivers them as they are; archived slices it never reads): `stanctl store encrypt DIR --cipher C --key-file KEY` encrypts them, archived slices included"
        }
        PlaintextSaid::Rewrite {
            op: Operation::Decrypt,
            refused: false,
            ..
        } => " - as decrypt leaves them",
        PlaintextSaid::Rewrite { refused: true, .. } => "",
        PlaintextSaid::Rewrite { .. } => {
            " - NOT encrypted: records the run keeps as they are (see above); anyone who can read these files reads them"
        }
    };
    format!("{head} {} message(s), {split}: {list}{meaning}", p.messages)
}

/// The rewrite table's row for archived slices.
pub const ARCHIVED_ROW: &str = "archived (.bak)";
/// What the rewrite table's columns mean.
pub const REWRITE_LEGEND: &str =
    "Same: records left as they were; Before, After: size of the slice files; Slices: slices rewritten";
/// What the rewrite table's archived row means.
pub const ARCHIVED_LEGEND: &str =
    "archived (.bak): archived slices msgs.N.dat.bak, which the server does not read, converted with the same rule; not in total";

/// What a rewrite did to the store's archived slices (`count` of them).
pub fn archived_slices(
    op: crate::ops::Operation,
    dry_run: bool,
    refused: bool,
    count: u64,
    t: &crate::ops::rewrite::Tally,
) -> String {
    let done = match op {
        crate::ops::Operation::Encrypt => "encrypted",
        crate::ops::Operation::Decrypt => "decrypted",
        crate::ops::Operation::Rekey => "re-keyed",
    };
    let head = format!(
        "Archived slices (msgs.N.dat.bak, not read by the server): {count} checked with {} message(s)",
        t.records
    );
    if refused {
        return format!("{head}; none converted (the run refused)");
    }
    let (would, slices) = if dry_run {
        ("would be ", "would be rewritten")
    } else {
        ("", "rewritten")
    };
    format!(
        "{head}; {} {slices}, {} message(s) {would}{done}",
        t.slices_rewritten, t.changed
    )
}
