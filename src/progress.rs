//! Progress on stderr, only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A byte-counting bar with rate and ETA; hidden when stderr is not a
    /// terminal or the work is small.
    pub fn bytes(total: u64, what: &str) -> Progress {
        if !std::io::stderr().is_terminal() || total < 64 * 1024 * 1024 {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Progress { bar: Some(bar) }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Bytes of all slice files, for the progress total.
pub fn store_bytes(layout: &crate::store::StoreLayout) -> u64 {
    let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    layout
        .channels
        .iter()
        .flat_map(|c| &c.slices)
        .map(|s| len(&s.dat) + s.idx.as_deref().map_or(0, len))
        .sum()
}
