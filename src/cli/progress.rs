//! The terminal's sink: a progress bar on stderr (only when stderr is a
//! terminal and the work is large) and warnings on stderr.

use crate::ops::{Phase, Sink, Warning};
use crate::report;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

#[derive(Default)]
pub struct Terminal {
    bar: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    fn bar(&self) -> Option<ProgressBar> {
        self.bar.lock().ok()?.clone()
    }
}

impl Sink for Terminal {
    fn start(&self, phase: Phase, total: u64) {
        if !std::io::stderr().is_terminal() || total < 64 * 1024 * 1024 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_message(report::phase_name(phase));
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.bar() {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            b.finish_and_clear();
        }
    }

    fn warn(&self, w: Warning) {
        super::warn(&report::warning(&w));
    }
}
