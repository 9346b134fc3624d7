//! `--json`: the reports as JSON documents (schemas in README.md).

use super::words;
use crate::error::Error;
use crate::format::damage::Damage;
use crate::ops::inspect::{InspectReport, Note};
use crate::ops::rewrite::Refusal;
use crate::ops::rewrite::RewriteReport;
use crate::ops::verify::Finding;
use crate::ops::verify::VerifyReport;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::io::Write;

pub fn print<T: Serialize>(v: &T) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .or_else(super::stdout_error)
}

pub struct Inspect<'a>(pub &'a InspectReport);

impl Serialize for Inspect<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// The verify report with the exit code the command returns.
pub struct Verify<'a>(pub &'a VerifyReport, pub i32);

impl Serialize for Verify<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut st = s.serialize_struct("VerifyReport", 11)?;
        st.serialize_field("schema", r.schema)?;
        st.serialize_field("store", &r.store)?;
        st.serialize_field("settings", &r.settings)?;
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
        st.end()
    }
}

/// A stand-alone Raft log's verify.
pub struct RaftVerify<'a>(
    pub &'a crate::ops::node::RaftLogVerify,
    pub crate::ops::verify::Verdict,
    pub i32,
);

impl Serialize for RaftVerify<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RaftVerify", 5)?;
        st.serialize_field("schema", "stanctl.raft-verify/1")?;
        st.serialize_field("verdict", &self.1)?;
        st.serialize_field("exit_code", &self.2)?;
        st.serialize_field("raft_log", self.0)?;
        st.serialize_field("findings", &self.0.findings)?;
        st.end()
    }
}

pub struct Rewrite<'a>(pub &'a RewriteReport);

impl Serialize for Rewrite<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
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
        st.serialize_field("reason", &words::kept(&self.what))?;
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
        st.serialize_field("reason", &words::refused(&self.reason))?;
        st.end()
    }
}

impl Serialize for Note {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&words::note(self))
    }
}
