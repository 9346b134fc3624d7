//! `--json`: the reports as JSON documents (schemas in README.md).

use crate::error::Error;
use crate::ops::inspect::InspectReport;
use crate::ops::rewrite::RewriteReport;
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
        let mut st = s.serialize_struct("VerifyReport", 10)?;
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
        st.end()
    }
}

pub struct Rewrite<'a>(pub &'a RewriteReport);

impl Serialize for Rewrite<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
