//! `--json`: the reports as JSON documents (schemas in README.md).

use super::words;
use crate::error::Error;
use crate::format::damage::Damage;
use crate::ops::inspect::{InspectReport, Note};
use crate::ops::rewrite::Refusal;
use crate::ops::rewrite::{RewriteReport, Tally};
use crate::ops::verify::Finding;
use crate::ops::verify::VerifyReport;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::io::Write;

pub fn print<T: Serialize>(v: &T) -> Result<(), Error> {
    let mut out = super::buffered_stdout();
    serde_json::to_writer_pretty(&mut out, v)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
        .or_else(super::stdout_error)
}

pub struct Inspect<'a>(pub &'a InspectReport);

impl Serialize for Inspect<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The verify report with the exit code the command returns and the
/// settings with their sources (`setting_sources`, added to schema 1).
pub struct Verify<'a>(
    pub &'a VerifyReport,
    pub i32,
    pub &'a super::settings::Block,
);

impl Serialize for Verify<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut st = s.serialize_struct("VerifyReport", 13)?;
        st.serialize_field("schema", r.schema)?;
        st.serialize_field("store", &r.store)?;
        st.serialize_field("settings", &r.settings)?;
        st.serialize_field(
            "config",
            &self.2.config.as_ref().map(|p| p.display().to_string()),
        )?;
        st.serialize_field("setting_sources", &self.2.rows)?;
        st.serialize_field("verdict", &r.verdict)?;
        st.serialize_field("exit_code", &self.1)?;
        st.serialize_field("cluster_id", &r.cluster_id)?;
        st.serialize_field("clients", &r.clients)?;
        st.serialize_field("channels", &r.channels)?;
        st.serialize_field("totals", &r.totals)?;
        st.serialize_field("findings", &r.findings)?;
        if let Some(raft) = &r.raft {
            st.serialize_field("raft_log", raft)?;
        }
        st.serialize_field("plaintext_on_disk", &r.plaintext_on_disk)?;
        st.end()
    }
}

/// A stand-alone Raft log's verify.
pub struct RaftVerify<'a>(
    pub &'a crate::ops::node::RaftLogVerify,
    pub crate::ops::verify::Verdict,
    pub i32,
    pub &'a super::settings::Block,
);

impl Serialize for RaftVerify<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RaftVerify", 7)?;
        st.serialize_field("schema", "stanctl.raft-verify/1")?;
        st.serialize_field(
            "config",
            &self.3.config.as_ref().map(|p| p.display().to_string()),
        )?;
        st.serialize_field("setting_sources", &self.3.rows)?;
        st.serialize_field("verdict", &self.1)?;
        st.serialize_field("exit_code", &self.2)?;
        st.serialize_field("raft_log", self.0)?;
        st.serialize_field("findings", &self.0.findings)?;
        st.end()
    }
}

pub struct Rewrite<'a>(pub &'a RewriteReport);

/// A tally as the JSON shows it (schema `stanctl.rewrite/2`): what was
/// done. A refused run wrote nothing, so every record counts as unchanged
/// there; `refused_records` counts the records the check could not handle
/// (in `records`, but neither changed nor unchanged on a run that was not
/// refused). What the check planned is `planned` (the tally with
/// `refused = false`).
#[derive(serde::Serialize)]
struct TallyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    records: u64,
    changed: u64,
    unchanged: u64,
    encrypted: u64,
    decrypted: u64,
    rekeyed: u64,
    bytes_before: u64,
    bytes_after: u64,
    slices_rewritten: u64,
    kept: u64,
    headers_repaired: u64,
    refused_records: u64,
    kept_other_cipher: u64,
}

fn tally_out<'a>(name: Option<&'a str>, t: &Tally, refused: bool) -> TallyOut<'a> {
    let refused_records = t.records.saturating_sub(t.changed + t.unchanged + t.kept);
    if refused {
        TallyOut {
            name,
            records: t.records,
            changed: 0,
            unchanged: t.records - refused_records,
            encrypted: 0,
            decrypted: 0,
            rekeyed: 0,
            bytes_before: t.bytes_before,
            bytes_after: t.bytes_before,
            slices_rewritten: 0,
            kept: 0,
            headers_repaired: 0,
            refused_records,
            kept_other_cipher: 0,
        }
    } else {
        TallyOut {
            name,
            records: t.records,
            changed: t.changed,
            unchanged: t.unchanged,
            encrypted: t.encrypted,
            decrypted: t.decrypted,
            rekeyed: t.rekeyed,
            bytes_before: t.bytes_before,
            bytes_after: t.bytes_after,
            slices_rewritten: t.slices_rewritten,
            kept: t.kept,
            headers_repaired: t.headers_repaired,
            refused_records,
            kept_other_cipher: t.kept_other_cipher,
        }
    }
}

