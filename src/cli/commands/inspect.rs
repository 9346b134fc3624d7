//! `stanctl store inspect`.

use crate::cli::args::InspectArgs;
use crate::cli::exit::ExitCode;
use crate::cli::progress::Terminal;
use crate::cli::{backend_of, keys, settings, warn};
use crate::error::Error;
use crate::format::layout::StoreLayout;
use crate::ops::inspect::InspectOptions;
use crate::report;

pub fn run(a: InspectArgs) -> Result<ExitCode, Error> {
    let sink = Terminal::new(a.common.quiet);
    let common = settings::common(&a.common, &sink)?;
    let opts = InspectOptions {
        crc: common.crc.value.clone(),
        backend: backend_of(&a.common),
        records: a.records,
    };
    let keys = keys::load_keys(&a.keys, true, settings::config_key(&common))?;
    let layout = StoreLayout::discover(&common.dir.value)?;
    if let Some(pid) = crate::format::lock::holder(&layout.root)? {
        warn(&format!(
            "a running process (pid {pid}) holds the store's lock: what you see may change under you; stop the server for a stable view"
        ));
    }
    let r = crate::ops::node::inspect_node(
        &layout,
        &keys,
        &opts,
        &settings::node(&a.node, &common).options,
        &sink,
    )?;
    if a.common.json {
        report::json::print(&report::json::Inspect(&r))?;
    } else if !a.common.quiet {
        report::stdout(|out| report::inspect::table(&r, a.by_slice, out))?;
        if let Some(l) = &r.raft_log {
            report::stdout(|out| report::raft::inspect_section(l, out))?;
        }
    }
    Ok(ExitCode::Ok)
}