/// A Raft log's part of a rewrite: the same done/planned counts as a tally.
#[derive(serde::Serialize)]
struct RaftLogOut<'a> {
    path: &'a str,
    output: &'a Option<String>,
    #[serde(flatten)]
    tally: TallyOut<'a>,
    planned: TallyOut<'a>,
}

impl<'a> RaftLogOut<'a> {
    fn of(l: &'a crate::ops::rewrite::RaftLogReport, refused: bool) -> Self {
        RaftLogOut {
            path: &l.path,
            output: &l.output,
            tally: tally_out(None, &l.tally, refused),
            planned: tally_out(None, &l.tally, false),
        }
    }
}

impl Serialize for Rewrite<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let refused = !r.refused.is_empty();
        let channels: Vec<TallyOut> = r
            .channels
            .iter()
            .map(|c| tally_out(Some(&c.name), &c.tally, refused))
            .collect();
        let mut st = s.serialize_struct("RewriteReport", 16)?;
        st.serialize_field("schema", r.schema)?;
        st.serialize_field("operation", &r.operation)?;
        st.serialize_field("store", &r.store)?;
        st.serialize_field("output", &r.output)?;
        st.serialize_field("dry_run", &r.dry_run)?;
        st.serialize_field(
            "written",
            &(!refused && !r.dry_run && r.interrupted.is_none_or(|i| i.slices_done > 0)),
        )?;
        st.serialize_field("channels", &channels)?;
        st.serialize_field("totals", &tally_out(None, &r.totals, refused))?;
        // What the check decided, whether or not it was written (/2).
        st.serialize_field("planned", &tally_out(None, &r.totals, false))?;
        st.serialize_field("refused", &r.refused)?;
        if !r.keys_opening_none.is_empty() {
            st.serialize_field("keys_opening_none", &r.keys_opening_none)?;
        }
        if let Some(oc) = &r.other_cipher {
            st.serialize_field("other_cipher", oc)?;
        }
        if let Some(l) = &r.raft_log {
            st.serialize_field("raft_log", &RaftLogOut::of(l, refused))?;
        }
        st.serialize_field("kept", &r.kept)?;
        st.serialize_field("interrupted", &r.interrupted)?;
        let archived: Vec<ArchivedOut> = r
            .archived
            .iter()
            .map(|a| archived_out(a, refused))
            .collect();
        st.serialize_field("archived", &archived)?;
        st.serialize_field(
            "archived_totals",
            &tally_out(None, &r.archived_totals, refused),
        )?;
        if !r.store_less() {
            st.serialize_field("plaintext_on_disk", &r.plaintext_on_disk())?;
            st.serialize_field("one_pass", &r.one_pass)?;
        }
        if !r.staging_space.is_empty() {
            st.serialize_field("staging_space", &r.staging_space)?;
        }
        st.end()
    }
}

/// An archived slice in the rewrite JSON: where it is, its messages, what
/// the run converted in it and the plaintext it holds when the run ends.
#[derive(serde::Serialize)]
struct ArchivedOut<'a> {
    channel: &'a str,
    file: &'a str,
    index_file: Option<&'a str>,
    messages: u64,
    converted: u64,
    rewritten: bool,
    plaintext: u64,
}

fn archived_out(a: &crate::ops::rewrite::ArchivedSlice, refused: bool) -> ArchivedOut<'_> {
    let t = &a.tally;
    ArchivedOut {
        channel: &a.channel,
        file: &a.file,
        index_file: a.index_file.as_deref(),
        messages: t.records,
        converted: if refused { 0 } else { t.changed },
        rewritten: !refused && t.slices_rewritten > 0,
        plaintext: if refused {
            t.plaintext_before
        } else {
            t.plaintext_after
        },
    }
}

impl Serialize for Damage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Damage", 6)?;
        st.serialize_field("channel", &self.channel)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("kind", words::damage_name(&self.kind))?;
        st.serialize_field("detail", &words::damage_detail(&self.kind))?;
        st.end()
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (what, remedy) = words::finding(self);
        let mut st = s.serialize_struct("Finding", 9)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("channel", &self.channel)?;
        st.serialize_field("first_seq", &self.first_seq)?;
        st.serialize_field("last_seq", &self.last_seq)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("what", &what)?;
        st.serialize_field("remedy", &remedy)?;
        st.end()
    }
}

impl Serialize for crate::ops::rewrite::Kept {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Kept", 6)?;
        st.serialize_field("channel", &self.channel)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("bytes", &self.len)?;
        st.serialize_field("reason", &words::kept_item(self))?;
        st.end()
    }
}

impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Refusal", 5)?;
        st.serialize_field("channel", &self.channel)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("reason", &words::refusal_reason(self))?;
        st.end()
    }
}

impl Serialize for Note {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&words::note(self))
    }
}
